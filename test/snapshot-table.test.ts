// The snapshot's encoding of the table (format 5): decoded, it is exactly the table that was
// encoded, every Map, Set and index of it, not only what the digest covers. No server: a
// varied log is decided and folded as bytes, as every reader of the log folds it.
import { createHash } from "node:crypto";
import { Encoder } from "cbor-x";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { catalogue } from "../streams/catalogue.js";
import { encode } from "../src/codec.js";
import { decide, type Command } from "../src/decide.js";
import { MIN_PIECE_SIZE, type DfsEvent } from "../src/events.js";
import { foldLogged, subjectFor } from "../src/fold.js";
import { Slices } from "../src/slices.js";
import { SNAPSHOT_FORMAT, decodeTable, encodeTable, type SnapshotHead } from "../src/snapshot.js";
import { initialState, stateDigest, stateDigestInSlices, type State } from "../src/state.js";

const cat = catalogue("dfs");
const T0 = 1_700_000_000_000;
const DAY = 86_400_000;
const sha = (seed: string): string => createHash("sha256").update(seed).digest("hex");

/** A log being written: commands decided against the fold so far, appended as bytes and folded. */
class Log {
  readonly state: State = initialState();
  private seq = 0;
  append(value: unknown, subject?: string): string | undefined {
    const data = encode(value);
    const event = value as DfsEvent;
    return foldLogged(this.state, cat, { seq: ++this.seq, subject: subject ?? subjectFor(cat, event), data }).rejected;
  }
  run(cmd: Command): DfsEvent[] {
    const events = decide(this.state, cmd);
    for (const e of events) assert.is(this.append(e), undefined, `${e.type} decided for ${cmd.type} is folded`);
    return events;
  }
  /** Every worker assigned a piece by `events` confirms it (those in `except` do not). */
  confirm(events: readonly DfsEvent[], at: number, except: readonly string[] = []): void {
    for (const a of events) {
      if (a.type !== "PeersAssigned" || except.includes(a.workerId)) continue;
      for (const p of a.pieces) this.run({ type: "ConfirmPiece", at, workerId: a.workerId, fileId: a.fileId, version: a.version, piece: p.piece, sha256: p.sha256, ok: true });
    }
  }
}

function put(log: Log, path: string, uploadId: string, seeds: readonly string[], o: { replicas?: number; at?: number; uploader?: string } = {}): DfsEvent[] {
  return log.run({
    type: "CreateVersion",
    at: o.at ?? T0,
    uploadId,
    ...(o.uploader ? { uploader: o.uploader } : {}),
    newFileId: `file-${uploadId}`,
    path,
    size: seeds.length * MIN_PIECE_SIZE,
    sha256: seeds.length === 1 ? sha(seeds[0]!) : sha(`whole ${uploadId}`),
    pieceSize: MIN_PIECE_SIZE,
    replicas: o.replicas ?? 2,
    pieces: seeds.map((seed, index) => ({ index, size: MIN_PIECE_SIZE, sha256: sha(seed) })),
  });
}

/**
 * Workers a-e (e lost, with copies ordered away from it; c lost and back); committed files of
 * several pieces; bytes shared by three files at two replica counts; a path with four versions
 * of which retention expired the oldest; a pending upload half stored; an abandoned one; a
 * deleted file and a deleted version (drops owed); an open stream and a sealed one; copies
 * ordered, one failed, one done; a replica reported lost; rejected messages.
 */
function variedLog(): Log {
  const log = new Log();
  for (const id of ["a", "b", "c", "d", "e"]) log.run({ type: "NoteHeartbeat", at: T0, workerId: id });
  log.confirm(put(log, "/docs/three", "U-three", ["t0", "t1", "t2"], { uploader: "client-1" }), T0);
  for (const [i, replicas] of [[1, 2], [2, 3], [3, 2]] as const) log.confirm(put(log, `/dup/${i}`, `U-dup${i}`, ["shared", `own ${i}`], { replicas }), T0);
  for (let v = 1; v <= 4; v++) log.confirm(put(log, "/many", `U-many${v}`, [`many ${v}`], { at: T0 + v * DAY }), T0 + v * DAY);
  log.run({ type: "SetRetention", at: T0 + 5 * DAY, keepVersions: 2 });
  // Piece 0 of /pending stored by all its peers (complete), piece 1 by none.
  for (const a of put(log, "/pending", "U-pending", ["p0", "p1"])) {
    if (a.type !== "PeersAssigned") continue;
    for (const p of a.pieces.filter((p) => p.piece === 0)) log.run({ type: "ConfirmPiece", at: T0, workerId: a.workerId, fileId: a.fileId, version: a.version, piece: 0, sha256: p.sha256, ok: true });
  }
  put(log, "/abandoned", "U-abandoned", ["ab0"]);
  log.run({ type: "AbandonUpload", at: T0, uploadId: "U-abandoned", code: "UPLOAD_ABANDONED", reason: "the client gave up" });
  log.confirm(put(log, "/gone", "U-gone", ["gone0", "gone1"]), T0);
  log.run({ type: "DeleteFile", at: T0, path: "/gone" });
  log.confirm(put(log, "/versions", "U-v1", ["v1"]), T0);
  log.confirm(put(log, "/versions", "U-v2", ["v2"]), T0);
  log.run({ type: "DeleteFile", at: T0, path: "/versions", version: 1 });
  log.run({ type: "CreateStream", at: T0, uploadId: "S-open", uploader: "client-2", newFileId: "S-open", path: "/stream/open", pieceSize: MIN_PIECE_SIZE, replicas: 2 });
  log.run({ type: "ExtendUpload", at: T0, uploadId: "S-open", pieces: [0, 1].map((index) => ({ index, size: MIN_PIECE_SIZE, sha256: sha(`open ${index}`) })) });
  log.run({ type: "CreateStream", at: T0, uploadId: "S-sealed", newFileId: "S-sealed", path: "/stream/sealed", pieceSize: MIN_PIECE_SIZE, replicas: 1 });
  const sealed = log.run({ type: "ExtendUpload", at: T0, uploadId: "S-sealed", pieces: [{ index: 0, size: 9, sha256: sha("sealed 0") }] });
  log.run({ type: "SealUpload", at: T0, uploadId: "S-sealed", size: 9, sha256: sha("sealed 0") });
  log.confirm(sealed, T0);
  // c goes and comes back; e goes for good, and healing copies what it held elsewhere.
  log.run({ type: "NoteSilence", at: T0 + 6 * DAY, workerId: "c", silentMs: 60_000 });
  log.run({ type: "NoteHeartbeat", at: T0 + 6 * DAY, workerId: "c" });
  log.run({ type: "NoteSilence", at: T0 + 6 * DAY, workerId: "e", silentMs: 60_000 });
  const healed = log.run({ type: "Reconcile", at: T0 + 6 * DAY });
  const copies = healed.flatMap((e) => (e.type === "CopiesOrdered" ? e.pieces.map((p) => ({ workerId: e.workerId, sha256: p.sha256 })) : []));
  assert.ok(copies.length >= 3, `copies ordered away from e (${copies.length})`);
  log.run({ type: "ConfirmCopy", at: T0 + 6 * DAY, workerId: copies[0]!.workerId, sha256: copies[0]!.sha256, ok: true });
  log.run({ type: "ConfirmCopy", at: T0 + 6 * DAY, workerId: copies[1]!.workerId, sha256: copies[1]!.sha256, ok: false, code: "CHECKSUM_MISMATCH", message: "bad bytes" });
  const holder = [...log.state.content.get(sha("t0"))!.holders][0]!;
  log.run({ type: "ReportLost", at: T0 + 6 * DAY, workerId: holder, sha256s: [sha("t0")], reason: "scrub found it rotten" });
  // Rejected: bytes that are no event, and an event that contradicts the table.
  assert.ok(log.append(Buffer.from("not cbor at all"), cat.fileEvents("junk")) !== undefined);
  assert.ok(log.append({ type: "WorkerLost", at: T0, workerId: "nobody" }) !== undefined);
  return log;
}

function headOf(state: State, bytes: Uint8Array): SnapshotHead {
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  return { format: SNAPSHOT_FORMAT, snapshotId: "snap", seq: state.lastSeq, digest: stateDigest(state), bytes: bytes.length, chunks: 1, sha256, at: T0, files: state.paths.size };
}

const test = suite("snapshot table");

test("snapshot table - the varied log holds every kind of record the table keeps", () => {
  const { state } = variedLog();
  const versions = [...state.files.values()].flatMap((f) => [...f.versions.values()]);
  for (const status of ["pending", "committed", "abandoned", "deleted"]) assert.ok(versions.some((v) => v.status === status), status);
  assert.ok(versions.some((v) => v.reason?.startsWith("expired")), "a version expired by retention");
  assert.ok(versions.some((v) => v.stream === "open") && versions.some((v) => v.stream === "sealed"), "streams open and sealed");
  assert.ok(versions.some((v) => v.uploader !== undefined) && versions.some((v) => v.uploader === undefined), "uploaders named and not");
  assert.ok(versions.some((v) => v.status === "pending" && v.completePieces > 0), "a pending version partly stored");
  const shared = state.content.get(sha("shared"))!;
  assert.is(shared.refs, 3);
  assert.equal([...shared.wanted.keys()].sort(), [2, 3]);
  const content = [...state.content.values()];
  assert.ok(content.some((c) => c.failedAt.size > 0), "a failed copy");
  assert.ok(content.some((c) => c.copying.size > 0), "copies in flight");
  assert.ok(content.some((c) => c.assigned.size > 0), "assignments of a pending upload");
  assert.ok(state.dropsOwed.size > 0 && state.unhealthy.size > 0 && state.copyingTo.size > 0 && state.versioned.size > 0);
  assert.ok(state.files.get("file-U-gone")!.deleted && !state.paths.has("/gone"));
  assert.equal([...state.workers.values()].filter((w) => !w.live).map((w) => w.workerId), ["e"]);
  assert.is(state.rejected.count, 2);
  assert.equal(state.retention, { keepVersions: 2 });
});

test("snapshot table - decoded, the table is exactly the one encoded: every Map, Set and index", async () => {
  const { state } = variedLog();
  const bytes = await encodeTable(state);
  const decoded = decodeTable(headOf(state, bytes), [bytes]);
  assert.equal(decoded, state);
  assert.is(stateDigest(decoded), stateDigest(state));
  // The indexes one by one too, so that a failure names the one that differs.
  for (const index of ["paths", "uploads", "pendingUploads", "placedOn", "unhealthy", "copyingTo", "versioned", "dropsOwed", "workers"] as const) {
    assert.equal(decoded[index], state[index], index);
  }
});

test("snapshot table - the table decoded folds on as the one encoded", async () => {
  const log = variedLog();
  const bytes = await encodeTable(log.state);
  const decoded = decodeTable(headOf(log.state, bytes), [bytes]);
  const more: Command[] = [
    { type: "NoteHeartbeat", at: T0 + 7 * DAY, workerId: "e" },
    { type: "Reconcile", at: T0 + 7 * DAY },
    { type: "DeleteFile", at: T0 + 7 * DAY, path: "/dup/2" },
    { type: "AbandonUpload", at: T0 + 7 * DAY, uploadId: "U-pending", code: "TIMEOUT", reason: "quiet" },
    { type: "Reconcile", at: T0 + 7 * DAY },
  ];
  for (const cmd of more) {
    const events = decide(decoded, cmd);
    assert.equal(events, decide(log.state, cmd), `${cmd.type}: the same decision`);
    for (const e of events) {
      const data = encode(e);
      assert.is(foldLogged(decoded, cat, { seq: decoded.lastSeq + 1, subject: subjectFor(cat, e), data }).rejected, undefined);
      log.append(e);
    }
  }
  assert.equal(decoded, log.state);
});

test("snapshot table - encoding and digest let the event loop run between slices, and give what one go gives", async () => {
  const { state } = variedLog();
  const whole = await encodeTable(state);
  let ticks = 0;
  const tick = () => {
    ticks += 1;
    if (ticks < 1_000) setImmediate(tick);
  };
  setImmediate(tick);
  // Slices of no time: the encoder yields after every file and content.
  const sliced = await encodeTable(state, new Slices(0));
  const encodedTicks = ticks;
  assert.ok(encodedTicks >= state.files.size, `the event loop ran ${encodedTicks} times while it encoded ${state.files.size} files`);
  assert.equal(sliced, whole);
  assert.is(await stateDigestInSlices(state, new Slices(0)), stateDigest(state));
  assert.ok(ticks > encodedTicks, "and while it digested");
});

test("snapshot table - columns of whole numbers are written as narrow as their values allow, and format 5's wide ones read the same", async () => {
  const { state } = variedLog();
  const bytes = await encodeTable(state);
  const cbor = new Encoder({ useRecords: false, structuredClone: false });
  const table = cbor.decode(Uint8Array.from(bytes)) as Record<string, Record<string, unknown>>;
  assert.instance(table.versions!.version, Uint8Array, "version numbers of a few");
  assert.instance(table.versions!.createdAt, Float64Array, "times past 2^32");
  assert.instance(table.versions!.reasonRef, Uint32Array, "references that may be absent (2^32 - 1)");
  // The same table as format 5 wrote it: every column of whole numbers at its declared width.
  const declared: Record<string, Record<string, { from(values: ArrayLike<number>): ArrayLike<number> }>> = {
    versions: { version: Float64Array, size: Float64Array, pieceSize: Float64Array, completePieces: Uint32Array, pieceCount: Uint32Array, uploadIdRef: Uint32Array },
    files: { idRef: Uint32Array, pathRef: Uint32Array, lastVersion: Float64Array, versionCount: Uint32Array },
    pieces: { index: Uint32Array, size: Float64Array, sha256Hash: Uint32Array, peerCount: Uint32Array, storedCount: Uint32Array },
    peers: { workerRef: Uint32Array },
    content: { size: Float64Array, refs: Uint32Array, holderCount: Uint32Array },
  };
  for (const [group, columns] of Object.entries(declared)) {
    for (const [name, Typed] of Object.entries(columns)) table[group]![name] = Typed.from(table[group]![name] as ArrayLike<number>);
  }
  const wide = cbor.encode(table);
  assert.ok(wide.length > bytes.length, `format 5's columns take more bytes (${wide.length} against ${bytes.length})`);
  const decoded = decodeTable({ ...headOf(state, wide), format: 5 }, [wide]);
  assert.equal(decoded, state);
  assert.is(stateDigest(decoded), stateDigest(state));
});

test("snapshot table - a snapshot of another format, or whose bytes are not its head's, is refused", async () => {
  const { state } = variedLog();
  const bytes = await encodeTable(state);
  const head = headOf(state, bytes);
  assert.throws(() => decodeTable({ ...head, format: 4 }, [bytes]), /snapshot format 4, not 5 or 6/);
  assert.throws(() => decodeTable({ ...head, sha256: sha("other") }, [bytes]), /do not match their SHA-256/);
  assert.throws(() => decodeTable({ ...head, seq: head.seq + 1 }, [bytes]), /not a table at sequence/);
});

test("snapshot table - one whose columns do not hold together is refused before any of it is used", async () => {
  const { state } = variedLog();
  const bytes = await encodeTable(state);
  const cbor = new Encoder({ useRecords: false, structuredClone: false });
  type Columns = Record<string, Record<string, unknown>>;
  const forged = (change: (table: Columns) => void): RegExp | undefined => {
    const table = cbor.decode(Uint8Array.from(bytes)) as Columns; // a copy: decoded typed arrays are views of the bytes
    change(table);
    const changed = cbor.encode(table);
    try {
      decodeTable({ ...headOf(state, changed), seq: state.lastSeq }, [changed]);
      return undefined;
    } catch (err) {
      return /^snapshot table: /.test((err as Error).message) ? /refused/ : new RegExp(`not refused by its checks: ${(err as Error).message}`);
    }
  };
  /** The column as its declared type, widened from the narrower one it may have been written in. */
  const wide = <T extends Uint32Array | Float64Array>(table: Columns, group: string, name: string, Typed: { from(values: ArrayLike<number>): T }): T =>
    (table[group]![name] = Typed.from(table[group]![name] as ArrayLike<number>));
  const rows = (table: Columns, group: string) => (table[group]!.idRef ?? table[group]!.sha256Hash ?? table[group]!.workerRef) as ArrayLike<number>;
  const cases: Record<string, (table: Columns) => void> = {
    // A piece index of 2^32 - 2 made a sparse array whose first walk never ended.
    "a piece index past the most pieces a version has": (t) => (t.pieces!.index = Uint32Array.from(t.pieces!.index as Uint32Array, (i) => i + 4_294_967_000)),
    "a worker id naming no string": (t) => (t.workers!.idRef = Uint32Array.from(rows(t, "workers"), () => 1_000_000)),
    "a path naming no string": (t) => (wide(t, "files", "pathRef", Uint32Array)[0] = 1_000_000),
    "an absent worker id": (t) => (wide(t, "holders", "workerRef", Uint32Array)[0] = 0xffffffff),
    "a content naming no SHA-256": (t) => (wide(t, "content", "sha256Hash", Uint32Array)[0] = 1_000_000),
    "a version count past the versions": (t) => ((t.files!.versionCount as Uint32Array)[0] += 1),
    "a peer count past the peers": (t) => ((t.pieces!.peerCount as Uint32Array)[0] += 1),
    "a column shorter than its group": (t) => (t.versions!.size = (t.versions!.size as Float64Array).subarray(1)),
    "a column of another kind": (t) => (t.workers!.live = Array.from(t.workers!.live as Uint8Array)),
    "a Uint8 column written wider": (t) => (t.workers!.live = Uint32Array.from(t.workers!.live as Uint8Array)),
    "a column of whole numbers written signed": (t) => (t.versions!.size = Int32Array.from(t.versions!.size as Uint32Array)),
    "a missing column group": (t) => delete t.content,
    "a size that is not a number": (t) => (wide(t, "versions", "size", Float64Array)[0] = NaN),
    "a negative time": (t) => (wide(t, "versions", "createdAt", Float64Array)[0] = -1),
    "a fractional size": (t) => (wide(t, "pieces", "size", Float64Array)[0] = 0.5),
    "no replicas": (t) => ((t.versions!.replicas as Uint8Array)[0] = 0),
    "a status past the statuses": (t) => ((t.versions!.status as Uint8Array)[0] = 9),
    "a role past the roles": (t) => ((t.peers!.role as Uint8Array)[0] = 7),
    "pieces out of order": (t) => ((t.pieces!.index as Uint32Array)[1] = 0),
    "a worker twice": (t) => ((t.workers!.idRef as Uint32Array)[1] = (t.workers!.idRef as Uint32Array)[0]!),
    "SHA-256s of 33 bytes": (t) => (t.hashes = new Uint8Array(33) as never),
    "strings that are not strings": (t) => (t.strings = [cbor.encode([1, 2, 3])] as never),
    "rejections that are not a list": (t) => (t.rejected = { count: "many", recent: {} } as never),
    "a retention policy of no versions": (t) => (t.retention = { keepVersions: 0 } as never),
  };
  for (const [name, change] of Object.entries(cases)) assert.equal(forged(change), /refused/, name);
  assert.is(forged(() => undefined)?.source, undefined, "the table as it was written reads back");
});

test.run();
