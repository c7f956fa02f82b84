// Healing in bounded passes, against real processes: a master whose passes consider only a
// few unhealthy pieces each (`--heal-pass-pieces`) still heals every piece of a lost worker,
// over several passes, each resuming where the last stopped.
import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { liveHolders, wantedReplicas } from "../src/content.js";
import type { CopiesOrdered } from "../src/events.js";
import { runCli, TestStore, waitFor } from "./harness.js";

const PASS = 4;
const PIECE = 4096;
const PIECES = 40;
const WORKERS = ["w1", "w2", "w3"];

const test = suite<{ store: TestStore }>("heal passes", {} as { store: TestStore });
test.before(async (ctx) => {
  ctx.store = await TestStore.start("heal-passes");
  ctx.store.startMaster(1_500, ["--heal-pass-pieces", String(PASS)]);
  for (const id of WORKERS) await ctx.store.startWorker(id);
  await ctx.store.waitForLiveWorkers(WORKERS.length);
});
test.after(async (ctx) => {
  await ctx.store?.stop();
});

test("a lost worker's pieces are all copied again, a few at a time, in several passes", async ({ store }) => {
  const client = await store.client();
  const bytes = randomBytes(PIECES * PIECE);
  const local = join(store.dir, "many-pieces.bin");
  await writeFile(local, bytes);
  await client.put(local, "/many-pieces.bin", { replicas: 2, pieceSize: PIECE });
  const onW1 = [...(await store.replay()).state.content.values()].filter((c) => c.holders.has("w1")).map((c) => c.sha256);
  assert.ok(onW1.length > 2 * PASS, `w1 holds more pieces (${onW1.length}) than two passes consider`);

  await store.role("worker w1").kill();
  await waitFor("w1 recorded lost", async () => !(await store.replay()).state.workers.get("w1")!.live, 15_000, 100);
  const state = await waitFor(
    "every piece back to 2 live copies",
    async () => {
      const { state } = await store.replay();
      const whole = [...state.content.values()].every((c) => wantedReplicas(c) === 0 || liveHolders(state, c).length === wantedReplicas(c));
      return whole && state.unhealthy.size === 0 && state.copyingTo.size === 0 && state;
    },
    30_000,
    200,
  );
  for (const sha256 of onW1) assert.is(liveHolders(state, state.content.get(sha256)!).length, 2, `${sha256} has 2 live copies`);

  const tail = await runCli(["tail", "--json", "--type", "CopiesOrdered", ...store.flags]);
  assert.is(tail.code, 0, tail.stderr);
  const orders = tail.stdout.trim().split("\n").map((line) => (JSON.parse(line) as { seq: number; event: CopiesOrdered }));
  const ordered = new Set(orders.flatMap((o) => o.event.pieces.map((p) => p.sha256)));
  for (const sha256 of onW1) assert.ok(ordered.has(sha256), `a copy of ${sha256} was ordered`);
  // One pass decides at most PASS copies: in all, the orders came in several passes.
  for (const { event } of orders) assert.ok(event.pieces.length <= PASS, `an order of ${event.pieces.length} pieces is within one pass`);
  const passes = new Set(orders.map((o) => o.event.at));
  assert.ok(passes.size >= Math.ceil(onW1.length / PASS), `${passes.size} passes ordered the ${onW1.length} copies`);

  const back = join(store.dir, "back.bin");
  await client.get("/many-pieces.bin", back);
  assert.ok(Buffer.compare(await readFile(back), bytes) === 0, "the file reads back byte-exact");
});

test.run();
