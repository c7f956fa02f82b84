// Reads that never crash and never hang: workers killed, hung (SIGSTOP) and rotten under a
// get, a file deleted during one, a get interrupted; every ending one coded error, no
// temporary file left, no unhandled rejection.
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readFile, readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { Writable } from "node:stream";
import * as assert from "uvu/assert";
import type { DfsClient } from "../client/client.js";
import { callBytes } from "../src/rpc.js";
import { CLI, TestStore, errorCode, runCli, storeSuite, waitFor } from "./harness.js";

// The master must not count a killed or hung worker lost during a test: locate keeps sending
// readers to it first, which is the case under test.
const test = storeSuite("reads", { workers: ["w1", "w2", "w3"], workerTimeoutMs: 120_000 });

const unhandled: unknown[] = [];
const trap = (reason: unknown) => unhandled.push(reason);
test.before(() => {
  process.on("unhandledRejection", trap);
});
test.after(() => {
  process.off("unhandledRejection", trap);
});
test.after.each(() => {
  assert.equal(unhandled.splice(0).map(String), [], "no unhandled rejection");
});

const sha = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

async function putBytes(store: TestStore, client: DfsClient, remote: string, bytes: Buffer, opts: { replicas: number; pieceSize: number }) {
  const local = join(store.dir, remote.replaceAll("/", "_"));
  await writeFile(local, bytes);
  return client.put(local, remote, opts);
}

/** A fresh, empty folder to get into: whatever a get leaves behind shows up in it. */
async function outDir(store: TestStore, name: string): Promise<string> {
  const dir = join(store.dir, "out", name);
  await mkdir(dir, { recursive: true });
  return dir;
}

/** Start a worker killed by a test again, and wait until it answers. */
async function restart(store: TestStore, client: DfsClient, id: string): Promise<void> {
  await store.startWorker(id);
  await waitFor(`${id} back`, () => callBytes(client.nc, store.cat.workerRpc(id, "read"), { sha256: "0".repeat(64), offset: 0, length: 0 }).catch((err) => err.code === "NOT_FOUND"));
}

test("a get whose only replica of a piece is killed fails with one line PIECE_UNAVAILABLE and leaves nothing", async ({ store }) => {
  const client = await store.client();
  const bytes = randomBytes(24 * 64 * 1024);
  await putBytes(store, client, "/single.bin", bytes, { replicas: 1, pieceSize: 64 * 1024 });
  const where = await client.locate("/single.bin");
  const victim = where.pieces[12]!.workers[0]!;
  await store.role(`worker ${victim}`).kill();
  try {
    const dir = await outDir(store, "single");
    const cli = await runCli([...store.flags, "get", "/single.bin", join(dir, "single.bin")]);
    assert.is(cli.code, 1, cli.stderr);
    assert.is(cli.stderr.trimEnd().split("\n").length, 1, `one line on stderr: ${cli.stderr}`);
    assert.match(cli.stderr, /^dfs: PIECE_UNAVAILABLE: piece \d+ could not be read from any replica/);
    assert.equal(await readdir(dir), [], "no .part file left");
    assert.is(await errorCode(() => client.get("/single.bin", join(dir, "single.bin"))), "PIECE_UNAVAILABLE");
    assert.equal(await readdir(dir), [], "no .part file left by the library either");
  } finally {
    await restart(store, client, victim);
  }
});

test("a hung replica (SIGSTOP) costs a short timeout or a hedge, not 10 s a frame", async ({ store }) => {
  const client = await store.client();
  const bytes = randomBytes(4 * 1024 * 1024 + 3);
  await putBytes(store, client, "/hung.bin", bytes, { replicas: 2, pieceSize: 256 * 1024 });
  const where = await client.locate("/hung.bin");
  const victim = where.pieces[0]!.workers[0]!; // the replica readers ask first
  const hung = store.role(`worker ${victim}`).process;
  hung.kill("SIGSTOP");
  try {
    const dir = await outDir(store, "hung");
    const started = Date.now();
    const result = await client.get("/hung.bin", join(dir, "hung.bin"));
    const took = Date.now() - started;
    assert.ok(took < 15_000, `the get took ${took} ms`);
    assert.ok(result.failovers + result.hedges >= 1, "some piece came from the other replica");
    assert.ok(Buffer.compare(await readFile(join(dir, "hung.bin")), bytes) === 0, "the file reads back intact");
    // The CLI too: done, and one line on stderr.
    const cli = await runCli([...store.flags, "get", "/hung.bin", join(dir, "cli.bin")]);
    assert.is(cli.code, 0, cli.stderr);
    assert.ok(Buffer.compare(await readFile(join(dir, "cli.bin")), bytes) === 0);
  } finally {
    hung.kill("SIGCONT");
  }
});

test("bad bytes from a replica are read elsewhere, and that worker is asked to check its copy and drops it", async ({ store }) => {
  const client = await store.client();
  const bytes = randomBytes(4 * 64 * 1024 + 5);
  await putBytes(store, client, "/rotten.bin", bytes, { replicas: 2, pieceSize: 64 * 1024 });
  const piece = (await client.locate("/rotten.bin")).pieces[1]!;
  const victim = piece.workers[0]!; // the replica a reader asks first
  await store.rot(victim, piece.sha256);
  await restart(store, client, victim);
  const readFromVictim = () => callBytes(client.nc, store.cat.workerRpc(victim, "read"), { sha256: piece.sha256, offset: 0, length: piece.size });
  assert.is.not(sha(await readFromVictim()), piece.sha256, "the replica really serves bad bytes");

  const dir = await outDir(store, "rotten");
  const result = await client.get("/rotten.bin", join(dir, "rotten.bin"));
  assert.ok(result.failovers >= 1, "the bad replica was passed over");
  assert.ok(Buffer.compare(await readFile(join(dir, "rotten.bin")), bytes) === 0, "the file reads back intact");
  // The reader asked the worker to verify its copy: it hashed it, dropped it and said so.
  const worker = store.role(`worker ${victim}`);
  await waitFor("the worker to drop its bad copy", () => worker.output().includes(`piece ${piece.sha256} failed its SHA-256 (a reader got bytes that do not match): dropped`));
  const now = await readFromVictim().then(sha, (err: { code?: string }) => err.code);
  assert.ok(now === "NOT_FOUND" || now === piece.sha256, `the worker no longer serves bad bytes (${now})`);
});

/** A file of several pieces of several frames each (a frame is under 1 MiB), a middle frame of a middle piece rotten on the replica a reader asks first. */
async function rottenMidPiece(store: TestStore, client: DfsClient, remote: string): Promise<Buffer> {
  const pieceSize = 3 * 1024 * 1024;
  const bytes = randomBytes(4 * pieceSize + 12_345);
  await putBytes(store, client, remote, bytes, { replicas: 2, pieceSize });
  const piece = (await client.locate(remote)).pieces[2]!;
  const victim = piece.workers[0]!;
  await store.rot(victim, piece.sha256, 1);
  await restart(store, client, victim);
  return bytes;
}

test("a piece whose replica serves bad bytes in a middle frame is read again from the other: the file comes out exact", async ({ store }) => {
  const client = await store.client();
  const bytes = await rottenMidPiece(store, client, "/rotten-frames.bin");
  const dir = await outDir(store, "rotten-frames");
  const result = await client.get("/rotten-frames.bin", join(dir, "rotten-frames.bin"));
  assert.ok(result.failovers >= 1, "the bad replica was passed over");
  assert.ok(Buffer.compare(await readFile(join(dir, "rotten-frames.bin")), bytes) === 0, "the file reads back exact");
  assert.equal(await readdir(dir), ["rotten-frames.bin"], "no .part file left");
});

test("a piece whose replica serves bad bytes in a middle frame is read again from the other: a stream gets only verified bytes, exact", async ({ store }) => {
  const client = await store.client();
  const bytes = await rottenMidPiece(store, client, "/rotten-stream.bin");
  const chunks: Buffer[] = [];
  // A stream that keeps what it is given: a buffer reused under it would show.
  const sink = new Writable({ write: (chunk: Buffer, _encoding, done) => (chunks.push(chunk), done()) });
  const result = await client.get("/rotten-stream.bin", sink);
  assert.ok(result.failovers >= 1, "the bad replica was passed over");
  assert.ok(Buffer.compare(Buffer.concat(chunks), bytes) === 0, "the stream got the exact bytes");
});

/** Many small pieces make a get slow enough to interrupt, or to delete the file under. */
const SLOW_PIECES = 2_000;
const SLOW_PIECE_SIZE = 4096;

test("SIGINT or SIGTERM in the middle of dfs get exits 130 or 143 with one line, and no .part file", async ({ store }) => {
  const client = await store.client();
  await putBytes(store, client, "/slow.bin", randomBytes(SLOW_PIECES * SLOW_PIECE_SIZE), { replicas: 2, pieceSize: SLOW_PIECE_SIZE });
  for (const [signal, status] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    const dir = await outDir(store, `slow-${signal}`);
    const child = spawn(process.execPath, [CLI, ...store.flags, "get", "/slow.bin", join(dir, "slow.bin")], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      // In the middle: the temporary file has bytes in it.
      await waitFor("the get under way", async () => {
        for (const name of await readdir(dir)) if (name.endsWith(".part") && (await stat(join(dir, name))).size > 0) return true;
        return false;
      }, 15_000, 10);
      child.kill(signal);
      assert.is(await exited, status, stderr);
    } finally {
      child.kill("SIGKILL");
    }
    assert.is(stderr.trimEnd().split("\n").length, 1, `one line on stderr: ${stderr}`);
    assert.match(stderr, new RegExp(`^dfs: INTERRUPTED: get of /slow.bin was interrupted \\(${signal}\\)`));
    assert.equal(await readdir(dir), [], "no .part file left");
  }
});

test("a get aborted through its AbortSignal rejects with INTERRUPTED and leaves no .part file", async ({ store }) => {
  const client = await store.client();
  const dir = await outDir(store, "aborted");
  const interrupt = new AbortController();
  const get = client.get("/slow.bin", join(dir, "slow.bin"), { signal: interrupt.signal, onProgress: (p) => p.done > 100 * SLOW_PIECE_SIZE && interrupt.abort() });
  assert.is(await errorCode(() => get), "INTERRUPTED");
  assert.equal(await readdir(dir), [], "no .part file left");
});

test("a file deleted during its get fails the get cleanly, coded, with no .part file", async ({ store }) => {
  const client = await store.client();
  const dir = await outDir(store, "deleted");
  let removal: Promise<unknown> | undefined;
  const get = client.get("/slow.bin", join(dir, "slow.bin"), {
    parallelPieces: 1,
    onProgress: (p) => {
      if (!removal && p.done > 100 * SLOW_PIECE_SIZE) removal = client.remove("/slow.bin").catch((err) => err);
    },
  });
  assert.is(await errorCode(() => get), "PIECE_UNAVAILABLE");
  assert.is(await removal, undefined, "the file was deleted");
  assert.equal(await readdir(dir), [], "no .part file left");
});

test("a get to a stream that fails fails with LOCAL_IO, not a crash", async ({ store }) => {
  const client = await store.client();
  await putBytes(store, client, "/to-stream.bin", randomBytes(8 * 64 * 1024), { replicas: 1, pieceSize: 64 * 1024 });
  const failing = new Writable({ write: (_chunk, _encoding, done) => done(new Error("no space left")) });
  assert.is(await errorCode(() => client.get("/to-stream.bin", failing)), "LOCAL_IO");
});

test.run();
