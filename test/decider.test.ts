// The master's pure core, given(events) / when(command) / then(events or error): no server,
// no clock, no I/O. `decide` reads a fold of the log and says what the log lacks; `evolve`
// folds; the queries read the fold.
import { createHash } from "node:crypto";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { DEFAULT_UPLOAD_CAPS, decide, type Command, type ConfirmPiece, type CreateStream, type CreateVersion } from "../src/decide.js";
import { DfsError, ErrorCodes, type ErrorCode } from "../src/errors.js";
import {
  MAX_PIECE_SIZE,
  MAX_PIECES,
  MAX_REPLICAS,
  MIN_PIECE_SIZE,
  PIECES_PER_EVENT,
  type DfsEvent,
  type EventType,
  type FileCommitted,
  type FileCreated,
  type PiecesDropped,
  type PieceStored,
  type PlannedPiece,
  type UploadAbandoned,
  wholeSha256Of,
} from "../src/events.js";
import { encode } from "../src/codec.js";
import { list, listPage, locate, locatePage, stat, STAT_VERSIONS, uploadPlan } from "../src/queries.js";
import { initialState, projection, stateDigest, type State } from "../src/state.js";
import { evolve, foldEvents } from "../src/fold.js";

// ---------------------------------------------------------------------------------------------
// given / when / then

/** The master's table after these events. A fresh state every time: evolve folds in place. */
function given(...events: (DfsEvent | readonly DfsEvent[])[]): State {
  return foldEvents(events.flat() as DfsEvent[]);
}

/** What the master decides; the state is only read. */
function when(state: State, cmd: Command): DfsEvent[] {
  return decide(state, cmd);
}

/** when(), expecting a DfsError with this code. */
function whenRefused(state: State, cmd: Command, code: ErrorCode, label: string = cmd.type): DfsError {
  let events: DfsEvent[];
  try {
    events = decide(state, cmd);
  } catch (err) {
    assert.instance(err, DfsError, label);
    assert.is((err as DfsError).code, code, label);
    return err as DfsError;
  }
  assert.unreachable(`${label}: expected ${code}, got ${JSON.stringify(events.map((e) => e.type))}`);
  throw new Error("unreachable");
}

function throwsCode(fn: () => unknown, code: ErrorCode, label: string): void {
  try {
    fn();
  } catch (err) {
    assert.instance(err, DfsError, label);
    assert.is((err as DfsError).code, code, label);
    return;
  }
  assert.unreachable(`${label}: expected ${code}`);
}

/** A growing log: each command is decided against the fold so far, and its events appended. */
class History {
  readonly events: DfsEvent[] = [];
  readonly state: State = initialState();
  constructor(...events: (DfsEvent | readonly DfsEvent[])[]) {
    this.append(events.flat() as DfsEvent[]);
  }
  append(events: readonly DfsEvent[]): void {
    for (const e of events) {
      evolve(this.state, e);
      this.events.push(e);
    }
  }
  run(cmd: Command): DfsEvent[] {
    const events = decide(this.state, cmd);
    this.append(events);
    return events;
  }
}

const types = (events: readonly DfsEvent[]): EventType[] => events.map((e) => e.type);
function ofType<T extends DfsEvent["type"]>(events: readonly DfsEvent[], type: T): Extract<DfsEvent, { type: T }>[] {
  return events.filter((e): e is Extract<DfsEvent, { type: T }> => e.type === type);
}

// ---------------------------------------------------------------------------------------------
// fixtures

const T0 = 1_700_000_000_000;
const sha = (seed: string | number): string => createHash("sha256").update(String(seed)).digest("hex");

function joined(...workerIds: string[]): DfsEvent[] {
  return workerIds.map((workerId, i) => ({ type: "WorkerJoined", at: T0 + i, workerId }));
}

interface CreateOptions {
  path?: string;
  size?: number;
  pieceSize?: number;
  replicas?: number;
  uploadId?: string;
  newFileId?: string;
  at?: number;
  sha256?: string;
  /** Piece i's content hash (default: distinct per upload and piece). */
  pieceSha?: (index: number) => string;
}

/** A well-formed CreateVersion: the pieces follow from size and piece size. */
function create(o: CreateOptions = {}): CreateVersion {
  const uploadId = o.uploadId ?? "up1";
  const size = o.size ?? 3 * MIN_PIECE_SIZE;
  const pieceSize = o.pieceSize ?? MIN_PIECE_SIZE;
  const count = size === 0 ? 0 : Math.ceil(size / pieceSize);
  const pieces: PlannedPiece[] = Array.from({ length: count }, (_, index) => ({
    index,
    size: index < count - 1 ? pieceSize : size - pieceSize * (count - 1),
    sha256: o.pieceSha ? o.pieceSha(index) : sha(`${uploadId}/${index}`),
  }));
  return {
    type: "CreateVersion",
    at: o.at ?? T0 + 1000,
    uploadId,
    newFileId: o.newFileId ?? `file-${uploadId}`,
    path: o.path ?? "/docs/report.pdf",
    size,
    sha256: o.sha256 ?? wholeSha256Of(pieces.map((p) => p.sha256)) ?? sha(`whole ${uploadId}`),
    pieceSize,
    replicas: o.replicas ?? 2,
    pieces,
  };
}

/** One successful confirmation per assigned piece (PeersAssigned, or an upload of UploadsAssigned), in assignment order. */
function confirmationsFor(events: readonly DfsEvent[], at = T0 + 5000): ConfirmPiece[] {
  const shares = events.flatMap((e) =>
    e.type === "PeersAssigned" ? [e] : e.type === "UploadsAssigned" ? e.uploads.map((u) => ({ workerId: e.workerId, ...u })) : [],
  );
  return shares.flatMap((a) =>
    a.pieces.map((p) => ({
      type: "ConfirmPiece" as const,
      at,
      workerId: a.workerId,
      fileId: a.fileId,
      version: a.version,
      piece: p.piece,
      sha256: p.sha256,
      ok: true,
    })),
  );
}

/** Create a version and confirm every replica: returns every event the upload appended. */
function upload(h: History, cmd: CreateVersion): DfsEvent[] {
  const created = h.run(cmd);
  const confirmed = confirmationsFor(created).flatMap((c) => h.run(c));
  return [...created, ...confirmed];
}

/** workerId → piece index → role, from PeersAssigned events. */
function placement(events: readonly DfsEvent[]): Map<string, Map<number, string>> {
  const out = new Map<string, Map<number, string>>();
  for (const a of ofType(events, "PeersAssigned")) {
    let m = out.get(a.workerId);
    if (!m) out.set(a.workerId, (m = new Map()));
    for (const p of a.pieces) {
      assert.not.ok(m.has(p.piece), `piece ${p.piece} assigned twice to ${a.workerId}`);
      m.set(p.piece, p.role);
    }
  }
  return out;
}

/** piece index → its peers with roles, from PeersAssigned events. */
function peersByPiece(events: readonly DfsEvent[]): Map<number, { workerId: string; role: string; pullFrom?: string }[]> {
  const out = new Map<number, { workerId: string; role: string; pullFrom?: string }[]>();
  for (const a of ofType(events, "PeersAssigned")) {
    for (const p of a.pieces) {
      let peers = out.get(p.piece);
      if (!peers) out.set(p.piece, (peers = []));
      peers.push({ workerId: a.workerId, role: p.role, ...(p.pullFrom ? { pullFrom: p.pullFrom } : {}) });
    }
  }
  return out;
}

/** Minors pull from their piece's major (pipelined replication); the major pulls from the uploader. */
function assertPipelined(byPiece: ReturnType<typeof peersByPiece>): void {
  for (const [piece, peers] of byPiece) {
    const major = peers.find((p) => p.role === "major")!;
    assert.is(major.pullFrom, undefined, `piece ${piece}: the major pulls from the uploader`);
    for (const minor of peers.filter((p) => p.role === "minor")) assert.is(minor.pullFrom, major.workerId, `piece ${piece}: minor ${minor.workerId}`);
  }
}

// =============================================================================================
// workers

const Workers = suite("decider: workers");

Workers("decider - a first heartbeat yields WorkerJoined", () => {
  const events = when(given(), { type: "NoteHeartbeat", at: T0, workerId: "w1" });
  assert.equal(events, [{ type: "WorkerJoined", at: T0, workerId: "w1" }]);
  const state = given(events);
  assert.ok(state.workers.get("w1")?.live);
  assert.is(state.workers.get("w1")?.assignedBytes, 0);
});

Workers("decider - a heartbeat from a live worker yields nothing", () => {
  assert.equal(when(given(joined("w1")), { type: "NoteHeartbeat", at: T0 + 10, workerId: "w1" }), []);
});

Workers("decider - a heartbeat from a lost worker yields WorkerJoined again", () => {
  const state = given(joined("w1"), { type: "WorkerLost", at: T0 + 1, workerId: "w1", reason: "silent" });
  assert.not.ok(state.workers.get("w1")!.live);
  const events = when(state, { type: "NoteHeartbeat", at: T0 + 2, workerId: "w1" });
  assert.equal(types(events), ["WorkerJoined"]);
  evolve(state, events[0]!);
  assert.ok(state.workers.get("w1")!.live);
  assert.is(state.workers.get("w1")!.joinedAt, T0 + 2);
});

Workers("decider - silence of a live worker yields WorkerLost", () => {
  const events = when(given(joined("w1", "w2")), { type: "NoteSilence", at: T0 + 9, workerId: "w2", silentMs: 6000 });
  assert.is(events.length, 1);
  const lost = ofType(events, "WorkerLost")[0]!;
  assert.is(lost.workerId, "w2");
  assert.is(lost.at, T0 + 9);
  assert.ok(lost.reason.includes("6000"), lost.reason);
  const state = given(joined("w1", "w2"), events);
  assert.ok(state.workers.get("w1")!.live);
  assert.not.ok(state.workers.get("w2")!.live);
});

Workers("decider - silence of an unknown or already lost worker yields nothing", () => {
  assert.equal(when(given(), { type: "NoteSilence", at: T0, workerId: "ghost", silentMs: 9000 }), []);
  const lost = given(joined("w1"), { type: "WorkerLost", at: T0 + 1, workerId: "w1", reason: "silent" });
  assert.equal(when(lost, { type: "NoteSilence", at: T0 + 2, workerId: "w1", silentMs: 9000 }), []);
});

Workers.run();

// =============================================================================================
// create

const Create = suite("decider: create");

Create("decider - a create of a new path yields FileCreated with its plan, then PeersAssigned", () => {
  const cmd = create({ path: "docs/a.txt", size: 2 * MIN_PIECE_SIZE + 10, replicas: 2, newFileId: "F1", uploadId: "U1", at: T0 + 77 });
  const events = when(given(joined("w1", "w2", "w3")), cmd);
  assert.is(events[0]!.type, "FileCreated");
  assert.ok(events.slice(1).every((e) => e.type === "PeersAssigned"), types(events).join());
  assert.ok(events.every((e) => e.at === T0 + 77), "every event carries the command's time");

  const created = events[0] as FileCreated;
  assert.equal(created, {
    type: "FileCreated",
    at: T0 + 77,
    fileId: "F1",
    path: "/docs/a.txt",
    version: 1,
    size: cmd.size,
    sha256: cmd.sha256,
    pieceSize: MIN_PIECE_SIZE,
    replicas: 2,
    uploadId: "U1",
    pieces: cmd.pieces,
  });
  assert.equal(
    created.pieces!.map((p) => p.size),
    [MIN_PIECE_SIZE, MIN_PIECE_SIZE, 10],
  );
  for (const a of ofType(events, "PeersAssigned")) {
    assert.is(a.fileId, "F1");
    assert.is(a.version, 1);
    assert.is(a.uploadId, "U1");
    for (const p of a.pieces) {
      assert.is(p.sha256, cmd.pieces[p.piece]!.sha256);
      assert.is(p.size, cmd.pieces[p.piece]!.size);
    }
  }
  // 3 pieces × 2 replicas placed in all.
  assert.is(ofType(events, "PeersAssigned").reduce((n, a) => n + a.pieces.length, 0), 6);
});

Create("decider - each piece gets one major and replicas-1 minors, never two on one worker", () => {
  for (const replicas of [1, 2, 3, 4]) {
    const cmd = create({ size: 5 * MIN_PIECE_SIZE, replicas });
    const events = when(given(joined("a", "b", "c", "d")), cmd);
    const byPiece = peersByPiece(events);
    assert.equal([...byPiece.keys()].sort(), [0, 1, 2, 3, 4], `replicas ${replicas}`);
    for (const [piece, peers] of byPiece) {
      const label = `replicas ${replicas}, piece ${piece}`;
      assert.is(peers.length, replicas, label);
      assert.is(new Set(peers.map((p) => p.workerId)).size, replicas, `${label}: distinct workers`);
      assert.is(peers.filter((p) => p.role === "major").length, 1, `${label}: one major`);
      assert.is(peers.filter((p) => p.role === "minor").length, replicas - 1, `${label}: minors`);
    }
    assertPipelined(byPiece);
  }
});

Create("decider - PeersAssigned is one event per worker, in worker id order", () => {
  const events = when(given(joined("w3", "w1", "w2")), create({ size: 6 * MIN_PIECE_SIZE, replicas: 2 }));
  const assigned = ofType(events, "PeersAssigned").map((a) => a.workerId);
  assert.equal(assigned, ["w1", "w2", "w3"]);
});

Create("decider - peers are spread least-loaded first, ties to the smaller worker id", () => {
  // All idle: piece 0 → a (major), b. Then c is the least loaded, a beats b on the tie, and so on.
  const events = when(given(joined("c", "b", "a")), create({ size: 3 * MIN_PIECE_SIZE, replicas: 2 }));
  const placed = placement(events);
  assert.equal([...placed.get("a")!], [[0, "major"], [1, "minor"]]);
  assert.equal([...placed.get("b")!], [[0, "minor"], [2, "major"]]);
  assert.equal([...placed.get("c")!], [[1, "major"], [2, "minor"]]);
});

Create("decider - a new version goes to the workers that hold the fewest bytes", () => {
  const h = new History(joined("a", "b", "c"));
  // Two one-replica pieces on three idle workers: one each on two of them, the third stays idle.
  upload(h, create({ uploadId: "first", path: "/first", size: 2 * MIN_PIECE_SIZE, replicas: 1 }));
  const before = new Map([...h.state.workers].map(([id, w]) => [id, w.assignedBytes]));
  assert.equal([...before.values()].sort(), [0, MIN_PIECE_SIZE, MIN_PIECE_SIZE]);
  const idle = [...before].find(([, bytes]) => bytes === 0)![0];
  const events = h.run(create({ uploadId: "second", path: "/second", size: MIN_PIECE_SIZE, replicas: 1 }));
  const assigned = ofType(events, "PeersAssigned");
  assert.is(assigned.length, 1);
  assert.is(assigned[0]!.workerId, idle);
});

Create("decider - load counts bytes, not pieces", () => {
  const h = new History(joined("a", "b"));
  // One full piece on a (major, idle tie → a), then the short last piece on b.
  const first = h.run(create({ uploadId: "first", path: "/first", size: MIN_PIECE_SIZE + 1, replicas: 1 }));
  assert.equal([...placement(first).get("a")!.keys()], [0]);
  assert.equal([...placement(first).get("b")!.keys()], [1]);
  assert.is(h.state.workers.get("a")!.assignedBytes, MIN_PIECE_SIZE);
  assert.is(h.state.workers.get("b")!.assignedBytes, 1);
  // Each holds one piece, but b holds fewer bytes: b gets the next piece.
  const second = h.run(create({ uploadId: "second", path: "/second", size: 100, replicas: 1 }));
  assert.equal(ofType(second, "PeersAssigned").map((a) => a.workerId), ["b"]);
});

Create("decider - lost workers get no pieces", () => {
  const state = given(joined("a", "b", "c"), { type: "WorkerLost", at: T0 + 5, workerId: "a", reason: "silent" });
  const events = when(state, create({ size: 4 * MIN_PIECE_SIZE, replicas: 2 }));
  assert.equal([...placement(events).keys()].sort(), ["b", "c"]);
});

Create("decider - a second create of a path reuses its fileId and increments the version", () => {
  const h = new History(joined("a", "b"));
  upload(h, create({ uploadId: "u1", newFileId: "F1", path: "/p" }));
  const events = h.run(create({ uploadId: "u2", newFileId: "F2", path: "p" }));
  const created = ofType(events, "FileCreated")[0]!;
  assert.is(created.fileId, "F1");
  assert.is(created.version, 2);
  assert.ok(ofType(events, "PiecesPlanned").every((e) => e.fileId === "F1" && e.version === 2));
  assert.ok(ofType(events, "PeersAssigned").every((e) => e.fileId === "F1" && e.version === 2));
  assert.not.ok(h.state.files.has("F2"));
  // Even while version 2 is pending, a third one is version 3 of the same file.
  const third = ofType(h.run(create({ uploadId: "u3", newFileId: "F3", path: "/p" })), "FileCreated")[0]!;
  assert.is(third.fileId, "F1");
  assert.is(third.version, 3);
});

Create("decider - a path created again after its file was deleted is a new file at version 1", () => {
  const h = new History(joined("a", "b"));
  upload(h, create({ uploadId: "u1", newFileId: "F1", path: "/p" }));
  h.run({ type: "DeleteFile", at: T0 + 9000, path: "/p" });
  const created = ofType(h.run(create({ uploadId: "u2", newFileId: "F2", path: "/p" })), "FileCreated")[0]!;
  assert.is(created.fileId, "F2");
  assert.is(created.version, 1);
});

Create("decider - a fresh fileId that is already taken is refused", () => {
  const h = new History(joined("a", "b"));
  upload(h, create({ uploadId: "u1", newFileId: "F1", path: "/p" }));
  whenRefused(h.state, create({ uploadId: "u2", newFileId: "F1", path: "/other" }), ErrorCodes.BAD_REQUEST);
});

Create("decider - rejects a create with fewer live workers than replicas", () => {
  whenRefused(given(), create({ replicas: 1 }), ErrorCodes.NOT_ENOUGH_WORKERS, "no workers");
  whenRefused(given(joined("a", "b")), create({ replicas: 3 }), ErrorCodes.NOT_ENOUGH_WORKERS, "2 of 3");
  const oneLost = given(joined("a", "b", "c"), { type: "WorkerLost", at: T0 + 5, workerId: "c", reason: "silent" });
  whenRefused(oneLost, create({ replicas: 3 }), ErrorCodes.NOT_ENOUGH_WORKERS, "3 known, 2 live");
  assert.is(when(oneLost, create({ replicas: 2 })).length > 0, true);
});

Create("decider - rejects bad sizes, piece sizes and replicas with BAD_REQUEST", () => {
  const state = given(joined(...Array.from({ length: MAX_REPLICAS + 1 }, (_, i) => `w${String(i).padStart(2, "0")}`)));
  const good = create({ size: 2 * MIN_PIECE_SIZE });
  const cases: [string, Partial<CreateVersion>][] = [
    ["negative size", { size: -1 }],
    ["fractional size", { size: 1.5 }],
    ["NaN size", { size: Number.NaN }],
    ["unsafe size", { size: Number.MAX_SAFE_INTEGER + 1 }],
    // Piece lists consistent with the bad piece size, so only the piece size itself is wrong.
    ["piece size below the minimum", create({ size: 2 * MIN_PIECE_SIZE, pieceSize: MIN_PIECE_SIZE - 1 })],
    ["piece size 0", { pieceSize: 0 }],
    ["piece size above the maximum", create({ size: 10, pieceSize: MAX_PIECE_SIZE + 1 })],
    ["fractional piece size", create({ size: 2 * MIN_PIECE_SIZE, pieceSize: MIN_PIECE_SIZE + 0.5 })],
    ["0 replicas", { replicas: 0 }],
    ["negative replicas", { replicas: -1 }],
    ["too many replicas", { replicas: MAX_REPLICAS + 1 }],
    ["fractional replicas", { replicas: 1.5 }],
  ];
  for (const [label, change] of cases) whenRefused(state, { ...good, ...change }, ErrorCodes.BAD_REQUEST, label);
  // The edges themselves are fine.
  assert.ok(when(state, create({ size: MIN_PIECE_SIZE, pieceSize: MIN_PIECE_SIZE, replicas: MAX_REPLICAS })).length > 0);
  assert.ok(when(state, create({ size: 10, pieceSize: MAX_PIECE_SIZE, replicas: 1 })).length > 0);
});

Create("decider - a file of one piece, or of none, must declare the SHA-256 its pieces say, or it could never be read", () => {
  const state = given(joined("a", "b"));
  const one = create({ size: 10 });
  assert.is(one.sha256, one.pieces[0]!.sha256, "well formed: the piece's SHA-256");
  whenRefused(state, { ...one, sha256: sha("another") }, ErrorCodes.CHECKSUM_MISMATCH, "one piece");
  whenRefused(state, create({ size: 0, sha256: sha("not empty") }), ErrorCodes.CHECKSUM_MISMATCH, "no piece");
  assert.ok(when(state, create({ size: 2 * MIN_PIECE_SIZE, sha256: sha("any") })).length > 0, "two pieces: the master cannot know the whole SHA-256, the client's read checks it");
});

Create("decider - rejects a malformed sha256 with BAD_REQUEST", () => {
  const state = given(joined("a", "b"));
  const good = create();
  const badHashes = [good.sha256.toUpperCase(), good.sha256.slice(1), good.sha256 + "0", "z".repeat(64), "", good.sha256.slice(0, 63) + " "];
  for (const h of badHashes) {
    whenRefused(state, { ...good, sha256: h }, ErrorCodes.BAD_REQUEST, `file sha256 ${JSON.stringify(h)}`);
    const pieces = good.pieces.map((p, i) => (i === 1 ? { ...p, sha256: h } : p));
    whenRefused(state, { ...good, pieces }, ErrorCodes.BAD_REQUEST, `piece sha256 ${JSON.stringify(h)}`);
  }
});

Create("decider - rejects a piece list that does not match size and piece size", () => {
  const state = given(joined("a", "b"));
  const good = create({ size: 3 * MIN_PIECE_SIZE - 100 });
  const [p0, p1, p2] = good.pieces as [PlannedPiece, PlannedPiece, PlannedPiece];
  const cases: [string, PlannedPiece[]][] = [
    ["a piece missing", [p0, p1]],
    ["a piece too many", [p0, p1, p2, { index: 3, size: 1, sha256: p2.sha256 }]],
    ["no pieces", []],
    ["out of order", [p1, p0, p2]],
    ["index repeated", [p0, { ...p1, index: 0 }, p2]],
    ["middle piece short", [p0, { ...p1, size: p1.size - 1 }, p2]],
    ["last piece full", [p0, p1, { ...p2, size: MIN_PIECE_SIZE }]],
    ["last piece too short", [p0, p1, { ...p2, size: p2.size - 1 }]],
  ];
  for (const [label, pieces] of cases) whenRefused(state, { ...good, pieces }, ErrorCodes.BAD_REQUEST, label);
  whenRefused(state, { ...create({ size: 0 }), pieces: [p0] }, ErrorCodes.BAD_REQUEST, "pieces for an empty file");
});

Create("decider - rejects more than MAX_PIECES pieces", () => {
  const state = given(joined("a"));
  whenRefused(state, create({ size: (MAX_PIECES + 1) * MIN_PIECE_SIZE, replicas: 1, pieceSha: () => sha("x") }), ErrorCodes.BAD_REQUEST);
  assert.ok(when(state, create({ size: MAX_PIECES * MIN_PIECE_SIZE, replicas: 1, pieceSha: () => sha("x") })).length > 0);
});

Create("decider - rejects bad paths with BAD_PATH", () => {
  const state = given(joined("a", "b"));
  const badPaths = ["", "/", "a//b", "/a/", "..", ".", "a/../b", "./a", "a\u0000b", "a\nb", "a\u0001b", "a\u007f"];
  for (const path of badPaths) whenRefused(state, create({ path }), ErrorCodes.BAD_PATH, JSON.stringify(path));
});

Create("decider - a create stores the path in canonical form", () => {
  const events = when(given(joined("a", "b")), create({ path: "caf\u0065\u0301/x" }));
  assert.is(ofType(events, "FileCreated")[0]!.path, "/caf\u00e9/x");
});

Create("decider - a 0-byte file commits in the create itself", () => {
  const h = new History(joined("a", "b"));
  const cmd = create({ size: 0, sha256: sha(""), path: "empty", newFileId: "E" });
  assert.equal(cmd.pieces, []);
  const events = h.run(cmd);
  assert.equal(types(events), ["FileCreated", "FileCommitted"]);
  const committed = events[1] as FileCommitted;
  assert.equal(committed, { type: "FileCommitted", at: cmd.at, fileId: "E", path: "/empty", version: 1, size: 0, sha256: cmd.sha256 });
  const where = locate(h.state, "/empty");
  assert.is(where.size, 0);
  assert.equal(where.pieces, []);
  assert.equal(list(h.state).map((f) => f.path), ["/empty"]);
});

Create("decider - decide does not change the state it reads", () => {
  const state = given(joined("a", "b", "c"));
  const before = stateDigest(state);
  when(state, create({ size: 7 * MIN_PIECE_SIZE, replicas: 3 }));
  when(state, { type: "NoteHeartbeat", at: T0, workerId: "new" });
  when(state, { type: "NoteSilence", at: T0, workerId: "a", silentMs: 1 });
  assert.is(stateDigest(state), before);
});

Create.run();

const Caps = suite("decider: uploads per uploader");

const capped = { pending: 3, openStreams: 2 };
function stream(uploadId: string, uploader = "client"): CreateStream {
  return { type: "CreateStream", at: T0, uploadId, uploader, newFileId: `file-${uploadId}`, path: `/s/${uploadId}`, pieceSize: MIN_PIECE_SIZE, replicas: 1, caps: capped };
}
function file(uploadId: string, uploader = "client"): CreateVersion {
  return { ...create({ uploadId, path: `/f/${uploadId}`, replicas: 1 }), uploader, caps: capped };
}

Caps("decider - an uploader with as many streams open as allowed opens no more; other uploaders and files go on", () => {
  const h = new History(joined("a"));
  h.run(stream("s1"));
  h.run(stream("s2"));
  const refused = whenRefused(h.state, stream("s3"), ErrorCodes.TOO_MANY_UPLOADS, "a third stream");
  assert.match(refused.message, /uploader client has 2 streams open.*--max-open-streams/);
  assert.equal(types(when(h.state, stream("s3", "client-alice"))), ["FileCreated"], "another uploader opens one");
  assert.ok(when(h.state, file("f1")).length > 0, "a file is no stream: within the pending cap");
  assert.equal(when(h.state, stream("s1")), [], "a retried create of an open stream is no new one");
  // Sealed, a stream is no longer open (still pending until its pieces are stored).
  h.run({ type: "SealUpload", at: T0, uploadId: "s1", size: 0, sha256: sha("") });
  assert.equal(types(when(h.state, stream("s3"))), ["FileCreated"]);
});

Caps("decider - an uploader with as many uploads pending as allowed creates none until one is over", () => {
  const h = new History(joined("a"));
  for (const id of ["f1", "f2", "f3"]) h.run(file(id));
  const refused = whenRefused(h.state, file("f4"), ErrorCodes.TOO_MANY_UPLOADS, "a fourth pending upload");
  assert.match(refused.message, /uploader client has 3 uploads pending.*--max-pending-uploads/);
  whenRefused(h.state, stream("s1"), ErrorCodes.TOO_MANY_UPLOADS, "a stream counts as pending too");
  assert.ok(when(h.state, file("f4", "client-alice")).length > 0, "another uploader is unaffected");
  assert.ok(when(h.state, file("f3")).length === 0, "a retried create of a pending upload is no new one");
  // One commits, one is abandoned: two more may come.
  upload(h, { ...create({ uploadId: "f0", replicas: 1 }), caps: { pending: 4, openStreams: 2 } });
  for (const c of confirmationsFor(h.events.filter((e) => e.type === "PeersAssigned" && e.uploadId === "f1"))) h.run(c);
  h.run({ type: "AbandonUpload", at: T0, uploadId: "f2", code: ErrorCodes.UPLOAD_ABANDONED, reason: "given up" });
  h.run(file("f4"));
  h.run(file("f5"));
  whenRefused(h.state, file("f6"), ErrorCodes.TOO_MANY_UPLOADS, "at the cap again");
});

Caps("decider - the default caps let many recursive puts of one user run at once", () => {
  // `put -r` keeps 64 uploads in flight; streams are one per `put -`.
  assert.ok(DEFAULT_UPLOAD_CAPS.pending >= 8 * 64, `${DEFAULT_UPLOAD_CAPS.pending} pending`);
  const h = new History(joined("a"));
  for (let i = 0; i < 8 * 64; i++) h.run({ ...create({ uploadId: `u${i}`, path: `/many/${i}`, replicas: 1 }), uploader: "client" });
  assert.is(h.state.pendingUploads.size, 8 * 64);
});

Caps.run();

// =============================================================================================
// idempotence: a decision taken again after a fenced append lost a race

const Retry = suite("decider: retried create");

Retry("decider - a create retried after all its events landed yields nothing", () => {
  const h = new History(joined("a", "b", "c"));
  const cmd = create({ replicas: 2 });
  assert.ok(h.run(cmd).length > 0);
  const before = stateDigest(h.state);
  assert.equal(when(h.state, cmd), []);
  assert.equal(when(h.state, { ...cmd, at: cmd.at + 500, newFileId: "another-fresh-id" }), [], "a later retry with a new fresh id");
  assert.is(stateDigest(h.state), before);
});

Retry("decider - a create retried after only FileCreated landed yields the missing PeersAssigned", () => {
  const workers = joined("a", "b", "c");
  const cmd = create({ size: 5 * MIN_PIECE_SIZE, replicas: 2 });
  const original = when(given(workers), cmd);
  assert.is(original[0]!.type, "FileCreated");
  const retry = when(given(workers, original[0]!), cmd);
  assert.ok(retry.length > 0 && retry.every((e) => e.type === "PeersAssigned"), types(retry).join());
  assert.equal(retry, original.slice(1));
  // And once they land, the state is the one the first attempt would have left.
  assert.is(stateDigest(given(workers, original[0]!, retry)), stateDigest(given(workers, original)));
});

Retry("decider - a create retried after an older master's FileCreated without a plan landed yields PiecesPlanned, then PeersAssigned", () => {
  const workers = joined("a", "b", "c");
  const cmd = create({ size: 5 * MIN_PIECE_SIZE, replicas: 3 });
  const original = when(given(workers), cmd);
  const { pieces, ...planless } = original[0] as FileCreated;
  const retry = when(given(workers, planless), cmd);
  assert.equal(retry[0], { type: "PiecesPlanned", at: cmd.at, fileId: planless.fileId, version: 1, pieces: pieces! });
  assert.equal(retry.slice(1), original.slice(1));
  // The old shape and the new one leave the same table.
  assert.is(stateDigest(given(workers, planless, retry)), stateDigest(given(workers, original)));
});

Retry("decider - creates decided together: FileCreated each, then one UploadsAssigned per worker naming every version", () => {
  const h = new History(joined("a", "b", "c"));
  const creates = ["/s/1", "/s/2", "/s/3", "/s/4"].map((path, i) => create({ path, uploadId: `u${i}`, size: 100 + i, replicas: 2 }));
  const events = h.run({ type: "CreateVersions", at: T0, creates });
  assert.equal(types(events), ["FileCreated", "FileCreated", "FileCreated", "FileCreated", "UploadsAssigned", "UploadsAssigned", "UploadsAssigned"]);
  assert.is(h.state.rejected.count, 0, "the fold accepts all of it");
  const assigned = ofType(events, "UploadsAssigned");
  assert.equal(assigned.map((e) => e.workerId), ["a", "b", "c"]);
  // Spread as one create after another would be: 4 files × 2 replicas over 3 workers, each piece one major.
  const shares = assigned.flatMap((e) => e.uploads.map((u) => ({ workerId: e.workerId, ...u })));
  for (const [i, c] of creates.entries()) {
    const mine = shares.filter((u) => u.uploadId === c.uploadId);
    assert.is(new Set(mine.map((u) => u.workerId)).size, 2, `${c.path}: two workers`);
    assert.equal(mine.flatMap((u) => u.pieces.map((p) => p.role)).sort(), ["major", "minor"], `${c.path}: one major`);
    assert.equal(mine.map((u) => u.pieces[0]!.sha256), [c.pieces[0]!.sha256, c.pieces[0]!.sha256]);
    assert.is(h.state.files.get(`file-u${i}`)!.versions.get(1)!.pieces[0]!.peers.length, 2);
  }
  assert.equal(assigned.map((e) => e.uploads.length).sort(), [2, 3, 3], "least-loaded first across the batch");
  // Every version commits as any does.
  for (const c of confirmationsFor(events)) h.run(c);
  assert.is(h.state.rejected.count, 0);
  assert.ok(creates.every((_, i) => h.state.files.get(`file-u${i}`)!.versions.get(1)!.status === "committed"));
});

Retry("decider - creates decided together leave out what they cannot decide, for each to be decided alone", () => {
  const h = new History(joined("a", "b"));
  upload(h, create({ path: "/old", uploadId: "old", replicas: 1 }));
  const good = create({ path: "/new", uploadId: "new", size: 10, replicas: 1 });
  const left = [
    create({ path: "/old", uploadId: "old", replicas: 1 }), // a retry
    create({ path: "/new", uploadId: "again", size: 10, replicas: 1 }), // the same path twice
    create({ path: "/empty", uploadId: "empty", size: 0, replicas: 1 }),
    create({ path: "/large", uploadId: "large", size: (PIECES_PER_EVENT + 1) * MIN_PIECE_SIZE, replicas: 1 }),
    create({ path: "/three", uploadId: "three", size: 10, replicas: 3 }), // not enough workers
    create({ path: "/a/../b", uploadId: "badpath", size: 10, replicas: 1 }),
    { ...create({ path: "/x", uploadId: "badsha", size: 10, replicas: 1 }), sha256: "nope" },
  ];
  const events = h.run({ type: "CreateVersions", at: T0, creates: [good, ...left] });
  assert.equal(types(events), ["FileCreated", "UploadsAssigned"]);
  assert.equal(ofType(events, "FileCreated")[0]!.uploadId, "new");
  const refusal = (cmd: Command) => {
    try {
      decide(h.state, cmd);
      return undefined;
    } catch (err) {
      return (err as DfsError).code;
    }
  };
  assert.is(refusal(left[4]!), ErrorCodes.NOT_ENOUGH_WORKERS, "alone, it says why");
  assert.is(refusal(left[5]!), ErrorCodes.BAD_PATH);
  assert.is(refusal(left[6]!), ErrorCodes.BAD_REQUEST);
  assert.equal(h.run({ type: "CreateVersions", at: T0, creates: [] }), []);
});

Retry("decider - creates decided together keep to their uploader's cap on pending uploads, counting each other", () => {
  const h = new History(joined("a"));
  const caps = { pending: 2, openStreams: 1 };
  const creates = [1, 2, 3].map((i) => ({ ...create({ path: `/cap/${i}`, uploadId: `cap${i}`, size: 10, replicas: 1 }), uploader: "client-bob", caps }));
  const events = h.run({ type: "CreateVersions", at: T0, creates: [...creates, { ...create({ path: "/cap/other", uploadId: "other", size: 10, replicas: 1 }), uploader: "client-eve", caps }] });
  assert.equal(ofType(events, "FileCreated").map((e) => e.uploadId), ["cap1", "cap2", "other"]);
  try {
    decide(h.state, creates[2]!);
    assert.unreachable("the third is refused alone");
  } catch (err) {
    assert.is((err as DfsError).code, ErrorCodes.TOO_MANY_UPLOADS);
  }
});

Retry("decider - a 0-byte create retried after only FileCreated landed yields FileCommitted", () => {
  const workers = joined("a");
  const cmd = create({ size: 0, replicas: 1 });
  const original = when(given(workers), cmd);
  assert.equal(types(original), ["FileCreated", "FileCommitted"]);
  assert.equal(when(given(workers, original[0]!), cmd), [original[1]!]);
  assert.equal(when(given(workers, original), cmd), []);
});

Retry("decider - the user a create names as its uploader is in FileCreated and every PeersAssigned, and a retry must name the same", () => {
  const workers = joined("a", "b", "c");
  const cmd: CreateVersion = { ...create({ size: 3 * MIN_PIECE_SIZE, replicas: 2 }), uploader: "client-bob" };
  const events = when(given(workers), cmd);
  assert.is(ofType(events, "FileCreated")[0]!.uploader, "client-bob");
  assert.ok(ofType(events, "PeersAssigned").length > 0);
  for (const a of ofType(events, "PeersAssigned")) assert.is(a.uploader, "client-bob", `${a.workerId} pulls from bob's subjects`);
  assert.is(given(workers, events).files.get("file-up1")!.versions.get(1)!.uploader, "client-bob");
  // The same id naming another server is another upload (it would send the pulls elsewhere).
  whenRefused(given(workers, events[0]!), { ...cmd, uploader: "client" }, ErrorCodes.BAD_REQUEST, "another uploader");
  whenRefused(given(workers, events[0]!), create({ size: 3 * MIN_PIECE_SIZE, replicas: 2 }), ErrorCodes.BAD_REQUEST, "no uploader");
  assert.equal(when(given(workers, events[0]!), cmd), events.slice(1), "the same uploader: the rest of the decision");
  // A command without one (as the log had before) decides events without the field at all.
  const unnamed = when(given(workers), create({ size: 3 * MIN_PIECE_SIZE, replicas: 2 }));
  assert.ok(unnamed.every((e) => !("uploader" in e)), "no uploader field");
});

Retry("decider - a streamed create names its uploader too, and a retry must name the same", () => {
  const stream = { type: "CreateStream", at: T0, uploadId: "s1", uploader: "client", newFileId: "S", path: "/s", pieceSize: MIN_PIECE_SIZE, replicas: 2 } as const;
  const created = when(given(joined("a", "b")), stream);
  assert.is(ofType(created, "FileCreated")[0]!.uploader, "client");
  const h = new History(joined("a", "b"), created);
  whenRefused(h.state, { ...stream, uploader: "client-bob" }, ErrorCodes.BAD_REQUEST, "another uploader");
  assert.equal(when(h.state, stream), []);
  const extended = h.run({ type: "ExtendUpload", at: T0, uploadId: "s1", pieces: [{ index: 0, size: MIN_PIECE_SIZE, sha256: sha("s1/0") }] });
  for (const a of ofType(extended, "PeersAssigned")) assert.is(a.uploader, "client");
});

Retry("decider - a create retried after it committed yields nothing", () => {
  const h = new History(joined("a", "b"));
  const cmd = create();
  upload(h, cmd);
  assert.is(locate(h.state, cmd.path).version, 1);
  assert.equal(when(h.state, cmd), []);
});

Retry("decider - a retry never puts a second replica of a piece on a worker that already has it", () => {
  // b and c carry ballast; a joins later and idle, so it stays the least loaded even after it
  // holds the new piece: only the rule "not twice on one worker" keeps the retry off it.
  const h = new History(joined("b", "c"));
  upload(h, create({ path: "/ballast", uploadId: "ballast", size: 2 * MIN_PIECE_SIZE, replicas: 2 }));
  h.append(joined("a"));
  const cmd = create({ path: "/p", uploadId: "p", size: MIN_PIECE_SIZE, replicas: 2 });
  const original = when(h.state, cmd);
  const onA = ofType(original, "PeersAssigned").find((a) => a.workerId === "a");
  assert.ok(onA, "a got the piece");
  h.append([...ofType(original, "FileCreated"), onA!]);
  const load = (id: string) => h.state.workers.get(id)!.assignedBytes;
  assert.ok(load("a") < load("b") && load("a") < load("c"), "a is still the least loaded");
  const retry = when(h.state, cmd);
  const peers = peersByPiece([onA!, ...retry]).get(0)!;
  assert.is(peers.length, 2);
  assert.is(new Set(peers.map((p) => p.workerId)).size, 2, JSON.stringify(peers));
  assert.is(peers.filter((p) => p.role === "major").length, 1);
});

Retry("decider - an upload id already used for another path or content is refused", () => {
  const h = new History(joined("a", "b"));
  const cmd = create({ uploadId: "same" });
  h.run(cmd);
  whenRefused(h.state, create({ uploadId: "same", path: "/elsewhere" }), ErrorCodes.BAD_REQUEST, "other path");
  whenRefused(h.state, create({ uploadId: "same", size: 2 * MIN_PIECE_SIZE }), ErrorCodes.BAD_REQUEST, "other size");
  whenRefused(h.state, create({ uploadId: "same", sha256: sha("other") }), ErrorCodes.BAD_REQUEST, "other sha256");
});

// Once threw NOT_ENOUGH_WORKERS: placement counted live workers before looking at what was missing.
Retry("decider - a create retried after all its events landed yields nothing even if a worker was lost since", () => {
  const h = new History(joined("a", "b"));
  const cmd = create({ replicas: 2 });
  h.run(cmd);
  h.append([{ type: "WorkerLost", at: T0 + 2000, workerId: "b", reason: "silent" }]);
  let events: DfsEvent[] | undefined;
  let error: unknown;
  try {
    events = when(h.state, cmd);
  } catch (err) {
    error = err;
  }
  assert.is(error, undefined, `retry threw ${error instanceof DfsError ? error.code : String(error)}`);
  assert.equal(events, []);
});

// Regression: at commit 15c3090 the retry placed the missing replicas of a piece as minors
// whenever the piece already had any peer, even a minor one, so the piece ended with no major.
Retry("decider - a retry after some PeersAssigned landed still gives each piece exactly one major", () => {
  const workers = joined("a", "b", "c");
  const cmd = create({ size: 3 * MIN_PIECE_SIZE, replicas: 2 });
  const original = when(given(workers), cmd);
  // FileCreated and the first worker's PeersAssigned landed; the rest did not.
  const landed = original.slice(0, 2);
  assert.is(landed[1]!.type, "PeersAssigned");
  const retry = when(given(workers, landed), cmd);
  assert.ok(retry.length > 0 && retry.every((e) => e.type === "PeersAssigned"));
  const byPiece = peersByPiece([...landed, ...retry]);
  for (const [piece, peers] of byPiece) {
    assert.is(peers.length, 2, `piece ${piece}: replicas`);
    assert.is(new Set(peers.map((p) => p.workerId)).size, 2, `piece ${piece}: distinct workers`);
    assert.is(peers.filter((p) => p.role === "major").length, 1, `piece ${piece}: majors in ${JSON.stringify(peers)}`);
  }
  assertPipelined(byPiece);
});

Retry.run();

// =============================================================================================
// confirmations and commit

const Confirm = suite("decider: confirm");

function pendingUpload(replicas = 2, size = 3 * MIN_PIECE_SIZE) {
  const h = new History(joined("a", "b", "c"));
  const cmd = create({ size, replicas, newFileId: "F", uploadId: "U", path: "/f" });
  const created = h.run(cmd);
  return { h, cmd, created, confirmations: confirmationsFor(created) };
}

Confirm("decider - a confirmation from an assigned worker yields PieceStored", () => {
  const { h, confirmations } = pendingUpload();
  const c = confirmations[0]!;
  const events = when(h.state, c);
  assert.equal(events, [
    { type: "PieceStored", at: c.at, fileId: "F", version: 1, piece: c.piece, workerId: c.workerId, sha256: c.sha256 },
  ] satisfies PieceStored[]);
  h.append(events);
  assert.equal(h.state.files.get("F")!.versions.get(1)!.pieces[c.piece]!.stored, [c.workerId]);
});

Confirm("decider - FileCommitted comes exactly with the last replica of the last piece", () => {
  for (const order of ["assigned", "reversed", "interleaved"] as const) {
    const { h, cmd, confirmations } = pendingUpload(2, 3 * MIN_PIECE_SIZE + 1);
    assert.is(confirmations.length, 8, "4 pieces × 2 replicas");
    const ordered =
      order === "assigned" ? confirmations : order === "reversed" ? [...confirmations].reverse() : [...confirmations].sort((x, y) => x.piece - y.piece);
    ordered.forEach((c, i) => {
      const events = h.run({ ...c, at: T0 + 10_000 + i });
      const last = i === ordered.length - 1;
      assert.equal(types(events), last ? ["PieceStored", "FileCommitted"] : ["PieceStored"], `${order} #${i}`);
      if (!last) throwsCode(() => locate(h.state, "/f"), ErrorCodes.NOT_FOUND, `${order}: invisible before commit (#${i})`);
      if (last) {
        assert.equal(events[1], {
          type: "FileCommitted",
          at: T0 + 10_000 + i,
          fileId: "F",
          path: "/f",
          version: 1,
          size: cmd.size,
          sha256: cmd.sha256,
        } satisfies FileCommitted);
      }
    });
    assert.is(h.state.files.get("F")!.versions.get(1)!.status, "committed");
  }
});

Confirm("decider - one replica of every piece is not enough to commit", () => {
  const { h, confirmations } = pendingUpload(2);
  const majors = confirmations.filter((c) => {
    const a = ofType(h.events, "PeersAssigned").find((e) => e.workerId === c.workerId)!;
    return a.pieces.find((p) => p.piece === c.piece)!.role === "major";
  });
  assert.is(majors.length, 3);
  for (const c of majors) assert.equal(types(h.run(c)), ["PieceStored"]);
  assert.is(h.state.files.get("F")!.versions.get(1)!.status, "pending");
});

Confirm("decider - a duplicate confirmation yields nothing new", () => {
  const { h, confirmations } = pendingUpload(2);
  const [first, ...rest] = confirmations;
  assert.is(h.run(first!).length, 1);
  assert.equal(when(h.state, first!), [], "duplicate while pending");
  assert.equal(when(h.state, { ...first!, at: first!.at + 99 }), [], "duplicate later");
  for (const c of rest) h.run(c);
  assert.is(h.state.files.get("F")!.versions.get(1)!.status, "committed");
  assert.equal(when(h.state, first!), [], "duplicate after commit");
  assert.equal(when(h.state, rest[rest.length - 1]!), [], "the last one again after commit");
});

Confirm("decider - a confirmation whose commit did not land yields FileCommitted again", () => {
  const { h, confirmations } = pendingUpload(1, 2 * MIN_PIECE_SIZE);
  assert.equal(types(h.run(confirmations[0]!)), ["PieceStored"]);
  const final = when(h.state, confirmations[1]!);
  assert.equal(types(final), ["PieceStored", "FileCommitted"]);
  h.append([final[0]!]); // PieceStored landed, the commit lost a race
  assert.equal(types(when(h.state, confirmations[1]!)), ["FileCommitted"]);
});

Confirm("decider - a confirmation from a worker not assigned the piece is ignored", () => {
  const { h, confirmations, created } = pendingUpload(2);
  const c = confirmations[0]!;
  const peers = peersByPiece(created).get(c.piece)!.map((p) => p.workerId);
  const outsider = ["a", "b", "c"].find((w) => !peers.includes(w))!;
  assert.ok(outsider);
  assert.equal(when(h.state, { ...c, workerId: outsider }), []);
  assert.equal(when(h.state, { ...c, workerId: "stranger" }), []);
  assert.equal(when(h.state, { ...c, workerId: outsider, ok: false, code: "X" }), [], "nor can a stranger abandon it");
});

Confirm("decider - a confirmation with another sha256, piece or version is ignored", () => {
  const { h, confirmations } = pendingUpload(2);
  const c = confirmations[0]!;
  assert.equal(when(h.state, { ...c, sha256: sha("not these bytes") }), []);
  assert.equal(when(h.state, { ...c, piece: 99 }), []);
  assert.equal(when(h.state, { ...c, version: 2 }), []);
  assert.equal(when(h.state, { ...c, fileId: "nope" }), []);
});

Confirm("decider - a failed confirmation yields UploadAbandoned", () => {
  const { h, confirmations } = pendingUpload(2);
  const c = confirmations[1]!;
  const events = h.run({ ...c, ok: false, code: ErrorCodes.CHECKSUM_MISMATCH, message: "bytes differ" });
  assert.is(events.length, 1);
  const abandoned = events[0] as UploadAbandoned;
  assert.is(abandoned.type, "UploadAbandoned");
  assert.is(abandoned.fileId, "F");
  assert.is(abandoned.path, "/f");
  assert.is(abandoned.version, 1);
  assert.is(abandoned.code, ErrorCodes.CHECKSUM_MISMATCH);
  assert.ok(abandoned.reason.includes("bytes differ"), abandoned.reason);
  assert.ok(abandoned.reason.includes(c.workerId), abandoned.reason);
  assert.is(h.state.files.get("F")!.versions.get(1)!.status, "abandoned");
  // Later news changes nothing, and the version never becomes visible.
  for (const other of confirmations) assert.equal(when(h.state, other), []);
  assert.equal(when(h.state, { ...c, ok: false }), []);
  throwsCode(() => locate(h.state, "/f"), ErrorCodes.NOT_FOUND, "locate");
  assert.equal(list(h.state), []);
});

Confirm("decider - a failed confirmation without a code is abandoned as INTERNAL", () => {
  const { h, confirmations } = pendingUpload(1);
  const [abandoned] = ofType(when(h.state, { ...confirmations[0]!, ok: false }), "UploadAbandoned");
  assert.is(abandoned?.code, ErrorCodes.INTERNAL);
});

Confirm("decider - AbandonUpload gives up a pending upload, once", () => {
  const { h } = pendingUpload(2);
  const events = h.run({ type: "AbandonUpload", at: T0 + 7, uploadId: "U", code: ErrorCodes.UPLOAD_ABANDONED, reason: "client aborted" });
  assert.equal(events, [
    { type: "UploadAbandoned", at: T0 + 7, fileId: "F", path: "/f", version: 1, code: ErrorCodes.UPLOAD_ABANDONED, reason: "client aborted" },
  ]);
  assert.equal(when(h.state, { type: "AbandonUpload", at: T0 + 8, uploadId: "U", code: "X", reason: "again" }), []);
  whenRefused(h.state, { type: "AbandonUpload", at: T0 + 8, uploadId: "nope", code: "X", reason: "?" }, ErrorCodes.NOT_FOUND);
});

Confirm("decider - AbandonUpload of a committed upload yields nothing", () => {
  const h = new History(joined("a", "b"));
  upload(h, create({ uploadId: "U" }));
  assert.equal(when(h.state, { type: "AbandonUpload", at: T0, uploadId: "U", code: "X", reason: "late" }), []);
});

Confirm.run();

// =============================================================================================
// queries: what is visible

const Queries = suite("queries");

Queries("queries - a committed version is visible to list, stat and locate", () => {
  const h = new History(joined("a", "b", "c"));
  const cmd = create({ path: "dir/file.bin", size: 2 * MIN_PIECE_SIZE + 5, replicas: 2, newFileId: "F" });
  const events = upload(h, cmd);
  const committedAt = ofType(events, "FileCommitted")[0]!.at;

  const where = locate(h.state, "/dir/file.bin");
  assert.is(where.fileId, "F");
  assert.is(where.path, "/dir/file.bin");
  assert.is(where.version, 1);
  assert.is(where.size, cmd.size);
  assert.is(where.sha256, cmd.sha256);
  assert.is(where.pieceSize, cmd.pieceSize);
  assert.is(where.committedAt, committedAt);
  assert.equal(
    where.pieces.map((p) => [p.index, p.size, p.sha256]),
    cmd.pieces.map((p) => [p.index, p.size, p.sha256]),
  );
  const byPiece = peersByPiece(events);
  for (const p of where.pieces) assert.equal([...p.workers].sort(), byPiece.get(p.index)!.map((x) => x.workerId).sort());

  assert.equal(locate(h.state, "dir/file.bin"), where, "the relative spelling names the same file");
  const info = stat(h.state, "/dir/file.bin");
  assert.is(info.version, 1);
  assert.is(info.pieces, 3);
  assert.is(info.replicas, 2);
  assert.is(info.committedAt, committedAt);
  assert.equal(info.versions.map((v) => v.version), [1]);
  assert.equal(list(h.state).map((f) => f.path), ["/dir/file.bin"]);
});

Queries("queries - a pending version is not visible (NOT_FOUND)", () => {
  const h = new History(joined("a", "b"));
  const created = h.run(create({ path: "/p" }));
  h.run(confirmationsFor(created)[0]!);
  throwsCode(() => locate(h.state, "/p"), ErrorCodes.NOT_FOUND, "locate");
  throwsCode(() => locate(h.state, "/p", 1), ErrorCodes.NOT_FOUND, "locate v1");
  throwsCode(() => stat(h.state, "/p"), ErrorCodes.NOT_FOUND, "stat");
  assert.equal(list(h.state), []);
  assert.equal(list(h.state, "/p"), []);
});

Queries("queries - an abandoned version is not visible (NOT_FOUND)", () => {
  const h = new History(joined("a", "b"));
  h.run(create({ path: "/p", uploadId: "U" }));
  h.run({ type: "AbandonUpload", at: T0, uploadId: "U", code: ErrorCodes.UPLOAD_ABANDONED, reason: "x" });
  throwsCode(() => locate(h.state, "/p"), ErrorCodes.NOT_FOUND, "locate");
  throwsCode(() => stat(h.state, "/p"), ErrorCodes.NOT_FOUND, "stat");
  assert.equal(list(h.state), []);
});

Queries("queries - a pending or abandoned newer version does not hide the committed one", () => {
  const h = new History(joined("a", "b"));
  upload(h, create({ path: "/p", uploadId: "u1" }));
  h.run(create({ path: "/p", uploadId: "u2" })); // version 2: pending
  h.run(create({ path: "/p", uploadId: "u3" })); // version 3: abandoned
  h.run({ type: "AbandonUpload", at: T0, uploadId: "u3", code: "X", reason: "x" });
  assert.is(locate(h.state, "/p").version, 1);
  assert.is(stat(h.state, "/p").version, 1);
  assert.equal(stat(h.state, "/p").versions.map((v) => v.version), [1]);
  throwsCode(() => locate(h.state, "/p", 2), ErrorCodes.NOT_FOUND, "pending v2");
  throwsCode(() => locate(h.state, "/p", 3), ErrorCodes.NOT_FOUND, "abandoned v3");
  throwsCode(() => locate(h.state, "/p", 4), ErrorCodes.NOT_FOUND, "unknown v4");
});

Queries("queries - locate gives the latest committed version, or the one named", () => {
  const h = new History(joined("a", "b"));
  const v1 = create({ path: "/p", uploadId: "u1", size: MIN_PIECE_SIZE });
  const v2 = create({ path: "/p", uploadId: "u2", size: 2 * MIN_PIECE_SIZE });
  upload(h, v1);
  upload(h, v2);
  assert.is(locate(h.state, "/p").version, 2);
  assert.is(locate(h.state, "/p").sha256, v2.sha256);
  assert.is(locate(h.state, "/p", 1).sha256, v1.sha256);
  assert.is(locate(h.state, "/p", 1).pieces.length, 1);
  assert.equal(stat(h.state, "/p").versions.map((v) => [v.version, v.size]), [
    [1, v1.size],
    [2, v2.size],
  ]);
  assert.is(list(h.state).length, 1, "one file, two versions");
});

Queries("queries - locate lists live holders first, the major first among them", () => {
  const h = new History(joined("a", "b", "c"));
  const events = upload(h, create({ path: "/p", size: MIN_PIECE_SIZE, replicas: 3 }));
  const peers = peersByPiece(events).get(0)!;
  const major = peers.find((p) => p.role === "major")!.workerId;
  assert.is(locate(h.state, "/p").pieces[0]!.workers[0], major);
  h.run({ type: "NoteSilence", at: T0 + 99, workerId: major, silentMs: 9999 });
  const workers = locate(h.state, "/p").pieces[0]!.workers;
  assert.is(workers.length, 3, "a lost holder is still listed");
  assert.is(workers[2], major, "but last");
  assert.is.not(workers[0], major);
});

Queries("queries - locate lists only workers that confirmed", () => {
  const h = new History(joined("a", "b", "c"));
  const created = h.run(create({ path: "/p", size: MIN_PIECE_SIZE, replicas: 2 }));
  const confirmations = confirmationsFor(created);
  for (const c of confirmations) h.run(c);
  assert.equal([...locate(h.state, "/p").pieces[0]!.workers].sort(), confirmations.map((c) => c.workerId).sort());
  assert.is(locate(h.state, "/p").pieces[0]!.workers.length, 2);
});

Queries("queries - list filters by prefix on segment boundaries and sorts by path", () => {
  const h = new History(joined("a"));
  for (const [i, path] of ["/b", "/a/y", "/ab", "/a/x", "/a/sub/z"].entries()) upload(h, create({ path, uploadId: `u${i}`, replicas: 1 }));
  assert.equal(list(h.state).map((f) => f.path), ["/a/sub/z", "/a/x", "/a/y", "/ab", "/b"]);
  assert.equal(list(h.state, "a").map((f) => f.path), ["/a/sub/z", "/a/x", "/a/y"]);
  assert.equal(list(h.state, "/a/sub").map((f) => f.path), ["/a/sub/z"]);
  assert.equal(list(h.state, "/ab").map((f) => f.path), ["/ab"]);
  assert.equal(list(h.state, "/nothing"), []);
  throwsCode(() => list(h.state, "a//b"), ErrorCodes.BAD_PATH, "bad prefix");
});

Queries("queries - listPage walks every file once, in order, a page at a time", () => {
  const h = new History(joined("a"));
  const paths = ["/a/1", "/a/2", "/a/3", "/a/4", "/a/5", "/b"];
  for (const [i, path] of paths.entries()) upload(h, create({ path, uploadId: `u${i}`, replicas: 1 }));
  const seen: string[] = [];
  let after: string | undefined;
  let pages = 0;
  do {
    const page = listPage(h.state, "/a", after, 2);
    assert.ok(page.files.length <= 2, "a page holds at most the limit");
    seen.push(...page.files.map((f) => f.path));
    after = page.next;
    pages += 1;
  } while (after !== undefined && pages < 10);
  assert.equal(seen, paths.slice(0, 5));
  assert.is(pages, 3);
  assert.equal(listPage(h.state, "/a", "/a/5", 2), { files: [] }, "nothing after the last");
  assert.equal(listPage(h.state, "/", undefined, 10).next, undefined, "one page when everything fits");
});

Queries("queries - listPage pages in order whatever order the files were made in, pending and deleted ones left out", () => {
  const h = new History(joined("a"));
  // Made in a scrambled order (37 is prime to 60), some deleted, one left pending, others outside the prefix.
  const made = Array.from({ length: 60 }, (_, i) => `/d/${String((i * 37) % 60).padStart(2, "0")}`);
  for (const [i, path] of made.entries()) upload(h, create({ path, uploadId: `u${i}`, replicas: 1 }));
  for (const path of ["/d/07", "/d/30", "/d/59"]) h.run({ type: "DeleteFile", at: T0, path });
  h.run(create({ path: "/d/pending", uploadId: "u-pending", replicas: 1 }));
  upload(h, create({ path: "/e/1", uploadId: "u-e", replicas: 1 }));
  const visible = list(h.state, "/d").map((f) => f.path);
  assert.is(visible.length, 57);
  for (const limit of [1, 4, 7, 57, 100]) {
    const seen: string[] = [];
    let after: string | undefined;
    let pages = 0;
    do {
      const page = listPage(h.state, "/d", after, limit);
      assert.ok(page.files.length >= 1 && page.files.length <= limit, `a page of 1 to ${limit}`);
      seen.push(...page.files.map((f) => f.path));
      after = page.next;
      pages += 1;
    } while (after !== undefined && pages < 100);
    assert.equal(seen, visible, `every visible file once, in order, ${limit} a page`);
    assert.is(pages, Math.ceil(visible.length / limit), `${limit} a page`);
  }
});

Queries("queries - listPage fills a page up to a byte budget, and never leaves it empty", () => {
  const h = new History(joined("a"));
  const long = (i: number) => `/${"d".repeat(250)}/${"e".repeat(250)}/${i}`;
  for (let i = 0; i < 12; i++) upload(h, create({ path: long(i), uploadId: `u${i}`, replicas: 1, size: 0 }));
  const seen: string[] = [];
  let after: string | undefined;
  let pages = 0;
  do {
    const page = listPage(h.state, "/", after, 500, 2_000);
    assert.ok(page.files.length >= 1, "a page holds at least one file");
    assert.ok(page.files.length === 1 || encode(page.files).length <= 2_000, "a page of several files fits the budget");
    seen.push(...page.files.map((f) => f.path));
    after = page.next;
    pages += 1;
  } while (after !== undefined && pages < 100);
  assert.equal(seen, list(h.state).map((f) => f.path), "every file once, in order");
  assert.ok(pages > 3, `${pages} pages`);
  assert.is(listPage(h.state, "/", undefined, 500, 10).files.length, 1, "one file even when it alone is over the budget");
});

Queries("queries - a list entry counts versions; stat shows only the latest ones", () => {
  const h = new History(joined("a"));
  const count = STAT_VERSIONS + 20;
  for (let i = 0; i < count; i++) upload(h, create({ path: "/many", uploadId: `u${i}`, replicas: 1, size: 0 }));
  const [entry] = list(h.state);
  assert.is(entry!.versionCount, count);
  assert.not.ok("versions" in entry!, "a list entry carries no version array");
  const info = stat(h.state, "/many");
  assert.is(info.versionCount, count);
  assert.is(info.versions.length, STAT_VERSIONS);
  assert.is(info.versions[0]!.version, count - STAT_VERSIONS + 1, "the oldest ones are left out");
  assert.is(info.versions.at(-1)!.version, count);
});

Queries("queries - locatePage fills a page up to a byte budget", () => {
  const h = new History(joined("a", "b"));
  upload(h, create({ path: "/p", uploadId: "u", size: 40 * MIN_PIECE_SIZE, replicas: 2 }));
  const whole = locate(h.state, "/p");
  const pieces = [];
  while (pieces.length < whole.pieces.length) {
    const page = locatePage(h.state, "/p", undefined, pieces.length, 2_000, 1_000);
    assert.ok(page.pieces.length >= 1 && page.pieces.length < 40, `${page.pieces.length} pieces in a page`);
    pieces.push(...page.pieces);
  }
  assert.equal(pieces, whole.pieces);
});

Queries("queries - locatePage slices the pieces and says how many there are", () => {
  const h = new History(joined("a", "b"));
  upload(h, create({ path: "/p", uploadId: "u", size: 5 * MIN_PIECE_SIZE, replicas: 2 }));
  const whole = locate(h.state, "/p");
  const page = locatePage(h.state, "/p", undefined, 2, 2);
  assert.is(page.pieceCount, 5);
  assert.is(page.fromPiece, 2);
  assert.equal(page.pieces, whole.pieces.slice(2, 4));
  assert.equal(locatePage(h.state, "/p", 1, 4, 2).pieces.map((p) => p.index), [4]);
  assert.equal(locatePage(h.state, "/p", 1, 9, 2).pieces, []);
});

Queries("queries - locate and stat of a bad or unknown path", () => {
  const h = new History(joined("a"));
  upload(h, create({ path: "/p", replicas: 1 }));
  throwsCode(() => locate(h.state, "/q"), ErrorCodes.NOT_FOUND, "unknown path");
  throwsCode(() => stat(h.state, "/q"), ErrorCodes.NOT_FOUND, "unknown path");
  throwsCode(() => locate(h.state, "/p/"), ErrorCodes.BAD_PATH, "trailing slash");
  throwsCode(() => locate(h.state, ".."), ErrorCodes.BAD_PATH, "dot-dot");
});

Queries("queries - uploadPlan gives the version, its piece plan and its peers", () => {
  const h = new History(joined("a", "b", "c"));
  const created = h.run(create({ uploadId: "U", newFileId: "F", path: "/p", size: 4 * MIN_PIECE_SIZE, replicas: 2 }));
  const plan = uploadPlan(h.state, "U");
  assert.is(plan.fileId, "F");
  assert.is(plan.path, "/p");
  assert.is(plan.version, 1);
  assert.is(plan.status, "pending");
  assert.is(plan.pieces, 4);
  assert.is(plan.pieceSize, MIN_PIECE_SIZE);
  assert.is(plan.size, 4 * MIN_PIECE_SIZE);
  const fromPlan = new Map<number, string[]>();
  for (const peer of plan.peers) {
    for (const index of [...peer.major, ...peer.minor]) fromPlan.set(index, [...(fromPlan.get(index) ?? []), peer.workerId]);
  }
  for (const [index, peers] of peersByPiece(created)) {
    assert.equal([...fromPlan.get(index)!].sort(), peers.map((p) => p.workerId).sort(), `piece ${index}`);
    const major = peers.find((p) => p.role === "major")!.workerId;
    assert.ok(plan.peers.find((p) => p.workerId === major)!.major.includes(index), `piece ${index} major`);
  }
  for (const c of confirmationsFor(created)) h.run(c);
  assert.is(uploadPlan(h.state, "U").status, "committed");
  throwsCode(() => uploadPlan(h.state, "nope"), ErrorCodes.NOT_FOUND, "unknown upload");
});

Queries.run();

// =============================================================================================
// delete and drops

const Delete = suite("decider: delete");

Delete("decider - DeleteFile of a whole file yields FileDeleted without a version", () => {
  const h = new History(joined("a", "b"));
  upload(h, create({ path: "/p", uploadId: "u1", newFileId: "F" }));
  upload(h, create({ path: "/p", uploadId: "u2" }));
  const events = h.run({ type: "DeleteFile", at: T0 + 50, path: "p" });
  assert.equal(events, [{ type: "FileDeleted", at: T0 + 50, fileId: "F", path: "/p" }]);
  assert.not.ok("version" in events[0]!, "no version field at all");
  throwsCode(() => locate(h.state, "/p"), ErrorCodes.NOT_FOUND, "latest");
  throwsCode(() => locate(h.state, "/p", 1), ErrorCodes.NOT_FOUND, "v1");
  assert.equal(list(h.state), []);
  whenRefused(h.state, { type: "DeleteFile", at: T0 + 51, path: "/p" }, ErrorCodes.NOT_FOUND, "deleted twice");
});

Delete("decider - DeleteFile of one version yields FileDeleted with that version", () => {
  const h = new History(joined("a", "b"));
  upload(h, create({ path: "/p", uploadId: "u1", newFileId: "F" }));
  upload(h, create({ path: "/p", uploadId: "u2" }));
  const events = h.run({ type: "DeleteFile", at: T0 + 50, path: "/p", version: 2 });
  assert.equal(events, [{ type: "FileDeleted", at: T0 + 50, fileId: "F", path: "/p", version: 2 }]);
  assert.is(locate(h.state, "/p").version, 1, "the latest is the older version again");
  throwsCode(() => locate(h.state, "/p", 2), ErrorCodes.NOT_FOUND, "v2 is gone");
  assert.equal(stat(h.state, "/p").versions.map((v) => v.version), [1]);
  whenRefused(h.state, { type: "DeleteFile", at: T0 + 51, path: "/p", version: 2 }, ErrorCodes.NOT_FOUND, "v2 twice");
  // Deleting the last committed version leaves nothing visible.
  h.run({ type: "DeleteFile", at: T0 + 52, path: "/p", version: 1 });
  throwsCode(() => locate(h.state, "/p"), ErrorCodes.NOT_FOUND, "no version left");
  assert.equal(list(h.state), []);
  // And the next put of the path goes on numbering the same file.
  const next = ofType(h.run(create({ path: "/p", uploadId: "u3", newFileId: "G" })), "FileCreated")[0]!;
  assert.equal([next.fileId, next.version], ["F", 3]);
});

Delete("decider - DeleteFile of an unknown path or version is NOT_FOUND", () => {
  const h = new History(joined("a", "b"));
  upload(h, create({ path: "/p", uploadId: "u1" }));
  h.run(create({ path: "/p", uploadId: "u2" })); // v2 pending
  h.run(create({ path: "/pending-only", uploadId: "u3" }));
  whenRefused(h.state, { type: "DeleteFile", at: T0, path: "/nope" }, ErrorCodes.NOT_FOUND, "unknown path");
  whenRefused(h.state, { type: "DeleteFile", at: T0, path: "/pending-only" }, ErrorCodes.NOT_FOUND, "never committed");
  whenRefused(h.state, { type: "DeleteFile", at: T0, path: "/p", version: 9 }, ErrorCodes.NOT_FOUND, "unknown version");
  whenRefused(h.state, { type: "DeleteFile", at: T0, path: "/p", version: 2 }, ErrorCodes.NOT_FOUND, "pending version");
  whenRefused(h.state, { type: "DeleteFile", at: T0, path: "/p", version: 0 }, ErrorCodes.BAD_REQUEST, "version 0");
  whenRefused(h.state, { type: "DeleteFile", at: T0, path: "/p", version: 1.5 }, ErrorCodes.BAD_REQUEST, "version 1.5");
  whenRefused(h.state, { type: "DeleteFile", at: T0, path: "a//p" }, ErrorCodes.BAD_PATH, "bad path");
});

Delete("decider - a whole-file delete also gives up its pending version", () => {
  const h = new History(joined("a", "b"));
  upload(h, create({ path: "/p", uploadId: "u1", newFileId: "F" }));
  const pending = h.run(create({ path: "/p", uploadId: "u2" }));
  h.run({ type: "DeleteFile", at: T0, path: "/p" });
  assert.is(h.state.files.get("F")!.versions.get(2)!.status, "deleted");
  for (const c of confirmationsFor(pending)) assert.equal(when(h.state, c), [], "late confirmations change nothing");
  throwsCode(() => locate(h.state, "/p"), ErrorCodes.NOT_FOUND, "locate");
});

Delete("decider - after a delete, Reconcile drops every worker's pieces that no live version needs", () => {
  const h = new History(joined("a", "b", "c"));
  const events = upload(h, create({ path: "/p", size: 5 * MIN_PIECE_SIZE, replicas: 2 }));
  assert.equal(when(h.state, { type: "Reconcile", at: T0 }), [], "nothing owed while the file lives");
  h.run({ type: "DeleteFile", at: T0 + 1, path: "/p" });
  const drops = when(h.state, { type: "Reconcile", at: T0 + 2 }) as PiecesDropped[];
  assert.ok(drops.every((d) => d.type === "PiecesDropped" && d.at === T0 + 2));
  const expected = new Map<string, string[]>();
  for (const a of ofType(events, "PeersAssigned")) expected.set(a.workerId, a.pieces.map((p) => p.sha256).sort());
  assert.equal(drops.map((d) => d.workerId), [...expected.keys()].sort(), "one event per worker, in id order");
  for (const d of drops) assert.equal([...d.sha256s].sort(), expected.get(d.workerId), d.workerId);
});

Delete("decider - Reconcile keeps a sha256 another live version still needs on that worker", () => {
  const h = new History(joined("a", "b"));
  // Two workers, two replicas: every piece of both versions is on both workers.
  const shared = sha("shared bytes");
  upload(h, create({ path: "/p", uploadId: "u1", size: 2 * MIN_PIECE_SIZE, pieceSha: (i) => (i === 0 ? shared : sha("only v1")) }));
  upload(h, create({ path: "/p", uploadId: "u2", size: 2 * MIN_PIECE_SIZE, pieceSha: (i) => (i === 0 ? shared : sha("only v2")) }));
  h.run({ type: "DeleteFile", at: T0, path: "/p", version: 1 });
  const drops = ofType(when(h.state, { type: "Reconcile", at: T0 + 1 }), "PiecesDropped");
  assert.equal(
    drops.map((d) => [d.workerId, d.sha256s]),
    [
      ["a", [sha("only v1")]],
      ["b", [sha("only v1")]],
    ],
  );
  // Once version 2 goes as well, the shared bytes go too.
  h.append(drops);
  h.run({ type: "DeleteFile", at: T0 + 2, path: "/p", version: 2 });
  const later = ofType(when(h.state, { type: "Reconcile", at: T0 + 3 }), "PiecesDropped");
  for (const d of later) assert.equal([...d.sha256s].sort(), [shared, sha("only v2")].sort(), d.workerId);
  assert.is(later.length, 2);
});

Delete("decider - Reconcile keeps a sha256 another file still needs, and drops only the copy beyond what it wants", () => {
  const h = new History(joined("a", "b", "c"));
  const same = () => sha("same content");
  // /one on two workers; /two, the same bytes once, on one of them (it holds them already).
  const one = upload(h, create({ path: "/one", uploadId: "u1", size: MIN_PIECE_SIZE, replicas: 2, pieceSha: same }));
  const two = upload(h, create({ path: "/two", uploadId: "u2", size: MIN_PIECE_SIZE, replicas: 1, pieceSha: same }));
  const oneOn = ofType(one, "PeersAssigned").map((a) => a.workerId);
  const twoOn = ofType(two, "PeersAssigned")[0]!.workerId;
  assert.is(oneOn.length, 2);
  assert.ok(oneOn.includes(twoOn), "placed on a worker that holds the bytes");
  h.run({ type: "DeleteFile", at: T0, path: "/one" });
  // The bytes are still needed, once (/two wants 1 replica): of the two checked copies, one goes.
  const drops = ofType(when(h.state, { type: "Reconcile", at: T0 }), "PiecesDropped");
  assert.is(drops.length, 1);
  assert.ok(oneOn.includes(drops[0]!.workerId));
  assert.equal(drops[0]!.sha256s, [same()]);
  h.run({ type: "Reconcile", at: T0 });
  assert.equal([...h.state.content.get(same())!.holders], oneOn.filter((w) => w !== drops[0]!.workerId));
});

Delete("decider - bytes stored already go to the workers that hold them, not to the least loaded, and no copy is made only to be dropped", () => {
  const h = new History(joined("a", "b", "c"));
  const same = () => sha("kept once");
  const first = upload(h, create({ path: "/first", uploadId: "u1", size: MIN_PIECE_SIZE, replicas: 1, pieceSha: same }));
  const holder = ofType(first, "PeersAssigned")[0]!.workerId;
  const again = upload(h, create({ path: "/again", uploadId: "u2", size: MIN_PIECE_SIZE, replicas: 1, pieceSha: same }));
  assert.equal(ofType(again, "PeersAssigned").map((a) => a.workerId), [holder], "the holder, the most loaded of the three");
  assert.equal(when(h.state, { type: "Reconcile", at: T0 }), [], "nothing to drop");
  assert.is(h.state.dropsOwed.size, 0);
});

Delete("decider - the same bytes twice in one version are dropped once, and only when no piece needs them", () => {
  const h = new History(joined("a"));
  const zeros = sha("zeros");
  upload(h, create({ path: "/z", uploadId: "u1", size: 3 * MIN_PIECE_SIZE, replicas: 1, pieceSha: () => zeros }));
  upload(h, create({ path: "/y", uploadId: "u2", size: MIN_PIECE_SIZE, replicas: 1, pieceSha: () => zeros }));
  h.run({ type: "DeleteFile", at: T0, path: "/z" });
  assert.equal(when(h.state, { type: "Reconcile", at: T0 }), [], "still needed by /y");
  h.run({ type: "DeleteFile", at: T0, path: "/y" });
  assert.equal(when(h.state, { type: "Reconcile", at: T0 }), [{ type: "PiecesDropped", at: T0, workerId: "a", sha256s: [zeros] }]);
});

Delete("decider - an abandoned upload's pieces are owed as drops", () => {
  const h = new History(joined("a", "b"));
  const created = h.run(create({ uploadId: "U", size: 2 * MIN_PIECE_SIZE, replicas: 2 }));
  h.run({ type: "AbandonUpload", at: T0, uploadId: "U", code: "X", reason: "gave up" });
  const drops = ofType(when(h.state, { type: "Reconcile", at: T0 }), "PiecesDropped");
  const shas = ofType(created, "FileCreated")[0]!.pieces!.map((p) => p.sha256).sort();
  assert.equal(drops.map((d) => [d.workerId, [...d.sha256s].sort()]), [
    ["a", shas],
    ["b", shas],
  ]);
});

Delete("state - PiecesDropped clears dropsOwed, and Reconcile then yields nothing", () => {
  const h = new History(joined("a", "b"));
  upload(h, create({ path: "/p", replicas: 2 }));
  h.run({ type: "DeleteFile", at: T0, path: "/p" });
  assert.equal([...h.state.dropsOwed.keys()].sort(), ["a", "b"]);
  const [forA, forB] = ofType(when(h.state, { type: "Reconcile", at: T0 }), "PiecesDropped");
  h.append([forA!]);
  assert.not.ok(h.state.dropsOwed.has("a"), "a owes nothing any more");
  assert.ok(h.state.dropsOwed.has("b"), "b still does");
  assert.equal(ofType(when(h.state, { type: "Reconcile", at: T0 }), "PiecesDropped").map((d) => d.workerId), ["b"]);
  h.append([forB!]);
  assert.is(h.state.dropsOwed.size, 0);
  assert.equal(when(h.state, { type: "Reconcile", at: T0 }), []);
});

Delete("state - a partial PiecesDropped clears only the pieces it names", () => {
  const h = new History(joined("a"));
  upload(h, create({ path: "/p", size: 3 * MIN_PIECE_SIZE, replicas: 1 }));
  h.run({ type: "DeleteFile", at: T0, path: "/p" });
  const owed = [...h.state.dropsOwed.get("a")!].sort();
  assert.is(owed.length, 3);
  h.append([{ type: "PiecesDropped", at: T0, workerId: "a", sha256s: [owed[0]!] }]);
  assert.equal([...h.state.dropsOwed.get("a")!].sort(), owed.slice(1));
});

Delete("state - assigning bytes owed as a drop again cancels the drop", () => {
  const h = new History(joined("a"));
  const content = () => sha("reused");
  upload(h, create({ path: "/p", uploadId: "u1", size: MIN_PIECE_SIZE, replicas: 1, pieceSha: content }));
  h.run({ type: "DeleteFile", at: T0, path: "/p" });
  assert.ok(h.state.dropsOwed.get("a")?.has(content()));
  h.run(create({ path: "/q", uploadId: "u2", size: MIN_PIECE_SIZE, replicas: 1, pieceSha: content }));
  assert.not.ok(h.state.dropsOwed.get("a")?.has(content()) ?? false);
  assert.equal(when(h.state, { type: "Reconcile", at: T0 }), []);
});

Delete("state - placement load rises with assignments and falls when a version goes", () => {
  const h = new History(joined("a", "b"));
  upload(h, create({ path: "/p", uploadId: "u1", size: 2 * MIN_PIECE_SIZE + 7, replicas: 2 }));
  const full = 2 * MIN_PIECE_SIZE + 7;
  assert.is(h.state.workers.get("a")!.assignedBytes, full);
  assert.is(h.state.workers.get("b")!.assignedBytes, full);
  h.run({ type: "DeleteFile", at: T0, path: "/p" });
  assert.is(h.state.workers.get("a")!.assignedBytes, 0);
  assert.is(h.state.workers.get("b")!.assignedBytes, 0);
});

Delete.run();

// =============================================================================================
// the fold: replay and digest

const Fold = suite("state: fold");

function busyHistory(): History {
  const h = new History(joined("a", "b", "c"));
  upload(h, create({ path: "/one", uploadId: "u1", size: 3 * MIN_PIECE_SIZE + 1 }));
  upload(h, create({ path: "/one", uploadId: "u2", size: MIN_PIECE_SIZE }));
  upload(h, create({ path: "/two", uploadId: "u3", size: 0 }));
  h.run(create({ path: "/three", uploadId: "u4" }));
  h.run({ type: "AbandonUpload", at: T0, uploadId: "u4", code: "X", reason: "x" });
  h.run({ type: "DeleteFile", at: T0, path: "/one", version: 1 });
  h.run({ type: "NoteSilence", at: T0, workerId: "c", silentMs: 10_000 });
  return h;
}

Fold("state - stateDigest is equal for two folds of the same events and differs after one more", () => {
  const h = busyHistory();
  const first = given(h.events);
  const second = given(h.events);
  assert.is(stateDigest(first), stateDigest(second));
  assert.match(stateDigest(first), /^[0-9a-f]{64}$/);
  const before = stateDigest(second);
  evolve(second, { type: "WorkerJoined", at: T0 + 1, workerId: "d" });
  assert.is.not(stateDigest(second), before);
  assert.is(stateDigest(first), before, "the first fold is untouched");
});

Fold("state - replay from scratch agrees with the state folded live", () => {
  const h = busyHistory();
  assert.is(stateDigest(given(h.events)), stateDigest(h.state));
  assert.equal(projection(given(h.events)), projection(h.state));
});

Fold("state - a fold can continue from a partial fold", () => {
  const h = busyHistory();
  const half = Math.floor(h.events.length / 2);
  const resumed = foldEvents(h.events.slice(half), given(h.events.slice(0, half)));
  assert.is(stateDigest(resumed), stateDigest(h.state));
});

Fold("state - stateDigest tells apart states that differ only in the stream sequence", () => {
  const events = joined("a");
  const one = initialState();
  const two = initialState();
  evolve(one, events[0]!, 1);
  evolve(two, events[0]!, 2);
  assert.is(one.lastSeq, 1);
  assert.is.not(stateDigest(one), stateDigest(two));
});

Fold("state - the digest is the SHA-256 of the projection's JSON, hashed a file at a time: snapshots written before still check out", () => {
  for (const state of [initialState(), busyHistory().state]) {
    assert.is(stateDigest(state), createHash("sha256").update(JSON.stringify(projection(state))).digest("hex"));
  }
});

Fold("state - projection is plain data that survives JSON", () => {
  const p = projection(busyHistory().state);
  assert.equal(JSON.parse(JSON.stringify(p)), p);
  assert.equal(p.workers.map((w) => w.workerId), ["a", "b", "c"]);
  assert.equal(p.workers.map((w) => w.live), [true, true, false]);
  const one = p.files.find((f) => f.path === "/one")!;
  assert.equal(one.versions.map((v) => [v.version, v.status]), [
    [1, "deleted"],
    [2, "committed"],
  ]);
});

Fold("state - initialState is empty and fresh each time", () => {
  const a = initialState();
  const b = initialState();
  assert.is(a.lastSeq, 0);
  assert.is(a.workers.size + a.files.size + a.paths.size + a.uploads.size + a.content.size + a.dropsOwed.size, 0);
  evolve(a, joined("w")[0]!);
  assert.is(b.workers.size, 0, "states share nothing");
  assert.is(stateDigest(initialState()), stateDigest(b));
});

Fold.run();

// =============================================================================================
// large files

const Large = suite("decider: large files");

Large("decider - a version with more than PIECES_PER_EVENT pieces splits PiecesPlanned and PeersAssigned", () => {
  const count = PIECES_PER_EVENT * 2 + 3;
  assert.ok(count <= MAX_PIECES);
  const h = new History(joined("a", "b"));
  const cmd = create({ path: "/big", uploadId: "big", size: (count - 1) * MIN_PIECE_SIZE + 1, replicas: 2 });
  assert.is(cmd.pieces.length, count);
  const events = h.run(cmd);

  assert.is(ofType(events, "FileCreated")[0]!.pieces, undefined, "a plan too large for one event comes in PiecesPlanned events");
  const planned = ofType(events, "PiecesPlanned");
  assert.is(planned.length, 3);
  assert.ok(planned.every((e) => e.pieces.length <= PIECES_PER_EVENT));
  assert.equal(
    planned.flatMap((e) => e.pieces.map((p) => p.index)),
    cmd.pieces.map((p) => p.index),
    "every piece planned once, in order",
  );

  const assigned = ofType(events, "PeersAssigned");
  // Each of the 2 workers holds all `count` pieces: 3 events each.
  assert.equal(assigned.map((a) => a.workerId), ["a", "a", "a", "b", "b", "b"]);
  assert.ok(assigned.every((e) => e.pieces.length <= PIECES_PER_EVENT && e.pieces.length > 0));
  for (const w of ["a", "b"]) {
    const indexes = assigned.filter((a) => a.workerId === w).flatMap((a) => a.pieces.map((p) => p.piece));
    assert.is(new Set(indexes).size, count, w);
  }
  const byPiece = peersByPiece(events);
  for (const [piece, peers] of byPiece) assert.is(peers.filter((p) => p.role === "major").length, 1, `piece ${piece}`);

  // The split events fold into one complete plan, and the file commits with its last confirmation.
  const v = h.state.files.get(ofType(events, "FileCreated")[0]!.fileId)!.versions.get(1)!;
  assert.is(v.pieces.filter(Boolean).length, count);
  const confirmations = confirmationsFor(events);
  assert.is(confirmations.length, 2 * count);
  confirmations.slice(0, -1).forEach((c) => assert.equal(types(h.run(c)), ["PieceStored"]));
  assert.equal(types(h.run(confirmations[confirmations.length - 1]!)), ["PieceStored", "FileCommitted"]);
  assert.is(locate(h.state, "/big").pieces.length, count);
  assert.is(stat(h.state, "/big").pieces, count);
});

Large("decider - a large create retried after part of its plan landed plans only the rest", () => {
  const count = PIECES_PER_EVENT + 10;
  const workers = joined("a");
  const cmd = create({ size: count * MIN_PIECE_SIZE, replicas: 1 });
  const original = when(given(workers), cmd);
  assert.equal(types(original), ["FileCreated", "PiecesPlanned", "PiecesPlanned", "PeersAssigned", "PeersAssigned"]);
  const retry = when(given(workers, original.slice(0, 2)), cmd);
  assert.equal(retry, original.slice(2));
});

Large("decider - Reconcile splits the drops of many pieces into events of at most PIECES_PER_EVENT", () => {
  const count = PIECES_PER_EVENT + 1;
  const h = new History(joined("a"));
  upload(h, create({ path: "/big", size: count * MIN_PIECE_SIZE, replicas: 1 }));
  h.run({ type: "DeleteFile", at: T0, path: "/big" });
  const drops = ofType(when(h.state, { type: "Reconcile", at: T0 }), "PiecesDropped");
  assert.equal(drops.map((d) => d.sha256s.length), [PIECES_PER_EVENT, 1]);
  assert.is(new Set(drops.flatMap((d) => d.sha256s)).size, count);
  h.append(drops);
  assert.is(h.state.dropsOwed.size, 0);
});

Large.run();
