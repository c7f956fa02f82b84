// The master's decisions: pure functions of (state, command) → events. Time and ids come in
// with the command; nothing here touches NATS, clocks or randomness. A decision may be taken
// again after a fenced append lost a race, so each one is idempotent against the state: it
// yields only what the log does not already say.
import { DfsError, ErrorCodes } from "./errors.js";
import {
  MAX_CODE_LENGTH,
  MAX_PIECES,
  MAX_PIECE_SIZE,
  MAX_REASON_LENGTH,
  MAX_REPLICAS,
  MIN_PIECE_SIZE,
  PIECES_PER_EVENT,
  piecesOf,
  uploaderOf,
  wholeSha256Of,
  type AssignedPiece,
  type DfsEvent,
  type FileCommitted,
  type FileCreated,
  type UploadAssignment,
  type UploadsAssigned,
  UPLOADS_PER_EVENT,
  type PeersAssigned,
  type PiecesPlanned,
  type PlannedPiece,
} from "./events.js";
import { reconcile, reconcileInventory } from "./heal.js";
import { sealProblem, streamedPiecesProblem } from "./checks.js";
import { normalisePath } from "./paths.js";
import { isVersionComplete, latestCommitted, type State, type VersionState } from "./state.js";

/**
 * What one uploader may have open at once (`dfs master --max-pending-uploads`,
 * `--max-open-streams`): the table holds every pending upload until it commits or is given up,
 * and a stream until it is sealed or falls silent, so without a bound one client could make
 * the master hold as many as it likes.
 */
export interface UploadCaps {
  /** Pending uploads (streamed or not) of one uploader. */
  readonly pending: number;
  /** Streamed uploads of one uploader not sealed yet. */
  readonly openStreams: number;
}

/** A `put -r` keeps 64 uploads in flight: many such puts by one user at once stay well within these. */
export const DEFAULT_UPLOAD_CAPS: UploadCaps = { pending: 1_024, openStreams: 64 };

export interface CreateVersion {
  readonly type: "CreateVersion";
  readonly at: number;
  /** The digest of the client's secret upload key (checked by the shell): it names the subjects the client serves the bytes on. */
  readonly uploadId: string;
  /**
   * The NATS user serving the bytes, as the client said: the master cannot tell who asked, but
   * a client that names another user only breaks its own upload (workers pull on that user's
   * subjects, which only that user may answer: the pulls go unanswered and the upload is given up).
   */
  readonly uploader?: string;
  /** A fresh id, used only if the path has no live file yet. */
  readonly newFileId: string;
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
  readonly pieceSize: number;
  readonly replicas: number;
  readonly pieces: readonly PlannedPiece[];
  /** The master's bounds per uploader (DEFAULT_UPLOAD_CAPS when not given). */
  readonly caps?: UploadCaps;
}

/**
 * Creates of small files that came together, decided in one pass: each version's FileCreated
 * (with its plan), then each worker's share of all of them in UploadsAssigned events instead of
 * one PeersAssigned per version and worker. Only new uploads of 1 to PIECES_PER_EVENT pieces,
 * each path and upload id once, are decided here; any other (a retry, an empty or large file,
 * a second create of a path, one refused) is left out, for the shell to decide alone, which
 * then says why it is refused.
 */
export interface CreateVersions {
  readonly type: "CreateVersions";
  readonly at: number;
  readonly creates: readonly CreateVersion[];
}

/** Open a streamed version (stdin): no size or hashes yet; its pieces come with ExtendUpload, its size with SealUpload. */
export interface CreateStream {
  readonly type: "CreateStream";
  readonly at: number;
  readonly uploadId: string;
  /** The NATS user serving the bytes (see CreateVersion). */
  readonly uploader?: string;
  readonly newFileId: string;
  readonly path: string;
  readonly pieceSize: number;
  readonly replicas: number;
  /** The master's bounds per uploader (DEFAULT_UPLOAD_CAPS when not given). */
  readonly caps?: UploadCaps;
}

/** The next pieces of a streamed version, in order, as the client has read and hashed them. */
export interface ExtendUpload {
  readonly type: "ExtendUpload";
  readonly at: number;
  readonly uploadId: string;
  readonly pieces: readonly PlannedPiece[];
}

/** A streamed version's content is complete: its size and SHA-256. */
export interface SealUpload {
  readonly type: "SealUpload";
  readonly at: number;
  readonly uploadId: string;
  readonly size: number;
  readonly sha256: string;
}

export interface ConfirmPiece {
  readonly type: "ConfirmPiece";
  readonly at: number;
  readonly workerId: string;
  readonly fileId: string;
  readonly version: number;
  readonly piece: number;
  readonly sha256: string;
  readonly ok: boolean;
  readonly code?: string;
  readonly message?: string;
}

export interface AbandonUpload {
  readonly type: "AbandonUpload";
  readonly at: number;
  readonly uploadId: string;
  readonly code: string;
  readonly reason: string;
}

export interface DeleteFile {
  readonly type: "DeleteFile";
  readonly at: number;
  readonly path: string;
  readonly version?: number;
}

export interface NoteHeartbeat {
  readonly type: "NoteHeartbeat";
  readonly at: number;
  readonly workerId: string;
}

export interface NoteSilence {
  readonly type: "NoteSilence";
  readonly at: number;
  readonly workerId: string;
  readonly silentMs: number;
}

/**
 * Settle what the table owes: drops of pieces no live version needs, uploads whose peers
 * were lost, committed pieces with too few or too many copies (see heal.ts).
 */
export interface Reconcile {
  readonly type: "Reconcile";
  readonly at: number;
  /** The unhealthy pieces this pass considers (the shell's HealCursor window); every one when not given. */
  readonly pieces?: readonly string[];
}

/** The admin sets the store's retention policy (see retention.ts). */
export interface SetRetention {
  readonly type: "SetRetention";
  readonly at: number;
  readonly keepVersions?: number;
  readonly keepForMs?: number;
}

/** A worker says how a copy order went. */
export interface ConfirmCopy {
  readonly type: "ConfirmCopy";
  readonly at: number;
  readonly workerId: string;
  readonly sha256: string;
  readonly ok: boolean;
  readonly code?: string;
  readonly message?: string;
}

/** A worker found its own copies bad (and dropped them). */
export interface ReportLost {
  readonly type: "ReportLost";
  readonly at: number;
  readonly workerId: string;
  readonly sha256s: readonly string[];
  readonly reason: string;
}

/** What a worker's store holds, as it answered `inventory`. */
export interface ReconcileInventory {
  readonly type: "ReconcileInventory";
  readonly at: number;
  readonly workerId: string;
  readonly held: ReadonlySet<string>;
  /**
   * The copies the log counted on it when the master asked (`countedOn`): only these can be
   * found missing. A copy confirmed while it answered, or since, is not in its account.
   */
  readonly countedWhenAsked: ReadonlySet<string>;
  /** Pieces this decision speaks of at most (default INVENTORY_PIECES_PER_DECISION). */
  readonly limit?: number;
}

export type Command =
  | CreateVersion
  | CreateVersions
  | CreateStream
  | ExtendUpload
  | SealUpload
  | ConfirmPiece
  | AbandonUpload
  | DeleteFile
  | NoteHeartbeat
  | NoteSilence
  | Reconcile
  | ConfirmCopy
  | ReportLost
  | ReconcileInventory
  | SetRetention;

const SHA256_HEX = /^[0-9a-f]{64}$/;

function bad(message: string): never {
  throw new DfsError(ErrorCodes.BAD_REQUEST, message);
}

/** Text cut to what an event may carry, so a long message never makes an event the fold rejects. */
function clip(text: string, max: number): string {
  return text.length > max ? text.slice(0, max - 1) + "…" : text;
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function checkCreate(cmd: CreateVersion): void {
  if (!Number.isSafeInteger(cmd.size) || cmd.size < 0) bad(`size must be a whole number of bytes >= 0, got ${cmd.size}`);
  checkLayout(cmd);
  if (!SHA256_HEX.test(cmd.sha256)) bad("sha256 must be 64 lowercase hex digits");
  const count = piecesOf(cmd.size, cmd.pieceSize);
  if (count > MAX_PIECES) bad(`${count} pieces is more than ${MAX_PIECES}: use a larger piece size`);
  if (cmd.pieces.length !== count) bad(`a file of ${cmd.size} bytes in pieces of ${cmd.pieceSize} has ${count} pieces, got ${cmd.pieces.length}`);
  cmd.pieces.forEach((p, i) => {
    const expected = i < count - 1 ? cmd.pieceSize : cmd.size - cmd.pieceSize * (count - 1);
    if (p.index !== i || p.size !== expected) bad(`piece ${i} must have index ${i} and size ${expected}`);
    if (!SHA256_HEX.test(p.sha256)) bad(`piece ${i} sha256 must be 64 lowercase hex digits`);
  });
  // No piece or one: the pieces say the whole content's SHA-256 (as a seal's is checked). Another
  // would commit a file whose every read fails its check.
  const known = wholeSha256Of(cmd.pieces.map((p) => p.sha256));
  if (known !== undefined && known !== cmd.sha256) {
    throw new DfsError(ErrorCodes.CHECKSUM_MISMATCH, `a file of ${count} piece${count === 1 ? "" : "s"} has the SHA-256 ${count === 1 ? "of its piece" : "of no bytes"}, ${known}, not ${cmd.sha256}`);
  }
}

/** Piece size and replicas, the same for a declared and a streamed version. */
function checkLayout(cmd: { pieceSize: number; replicas: number }): void {
  if (!Number.isSafeInteger(cmd.pieceSize) || cmd.pieceSize < MIN_PIECE_SIZE || cmd.pieceSize > MAX_PIECE_SIZE) {
    bad(`piece size must be between ${MIN_PIECE_SIZE} and ${MAX_PIECE_SIZE} bytes, got ${cmd.pieceSize}`);
  }
  if (!Number.isSafeInteger(cmd.replicas) || cmd.replicas < 1 || cmd.replicas > MAX_REPLICAS) {
    bad(`replicas must be between 1 and ${MAX_REPLICAS}, got ${cmd.replicas}`);
  }
}

/**
 * Choose peers for pieces: for each piece the `replicas` live workers that hold its bytes
 * already, then the least-loaded (load = bytes already placed, counting this version as it
 * goes), first one major. Ties go to the smaller worker id, so the choice is a pure function
 * of the state.
 */
function placePieces(
  state: State,
  pieces: readonly { index: number; size: number; sha256: string; exclude: readonly string[]; missing: number; major?: string }[],
  replicas: number,
  load: Map<string, number> = liveLoad(state),
): Map<string, AssignedPiece[]> {
  const byWorker = new Map<string, AssignedPiece[]>();
  if (pieces.length === 0) return byWorker;
  if (load.size < replicas) {
    throw new DfsError(ErrorCodes.NOT_ENOUGH_WORKERS, `${replicas} replica${replicas === 1 ? "" : "s"} asked for, but ${load.size} worker${load.size === 1 ? " is" : "s are"} live`);
  }
  for (const piece of pieces) {
    // Workers that hold these bytes already come first (they store them without a pull, and
    // no copy beyond the wanted ones is made only to be dropped), then the least loaded.
    const holders = state.content.get(piece.sha256)?.holders;
    const holds = (id: string) => (holders?.has(id) ? 1 : 0);
    const chosen = [...load.entries()]
      .filter(([id]) => !piece.exclude.includes(id))
      .sort(([a, la], [b, lb]) => holds(b) - holds(a) || la - lb || (a < b ? -1 : 1))
      .slice(0, piece.missing);
    if (chosen.length < piece.missing) {
      throw new DfsError(ErrorCodes.NOT_ENOUGH_WORKERS, `piece ${piece.index} needs ${piece.missing} more workers than it has`);
    }
    // Minors pull from the major (pipelined replication), which spares the uploader's uplink.
    const major = piece.major ?? chosen[0]![0];
    for (const [workerId] of chosen) {
      load.set(workerId, load.get(workerId)! + piece.size);
      let list = byWorker.get(workerId);
      if (!list) byWorker.set(workerId, (list = []));
      const entry = { piece: piece.index, size: piece.size, sha256: piece.sha256 };
      list.push(workerId === major ? { ...entry, role: "major" } : { ...entry, role: "minor", pullFrom: major });
    }
  }
  return byWorker;
}

/** Each live worker's placement load (bytes placed on it), which placePieces adds to as it places. */
function liveLoad(state: State): Map<string, number> {
  return new Map([...state.workers.values()].filter((w) => w.live).map((w) => [w.workerId, w.assignedBytes]));
}

function commitEvent(v: VersionState, at: number): FileCommitted {
  return { type: "FileCommitted", at, fileId: v.fileId, path: v.path, version: v.version, size: v.size, sha256: v.sha256 };
}

/** What a version still lacks in the log (plan, peers, or the commit of an empty file). */
function completeVersion(state: State, v: VersionState, pieces: readonly PlannedPiece[], at: number): DfsEvent[] {
  const events: DfsEvent[] = [];
  const unplanned = pieces.filter((p) => !v.pieces[p.index]);
  for (const group of chunks(unplanned, PIECES_PER_EVENT)) {
    events.push({ type: "PiecesPlanned", at, fileId: v.fileId, version: v.version, pieces: group } satisfies PiecesPlanned);
  }
  const needPeers = pieces
    .map((p) => {
      const peers = v.pieces[p.index]?.peers ?? [];
      return { ...p, exclude: peers.map((x) => x.workerId), missing: v.replicas - peers.length, major: peers.find((x) => x.role === "major")?.workerId };
    })
    .filter((p) => p.missing > 0);
  const placed = placePieces(state, needPeers, v.replicas);
  for (const [workerId, assigned] of [...placed.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
    for (const group of chunks(assigned, PIECES_PER_EVENT)) {
      events.push({
        type: "PeersAssigned",
        at,
        fileId: v.fileId,
        version: v.version,
        uploadId: v.uploadId,
        ...uploaderOf(v),
        workerId,
        pieces: group,
      } satisfies PeersAssigned);
    }
  }
  if (v.size === 0 && v.status === "pending" && v.stream === undefined) events.push(commitEvent(v, at));
  return events;
}

/** The file a new version of `path` belongs to, and that version's number. */
function nextVersion(state: State, path: string, newFileId: string): { fileId: string; version: number } {
  const fileId = state.paths.get(path) ?? newFileId;
  if (!state.paths.has(path) && state.files.has(fileId)) bad(`file id ${fileId} is already taken`);
  return { fileId, version: (state.files.get(fileId)?.lastVersion ?? 0) + 1 };
}

/** The version an upload id names. */
function uploadVersion(state: State, uploadId: string): VersionState {
  const v = state.uploads.get(uploadId);
  if (!v) throw new DfsError(ErrorCodes.NOT_FOUND, `no upload ${uploadId}`);
  return v;
}

/** A streamed upload that is still open to pieces: otherwise why not, as an error. */
function openStream(state: State, uploadId: string): VersionState {
  const v = uploadVersion(state, uploadId);
  if (v.stream === undefined) bad(`upload ${uploadId} is not streamed: its pieces were declared when it was created`);
  if (v.status !== "pending") throw new DfsError(ErrorCodes.UPLOAD_ABANDONED, `upload of ${v.path} is ${v.status}${v.reason ? `: ${v.reason}` : ""}`);
  return v;
}

/**
 * A new upload of `uploader` (a stream when `streamed`) must stay within its caps: counted from
 * the table's pending uploads, so every master counts the same.
 */
function checkCaps(state: State, uploader: string | undefined, streamed: boolean, caps: UploadCaps = DEFAULT_UPLOAD_CAPS): void {
  let pending = 0;
  let open = 0;
  for (const uploadId of state.pendingUploads) {
    const v = state.uploads.get(uploadId)!;
    if (v.uploader !== uploader) continue;
    pending += 1;
    if (v.stream === "open") open += 1;
  }
  const who = uploader === undefined ? "an uploader with no name" : `uploader ${uploader}`;
  if (pending >= caps.pending) {
    throw new DfsError(ErrorCodes.TOO_MANY_UPLOADS, `${who} has ${pending} uploads pending, the most the master allows (--max-pending-uploads): wait for some to finish`);
  }
  if (streamed && open >= caps.openStreams) {
    throw new DfsError(ErrorCodes.TOO_MANY_UPLOADS, `${who} has ${open} streams open, the most the master allows (--max-open-streams): wait for some to end`);
  }
}

function createStream(state: State, cmd: CreateStream): DfsEvent[] {
  const path = normalisePath(cmd.path);
  checkLayout(cmd);
  if (state.uploads.has(cmd.uploadId)) {
    const v = uploadVersion(state, cmd.uploadId);
    if (v.path !== path || v.stream === undefined || v.uploader !== cmd.uploader) bad(`upload id ${cmd.uploadId} is already used by another upload`);
    return [];
  }
  checkCaps(state, cmd.uploader, true, cmd.caps);
  const { fileId, version } = nextVersion(state, path, cmd.newFileId);
  return [
    {
      type: "FileCreated",
      at: cmd.at,
      fileId,
      path,
      version,
      size: 0,
      pieceSize: cmd.pieceSize,
      replicas: cmd.replicas,
      uploadId: cmd.uploadId,
      ...uploaderOf(cmd),
      streamed: true,
    },
  ];
}

/**
 * Plan and place a streamed version's next pieces. Pieces already planned (a request asked
 * again) must be as they were; the new ones follow them in order, each full but the last.
 */
function extendUpload(state: State, cmd: ExtendUpload): DfsEvent[] {
  const v = openStream(state, cmd.uploadId);
  for (const p of cmd.pieces) {
    if (!SHA256_HEX.test(p.sha256)) bad(`piece ${p.index} sha256 must be 64 lowercase hex digits`);
    const planned = v.pieces[p.index];
    if (planned && (planned.size !== p.size || planned.sha256 !== p.sha256)) bad(`piece ${p.index} is already planned with other bytes`);
  }
  // Pieces asked again (a retry) are as planned; the new ones must follow them.
  const problem = streamedPiecesProblem(v, cmd.pieces.filter((p) => !v.pieces[p.index]));
  if (problem) bad(problem);
  return completeVersion(state, v, cmd.pieces, cmd.at);
}

function sealUpload(state: State, cmd: SealUpload): DfsEvent[] {
  const v = openStream(state, cmd.uploadId);
  if (!Number.isSafeInteger(cmd.size) || cmd.size < 0) bad(`size must be a whole number of bytes >= 0, got ${cmd.size}`);
  if (!SHA256_HEX.test(cmd.sha256)) bad("sha256 must be 64 lowercase hex digits");
  if (v.stream === "sealed") {
    if (v.size !== cmd.size || v.sha256 !== cmd.sha256) bad(`upload of ${v.path} is already sealed with another size or sha256`);
    return isVersionComplete(v) ? [commitEvent(v, cmd.at)] : [];
  }
  const problem = sealProblem(v, cmd.size, cmd.sha256);
  if (problem) throw new DfsError(problem.checksum ? ErrorCodes.CHECKSUM_MISMATCH : ErrorCodes.BAD_REQUEST, problem.reason);
  const count = piecesOf(cmd.size, v.pieceSize);
  const sealed = { fileId: v.fileId, path: v.path, version: v.version, size: cmd.size, sha256: cmd.sha256 };
  const events: DfsEvent[] = [{ type: "FileSealed", at: cmd.at, ...sealed, pieces: count }];
  // Every piece may be stored already (and a 0-byte stream has none): then it commits now.
  if (v.completePieces === count) events.push({ type: "FileCommitted", at: cmd.at, ...sealed });
  return events;
}

/** Whether `cmd` asks for the version `v` its upload id already names (a retry), not for another one. */
export function isSameUpload(v: VersionState, cmd: CreateVersion): boolean {
  return (
    v.path === normalisePath(cmd.path) &&
    v.size === cmd.size &&
    v.sha256 === cmd.sha256 &&
    v.pieceSize === cmd.pieceSize &&
    v.replicas === cmd.replicas &&
    v.uploader === cmd.uploader &&
    cmd.pieces.every((p) => v.pieces[p.index] === undefined || v.pieces[p.index]!.sha256 === p.sha256)
  );
}

function createVersion(state: State, cmd: CreateVersion): DfsEvent[] {
  const path = normalisePath(cmd.path);
  checkCreate(cmd);
  if (state.uploads.has(cmd.uploadId)) {
    const v = uploadVersion(state, cmd.uploadId);
    // Anyone who knows the id, size and sha256 may ask: other pieces would be placed with bytes the plan does not have.
    if (!isSameUpload(v, cmd)) bad(`upload id ${cmd.uploadId} is already used by another upload`);
    return v.status === "pending" ? completeVersion(state, v, cmd.pieces, cmd.at) : [];
  }
  checkCaps(state, cmd.uploader, false, cmd.caps);
  const { fileId, version } = nextVersion(state, path, cmd.newFileId);
  const created = {
    type: "FileCreated",
    at: cmd.at,
    fileId,
    path,
    version,
    size: cmd.size,
    sha256: cmd.sha256,
    pieceSize: cmd.pieceSize,
    replicas: cmd.replicas,
    uploadId: cmd.uploadId,
    ...uploaderOf(cmd),
    // A plan that fits in one event comes with the version: one event less for every small file.
    ...(cmd.pieces.length > 0 && cmd.pieces.length <= PIECES_PER_EVENT ? { pieces: [...cmd.pieces] } : {}),
  } as const;
  // Decide the rest against a version as FileCreated will leave it, without touching the state.
  const planned = (created.pieces ?? []).map((p) => ({ ...p, peers: [], stored: [] }));
  const draft: VersionState = { ...created, createdAt: cmd.at, status: "pending", pieces: planned, completePieces: 0 };
  return [created, ...completeVersion(state, draft, cmd.pieces, cmd.at)];
}

function createVersions(state: State, cmd: CreateVersions): DfsEvent[] {
  const created: FileCreated[] = [];
  const shares = new Map<string, UploadAssignment[]>();
  const load = liveLoad(state);
  const taken = { paths: new Set<string>(), uploads: new Set<string>(), fileIds: new Set<string>() };
  // Each uploader's pending uploads, the batch's own counted as they are kept (see checkCaps).
  const pendingOf = new Map<string | undefined, number>();
  for (const uploadId of state.pendingUploads) {
    const uploader = state.uploads.get(uploadId)!.uploader;
    pendingOf.set(uploader, (pendingOf.get(uploader) ?? 0) + 1);
  }
  for (const one of cmd.creates) {
    let path: string;
    let placed: Map<string, AssignedPiece[]>;
    let next: { fileId: string; version: number };
    try {
      path = normalisePath(one.path);
      checkCreate(one);
      if (one.pieces.length === 0 || one.pieces.length > PIECES_PER_EVENT || state.uploads.has(one.uploadId)) continue;
      if (taken.paths.has(path) || taken.uploads.has(one.uploadId) || taken.fileIds.has(one.newFileId)) continue;
      if ((pendingOf.get(one.uploader) ?? 0) >= (one.caps ?? DEFAULT_UPLOAD_CAPS).pending) continue; // alone: TOO_MANY_UPLOADS
      next = nextVersion(state, path, one.newFileId);
      // Placed on a copy of the load, which counts the versions before it only once it is kept.
      const trial = new Map(load);
      placed = placePieces(state, one.pieces.map((p) => ({ ...p, exclude: [], missing: one.replicas })), one.replicas, trial);
      for (const [workerId, bytes] of trial) load.set(workerId, bytes);
    } catch {
      continue; // decided alone, it says why
    }
    taken.paths.add(path);
    taken.uploads.add(one.uploadId);
    taken.fileIds.add(next.fileId);
    pendingOf.set(one.uploader, (pendingOf.get(one.uploader) ?? 0) + 1);
    const { fileId, version } = next;
    created.push({
      type: "FileCreated",
      at: cmd.at,
      fileId,
      path,
      version,
      size: one.size,
      sha256: one.sha256,
      pieceSize: one.pieceSize,
      replicas: one.replicas,
      uploadId: one.uploadId,
      ...uploaderOf(one),
      pieces: [...one.pieces],
    });
    for (const [workerId, pieces] of placed) {
      let list = shares.get(workerId);
      if (!list) shares.set(workerId, (list = []));
      list.push({ fileId, version, uploadId: one.uploadId, ...uploaderOf(one), pieces });
    }
  }
  const assigned: UploadsAssigned[] = [];
  for (const [workerId, uploads] of [...shares.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
    let group: UploadAssignment[] = [];
    let pieces = 0;
    for (const upload of uploads) {
      if (group.length === UPLOADS_PER_EVENT || pieces + upload.pieces.length > PIECES_PER_EVENT) {
        assigned.push({ type: "UploadsAssigned", at: cmd.at, workerId, uploads: group });
        group = [];
        pieces = 0;
      }
      group.push(upload);
      pieces += upload.pieces.length;
    }
    assigned.push({ type: "UploadsAssigned", at: cmd.at, workerId, uploads: group });
  }
  return [...created, ...assigned];
}

function confirmPiece(state: State, cmd: ConfirmPiece): DfsEvent[] {
  const v = state.files.get(cmd.fileId)?.versions.get(cmd.version);
  // Late news about a version that is gone or done changes nothing.
  if (!v || v.status !== "pending") return [];
  const piece = v.pieces[cmd.piece];
  if (!piece || !piece.peers.some((p) => p.workerId === cmd.workerId)) return [];
  if (!cmd.ok) {
    return [
      {
        type: "UploadAbandoned",
        at: cmd.at,
        fileId: v.fileId,
        path: v.path,
        version: v.version,
        code: clip(cmd.code ?? ErrorCodes.INTERNAL, MAX_CODE_LENGTH),
        reason: clip(`worker ${cmd.workerId}, piece ${cmd.piece}: ${cmd.message ?? "store failed"}`, MAX_REASON_LENGTH),
      },
    ];
  }
  if (cmd.sha256 !== piece.sha256) return [];
  const events: DfsEvent[] = [];
  let complete = v.completePieces;
  if (!piece.stored.includes(cmd.workerId)) {
    events.push({ type: "PieceStored", at: cmd.at, fileId: v.fileId, version: v.version, piece: cmd.piece, workerId: cmd.workerId, sha256: cmd.sha256 });
    if (piece.stored.length + 1 === v.replicas) complete += 1;
  }
  // An open stream commits only once sealed (see sealUpload).
  if (v.stream !== "open" && complete === piecesOf(v.size, v.pieceSize)) events.push(commitEvent(v, cmd.at));
  return events;
}

function abandonUpload(state: State, cmd: AbandonUpload): DfsEvent[] {
  const v = uploadVersion(state, cmd.uploadId);
  if (v.status !== "pending") return [];
  const code = clip(cmd.code, MAX_CODE_LENGTH);
  return [{ type: "UploadAbandoned", at: cmd.at, fileId: v.fileId, path: v.path, version: v.version, code, reason: clip(cmd.reason, MAX_REASON_LENGTH) }];
}

function deleteFile(state: State, cmd: DeleteFile): DfsEvent[] {
  const path = normalisePath(cmd.path);
  const fileId = state.paths.get(path);
  const file = fileId === undefined ? undefined : state.files.get(fileId);
  if (!file || !latestCommitted(file)) throw new DfsError(ErrorCodes.NOT_FOUND, `no file ${path}`);
  if (cmd.version === undefined) return [{ type: "FileDeleted", at: cmd.at, fileId: file.fileId, path }];
  if (!Number.isSafeInteger(cmd.version) || cmd.version < 1) bad(`version must be a whole number >= 1, got ${cmd.version}`);
  if (file.versions.get(cmd.version)?.status !== "committed") throw new DfsError(ErrorCodes.NOT_FOUND, `no version ${cmd.version} of ${path}`);
  return [{ type: "FileDeleted", at: cmd.at, fileId: file.fileId, path, version: cmd.version }];
}

function confirmCopy(state: State, cmd: ConfirmCopy): DfsEvent[] {
  const c = state.content.get(cmd.sha256);
  // Late news about bytes nothing needs any more changes nothing (their drop is owed).
  if (!c || !state.workers.has(cmd.workerId)) return [];
  if (cmd.ok) return c.holders.has(cmd.workerId) ? [] : [{ type: "ReplicaStored", at: cmd.at, workerId: cmd.workerId, sha256: cmd.sha256 }];
  if (!c.copying.has(cmd.workerId)) return [];
  const code = clip(cmd.code ?? ErrorCodes.INTERNAL, MAX_CODE_LENGTH);
  return [{ type: "CopyFailed", at: cmd.at, workerId: cmd.workerId, sha256: cmd.sha256, code, reason: clip(cmd.message ?? "copy failed", MAX_REASON_LENGTH) }];
}

function reportLost(state: State, cmd: ReportLost): DfsEvent[] {
  const counted = [...new Set(cmd.sha256s)].filter((sha) => state.content.get(sha)?.holders.has(cmd.workerId)).sort();
  return chunks(counted, PIECES_PER_EVENT).map((sha256s) => ({
    type: "ReplicasLost" as const,
    at: cmd.at,
    workerId: cmd.workerId,
    sha256s,
    reason: clip(cmd.reason, MAX_REASON_LENGTH),
  }));
}

export function decide(state: State, cmd: Command): DfsEvent[] {
  switch (cmd.type) {
    case "CreateVersion":
      return createVersion(state, cmd);
    case "CreateVersions":
      return createVersions(state, cmd);
    case "CreateStream":
      return createStream(state, cmd);
    case "ExtendUpload":
      return extendUpload(state, cmd);
    case "SealUpload":
      return sealUpload(state, cmd);
    case "ConfirmPiece":
      return confirmPiece(state, cmd);
    case "AbandonUpload":
      return abandonUpload(state, cmd);
    case "DeleteFile":
      return deleteFile(state, cmd);
    case "NoteHeartbeat":
      return state.workers.get(cmd.workerId)?.live ? [] : [{ type: "WorkerJoined", at: cmd.at, workerId: cmd.workerId }];
    case "NoteSilence":
      return state.workers.get(cmd.workerId)?.live
        ? [{ type: "WorkerLost", at: cmd.at, workerId: cmd.workerId, reason: `no heartbeat for ${cmd.silentMs} ms` }]
        : [];
    case "Reconcile":
      return reconcile(state, cmd.at, cmd.pieces);
    case "ConfirmCopy":
      return confirmCopy(state, cmd);
    case "ReportLost":
      return reportLost(state, cmd);
    case "ReconcileInventory":
      return state.workers.has(cmd.workerId) ? reconcileInventory(state, cmd.workerId, cmd.held, cmd.countedWhenAsked, cmd.at, cmd.limit) : [];
    case "SetRetention": {
      const same = state.retention.keepVersions === cmd.keepVersions && state.retention.keepForMs === cmd.keepForMs;
      if (same) return [];
      return [
        {
          type: "RetentionSet",
          at: cmd.at,
          ...(cmd.keepVersions !== undefined ? { keepVersions: cmd.keepVersions } : {}),
          ...(cmd.keepForMs !== undefined ? { keepForMs: cmd.keepForMs } : {}),
        },
      ];
    }
  }
}
