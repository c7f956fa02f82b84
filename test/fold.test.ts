// The fold is total: every message of the log is applied or rejected, never thrown on.
// given(events) / when(a logged message) / then(applied, or rejected with a reason and the
// table unchanged). No server: messages are CBOR bytes folded by `foldLogged`, as every
// reader of the log folds them.
import { createHash } from "node:crypto";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { catalogue } from "../streams/catalogue.js";
import { encode, type DecodedEvent } from "../src/codec.js";
import { decide, type Command, type CreateVersion } from "../src/decide.js";
import {
  MAX_CODE_LENGTH,
  MAX_PIECES,
  MAX_REASON_LENGTH,
  MAX_REPLICAS,
  MIN_PIECE_SIZE,
  PIECES_PER_EVENT,
  UPLOADS_PER_EVENT,
  parseEvent,
  type DfsEvent,
  type EventType,
  wholeSha256Of,
} from "../src/events.js";
import { foldLogged, subjectFor } from "../src/fold.js";
import { SNAPSHOT_FORMAT, decodeTable, encodeTable } from "../src/snapshot.js";
import { initialState, projection, RECENT_REJECTIONS_KEPT, stateDigest, type State } from "../src/state.js";
import { evolve } from "../src/fold.js";

const cat = catalogue("dfs");
const T0 = 1_700_000_000_000;
const sha = (seed: string | number): string => createHash("sha256").update(String(seed)).digest("hex");

// ---------------------------------------------------------------------------------------------
// given / when / then

/** A log being written: commands are decided against the fold so far, and appended as bytes. */
class Log {
  readonly state: State = initialState();
  readonly messages: { seq: number; subject: string; data: Uint8Array }[] = [];
  append(value: unknown, subject?: string): DecodedEvent {
    const parsed = parseEvent(value);
    const message = {
      seq: this.messages.length + 1,
      subject: subject ?? ("event" in parsed ? subjectFor(cat, parsed.event) : cat.fileEvents("junk")),
      data: encode(value),
    };
    this.messages.push(message);
    return foldLogged(this.state, cat, message);
  }
  run(cmd: Command): DfsEvent[] {
    const events = decide(this.state, cmd);
    for (const e of events) assert.is(this.append(e).rejected, undefined, `${e.type} decided for ${cmd.type} is folded`);
    return events;
  }
}

/** The table without the fold's bookkeeping (sequence and rejections). */
function table(state: State): unknown {
  const { lastSeq: _seq, rejected: _rejected, ...rest } = projection(state);
  return JSON.parse(JSON.stringify(rest));
}

/** when(message) then rejected, for a reason matching `reason`, with the table unchanged. */
function thenRejected(log: Log, value: unknown, reason: RegExp, label: string, subject?: string): void {
  const before = table(log.state);
  const count = log.state.rejected.count;
  const outcome = log.append(value, subject);
  assert.ok(outcome.rejected !== undefined, `${label}: expected a rejection, the event was applied`);
  assert.match(outcome.rejected!, reason, label);
  assert.equal(table(log.state), before, `${label}: table unchanged`);
  assert.is(log.state.rejected.count, count + 1, `${label}: counted`);
  assert.equal(log.state.rejected.recent.at(-1), { seq: log.messages.length, reason: outcome.rejected }, `${label}: recorded`);
  assert.is(log.state.lastSeq, log.messages.length, `${label}: the fold moved past it`);
}

function create(o: { path: string; uploadId: string; newFileId?: string; pieces?: number; replicas?: number }): CreateVersion {
  const count = o.pieces ?? 2;
  const pieces = Array.from({ length: count }, (_, index) => ({ index, size: MIN_PIECE_SIZE, sha256: sha(`${o.uploadId}/${index}`) }));
  return {
    type: "CreateVersion",
    at: T0,
    uploadId: o.uploadId,
    newFileId: o.newFileId ?? `file-${o.uploadId}`,
    path: o.path,
    size: count * MIN_PIECE_SIZE,
    sha256: wholeSha256Of(pieces.map((p) => p.sha256)) ?? sha(`whole ${o.uploadId}`),
    pieceSize: MIN_PIECE_SIZE,
    replicas: o.replicas ?? 2,
    pieces,
  };
}

/** The code a decision refuses with, or undefined if it decides. */
function code(run: () => unknown): string | undefined {
  try {
    run();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

function confirmAll(log: Log, events: readonly DfsEvent[]): void {
  for (const a of events) {
    if (a.type !== "PeersAssigned") continue;
    for (const p of a.pieces) {
      log.run({ type: "ConfirmPiece", at: T0, workerId: a.workerId, fileId: a.fileId, version: a.version, piece: p.piece, sha256: p.sha256, ok: true });
    }
  }
}

/**
 * Workers a, b, c (c lost); /f (file F): v1 committed, v2 pending with piece 0 stored once;
 * /g (file G) deleted, its pieces owed as drops; /p (file P) only pending.
 */
function busyLog(): Log {
  const log = new Log();
  for (const id of ["a", "b", "c"]) log.run({ type: "NoteHeartbeat", at: T0, workerId: id });
  confirmAll(log, log.run(create({ path: "/f", uploadId: "U1", newFileId: "F" })));
  const v2 = log.run(create({ path: "/f", uploadId: "U2" }));
  const holder = v2.find((e) => e.type === "PeersAssigned" && e.pieces.some((p) => p.piece === 0));
  assert.ok(holder?.type === "PeersAssigned");
  log.run({ type: "ConfirmPiece", at: T0, workerId: holder.workerId, fileId: "F", version: 2, piece: 0, sha256: holder.pieces.find((p) => p.piece === 0)!.sha256, ok: true });
  confirmAll(log, log.run(create({ path: "/g", uploadId: "U3", newFileId: "G", replicas: 1 })));
  log.run({ type: "DeleteFile", at: T0, path: "/g" });
  log.run(create({ path: "/p", uploadId: "U4", newFileId: "P" }));
  log.run({ type: "NoteHeartbeat", at: T0, workerId: "c" });
  log.run({ type: "NoteSilence", at: T0, workerId: "c", silentMs: 9_000 });
  assert.is(log.state.rejected.count, 0);
  return log;
}

const STREAM_SIZE = 2 * MIN_PIECE_SIZE + 10;

/** busyLog, and /s (file S, upload S1): a streamed version, open, its pieces planned and placed (two full, the last 10 bytes); `placed` are its PeersAssigned. */
function streamLog(): { log: Log; placed: DfsEvent[] } {
  const log = busyLog();
  log.run({ type: "CreateStream", at: T0, uploadId: "S1", newFileId: "S", path: "/s", pieceSize: MIN_PIECE_SIZE, replicas: 2 });
  const full = [0, 1].map((index) => ({ index, size: MIN_PIECE_SIZE, sha256: sha(`s${index}`) }));
  const placed = [...log.run({ type: "ExtendUpload", at: T0, uploadId: "S1", pieces: full }), ...log.run({ type: "ExtendUpload", at: T0, uploadId: "S1", pieces: [{ index: 2, size: 10, sha256: sha("s2") }] })];
  assert.is(log.state.rejected.count, 0);
  return { log, placed };
}

const piece0 = (fileId: string, version: number) => busyLog().state.files.get(fileId)!.versions.get(version)!.pieces[0]!;

/** One well-formed event of each type (not necessarily one the table accepts). */
function samples(): Record<EventType, Record<string, unknown>> {
  return {
    WorkerJoined: { type: "WorkerJoined", at: T0, workerId: "d" },
    WorkerLost: { type: "WorkerLost", at: T0, workerId: "a", reason: "silent" },
    FileCreated: { type: "FileCreated", at: T0, fileId: "N", path: "/n", version: 1, size: 10, sha256: sha(1), pieceSize: MIN_PIECE_SIZE, replicas: 2, uploadId: "U9", uploader: "client-bob" },
    PiecesPlanned: { type: "PiecesPlanned", at: T0, fileId: "F", version: 2, pieces: [{ index: 0, size: MIN_PIECE_SIZE, sha256: sha(2) }] },
    PeersAssigned: {
      type: "PeersAssigned",
      at: T0,
      fileId: "F",
      version: 2,
      uploadId: "U2",
      workerId: "a",
      pieces: [{ piece: 0, size: MIN_PIECE_SIZE, sha256: sha(3), role: "minor", pullFrom: "b" }],
    },
    UploadsAssigned: {
      type: "UploadsAssigned",
      at: T0,
      workerId: "a",
      uploads: [{ fileId: "F", version: 2, uploadId: "U2", pieces: [{ piece: 0, size: MIN_PIECE_SIZE, sha256: sha(3), role: "minor", pullFrom: "b" }] }],
    },
    PieceStored: { type: "PieceStored", at: T0, fileId: "F", version: 2, piece: 0, workerId: "a", sha256: sha(4) },
    FileSealed: { type: "FileSealed", at: T0, fileId: "F", path: "/f", version: 2, size: 2 * MIN_PIECE_SIZE, sha256: sha(11), pieces: 2 },
    FileCommitted: { type: "FileCommitted", at: T0, fileId: "F", path: "/f", version: 2, size: 2 * MIN_PIECE_SIZE, sha256: sha(5) },
    UploadAbandoned: { type: "UploadAbandoned", at: T0, fileId: "F", path: "/f", version: 2, code: "X", reason: "why" },
    FileDeleted: { type: "FileDeleted", at: T0, fileId: "F", path: "/f", version: 1 },
    PiecesDropped: { type: "PiecesDropped", at: T0, workerId: "a", sha256s: [sha(6)] },
    CopiesOrdered: { type: "CopiesOrdered", at: T0, workerId: "a", pieces: [{ sha256: sha(7), size: MIN_PIECE_SIZE, sources: ["b"] }] },
    ReplicaStored: { type: "ReplicaStored", at: T0, workerId: "a", sha256: sha(8) },
    CopyFailed: { type: "CopyFailed", at: T0, workerId: "a", sha256: sha(9), code: "X", reason: "why" },
    ReplicasLost: { type: "ReplicasLost", at: T0, workerId: "a", sha256s: [sha(10)], reason: "why" },
    RetentionSet: { type: "RetentionSet", at: T0, keepVersions: 2 },
    VersionExpired: { type: "VersionExpired", at: T0, fileId: "F", path: "/f", version: 1, rule: "keep the newest 2 versions" },
  };
}

// =============================================================================================
// schemas: a message that is not a well-formed event is rejected before the table is read

const Schemas = suite("fold: schemas");

Schemas("fold - bytes that are not CBOR, not a map, or of no known type are rejected", () => {
  const log = busyLog();
  const raw = (data: Uint8Array) => foldLogged(log.state, cat, { seq: log.state.lastSeq + 1, subject: cat.fileEvents("x"), data });
  const before = table(log.state);
  assert.is(raw(new Uint8Array([0xff, 0xfe])).rejected, "event is not CBOR");
  assert.is(raw(new Uint8Array([])).rejected, "event is not CBOR");
  assert.is(raw(encode("hello")).rejected, "event is not a map");
  assert.is(raw(encode([1, 2])).rejected, "event is not a map");
  assert.is(raw(encode(null)).rejected, "event is not a map");
  assert.match(raw(encode({ type: "NotAnEvent", at: 1 })).rejected!, /unknown event type "NotAnEvent"/);
  assert.match(raw(encode({ at: 1 })).rejected!, /unknown event type/);
  assert.match(raw(encode({ type: "toString", at: 1 })).rejected!, /unknown event type/, "no inherited names");
  assert.equal(table(log.state), before);
  assert.is(log.state.rejected.count, 8);
});

Schemas("fold - the attacker's PiecesPlanned with pieces: 5 is rejected, and the fold goes on", () => {
  const log = busyLog();
  thenRejected(log, { type: "PiecesPlanned", at: 1, fileId: "F", version: 2, pieces: 5 }, /^PiecesPlanned\.pieces: /, "pieces: 5");
  // The next real event is folded as if nothing happened.
  assert.is(log.run({ type: "NoteHeartbeat", at: T0, workerId: "d" }).length, 1);
  assert.ok(log.state.workers.get("d")?.live);
});

Schemas("fold - every field of every event type: missing or of the wrong type is rejected", () => {
  const optional = new Set(["FileCreated.uploader", "FileDeleted.version", "PeersAssigned.pullFrom", "RetentionSet.keepVersions", "RetentionSet.keepForMs"]);
  for (const [type, sample] of Object.entries(samples())) {
    for (const field of Object.keys(sample)) {
      const log = busyLog();
      const { [field]: _dropped, ...missing } = sample;
      if (!optional.has(`${type}.${field}`)) thenRejected(log, missing, field === "type" ? /unknown event type/ : new RegExp(`^${type}\\.${field}: `), `${type} without ${field}`);
      const wrong = typeof sample[field] === "string" ? 7 : typeof sample[field] === "number" ? "7" : { not: "a list" };
      thenRejected(log, { ...sample, [field]: wrong }, field === "type" ? /unknown event type/ : new RegExp(`^${type}\\.${field}: `), `${type}.${field} = ${JSON.stringify(wrong)}`);
      thenRejected(log, { ...sample, [field]: null }, field === "type" ? /unknown event type/ : new RegExp(`^${type}\\.${field}: `), `${type}.${field} = null`);
    }
  }
});

Schemas("fold - values out of range are rejected", () => {
  const s = samples();
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ ...s.WorkerJoined, at: -1 }, /WorkerJoined\.at/],
    [{ ...s.WorkerJoined, at: 1.5 }, /WorkerJoined\.at/],
    [{ ...s.WorkerJoined, workerId: "has.dot" }, /WorkerJoined\.workerId/],
    [{ ...s.WorkerJoined, workerId: "" }, /WorkerJoined\.workerId/],
    [{ ...s.WorkerJoined, workerId: "x".repeat(65) }, /WorkerJoined\.workerId/],
    [{ ...s.WorkerLost, reason: "r".repeat(MAX_REASON_LENGTH + 1) }, /WorkerLost\.reason/],
    [{ ...s.FileCreated, version: 0 }, /FileCreated\.version/],
    [{ ...s.FileCreated, size: -1 }, /FileCreated\.size/],
    [{ ...s.FileCreated, size: 2 ** 60 }, /FileCreated\.size/],
    [{ ...s.FileCreated, size: (MAX_PIECES + 1) * MIN_PIECE_SIZE }, /FileCreated\.size: .*at most/],
    [{ ...s.FileCreated, pieceSize: MIN_PIECE_SIZE - 1 }, /FileCreated\.pieceSize/],
    [{ ...s.FileCreated, replicas: 0 }, /FileCreated\.replicas/],
    [{ ...s.FileCreated, replicas: MAX_REPLICAS + 1 }, /FileCreated\.replicas/],
    [{ ...s.FileCreated, sha256: sha(1).toUpperCase() }, /FileCreated\.sha256/],
    [{ ...s.FileCreated, sha256: "ab" }, /FileCreated\.sha256/],
    [{ ...s.FileCreated, path: "n" }, /FileCreated\.path: must be a canonical path/],
    [{ ...s.FileCreated, path: "/a//b" }, /FileCreated\.path/],
    [{ ...s.FileCreated, path: "/a/../b" }, /FileCreated\.path/],
    [{ ...s.FileCreated, path: "/a/" }, /FileCreated\.path/],
    [{ ...s.FileCreated, path: "/a\nb" }, /FileCreated\.path/],
    [{ ...s.FileCreated, path: "/cafe\u0301" }, /FileCreated\.path/],
    [{ ...s.FileCreated, uploadId: "up load" }, /FileCreated\.uploadId/],
    [{ ...s.FileCreated, uploader: "client.bob" }, /FileCreated\.uploader/],
    [{ ...s.PeersAssigned, uploader: "client.>" }, /PeersAssigned\.uploader/],
    [{ ...s.PiecesPlanned, pieces: [] }, /PiecesPlanned\.pieces/],
    [{ ...s.PiecesPlanned, pieces: Array.from({ length: PIECES_PER_EVENT + 1 }, (_, index) => ({ index, size: 1, sha256: sha(index) })) }, /PiecesPlanned\.pieces/],
    [{ ...s.PiecesPlanned, pieces: [{ index: -1, size: 1, sha256: sha(1) }] }, /PiecesPlanned\.pieces\.0\.index/],
    [{ ...s.PiecesPlanned, pieces: [5] }, /PiecesPlanned\.pieces\.0/],
    [{ ...s.PeersAssigned, pieces: [{ piece: 0, size: 1, sha256: sha(1), role: "boss" }] }, /PeersAssigned\.pieces\.0\.role/],
    [{ ...s.PeersAssigned, pieces: [{ piece: 0, size: 1, sha256: sha(1), role: "minor", pullFrom: "a.b" }] }, /PeersAssigned\.pieces\.0\.pullFrom/],
    [{ ...s.PieceStored, piece: 0.5 }, /PieceStored\.piece/],
    [{ ...s.UploadAbandoned, code: "C".repeat(MAX_CODE_LENGTH + 1) }, /UploadAbandoned\.code/],
    [{ ...s.FileDeleted, version: 0 }, /FileDeleted\.version/],
    [{ ...s.PiecesDropped, sha256s: [] }, /PiecesDropped\.sha256s/],
    [{ ...s.PiecesDropped, sha256s: ["zz"] }, /PiecesDropped\.sha256s\.0/],
    [{ ...s.UploadsAssigned, uploads: [] }, /UploadsAssigned\.uploads/],
    [{ ...s.UploadsAssigned, uploads: Array.from({ length: UPLOADS_PER_EVENT + 1 }, () => (s.UploadsAssigned!.uploads as unknown[])[0]) }, /UploadsAssigned\.uploads/],
    [
      { ...s.UploadsAssigned, uploads: [0, 1].map((i) => ({ fileId: "F", version: 2, uploadId: "U2", pieces: Array.from({ length: PIECES_PER_EVENT / 2 + i }, (_, piece) => ({ piece, size: 1, sha256: sha(1), role: "major" })) })) },
      /UploadsAssigned\.uploads: must hold at most 2000 pieces in all/,
    ],
    [{ ...s.UploadsAssigned, uploads: [{ fileId: "F", version: 2, uploadId: "U 2", pieces: [] }] }, /UploadsAssigned\.uploads\.0\./],
  ];
  for (const [value, reason] of cases) thenRejected(busyLog(), value, reason, JSON.stringify(value).slice(0, 120));
});

Schemas("fold - an event on a subject other than its own is rejected", () => {
  const log = busyLog();
  thenRejected(log, samples().WorkerJoined, /WorkerJoined belongs on dfs\.evt\.worker\.d, not dfs\.evt\.file\.d/, "worker event on a file subject", cat.fileEvents("d"));
  const assigned = { ...samples().PeersAssigned, pieces: [] as unknown[] };
  const v2 = log.state.files.get("F")!.versions.get(2)!;
  const free = v2.pieces.findIndex((p) => !p.peers.some((x) => x.workerId === "a"));
  assigned.pieces = [{ piece: free, size: v2.pieces[free]!.size, sha256: v2.pieces[free]!.sha256, role: "minor", pullFrom: "b" }];
  thenRejected(log, assigned, /belongs on dfs\.evt\.assign\.a/, "an assignment hidden from its worker", cat.fileEvents("F"));
});

Schemas.run();

// =============================================================================================
// the table: a well-formed event that contradicts it is rejected

const Table = suite("fold: contradictions");

Table("fold - WorkerJoined of a live worker, WorkerLost of an unknown or lost one", () => {
  const log = busyLog();
  thenRejected(log, { type: "WorkerJoined", at: T0, workerId: "a" }, /worker a is already live/, "joined twice");
  thenRejected(log, { type: "WorkerLost", at: T0, workerId: "ghost", reason: "x" }, /no worker ghost/, "unknown worker");
  thenRejected(log, { type: "WorkerLost", at: T0, workerId: "c", reason: "x" }, /worker c is already lost/, "lost twice");
});

Table("fold - FileCreated with a used upload id, a taken file id, a taken path or a wrong version", () => {
  const log = busyLog();
  const fc = samples().FileCreated;
  thenRejected(log, { ...fc, uploadId: "U1" }, /upload id U1 is already used/, "used upload id");
  thenRejected(log, { ...fc, fileId: "F", path: "/other", version: 3 }, /file F is \/f, not \/other/, "file id of another path");
  thenRejected(log, { ...fc, path: "/f" }, /path \/f belongs to file F/, "a second file id for a live path");
  thenRejected(log, { ...fc, version: 2 }, /first version of file N is 1, not 2/, "new file at version 2");
  thenRejected(log, { ...fc, fileId: "F", path: "/f", version: 2 }, /next version of file F is 3, not 2/, "a version number used twice");
  thenRejected(log, { ...fc, fileId: "F", path: "/f", version: 9 }, /next version of file F is 3, not 9/, "a version number skipped");
  thenRejected(log, { ...fc, fileId: "G", path: "/g", version: 2 }, /file G is deleted/, "a deleted file's id");
  assert.is(log.append({ ...fc, fileId: "F", path: "/f", version: 3 }).rejected, undefined, "the next version is accepted");
});

Table("fold - PeersAssigned naming another uploader than its version's is rejected; a version without one is assigned without one", () => {
  const log = busyLog();
  // P (upload U4) was created without an uploader, as versions were before uploads named theirs.
  assert.is(log.state.files.get("P")!.versions.get(1)!.uploader, undefined);
  const assigned = { type: "PeersAssigned", at: T0, fileId: "P", version: 1, uploadId: "U4", workerId: "a", pieces: [{ piece: 0, size: MIN_PIECE_SIZE, sha256: sha("U4/0"), role: "major" }] };
  thenRejected(log, { ...assigned, uploader: "client" }, /upload U4 is served by no named user, not client/, "an uploader the version has not");
  const created = log.run({ ...create({ path: "/named", uploadId: "U5", newFileId: "NAMED" }), uploader: "client-bob" });
  assert.is(log.state.files.get("NAMED")!.versions.get(1)!.uploader, "client-bob");
  const first = created.find((e) => e.type === "PeersAssigned")!;
  assert.ok(first.type === "PeersAssigned" && first.uploader === "client-bob");
  const { uploader: _named, ...unnamed } = first;
  log.run({ type: "NoteHeartbeat", at: T0, workerId: "c" });
  const elsewhere = { ...first, workerId: "c" };
  thenRejected(log, unnamed, /upload U5 is served by client-bob, not no named user/, "no uploader for a version that has one");
  thenRejected(log, { ...elsewhere, uploader: "client" }, /upload U5 is served by client-bob, not client/, "another uploader");
});

Table("fold - PiecesPlanned of an unknown or not pending version, out of range, twice, or of the wrong size", () => {
  const log = busyLog();
  const plan = (fileId: string, version: number, pieces: unknown[]) => ({ type: "PiecesPlanned", at: T0, fileId, version, pieces });
  const p = { index: 0, size: MIN_PIECE_SIZE, sha256: sha(1) };
  thenRejected(log, plan("ghost", 1, [p]), /no file ghost/, "unknown file");
  thenRejected(log, plan("F", 7, [p]), /file F has no version 7/, "unknown version");
  thenRejected(log, plan("F", 1, [p]), /version 1 of file F is committed, not pending/, "committed version");
  thenRejected(log, plan("G", 1, [p]), /version 1 of file G is deleted, not pending/, "deleted version");
  thenRejected(log, plan("F", 2, [p]), /piece 0 is already planned/, "planned twice");
  // A version created but not planned yet.
  assert.is(log.append({ ...samples().FileCreated, fileId: "N", path: "/n", size: 2 * MIN_PIECE_SIZE + 1 }).rejected, undefined);
  thenRejected(log, plan("N", 1, [{ ...p, index: 3 }]), /piece 3 is out of range: version 1 of file N has 3 pieces/, "out of range");
  thenRejected(log, plan("N", 1, [{ ...p, index: 2 }]), /piece 2 has 1 bytes, not 4096/, "wrong size of the last piece");
  thenRejected(log, plan("N", 1, [{ ...p, size: 1 }]), /piece 0 has 4096 bytes, not 1/, "wrong size");
  thenRejected(log, plan("N", 1, [p, p]), /piece 0 is already planned/, "twice in one event");
  assert.is(log.append(plan("N", 1, [p, { ...p, index: 2, size: 1 }])).rejected, undefined, "a partial plan is accepted");
});

Table("fold - a FileCreated's plan must be every piece of its version, in order, each of its size; a stream carries none", () => {
  const log = busyLog();
  const created = { ...samples().FileCreated, fileId: "N", path: "/n", size: 2 * MIN_PIECE_SIZE + 1 };
  const p = (index: number, size = MIN_PIECE_SIZE) => ({ index, size, sha256: sha(`n${index}`) });
  thenRejected(log, { ...created, pieces: [p(0), p(1)] }, /it plans 2 pieces of the 3 of 8193 bytes in pieces of 4096/, "a piece missing");
  thenRejected(log, { ...created, pieces: [p(0), p(2), p(1)] }, /piece 2 is planned where piece 1 must be/, "out of order");
  thenRejected(log, { ...created, pieces: [p(0), p(1), p(2)] }, /piece 2 has 1 bytes, not 4096/, "the last piece's size");
  thenRejected(log, { ...created, pieces: [] }, /^FileCreated\.pieces: /, "an empty plan");
  const { sha256: _declared, ...undeclared } = created as Record<string, unknown>;
  const stream = { ...undeclared, size: 0, streamed: true };
  thenRejected(log, { ...stream, pieces: [p(0)] }, /^FileCreated\.pieces: .*planned as they come/, "a stream's plan");
  assert.is(log.state.files.has("N"), false, "nothing of them was applied");
  const plan = [p(0), p(1), p(2, 1)];
  assert.is(log.append({ ...created, pieces: plan }).rejected, undefined);
  assert.equal(log.state.files.get("N")!.versions.get(1)!.pieces.map((x) => [x.index, x.size, x.sha256]), plan.map((x) => [x.index, x.size, x.sha256]));
  thenRejected(log, { type: "PiecesPlanned", at: T0, fileId: "N", version: 1, pieces: [p(0)] }, /piece 0 is already planned/, "planned again");
});

Table("fold - UploadsAssigned is judged upload by upload as PeersAssigned is, each version once, and applied whole or not at all", () => {
  const log = busyLog();
  const shares = (events: DfsEvent[]) => events.flatMap((e) => (e.type === "UploadsAssigned" ? e.uploads.map((u) => ({ workerId: e.workerId, upload: u })) : []));
  const done = log.run({ type: "CreateVersions", at: T0, creates: ["/b1", "/b2"].map((path, i) => create({ path, uploadId: `B${i}`, pieces: 1, replicas: 1 })) });
  assert.equal(done.slice(0, 2).map((e) => e.type), ["FileCreated", "FileCreated"]);
  const applied = shares(done)[0]!;
  // /b3 created, its assignment not logged yet.
  const decided = decide(log.state, { type: "CreateVersions", at: T0, creates: [create({ path: "/b3", uploadId: "B3", pieces: 1, replicas: 1 })] });
  assert.is(log.append(decided[0]).rejected, undefined);
  const { workerId, upload } = shares(decided)[0]!;
  const ua = (w: string, uploads: unknown[]) => ({ type: "UploadsAssigned", at: T0, workerId: w, uploads });
  thenRejected(log, ua(workerId, [upload, upload]), /version 1 of file file-B3 is assigned twice in one event/, "one version twice");
  thenRejected(log, ua("c", [upload]), /worker c is not live/, "a lost worker");
  thenRejected(log, ua(workerId, [{ ...upload, uploadId: "B0" }]), /is upload B3, not B0/, "another upload's id");
  thenRejected(log, ua(workerId, [{ ...upload, version: 9 }]), /file file-B3 has no version 9/, "an unknown version");
  thenRejected(log, ua(applied.workerId, [upload, applied.upload]), /is already a peer/, "a good upload, then one already assigned");
  assert.is(log.state.files.get("file-B3")!.versions.get(1)!.pieces[0]!.peers.length, 0, "nothing of a rejected event was applied");
  assert.is(log.append(ua(workerId, [upload])).rejected, undefined);
  assert.is(log.state.files.get("file-B3")!.versions.get(1)!.pieces[0]!.peers.length, 1);
});

Table("fold - an older master's FileCreated then PiecesPlanned leave the table a FileCreated with its plan leaves", () => {
  const plan = [{ index: 0, size: MIN_PIECE_SIZE, sha256: sha("o0") }, { index: 1, size: 5, sha256: sha("o1") }];
  const created = { ...samples().FileCreated, fileId: "O", path: "/o", size: MIN_PIECE_SIZE + 5 };
  const old = busyLog();
  assert.is(old.append(created).rejected, undefined);
  assert.is(old.append({ type: "PiecesPlanned", at: T0, fileId: "O", version: 1, pieces: plan }).rejected, undefined);
  const now = busyLog();
  assert.is(now.append({ ...created, pieces: plan }).rejected, undefined);
  assert.equal(table(now.state), table(old.state));
});

Table("fold - a streamed version grows with its pieces and commits only once sealed", () => {
  const { log, placed } = streamLog();
  const v = log.state.files.get("S")!.versions.get(1)!;
  assert.is(v.stream, "open");
  assert.is(v.size, STREAM_SIZE);
  assert.is(v.sha256, "");
  confirmAll(log, placed);
  assert.is(v.completePieces, 3);
  assert.is(v.status, "pending", "every piece stored, but not sealed: pending");
  thenRejected(log, { type: "FileCommitted", at: T0, fileId: "S", path: "/s", version: 1, size: STREAM_SIZE, sha256: "" }, /^FileCommitted\.sha256: /, "a commit with no sha256");
  thenRejected(log, { type: "FileCommitted", at: T0, fileId: "S", path: "/s", version: 1, size: STREAM_SIZE, sha256: sha(0) }, /has sha256 .*, not /, "a commit before the seal");
  const sealed = log.run({ type: "SealUpload", at: T0, uploadId: "S1", size: STREAM_SIZE, sha256: sha("whole s") });
  assert.equal(sealed.map((e) => e.type), ["FileSealed", "FileCommitted"]);
  assert.equal({ status: v.status, stream: v.stream, size: v.size, sha256: v.sha256 }, { status: "committed", stream: "sealed", size: STREAM_SIZE, sha256: sha("whole s") });
});

Table("fold - pieces of a stream planned out of order, twice, after a short one, of a bad size, or after the seal", () => {
  const { log } = streamLog();
  const plan = (fileId: string, pieces: unknown[]) => ({ type: "PiecesPlanned", at: T0, fileId, version: 1, pieces });
  const p = (index: number, size = MIN_PIECE_SIZE) => ({ index, size, sha256: sha(`t${index}`) });
  thenRejected(log, plan("S", [p(4)]), /piece 4 is out of order: the next piece of version 1 of file S is 3/, "a piece skipped");
  thenRejected(log, plan("S", [p(1)]), /piece 1 is already planned/, "a piece planned twice");
  thenRejected(log, plan("S", [p(3)]), /piece 3 follows a short piece \(10 of 4096 bytes\), which must be the last/, "a piece after a short one");
  log.run({ type: "CreateStream", at: T0, uploadId: "T1", newFileId: "T", path: "/t", pieceSize: MIN_PIECE_SIZE, replicas: 1 });
  thenRejected(log, plan("T", [p(0, MIN_PIECE_SIZE + 1)]), /piece 0 has 4097 bytes, not 1 to 4096/, "a piece larger than the piece size");
  thenRejected(log, plan("T", [p(0, 0)]), /piece 0 has 0 bytes, not 1 to 4096/, "an empty piece");
  thenRejected(log, plan("T", [p(0, 10), p(1)]), /piece 1 follows a short piece/, "a short piece before another in one event");
  thenRejected(log, plan("T", [p(0), p(0)]), /piece 0 is already planned/, "twice in one event");
  assert.is(log.append(plan("T", [p(0), p(1, 7)])).rejected, undefined, "full pieces, then a short last one");
  log.run({ type: "SealUpload", at: T0, uploadId: "S1", size: STREAM_SIZE, sha256: sha("whole s") });
  thenRejected(log, plan("S", [p(3)]), /version 1 of file S is sealed: no piece is planned after it/, "a piece after the seal");
});

Table("fold - FileSealed whose sizes do not add up, of a version not streamed, or a second one", () => {
  const { log } = streamLog();
  const seal = (extra: object = {}) => ({ type: "FileSealed", at: T0, fileId: "S", path: "/s", version: 1, size: STREAM_SIZE, sha256: sha("whole s"), pieces: 3, ...extra });
  thenRejected(log, seal({ size: STREAM_SIZE + 1 }), /the pieces of version 1 of file S hold 8202 bytes, not 8203/, "a size the pieces do not add up to");
  thenRejected(log, seal({ size: STREAM_SIZE - 10 }), /hold 8202 bytes, not 8192/, "a size short of the last piece");
  thenRejected(log, seal({ pieces: 2 }), /8202 bytes in pieces of 4096 are 3 pieces; 3 are planned, the seal says 2/, "a piece count that does not match");
  thenRejected(log, seal({ path: "/x" }), /version 1 of file S is \/s, not \/x/, "another path");
  thenRejected(log, seal({ fileId: "F", path: "/f", version: 2 }), /version 2 of file F is not streamed: its size was declared at create/, "a version not streamed");
  thenRejected(log, seal({ fileId: "F", path: "/f", version: 1 }), /version 1 of file F is committed, not pending/, "a committed version");
  thenRejected(log, seal({ fileId: "ghost" }), /no file ghost/, "an unknown file");
  const empty = { type: "FileCreated", at: T0, fileId: "E", path: "/e", version: 1, size: 0, pieceSize: MIN_PIECE_SIZE, replicas: 1, uploadId: "E1", streamed: true };
  assert.is(log.append(empty).rejected, undefined);
  const sealEmpty = { type: "FileSealed", at: T0, fileId: "E", path: "/e", version: 1, size: 0, pieces: 0 };
  thenRejected(log, { ...sealEmpty, sha256: sha("not empty") }, /the 0 planned pieces of version 1 of file E hash to e3b0c44298fc…, not /, "an empty stream sealed with another sha256");
  assert.is(log.append({ ...sealEmpty, sha256: sha("") }).rejected, undefined, "an empty stream sealed with the empty content's sha256");
  assert.is(log.append(seal()).rejected, undefined, "the seal that adds up");
  thenRejected(log, seal(), /version 1 of file S is already sealed/, "a second seal");
  thenRejected(log, seal({ sha256: sha("other") }), /already sealed/, "a second seal with another sha256");
});

Table("fold - a streamed FileCreated declares no sha256 and no size", () => {
  const log = busyLog();
  const streamed: Record<string, unknown> = { ...samples().FileCreated, size: 0, streamed: true };
  delete streamed.sha256;
  thenRejected(log, { ...streamed, sha256: sha(1) }, /^FileCreated\.sha256: is declared unless the version is streamed/, "a streamed create with a sha256");
  thenRejected(log, { ...streamed, size: 10 }, /^FileCreated\.size: of a streamed version is 0/, "a streamed create with a size");
  thenRejected(log, { ...streamed, streamed: false }, /^FileCreated\.streamed: /, "streamed: false");
  assert.is(log.append(streamed).rejected, undefined, "a streamed create");
  assert.is(log.state.files.get("N")!.versions.get(1)!.stream, "open");
});

Table("fold - PeersAssigned that does not fit the plan, the upload, the worker or the roles", () => {
  const log = busyLog();
  const v2 = log.state.files.get("F")!.versions.get(2)!;
  const p0 = v2.pieces[0]!;
  const major = p0.peers.find((p) => p.role === "major")!.workerId;
  const peerIds = p0.peers.map((p) => p.workerId);
  const assign = (workerId: string, pieces: unknown[], extra: object = {}) => ({ type: "PeersAssigned", at: T0, fileId: "F", version: 2, uploadId: "U2", workerId, pieces, ...extra });
  const entry = (extra: object = {}) => ({ piece: 0, size: p0.size, sha256: p0.sha256, role: "minor", pullFrom: major, ...extra });
  thenRejected(log, assign("a", [entry()], { version: 1, uploadId: "U1" }), /version 1 of file F is committed, not pending/, "committed version");
  thenRejected(log, assign("a", [entry()], { fileId: "ghost" }), /no file ghost/, "unknown file");
  thenRejected(log, assign("a", [entry()], { uploadId: "U1" }), /is upload U2, not U1/, "another upload's id");
  thenRejected(log, assign("c", [entry()]), /worker c is not live/, "a lost worker");
  thenRejected(log, assign("zed", [entry()]), /worker zed is not live/, "an unknown worker");
  thenRejected(log, assign(peerIds[0]!, [entry({ piece: 9 })]), /piece 9 is not planned/, "unplanned piece");
  thenRejected(log, assign(peerIds[0]!, [entry({ sha256: sha("other") })]), /not as assigned/, "another sha256");
  thenRejected(log, assign(peerIds[0]!, [entry({ size: 1 })]), /not as assigned/, "another size");
  thenRejected(log, assign(peerIds[0]!, [entry()]), new RegExp(`worker ${peerIds[0]} is already a peer of piece 0`), "a peer twice");
  // Piece 0 of v2 has its two peers already: a third is one too many while both count (live,
  // or stored); a lost peer that stored nothing no longer does, and its share may go elsewhere.
  const outsider = ["a", "b"].find((w) => !peerIds.includes(w));
  const counting = p0.peers.filter((p) => p0.stored.includes(p.workerId) || log.state.workers.get(p.workerId)!.live).length;
  if (outsider && counting === 2) thenRejected(log, assign(outsider, [entry()]), /already has its 2 peers/, "a third peer");
  // Roles, on a new file N, planned and not yet placed.
  assert.is(log.append({ ...samples().FileCreated, fileId: "N", path: "/n", size: MIN_PIECE_SIZE, replicas: 3 }).rejected, undefined);
  assert.is(log.append({ type: "PiecesPlanned", at: T0, fileId: "N", version: 1, pieces: [{ index: 0, size: MIN_PIECE_SIZE, sha256: sha(1) }] }).rejected, undefined);
  const onN = (workerId: string, extra: object) => ({ type: "PeersAssigned", at: T0, fileId: "N", version: 1, uploadId: "U9", uploader: "client-bob", workerId, pieces: [{ piece: 0, size: MIN_PIECE_SIZE, sha256: sha(1), ...extra }] });
  thenRejected(log, onN("a", { role: "major", pullFrom: "b" }), /the major of piece 0 pulls from the uploader, not from b/, "a major with a source");
  thenRejected(log, onN("a", { role: "minor" }), /a minor of piece 0 must pull from another worker/, "a minor with no source");
  thenRejected(log, onN("a", { role: "minor", pullFrom: "a" }), /must pull from another worker/, "a minor pulling from itself");
  thenRejected(log, onN("a", { role: "minor", pullFrom: "zed" }), /no worker zed to pull piece 0 from/, "a minor pulling from nobody");
  thenRejected(log, { ...onN("a", { role: "major" }), pieces: [{ piece: 0, size: MIN_PIECE_SIZE, sha256: sha(1), role: "major" }, { piece: 0, size: MIN_PIECE_SIZE, sha256: sha(1), role: "major" }] }, /already a peer of piece 0/, "one piece twice in an event");
  assert.is(log.append(onN("b", { role: "minor", pullFrom: "a" })).rejected, undefined, "a minor before its major is accepted");
  assert.is(log.append(onN("a", { role: "major" })).rejected, undefined, "the major");
  log.run({ type: "NoteHeartbeat", at: T0, workerId: "c" });
  thenRejected(log, onN("c", { role: "major" }), /piece 0 already has a major, a/, "a second major");
  thenRejected(log, onN("c", { role: "minor", pullFrom: "b" }), /the major of piece 0 is a, not b/, "a minor pulling from a minor");
});

Table("fold - PieceStored by a worker not a peer, with the wrong sha256, twice, or of no pending version", () => {
  const log = busyLog();
  const v2 = log.state.files.get("F")!.versions.get(2)!;
  const p0 = v2.pieces[0]!;
  const stored = p0.stored[0]!;
  const notStored = p0.peers.map((p) => p.workerId).find((w) => w !== stored)!;
  const stranger = ["a", "b", "c"].find((w) => !p0.peers.some((p) => p.workerId === w))!;
  const ps = (extra: object) => ({ type: "PieceStored", at: T0, fileId: "F", version: 2, piece: 0, workerId: notStored, sha256: p0.sha256, ...extra });
  thenRejected(log, ps({ workerId: stranger }), new RegExp(`worker ${stranger} is not a peer of piece 0`), "not a peer");
  thenRejected(log, ps({ sha256: sha("forged") }), /piece 0 has sha256 [0-9a-f]{12}…, not/, "wrong sha256");
  thenRejected(log, ps({ workerId: stored }), new RegExp(`worker ${stored} already stored piece 0`), "stored twice");
  thenRejected(log, ps({ piece: 5 }), /piece 5 of version 2 of file F is not planned/, "unplanned piece");
  thenRejected(log, ps({ version: 1 }), /version 1 of file F is committed, not pending/, "committed version");
  thenRejected(log, ps({ fileId: "ghost" }), /no file ghost/, "unknown file");
  assert.is(log.append(ps({})).rejected, undefined, "the real confirmation is accepted");
});

Table("fold - FileCommitted of an incomplete, committed or unknown version, or with other facts than FileCreated", () => {
  const log = busyLog();
  const v2 = log.state.files.get("F")!.versions.get(2)!;
  const fc = { type: "FileCommitted", at: T0, fileId: "F", path: "/f", version: 2, size: v2.size, sha256: v2.sha256 };
  thenRejected(log, fc, /not every piece of version 2 of file F holds its 2 replicas/, "a forged commit of a pending version");
  thenRejected(log, { ...fc, fileId: "P", version: 1 }, /version 1 of file P is \/p, not \/f/, "another file's facts");
  const v1 = log.state.files.get("F")!.versions.get(1)!;
  thenRejected(log, { ...fc, version: 1, size: v1.size, sha256: v1.sha256 }, /version 1 of file F is committed, not pending/, "committed twice");
  thenRejected(log, { ...fc, version: 3 }, /file F has no version 3/, "unknown version");
  // Complete v2, then a commit that names another path, size or sha256 is still refused.
  for (const piece of v2.pieces) {
    for (const peer of piece.peers) {
      if (!piece.stored.includes(peer.workerId)) log.append({ type: "PieceStored", at: T0, fileId: "F", version: 2, piece: piece.index, workerId: peer.workerId, sha256: piece.sha256 });
    }
  }
  assert.is(log.state.rejected.count, 4);
  thenRejected(log, { ...fc, path: "/elsewhere" }, /version 2 of file F is \/f, not \/elsewhere/, "another path");
  thenRejected(log, { ...fc, size: 1 }, /has 8192 bytes, not 1/, "another size");
  thenRejected(log, { ...fc, sha256: sha("x") }, /has sha256 .*, not/, "another sha256");
  assert.is(log.append(fc).rejected, undefined, "the real commit is accepted");
});

Table("fold - UploadAbandoned of a version not pending, or with another path", () => {
  const log = busyLog();
  const ua = { type: "UploadAbandoned", at: T0, fileId: "F", path: "/f", version: 2, code: "X", reason: "r" };
  thenRejected(log, { ...ua, version: 1 }, /version 1 of file F is committed, not pending/, "a committed version");
  thenRejected(log, { ...ua, fileId: "ghost" }, /no file ghost/, "unknown file");
  thenRejected(log, { ...ua, path: "/g" }, /version 2 of file F is \/f, not \/g/, "another path");
  assert.is(log.append(ua).rejected, undefined);
  thenRejected(log, ua, /version 2 of file F is abandoned, not pending/, "abandoned twice");
});

Table("fold - FileDeleted with a wrong path, of a deleted or never committed file, or of a version not committed", () => {
  const log = busyLog();
  const fd = { type: "FileDeleted", at: T0, fileId: "F", path: "/f" };
  thenRejected(log, { ...fd, path: "/not-f" }, /file F is \/f, not \/not-f/, "a forged delete with a wrong path");
  thenRejected(log, { ...fd, fileId: "ghost" }, /no file ghost/, "unknown file");
  thenRejected(log, { ...fd, fileId: "G", path: "/g" }, /file G is already deleted/, "deleted twice");
  thenRejected(log, { ...fd, fileId: "P", path: "/p" }, /file P has no committed version/, "a file never committed");
  thenRejected(log, { ...fd, version: 2 }, /version 2 of file F is pending, not committed/, "a pending version");
  thenRejected(log, { ...fd, version: 5 }, /file F has no version 5/, "unknown version");
  assert.is(log.append({ ...fd, version: 1 }).rejected, undefined, "the committed version goes");
  thenRejected(log, { ...fd, version: 1 }, /version 1 of file F is deleted, not committed/, "that version twice");
});

Table("fold - PiecesDropped of pieces a worker must keep", () => {
  const log = busyLog();
  const [workerId, owed] = [...log.state.dropsOwed.entries()][0]!;
  const one = [...owed][0]!;
  const pd = (w: string, sha256s: string[]) => ({ type: "PiecesDropped", at: T0, workerId: w, sha256s });
  thenRejected(log, pd("zed", [one]), /no worker zed/, "unknown worker");
  thenRejected(log, pd(workerId, [one, one]), /is dropped twice/, "the same piece twice");
  // A live piece of /f is needed where it is: its holders must keep it.
  const live = log.state.files.get("F")!.versions.get(1)!.pieces[0]!;
  thenRejected(log, pd(live.stored[0]!, [live.sha256]), /does not owe a drop of .*which it must keep/, "a piece a live version needs");
  assert.is(log.append(pd(workerId, [one])).rejected, undefined, "an owed drop is accepted");
  // Bytes no live version needs may go from any known worker: nothing is lost.
  assert.is(log.append(pd("b", [sha("never placed")])).rejected, undefined, "bytes nobody needs");
});

Table.run();

// =============================================================================================
// one fold for everyone

const Everyone = suite("fold: the same for every reader");

Everyone("fold - everything the decider emits is accepted, including creates retried after part of them landed", () => {
  const log = busyLog();
  const cmd = create({ path: "/retried", uploadId: "R", pieces: 3, replicas: 2 });
  const original = decide(log.state, cmd);
  // FileCreated (with its plan) and one PeersAssigned landed; then the decision lost a race.
  for (const e of original.slice(0, 2)) assert.is(log.append(e).rejected, undefined);
  const retried = log.run(cmd);
  assert.ok(retried.length > 0 && retried.every((e) => e.type === "PeersAssigned"));
  assert.equal(log.run({ ...cmd, at: T0 + 1 }), [], "nothing is missing any more");
  confirmAll(log, [original[1]!, ...retried]);
  assert.is(log.state.files.get("file-R")!.versions.get(1)!.status, "committed");
  const empty = create({ path: "/empty", uploadId: "E", pieces: 0, replicas: 1 });
  const [created] = decide(log.state, empty);
  log.append(created);
  log.run(empty); // the commit of an empty file, decided again
  log.run({ type: "AbandonUpload", at: T0, uploadId: "U4", code: "UPLOAD_ABANDONED", reason: "x".repeat(5_000) });
  log.run({ type: "Reconcile", at: T0 });
  assert.is(log.state.rejected.count, 0);
  assert.is(log.state.files.get("file-E")!.versions.get(1)!.status, "committed");
});

Everyone("fold - a create asked again with its upload id, path, size and sha256 but other pieces is refused, not placed with bytes the plan does not have", () => {
  const log = busyLog();
  const cmd = create({ path: "/retried", uploadId: "R", pieces: 3, replicas: 2 });
  // FileCreated (with its plan) landed, no peer yet: anyone who knows the id, size and sha256 (history shows them) asks again.
  for (const e of decide(log.state, cmd).slice(0, 1)) assert.is(log.append(e).rejected, undefined);
  const otherHashes = { ...cmd, pieces: cmd.pieces.map((p) => ({ ...p, sha256: sha(`other ${p.index}`) })) };
  assert.is(code(() => decide(log.state, otherHashes)), "BAD_REQUEST", "other piece hashes");
  const otherLayout = { ...cmd, pieceSize: 3 * MIN_PIECE_SIZE, pieces: [{ index: 0, size: 3 * MIN_PIECE_SIZE, sha256: cmd.sha256 }] }; // one piece, whose SHA-256 is the whole one
  assert.is(code(() => decide(log.state, otherLayout)), "BAD_REQUEST", "another piece size");
  assert.is(code(() => decide(log.state, { ...cmd, replicas: 3 })), "BAD_REQUEST", "other replicas");
  assert.ok(log.run(cmd).every((e) => e.type === "PeersAssigned"), "the same create asked again places the plan");
  assert.is(log.state.rejected.count, 0);
});

Everyone("fold - everything the decider emits for a stream is accepted, retries included; what it refuses is coded", () => {
  const log = busyLog();
  const open = { type: "CreateStream", at: T0, uploadId: "R1", newFileId: "R", path: "/r", pieceSize: MIN_PIECE_SIZE, replicas: 2 } as const;
  log.run(open);
  assert.equal(log.run(open), [], "a create asked again");
  const p = (index: number, size = MIN_PIECE_SIZE) => ({ index, size, sha256: sha(`r${index}`) });
  const extend = (pieces: ReturnType<typeof p>[]) => ({ type: "ExtendUpload", at: T0, uploadId: "R1", pieces }) as const;
  assert.is(code(() => decide(log.state, extend([p(1)]))), "BAD_REQUEST", "out of order");
  assert.is(code(() => decide(log.state, extend([p(0, MIN_PIECE_SIZE + 1)]))), "BAD_REQUEST", "too large");
  assert.is(code(() => decide(log.state, { ...extend([p(0)]), uploadId: "U2" })), "BAD_REQUEST", "an upload that is not streamed");
  assert.is(code(() => decide(log.state, { ...extend([p(0)]), uploadId: "nope" })), "NOT_FOUND", "no such upload");
  assert.equal(log.run(extend([])), [], "a keepalive decides nothing");
  const first = decide(log.state, extend([p(0), p(1)]));
  // The plan landed, the placement did not: the extend asked again places what is missing.
  assert.is(log.append(first[0]).rejected, undefined);
  const placed = [...log.run(extend([p(0), p(1)])), ...log.run(extend([p(1), p(2, 5)]))];
  assert.ok(placed.every((e) => e.type === "PeersAssigned" || e.type === "PiecesPlanned"));
  assert.is(code(() => decide(log.state, extend([p(1, 7)]))), "BAD_REQUEST", "a planned piece with other bytes");
  assert.is(code(() => decide(log.state, extend([p(3)]))), "BAD_REQUEST", "a piece after a short one");
  const size = 2 * MIN_PIECE_SIZE + 5;
  const seal = { type: "SealUpload", at: T0, uploadId: "R1", size, sha256: sha("whole r") } as const;
  assert.is(code(() => decide(log.state, { ...seal, size: size + 1 })), "BAD_REQUEST", "a seal whose size the pieces do not hold");
  assert.is(code(() => decide(log.state, { ...seal, uploadId: "U2" })), "BAD_REQUEST", "a seal of an upload that is not streamed");
  assert.equal(log.run(seal).map((e) => e.type), ["FileSealed"], "sealed, not complete: no commit yet");
  assert.equal(log.run(seal), [], "a seal asked again");
  assert.is(code(() => decide(log.state, { ...seal, sha256: sha("other") })), "BAD_REQUEST", "a second seal with another sha256");
  confirmAll(log, [...first, ...placed]);
  assert.is(log.state.files.get("R")!.versions.get(1)!.status, "committed", "the last piece stored commits the sealed version");
  assert.is(code(() => decide(log.state, extend([p(3)]))), "UPLOAD_ABANDONED", "an extend of a committed upload");
  // An empty stream commits at its seal; an open one abandoned refuses more pieces.
  log.run({ ...open, uploadId: "E1", newFileId: "E", path: "/e" });
  assert.is(code(() => decide(log.state, { ...seal, uploadId: "E1", size: 0, sha256: sha("not empty") })), "CHECKSUM_MISMATCH", "an empty stream sealed with another sha256 than the empty content's");
  assert.equal(log.run({ ...seal, uploadId: "E1", size: 0, sha256: sha("") }).map((e) => e.type), ["FileSealed", "FileCommitted"]);
  // One piece is the whole content: the seal must say that piece's SHA-256.
  log.run({ ...open, uploadId: "O1", newFileId: "O", path: "/o" });
  log.run({ ...extend([p(0, 7)]), uploadId: "O1" });
  assert.is(code(() => decide(log.state, { ...seal, uploadId: "O1", size: 7, sha256: sha("whole o") })), "CHECKSUM_MISMATCH", "one piece sealed with another sha256 than its own");
  assert.equal(log.run({ ...seal, uploadId: "O1", size: 7, sha256: sha("r0") }).map((e) => e.type), ["FileSealed"]);
  log.run({ ...open, uploadId: "A1", newFileId: "A", path: "/a" });
  log.run({ type: "AbandonUpload", at: T0, uploadId: "A1", code: "TIMEOUT", reason: "quiet" });
  assert.is(code(() => decide(log.state, { ...extend([p(0)]), uploadId: "A1" })), "UPLOAD_ABANDONED");
  assert.is(log.state.rejected.count, 0);
});

Everyone("fold - a snapshot of a table with an open stream holds it exactly, and the seal folds alike on both", async () => {
  const { log, placed } = streamLog();
  confirmAll(log, placed);
  const bytes = await encodeTable(log.state);
  const head = { format: SNAPSHOT_FORMAT, snapshotId: "snap", seq: log.state.lastSeq, digest: stateDigest(log.state), bytes: bytes.length, chunks: 1, sha256: createHash("sha256").update(bytes).digest("hex"), at: T0, files: log.state.paths.size };
  const restored = decodeTable(head, [bytes]);
  assert.is(stateDigest(restored), stateDigest(log.state));
  assert.equal(table(restored), table(log.state));
  assert.is(restored.files.get("S")!.versions.get(1)!.stream, "open");
  assert.ok(restored.uploads.get("S1") === restored.files.get("S")!.versions.get(1), "the upload's version is the file's, not a copy");
  const seal = { type: "SealUpload", at: T0, uploadId: "S1", size: STREAM_SIZE, sha256: sha("whole s") } as const;
  const events = decide(restored, seal);
  assert.equal(events, decide(log.state, seal), "the same decision from the snapshot");
  for (const e of events) {
    assert.is(evolve(restored, e), undefined);
    assert.is(evolve(log.state, e), undefined);
  }
  assert.is(stateDigest(restored), stateDigest(log.state));
  assert.is(restored.files.get("S")!.versions.get(1)!.status, "committed");
});

Everyone("fold - a replay of the bytes reaches the same digest, rejections included", () => {
  const log = busyLog();
  log.append({ type: "PiecesPlanned", at: 1, fileId: "F", version: 2, pieces: 5 });
  log.append({ type: "FileCommitted", at: T0, fileId: "F", path: "/f", version: 2, size: 2 * MIN_PIECE_SIZE, sha256: sha(5) });
  log.run({ type: "NoteHeartbeat", at: T0, workerId: "d" });
  const replayed = initialState();
  for (const m of log.messages) foldLogged(replayed, cat, m);
  assert.is(stateDigest(replayed), stateDigest(log.state));
  assert.is(replayed.rejected.count, 2);
  assert.equal(replayed.rejected.recent.map((r) => r.seq), [log.messages.length - 2, log.messages.length - 1]);
  // The rejections are part of the digest: a table that skipped them silently differs.
  const silent = initialState();
  for (const m of log.messages) {
    const before = stateDigest(silent);
    foldLogged(silent, cat, m);
    if (silent.rejected.count > 0) {
      assert.is.not(stateDigest(silent), before);
      break;
    }
  }
});

Everyone("fold - the recent rejections are bounded, the count is not", () => {
  const log = new Log();
  for (let i = 0; i < RECENT_REJECTIONS_KEPT + 5; i++) log.append({ type: "WorkerLost", at: T0, workerId: "ghost", reason: "x" });
  assert.is(log.state.rejected.count, RECENT_REJECTIONS_KEPT + 5);
  assert.is(log.state.rejected.recent.length, RECENT_REJECTIONS_KEPT);
  assert.is(log.state.rejected.recent[0]!.seq, 6, "the oldest go first");
  assert.is(log.state.rejected.recent.at(-1)!.seq, RECENT_REJECTIONS_KEPT + 5);
});

Everyone("fold - evolve never throws on well-formed events naming anything", () => {
  // A small vocabulary, so random events often hit real files, versions, pieces and workers.
  let seed = 7;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const pick = <T>(items: readonly T[]): T => items[rand(items.length)]!;
  const ids = ["a", "b", "F", "P", "U2", "N"];
  const shas = [sha(1), sha(2), piece0("F", 2).sha256];
  const log = busyLog();
  const types = Object.keys(samples()) as EventType[];
  for (let i = 0; i < 5_000; i++) {
    const value: Record<string, unknown> = { ...samples()[pick(types)] };
    for (const key of Object.keys(value)) {
      if (key === "type" || key === "at") continue;
      if (key.endsWith("Id")) value[key] = pick(ids);
      else if (key === "version") value[key] = 1 + rand(3);
      else if (key === "piece") value[key] = rand(3);
      else if (key === "path") value[key] = pick(["/f", "/g", "/p", "/n"]);
      else if (key === "sha256") value[key] = pick(shas);
      else if (key === "size") value[key] = pick([0, MIN_PIECE_SIZE, 2 * MIN_PIECE_SIZE]);
      else if (key === "pieces" && value.type === "FileSealed") value[key] = rand(3);
      else if (key === "pieces" && value.type === "PiecesPlanned") value[key] = [{ index: rand(3), size: MIN_PIECE_SIZE, sha256: pick(shas) }];
      else if (key === "pieces") value[key] = [{ piece: rand(3), size: MIN_PIECE_SIZE, sha256: pick(shas), role: pick(["major", "minor"]), ...(rand(2) ? { pullFrom: pick(ids) } : {}) }];
      else if (key === "sha256s") value[key] = [pick(shas)];
    }
    // Streamed versions too: opened, grown, sealed.
    if (value.type === "FileCreated" && rand(2)) Object.assign(value, { streamed: true, size: 0, sha256: undefined });
    const parsed = parseEvent(value);
    if ("event" in parsed) evolve(log.state, parsed.event, log.state.lastSeq + 1);
  }
  assert.ok(log.state.rejected.count > 0 && log.state.rejected.count < 5_000, `${log.state.rejected.count} rejected`);
});

Everyone("fold - versions of one piece with the same copies each change alone, and read back as the pieces planned", async () => {
  const log = new Log();
  log.run({ type: "NoteHeartbeat", at: T0, workerId: "a" });
  // Two one-piece files placed on the only worker: the same peers, nothing stored yet.
  const first = log.run(create({ path: "/one", uploadId: "O1", newFileId: "ONE", pieces: 1, replicas: 1 }));
  log.run(create({ path: "/two", uploadId: "O2", newFileId: "TWO", pieces: 1, replicas: 1 }));
  const version = (fileId: string) => log.state.files.get(fileId)!.versions.get(1)!;
  assert.equal(version("ONE").pieces, version("TWO").pieces.map((p) => ({ ...p, sha256: version("ONE").sha256 })), "the same copies");
  confirmAll(log, first);
  assert.equal(version("ONE").pieces, [{ index: 0, size: MIN_PIECE_SIZE, sha256: sha("O1/0"), peers: [{ workerId: "a", role: "major" }], stored: ["a"] }]);
  assert.equal(version("TWO").pieces, [{ index: 0, size: MIN_PIECE_SIZE, sha256: sha("O2/0"), peers: [{ workerId: "a", role: "major" }], stored: [] }], "the other's copy is not stored");
  assert.equal([version("ONE").status, version("ONE").completePieces, version("TWO").status, version("TWO").completePieces], ["committed", 1, "pending", 0]);
  assert.is(version("ONE").committedAt, T0);
  // A version of several pieces beside them, and the table read back from a snapshot.
  confirmAll(log, log.run(create({ path: "/three", uploadId: "O3", newFileId: "THREE", pieces: 3, replicas: 1 })));
  const bytes = await encodeTable(log.state);
  const head = { format: SNAPSHOT_FORMAT, snapshotId: "snap", seq: log.state.lastSeq, digest: stateDigest(log.state), bytes: bytes.length, chunks: 1, sha256: createHash("sha256").update(bytes).digest("hex"), at: T0, files: log.state.paths.size };
  const decoded = decodeTable(head, [bytes]);
  for (const fileId of ["ONE", "TWO", "THREE"]) assert.equal(decoded.files.get(fileId)!.versions.get(1)!.pieces, version(fileId).pieces, fileId);
  assert.is(stateDigest(decoded), stateDigest(log.state));
});

Everyone.run();
