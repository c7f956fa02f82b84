// `dfs put -`: stdin streamed to the workers through a window of pieces in memory, declared
// (extend) as they are read and sealed at the end, never written to the local disk.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { VersionHistory } from "../src/replay.js";
import { call } from "../src/rpc.js";
import { CLI, TestStore, errorCode, runCli, tempDir, waitFor } from "./harness.js";

/** An uploader silent this long before the end of its stream is given up by the master (the default is 30 s). */
const STREAM_TIMEOUT_MS = 1_500;

const test = suite<{ store: TestStore }>("stream", {} as { store: TestStore });
test.before(async (ctx) => {
  ctx.store = await TestStore.start("stream");
  ctx.store.startMaster(3_000, ["--stream-timeout", String(STREAM_TIMEOUT_MS)]);
  await ctx.store.startWorker("w1");
  await ctx.store.startWorker("w2");
  await ctx.store.waitForLiveWorkers(2);
});
test.after(async (ctx) => {
  await ctx.store?.stop();
});

const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

async function history(store: TestStore, path: string): Promise<VersionHistory[]> {
  const run = await runCli([...store.flags, "history", path, "--json"]);
  if (run.code !== 0) throw new Error(run.stderr);
  return JSON.parse(run.stdout) as VersionHistory[];
}

/** `dfs put - REMOTE` as a child whose stdin the test writes; TMPDIR points at `tmp`. */
function streamingPut(store: TestStore, remote: string, tmp: string, args: string[] = []): { put: ChildProcessWithoutNullStreams; exited: Promise<number | null>; stderr: () => string } {
  const put = spawn(process.execPath, [CLI, ...store.flags, "put", "-", remote, ...args], { env: { ...process.env, TMPDIR: tmp }, stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  put.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => put.once("exit", (code) => resolve(code)));
  return { put, exited, stderr: () => stderr };
}

const within = <T>(p: Promise<T>, ms: number) => Promise.race([p, new Promise<string>((r) => setTimeout(() => r(`still running after ${ms} ms`), ms))]);

test("put - streams a pipe of many pieces (more than its window) byte-exact, and writes nothing under TMPDIR", async ({ store }) => {
  const tmp = await tempDir("stream-tmp");
  const bytes = randomBytes(10 * 1024 * 1024 + 123); // 161 pieces of 64 KiB: the window holds 64
  const { put, exited, stderr } = streamingPut(store, "/stdin/ten.bin", tmp, ["--replicas", "2", "--piece-size", "64KiB"]);
  let stdout = "";
  put.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
  try {
    put.stdin.write(bytes.subarray(0, 4 * 1024 * 1024));
    // Mid-stream: pieces are stored while stdin is still open, and nothing was spooled.
    await waitFor("pieces stored mid-stream", async () => (await history(store, "/stdin/ten.bin"))[0]?.events.some((e) => e.type === "PieceStored"), 20_000, 200);
    assert.equal(await readdir(tmp), [], "nothing under TMPDIR while the stream is open");
    const [open] = await history(store, "/stdin/ten.bin");
    assert.is(open!.status, "pending", "an unsealed version is pending");
    const ls = await runCli([...store.flags, "ls", "/stdin/ten.bin", "--json"]);
    assert.equal(JSON.parse(ls.stdout), [], "an unsealed version is not listed");
    put.stdin.end(bytes.subarray(4 * 1024 * 1024));
    assert.is(await within(exited, 60_000), 0, stderr());
  } finally {
    put.kill("SIGKILL");
  }
  assert.match(stdout, new RegExp(`^stored /stdin/ten\\.bin v1: 10\\.0 MiB in 161 pieces × 2 replicas .*sha256 ${sha256(bytes)}\\n$`));
  assert.equal(await readdir(tmp), [], "nothing under TMPDIR afterwards either");
  const [sealed] = await history(store, "/stdin/ten.bin");
  assert.is(sealed!.status, "committed");
  assert.is(sealed!.size, bytes.length);
  assert.is(sealed!.sha256, sha256(bytes));
  assert.ok(sealed!.events.some((e) => e.type === "FileSealed"));
  const back = join(tmp, "..", `${tmp.split("/").at(-1)}-back`);
  const get = await runCli([...store.flags, "get", "/stdin/ten.bin", back]);
  assert.is(get.code, 0, get.stderr);
  assert.is(sha256(await readFile(back)), sha256(bytes));
});

test("put - of empty stdin stores a 0-byte file", async ({ store }) => {
  const run = await runCli([...store.flags, "put", "-", "/stdin/empty", "--replicas", "1"], { stdin: Buffer.alloc(0) });
  assert.is(run.code, 0, run.stderr);
  assert.match(run.stdout, /^stored \/stdin\/empty v1: 0 B in 0 pieces × 1 replica .*sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n$/);
  const cat = await runCli([...store.flags, "cat", "/stdin/empty"]);
  assert.is(cat.code, 0, cat.stderr);
  assert.is(cat.stdout, "");
});

test("put - of a short stdin (one partial piece) at the default piece size", async ({ store }) => {
  const run = await runCli([...store.flags, "put", "-", "/stdin/short.txt", "--replicas", "2"], { stdin: Buffer.from("from a pipe\n") });
  assert.is(run.code, 0, run.stderr);
  assert.match(run.stdout, /^stored \/stdin\/short\.txt v1: 12 B in 1 piece × 2 replicas/);
  assert.is((await runCli([...store.flags, "cat", "/stdin/short.txt"])).stdout, "from a pipe\n");
});

test("a stream whose input is quiet for longer than the master's stream timeout, its client alive, still commits", async ({ store }) => {
  const tmp = await tempDir("stream-quiet");
  const bytes = randomBytes(3 * 64 * 1024 + 5);
  const { put, exited, stderr } = streamingPut(store, "/stdin/quiet.bin", tmp, ["--replicas", "1", "--piece-size", "64KiB"]);
  try {
    put.stdin.write(bytes.subarray(0, 2 * 64 * 1024));
    await waitFor("two pieces stored", async () => (await history(store, "/stdin/quiet.bin"))[0]?.events.filter((e) => e.type === "PieceStored").length === 2, 20_000, 200);
    // Quiet input for twice the master's timeout: the client says it is still there meanwhile.
    await new Promise((resolve) => setTimeout(resolve, 2 * STREAM_TIMEOUT_MS));
    put.stdin.end(bytes.subarray(2 * 64 * 1024));
    assert.is(await within(exited, 30_000), 0, stderr());
  } finally {
    put.kill("SIGKILL");
  }
  const [version] = await history(store, "/stdin/quiet.bin");
  assert.is(version!.status, "committed");
  assert.is(version!.sha256, sha256(bytes));
});

test("a client killed (SIGKILL) mid-stream leaves a version never visible, abandoned by the master", async ({ store }) => {
  const tmp = await tempDir("stream-kill");
  const { put, exited } = streamingPut(store, "/stdin/killed.bin", tmp, ["--replicas", "1", "--piece-size", "64KiB"]);
  try {
    // Four whole pieces, then silence: every piece declared is stored, the stream is not sealed.
    put.stdin.write(randomBytes(4 * 64 * 1024));
    await waitFor("four pieces stored", async () => (await history(store, "/stdin/killed.bin"))[0]?.events.filter((e) => e.type === "PieceStored").length === 4, 20_000, 200);
    put.kill("SIGKILL");
    await within(exited, 10_000);
  } finally {
    put.kill("SIGKILL");
  }
  const [given] = await waitFor("the upload abandoned", async () => {
    const versions = await history(store, "/stdin/killed.bin");
    return versions[0]?.status === "abandoned" && versions;
  }, 20_000, 250);
  assert.match(given!.reason!, /^TIMEOUT: the uploader said nothing for \d+ s before the end of its stream$/);
  assert.ok(!given!.events.some((e) => e.type === "FileSealed" || e.type === "FileCommitted"));
  const shown = await runCli([...store.flags, "history", "/stdin/killed.bin"]);
  assert.match(shown.stdout, /^\S+ {2}v1 {2}abandoned {2}streamed, not sealed {2}\(TIMEOUT: the uploader said nothing/);
  const get = await runCli([...store.flags, "get", "/stdin/killed.bin", join(tmp, "never")]);
  assert.is(get.code, 3, get.stderr);
  assert.match(get.stderr, /^dfs: NOT_FOUND: /);
});

test("a client stopped (SIGSTOP) past the stream timeout fails with one coded line once continued, and commits nothing", async ({ store }) => {
  const tmp = await tempDir("stream-stop");
  const { put, exited, stderr } = streamingPut(store, "/stdin/stopped.bin", tmp, ["--replicas", "1", "--piece-size", "64KiB"]);
  let stdout = "";
  put.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
  try {
    put.stdin.write(randomBytes(2 * 64 * 1024));
    await waitFor("two pieces stored", async () => (await history(store, "/stdin/stopped.bin"))[0]?.events.filter((e) => e.type === "PieceStored").length === 2, 20_000, 200);
    put.kill("SIGSTOP");
    await waitFor("the stopped uploader's stream abandoned", async () => (await history(store, "/stdin/stopped.bin"))[0]?.status === "abandoned", 20_000, 250);
    put.kill("SIGCONT");
    // It reads on, as if nothing happened: the next piece and the end of its input.
    put.stdin.end(randomBytes(64 * 1024 + 1));
    assert.is(await within(exited, 30_000), 1, stderr());
  } finally {
    put.kill("SIGKILL");
  }
  assert.match(stderr(), /^dfs: UPLOAD_ABANDONED: upload of \/stdin\/stopped\.bin (failed|is abandoned): TIMEOUT: the uploader said nothing for \d+ s before the end of its stream\n$/);
  assert.is(stdout, "");
  const [given] = await history(store, "/stdin/stopped.bin");
  assert.is(given!.status, "abandoned");
  assert.ok(!given!.events.some((e) => e.type === "FileSealed" || e.type === "FileCommitted"));
});

test("Ctrl-C mid-stream exits 130 and abandons the version at once", async ({ store }) => {
  const tmp = await tempDir("stream-interrupt");
  const { put, exited, stderr } = streamingPut(store, "/stdin/never.bin", tmp, ["--replicas", "1", "--piece-size", "64KiB"]);
  try {
    put.stdin.write(randomBytes(64 * 1024 + 1));
    await waitFor("the version created", async () => (await history(store, "/stdin/never.bin")).length === 1, 20_000, 200);
    put.kill("SIGINT");
    assert.is(await within(exited, 20_000), 130, stderr());
    assert.match(stderr(), /^dfs: INTERRUPTED: upload of \/stdin\/never\.bin was interrupted \(SIGINT\)\n$/);
  } finally {
    put.kill("SIGKILL");
  }
  const [given] = await history(store, "/stdin/never.bin");
  assert.is(given!.status, "abandoned");
  assert.equal(await readdir(tmp), []);
});

test("another client that learns a stream's upload id (the log, history and its pull subjects show it) can neither seal nor extend it", async ({ store }) => {
  const tmp = await tempDir("stream-forged");
  const spy = await store.connect("client");
  const ids = new Set<string>();
  // Another connection of the uploader's own user: the only one that may watch its pulls.
  spy.subscribe(store.cat.pullAll("client", "*"), { callback: (_err, msg) => void ids.add(store.cat.parsePull(msg.subject)!.uploadId) });
  await spy.flush();
  const { put, exited, stderr } = streamingPut(store, "/stdin/forged.bin", tmp, ["--replicas", "2", "--piece-size", "64KiB"]);
  let stdout = "";
  put.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
  const head = randomBytes(3 * 64 * 1024);
  const tail = randomBytes(1000);
  try {
    put.stdin.write(head);
    const [uploadId] = await waitFor("the victim's upload id seen on a pull subject", () => ids.size > 0 && [...ids], 20_000, 50);
    // The id is all the spy knows: sent as the id, and as a key, to seal the stream short with its own digest.
    const forged = { uploadId, uploadKey: uploadId, size: head.length, sha256: sha256(Buffer.from("forged")) };
    assert.is(await errorCode(() => call(spy, store.cat.masterRpc("seal"), forged)), "NOT_FOUND", "a seal naming the stream by its id");
    assert.is(await errorCode(() => call(spy, store.cat.masterRpc("extend"), { uploadId, uploadKey: uploadId, pieces: [] })), "NOT_FOUND", "a keepalive naming the stream by its id");
    const recreate = { uploadId, uploadKey: "k".repeat(43), uploader: "client", path: "/stdin/forged.bin", streamed: true, pieceSize: 64 * 1024, replicas: 2 };
    assert.is(await errorCode(() => call(spy, store.cat.masterRpc("create"), recreate)), "BAD_REQUEST", "a streamed create whose key is not its id's");
    put.stdin.end(tail);
    assert.is(await within(exited, 60_000), 0, stderr());
  } finally {
    put.kill("SIGKILL");
  }
  const whole = sha256(Buffer.concat([head, tail]));
  assert.match(stdout, new RegExp(`sha256 ${whole}\\n$`));
  const [stored] = await history(store, "/stdin/forged.bin");
  assert.equal({ status: stored!.status, size: stored!.size, sha256: stored!.sha256 }, { status: "committed", size: head.length + tail.length, sha256: whole });
});

test("replay of a log with streamed puts agrees with the live master", async ({ store }) => {
  const check = await runCli([...store.flags, "replay", "--check"]);
  assert.is(check.code, 0, check.stderr + check.stdout);
});

test.run();
