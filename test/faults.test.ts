// Faults the foundation must ride out already: the NATS server itself restarts.
import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as assert from "uvu/assert";
import { call } from "../src/rpc.js";
import { storeSuite, waitFor } from "./harness.js";

const test = storeSuite("faults", { workers: ["w1", "w2"] });


test("a nats-server restart loses nothing: masters and workers reconnect, the log and pieces are intact", async ({ store }) => {
  const client = await store.client();
  const before = randomBytes(300_000);
  await writeFile(join(store.dir, "before"), before);
  await client.put(join(store.dir, "before"), "/before.bin", { replicas: 2, pieceSize: 64 * 1024 });
  const { lastSeq } = await client.masterState();

  await store.restartServer();
  // The master answers again once it has reconnected and re-subscribed.
  const state = await waitFor("the master to answer", () => call<{ lastSeq: number }>(client.nc, store.cat.masterRpc("state"), {}, 1_000), 30_000);
  assert.ok(state.lastSeq >= lastSeq, "the log survived the restart");

  const after = randomBytes(200_000);
  await writeFile(join(store.dir, "after"), after);
  await client.put(join(store.dir, "after"), "/after.bin", { replicas: 2, pieceSize: 64 * 1024 });
  for (const [remote, bytes] of [["/before.bin", before], ["/after.bin", after]] as const) {
    const out = join(store.dir, `${remote.slice(1)}.out`);
    await client.get(remote, out);
    assert.ok(Buffer.compare(await readFile(out), bytes) === 0, `${remote} reads back`);
  }
});

test.run();
