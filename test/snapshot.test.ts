// Snapshots shorten restarts and are never the truth: the table a snapshot holds is exactly
// the replay of the log up to its sequence, a master starts from it and folds only the rest,
// a snapshot that does not check out is ignored, and `dfs replay --check` compares it.
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Encoder } from "cbor-x";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { encode } from "../src/codec.js";
import { parseLogPoint } from "../src/log-point.js";
import { latestSnapshotHead, readLatestSnapshot, writeSnapshot } from "../src/master/snapshots.js";
import { list, locate, stat } from "../src/queries.js";
import { encodeTable } from "../src/snapshot.js";
import { stateDigest } from "../src/state.js";
import { provisionStreams } from "../streams/provision.js";
import { TestStore, runCli, tempDir, waitFor } from "./harness.js";

const test = suite<{ store: TestStore }>("snapshots", {} as { store: TestStore });
const SNAPSHOT_EVERY = 15;

test.before(async (ctx) => {
  ctx.store = await TestStore.start("snapshots");
  ctx.store.startMaster(3_000, ["--snapshot-every", String(SNAPSHOT_EVERY)]);
  for (const id of ["s1", "s2"]) await ctx.store.startWorker(id);
  await ctx.store.waitForLiveWorkers(2);
});

test.after(async (ctx) => {
  await ctx.store?.stop();
});

test("the leader writes snapshots that hold exactly the table the log gives at their sequence", async ({ store }) => {
  const client = await store.client();
  const dir = await tempDir("snap");
  for (let i = 0; i < 6; i++) {
    const local = join(dir, `f${i}`);
    await writeFile(local, `file ${i} `.repeat(100 + i));
    await client.put(local, `/snap/f${i % 4}`, { replicas: 2 });
  }
  await client.remove("/snap/f0");
  const nc = await store.connect("master", undefined, { streams: true });
  await waitFor("a snapshot past the deletes", async () => ((await latestSnapshotHead(nc, store.cat))?.seq ?? 0) > SNAPSHOT_EVERY * 2);
  const snapshot = (await readLatestSnapshot(nc, store.cat))!;
  const replayed = (await store.replay(snapshot.head.seq)).state;
  // Every map, set and index of the table, not only what the digest covers.
  assert.equal(snapshot.state, replayed);
  assert.is(snapshot.head.digest, stateDigest(replayed));
  // Only the latest snapshot is kept.
  const jsm = await jetstreamManager(await store.connect("admin"));
  const subjects = (await jsm.streams.info(store.cat.snapshotStream, { subjects_filter: store.cat.snapshotChunks("*") })).state.subjects ?? {};
  assert.equal(Object.keys(subjects), snapshot.head.chunks > 0 ? [store.cat.snapshotChunks(snapshot.head.snapshotId)] : []);
});

test("a master killed and started again starts from the snapshot and agrees with the log", async ({ store }) => {
  const head = (await latestSnapshotHead(await store.connect("master", undefined, { streams: true }), store.cat))!;
  await store.role("master").kill();
  const master = store.startMaster(3_000, ["--snapshot-every", String(SNAPSHOT_EVERY)]);
  await waitFor("the new master to start from the snapshot", async () => master.output().includes(`starting from the snapshot at sequence `));
  const auditor = await store.client("auditor");
  await waitFor("the new master answers", async () => (await auditor.masterState().catch(() => undefined)) !== undefined);
  const live = await auditor.masterState();
  assert.ok(live.lastSeq >= head.seq);
  assert.is(live.digest, stateDigest((await store.replay(live.lastSeq)).state));
  const check = await runCli(["replay", "--check", ...store.flags]);
  assert.is(check.code, 0, check.stderr);
  assert.match(check.stderr, /replay matches the live master at sequence \d+/);
  assert.match(check.stderr, /replay matches the snapshot at sequence \d+/);
});

test("ls, stat and get --at start from the latest snapshot when it covers a point before, and answer as the whole log does", async ({ store }) => {
  const client = await store.client();
  const dir = await tempDir("snap-at");
  await writeFile(join(dir, "late"), "put after the snapshot");
  await client.put(join(dir, "late"), "/snap/late", { replicas: 1 });
  const master = await store.connect("master", undefined, { streams: true });
  const head = (await latestSnapshotHead(master, store.cat))!;
  const last = (await store.replay()).state.lastSeq;
  assert.ok(head.seq > SNAPSHOT_EVERY && head.seq < last, `a snapshot at ${head.seq}, events after it up to ${last}`);
  const json = async (args: string[]) => {
    const run = await runCli([...store.flags, ...args, "--json"]);
    assert.is(run.code, 0, `${args.join(" ")}: ${run.stderr}`);
    return JSON.parse(run.stdout) as unknown;
  };
  const plain = (value: unknown) => JSON.parse(JSON.stringify(value)) as unknown;
  // Before the snapshot (folded from the first event), at it, after it (from it), and now by time.
  for (const at of [String(SNAPSHOT_EVERY), String(head.seq), String(last), "0s"]) {
    const whole = (await store.replay("seq" in parseLogPoint(at) ? Number(at) : last)).state;
    assert.equal(await json(["ls", "--at", at]), plain(list(whole)), `ls --at ${at}`);
    if (at !== String(SNAPSHOT_EVERY)) {
      assert.equal(await json(["stat", "/snap/f1", "--pieces", "--at", at]), plain({ ...stat(whole, "/snap/f1"), layout: locate(whole, "/snap/f1").pieces }), `stat --at ${at}`);
    }
  }
  const got = await runCli([...store.flags, "get", "/snap/f1", join(dir, "f1"), "--at", String(last)]);
  assert.is(got.code, 0, got.stderr);
  assert.is(await readFile(join(dir, "f1"), "utf8"), "file 5 ".repeat(105));

  // The snapshot is what they start from: one that says otherwise (as only a master or the
  // admin can write it) changes the answer after its sequence, not before.
  const snapshot = (await readLatestSnapshot(master, store.cat))!;
  const forged = (await readLatestSnapshot(master, store.cat))!.state; // a copy of the table to change
  forged.files.get(forged.paths.get("/snap/f2")!)!.deleted = true; // the snapshot keeps files; its decoder makes the paths
  await writeSnapshot(master, store.cat, await encodeTable(forged), { seq: head.seq, digest: head.digest, files: head.files });
  try {
    const paths = async (at: string) => ((await json(["ls", "--at", at])) as { path: string }[]).map((f) => f.path);
    assert.not.ok((await paths(String(last))).includes("/snap/f2"), "from the snapshot");
    assert.ok((await paths(String(head.seq - 1))).includes("/snap/f2"), "before it, from the first event");
    // A time before the snapshot's last message was stamped: from the first event too.
    const logged = (await runCli([...store.flags, "tail", "--json", "--until", String(head.seq)])).stdout.trim().split("\n").map((l) => JSON.parse(l) as { seq: number; time: string });
    const before = logged.filter((m) => m.time < logged.at(-1)!.time).at(-1)!;
    assert.equal(await json(["ls", "--at", before.time]), plain(list((await store.replay(before.seq)).state)), `ls --at ${before.time}`);
  } finally {
    await writeSnapshot(master, store.cat, await encodeTable(snapshot.state), { seq: head.seq, digest: head.digest, files: head.files });
  }
});

test("a snapshot that does not check out is ignored: the master folds the whole log", async ({ store }) => {
  const nc = await store.connect("master", undefined, { streams: true });
  const head = (await latestSnapshotHead(nc, store.cat))!;
  // A head naming the latest chunks with a wrong hash and digest (as a torn or tampered write would).
  await jetstream(nc).publish(store.cat.snapshotHead(), encode({ ...head, sha256: "0".repeat(64), digest: "f".repeat(64) }));
  await store.role("master").kill();
  const master = store.startMaster(3_000, ["--snapshot-every", "0"]);
  await waitFor("the master to refuse the snapshot", async () => master.output().includes("not starting from the latest snapshot"));
  assert.match(master.output(), /do not match their SHA-256/);
  const auditor = await store.client("auditor");
  await waitFor("the master answers", async () => (await auditor.masterState().catch(() => undefined)) !== undefined);
  const live = await auditor.masterState();
  assert.is(live.digest, stateDigest((await store.replay(live.lastSeq)).state));
  // And the check says the snapshot is wrong.
  const check = await runCli(["replay", "--check", ...store.flags]);
  assert.is(check.code, 1);
  assert.match(check.stderr, /replay differs from the snapshot at sequence \d+/);
});

test("a snapshot whose table does not hold together (its SHA-256 right) is refused by the master and by --at, never folded on", async ({ store }) => {
  const nc = await store.connect("master", undefined, { streams: true });
  const good = (await readLatestSnapshot(nc, store.cat).catch(() => undefined)) ?? { state: (await store.replay()).state };
  // Written as a writer with a bug, or anyone who may write the snapshot stream, could: every
  // piece index past the most a version has (one such made an array whose first walk never ended).
  const cbor = new Encoder({ useRecords: false, structuredClone: false });
  const table = cbor.decode(await encodeTable(good.state)) as { pieces: { index: ArrayLike<number> } };
  // At 32 bits: the encoder writes the column as narrow as its values allow.
  table.pieces.index = Uint32Array.from(table.pieces.index, (index) => index + 4_294_967_000);
  const seq = good.state.lastSeq;
  await writeSnapshot(nc, store.cat, cbor.encode(table), { seq, digest: stateDigest(good.state), files: good.state.paths.size });
  await store.role("master").kill();
  const master = store.startMaster(3_000, ["--snapshot-every", "0"]);
  await waitFor("the master to refuse the snapshot", async () => master.output().includes("not starting from the latest snapshot"));
  assert.match(master.output(), /snapshot table: pieces\.index holds \d+/);
  const auditor = await store.client("auditor");
  await waitFor("the master answers", async () => (await auditor.masterState().catch(() => undefined)) !== undefined);
  const live = await auditor.masterState();
  assert.is(live.digest, stateDigest((await store.replay(live.lastSeq)).state));
  const at = await runCli([...store.flags, "ls", "--at", String(seq), "--json"]);
  assert.is(at.code, 0, at.stderr);
  assert.equal(JSON.parse(at.stdout), JSON.parse(JSON.stringify(list((await store.replay(seq)).state))));
});

test("with two masters the follower writes the snapshots: the leader's event loop never stops for one", async ({ store }) => {
  await store.role("master").kill();
  const every = ["--snapshot-every", String(SNAPSHOT_EVERY)];
  const leader = store.startMaster(3_000, every);
  await waitFor("the first master to lead", async () => leader.output().includes("leading (master"));
  const follower = store.startMaster(3_000, every);
  await waitFor("the second master to follow the log", async () => follower.output().includes("serving on"));
  const [leaderBefore, followerBefore] = [leader.output().length, follower.output().length];
  const client = await store.client();
  const dir = await tempDir("snap-two");
  for (let i = 0; i < 10; i++) {
    const local = join(dir, `g${i}`);
    await writeFile(local, `two masters ${i}`);
    await client.put(local, `/two/g${i}`, { replicas: 2 });
  }
  await waitFor("a snapshot by the follower", async () => follower.output().slice(followerBefore).includes("snapshot at sequence"));
  assert.not.match(follower.output(), /leading \(master/, "the second master only followed");
  assert.not.match(leader.output().slice(leaderBefore), /snapshot at sequence/, "the leader wrote none while a follower did");
  const head = (await latestSnapshotHead(await store.connect("admin"), store.cat))!;
  assert.is(head.digest, stateDigest((await store.replay(head.seq)).state), "the follower's snapshot is the log's table at its sequence");
  // It stepped out of the read queue while it encoded, and came back.
  await leader.kill();
  const auditor = await store.client("auditor");
  await waitFor("the follower to answer reads after its snapshot", async () => (await auditor.masterState().catch(() => undefined)) !== undefined);
  // One master again, as the tests after this one expect.
  await follower.kill();
  const alone = store.startMaster(3_000, every);
  await waitFor("a master alone to lead", async () => alone.output().includes("leading (master"));
});

test("a snapshot past the log's end (the events stream was made again) is not started from", async ({ store }) => {
  const admin = await store.connect("admin");
  // A good snapshot first: a master alone writes one once two events came after the latest.
  const before = (await latestSnapshotHead(admin, store.cat))!;
  await store.role("master").kill();
  store.startMaster(3_000, ["--snapshot-every", "1"]);
  const dir = await tempDir("snap-end");
  await writeFile(join(dir, "one"), "one more put, so that a snapshot is due");
  await (await store.client()).put(join(dir, "one"), "/end/one", { replicas: 2 });
  await waitFor("a new snapshot", async () => (await latestSnapshotHead(admin, store.cat))!.snapshotId !== before.snapshotId);
  const head = (await latestSnapshotHead(admin, store.cat))!;
  await store.role("master").kill();
  const jsm = await jetstreamManager(admin);
  await jsm.streams.delete(store.cat.auditStream);
  await jsm.streams.delete(store.cat.eventsStream);
  await provisionStreams(admin, store.cat);
  const master = store.startMaster(3_000, ["--snapshot-every", "0"]);
  await waitFor("the master to refuse the snapshot", async () => master.output().includes("past the log's end"));
  const auditor = await store.client("auditor");
  await waitFor("the master answers", async () => (await auditor.masterState().catch(() => undefined)) !== undefined);
  const live = await auditor.masterState();
  assert.ok(live.lastSeq < head.seq, `the new log (at ${live.lastSeq}) is folded, not the old snapshot (${head.seq})`);
  assert.is(live.digest, stateDigest((await store.replay(live.lastSeq)).state));
});

test("snapshots written at once never purge each other's chunks: the latest head always names whole chunks", async ({ store }) => {
  // The master now runs with --snapshot-every 0: only this test writes snapshots.
  const writer = await store.connect("master", undefined, { streams: true });
  const other = await store.connect("master", undefined, { streams: true });
  const js = jetstream(writer);
  const jsm = await jetstreamManager(await store.connect("admin"));
  const chunkSubjects = async () => Object.keys((await jsm.streams.info(store.cat.snapshotStream, { subjects_filter: store.cat.snapshotChunks("*") })).state.subjects ?? {}).sort();
  const { head, state } = (await readLatestSnapshot(writer, store.cat))!;
  const bytes = await encodeTable(state);
  const about = { seq: head.seq, digest: head.digest, files: head.files };
  // Chunks earlier tests may have left without a head (a master killed while it wrote) go first.
  await writeSnapshot(writer, store.cat, bytes, about, { orphanedAfterMs: 0 });
  // A writer sends its chunks; before its head, another writes a whole snapshot.
  await js.publish(store.cat.snapshotChunks("slow"), bytes);
  const first = await writeSnapshot(other, store.cat, bytes, about);
  assert.ok((await chunkSubjects()).includes(store.cat.snapshotChunks("slow")), "chunks without a head yet are not purged");
  // Its head comes last: it is the latest, and whole.
  const slowHead = { ...first, snapshotId: "slow", chunks: 1, at: Date.now() };
  await js.publish(store.cat.snapshotHead(), encode(slowHead));
  assert.is((await readLatestSnapshot(writer, store.cat))!.head.snapshotId, "slow");
  // Chunks of a writer that died before its head, then the next snapshot: the replaced ones go,
  // the dead writer's only once they have been idle long enough.
  await js.publish(store.cat.snapshotChunks("dead"), bytes);
  const next = await writeSnapshot(writer, store.cat, bytes, about);
  assert.equal(await chunkSubjects(), [store.cat.snapshotChunks("dead"), store.cat.snapshotChunks(next.snapshotId)].sort());
  const last = await writeSnapshot(writer, store.cat, bytes, about, { orphanedAfterMs: 0 });
  assert.equal(await chunkSubjects(), [store.cat.snapshotChunks(last.snapshotId)]);
  const heads = await jsm.streams.info(store.cat.snapshotStream, { subjects_filter: store.cat.snapshotHead() });
  assert.is(heads.state.subjects?.[store.cat.snapshotHead()], 1, "one head kept");
  // Two writers at once, a few times: whichever head is the latest reads back whole.
  for (let round = 0; round < 3; round++) {
    await Promise.all([writeSnapshot(writer, store.cat, bytes, about), writeSnapshot(other, store.cat, bytes, about)]);
    const latest = (await readLatestSnapshot(writer, store.cat))!;
    assert.equal(latest.state, state, `round ${round}: the latest snapshot reads back`);
  }
});

test.run();
