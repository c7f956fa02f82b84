// The master's table, and nothing else: a fold of the event log. `evolve` is the only code
// that changes it, and it serves start-up replay, live tailing and `dfs replay` alike.
// For speed on long logs it updates the state in place; decisions only read it.
// The fold is total: an event that contradicts the table is not applied but counted and
// kept among the recent rejections, so every reader of the log folds it the same way.
import { createHash } from "node:crypto";
import { piecesOf, type DfsEvent, type Role } from "./events.js";

export type VersionStatus = "pending" | "committed" | "abandoned" | "deleted";

export interface Peer {
  readonly workerId: string;
  readonly role: Role;
}

export interface PieceState {
  readonly index: number;
  readonly size: number;
  readonly sha256: string;
  peers: Peer[];
  /** Workers that confirmed the bytes, in confirmation order. */
  stored: string[];
}

export interface VersionState {
  readonly fileId: string;
  readonly path: string;
  readonly version: number;
  readonly size: number;
  readonly sha256: string;
  readonly pieceSize: number;
  readonly replicas: number;
  readonly uploadId: string;
  readonly createdAt: number;
  status: VersionStatus;
  committedAt?: number;
  reason?: string;
  /** Sparse until PiecesPlanned covers every index. */
  pieces: PieceState[];
  /** Pieces that hold `replicas` confirmed copies. */
  completePieces: number;
}

export interface FileState {
  readonly fileId: string;
  readonly path: string;
  versions: Map<number, VersionState>;
  deleted: boolean;
  lastVersion: number;
}

export interface WorkerState {
  readonly workerId: string;
  live: boolean;
  joinedAt: number;
  /** Bytes of pending and committed versions placed on this worker: the placement load. */
  assignedBytes: number;
}

/** An event the fold refused, and why. */
export interface Rejection {
  readonly seq: number;
  readonly reason: string;
}

/** How many of the latest rejections the state keeps (all of them are counted). */
export const RECENT_REJECTIONS_KEPT = 100;
const MAX_REJECTION_REASON = 300;

export interface State {
  /** Stream sequence of the last event folded in, applied or rejected (0: none). */
  lastSeq: number;
  /** Messages on event subjects that were not applied: malformed, forged or contradicting the table. */
  rejected: { count: number; recent: Rejection[] };
  workers: Map<string, WorkerState>;
  files: Map<string, FileState>;
  /** Path of every file not deleted → its fileId. */
  paths: Map<string, string>;
  uploads: Map<string, { fileId: string; version: number }>;
  /** workerId → sha256 → how many live piece assignments need those bytes there. */
  pieceRefs: Map<string, Map<string, number>>;
  /** workerId → pieces no longer needed there and not yet dropped. */
  dropsOwed: Map<string, Set<string>>;
}

export function initialState(): State {
  return {
    lastSeq: 0,
    rejected: { count: 0, recent: [] },
    workers: new Map(),
    files: new Map(),
    paths: new Map(),
    uploads: new Map(),
    pieceRefs: new Map(),
    dropsOwed: new Map(),
  };
}

export function versionOf(state: State, fileId: string, version: number): VersionState | undefined {
  return state.files.get(fileId)?.versions.get(version);
}

/** The newest committed version of a live file. */
export function latestCommitted(file: FileState): VersionState | undefined {
  let latest: VersionState | undefined;
  for (const v of file.versions.values()) {
    if (v.status === "committed" && (!latest || v.version > latest.version)) latest = v;
  }
  return latest;
}

export function isVersionComplete(v: VersionState): boolean {
  return v.status === "pending" && v.completePieces === piecesOf(v.size, v.pieceSize) && v.pieces.length === piecesOf(v.size, v.pieceSize);
}

function addRef(state: State, workerId: string, sha256: string, bytes: number): void {
  let refs = state.pieceRefs.get(workerId);
  if (!refs) state.pieceRefs.set(workerId, (refs = new Map()));
  refs.set(sha256, (refs.get(sha256) ?? 0) + 1);
  state.dropsOwed.get(workerId)?.delete(sha256);
  const worker = state.workers.get(workerId);
  if (worker) worker.assignedBytes += bytes;
}

function releaseVersion(state: State, v: VersionState): void {
  for (const piece of v.pieces) {
    if (!piece) continue;
    for (const peer of piece.peers) {
      const refs = state.pieceRefs.get(peer.workerId);
      const count = (refs?.get(piece.sha256) ?? 0) - 1;
      const worker = state.workers.get(peer.workerId);
      if (worker) worker.assignedBytes -= piece.size;
      if (!refs) continue;
      if (count > 0) {
        refs.set(piece.sha256, count);
        continue;
      }
      refs.delete(piece.sha256);
      let owed = state.dropsOwed.get(peer.workerId);
      if (!owed) state.dropsOwed.set(peer.workerId, (owed = new Set()));
      owed.add(piece.sha256);
    }
  }
}

function shortSha(sha256: string): string {
  return `${sha256.slice(0, 12)}…`;
}

/** The version, if it is in `status`; else why not. */
function versionIn(state: State, fileId: string, version: number, status: VersionStatus): VersionState | string {
  const file = state.files.get(fileId);
  if (!file) return `no file ${fileId}`;
  const v = file.versions.get(version);
  if (!v) return `file ${fileId} has no version ${version}`;
  return v.status === status ? v : `version ${version} of file ${fileId} is ${v.status}, not ${status}`;
}

function expectedPieceSize(v: VersionState, index: number): number {
  const count = piecesOf(v.size, v.pieceSize);
  return index < count - 1 ? v.pieceSize : v.size - v.pieceSize * (count - 1);
}

function createdContradiction(state: State, event: Extract<DfsEvent, { type: "FileCreated" }>): string | undefined {
  if (state.uploads.has(event.uploadId)) return `upload id ${event.uploadId} is already used`;
  const file = state.files.get(event.fileId);
  if (!file) {
    const owner = state.paths.get(event.path);
    if (owner !== undefined) return `path ${event.path} belongs to file ${owner}`;
    return event.version === 1 ? undefined : `the first version of file ${event.fileId} is 1, not ${event.version}`;
  }
  if (file.deleted) return `file ${event.fileId} is deleted`;
  if (file.path !== event.path) return `file ${event.fileId} is ${file.path}, not ${event.path}`;
  const next = file.lastVersion + 1;
  return event.version === next ? undefined : `the next version of file ${event.fileId} is ${next}, not ${event.version}`;
}

function plannedContradiction(state: State, event: Extract<DfsEvent, { type: "PiecesPlanned" }>): string | undefined {
  const v = versionIn(state, event.fileId, event.version, "pending");
  if (typeof v === "string") return v;
  const count = piecesOf(v.size, v.pieceSize);
  const seen = new Set<number>();
  for (const p of event.pieces) {
    if (p.index >= count) return `piece ${p.index} is out of range: version ${v.version} of file ${v.fileId} has ${count} pieces`;
    if (v.pieces[p.index] || seen.has(p.index)) return `piece ${p.index} is already planned`;
    const size = expectedPieceSize(v, p.index);
    if (p.size !== size) return `piece ${p.index} has ${size} bytes, not ${p.size}`;
    seen.add(p.index);
  }
  return undefined;
}

function assignedContradiction(state: State, event: Extract<DfsEvent, { type: "PeersAssigned" }>): string | undefined {
  const v = versionIn(state, event.fileId, event.version, "pending");
  if (typeof v === "string") return v;
  if (event.uploadId !== v.uploadId) return `version ${v.version} of file ${v.fileId} is upload ${v.uploadId}, not ${event.uploadId}`;
  if (!state.workers.get(event.workerId)?.live) return `worker ${event.workerId} is not live`;
  const seen = new Set<number>();
  for (const a of event.pieces) {
    const piece = v.pieces[a.piece];
    if (!piece) return `piece ${a.piece} is not planned`;
    if (a.size !== piece.size || a.sha256 !== piece.sha256) return `piece ${a.piece} is ${piece.size} bytes with sha256 ${shortSha(piece.sha256)}, not as assigned`;
    if (seen.has(a.piece) || piece.peers.some((p) => p.workerId === event.workerId)) return `worker ${event.workerId} is already a peer of piece ${a.piece}`;
    if (piece.peers.length >= v.replicas) return `piece ${a.piece} already has its ${v.replicas} peers`;
    const major = piece.peers.find((p) => p.role === "major");
    if (a.role === "major") {
      if (major) return `piece ${a.piece} already has a major, ${major.workerId}`;
      if (a.pullFrom !== undefined) return `the major of piece ${a.piece} pulls from the uploader, not from ${a.pullFrom}`;
    } else {
      if (a.pullFrom === undefined || a.pullFrom === event.workerId) return `a minor of piece ${a.piece} must pull from another worker`;
      if (!state.workers.has(a.pullFrom)) return `no worker ${a.pullFrom} to pull piece ${a.piece} from`;
      if (major && a.pullFrom !== major.workerId) return `the major of piece ${a.piece} is ${major.workerId}, not ${a.pullFrom}`;
    }
    seen.add(a.piece);
  }
  return undefined;
}

function storedContradiction(state: State, event: Extract<DfsEvent, { type: "PieceStored" }>): string | undefined {
  const v = versionIn(state, event.fileId, event.version, "pending");
  if (typeof v === "string") return v;
  const piece = v.pieces[event.piece];
  if (!piece) return `piece ${event.piece} of version ${v.version} of file ${v.fileId} is not planned`;
  if (!piece.peers.some((p) => p.workerId === event.workerId)) return `worker ${event.workerId} is not a peer of piece ${event.piece}`;
  if (event.sha256 !== piece.sha256) return `piece ${event.piece} has sha256 ${shortSha(piece.sha256)}, not ${shortSha(event.sha256)}`;
  if (piece.stored.includes(event.workerId)) return `worker ${event.workerId} already stored piece ${event.piece}`;
  return undefined;
}

/** Whether a commit, abandon or delete names the version as FileCreated made it. */
function sameAsCreated(v: VersionState, fields: { path: string; size?: number; sha256?: string }): string | undefined {
  if (fields.path !== v.path) return `version ${v.version} of file ${v.fileId} is ${v.path}, not ${fields.path}`;
  if (fields.size !== undefined && fields.size !== v.size) return `version ${v.version} of file ${v.fileId} has ${v.size} bytes, not ${fields.size}`;
  if (fields.sha256 !== undefined && fields.sha256 !== v.sha256) return `version ${v.version} of file ${v.fileId} has sha256 ${shortSha(v.sha256)}, not ${shortSha(fields.sha256)}`;
  return undefined;
}

function deletedContradiction(state: State, event: Extract<DfsEvent, { type: "FileDeleted" }>): string | undefined {
  const file = state.files.get(event.fileId);
  if (!file) return `no file ${event.fileId}`;
  if (file.path !== event.path) return `file ${file.fileId} is ${file.path}, not ${event.path}`;
  if (file.deleted) return `file ${file.fileId} is already deleted`;
  if (event.version === undefined) return latestCommitted(file) ? undefined : `file ${file.fileId} has no committed version`;
  const v = versionIn(state, event.fileId, event.version, "committed");
  return typeof v === "string" ? v : undefined;
}

/**
 * Why `event` contradicts the table, or undefined when it may be folded: every field that
 * names something must name what the log made of it (the decider never emits anything else).
 */
export function contradiction(state: State, event: DfsEvent): string | undefined {
  switch (event.type) {
    case "WorkerJoined":
      return state.workers.get(event.workerId)?.live ? `worker ${event.workerId} is already live` : undefined;
    case "WorkerLost": {
      const worker = state.workers.get(event.workerId);
      if (!worker) return `no worker ${event.workerId}`;
      return worker.live ? undefined : `worker ${event.workerId} is already lost`;
    }
    case "FileCreated":
      return createdContradiction(state, event);
    case "PiecesPlanned":
      return plannedContradiction(state, event);
    case "PeersAssigned":
      return assignedContradiction(state, event);
    case "PieceStored":
      return storedContradiction(state, event);
    case "FileCommitted": {
      const v = versionIn(state, event.fileId, event.version, "pending");
      if (typeof v === "string") return v;
      const differs = sameAsCreated(v, event);
      if (differs) return differs;
      return isVersionComplete(v) ? undefined : `not every piece of version ${v.version} of file ${v.fileId} holds its ${v.replicas} replicas`;
    }
    case "UploadAbandoned": {
      const v = versionIn(state, event.fileId, event.version, "pending");
      return typeof v === "string" ? v : sameAsCreated(v, event);
    }
    case "FileDeleted":
      return deletedContradiction(state, event);
    case "PiecesDropped": {
      const owed = state.dropsOwed.get(event.workerId);
      const seen = new Set<string>();
      for (const sha of event.sha256s) {
        if (!owed?.has(sha) || seen.has(sha)) return `worker ${event.workerId} does not owe a drop of ${shortSha(sha)}`;
        seen.add(sha);
      }
      return undefined;
    }
  }
}

/** Count a rejected event and keep it among the recent ones, at the state's sequence. */
export function recordRejection(state: State, reason: string): void {
  const { rejected } = state;
  rejected.count += 1;
  rejected.recent.push({ seq: state.lastSeq, reason: reason.length > MAX_REJECTION_REASON ? `${reason.slice(0, MAX_REJECTION_REASON)}…` : reason });
  if (rejected.recent.length > RECENT_REJECTIONS_KEPT) rejected.recent.shift();
}

/** Apply an event that does not contradict the state. */
function apply(state: State, event: DfsEvent): void {
  switch (event.type) {
    case "WorkerJoined": {
      const worker = state.workers.get(event.workerId);
      if (worker) {
        worker.live = true;
        worker.joinedAt = event.at;
      } else {
        state.workers.set(event.workerId, { workerId: event.workerId, live: true, joinedAt: event.at, assignedBytes: 0 });
      }
      return;
    }
    case "WorkerLost":
      state.workers.get(event.workerId)!.live = false;
      return;
    case "FileCreated": {
      let file = state.files.get(event.fileId);
      if (!file) {
        file = { fileId: event.fileId, path: event.path, versions: new Map(), deleted: false, lastVersion: 0 };
        state.files.set(event.fileId, file);
        state.paths.set(event.path, event.fileId);
      }
      file.lastVersion = event.version;
      file.versions.set(event.version, {
        fileId: event.fileId,
        path: event.path,
        version: event.version,
        size: event.size,
        sha256: event.sha256,
        pieceSize: event.pieceSize,
        replicas: event.replicas,
        uploadId: event.uploadId,
        createdAt: event.at,
        status: "pending",
        pieces: [],
        completePieces: 0,
      });
      state.uploads.set(event.uploadId, { fileId: event.fileId, version: event.version });
      return;
    }
    case "PiecesPlanned": {
      const v = versionOf(state, event.fileId, event.version)!;
      for (const p of event.pieces) v.pieces[p.index] = { index: p.index, size: p.size, sha256: p.sha256, peers: [], stored: [] };
      return;
    }
    case "PeersAssigned": {
      const v = versionOf(state, event.fileId, event.version)!;
      for (const a of event.pieces) {
        const piece = v.pieces[a.piece]!;
        piece.peers.push({ workerId: event.workerId, role: a.role });
        addRef(state, event.workerId, piece.sha256, piece.size);
      }
      return;
    }
    case "PieceStored": {
      const v = versionOf(state, event.fileId, event.version)!;
      const piece = v.pieces[event.piece]!;
      piece.stored.push(event.workerId);
      if (piece.stored.length === v.replicas) v.completePieces += 1;
      return;
    }
    case "FileCommitted": {
      const v = versionOf(state, event.fileId, event.version)!;
      v.status = "committed";
      v.committedAt = event.at;
      return;
    }
    case "UploadAbandoned": {
      const v = versionOf(state, event.fileId, event.version)!;
      v.status = "abandoned";
      v.reason = `${event.code}: ${event.reason}`;
      releaseVersion(state, v);
      return;
    }
    case "FileDeleted": {
      const file = state.files.get(event.fileId)!;
      const doomed = event.version === undefined ? [...file.versions.values()] : [file.versions.get(event.version)!];
      for (const v of doomed) {
        if (v.status === "deleted" || v.status === "abandoned") continue;
        v.status = "deleted";
        releaseVersion(state, v);
      }
      if (event.version === undefined) {
        file.deleted = true;
        state.paths.delete(file.path);
      }
      return;
    }
    case "PiecesDropped": {
      const owed = state.dropsOwed.get(event.workerId)!;
      for (const sha of event.sha256s) owed.delete(sha);
      if (owed.size === 0) state.dropsOwed.delete(event.workerId);
      return;
    }
  }
}

/**
 * Fold one schema-valid event into the state (in place), at stream sequence `seq` when given:
 * applied if it does not contradict the table, else counted as rejected. Returns the reason
 * for a rejection. Never throws.
 */
export function evolve(state: State, event: DfsEvent, seq?: number): string | undefined {
  if (seq !== undefined) state.lastSeq = seq;
  const reason = contradiction(state, event);
  if (reason === undefined) apply(state, event);
  else recordRejection(state, reason);
  return reason;
}

export function foldEvents(events: Iterable<DfsEvent>, state: State = initialState()): State {
  for (const e of events) evolve(state, e);
  return state;
}

/** A plain, key-sorted picture of the state: what `dfs replay --json` prints and digests compare. */
export function projection(state: State) {
  const sorted = <T>(entries: Iterable<[string, T]>) => [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return {
    lastSeq: state.lastSeq,
    rejected: { count: state.rejected.count, recent: state.rejected.recent.map((r) => ({ ...r })) },
    workers: sorted(state.workers).map(([, w]) => ({ ...w })),
    files: sorted(state.files).map(([, f]) => ({
      fileId: f.fileId,
      path: f.path,
      deleted: f.deleted,
      lastVersion: f.lastVersion,
      versions: [...f.versions.values()]
        .sort((a, b) => a.version - b.version)
        .map((v) => ({
          ...v,
          pieces: v.pieces.map((p) => ({ index: p.index, size: p.size, sha256: p.sha256, peers: p.peers, stored: p.stored })),
        })),
    })),
    pieceRefs: sorted(state.pieceRefs).map(([workerId, refs]) => ({ workerId, refs: sorted(refs) })),
    dropsOwed: sorted(state.dropsOwed).map(([workerId, owed]) => ({ workerId, sha256s: [...owed].sort() })),
  };
}

/** SHA-256 of the projection: equal digests mean equal tables. */
export function stateDigest(state: State): string {
  return createHash("sha256").update(JSON.stringify(projection(state))).digest("hex");
}
