// Read-only views of the state that the master's RPCs answer with. Pure, like the decider.
import { encode } from "./codec.js";
import { DfsError, ErrorCodes } from "./errors.js";
import { isUnder, normalisePath, normalisePrefix } from "./paths.js";
import { latestCommitted, type FileState, type State, type VersionState } from "./state.js";

export interface PieceLocation {
  index: number;
  size: number;
  sha256: string;
  /** Workers holding the bytes: live ones first, the major first among them. */
  workers: string[];
}

export interface Location {
  fileId: string;
  path: string;
  version: number;
  size: number;
  sha256: string;
  pieceSize: number;
  committedAt: number;
  pieces: PieceLocation[];
}

export interface VersionInfo {
  version: number;
  size: number;
  sha256: string;
  pieceSize: number;
  replicas: number;
  pieces: number;
  createdAt: number;
  committedAt: number;
}

/** A file in a listing: its latest committed version, and how many are readable. */
export interface ListEntry extends VersionInfo {
  fileId: string;
  path: string;
  /** Committed versions still readable. */
  versionCount: number;
}

export interface FileInfo extends ListEntry {
  /** The latest STAT_VERSIONS committed versions still readable, oldest first. */
  versions: VersionInfo[];
}

/**
 * The answer to a create: the version, its piece plan (pieces of `pieceSize` bytes, the last
 * one shorter) and its peers, listed per worker (compact: a reply must fit max_payload even
 * for MAX_PIECES pieces).
 */
export interface UploadPlan {
  fileId: string;
  path: string;
  version: number;
  status: VersionState["status"];
  size: number;
  pieceSize: number;
  pieces: number;
  peers: { workerId: string; major: number[]; minor: number[] }[];
}

/** Replies stay below max_payload: long answers come in pages of at most so many items and bytes. */
export const LIST_PAGE = 500;
export const LOCATE_PAGE = 2_000;
/** The bytes of items in one page by default: half of NATS's default max_payload (the master passes its own). */
export const REPLY_BYTES = 512 * 1024;
/** A file may have any number of versions: `stat` shows the latest ones. */
export const STAT_VERSIONS = 100;

export interface LocationPage extends Location {
  /** Pieces of the version in all; `pieces` holds those from `fromPiece` on. */
  pieceCount: number;
  fromPiece: number;
}

export interface ListPage {
  files: ListEntry[];
  /** Pass as `after` for the next page; absent on the last one. */
  next?: string;
}

/**
 * As many of `count` items (made by `item`, only when taken) as fit in `maxBytes` of CBOR,
 * always at least one so that paging moves on.
 */
function fillPage<T>(count: number, item: (i: number) => T, maxBytes: number): T[] {
  const page: T[] = [];
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    const next = item(i);
    bytes += encode(next).length;
    if (bytes > maxBytes && page.length > 0) break;
    page.push(next);
  }
  return page;
}

function liveFile(state: State, path: string): FileState {
  const canonical = normalisePath(path);
  const fileId = state.paths.get(canonical);
  const file = fileId === undefined ? undefined : state.files.get(fileId);
  if (!file || !latestCommitted(file)) throw new DfsError(ErrorCodes.NOT_FOUND, `no file ${canonical}`);
  return file;
}

function committedVersion(file: FileState, version?: number): VersionState {
  if (version === undefined) return latestCommitted(file)!;
  const v = file.versions.get(version);
  if (!v || v.status !== "committed") throw new DfsError(ErrorCodes.NOT_FOUND, `no version ${version} of ${file.path}`);
  return v;
}

function versionInfo(v: VersionState): VersionInfo {
  return {
    version: v.version,
    size: v.size,
    sha256: v.sha256,
    pieceSize: v.pieceSize,
    replicas: v.replicas,
    pieces: v.pieces.length,
    createdAt: v.createdAt,
    committedAt: v.committedAt ?? 0,
  };
}

/**
 * Where pieces `fromPiece` to `fromPiece + limit` of a committed version live, as many as fit
 * in `maxBytes` (only those are worked out).
 */
export function locatePage(
  state: State,
  path: string,
  version: number | undefined,
  fromPiece = 0,
  limit = LOCATE_PAGE,
  maxBytes = REPLY_BYTES,
): LocationPage {
  const v = committedVersion(liveFile(state, path), version);
  const liveness = (id: string) => (state.workers.get(id)?.live ? 0 : 1);
  const rank = (piece: VersionState["pieces"][number], id: string) => {
    const peer = piece.peers.find((p) => p.workerId === id);
    return liveness(id) * 2 + (peer?.role === "major" ? 0 : 1);
  };
  return {
    fileId: v.fileId,
    path: v.path,
    version: v.version,
    size: v.size,
    sha256: v.sha256,
    pieceSize: v.pieceSize,
    committedAt: v.committedAt ?? 0,
    pieceCount: v.pieces.length,
    fromPiece,
    pieces: fillPage(
      Math.max(0, Math.min(limit, v.pieces.length - fromPiece)),
      (i) => {
        const p = v.pieces[fromPiece + i]!;
        // Every checked copy of these bytes serves, whichever file put them there.
        const holders = [...(state.content.get(p.sha256)?.holders ?? [])];
        return { index: p.index, size: p.size, sha256: p.sha256, workers: holders.sort((a, b) => rank(p, a) - rank(p, b) || (a < b ? -1 : 1)) };
      },
      maxBytes,
    ),
  };
}

/** Where every piece of a committed version lives. */
export function locate(state: State, path: string, version?: number): Location {
  const { pieceCount: _count, fromPiece: _from, ...where } = locatePage(state, path, version, 0, Infinity, Infinity);
  return where;
}

function committedVersions(file: FileState): VersionState[] {
  return [...file.versions.values()].filter((v) => v.status === "committed").sort((a, b) => a.version - b.version);
}

function listEntry(file: FileState): ListEntry {
  return { fileId: file.fileId, path: file.path, ...versionInfo(latestCommitted(file)!), versionCount: committedVersions(file).length };
}

export function stat(state: State, path: string): FileInfo {
  const file = liveFile(state, path);
  return { ...listEntry(file), versions: committedVersions(file).slice(-STAT_VERSIONS).map(versionInfo) };
}

/** Paths of the files with a committed version at or below `prefix`, sorted. */
function visiblePaths(state: State, prefix: string | undefined): string[] {
  const root = normalisePrefix(prefix);
  const paths: string[] = [];
  for (const [path, fileId] of state.paths) {
    if (isUnder(path, root) && latestCommitted(state.files.get(fileId)!)) paths.push(path);
  }
  return paths.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

export function list(state: State, prefix?: string): ListEntry[] {
  return visiblePaths(state, prefix).map((path) => listEntry(liveFile(state, path)));
}

/**
 * The `count` least paths after `after` (exclusive) of the files with a committed version at
 * or below `prefix`, sorted, and whether more follow: one pass that keeps them in a max-heap.
 * Sorting every path for each page took 0.1-0.2 s at 300,000 files (the first answer of a
 * master started from a snapshot, and every page of a long `ls`).
 */
function leastPaths(state: State, prefix: string | undefined, after: string | undefined, count: number): { paths: string[]; more: boolean } {
  const root = normalisePrefix(prefix);
  const heap: string[] = []; // heap[0] is the greatest kept
  let more = false;
  const swap = (i: number, j: number) => ([heap[i], heap[j]] = [heap[j]!, heap[i]!]);
  for (const [path, fileId] of state.paths) {
    if (after !== undefined && path <= after) continue;
    const full = heap.length >= count;
    // Past the page, once more are known to follow: not even looked up.
    if (full && more && path >= heap[0]!) continue;
    if (!isUnder(path, root) || !latestCommitted(state.files.get(fileId)!)) continue;
    if (!full) {
      heap.push(path);
      for (let i = heap.length - 1; i > 0 && heap[(i - 1) >> 1]! < heap[i]!; i = (i - 1) >> 1) swap(i, (i - 1) >> 1);
      continue;
    }
    // One path more than the page holds: either it or the greatest kept follows the page.
    more = true;
    if (count === 0 || path >= heap[0]!) continue;
    heap[0] = path;
    for (let i = 0; ; ) {
      const left = 2 * i + 1, right = left + 1;
      let greatest = i;
      if (left < heap.length && heap[left]! > heap[greatest]!) greatest = left;
      if (right < heap.length && heap[right]! > heap[greatest]!) greatest = right;
      if (greatest === i) break;
      swap(i, greatest);
      i = greatest;
    }
  }
  return { paths: heap.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)), more };
}

/**
 * Files after the path `after` (exclusive), at most `limit` of them and as many as fit in
 * `maxBytes`; only those are looked at.
 */
export function listPage(state: State, prefix: string | undefined, after: string | undefined, limit = LIST_PAGE, maxBytes = REPLY_BYTES): ListPage {
  const { paths, more } = leastPaths(state, prefix, after, limit);
  if (paths.length === 0) return { files: [] };
  const files = fillPage(paths.length, (i) => listEntry(liveFile(state, paths[i]!)), maxBytes);
  return more || files.length < paths.length ? { files, next: files[files.length - 1]!.path } : { files };
}

export function uploadPlan(state: State, uploadId: string): UploadPlan {
  const v = state.uploads.get(uploadId);
  if (!v) throw new DfsError(ErrorCodes.NOT_FOUND, `no upload ${uploadId}`);
  const byWorker = new Map<string, { major: number[]; minor: number[] }>();
  for (const piece of v.pieces) {
    for (const peer of piece.peers) {
      let roles = byWorker.get(peer.workerId);
      if (!roles) byWorker.set(peer.workerId, (roles = { major: [], minor: [] }));
      roles[peer.role].push(piece.index);
    }
  }
  return {
    fileId: v.fileId,
    path: v.path,
    version: v.version,
    status: v.status,
    size: v.size,
    pieceSize: v.pieceSize,
    pieces: v.pieces.length,
    peers: [...byWorker.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([workerId, roles]) => ({ workerId, ...roles })),
  };
}

/** Where an upload stands: what the client waits on until the version commits or is given up. */
export interface UploadProgress {
  fileId: string;
  version: number;
  status: VersionState["status"];
  /** Copies of pieces confirmed so far, and their bytes. */
  stored: number;
  storedBytes: number;
  /** Why it was given up, when it was. */
  reason?: string;
  /** Of the pieces asked about, those that hold all their replicas. */
  complete?: number[];
  /** The log sequence this answer reflects. */
  seq: number;
}

export function uploadProgress(state: State, uploadId: string, seq: number, pieces?: readonly number[]): UploadProgress {
  const v = state.uploads.get(uploadId);
  if (!v) throw new DfsError(ErrorCodes.NOT_FOUND, `no upload ${uploadId}`);
  let stored = 0;
  let storedBytes = 0;
  for (const piece of v.pieces) {
    if (!piece) continue;
    stored += piece.stored.length;
    storedBytes += piece.stored.length * piece.size;
  }
  const complete = pieces?.filter((index) => (v.pieces[index]?.stored.length ?? 0) >= v.replicas);
  return { fileId: v.fileId, version: v.version, status: v.status, stored, storedBytes, seq, ...(v.reason ? { reason: v.reason } : {}), ...(complete ? { complete } : {}) };
}
