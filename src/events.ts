// The event catalogue. Events are facts: past-tense names, one shape each, never reshaped
// (a new need gets a new event type). Every event is a CBOR map with `type` and `at`
// (ms since epoch). The schemas below are the catalogue: the README lists them with their
// fields, and every event read from the log is checked against them before it is folded.
import { z } from "zod";
import { isCanonicalPath } from "./paths.js";

/** Most entries one PiecesPlanned, PeersAssigned or PiecesDropped event carries, so an event stays far below max_payload. */
export const PIECES_PER_EVENT = 2000;
/** Most uploads one UploadsAssigned event carries. */
export const UPLOADS_PER_EVENT = 256;
export const MIN_PIECE_SIZE = 4 * 1024;
export const MAX_PIECE_SIZE = 256 * 1024 * 1024;
export const MAX_PIECES = 10_000;
export const MAX_REPLICAS = 16;
/** Longest error code and reason an event carries; longer ones are cut by the decider. */
export const MAX_CODE_LENGTH = 64;
export const MAX_REASON_LENGTH = 2000;

const SHA256_PATTERN = /^[0-9a-f]{64}$/;
const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

const count = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const version = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const sha256 = z.string().regex(SHA256_PATTERN, "must be 64 lowercase hex digits");
/** Worker, file and upload ids each become one subject token. */
const id = z.string().regex(ID_PATTERN, "must be 1-64 letters, digits, _ or -");
const path = z.string().refine(isCanonicalPath, "must be a canonical path");
const code = z.string().max(MAX_CODE_LENGTH);
const reason = z.string().max(MAX_REASON_LENGTH);
const at = count;

export function piecesOf(size: number, pieceSize: number): number {
  return size === 0 ? 0 : Math.ceil(size / pieceSize);
}

/** The SHA-256 of no bytes. */
const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/**
 * The SHA-256 of a whole content when its pieces' digests say it (none: the empty content's;
 * one: that piece's), otherwise undefined: a seal that says another cannot be of these bytes.
 */
export function wholeSha256Of(pieceSha256s: readonly string[]): string | undefined {
  if (pieceSha256s.length === 0) return EMPTY_SHA256;
  return pieceSha256s.length === 1 ? pieceSha256s[0] : undefined;
}

export const Role = z.enum(["major", "minor"]);
export type Role = z.infer<typeof Role>;

export const PlannedPiece = z.object({ index: count, size: count, sha256 });
export type PlannedPiece = z.infer<typeof PlannedPiece>;

export const AssignedPiece = z.object({
  piece: count,
  size: count,
  sha256,
  role: Role,
  /** Minors only: the piece's major, to pull the bytes from once it holds them (pipelined replication). */
  pullFrom: id.optional(),
});
export type AssignedPiece = z.infer<typeof AssignedPiece>;

/** A live worker announced itself with a heartbeat. */
export const WorkerJoined = z.object({ type: z.literal("WorkerJoined"), at, workerId: id });
export type WorkerJoined = z.infer<typeof WorkerJoined>;

/** A worker stopped sending heartbeats; it gets no new pieces until it joins again. */
export const WorkerLost = z.object({ type: z.literal("WorkerLost"), at, workerId: id, reason });
export type WorkerLost = z.infer<typeof WorkerLost>;

/**
 * A new version of a path was opened for upload. `size` and `sha256` are what the client
 * declared; a `streamed` version (stdin) declares neither: its size is 0 and it has no
 * `sha256` until FileSealed says both, its pieces planned as they come.
 */
export const FileCreated = z
  .object({
    type: z.literal("FileCreated"),
    at,
    fileId: id,
    path,
    version,
    size: count,
    sha256: sha256.optional(),
    pieceSize: z.number().int().min(MIN_PIECE_SIZE).max(MAX_PIECE_SIZE),
    replicas: z.number().int().min(1).max(MAX_REPLICAS),
    uploadId: id,
    /**
     * The NATS user that serves the bytes (the uploader's own, as its create said): workers pull
     * on `<prefix>.pull.<uploader>.<uploadId>.<piece>`. Absent in versions created before
     * uploads named it: then on `<prefix>.pull.<uploadId>.<piece>`.
     */
    uploader: id.optional(),
    streamed: z.literal(true).optional(),
    /**
     * The version's pieces, all of them in order, as a PiecesPlanned would say them: a declared
     * version of at most PIECES_PER_EVENT pieces carries its plan here, and no PiecesPlanned
     * follows (one event less for every small file). Absent in versions created before, in
     * larger ones (planned by PiecesPlanned events) and in streamed ones.
     */
    pieces: z.array(PlannedPiece).min(1).max(PIECES_PER_EVENT).optional(),
  })
  .refine(hasFewEnoughPieces, { message: `must have at most ${MAX_PIECES} pieces`, path: ["size"] })
  .refine(declaresUnlessStreamed, { message: "is declared unless the version is streamed, and only then", path: ["sha256"] })
  .refine(isEmptyUntilSealed, { message: "of a streamed version is 0 until it is sealed", path: ["size"] })
  .refine(isPlannedAsItComes, { message: "of a streamed version are planned as they come, not when it is created", path: ["pieces"] });
export type FileCreated = z.infer<typeof FileCreated>;

// FileCreated's rules across its fields, shared by its schema and its fast check (below).
type CreatedFields = { size: number; pieceSize: number; sha256?: string; streamed?: true; pieces?: unknown[] };
function hasFewEnoughPieces(e: CreatedFields): boolean {
  return piecesOf(e.size, e.pieceSize) <= MAX_PIECES;
}
function declaresUnlessStreamed(e: CreatedFields): boolean {
  return e.streamed ? e.sha256 === undefined : e.sha256 !== undefined;
}
function isEmptyUntilSealed(e: CreatedFields): boolean {
  return !e.streamed || e.size === 0;
}
function isPlannedAsItComes(e: CreatedFields): boolean {
  return !e.streamed || e.pieces === undefined;
}

/** Pieces `pieces[i].index` of a version, with their size and declared SHA-256. */
export const PiecesPlanned = z.object({
  type: z.literal("PiecesPlanned"),
  at,
  fileId: id,
  version,
  pieces: z.array(PlannedPiece).min(1).max(PIECES_PER_EVENT),
});
export type PiecesPlanned = z.infer<typeof PiecesPlanned>;

/** The `uploader` field of a version's events (FileCreated, PeersAssigned): the version's, or none (a version created before uploads named one). */
export function uploaderOf(v: { readonly uploader?: string }): { uploader?: string } {
  return v.uploader === undefined ? {} : { uploader: v.uploader };
}

/** Pieces of a version a worker must store; published on that worker's assignment subject. */
export const PeersAssigned = z.object({
  type: z.literal("PeersAssigned"),
  at,
  fileId: id,
  version,
  uploadId: id,
  /** The version's `uploader` (see FileCreated), where this worker pulls from the uploader; absent when the version has none. */
  uploader: id.optional(),
  workerId: id,
  pieces: z.array(AssignedPiece).min(1).max(PIECES_PER_EVENT),
});
export type PeersAssigned = z.infer<typeof PeersAssigned>;

/** One upload's share of an UploadsAssigned: what a PeersAssigned says, but the worker. */
export const UploadAssignment = z.object({
  fileId: id,
  version,
  uploadId: id,
  uploader: id.optional(),
  pieces: z.array(AssignedPiece).min(1).max(PIECES_PER_EVENT),
});
export type UploadAssignment = z.infer<typeof UploadAssignment>;

/**
 * Pieces of several versions a worker must store, decided together (small files created at
 * once): one event on the worker's assignment subject instead of one PeersAssigned per version.
 */
export const UploadsAssigned = z
  .object({
    type: z.literal("UploadsAssigned"),
    at,
    workerId: id,
    uploads: z.array(UploadAssignment).min(1).max(UPLOADS_PER_EVENT),
  })
  .refine(holdsFewEnoughPieces, { message: `must hold at most ${PIECES_PER_EVENT} pieces in all`, path: ["uploads"] });
export type UploadsAssigned = z.infer<typeof UploadsAssigned>;

function holdsFewEnoughPieces(e: { uploads: { pieces: unknown[] }[] }): boolean {
  return e.uploads.reduce((n, u) => n + u.pieces.length, 0) <= PIECES_PER_EVENT;
}

/**
 * A streamed version's content is complete: its size, its SHA-256 and how many pieces it has.
 * No piece is planned after it; the pieces planned must add up to `size`, every one full but
 * the last. It commits, as any version does, once every piece holds its replicas.
 */
export const FileSealed = z.object({ type: z.literal("FileSealed"), at, fileId: id, path, version, size: count, sha256, pieces: count.max(MAX_PIECES) });
export type FileSealed = z.infer<typeof FileSealed>;

/** A worker confirmed it holds a piece's bytes, checked against their SHA-256. */
export const PieceStored = z.object({ type: z.literal("PieceStored"), at, fileId: id, version, piece: count, workerId: id, sha256 });
export type PieceStored = z.infer<typeof PieceStored>;

/** Every piece of a version holds its replicas: the version is visible from now on. */
export const FileCommitted = z.object({ type: z.literal("FileCommitted"), at, fileId: id, path, version, size: count, sha256 });
export type FileCommitted = z.infer<typeof FileCommitted>;

/** A version was given up before it committed; it is never visible. */
export const UploadAbandoned = z.object({ type: z.literal("UploadAbandoned"), at, fileId: id, path, version, code, reason });
export type UploadAbandoned = z.infer<typeof UploadAbandoned>;

/** A whole file (every version), or with `version` only that one, was deleted. */
export const FileDeleted = z.object({ type: z.literal("FileDeleted"), at, fileId: id, path, version: version.optional() });
export type FileDeleted = z.infer<typeof FileDeleted>;

/** A worker may forget these pieces: no live version needs them there any more, or there are copies enough elsewhere. */
export const PiecesDropped = z.object({
  type: z.literal("PiecesDropped"),
  at,
  workerId: id,
  sha256s: z.array(sha256).min(1).max(PIECES_PER_EVENT),
});
export type PiecesDropped = z.infer<typeof PiecesDropped>;

/** Most sources an order names, tried in order. */
export const MAX_SOURCES = MAX_REPLICAS;

export const CopyOrder = z.object({ sha256, size: count, sources: z.array(id).min(1).max(MAX_SOURCES) });
export type CopyOrder = z.infer<typeof CopyOrder>;

/**
 * A worker must make copies of these bytes, pulling them from the sources (workers holding
 * checked copies), in order: re-replication after a loss, and repair. Published on that
 * worker's assignment subject.
 */
export const CopiesOrdered = z.object({
  type: z.literal("CopiesOrdered"),
  at,
  workerId: id,
  pieces: z.array(CopyOrder).min(1).max(PIECES_PER_EVENT),
});
export type CopiesOrdered = z.infer<typeof CopiesOrdered>;

/** A worker holds a copy of these bytes, checked against their SHA-256: an order done, or found in its store. */
export const ReplicaStored = z.object({ type: z.literal("ReplicaStored"), at, workerId: id, sha256 });
export type ReplicaStored = z.infer<typeof ReplicaStored>;

/** A copy order could not be done (no source answered with the right bytes, or the store failed). */
export const CopyFailed = z.object({ type: z.literal("CopyFailed"), at, workerId: id, sha256, code, reason });
export type CopyFailed = z.infer<typeof CopyFailed>;

/** Copies a worker no longer has: found bad (and dropped by the worker), or missing from its store. */
export const ReplicasLost = z.object({
  type: z.literal("ReplicasLost"),
  at,
  workerId: id,
  sha256s: z.array(sha256).min(1).max(PIECES_PER_EVENT),
  reason,
});
export type ReplicasLost = z.infer<typeof ReplicasLost>;

/**
 * The store's retention policy, set by the admin: which committed versions that are no longer
 * their path's newest are kept. A field left out sets no limit of that kind; neither (the
 * default) keeps every version until it is deleted.
 */
export const RetentionSet = z.object({
  type: z.literal("RetentionSet"),
  at,
  /** Keep each path's newest this many committed versions (the newest included), whatever their age. */
  keepVersions: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
  /** Keep a version this long (ms) after a newer one of its path was committed, whatever their number. */
  keepForMs: count.optional(),
});
export type RetentionSet = z.infer<typeof RetentionSet>;

/** The retention policy removed a committed version that was no longer its path's newest; `rule` says which limit. */
export const VersionExpired = z.object({ type: z.literal("VersionExpired"), at, fileId: id, path, version, rule: reason });
export type VersionExpired = z.infer<typeof VersionExpired>;

/** Every event type's schema, by its `type`. */
export const EVENT_SCHEMAS = {
  WorkerJoined,
  WorkerLost,
  FileCreated,
  PiecesPlanned,
  PeersAssigned,
  UploadsAssigned,
  PieceStored,
  FileSealed,
  FileCommitted,
  UploadAbandoned,
  FileDeleted,
  PiecesDropped,
  CopiesOrdered,
  ReplicaStored,
  CopyFailed,
  ReplicasLost,
  RetentionSet,
  VersionExpired,
} as const;

export type EventType = keyof typeof EVENT_SCHEMAS;
export type DfsEvent = z.infer<(typeof EVENT_SCHEMAS)[EventType]>;

export const EVENT_TYPES = Object.keys(EVENT_SCHEMAS) as readonly EventType[];

function isEventType(type: unknown): type is EventType {
  return typeof type === "string" && Object.hasOwn(EVENT_SCHEMAS, type);
}

/** A value checked against its event type's schema: the event, or why it is not one. Never throws. */
export function parseEvent(value: unknown): { event: DfsEvent } | { rejected: string } {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return { rejected: "event is not a map" };
  const type = (value as { type?: unknown }).type;
  if (!isEventType(type)) return { rejected: `unknown event type ${JSON.stringify(type)?.slice(0, 80)}` };
  if (WELL_FORMED[type](value)) return { event: value as DfsEvent };
  const result = EVENT_SCHEMAS[type].safeParse(value);
  if (result.success) return { event: result.data };
  const issue = result.error.issues[0];
  return { rejected: `${type}${issue?.path.length ? `.${issue.path.join(".")}` : ""}: ${issue?.message ?? "invalid"}` };
}

// The fast path of `parseEvent`. Folding a long log, checking each event with its schema cost
// more than everything else but reading it (zod copies every object it checks). These checks
// recognise an event exactly as the decider writes it: a plain map with only its type's fields,
// in the schema's order, each within the schema's rules. Such a value is what the schema would
// return, so it is the event as it is; anything else (a field too many or out of order, a
// bad value) goes through the schema, which returns the same event or says why there is none.
// test/events.test.ts holds the two to the same verdicts.

type Check = (value: unknown) => boolean;

const isSafeIntegerIn = (min: number, max: number): Check => (v) => Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max;
const isCount = isSafeIntegerIn(0, Number.MAX_SAFE_INTEGER);
const isVersion = isSafeIntegerIn(1, Number.MAX_SAFE_INTEGER);
const isSha256: Check = (v) => typeof v === "string" && SHA256_PATTERN.test(v);
const isId: Check = (v) => typeof v === "string" && ID_PATTERN.test(v);
const isPath: Check = (v) => typeof v === "string" && isCanonicalPath(v);
const isStringUpTo = (max: number): Check => (v) => typeof v === "string" && v.length <= max;
const isCode = isStringUpTo(MAX_CODE_LENGTH);
const isReason = isStringUpTo(MAX_REASON_LENGTH);
const is = (literal: unknown): Check => (v) => v === literal;
const isRole: Check = (v) => v === "major" || v === "minor";
const isArrayOf = (item: Check, min: number, max: number): Check => (v) => Array.isArray(v) && v.length >= min && v.length <= max && v.every(item);

/** A field that may be absent (a field present must pass its check: a present `undefined` goes to the schema). */
const optional = (check: Check) => ({ check, optional: true });

/** A plain map of exactly these fields, present in this order (optional ones may be absent), each passing its check, then the rules across them. */
function isExactly(fields: Record<string, Check | { check: Check; optional: boolean }>, ...rules: ((value: never) => boolean)[]): Check {
  const spec = Object.entries(fields).map(([key, field]) => (typeof field === "function" ? { key, check: field, optional: false } : { key, ...field }));
  return (value) => {
    if (typeof value !== "object" || value === null || Object.getPrototypeOf(value) !== Object.prototype) return false;
    const map = value as Record<string, unknown>;
    let next = 0;
    for (const key in map) {
      while (next < spec.length && spec[next]!.key !== key) if (!spec[next++]!.optional) return false;
      if (next === spec.length || !spec[next]!.check(map[key])) return false;
      next += 1;
    }
    while (next < spec.length) if (!spec[next++]!.optional) return false;
    return rules.every((rule) => rule(value as never));
  };
}

const isPlannedPiece = isExactly({ index: isCount, size: isCount, sha256: isSha256 });
const isAssignedPiece = isExactly({ piece: isCount, size: isCount, sha256: isSha256, role: isRole, pullFrom: optional(isId) });
const isUploadAssignment = isExactly({
  fileId: isId,
  version: isVersion,
  uploadId: isId,
  uploader: optional(isId),
  pieces: isArrayOf(isAssignedPiece, 1, PIECES_PER_EVENT),
});
const isCopyOrder = isExactly({ sha256: isSha256, size: isCount, sources: isArrayOf(isId, 1, MAX_SOURCES) });
const isSha256s = isArrayOf(isSha256, 1, PIECES_PER_EVENT);

/** Every event type's fast check: the same fields and rules as its schema above. */
const WELL_FORMED: Record<EventType, Check> = {
  WorkerJoined: isExactly({ type: is("WorkerJoined"), at: isCount, workerId: isId }),
  WorkerLost: isExactly({ type: is("WorkerLost"), at: isCount, workerId: isId, reason: isReason }),
  FileCreated: isExactly(
    {
      type: is("FileCreated"),
      at: isCount,
      fileId: isId,
      path: isPath,
      version: isVersion,
      size: isCount,
      sha256: optional(isSha256),
      pieceSize: isSafeIntegerIn(MIN_PIECE_SIZE, MAX_PIECE_SIZE),
      replicas: isSafeIntegerIn(1, MAX_REPLICAS),
      uploadId: isId,
      uploader: optional(isId),
      streamed: optional(is(true)),
      pieces: optional(isArrayOf(isPlannedPiece, 1, PIECES_PER_EVENT)),
    },
    hasFewEnoughPieces,
    declaresUnlessStreamed,
    isEmptyUntilSealed,
    isPlannedAsItComes,
  ),
  PiecesPlanned: isExactly({ type: is("PiecesPlanned"), at: isCount, fileId: isId, version: isVersion, pieces: isArrayOf(isPlannedPiece, 1, PIECES_PER_EVENT) }),
  PeersAssigned: isExactly({
    type: is("PeersAssigned"),
    at: isCount,
    fileId: isId,
    version: isVersion,
    uploadId: isId,
    uploader: optional(isId),
    workerId: isId,
    pieces: isArrayOf(isAssignedPiece, 1, PIECES_PER_EVENT),
  }),
  UploadsAssigned: isExactly({ type: is("UploadsAssigned"), at: isCount, workerId: isId, uploads: isArrayOf(isUploadAssignment, 1, UPLOADS_PER_EVENT) }, holdsFewEnoughPieces),
  PieceStored: isExactly({ type: is("PieceStored"), at: isCount, fileId: isId, version: isVersion, piece: isCount, workerId: isId, sha256: isSha256 }),
  FileSealed: isExactly({ type: is("FileSealed"), at: isCount, fileId: isId, path: isPath, version: isVersion, size: isCount, sha256: isSha256, pieces: isSafeIntegerIn(0, MAX_PIECES) }),
  FileCommitted: isExactly({ type: is("FileCommitted"), at: isCount, fileId: isId, path: isPath, version: isVersion, size: isCount, sha256: isSha256 }),
  UploadAbandoned: isExactly({ type: is("UploadAbandoned"), at: isCount, fileId: isId, path: isPath, version: isVersion, code: isCode, reason: isReason }),
  FileDeleted: isExactly({ type: is("FileDeleted"), at: isCount, fileId: isId, path: isPath, version: optional(isVersion) }),
  PiecesDropped: isExactly({ type: is("PiecesDropped"), at: isCount, workerId: isId, sha256s: isSha256s }),
  CopiesOrdered: isExactly({ type: is("CopiesOrdered"), at: isCount, workerId: isId, pieces: isArrayOf(isCopyOrder, 1, PIECES_PER_EVENT) }),
  ReplicaStored: isExactly({ type: is("ReplicaStored"), at: isCount, workerId: isId, sha256: isSha256 }),
  CopyFailed: isExactly({ type: is("CopyFailed"), at: isCount, workerId: isId, sha256: isSha256, code: isCode, reason: isReason }),
  ReplicasLost: isExactly({ type: is("ReplicasLost"), at: isCount, workerId: isId, sha256s: isSha256s, reason: isReason }),
  RetentionSet: isExactly({
    type: is("RetentionSet"),
    at: isCount,
    keepVersions: optional(isSafeIntegerIn(1, Number.MAX_SAFE_INTEGER)),
    keepForMs: optional(isCount),
  }),
  VersionExpired: isExactly({ type: is("VersionExpired"), at: isCount, fileId: isId, path: isPath, version: isVersion, rule: isReason }),
};
