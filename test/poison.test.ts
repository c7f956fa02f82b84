// Poison on the events stream: anyone who can publish there (no permissions yet) appends
// malformed and forged events for every event type. The master keeps serving, every reader
// folds the log to the same table with the same rejections, and a worker rejects a bad
// assignment once instead of having it redelivered forever.
import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import * as assert from "uvu/assert";
import { isSubjectToken } from "../streams/catalogue.js";
import { encode } from "../src/codec.js";
import { MAX_REASON_LENGTH, MIN_PIECE_SIZE, PIECES_PER_EVENT } from "../src/events.js";
import { call } from "../src/rpc.js";
import { stateDigest } from "../src/state.js";
import type { UploadPlan } from "../src/queries.js";
import { keyedUpload, runCli, storeSuite, waitFor } from "./harness.js";

const test = storeSuite("poison", { workers: ["w1", "w2"] });

const hex = (c: string) => c.repeat(64);

test("malformed and forged events of every type stop no one, and every reader folds them alike", async ({ store }) => {
  const client = await store.client();
  const cat = store.cat;
  const local = join(store.dir, "real");
  await writeFile(local, randomBytes(3 * MIN_PIECE_SIZE));
  const real = await client.put(local, "/real", { replicas: 2, pieceSize: MIN_PIECE_SIZE });

  // A second version kept pending: its uploader is "serving" but never answers.
  const { uploadId, uploadKey } = keyedUpload("pending-upload");
  const silent = client.nc.subscribe(cat.pullAll(client.uploader, uploadId), { callback: () => undefined });
  const pending = await call<UploadPlan & { seq: number }>(client.nc, cat.masterRpc("create"), {
    uploadId,
    uploadKey,
    uploader: client.uploader,
    path: "/real",
    size: MIN_PIECE_SIZE,
    sha256: "07".repeat(32), // its one piece's (below)
    pieceSize: MIN_PIECE_SIZE,
    replicas: 2,
    pieceHashes: new Uint8Array(32).fill(7),
  });
  assert.is(pending.status, "pending");
  const { fileId } = real;

  // Well-formed events about real things, each made malformed or forged below.
  const samples: Record<string, Record<string, unknown>> = {
    WorkerJoined: { type: "WorkerJoined", at: 1, workerId: "w1" },
    WorkerLost: { type: "WorkerLost", at: 1, workerId: "w1", reason: "forged" },
    FileCreated: { type: "FileCreated", at: 1, fileId, path: "/real", version: 3, size: 10, sha256: hex("a"), pieceSize: MIN_PIECE_SIZE, replicas: 1, uploadId: "forged-upload" },
    PiecesPlanned: { type: "PiecesPlanned", at: 1, fileId, version: 2, pieces: [{ index: 0, size: MIN_PIECE_SIZE, sha256: hex("b") }] },
    PeersAssigned: { type: "PeersAssigned", at: 1, fileId, version: 2, uploadId, workerId: "w1", pieces: [{ piece: 0, size: MIN_PIECE_SIZE, sha256: hex("b"), role: "major" }] },
    UploadsAssigned: {
      type: "UploadsAssigned",
      at: 1,
      workerId: "w1",
      uploads: [{ fileId, version: 2, uploadId, pieces: [{ piece: 0, size: MIN_PIECE_SIZE, sha256: hex("b"), role: "major" }] }],
    },
    PieceStored: { type: "PieceStored", at: 1, fileId, version: 2, piece: 0, workerId: "w1", sha256: hex("b") },
    FileCommitted: { type: "FileCommitted", at: 1, fileId, path: "/real", version: 2, size: MIN_PIECE_SIZE, sha256: "07".repeat(32) },
    UploadAbandoned: { type: "UploadAbandoned", at: 1, fileId, path: "/real", version: 2, code: "X", reason: "forged" },
    FileDeleted: { type: "FileDeleted", at: 1, fileId, path: "/real" },
    PiecesDropped: { type: "PiecesDropped", at: 1, workerId: "w1", sha256s: [hex("d")] },
  };
  const optional = new Set(["FileDeleted.version", "PeersAssigned.pullFrom"]);
  const forged: { subject: string; value: unknown }[] = [];
  const subjectOf = (value: Record<string, unknown>) =>
    value.type === "WorkerJoined" || value.type === "WorkerLost"
      ? cat.workerEvents("w1")
      : value.type === "PeersAssigned" || value.type === "UploadsAssigned" || value.type === "PiecesDropped"
        ? cat.assignEvents("w2") // w2's subject: w1 gets its own bad assignments below
        : cat.fileEvents(typeof value.fileId === "string" && isSubjectToken(value.fileId) ? value.fileId : fileId);
  for (const [type, sample] of Object.entries(samples)) {
    for (const field of Object.keys(sample)) {
      if (field === "type") continue;
      const { [field]: _gone, ...missing } = sample;
      if (!optional.has(`${type}.${field}`)) forged.push({ subject: subjectOf(sample), value: missing });
      const wrong = typeof sample[field] === "string" ? 5 : typeof sample[field] === "number" ? "5" : 5;
      forged.push({ subject: subjectOf(sample), value: { ...sample, [field]: wrong } });
    }
  }
  const outOfRange = [
    { ...samples.WorkerLost, reason: "r".repeat(MAX_REASON_LENGTH + 1) },
    { ...samples.FileCreated, version: 0 },
    { ...samples.FileCreated, size: -1 },
    { ...samples.FileCreated, replicas: 99 },
    { ...samples.FileCreated, path: "a//b" },
    { ...samples.FileCreated, uploadId: "has.dot" },
    { ...samples.PiecesPlanned, pieces: [] },
    { ...samples.UploadsAssigned, uploads: [] },
    { ...samples.FileCreated, streamed: true, size: 0, sha256: undefined, pieces: [{ index: 0, size: 1, sha256: hex("b") }] },
    { ...samples.PiecesPlanned, pieces: Array.from({ length: PIECES_PER_EVENT + 1 }, (_, index) => ({ index, size: 1, sha256: hex("e") })) },
    { ...samples.PieceStored, sha256: "A".repeat(64) },
    { ...samples.FileDeleted, version: -1 },
  ];
  const unknownThings = [
    { ...samples.WorkerLost, workerId: "ghost" },
    { ...samples.FileCreated, fileId: "ghost", version: 1 }, // a second file id for /real
    { ...samples.FileCreated, fileId: "ghost", path: "/ghost", version: 2 },
    { ...samples.PiecesPlanned, fileId: "ghost" },
    { ...samples.UploadsAssigned, uploads: [{ ...(samples.UploadsAssigned.uploads as Record<string, unknown>[])[0], fileId: "ghost" }] },
    { ...samples.FileCreated, fileId: "other", path: "/other", version: 1, pieces: [{ index: 0, size: 9, sha256: hex("b") }] }, // 10 bytes are not 9
    { ...samples.PiecesPlanned, pieces: [{ index: 9, size: 1, sha256: hex("b") }] },
    { ...samples.PieceStored, version: 7 },
    { ...samples.PieceStored, workerId: "ghost" },
    { ...samples.FileCommitted, fileId: "ghost" },
    { ...samples.UploadAbandoned, version: 1 },
    { ...samples.FileDeleted, fileId: "ghost" },
    { ...samples.FileDeleted, version: 2 },
  ];
  for (const value of [...outOfRange, ...unknownThings]) forged.push({ subject: subjectOf(value), value });
  for (const value of [{ ...samples.PeersAssigned, fileId: "ghost" }, { ...samples.PiecesDropped, sha256s: [hex("f")] }]) forged.push({ subject: subjectOf(value), value });
  // The attack as it was found, a forged commit of the pending version, a forged delete.
  const attack = { subject: cat.fileEvents(fileId), value: { type: "PiecesPlanned", at: 1, fileId, version: 1, pieces: 5 } };
  const forgedCommit = { subject: cat.fileEvents(fileId), value: samples.FileCommitted };
  const forgedDelete = { subject: cat.fileEvents(fileId), value: { ...samples.FileDeleted, path: "/elsewhere" } };
  // On w1's assignment subject: malformed, and well-formed but for w2.
  const badAssignment = { subject: cat.assignEvents("w1"), value: { ...samples.PeersAssigned, pieces: "nope" } };
  const othersAssignment = { subject: cat.assignEvents("w1"), value: { ...samples.PeersAssigned, workerId: "w2" } };
  const badUploads = { subject: cat.assignEvents("w1"), value: { ...samples.UploadsAssigned, uploads: "nope" } };
  forged.push(attack, forgedCommit, forgedDelete, badAssignment, othersAssignment, badUploads);
  forged.push({ subject: cat.fileEvents("junk"), value: "not a map" });

  // Only the master's credentials may append (test/permissions.test.ts shows everyone else is
  // refused), so this is what a buggy or stolen master could write: the fold must survive it.
  const nc = await store.connect("master", undefined, { streams: true });
  const js = jetstream(nc);
  const seqs = new Map<unknown, number>();
  for (const f of forged) seqs.set(f, (await js.publish(f.subject, encode(f.value))).seq);
  const lastForged = Math.max(...seqs.values());

  // The master is up, answering, and has folded past all of it, rejecting every one.
  const state = await waitFor("the master past the poison", async () => {
    const s = await client.masterState(true);
    return s.lastSeq >= lastForged && s;
  });
  assert.is(store.role("master").process.exitCode, null, "the master is still running");
  const rejected = state.projection!.rejected;
  assert.is(rejected.count, forged.length, "every forged event was rejected");
  const reasonOf = (f: unknown) => rejected.recent.find((r) => r.seq === seqs.get(f))?.reason;
  assert.match(reasonOf(attack) ?? "", /^PiecesPlanned\.pieces: /);
  assert.match(reasonOf(forgedCommit) ?? "", /not every piece of version 2 .* holds its 2 replicas/);
  assert.match(reasonOf(forgedDelete) ?? "", /is \/real, not \/elsewhere/);
  const masterLines = store.role("master").output().split("\n").filter((l) => /rejected seq \d+/.test(l));
  assert.is(masterLines.length, forged.length, "one line per rejected event");
  assert.equal((await client.list("/")).map((f) => [f.path, f.version]), [["/real", 1]], "no phantom files, nothing deleted");

  // dfs replay agrees, and shows the rejections.
  const check = await runCli([...store.flags, "replay", "--check"]);
  assert.is(check.code, 0, check.stderr);
  assert.match(check.stdout, new RegExp(`\\(${forged.length} rejected\\)`));
  assert.match(check.stdout, new RegExp(`rejected seq ${seqs.get(attack)}: PiecesPlanned\\.pieces: `));
  const json = JSON.parse((await runCli([...store.flags, "replay", "--json"])).stdout) as { rejected: { count: number } };
  assert.is(json.rejected.count, forged.length);

  // dfs tail shows them as rejected, folding from the start even from a later sequence.
  const tail = await runCli([...store.flags, "tail", "--json", "--from", String(seqs.get(forgedCommit))]);
  const entries = tail.stdout.trim().split("\n").map((l) => JSON.parse(l) as { seq: number; rejected?: string; event: { type?: string } | null });
  assert.is(entries[0]!.seq, seqs.get(forgedCommit));
  assert.match(entries[0]!.rejected ?? "", /not every piece/);
  assert.is(entries[0]!.event?.type, "FileCommitted");
  const forgedSeqs = new Set(seqs.values());
  for (const e of entries) assert.is(e.rejected !== undefined, forgedSeqs.has(e.seq), `tail of seq ${e.seq}: ${e.rejected}`);
  const human = await runCli([...store.flags, "tail", "--from", String(seqs.get(attack))]);
  assert.match(human.stdout.split("\n")[0]!, /PiecesPlanned\s+fileId=\S+ version=1 pieces=5  rejected: PiecesPlanned\.pieces: /);

  // The worker rejected its bad assignments once each, and nothing is redelivered. (The
  // pending upload's real assignment settles once its uploader is gone.)
  silent.unsubscribe();
  await call(client.nc, cat.masterRpc("abort"), { uploadKey, reason: "test over" });
  const jsm = await jetstreamManager(await store.connect("admin"));
  await new Promise((r) => setTimeout(r, 3_000)); // longer than a nak's redelivery delay
  const consumer = await waitFor(
    "w1's consumer to settle",
    async () => {
      const info = await jsm.consumers.info(cat.eventsStream, cat.workerConsumer("w1"));
      return info.num_ack_pending === 0 && info;
    },
    30_000,
  );
  assert.is(consumer.num_redelivered, 0);
  const w1 = store.role("worker w1").output();
  for (const f of [badAssignment, othersAssignment, badUploads]) {
    assert.is(w1.split(`rejected seq ${seqs.get(f)} `).length - 1, 1, `w1 reported seq ${seqs.get(f)} once`);
  }
  assert.match(w1, new RegExp(`rejected seq ${seqs.get(othersAssignment)} .*PeersAssigned is for worker w2`));

  // A restarted master folds the same table.
  const before = await client.masterState();
  await store.role("master").kill();
  store.startMaster();
  const after = await waitFor("the new master", async () => {
    const s = await client.masterState();
    return s.masterId !== before.masterId && s;
  });
  assert.is(stateDigest((await store.replay(after.lastSeq)).state), after.digest);
  if (after.lastSeq === before.lastSeq) assert.is(after.digest, before.digest);

  // And the store still stores.
  const again = join(store.dir, "after-poison");
  await writeFile(again, randomBytes(2 * MIN_PIECE_SIZE + 5));
  const put = await client.put(again, "/after-poison", { replicas: 2, pieceSize: MIN_PIECE_SIZE });
  assert.is(put.version, 1);
  const back = join(store.dir, "after-poison.back");
  await client.get("/after-poison", back);
  assert.equal(await readFile(back), await readFile(again));
});

test.run();
