// The log as a feature: `ls`, `stat`, `get` and `replay` as the store was at a past point
// (a sequence, a time, or how long ago), `tail` filters, colour, and `tail --follow` through
// a nats-server restart. Everything through the CLI, against real processes.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as assert from "uvu/assert";
import { CLI, runCli, storeSuite, waitFor, type TestStore } from "./harness.js";

const test = storeSuite("travel", { workers: ["w1", "w2"] });

interface Logged {
  seq: number;
  subject: string;
  time: string;
  event: {
    type: string;
    fileId?: string;
    path?: string;
    workerId?: string;
    version?: number;
    pieces?: { sha256: string }[];
    sha256s?: string[];
    uploads?: { fileId: string }[];
  } | null;
  rejected?: string;
}

/** The audit log as `dfs tail --json ARGS` prints it. */
async function tail(store: TestStore, args: string[] = []): Promise<Logged[]> {
  const run = await runCli([...store.flags, "tail", "--json", ...args]);
  assert.is(run.code, 0, run.stderr);
  return run.stdout.split("\n").filter(Boolean).map((line) => JSON.parse(line) as Logged);
}

/** The history the tests travel through, written once. */
interface Story {
  a1: Buffer;
  a2: Buffer;
  b: Buffer;
  /** The commits of /t/a v1, of /t/b (after /t/a v2), and the delete of /t/b. */
  a1Committed: Logged;
  bCommitted: Logged;
  bDeleted: Logged;
  bFileId: string;
}

let story: Story | undefined;

async function tell(store: TestStore): Promise<Story> {
  if (story) return story;
  const client = await store.client();
  const a1 = randomBytes(10_000);
  const a2 = randomBytes(9_000);
  const b = randomBytes(12_000);
  for (const [name, bytes] of [["a1", a1], ["a2", a2], ["b", b]] as const) await writeFile(join(store.dir, name), bytes);
  await client.put(join(store.dir, "a1"), "/t/a", { replicas: 2, pieceSize: 4096 });
  await client.put(join(store.dir, "a2"), "/t/a", { replicas: 2, pieceSize: 4096 });
  const putB = await client.put(join(store.dir, "b"), "/t/b", { replicas: 2, pieceSize: 4096 });
  const bPieces = (await client.locate("/t/b")).pieces.map((p) => p.sha256);
  await client.remove("/t/b");
  // The workers are told to drop /t/b's pieces: then no live worker holds them.
  await waitFor("the pieces of /t/b dropped", async () => {
    const { state } = await store.replay();
    return bPieces.every((sha256) => (state.content.get(sha256)?.holders.size ?? 0) === 0);
  });
  const log = await tail(store);
  const find = (type: string, path: string, version?: number) =>
    log.find((e) => e.event?.type === type && e.event.path === path && (version === undefined || e.event.version === version))!;
  story = { a1, a2, b, a1Committed: find("FileCommitted", "/t/a", 1), bCommitted: find("FileCommitted", "/t/b"), bDeleted: find("FileDeleted", "/t/b"), bFileId: putB.fileId };
  return story;
}

/** The sequence a time stands for: the last message stamped at or before it. */
function lastSeqBy(log: Logged[], time: string): number {
  return log.filter((e) => e.time <= time).at(-1)?.seq ?? 0;
}

async function ls(store: TestStore, args: string[]): Promise<{ path: string; version: number }[]> {
  const run = await runCli([...store.flags, "ls", "--json", ...args]);
  assert.is(run.code, 0, run.stderr);
  return (JSON.parse(run.stdout) as { path: string; version: number }[]).map(({ path, version }) => ({ path, version }));
}

test("ls --at shows the store before and after an update and a delete, by sequence, time and how long ago", async ({ store }) => {
  const s = await tell(store);
  assert.equal(await ls(store, ["--at", String(s.a1Committed.seq)]), [{ path: "/t/a", version: 1 }]);
  assert.equal(await ls(store, ["--at", String(s.a1Committed.seq - 1)]), [], "just before the commit, nothing is visible");
  assert.equal(await ls(store, ["--at", String(s.bCommitted.seq)]), [{ path: "/t/a", version: 2 }, { path: "/t/b", version: 1 }]);
  assert.equal(await ls(store, ["--at", String(s.bDeleted.seq)]), [{ path: "/t/a", version: 2 }]);
  assert.equal(await ls(store, []), [{ path: "/t/a", version: 2 }], "now, from the master, the same shape");
  // A time stands for the last event stamped at or before it (to the millisecond: events
  // appended together may share one).
  const log = await tail(store);
  for (const at of [s.a1Committed, s.bCommitted, s.bDeleted]) {
    assert.equal(await ls(store, ["--at", at.time]), await ls(store, ["--at", String(lastSeqBy(log, at.time))]), `as of ${at.time}`);
  }
  assert.equal(await ls(store, ["--at", "1d"]), [], "a day ago the store was empty");
  assert.equal(await ls(store, ["--at", "0s"]), [{ path: "/t/a", version: 2 }]);
  const human = await runCli([...store.flags, "ls", "--at", String(s.a1Committed.seq)]);
  assert.match(human.stdout, /v1 .* \/t\/a\n$/);
});

test("a bad point is a coded usage error", async ({ store }) => {
  for (const [args, what] of [
    [["ls", "--at", "yesterday"], /^dfs: BAD_REQUEST: --at: not a point in the log: "yesterday"/],
    [["ls", "--at", "0"], /^dfs: BAD_REQUEST: --at: not a point/],
    [["stat", "/t/a", "--at", "2026-02-30T10:00Z"], /^dfs: BAD_REQUEST: --at: not a point/],
    [["tail", "--since", "10x"], /^dfs: BAD_REQUEST: --since: not a point/],
    [["replay", "--until", "-3"], /^dfs: BAD_REQUEST: --until: not a point/],
    [["ls", "--at", "999999"], /^dfs: BAD_REQUEST: the log ends at sequence \d+: there is no sequence 999999 yet/],
    [["tail", "--type", "FileCommitted,FileMoved"], /^dfs: BAD_REQUEST: no event type "FileMoved": the types are WorkerJoined, /],
    [["replay", "--check", "--until", "3"], /^dfs: BAD_REQUEST: --check compares/],
  ] as const) {
    const run = await runCli([...store.flags, ...args]);
    assert.is(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
    assert.match(run.stderr, what);
    assert.is(run.stderr.trim().split("\n").length, 1, "one line");
  }
});

test("stat --at shows a file as it was, with the versions readable then", async ({ store }) => {
  const s = await tell(store);
  const stat = async (at: number, extra: string[] = []) => {
    const run = await runCli([...store.flags, "stat", "/t/a", "--json", "--at", String(at), ...extra]);
    assert.is(run.code, 0, run.stderr);
    return JSON.parse(run.stdout) as { version: number; size: number; versionCount: number; versions: { version: number }[]; layout?: { workers: string[] }[] };
  };
  const then = await stat(s.a1Committed.seq, ["--pieces"]);
  assert.equal([then.version, then.size, then.versionCount, then.versions.map((v) => v.version)], [1, 10_000, 1, [1]]);
  assert.is(then.layout?.length, 3);
  for (const piece of then.layout!) assert.is(piece.workers.length, 2);
  const later = await stat(s.bDeleted.seq);
  assert.equal([later.version, later.size, later.versionCount, later.versions.map((v) => v.version)], [2, 9_000, 2, [1, 2]]);
  const gone = await runCli([...store.flags, "stat", "/t/b", "--at", String(s.bDeleted.seq)]);
  assert.is(gone.code, 3, gone.stderr);
  assert.match(gone.stderr, /^dfs: NOT_FOUND: no file \/t\/b/);
  const existed = await runCli([...store.flags, "stat", "/t/b", "--at", String(s.bCommitted.seq)]);
  assert.match(existed.stdout, /^path {6}\/t\/b\n/);
});

test("get --at reads an old version's bytes; cat --at too", async ({ store }) => {
  const s = await tell(store);
  const out = join(store.dir, "a-then");
  const get = await runCli([...store.flags, "get", "/t/a", out, "--at", String(s.a1Committed.seq)]);
  assert.is(get.code, 0, get.stderr);
  assert.ok((await readFile(out)).equals(s.a1), "the bytes of v1");
  assert.match(get.stderr, /read \/t\/a v1 into .*sha256 verified/);
  const named = await runCli([...store.flags, "get", "/t/a", join(store.dir, "a-v1"), "--at", s.bCommitted.time, "--version", "1"]);
  assert.is(named.code, 0, named.stderr);
  assert.ok((await readFile(join(store.dir, "a-v1"))).equals(s.a1), "a named version as of a time");
  const cat = spawn(process.execPath, [CLI, ...store.flags, "cat", "/t/a", "--at", String(s.bCommitted.seq)], { stdio: ["ignore", "pipe", "pipe"] });
  const chunks: Buffer[] = [];
  cat.stdout!.on("data", (c: Buffer) => chunks.push(c));
  const code = await new Promise<number | null>((resolve) => cat.once("exit", resolve));
  assert.is(code, 0);
  assert.ok(Buffer.concat(chunks).equals(s.a2), "cat as of /t/b's commit reads v2");
});

test("get --at of a deleted file whose pieces were dropped fails PIECES_DROPPED and writes nothing", async ({ store }) => {
  const s = await tell(store);
  const dir = join(store.dir, "dropped");
  await mkdir(dir);
  const run = await runCli([...store.flags, "get", "/t/b", `${dir}/`, "--at", String(s.bCommitted.seq)]);
  assert.is(run.code, 1, run.stderr);
  assert.match(run.stderr, /^dfs: PIECES_DROPPED: \/t\/b v1 as of sequence \d+ can no longer be read: 3 of its 3 pieces are held by no live worker/);
  assert.is(run.stdout, "");
  const left = await readdir(dir);
  assert.equal(left, [], "no file, no temporary file");
  const after = await runCli([...store.flags, "get", "/t/b", join(store.dir, "b-now")]);
  assert.is(after.code, 3, "and now it is simply not there");
});

test("replay --until prints the table at that point", async ({ store }) => {
  const s = await tell(store);
  const text = await runCli([...store.flags, "replay", "--until", String(s.bCommitted.seq)]);
  assert.is(text.code, 0, text.stderr);
  assert.match(text.stdout, new RegExp(`^replayed ${s.bCommitted.seq} events`));
  assert.match(text.stdout, /^ {2}\/t\/a {2}v1:committed v2:committed$/m);
  assert.match(text.stdout, /^ {2}\/t\/b {2}v1:committed$/m);
  const json = await runCli([...store.flags, "replay", "--json", "--until", s.a1Committed.time]);
  const projection = JSON.parse(json.stdout) as { lastSeq: number; files: { path: string }[] };
  assert.is(projection.lastSeq, lastSeqBy(await tail(store), s.a1Committed.time));
  assert.equal(projection.files.map((f) => f.path), ["/t/a"]);
});

test("tail filters: path, type, worker, since and until, by sequence and by time", async ({ store }) => {
  const s = await tell(store);
  const all = await tail(store);
  const byPath = await tail(store, ["--path", "/t/b"]);
  assert.ok(byPath.length >= 5);
  const bPieces = byPath.find((e) => e.event?.type === "FileCreated")!.event!.pieces!.map((p) => p.sha256);
  for (const e of byPath) {
    if (e.event?.fileId) assert.is(e.event.fileId, s.bFileId, `${e.event.type} is /t/b's`);
    else if (e.event?.uploads) assert.ok(e.event.uploads.some((u) => u.fileId === s.bFileId), `${e.event.type} assigns /t/b`);
    else assert.ok(e.event?.type === "PiecesDropped" && e.event.sha256s!.every((h) => bPieces.includes(h)), `${e.event?.type} drops /t/b's bytes`);
  }
  assert.equal(byPath[0]!.event?.type, "FileCreated");
  assert.ok(byPath.some((e) => e.event?.type === "UploadsAssigned"), "events without a path, by their uploads' file ids");
  const afterDelete = byPath.slice(byPath.findIndex((e) => e.event?.type === "FileDeleted") + 1);
  assert.equal(new Set(afterDelete.map((e) => e.event?.type)), new Set(["PiecesDropped"]), "then the drops of its bytes, which name no file");
  assert.equal(new Set(afterDelete.map((e) => e.event?.workerId)), new Set(["w1", "w2"]), "on each worker that held them");
  assert.equal(await tail(store, ["--path", "/t/bb"]), []);
  const bytesEvents = new Set(["PiecesDropped", "CopiesOrdered", "ReplicaStored", "CopyFailed", "ReplicasLost"]);
  assert.is((await tail(store, ["--path", "/t"])).length, all.filter((e) => e.event?.fileId || e.event?.uploads || bytesEvents.has(e.event?.type ?? "")).length);

  const commits = await tail(store, ["--type", "FileCommitted,FileDeleted"]);
  assert.equal(commits.map((e) => `${e.event?.type} ${e.event?.path}`), ["FileCommitted /t/a", "FileCommitted /t/a", "FileCommitted /t/b", "FileDeleted /t/b"]);

  const w1 = await tail(store, ["--worker", "w1"]);
  assert.ok(w1.length > 0);
  for (const e of w1) assert.is(e.event?.workerId, "w1");
  assert.ok(w1.some((e) => e.event?.type === "WorkerJoined") && w1.some((e) => e.event?.type === "UploadsAssigned"));
  assert.equal(await tail(store, ["--worker", "w1", "--type", "WorkerJoined", "--path", "/t"]), [], "filters combine");

  const between = await tail(store, ["--since", String(s.a1Committed.seq), "--until", String(s.bCommitted.seq)]);
  assert.equal(
    between.map((e) => e.seq),
    Array.from({ length: s.bCommitted.seq - s.a1Committed.seq + 1 }, (_, i) => s.a1Committed.seq + i),
  );
  const byTime = await tail(store, ["--since", s.a1Committed.time, "--until", s.bCommitted.time]);
  const stampedBetween = all.filter((e) => e.time >= s.a1Committed.time && e.time <= s.bCommitted.time);
  assert.equal(byTime.map((e) => e.seq), stampedBetween.map((e) => e.seq), "the events stamped between those times");
  assert.is((await tail(store, ["--since", "1h"])).length, all.length);
  assert.equal(await tail(store, ["--since", "1h", "--until", "1d"]), []);
});

test("tail --path shows the drop of bytes two paths share under either path, and under no other", async ({ store }) => {
  await tell(store);
  const client = await store.client();
  await writeFile(join(store.dir, "shared"), randomBytes(5_000));
  for (const path of ["/s/x", "/s/y"]) await client.put(join(store.dir, "shared"), path, { replicas: 2, pieceSize: 4096 });
  const pieces = (await client.locate("/s/x")).pieces.map((p) => p.sha256);
  await client.remove("/s/x");
  await client.remove("/s/y");
  await waitFor("the shared pieces dropped", async () => {
    const { state } = await store.replay();
    return pieces.every((sha256) => !state.content.has(sha256)) && state.dropsOwed.size === 0;
  });
  const dropsUnder = async (prefix: string) =>
    (await tail(store, ["--path", prefix, "--type", "PiecesDropped"])).filter((e) => e.event!.sha256s!.some((h) => pieces.includes(h)));
  const underX = await dropsUnder("/s/x");
  assert.equal(new Set(underX.map((e) => e.event?.workerId)), new Set(["w1", "w2"]), "every drop of the shared bytes, under /s/x");
  assert.equal(await dropsUnder("/s/y"), underX, "and the same under /s/y");
  assert.equal(await dropsUnder("/t"), [], "not under a path that never held those bytes");
});

test("tail colours the type on request, never when piped or with NO_COLOR", async ({ store }) => {
  await tell(store);
  const plain = await runCli([...store.flags, "tail"]);
  assert.not.match(plain.stdout, /\x1b\[/);
  const coloured = await runCli([...store.flags, "tail", "--color", "always"]);
  assert.match(coloured.stdout, /\x1b\[32mFileCommitted\s*\x1b\[0m/);
  assert.match(coloured.stdout, /\x1b\[33mFileDeleted\s*\x1b\[0m/);
  const noColor = await runCli([...store.flags, "tail", "--color", "auto"], { env: { NO_COLOR: "1" } });
  assert.not.match(noColor.stdout, /\x1b\[/);
  const bad = await runCli([...store.flags, "tail", "--color", "sometimes"]);
  assert.is(bad.code, 2);
});

test("the --json shapes are the README's", async ({ store }) => {
  await tell(store);
  const json = async (args: string[]) => {
    const run = await runCli([...store.flags, ...args, "--json"]);
    assert.is(run.code, 0, run.stderr);
    return JSON.parse(run.stdout) as Record<string, unknown> & Record<string, unknown>[];
  };
  const keys = (value: unknown) => Object.keys(value as object).sort();
  const entry = ["committedAt", "createdAt", "fileId", "path", "pieceSize", "pieces", "replicas", "sha256", "size", "version", "versionCount"];
  assert.equal(keys((await json(["ls"]))[0]), entry);
  const stat = await json(["stat", "/t/a", "--pieces"]);
  assert.equal(keys(stat), [...entry, "layout", "versions"].sort());
  assert.equal(keys((stat.versions as unknown[])[0]), ["committedAt", "createdAt", "pieceSize", "pieces", "replicas", "sha256", "size", "version"]);
  assert.equal(keys((stat.layout as unknown[])[0]), ["index", "sha256", "size", "workers"]);
  const history = await json(["history", "/t/a"]);
  assert.equal(keys(history[0]), ["events", "fileId", "sha256", "size", "status", "version"]);
  assert.equal(keys((history[0]!.events as unknown[])[0]), ["seq", "time", "type"]);
  assert.equal(keys((await tail(store))[0]), ["event", "seq", "subject", "time"]);
  const replay = await json(["replay"]);
  assert.equal(keys(replay), ["content", "dropsOwed", "files", "lastSeq", "rejected", "retention", "workers"]);
  assert.equal(keys((replay.workers as unknown[])[0]), ["assignedBytes", "joinedAt", "live", "workerId"]);
  assert.equal(keys((replay.files as unknown[])[0]), ["deleted", "fileId", "lastVersion", "path", "versions"]);
  assert.equal(keys((replay.content as unknown[])[0]), ["assigned", "copying", "failedAt", "holders", "refs", "sha256", "size", "wanted"]);
  const workers = await json(["workers"]);
  assert.equal(keys(workers[0]), ["assignedBytes", "live", "status", "workerId"]);
  assert.equal(keys(workers[0]!.status), ["at", "boot", "bytes", "freeBytes", "pieces", "workerId"]);
  const status = await json(["status"]);
  assert.equal(keys(status), ["copiesInFlight", "dropsOwed", "lastSeq", "pieces", "problems", "rejected", "retention", "uploadsPending", "workers"]);
  assert.equal(keys(status.pieces), ["excess", "healthy", "total", "unavailable", "underReplicated", "unplaceable"]);
  assert.equal(keys((status.workers as unknown[])[0]), ["bytes", "copying", "freeBytes", "live", "pieces", "workerId"]);
});

/** `dfs tail --follow --json ARGS`, running: what it printed so far, and how it ended (bounded). */
function follow(store: TestStore, args: string[] = []) {
  const child = spawn(process.execPath, [CLI, ...store.flags, "tail", "--follow", "--json", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  return {
    printed: () => stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l) as Logged),
    stderr: () => stderr,
    exit: (withinMs: number) => Promise.race([exited, new Promise<string>((r) => setTimeout(() => r("still running"), withinMs))]),
    kill: () => child.kill("SIGKILL"),
  };
}

/** `dfs tail --follow --json ARGS` until it exits by itself (bounded): its status and what it printed. */
async function followUntilExit(store: TestStore, args: string[], meanwhile: () => Promise<void>) {
  const tailing = follow(store, args);
  try {
    await meanwhile();
    const code = await tailing.exit(30_000);
    return { code, stderr: tailing.stderr(), printed: tailing.printed() };
  } finally {
    tailing.kill();
  }
}

test("tail --follow --until a point still to come ends there, by sequence and by time", async ({ store }) => {
  await tell(store);
  const last = (await tail(store)).at(-1)!.seq;
  const client = await store.client();
  await writeFile(join(store.dir, "d"), "a few more events");
  const bySeq = await followUntilExit(store, ["--since", String(last), "--until", String(last + 2)], async () => {
    await client.put(join(store.dir, "d"), "/t/d", { replicas: 1 });
  });
  assert.is(bySeq.code, 0, bySeq.stderr);
  assert.equal(bySeq.printed.map((e) => e.seq), [last, last + 1, last + 2]);
  const soon = new Date(Date.now() + 2_000).toISOString();
  const byTime = await followUntilExit(store, ["--since", "0s", "--until", soon], async () => undefined);
  assert.is(byTime.code, 0, byTime.stderr);
  for (const e of byTime.printed) assert.ok(e.time <= soon, `${e.time} is not after ${soon}`);
});

test("tail --follow rides through a nats-server restart without repeating or skipping, and says so when the server stays away", async ({ store }) => {
  await tell(store);
  const tailing = follow(store);
  try {
    const printed = tailing.printed;
    const before = (await tail(store)).at(-1)!.seq;
    await waitFor("tail to print the log so far", () => printed().some((e) => e.seq === before));
    await store.restartServer();
    const client = await store.client();
    await writeFile(join(store.dir, "c"), "after the restart");
    await waitFor("a put after the restart", () => client.put(join(store.dir, "c"), "/t/c", { replicas: 1 }).then(() => true), 30_000, 500);
    await waitFor("tail to print the commit after the restart", () => printed().some((e) => e.event?.type === "FileCommitted" && e.event.path === "/t/c"), 30_000);
    const seqs = printed().map((e) => e.seq);
    assert.equal(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1), "every sequence once, in order");

    // A server that does not come back: one coded line, a non-zero status.
    await store.server.stop();
    const code = await tailing.exit(60_000);
    assert.is(code, 1, `exit status; stderr: ${tailing.stderr()}`);
    assert.match(tailing.stderr(), /^dfs: UNAVAILABLE: lost the NATS server after sequence \d+, and it did not come back in time/);
    assert.is(tailing.stderr().trim().split("\n").length, 1);
  } finally {
    tailing.kill();
    await store.restartServer();
  }
});

test.run();
