// The master's table, and nothing else: a fold of the event log. `evolve` is the only code
// that changes it, and it serves start-up replay, live tailing and `dfs replay` alike.
// For speed on long logs it updates the state in place; decisions only read it.
import { createHash } from "node:crypto";
import type { DfsEvent, Role } from "./events.js";

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

export interface State {
  /** Stream sequence of the last event folded in (0: none). */
  lastSeq: number;
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
    workers: new Map(),
    files: new Map(),
    paths: new Map(),
    uploads: new Map(),
    pieceRefs: new Map(),
    dropsOwed: new Map(),
  };
}

export function piecesOf(size: number, pieceSize: number): number {
  return size === 0 ? 0 : Math.ceil(size / pieceSize);
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

/** Fold one event into the state (in place) and return it. */
export function evolve(state: State, event: DfsEvent, seq?: number): State {
  if (seq !== undefined) state.lastSeq = seq;
  switch (event.type) {
    case "WorkerJoined": {
      const worker = state.workers.get(event.workerId);
      if (worker) {
        worker.live = true;
        worker.joinedAt = event.at;
      } else {
        state.workers.set(event.workerId, { workerId: event.workerId, live: true, joinedAt: event.at, assignedBytes: 0 });
      }
      return state;
    }
    case "WorkerLost": {
      const worker = state.workers.get(event.workerId);
      if (worker) worker.live = false;
      return state;
    }
    case "FileCreated": {
      let file = state.files.get(event.fileId);
      if (!file) {
        file = { fileId: event.fileId, path: event.path, versions: new Map(), deleted: false, lastVersion: 0 };
        state.files.set(event.fileId, file);
        state.paths.set(event.path, event.fileId);
      }
      file.lastVersion = Math.max(file.lastVersion, event.version);
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
      return state;
    }
    case "PiecesPlanned": {
      const v = versionOf(state, event.fileId, event.version);
      if (!v) return state;
      for (const p of event.pieces) v.pieces[p.index] = { index: p.index, size: p.size, sha256: p.sha256, peers: [], stored: [] };
      return state;
    }
    case "PeersAssigned": {
      const v = versionOf(state, event.fileId, event.version);
      if (!v) return state;
      for (const a of event.pieces) {
        const piece = v.pieces[a.piece];
        if (!piece || piece.peers.some((p) => p.workerId === event.workerId)) continue;
        piece.peers.push({ workerId: event.workerId, role: a.role });
        if (v.status === "pending" || v.status === "committed") addRef(state, event.workerId, piece.sha256, piece.size);
      }
      return state;
    }
    case "PieceStored": {
      const v = versionOf(state, event.fileId, event.version);
      const piece = v?.pieces[event.piece];
      if (!v || !piece || piece.stored.includes(event.workerId)) return state;
      piece.stored.push(event.workerId);
      if (piece.stored.length === v.replicas) v.completePieces += 1;
      return state;
    }
    case "FileCommitted": {
      const v = versionOf(state, event.fileId, event.version);
      if (!v || v.status !== "pending") return state;
      v.status = "committed";
      v.committedAt = event.at;
      return state;
    }
    case "UploadAbandoned": {
      const v = versionOf(state, event.fileId, event.version);
      if (!v || v.status !== "pending") return state;
      v.status = "abandoned";
      v.reason = `${event.code}: ${event.reason}`;
      releaseVersion(state, v);
      return state;
    }
    case "FileDeleted": {
      const file = state.files.get(event.fileId);
      if (!file) return state;
      const doomed = event.version === undefined ? [...file.versions.values()] : [file.versions.get(event.version)];
      for (const v of doomed) {
        if (!v || v.status === "deleted" || v.status === "abandoned") continue;
        v.status = "deleted";
        releaseVersion(state, v);
      }
      if (event.version === undefined) {
        file.deleted = true;
        if (state.paths.get(file.path) === file.fileId) state.paths.delete(file.path);
      }
      return state;
    }
    case "PiecesDropped": {
      const owed = state.dropsOwed.get(event.workerId);
      if (!owed) return state;
      for (const sha of event.sha256s) owed.delete(sha);
      if (owed.size === 0) state.dropsOwed.delete(event.workerId);
      return state;
    }
  }
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
