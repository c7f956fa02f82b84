// A snapshot of the master's table: the table exactly as the log made it up to a sequence,
// so that a master starts from it and folds only the events after it. It shortens restarts
// and is never the truth: `dfs replay --check` folds the log from its first event and
// compares its digest with the snapshot's.
//
// Format 5 writes the table in columns, with CBOR (cbor-x, plain arrays and typed arrays)
// around them:
// - every distinct string (file, upload and worker ids, paths, uploaders, reasons) once, in
//   `strings`, and every distinct SHA-256 once, as 32 bytes in `hashes`; records refer to
//   them by index. Decoded, each is one string shared by all that refer to it, as the fold
//   shares a worker's id and a content's SHA-256;
// - each field of a kind of record in a typed array of its own (a column), one row per
//   record in the order the table's Maps hold them; a list (a file's versions, a piece's
//   peers, a content's holders...) is a column of lengths and a column of all the items one
//   after another;
// - the indexes of the table (`paths`, `uploads`, `pendingUploads`, `versioned`, `placedOn`,
//   `copyingTo`, `unhealthy`) are not written: the decoder makes them again from the records
//   by the fold's own rules (`indexFile`, `indexContent`). They come back with the same
//   members; the order in which they list them may differ from the master's that wrote the
//   snapshot (only the order in which healing visits them, whose decisions are logged).
// At 200,000 one-piece files that is about 220-260 bytes a file instead of 530 (format 4: the
// structured clone of the whole table), and the encoder runs in slices of the event loop.
// Format 6 is format 5 with each column of whole numbers (the Uint32 and Float64 ones) in the
// narrowest of Uint8, Uint16 and Uint32 that holds its values: 136 bytes a file instead of 225
// at 313,712 files, which a starting master reads, hashes and decodes. Both are read.
import { createHash } from "node:crypto";
import { Encoder } from "cbor-x";
import { z } from "zod";
import { added, contentFor, indexContent, oweDrop, withEntry, type ContentState } from "./content.js";
import { MAX_PIECES, MAX_PIECE_SIZE, MAX_REPLICAS, MIN_PIECE_SIZE, RetentionSet, type Role } from "./events.js";
import { Slices } from "./slices.js";
import { RECENT_REJECTIONS_KEPT, indexFile, initialState, newFile, newVersion, newWorker, withPeer, withStored, type PieceState, type State, type VersionState, type VersionStatus } from "./state.js";

/** The shape of the encoded table, as written: a snapshot of a format not in READABLE_FORMATS is not used (the log is folded instead). */
export const SNAPSHOT_FORMAT = 6;
/** Format 5's columns are all of the types format 6 allows. */
const READABLE_FORMATS: readonly number[] = [5, SNAPSHOT_FORMAT];

/** What a snapshot's head says: written after its chunks, so a head names a whole snapshot. */
export const SnapshotHead = z.object({
  format: z.number().int(),
  snapshotId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
  /** The last sequence the table covers. */
  seq: z.number().int().nonnegative(),
  /** `stateDigest` of the table: what a replay of the log up to `seq` must give. */
  digest: z.string().regex(/^[0-9a-f]{64}$/),
  bytes: z.number().int().nonnegative(),
  chunks: z.number().int().nonnegative(),
  /** Of the encoded table, all chunks in order. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** When it was written (ms since the epoch). */
  at: z.number().int().nonnegative(),
  /** Files and workers in the table, for the log line. */
  files: z.number().int().nonnegative(),
});
export type SnapshotHead = z.infer<typeof SnapshotHead>;

/** No string or SHA-256 (a reference column's "absent"). */
const NONE = 0xffffffff;
const HASH_BYTES = 32;
const SHA256_HEX = /^[0-9a-f]{64}$/;
const STRINGS_PER_PART = 8192;
/** The first byte of a CBOR map of fewer than 24 entries, plus their count. */
const CBOR_MAP_OF = 0xa0;
const STATUSES: readonly VersionStatus[] = ["pending", "committed", "abandoned", "deleted"];
const STREAMS: readonly VersionState["stream"][] = [undefined, "open", "sealed"];
const ROLES: readonly Role[] = ["major", "minor"];
/** A piece with no peers or no copies yet. */
const NOBODY: readonly never[] = Object.freeze([]);

/**
 * The encoded table. Columns named by a record's field hold one row per record; `…Count`
 * columns hold the length of a list whose items follow one another in the columns after it.
 * `…Ref` columns hold indexes into `strings`, `…Hash` columns into `hashes` (NONE: absent).
 * Numbers from events (sizes, times, versions) are Float64 (any safe integer), counts and
 * references Uint32, small enums Uint8; a Float64 or Uint32 column of whole numbers that fit
 * a narrower unsigned type is written in the narrowest (format 6).
 */
interface Table {
  lastSeq: number;
  rejected: { count: number; recent: [seq: number, reason: string][] };
  retention: State["retention"];
  /** The distinct strings, in parts of STRINGS_PER_PART, each its own CBOR array (encoding them all at once held the event loop half a second). */
  strings: Uint8Array[];
  hashes: Uint8Array;
  workers: { idRef: Whole; live: Uint8Array; joinedAt: Numbers; assignedBytes: Numbers };
  files: { idRef: Whole; pathRef: Whole; deleted: Uint8Array; lastVersion: Numbers; versionCount: Whole };
  versions: {
    version: Numbers;
    size: Numbers;
    /** Of the whole version; NONE: "" (a stream not sealed yet). */
    sha256Hash: Whole;
    pieceSize: Numbers;
    replicas: Uint8Array;
    uploadIdRef: Whole;
    uploaderRef: Whole;
    createdAt: Numbers;
    /** Index in STREAMS. */
    stream: Uint8Array;
    /** Index in STATUSES. */
    status: Uint8Array;
    /** NaN: not committed. */
    committedAt: Numbers;
    reasonRef: Whole;
    completePieces: Whole;
    /** Planned pieces: `pieces` but its holes (a stream's plan may have some until it is whole). */
    pieceCount: Whole;
  };
  pieces: { index: Whole; size: Numbers; sha256Hash: Whole; peerCount: Whole; storedCount: Whole };
  peers: { workerRef: Whole; role: Uint8Array };
  stored: { workerRef: Whole };
  content: {
    sha256Hash: Whole;
    size: Numbers;
    refs: Whole;
    wantedCount: Whole;
    holderCount: Whole;
    assignedCount: Whole;
    copyingCount: Whole;
    failedCount: Whole;
  };
  wanted: { replicas: Uint8Array; pieces: Whole };
  holders: { workerRef: Whole };
  assigned: { workerRef: Whole; count: Whole };
  copying: { workerRef: Whole };
  failed: { workerRef: Whole; at: Numbers };
  dropsOwed: { workerRef: Whole; hashCount: Whole };
  drops: { sha256Hash: Whole };
}

const U8 = Uint8Array, U16 = Uint16Array, U32 = Uint32Array, F64 = Float64Array;
/** A column of whole numbers from 0 to 2^32 - 1, as narrow as its values allow. */
type Whole = Uint8Array | Uint16Array | Uint32Array;
/** A column of numbers: whole ones as narrow as they allow, or Float64. */
type Numbers = Whole | Float64Array;
/** The unsigned types a column may be narrowed to, and the most each holds. */
const NARROWER: readonly [TypedArrayOf, number][] = [[U8, 0xff], [U16, 0xffff], [U32, 0xffffffff]];
type ColumnGroup = "workers" | "files" | "versions" | "pieces" | "peers" | "stored" | "content" | "wanted" | "holders" | "assigned" | "copying" | "failed" | "dropsOwed" | "drops";

/** The typed array of every column: what the encoder makes, and what the decoder insists on. */
const COLUMNS = {
  workers: { idRef: U32, live: U8, joinedAt: F64, assignedBytes: F64 },
  files: { idRef: U32, pathRef: U32, deleted: U8, lastVersion: F64, versionCount: U32 },
  versions: {
    version: F64, size: F64, sha256Hash: U32, pieceSize: F64, replicas: U8, uploadIdRef: U32, uploaderRef: U32, createdAt: F64,
    stream: U8, status: U8, committedAt: F64, reasonRef: U32, completePieces: U32, pieceCount: U32,
  },
  pieces: { index: U32, size: F64, sha256Hash: U32, peerCount: U32, storedCount: U32 },
  peers: { workerRef: U32, role: U8 },
  stored: { workerRef: U32 },
  content: { sha256Hash: U32, size: F64, refs: U32, wantedCount: U32, holderCount: U32, assignedCount: U32, copyingCount: U32, failedCount: U32 },
  wanted: { replicas: U8, pieces: U32 },
  holders: { workerRef: U32 },
  assigned: { workerRef: U32, count: U32 },
  copying: { workerRef: U32 },
  failed: { workerRef: U32, at: F64 },
  dropsOwed: { workerRef: U32, hashCount: U32 },
  drops: { sha256Hash: U32 },
} satisfies { [G in ColumnGroup]: { [K in keyof Table[G]]: TypedArrayOf } };

/** Plain numbers, made into typed arrays once the table is read. */
type Draft<T> = { [K in keyof T]: number[] };
type TypedArrayOf = new (values: number[]) => Uint8Array | Uint16Array | Uint32Array | Float64Array;

/** The type a column declared `Typed` is written in: the narrowest unsigned one that holds `values`, if they are all whole. */
function narrowest(Typed: TypedArrayOf, values: readonly number[]): TypedArrayOf {
  if (Typed === U8) return U8;
  let most = 0;
  for (const n of values) {
    if (!Number.isInteger(n) || n < 0) return Typed;
    if (n > most) most = n;
  }
  return NARROWER.find(([, holds]) => most <= holds)?.[0] ?? Typed;
}

/** Whether a column declared `Typed` may be `values` (see `narrowest`). */
function isColumnOf(Typed: TypedArrayOf, values: unknown): values is Numbers {
  return values instanceof Typed || (Typed !== U8 && NARROWER.some(([Narrower]) => values instanceof Narrower));
}

function draft<T extends Record<string, ArrayLike<number>>>(columns: { [K in keyof T]: TypedArrayOf }): { rows: Draft<T>; typed: () => Generator<"", T> } {
  const rows = Object.fromEntries(Object.keys(columns).map((k) => [k, []])) as unknown as Draft<T>;
  /** The typed columns, one a step (it yields "" between them). */
  function* typed(): Generator<"", T> {
    const made: Record<string, ArrayLike<number>> = {};
    for (const [k, Typed] of Object.entries(columns) as [string, TypedArrayOf][]) {
      const values = (rows as Record<string, number[]>)[k]!;
      made[k] = new (narrowest(Typed, values))(values);
      yield "";
    }
    return made as T;
  }
  return { rows, typed };
}

/** Each distinct string and SHA-256 once, by index. */
class Interned {
  readonly strings: string[] = [];
  private readonly stringIndex = new Map<string, number>();
  private hashBytes = Buffer.alloc(HASH_BYTES * 1024);
  private hashCount = 0;
  private readonly hashIndex = new Map<string, number>();

  string(value: string | undefined): number {
    if (value === undefined) return NONE;
    let i = this.stringIndex.get(value);
    if (i === undefined) {
      this.stringIndex.set(value, (i = this.strings.length));
      this.strings.push(value);
    }
    return i;
  }

  /** A SHA-256 in hex ("" for none): the fold keeps only lowercase hex ones (the events' schemas say so). */
  hash(hex: string): number {
    if (hex === "") return NONE;
    let i = this.hashIndex.get(hex);
    if (i === undefined) {
      if (!SHA256_HEX.test(hex)) throw new Error(`not a SHA-256 in the table: ${JSON.stringify(hex)}`);
      if ((this.hashCount + 1) * HASH_BYTES > this.hashBytes.length) this.hashBytes = Buffer.concat([this.hashBytes, Buffer.alloc(this.hashBytes.length)]);
      this.hashBytes.write(hex, this.hashCount * HASH_BYTES, "hex");
      this.hashIndex.set(hex, (i = this.hashCount++));
    }
    return i;
  }

  hashes(): Uint8Array {
    return this.hashBytes.subarray(0, this.hashCount * HASH_BYTES);
  }
}

const cbor = new Encoder({ useRecords: false, structuredClone: false });

/**
 * The table's bytes. It is read in slices of the event loop (see Slices): the caller must
 * not let the table change until this resolves (the master holds its fold meanwhile).
 */
export async function encodeTable(state: State, slices = new Slices()): Promise<Uint8Array> {
  const breathe = async () => {
    if (slices.due()) await slices.next();
  };
  const interned = new Interned();
  const ref = (s: string | undefined) => interned.string(s);
  const hash = (hex: string) => interned.hash(hex);
  const workers = draft<Table["workers"]>(COLUMNS.workers);
  const files = draft<Table["files"]>(COLUMNS.files);
  const versions = draft<Table["versions"]>(COLUMNS.versions);
  const pieces = draft<Table["pieces"]>(COLUMNS.pieces);
  const peers = draft<Table["peers"]>(COLUMNS.peers);
  const stored = draft<Table["stored"]>(COLUMNS.stored);
  const content = draft<Table["content"]>(COLUMNS.content);
  const wanted = draft<Table["wanted"]>(COLUMNS.wanted);
  const holders = draft<Table["holders"]>(COLUMNS.holders);
  const assigned = draft<Table["assigned"]>(COLUMNS.assigned);
  const copying = draft<Table["copying"]>(COLUMNS.copying);
  const failed = draft<Table["failed"]>(COLUMNS.failed);
  const dropsOwed = draft<Table["dropsOwed"]>(COLUMNS.dropsOwed);
  const drops = draft<Table["drops"]>(COLUMNS.drops);

  for (const w of state.workers.values()) {
    const r = workers.rows;
    r.idRef.push(ref(w.workerId));
    r.live.push(w.live ? 1 : 0);
    r.joinedAt.push(w.joinedAt);
    r.assignedBytes.push(w.assignedBytes);
  }
  for (const f of state.files.values()) {
    const r = files.rows;
    r.idRef.push(ref(f.fileId));
    r.pathRef.push(ref(f.path));
    r.deleted.push(f.deleted ? 1 : 0);
    r.lastVersion.push(f.lastVersion);
    r.versionCount.push(f.versions.size);
    for (const v of f.versions.values()) {
      const vr = versions.rows;
      vr.version.push(v.version);
      vr.size.push(v.size);
      vr.sha256Hash.push(hash(v.sha256));
      vr.pieceSize.push(v.pieceSize);
      vr.replicas.push(v.replicas);
      vr.uploadIdRef.push(ref(v.uploadId));
      vr.uploaderRef.push(ref(v.uploader));
      vr.createdAt.push(v.createdAt);
      vr.stream.push(STREAMS.indexOf(v.stream));
      vr.status.push(STATUSES.indexOf(v.status));
      vr.committedAt.push(v.committedAt ?? NaN);
      vr.reasonRef.push(ref(v.reason));
      vr.completePieces.push(v.completePieces);
      let present = 0;
      v.pieces.forEach((p) => {
        // forEach skips the holes of a sparse plan.
        present += 1;
        const pr = pieces.rows;
        pr.index.push(p.index);
        pr.size.push(p.size);
        pr.sha256Hash.push(hash(p.sha256));
        pr.peerCount.push(p.peers.length);
        pr.storedCount.push(p.stored.length);
        for (const peer of p.peers) {
          peers.rows.workerRef.push(ref(peer.workerId));
          peers.rows.role.push(ROLES.indexOf(peer.role));
        }
        for (const w of p.stored) stored.rows.workerRef.push(ref(w));
      });
      vr.pieceCount.push(present);
    }
    await breathe();
  }
  for (const c of state.content.values()) {
    const r = content.rows;
    r.sha256Hash.push(hash(c.sha256));
    r.size.push(c.size);
    r.refs.push(c.refs);
    r.wantedCount.push(c.wanted.size);
    for (const [replicas, count] of c.wanted) {
      wanted.rows.replicas.push(replicas);
      wanted.rows.pieces.push(count);
    }
    r.holderCount.push(c.holders.size);
    for (const w of c.holders) holders.rows.workerRef.push(ref(w));
    r.assignedCount.push(c.assigned.size);
    for (const [w, count] of c.assigned) {
      assigned.rows.workerRef.push(ref(w));
      assigned.rows.count.push(count);
    }
    r.copyingCount.push(c.copying.size);
    for (const w of c.copying) copying.rows.workerRef.push(ref(w));
    r.failedCount.push(c.failedAt.size);
    for (const [w, at] of c.failedAt) {
      failed.rows.workerRef.push(ref(w));
      failed.rows.at.push(at);
    }
    await breathe();
  }
  for (const [workerId, owed] of state.dropsOwed) {
    dropsOwed.rows.workerRef.push(ref(workerId));
    dropsOwed.rows.hashCount.push(owed.size);
    for (const sha256 of owed) {
      drops.rows.sha256Hash.push(hash(sha256));
      await breathe();
    }
  }
  const columns = async <T>(d: { typed: () => Generator<"", T> }) => {
    const steps = d.typed();
    for (let step = steps.next(); ; step = steps.next()) {
      if (step.done) return step.value;
      await breathe();
    }
  };
  const strings: Uint8Array[] = [];
  for (let i = 0; i < interned.strings.length; i += STRINGS_PER_PART) {
    strings.push(cbor.encode(interned.strings.slice(i, i + STRINGS_PER_PART)));
    await breathe();
  }
  const table: Table = {
    lastSeq: state.lastSeq,
    rejected: { count: state.rejected.count, recent: state.rejected.recent.map((r) => [r.seq, r.reason]) },
    retention: state.retention,
    strings,
    hashes: interned.hashes(),
    workers: await columns(workers),
    files: await columns(files),
    versions: await columns(versions),
    pieces: await columns(pieces),
    peers: await columns(peers),
    stored: await columns(stored),
    content: await columns(content),
    wanted: await columns(wanted),
    holders: await columns(holders),
    assigned: await columns(assigned),
    copying: await columns(copying),
    failed: await columns(failed),
    dropsOwed: await columns(dropsOwed),
    drops: await columns(drops),
  };
  // A CBOR map written a value at a time, between slices: cbor-x encoding the whole table at
  // once (tens of MB) held the event loop 0.1-0.25 s here.
  const entries = Object.entries(table);
  const parts: Uint8Array[] = [Uint8Array.of(CBOR_MAP_OF + entries.length)];
  for (const [key, value] of entries) {
    parts.push(cbor.encode(key), cbor.encode(value));
    await breathe();
  }
  return Buffer.concat(parts);
}

/** The table encoded in `chunks`, checked against its head; throws if it is not that table. */
export function decodeTable(head: SnapshotHead, chunks: readonly Uint8Array[]): State {
  if (!READABLE_FORMATS.includes(head.format)) throw new Error(`snapshot format ${head.format}, not ${READABLE_FORMATS.join(" or ")}`);
  const hash = createHash("sha256");
  let bytes = 0;
  for (const chunk of chunks) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  if (chunks.length !== head.chunks || bytes !== head.bytes) throw new Error(`snapshot has ${chunks.length} chunks of ${bytes} bytes, its head says ${head.chunks} of ${head.bytes}`);
  if (hash.digest("hex") !== head.sha256) throw new Error("snapshot bytes do not match their SHA-256");
  const table = cbor.decode(Buffer.concat(chunks)) as unknown;
  if ((table as Partial<Table> | undefined)?.lastSeq !== head.seq) throw new Error(`snapshot is not a table at sequence ${head.seq}`);
  checkColumns(table);
  const strings = table.strings.flatMap((part) => cbor.decode(part) as unknown[]);
  if (!strings.every((s): s is string => typeof s === "string")) throw new Error("snapshot table: its strings are not all strings");
  const hashBytes = Buffer.from(table.hashes.buffer, table.hashes.byteOffset, table.hashes.byteLength);
  const hashes = Array.from({ length: hashBytes.length / HASH_BYTES }, (_, i) => hashBytes.toString("hex", i * HASH_BYTES, (i + 1) * HASH_BYTES));
  checkRows(table, strings.length, hashes.length);
  const state = tableState(table, strings, hashes);
  if (state.workers.size !== table.workers.idRef.length || state.files.size !== table.files.idRef.length || state.content.size !== table.content.sha256Hash.length) {
    throw new Error("snapshot table: a worker, a file or a content is in it twice");
  }
  return state;
}

// A snapshot is read as bytes another process wrote: a writer's bug, or anyone who may write
// the snapshot stream, could make any of its columns say anything. Nothing in it is used
// before these checks say it holds together: every column of the right kind and length, every
// count adding up to the rows it counts, every reference naming a string or SHA-256 there is,
// every number one the fold could have made. A table that fails is refused (the log is folded
// instead); one piece index of 4,294,967,294 made a sparse array that hung whoever read it.

/** A retention policy as RetentionSet says it. */
const RETENTION = RetentionSet.pick({ keepVersions: true, keepForMs: true }).strict();
/** Of a column group, the column holding its count of rows in the group named (a list of items one after another). */
const LISTS: readonly [from: ColumnGroup, count: string, of: ColumnGroup][] = [
  ["files", "versionCount", "versions"],
  ["versions", "pieceCount", "pieces"],
  ["pieces", "peerCount", "peers"],
  ["pieces", "storedCount", "stored"],
  ["content", "wantedCount", "wanted"],
  ["content", "holderCount", "holders"],
  ["content", "assignedCount", "assigned"],
  ["content", "copyingCount", "copying"],
  ["content", "failedCount", "failed"],
  ["dropsOwed", "hashCount", "drops"],
];
/** References into `strings`; those marked may be NONE. */
const STRING_REFS: readonly [ColumnGroup, string, absent?: "may be absent"][] = [
  ["workers", "idRef"], ["files", "idRef"], ["files", "pathRef"], ["versions", "uploadIdRef"], ["versions", "uploaderRef", "may be absent"],
  ["versions", "reasonRef", "may be absent"], ["peers", "workerRef"], ["stored", "workerRef"], ["holders", "workerRef"], ["assigned", "workerRef"],
  ["copying", "workerRef"], ["failed", "workerRef"], ["dropsOwed", "workerRef"],
];
/** References into `hashes`; those marked may be NONE. */
const HASH_REFS: readonly [ColumnGroup, string, absent?: "may be absent"][] = [
  ["versions", "sha256Hash", "may be absent"], ["pieces", "sha256Hash"], ["content", "sha256Hash"], ["drops", "sha256Hash"],
];
/** Each number column and the least and most it may hold (whole numbers; NaN only where said). */
const RANGES: readonly [ColumnGroup, string, least: number, most: number, nan?: "NaN: none"][] = [
  ["workers", "live", 0, 1], ["workers", "joinedAt", 0, Number.MAX_SAFE_INTEGER], ["workers", "assignedBytes", -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  ["files", "deleted", 0, 1], ["files", "lastVersion", 0, Number.MAX_SAFE_INTEGER],
  ["versions", "version", 1, Number.MAX_SAFE_INTEGER], ["versions", "size", 0, Number.MAX_SAFE_INTEGER], ["versions", "pieceSize", MIN_PIECE_SIZE, MAX_PIECE_SIZE],
  ["versions", "replicas", 1, MAX_REPLICAS], ["versions", "createdAt", 0, Number.MAX_SAFE_INTEGER], ["versions", "stream", 0, STREAMS.length - 1],
  ["versions", "status", 0, STATUSES.length - 1], ["versions", "committedAt", 0, Number.MAX_SAFE_INTEGER, "NaN: none"], ["versions", "completePieces", 0, MAX_PIECES],
  ["pieces", "index", 0, MAX_PIECES - 1], ["pieces", "size", 0, MAX_PIECE_SIZE], ["peers", "role", 0, ROLES.length - 1],
  ["content", "size", 0, MAX_PIECE_SIZE], ["wanted", "replicas", 1, MAX_REPLICAS], ["failed", "at", 0, Number.MAX_SAFE_INTEGER],
];

function column(t: Table, group: ColumnGroup, name: string): ArrayLike<number> {
  return (t[group] as unknown as Record<string, ArrayLike<number>>)[name]!;
}

/** That the decoded value has every column group, each column its typed array, all the columns of a group one length. */
function checkColumns(t: unknown): asserts t is Table {
  const table = t as Record<string, unknown>;
  const rejected = table.rejected as Table["rejected"] | undefined;
  if (!Number.isSafeInteger(rejected?.count) || rejected!.count < 0 || !Array.isArray(rejected!.recent) || rejected!.recent.length > RECENT_REJECTIONS_KEPT
    || !rejected!.recent.every((r) => Array.isArray(r) && Number.isSafeInteger(r[0]) && typeof r[1] === "string")) {
    throw new Error("snapshot table: its rejections are not a count and a list of them");
  }
  const retention = table.retention as Table["retention"] | undefined;
  if (typeof retention !== "object" || retention === null || !RETENTION.safeParse(retention).success) throw new Error("snapshot table: its retention policy is not one");
  if (!Array.isArray(table.strings) || !table.strings.every((part) => part instanceof Uint8Array)) throw new Error("snapshot table: its strings are not in parts");
  if (!(table.hashes instanceof Uint8Array) || table.hashes.length % HASH_BYTES !== 0) throw new Error("snapshot table: its SHA-256s are not 32 bytes each");
  for (const [group, columns] of Object.entries(COLUMNS)) {
    const found = table[group] as Record<string, unknown> | undefined;
    let rows: number | undefined;
    for (const [name, Typed] of Object.entries(columns)) {
      const values = found?.[name];
      if (!isColumnOf(Typed, values)) throw new Error(`snapshot table: column ${group}.${name} is not a ${Typed.name}${Typed === U8 ? "" : " nor narrower"}`);
      if ((rows ??= values.length) !== values.length) throw new Error(`snapshot table: column ${group}.${name} has ${values.length} rows, not ${rows}`);
    }
  }
}

/** That every count, reference and number of the columns holds together (see above). */
function checkRows(t: Table, strings: number, hashes: number): void {
  for (const [from, count, of] of LISTS) {
    const sum = spanOf(column(t, from, count)).sum;
    const rows = column(t, of, Object.keys(COLUMNS[of])[0]!).length;
    if (sum !== rows) throw new Error(`snapshot table: ${from}.${count} count ${sum} rows of ${of}, which has ${rows}`);
  }
  const refs = (list: typeof STRING_REFS, size: number, what: string) => {
    for (const [group, name, absent] of list) {
      const { most } = spanOf(column(t, group, name), absent ? NONE : undefined);
      if (most >= size) throw new Error(`snapshot table: ${group}.${name} names ${what} ${most} of ${size}`);
    }
  };
  refs(STRING_REFS, strings, "string");
  refs(HASH_REFS, hashes, "SHA-256");
  for (const [group, name, least, most, nan] of RANGES) {
    const span = spanOf(column(t, group, name), nan ? NaN : undefined);
    const wrong = span.notWhole ?? (span.least < least ? span.least : span.most > most ? span.most : undefined);
    if (wrong !== undefined) throw new Error(`snapshot table: ${group}.${name} holds ${wrong}, not a whole number from ${least} to ${most}`);
  }
  // A version's pieces come in the order of their indexes (the decoder makes its array from the last one's).
  const pieceCount = t.versions.pieceCount, index = t.pieces.index;
  let pi = 0;
  for (let vi = 0; vi < pieceCount.length; vi++) {
    for (let end = pi + pieceCount[vi]!, previous = -1; pi < end; pi++) {
      if (index[pi]! <= previous) throw new Error(`snapshot table: piece ${index[pi]} comes after piece ${previous} of its version`);
      previous = index[pi]!;
    }
  }
}

/**
 * The least, the most and the sum of a column's values, leaving out `skip` (a reference's
 * NONE, or NaN), and the first that is not a whole number if any: one indexed pass over the
 * typed array (iterating each column with for-of took 0.15-0.27 s at 313,712 files).
 */
function spanOf(values: ArrayLike<number>, skip?: number): { least: number; most: number; sum: number; notWhole?: number } {
  let least = Infinity, most = -Infinity, sum = 0;
  let notWhole: number | undefined;
  const wholeByType = !(values instanceof Float64Array);
  const skipsNaN = skip !== undefined && Number.isNaN(skip);
  for (let i = 0; i < values.length; i++) {
    const n = values[i]!;
    if (n === skip || (skipsNaN && n !== n)) continue;
    if (n < least) least = n;
    if (n > most) most = n;
    sum += n;
    if (!wholeByType && notWhole === undefined && !Number.isInteger(n)) notWhole = n;
  }
  return { least, most, sum, notWhole };
}

/** The value kept under `key` in `cache`, made by `make` the first time. */
function shared<T>(cache: Map<number, T>, key: number, make: () => T): T {
  let found = cache.get(key);
  if (found === undefined) cache.set(key, (found = make()));
  return found;
}

/** The State the columns hold, its indexes made again. */
function tableState(t: Table, strings: readonly string[], hashes: readonly string[]): State {
  const state = initialState();
  state.lastSeq = t.lastSeq;
  state.rejected = { count: t.rejected.count, recent: t.rejected.recent.map(([seq, reason]) => ({ seq, reason })) };
  state.retention = {
    ...(t.retention.keepVersions !== undefined ? { keepVersions: t.retention.keepVersions } : {}),
    ...(t.retention.keepForMs !== undefined ? { keepForMs: t.retention.keepForMs } : {}),
  };
  const str = (i: number) => (i === NONE ? undefined : strings[i]!);
  const hex = (i: number) => (i === NONE ? "" : hashes[i]!);

  const w = t.workers;
  for (let i = 0; i < w.idRef.length; i++) {
    const worker = newWorker(strings[w.idRef[i]!]!, w.joinedAt[i]!);
    worker.live = w.live[i] === 1;
    state.workers.set(worker.workerId, worker);
  }
  // Lists of one item are most of a table (a piece's one peer, its one copy, a content's one
  // holder): each distinct one is made once here and shared, as the fold shares them.
  const onePeer = new Map<number, PieceState["peers"]>();
  const oneStored = new Map<number, PieceState["stored"]>();
  const oneHolder = new Map<number, ContentState["holders"]>();
  const oneWanted = new Map<number, ContentState["wanted"]>();
  const { files: f, versions: v, pieces: p, peers, stored } = t;
  let vi = 0, pi = 0, peerAt = 0, storedAt = 0;
  for (let fi = 0; fi < f.idRef.length; fi++) {
    const file = newFile(strings[f.idRef[fi]!]!, strings[f.pathRef[fi]!]!);
    file.deleted = f.deleted[fi] === 1;
    file.lastVersion = f.lastVersion[fi]!;
    for (const end = vi + f.versionCount[fi]!; vi < end; vi++) {
      const version = newVersion(file, {
        version: v.version[vi]!,
        size: v.size[vi]!,
        sha256: hex(v.sha256Hash[vi]!),
        pieceSize: v.pieceSize[vi]!,
        replicas: v.replicas[vi]!,
        uploadId: strings[v.uploadIdRef[vi]!]!,
        uploader: str(v.uploaderRef[vi]!),
        createdAt: v.createdAt[vi]!,
        stream: STREAMS[v.stream[vi]!],
      });
      version.status = STATUSES[v.status[vi]!]!;
      if (!Number.isNaN(v.committedAt[vi]!)) version.committedAt = v.committedAt[vi]!;
      if (v.reasonRef[vi] !== NONE) version.reason = strings[v.reasonRef[vi]!]!;
      version.completePieces = v.completePieces[vi]!;
      // Planned as the fold plans them (the holes of a stream's plan come back where they were), then their copies.
      const first = pi, end = pi + v.pieceCount[vi]!;
      if (end > first) version.plan(Array.from({ length: end - first }, (_, i) => ({ index: p.index[first + i]!, size: p.size[first + i]!, sha256: hashes[p.sha256Hash[first + i]!]! })));
      for (; pi < end; pi++) {
        let piecePeers: PieceState["peers"] = NOBODY, pieceStored: PieceState["stored"] = NOBODY;
        if (p.peerCount[pi] === 1) {
          const worker = peers.workerRef[peerAt]!, role = peers.role[peerAt++]!;
          piecePeers = shared(onePeer, worker * ROLES.length + role, () => withPeer(NOBODY, strings[worker]!, ROLES[role]!));
        } else {
          for (const last = peerAt + p.peerCount[pi]!; peerAt < last; peerAt++) piecePeers = withPeer(piecePeers, strings[peers.workerRef[peerAt]!]!, ROLES[peers.role[peerAt]!]!);
        }
        if (p.storedCount[pi] === 1) {
          const worker = stored.workerRef[storedAt++]!;
          pieceStored = shared(oneStored, worker, () => withStored(NOBODY, strings[worker]!));
        } else {
          for (const last = storedAt + p.storedCount[pi]!; storedAt < last; storedAt++) pieceStored = withStored(pieceStored, strings[stored.workerRef[storedAt]!]!);
        }
        version.setCopies(p.index[pi]!, piecePeers, pieceStored);
      }
      file.versions.set(version.version, version);
    }
    state.files.set(file.fileId, file);
    indexFile(state, file);
  }

  const { content: c, wanted, holders, assigned, copying, failed } = t;
  let wantedAt = 0, holderAt = 0, assignedAt = 0, copyingAt = 0, failedAt = 0;
  for (let ci = 0; ci < c.sha256Hash.length; ci++) {
    const bytes = contentFor(state, hashes[c.sha256Hash[ci]!]!, c.size[ci]!);
    bytes.refs = c.refs[ci]!;
    // Each collection made, then all five set at once (setting them one by one shares a Copies each time).
    let { wanted: wantedBy, holders: heldBy, assigned: assignedTo, copying: copiedTo, failedAt: failedOn } = bytes;
    if (c.wantedCount[ci] === 1) {
      const replicas = wanted.replicas[wantedAt]!, pieces = wanted.pieces[wantedAt++]!;
      wantedBy = shared(oneWanted, pieces * (MAX_REPLICAS + 1) + replicas, () => withEntry(wantedBy, replicas, pieces));
    } else {
      for (const end = wantedAt + c.wantedCount[ci]!; wantedAt < end; wantedAt++) wantedBy = withEntry(wantedBy, wanted.replicas[wantedAt]!, wanted.pieces[wantedAt]!);
    }
    if (c.holderCount[ci] === 1) {
      const worker = holders.workerRef[holderAt++]!;
      heldBy = shared(oneHolder, worker, () => added(heldBy, strings[worker]!));
    } else {
      for (const end = holderAt + c.holderCount[ci]!; holderAt < end; holderAt++) heldBy = added(heldBy, strings[holders.workerRef[holderAt]!]!);
    }
    for (const end = assignedAt + c.assignedCount[ci]!; assignedAt < end; assignedAt++) assignedTo = withEntry(assignedTo, strings[assigned.workerRef[assignedAt]!]!, assigned.count[assignedAt]!);
    for (const end = copyingAt + c.copyingCount[ci]!; copyingAt < end; copyingAt++) copiedTo = added(copiedTo, strings[copying.workerRef[copyingAt]!]!);
    for (const end = failedAt + c.failedCount[ci]!; failedAt < end; failedAt++) failedOn = withEntry(failedOn, strings[failed.workerRef[failedAt]!]!, failed.at[failedAt]!);
    bytes.setCopies({ wanted: wantedBy, holders: heldBy, assigned: assignedTo, copying: copiedTo, failedAt: failedOn });
    indexContent(state, bytes);
  }
  // The load as the fold counted it (indexContent counted it again from what is placed).
  for (let i = 0; i < w.idRef.length; i++) state.workers.get(strings[w.idRef[i]!]!)!.assignedBytes = w.assignedBytes[i]!;

  const { dropsOwed, drops } = t;
  let dropAt = 0;
  for (let i = 0; i < dropsOwed.workerRef.length; i++) {
    const workerId = strings[dropsOwed.workerRef[i]!]!;
    for (const end = dropAt + dropsOwed.hashCount[i]!; dropAt < end; dropAt++) oweDrop(state, workerId, hashes[drops.sha256Hash[dropAt]!]!);
  }
  return state;
}
