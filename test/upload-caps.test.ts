// What one uploader may hold open, against real processes: a master started with small caps
// (`--max-open-streams`, `--max-pending-uploads`) refuses a client over them with
// TOO_MANY_UPLOADS (the CLI says so in one line), serves every other client meanwhile, and
// serves the first again once its uploads are over.
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { DfsClient } from "../client/client.js";
import { MIN_PIECE_SIZE } from "../src/events.js";
import { uploadIdOf } from "../src/protocol.js";
import { call } from "../src/rpc.js";
import { errorCode, runCli, TestStore, waitFor } from "./harness.js";

const WORKERS = ["w1", "w2"];

const test = suite<{ store: TestStore }>("upload caps", {} as { store: TestStore });
test.before(async (ctx) => {
  ctx.store = await TestStore.start("upload-caps");
  ctx.store.startMaster(3_000, ["--max-open-streams", "2", "--max-pending-uploads", "3"]);
  for (const id of WORKERS) await ctx.store.startWorker(id);
  await ctx.store.waitForLiveWorkers(WORKERS.length);
});
test.after(async (ctx) => {
  await ctx.store?.stop();
});

/** Open a streamed upload as `client` and leave it open (as a `put -` waiting on stdin does); its key. */
async function openStream(client: DfsClient, path: string): Promise<string> {
  const uploadKey = randomBytes(32).toString("base64url");
  const request = { uploadId: uploadIdOf(uploadKey), uploadKey, uploader: client.uploader, path, streamed: true, pieceSize: MIN_PIECE_SIZE, replicas: 1 };
  await call(client.nc, client.cat.masterRpc("create"), request);
  return uploadKey;
}

async function abort(client: DfsClient, uploadKey: string): Promise<void> {
  await call(client.nc, client.cat.masterRpc("abort"), { uploadKey, reason: "the test is done with it" });
}

async function putFile(store: TestStore, remote: string, creds?: string) {
  const local = join(store.dir, "small.txt");
  await writeFile(local, randomBytes(100));
  return runCli(["put", local, remote, "--replicas", "1", ...store.flags, ...(creds ? ["--creds", creds] : [])]);
}

test("a client with as many streams open as allowed opens no more, in one line from the CLI; others go on; it may again once one is over", async ({ store }) => {
  const client = await store.client();
  const first = await openStream(client, "/streams/1");
  await openStream(client, "/streams/2");
  assert.is(await errorCode(() => openStream(client, "/streams/3")), "TOO_MANY_UPLOADS");

  const refused = await runCli(["put", "-", "/streams/3", "--replicas", "1", ...store.flags], { stdin: Buffer.from("from a pipe") });
  assert.is(refused.code, 1);
  assert.match(refused.stderr, /^dfs: TOO_MANY_UPLOADS: uploader client has 2 streams open, the most the master allows \(--max-open-streams\): wait for some to end\n$/);

  const alice = await store.client("client", "alice");
  await openStream(alice, "/streams/alice");
  const aliceStream = await runCli(["put", "-", "/streams/alice-piped", "--replicas", "1", ...store.flags, "--creds", await store.creds("client", "alice")], { stdin: Buffer.from("hers") });
  assert.is(aliceStream.code, 0, aliceStream.stderr);
  const file = await putFile(store, "/files/while-streams-open");
  assert.is(file.code, 0, `a file is no stream, and the third pending upload is allowed: ${file.stderr}`);

  await abort(client, first);
  const piped = await runCli(["put", "-", "/streams/3", "--replicas", "1", ...store.flags], { stdin: Buffer.from("from a pipe") });
  assert.is(piped.code, 0, piped.stderr);
});

test("a client with as many uploads pending as allowed creates none until one is over", async ({ store }) => {
  // A master with room for more streams than pending uploads: the pending cap is what binds.
  await store.role("master").stop();
  store.startMaster(3_000, ["--max-open-streams", "5", "--max-pending-uploads", "3"]);
  const client = await store.client();
  // One stream from the test before is still open; two more make three pending.
  await waitFor("the new master to lead", () => openStream(client, "/pending/1").then(() => true), 15_000, 200);
  const last = await openStream(client, "/pending/2");
  const refused = await putFile(store, "/pending/file");
  assert.is(refused.code, 1);
  assert.match(refused.stderr, /^dfs: TOO_MANY_UPLOADS: uploader client has 3 uploads pending, the most the master allows \(--max-pending-uploads\): wait for some to finish\n$/);
  const alice = await putFile(store, "/pending/alice", await store.creds("client", "alice"));
  assert.is(alice.code, 0, alice.stderr);

  await abort(client, last);
  const again = await putFile(store, "/pending/file");
  assert.is(again.code, 0, again.stderr);
});

test.run();
