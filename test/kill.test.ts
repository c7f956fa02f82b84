// kill -9 of real processes in the middle of real work, as an operator's crash or `dfs up`'s
// supervisor (which starts a dead child again 0.5 s later) would have it.
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as assert from "uvu/assert";
import { call, serveBytes } from "../src/rpc.js";
import { CLI, keyedUpload, runCli, storeSuite, waitFor, type TestStore } from "./harness.js";

const PIECE = 64 * 1024;
/** Long: a worker started again within it is never counted lost, so nothing is re-placed. */
const WORKER_TIMEOUT_MS = 60_000;
const test = storeSuite("kill", { workers: ["k1"], workerTimeoutMs: WORKER_TIMEOUT_MS });

const sha = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

test("a worker killed while it stores an upload and started again at once finishes it, without waiting out the redelivery of its assignment", async ({ store }) => {
  const client = await store.client();
  const bytes = randomBytes(2 * PIECE);
  const pieces = [bytes.subarray(0, PIECE), bytes.subarray(PIECE)];
  const { uploadKey, uploadId } = keyedUpload("killedwhilestoring");
  let killed: Promise<void> | undefined;
  // The worker pulls both pieces under one assignment, acknowledged once both are stored: it
  // is killed as it asks for the second, so that assignment is delivered and not acknowledged.
  const served = serveBytes(client.nc, client.cat.pullAll(client.uploader, uploadId), async (request, msg) => {
    const piece = Number(msg.subject.split(".").at(-1));
    const { offset, length } = request as { offset: number; length: number };
    if (piece === 1 && !killed) {
      killed = store.role("worker k1").kill();
      await killed;
    }
    return pieces[piece]!.subarray(offset, offset + length);
  });
  try {
    const created = await call<{ fileId: string; version: number }>(client.nc, client.cat.masterRpc("create"), {
      uploadKey,
      uploadId,
      uploader: client.uploader,
      path: "/killed-while-storing.bin",
      size: bytes.length,
      sha256: sha(bytes),
      pieceSize: PIECE,
      replicas: 1,
      pieceHashes: Buffer.concat(pieces.map((p) => createHash("sha256").update(p).digest())),
    });
    await waitFor("the worker killed as it pulls the second piece", () => killed !== undefined, 20_000);
    await killed;
    await store.startWorker("k1");
    // Well inside the assignment's first delivery's acknowledgement wait as it was (60 s),
    // and long enough for the worker's start and a redelivery after its consumer's new wait.
    const committed = await waitFor(
      "the version committed",
      async () => (await store.replay()).state.files.get(created.fileId)?.versions.get(created.version)?.status === "committed",
      30_000,
      250,
    );
    assert.ok(committed);
    const back = await client.stat("/killed-while-storing.bin");
    assert.is(back.sha256, sha(bytes));
  } finally {
    served.unsubscribe();
  }
});

/** A tree of small files (many creates decided together), its bytes by relative path. */
async function smallTree(root: string, files: number): Promise<Map<string, Buffer>> {
  const tree = new Map<string, Buffer>();
  for (let i = 0; i < files; i++) {
    const relative = `d${i % 5}/f${i}`;
    const bytes = randomBytes((i * 37) % 2000);
    await mkdir(join(root, `d${i % 5}`), { recursive: true });
    await writeFile(join(root, relative), bytes);
    tree.set(relative, bytes);
  }
  return tree;
}

/**
 * `dfs put -r` of a fresh tree, with `crash` run once it has stored `after` files; then the
 * put must have ended well, or fail with a line and its retry end well; every file must read
 * back byte-exact through `get -r`, and `replay --check` must agree with the live master.
 */
async function putTreeThrough(store: TestStore, name: string, after: number, crash: () => Promise<void>): Promise<void> {
  const root = join(store.dir, name);
  const tree = await smallTree(root, 160);
  const put = spawn(process.execPath, [CLI, ...store.flags, "put", "-r", root, "/", "--replicas", "1", "--verbose"], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  put.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
  put.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => put.once("exit", (code) => resolve(code)));
  try {
    await waitFor(`${after} files stored`, () => stdout.split("\n").filter((l) => l.startsWith("stored /")).length >= after, 60_000, 10);
    await crash();
    const code = await Promise.race([exited, new Promise<"hung">((resolve) => setTimeout(() => resolve("hung"), 120_000))]);
    assert.is.not(code, "hung", "the put ends");
    if (code !== 0) {
      assert.match(stderr, /^dfs: [A-Z_]+: /m, "a failed put says why in a line");
      const retry = await runCli([...store.flags, "put", "-r", root, "/", "--replicas", "1"], { timeoutMs: 120_000 });
      assert.is(retry.code, 0, `the retry ends well: ${retry.stderr}`);
    }
  } finally {
    put.kill("SIGKILL");
  }
  const back = join(store.dir, `${name}-back`);
  const get = await runCli([...store.flags, "get", "-r", `/${name}`, back], { timeoutMs: 120_000 });
  assert.is(get.code, 0, get.stderr);
  for (const [relative, bytes] of tree) assert.ok((await readFile(join(back, relative))).equals(bytes), `${relative} reads back`);
  const check = await runCli([...store.flags, "replay", "--check"], { timeoutMs: 60_000 });
  assert.is(check.code, 0, check.stdout + check.stderr);
}

test("the leader killed -9 in the middle of a put -r: the put (or its retry) stores every file, and the log replays to the live master's table", async ({ store }) => {
  const follower = store.startMaster(WORKER_TIMEOUT_MS);
  await waitFor("the second master to serve", () => /serving on/.test(follower.output()), 20_000);
  const leader = store.roles.find((r) => r.name === "master" && /leading \(master/.test(r.output()))!;
  assert.ok(leader !== follower, "the first master leads");
  await putTreeThrough(store, "through-leader", 40, () => leader.kill());
  assert.match(follower.output(), /leading \(master/, "the follower took over");
});

test("the nats-server killed -9 under a put -r and started again on its store: the put (or its retry) stores every file", async ({ store }) => {
  await putTreeThrough(store, "through-server", 40, () => store.restartServer("SIGKILL"));
});

test.run();
