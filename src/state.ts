// The master's table, and nothing else: a fold of the event log. `evolve` is the only code
// that changes it, and it serves start-up replay, live tailing and `dfs replay` alike.
// For speed on long logs it updates the state in place; decisions only read it.
// The fold is total: an event that contradicts the table is not applied but counted and
// kept among the recent rejections, so every reader of the log folds it the same way.
import { createHash } from "node:crypto";
import { added, contentFor, withCount, forgiveDrop, indexCopy, oweDrop, recheck, removed, retire, syncPlacement, withEntry, type ContentRecord, type ContentState } from "./content.js";
import { piecesOf, type AssignedPiece, type DfsEvent, type PlannedPiece, type Role } from "./events.js";
import { KEY_SEPARATOR, interned, within } from "./interned.js";
import { hasOlderVersions, type RetentionPolicy } from "./retention.js";
import { Slices } from "./slices.js";

export type VersionStatus = "pending" | "committed" | "abandoned" | "deleted";

export interface Peer {
  readonly workerId: string;
  readonly role: Role;
}

export interface PieceState {
  readonly index: number;
  readonly size: number;
  readonly sha256: string;
  readonly peers: readonly Peer[];
  /** Workers that confirmed the bytes, in confirmation order. */
  readonly stored: readonly string[];
}

export interface VersionState {
  readonly fileId: string;
  readonly path: string;
  readonly version: number;
  /** Declared at create; for a streamed version, the bytes of the pieces planned so far (final once sealed). */
  readonly size: number;
  /** Declared at create; for a streamed version, "" until it is sealed. */
  readonly sha256: string;
  readonly pieceSize: number;
  readonly replicas: number;
  readonly uploadId: string;
  /** The NATS user serving the bytes (see FileCreated); absent in versions created before uploads named one. */
  readonly uploader?: string;
  readonly createdAt: number;
  /** Only a streamed version (stdin) has it: "open" while its pieces are planned as they come, "sealed" once FileSealed says its size. */
  readonly stream?: "open" | "sealed";
  readonly status: VersionStatus;
  readonly committedAt?: number;
  readonly reason?: string;
  /** Sparse until PiecesPlanned covers every index. */
  readonly pieces: readonly PieceState[];
  /** Pieces that hold `replicas` confirmed copies. */
  readonly completePieces: number;
}

/**
 * A file's versions by number. They are 1, 2, 3... and never removed (a gone one is marked),
 * so an array holds them (a Map of one version costs 150 bytes more, once per file), and
 * only from the second on: most files have one, and an array of one costs 56 bytes more.
 */
export class Versions {
  private held: VersionRecord | readonly VersionRecord[] | undefined = undefined;
  get(version: number): VersionRecord | undefined {
    const held = this.held;
    if (isList(held)) return held[version - 1];
    return version === 1 ? held : undefined;
  }
  /** Only the next version is added (the fold checks it is the next). */
  set(version: number, v: VersionRecord): void {
    if (version !== this.size + 1) throw new Error(`version ${version} is not the next (${this.size + 1})`);
    const held = this.held;
    // At its size: a spread or a push leaves room for 16 more.
    this.held = held === undefined ? v : isList(held) ? held.concat(v) : [held, v];
  }
  get size(): number {
    const held = this.held;
    return held === undefined ? 0 : isList(held) ? held.length : 1;
  }
  values(): IterableIterator<VersionRecord> {
    const held = this.held;
    return (held === undefined ? [] : isList(held) ? held : [held]).values();
  }
}

const isList = (held: VersionRecord | readonly VersionRecord[] | undefined): held is readonly VersionRecord[] => Array.isArray(held);

export interface FileState {
  readonly fileId: string;
  readonly path: string;
  readonly versions: Versions;
  readonly deleted: boolean;
  readonly lastVersion: number;
}

/**
 * A file as the table holds it: its versions are in the record itself (a file is its
 * `Versions`), which spares an object of 32 bytes a file, and whether it is deleted shares
 * one number with its last version (twice it, plus 1 if deleted).
 */
export class FileRecord extends Versions implements FileState {
  private lastVersionAndDeleted = 0;
  constructor(
    readonly fileId: string,
    readonly path: string,
  ) {
    super();
  }
  get versions(): Versions {
    return this;
  }
  get deleted(): boolean {
    return this.lastVersionAndDeleted % 2 === 1;
  }
  set deleted(deleted: boolean) {
    this.lastVersionAndDeleted = this.lastVersion * 2 + (deleted ? 1 : 0);
  }
  get lastVersion(): number {
    return Math.floor(this.lastVersionAndDeleted / 2);
  }
  set lastVersion(version: number) {
    this.lastVersionAndDeleted = version * 2 + (this.deleted ? 1 : 0);
  }
}

/**
 * The copies of the one piece of a version of one piece (most versions): its peers and the
 * workers that stored it. Each distinct pair is one object shared by every such version, as
 * `withPeer`'s arrays are; the piece's index (0), size and SHA-256 are the version's own.
 */
interface OnePiece {
  readonly peers: readonly Peer[];
  readonly stored: readonly string[];
}

/** A piece of a version of several (or of a stream): its copies change as the fold goes. */
interface PieceRecord extends PieceState {
  peers: readonly Peer[];
  stored: readonly string[];
}

const STATUSES: readonly VersionStatus[] = ["pending", "committed", "abandoned", "deleted"];
const STREAMS: readonly VersionState["stream"][] = [undefined, "open", "sealed"];
// A version's status, stream, replicas and complete pieces, packed in one small integer:
// bits 0-1 the status, 2-3 the stream, 4-8 the replicas (1-16), 9-22 the complete pieces (0-10,000).
const STREAM_SHIFT = 2, REPLICAS_SHIFT = 4, COMPLETE_SHIFT = 9;
const STATUS_MASK = 0b11, STREAM_MASK = 0b11, REPLICAS_MASK = 0b11111;

/**
 * A version as the table holds it: 120 bytes, with no object of its own for a version of one
 * piece (see OnePiece) and no array for its pieces, which `pieces` makes when a reader asks.
 * Its file's id and path are the file's; four small fields share one integer; the time of
 * its commit is kept as the milliseconds after its creation (both are whole: see `isCount`). The fold
 * changes it through the methods below (and the setters), and nothing else does.
 */
export class VersionRecord implements VersionState {
  /** Its file, for its id and path (private, so that a deep comparison of tables does not go round in circles). */
  readonly #file: FileState;
  private flags: number;
  /** `committedAt` less `createdAt`: a small integer, where a time of its own would be a heap number of 16 bytes. */
  private committedAfter: number | undefined = undefined;
  reason: string | undefined = undefined;
  /** The pieces, as planned (an array, sparse while a stream's plan has holes), or the one piece's copies. */
  private held: PieceRecord[] | OnePiece = NO_PIECES;

  constructor(
    file: FileState,
    readonly version: number,
    public size: number,
    public sha256: string,
    readonly pieceSize: number,
    replicas: number,
    readonly uploadId: string,
    readonly uploader: string | undefined,
    readonly createdAt: number,
    stream: VersionState["stream"],
  ) {
    this.#file = file;
    this.flags = (STREAMS.indexOf(stream) << STREAM_SHIFT) | (replicas << REPLICAS_SHIFT);
  }

  get committedAt(): number | undefined {
    return this.committedAfter === undefined ? undefined : this.createdAt + this.committedAfter;
  }
  set committedAt(at: number | undefined) {
    this.committedAfter = at === undefined ? undefined : at - this.createdAt;
  }
  get fileId(): string {
    return this.#file.fileId;
  }
  get path(): string {
    return this.#file.path;
  }
  get status(): VersionStatus {
    return STATUSES[this.flags & STATUS_MASK]!;
  }
  set status(status: VersionStatus) {
    this.flags = (this.flags & ~STATUS_MASK) | STATUSES.indexOf(status);
  }
  get stream(): VersionState["stream"] {
    return STREAMS[(this.flags >> STREAM_SHIFT) & STREAM_MASK];
  }
  set stream(stream: VersionState["stream"]) {
    this.flags = (this.flags & ~(STREAM_MASK << STREAM_SHIFT)) | (STREAMS.indexOf(stream) << STREAM_SHIFT);
  }
  get replicas(): number {
    return (this.flags >> REPLICAS_SHIFT) & REPLICAS_MASK;
  }
  get completePieces(): number {
    return this.flags >> COMPLETE_SHIFT;
  }
  set completePieces(count: number) {
    this.flags = (this.flags & ((1 << COMPLETE_SHIFT) - 1)) | (count << COMPLETE_SHIFT);
  }

  /** The pieces as planned, made for the reader (a version of one piece keeps no array). */
  get pieces(): readonly PieceState[] {
    const held = this.held;
    return isOnePiece(held) ? [this.onePiece(held)] : held;
  }

  /** Piece `index` if planned. */
  piece(index: number): PieceState | undefined {
    const held = this.held;
    if (!isOnePiece(held)) return held[index];
    return index === 0 ? this.onePiece(held) : undefined;
  }

  /**
   * Plan `planned` (their SHA-256s the strings the table keeps). A version of one piece whose
   * piece is the whole of it keeps only that piece's copies; any other keeps an array of its
   * pieces, made at its size (one grown by assignment or `push` keeps room for 16 more).
   */
  plan(planned: readonly { index: number; size: number; sha256: string }[]): void {
    // A version of one piece is whole once planned (the fold's checks refuse more), but were
    // more planned, it would become an array like any other: planning never throws.
    const current = this.held;
    const held: PieceRecord[] = isOnePiece(current) ? [{ ...this.onePiece(current) }] : current;
    const only = planned[0];
    if (held.length === 0 && planned.length === 1 && only!.index === 0 && this.isOnePiece(only!.size, only!.sha256)) {
      this.held = onePiece(NOBODY, NOBODY);
      return;
    }
    const pieces: PieceRecord[] = new Array(planned.reduce((length, p) => Math.max(length, p.index + 1), held.length));
    held.forEach((piece, index) => (pieces[index] = piece));
    for (const p of planned) pieces[p.index] = { index: p.index, size: p.size, sha256: p.sha256, peers: NOBODY, stored: NOBODY };
    this.held = pieces;
  }

  /** Set the copies of piece `index` (planned): its peers and the workers that stored it. */
  setCopies(index: number, peers: readonly Peer[], stored: readonly string[]): void {
    const held = this.held;
    if (isOnePiece(held)) this.held = onePiece(peers, stored);
    else {
      const piece = held[index]!;
      piece.peers = peers;
      piece.stored = stored;
    }
  }

  private isOnePiece(size: number, sha256: string): boolean {
    return this.stream === undefined && size === this.size && sha256 === this.sha256 && piecesOf(this.size, this.pieceSize) === 1;
  }

  private onePiece(held: OnePiece): PieceState {
    return { index: 0, size: this.size, sha256: this.sha256, peers: held.peers, stored: held.stored };
  }
}

function isOnePiece(held: readonly PieceState[] | OnePiece): held is OnePiece {
  return !Array.isArray(held);
}

/** Every OnePiece, by its peers and then its stored (both shared arrays already: see withPeer). */
const onePieces = new WeakMap<readonly Peer[], WeakMap<readonly string[], OnePiece>>();

/** The shared copies of one piece (see OnePiece). */
function onePiece(peers: readonly Peer[], stored: readonly string[]): OnePiece {
  return within(within(onePieces, peers, () => new WeakMap()), stored, () => Object.freeze({ peers, stored }));
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
  files: Map<string, FileRecord>;
  /** Path of every file not deleted → its fileId. */
  paths: Map<string, string>;
  /** Every upload id a create named → its version. */
  uploads: Map<string, VersionRecord>;
  /** Upload ids of the pending versions (their peers may need replacing when a worker is lost). */
  pendingUploads: Set<string>;
  /** Piece bytes that live versions refer to, by SHA-256: who holds them, who is making copies. */
  content: Map<string, ContentRecord>;
  /** workerId → the bytes it is expected to keep (an index of `content`). */
  placedOn: Map<string, Set<string>>;
  /** Committed bytes with too few or too many readable copies (an index of `content`). */
  unhealthy: Set<string>;
  /** workerId → bytes it was ordered to copy and has not confirmed (an index of `content`). */
  copyingTo: Map<string, Set<string>>;
  /** workerId → pieces no longer needed there and not yet dropped. */
  dropsOwed: Map<string, Set<string>>;
  /** Which older versions are kept (the latest RetentionSet; empty: every one). */
  retention: RetentionPolicy;
  /** Live files with more than one committed version: all the retention policy can expire (an index of `files`). */
  versioned: Set<string>;
}

export function initialState(): State {
  return {
    lastSeq: 0,
    rejected: { count: 0, recent: [] },
    workers: new Map(),
    files: new Map(),
    paths: new Map(),
    uploads: new Map(),
    pendingUploads: new Set(),
    content: new Map(),
    placedOn: new Map(),
    unhealthy: new Set(),
    copyingTo: new Map(),
    dropsOwed: new Map(),
    retention: {},
    versioned: new Set(),
  };
}

// The table's records are made only here, by `apply` and by the snapshot's decoder alike, so
// that how they are kept in memory is decided in one place.

const NOBODY: readonly never[] = Object.freeze([]);
/** A version's pieces before any is planned (planning makes the version an array of its own, or a OnePiece). */
const NO_PIECES: PieceRecord[] = Object.freeze([]) as unknown as PieceRecord[];

/** A version's uploader: one of a few NATS users. */
const sharedUploader = (user: string) => interned(`u:${user}`, () => own(user));

/** `peers` and one more: the arrays of peers (and each peer) are shared by every piece with the same. */
export function withPeer(peers: readonly Peer[], workerId: string, role: Role): readonly Peer[] {
  const peer = interned(`p:${role} ${workerId}`, (): Peer => Object.freeze({ workerId, role }));
  const next = [...peers, peer];
  return interned(`P:${next.map((p) => `${p.role} ${p.workerId}`).join(KEY_SEPARATOR)}`, () => Object.freeze(next));
}

/** `stored` and one more worker, shared as `withPeer`'s arrays are. */
export function withStored(stored: readonly string[], workerId: string): readonly string[] {
  const next = [...stored, workerId];
  return interned(`S:${next.join(KEY_SEPARATOR)}`, () => Object.freeze(next));
}

export function newWorker(workerId: string, joinedAt: number): WorkerState {
  return { workerId, live: true, joinedAt, assignedBytes: 0 };
}

export function newFile(fileId: string, path: string): FileRecord {
  return new FileRecord(fileId, path);
}

/** What a version is created with (see FileCreated); it starts pending, with no pieces planned. */
export interface NewVersion {
  version: number;
  size: number;
  sha256: string;
  pieceSize: number;
  replicas: number;
  uploadId: string;
  uploader: string | undefined;
  createdAt: number;
  stream: VersionState["stream"];
}

/** A pending version of `file`, with no pieces planned. */
export function newVersion(file: FileState, v: NewVersion): VersionRecord {
  return new VersionRecord(file, v.version, v.size, v.sha256, v.pieceSize, v.replicas, v.uploadId, v.uploader, v.createdAt, v.stream);
}

export function versionOf(state: State, fileId: string, version: number): VersionRecord | undefined {
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
  return v.status === "pending" && v.stream !== "open" && v.completePieces === piecesOf(v.size, v.pieceSize) && v.pieces.length === piecesOf(v.size, v.pieceSize);
}

/** Count a rejected event and keep it among the recent ones, at the state's sequence. */
export function recordRejection(state: State, reason: string): void {
  const { rejected } = state;
  rejected.count += 1;
  rejected.recent.push({ seq: state.lastSeq, reason: reason.length > MAX_REJECTION_REASON ? `${reason.slice(0, MAX_REJECTION_REASON)}…` : reason });
  if (rejected.recent.length > RECENT_REJECTIONS_KEPT) rejected.recent.shift();
}

const own = (s: string) => Buffer.from(s, "utf8").toString("utf8");

/** Apply an event that does not contradict the state (see `evolve` in fold.ts, which checks first). */
export function apply(state: State, event: DfsEvent): void {
  // Worker ids kept in the table share the worker's own string.
  if ("workerId" in event && event.type !== "WorkerJoined") event = { ...event, workerId: state.workers.get(event.workerId)?.workerId ?? event.workerId };
  switch (event.type) {
    case "WorkerJoined": {
      const worker = state.workers.get(event.workerId);
      if (worker) {
        worker.live = true;
        worker.joinedAt = event.at;
      } else {
        state.workers.set(event.workerId, newWorker(own(event.workerId), event.at));
      }
      livenessChanged(state, event.workerId);
      return;
    }
    case "WorkerLost":
      state.workers.get(event.workerId)!.live = false;
      livenessChanged(state, event.workerId);
      return;
    case "FileCreated": {
      event = { ...event, fileId: own(event.fileId), path: own(event.path), sha256: own(event.sha256 ?? ""), uploadId: own(event.uploadId) };
      let file = state.files.get(event.fileId);
      if (!file) {
        file = newFile(event.fileId, event.path);
        state.files.set(event.fileId, file);
        state.paths.set(event.path, event.fileId);
      }
      file.lastVersion = event.version;
      const version = newVersion(file, {
        version: event.version,
        size: event.size,
        sha256: event.sha256!,
        pieceSize: event.pieceSize,
        replicas: event.replicas,
        uploadId: event.uploadId,
        uploader: event.uploader === undefined ? undefined : sharedUploader(event.uploader),
        createdAt: event.at,
        stream: event.streamed ? "open" : undefined,
      });
      file.versions.set(event.version, version);
      state.uploads.set(event.uploadId, version);
      state.pendingUploads.add(event.uploadId);
      // A small version's plan comes with it (no PiecesPlanned follows).
      if (event.pieces) planPieces(state, version, event.pieces);
      return;
    }
    case "PiecesPlanned":
      planPieces(state, versionOf(state, event.fileId, event.version)!, event.pieces);
      return;
    case "FileSealed": {
      const v = versionOf(state, event.fileId, event.version)!;
      v.sha256 = own(event.sha256);
      v.stream = "sealed";
      return;
    }
    case "PeersAssigned":
      assignPeers(state, event.workerId, event);
      return;
    case "UploadsAssigned":
      for (const upload of event.uploads) assignPeers(state, event.workerId, upload);
      return;
    case "PieceStored": {
      const v = versionOf(state, event.fileId, event.version)!;
      const piece = v.piece(event.piece)!;
      const stored = withStored(piece.stored, event.workerId);
      v.setCopies(event.piece, piece.peers, stored);
      if (stored.length === v.replicas) v.completePieces += 1;
      const c = state.content.get(piece.sha256)!;
      c.holders = added(c.holders, event.workerId);
      syncPlacement(state, c, event.workerId);
      recheck(state, c);
      return;
    }
    case "FileCommitted": {
      const v = versionOf(state, event.fileId, event.version)!;
      v.status = "committed";
      v.committedAt = event.at;
      indexVersions(state, state.files.get(event.fileId)!);
      state.pendingUploads.delete(v.uploadId);
      for (const piece of v.pieces) {
        const c = state.content.get(piece.sha256)!;
        c.wanted = withCount(c.wanted, v.replicas, 1);
        settleAssignments(state, c, piece);
        recheck(state, c);
      }
      return;
    }
    case "UploadAbandoned": {
      const v = versionOf(state, event.fileId, event.version)!;
      releaseVersion(state, v);
      v.status = "abandoned";
      v.reason = `${event.code}: ${event.reason}`;
      return;
    }
    case "FileDeleted": {
      const file = state.files.get(event.fileId)!;
      const doomed = event.version === undefined ? [...file.versions.values()] : [file.versions.get(event.version)!];
      for (const v of doomed) {
        if (v.status === "deleted" || v.status === "abandoned") continue;
        releaseVersion(state, v);
        v.status = "deleted";
      }
      if (event.version === undefined) {
        file.deleted = true;
        state.paths.delete(file.path);
      }
      indexVersions(state, file);
      return;
    }
    case "VersionExpired": {
      const file = state.files.get(event.fileId)!;
      const v = file.versions.get(event.version)!;
      releaseVersion(state, v);
      v.status = "deleted";
      v.reason = `expired: ${event.rule}`;
      indexVersions(state, file);
      return;
    }
    case "RetentionSet":
      state.retention = {
        ...(event.keepVersions !== undefined ? { keepVersions: event.keepVersions } : {}),
        ...(event.keepForMs !== undefined ? { keepForMs: event.keepForMs } : {}),
      };
      return;
    case "PiecesDropped":
      for (const sha256 of event.sha256s) {
        forgiveDrop(state, event.workerId, sha256);
        const c = state.content.get(sha256);
        if (!c) continue;
        c.holders = removed(c.holders, event.workerId);
        syncPlacement(state, c, event.workerId);
        recheck(state, c);
      }
      return;
    case "CopiesOrdered":
      for (const order of event.pieces) {
        const c = state.content.get(order.sha256)!;
        c.copying = added(c.copying, event.workerId);
        indexCopy(state, event.workerId, c.sha256, true);
        forgiveDrop(state, event.workerId, c.sha256);
        syncPlacement(state, c, event.workerId);
        recheck(state, c);
      }
      return;
    case "ReplicaStored": {
      const c = state.content.get(event.sha256)!;
      c.holders = added(c.holders, event.workerId);
      if (c.copying.has(event.workerId)) {
        c.copying = removed(c.copying, event.workerId);
        indexCopy(state, event.workerId, c.sha256, false);
      }
      c.failedAt = withEntry(c.failedAt, event.workerId, undefined);
      forgiveDrop(state, event.workerId, c.sha256);
      syncPlacement(state, c, event.workerId);
      recheck(state, c);
      return;
    }
    case "CopyFailed": {
      const c = state.content.get(event.sha256)!;
      c.copying = removed(c.copying, event.workerId);
      indexCopy(state, event.workerId, c.sha256, false);
      c.failedAt = withEntry(c.failedAt, event.workerId, event.at);
      syncPlacement(state, c, event.workerId);
      recheck(state, c);
      return;
    }
    case "ReplicasLost":
      for (const sha256 of event.sha256s) {
        const c = state.content.get(sha256)!;
        c.holders = removed(c.holders, event.workerId);
        syncPlacement(state, c, event.workerId);
        recheck(state, c);
      }
      return;
  }
}

/**
 * Put `file` (just made again from a snapshot, with its versions) in the indexes the fold
 * keeps of `files`: `paths`, `uploads`, `pendingUploads` and `versioned`.
 */
export function indexFile(state: State, file: FileRecord): void {
  if (!file.deleted) state.paths.set(file.path, file.fileId);
  for (let number = 1; number <= file.versions.size; number++) {
    const v = file.versions.get(number)!;
    state.uploads.set(v.uploadId, v);
    if (v.status === "pending") state.pendingUploads.add(v.uploadId);
  }
  indexVersions(state, file);
}

/** A worker's share of a version's pieces (PeersAssigned, or one upload of UploadsAssigned). */
function assignPeers(state: State, workerId: string, share: { fileId: string; version: number; pieces: readonly AssignedPiece[] }): void {
  const v = versionOf(state, share.fileId, share.version)!;
  for (const a of share.pieces) {
    const piece = v.piece(a.piece)!;
    v.setCopies(a.piece, withPeer(piece.peers, workerId, a.role), piece.stored);
    const c = state.content.get(piece.sha256)!;
    c.assigned = withCount(c.assigned, workerId, 1);
    forgiveDrop(state, workerId, c.sha256);
    syncPlacement(state, c, workerId);
  }
}

/** The pieces of a version, as planned (FileCreated's plan, or PiecesPlanned). */
function planPieces(state: State, v: VersionRecord, planned: readonly PlannedPiece[]): void {
  const owned = planned.map((p) => ({ index: p.index, size: p.size, sha256: state.content.get(p.sha256)?.sha256 ?? own(p.sha256) }));
  // A file of one piece has that piece's SHA-256: one string for both.
  for (const p of owned) if (v.sha256 === p.sha256) v.sha256 = p.sha256;
  v.plan(owned);
  for (const p of owned) {
    contentFor(state, p.sha256, p.size).refs += 1;
    if (v.stream === "open") v.size += p.size;
  }
}

/** Keep `versioned` true to whether the file has older versions retention may expire. */
function indexVersions(state: State, file: FileState): void {
  if (!file.deleted && file.versions.size > 1 && hasOlderVersions(file)) state.versioned.add(file.fileId);
  else state.versioned.delete(file.fileId);
}

/** A worker's liveness changed: the health of every piece it is expected to keep may have too. */
function livenessChanged(state: State, workerId: string): void {
  for (const sha256 of state.placedOn.get(workerId) ?? []) recheck(state, state.content.get(sha256)!);
}

/**
 * A version left pending: its upload's assignments are settled. A peer that did not store
 * the piece may still do so from its queue, so unless it is expected to keep the bytes
 * anyway, it owes a drop.
 */
function settleAssignments(state: State, c: ContentRecord, piece: PieceState): void {
  for (const peer of piece.peers) {
    c.assigned = withCount(c.assigned, peer.workerId, -1);
    syncPlacement(state, c, peer.workerId);
    if (state.content.get(c.sha256) === c && !c.holders.has(peer.workerId) && !c.copying.has(peer.workerId) && !c.assigned.has(peer.workerId)) {
      oweDrop(state, peer.workerId, c.sha256);
    }
  }
}

/** A version is gone (abandoned or deleted): its pieces no longer hold their bytes alive. */
function releaseVersion(state: State, v: VersionRecord): void {
  for (const piece of v.pieces) {
    if (!piece) continue;
    const c = state.content.get(piece.sha256)!;
    if (v.status === "pending") settleAssignments(state, c, piece);
    if (v.status === "committed") {
      c.wanted = withCount(c.wanted, v.replicas, -1);
    }
    c.refs -= 1;
    if (c.refs === 0) retire(state, c);
    else recheck(state, c);
  }
  state.pendingUploads.delete(v.uploadId);
}

const sortedEntries = <T>(entries: Iterable<[string, T]>) => [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

/**
 * A version as the projection writes it: its keys in the order `newVersion` gives them, those
 * undefined left out (a reply carries them as keys otherwise). Made key by key: a loop over
 * `Object.entries` made the digest of 313,712 files 16% slower.
 */
function projectVersion(v: VersionState) {
  const projected: Partial<Record<keyof VersionState, unknown>> = { fileId: v.fileId, path: v.path, version: v.version, size: v.size, sha256: v.sha256, pieceSize: v.pieceSize, replicas: v.replicas, uploadId: v.uploadId };
  if (v.uploader !== undefined) projected.uploader = v.uploader;
  projected.createdAt = v.createdAt;
  if (v.stream !== undefined) projected.stream = v.stream;
  projected.status = v.status;
  projected.pieces = v.pieces.map((p) => ({ index: p.index, size: p.size, sha256: p.sha256, peers: p.peers, stored: p.stored }));
  projected.completePieces = v.completePieces;
  if (v.committedAt !== undefined) projected.committedAt = v.committedAt;
  if (v.reason !== undefined) projected.reason = v.reason;
  return projected;
}

function projectFile(f: FileState) {
  return {
    fileId: f.fileId,
    path: f.path,
    deleted: f.deleted,
    lastVersion: f.lastVersion,
    versions: Array.from({ length: f.versions.size }, (_, i) => projectVersion(f.versions.get(i + 1)!)), // by number
  };
}

function projectContent(c: ContentState) {
  return {
    sha256: c.sha256,
    size: c.size,
    refs: c.refs,
    wanted: [...c.wanted].sort(([a], [b]) => a - b),
    holders: [...c.holders].sort(),
    assigned: sortedEntries(c.assigned),
    copying: [...c.copying].sort(),
    failedAt: sortedEntries(c.failedAt),
  };
}

/**
 * A map's keys sorted by the default order (UTF-16 code units, as `<` compares strings):
 * several times faster than a comparator over its entries, which took most of a second at
 * 200,000 files.
 */
function sortedKeys(map: ReadonlyMap<string, unknown>): string[] {
  return [...map.keys()].sort();
}

function valuesByKey<T>(map: ReadonlyMap<string, T>): T[] {
  return sortedKeys(map).map((key) => map.get(key)!);
}

/** The projection's small fields (`files` and `content` are projected one by one, see below). */
function projectionHead(state: State) {
  return {
    lastSeq: state.lastSeq,
    rejected: { count: state.rejected.count, recent: state.rejected.recent.map((r) => ({ ...r })) },
    workers: valuesByKey(state.workers).map((w) => ({ ...w })),
  };
}

function projectionTail(state: State) {
  return {
    dropsOwed: sortedEntries(state.dropsOwed).map(([workerId, owed]) => ({ workerId, sha256s: [...owed].sort() })),
    retention: { ...state.retention },
  };
}

/** A plain, key-sorted picture of the state: what `dfs replay --json` prints and digests compare. */
export function projection(state: State) {
  return {
    ...projectionHead(state),
    files: valuesByKey(state.files).map(projectFile),
    content: valuesByKey(state.content).map(projectContent),
    ...projectionTail(state),
  };
}

/** Keys sorted a run at a time, then merged: the steps of `sortedKeysInSteps`. */
const SORTED_RUN = 16_384;

/**
 * `sortedKeys(map)` in steps that each take a few milliseconds (it yields "" between them):
 * sorting 200,000 keys at once held the event loop 0.1-0.4 s. Runs of SORTED_RUN keys are
 * sorted, then merged by taking the least of their heads each time.
 */
function* sortedKeysInSteps(map: ReadonlyMap<string, unknown>): Generator<"", string[]> {
  const runs: string[][] = [];
  let run: string[] = [];
  for (const key of map.keys()) {
    run.push(key);
    if (run.length === SORTED_RUN) {
      runs.push(run.sort());
      run = [];
      yield "";
    }
  }
  runs.push(run.sort());
  if (runs.length === 1) return runs[0]!;
  const sorted: string[] = [];
  const heads = runs.map(() => 0);
  while (sorted.length < map.size) {
    let least = -1;
    for (let r = 0; r < runs.length; r++) {
      if (heads[r]! < runs[r]!.length && (least < 0 || runs[r]![heads[r]!]! < runs[least]![heads[least]!]!)) least = r;
    }
    sorted.push(runs[least]![heads[least]!++]!);
    if (sorted.length % SORTED_RUN === 0) yield "";
  }
  return sorted;
}

/**
 * The text of `JSON.stringify(projection(state))` in parts, a file and a piece of content at
 * a time, without making it whole (hundreds of MB at 200,000 files).
 */
function* projectionText(state: State): Generator<string> {
  function* list<T>(map: ReadonlyMap<string, T>, project: (item: T) => unknown): Generator<string> {
    const keys = yield* sortedKeysInSteps(map);
    yield "[";
    for (let i = 0; i < keys.length; i++) yield `${i === 0 ? "" : ","}${JSON.stringify(project(map.get(keys[i]!)!))}`;
    yield "]";
  }
  const { lastSeq, rejected, workers } = projectionHead(state);
  yield `{"lastSeq":${JSON.stringify(lastSeq)},"rejected":${JSON.stringify(rejected)},"workers":${JSON.stringify(workers)},"files":`;
  yield* list(state.files, projectFile);
  yield ',"content":';
  yield* list(state.content, projectContent);
  const { dropsOwed, retention } = projectionTail(state);
  yield `,"dropsOwed":${JSON.stringify(dropsOwed)},"retention":${JSON.stringify(retention)}}`;
}

/** SHA-256 of `JSON.stringify(projection(state))`: equal digests mean equal tables. */
export function stateDigest(state: State): string {
  const hash = createHash("sha256");
  for (const part of projectionText(state)) hash.update(part);
  return hash.digest("hex");
}

/**
 * `stateDigest`, in slices of the event loop (about 2 s at 200,000 files on this machine):
 * the caller must not let the table change until it resolves.
 */
export async function stateDigestInSlices(state: State, slices = new Slices()): Promise<string> {
  const hash = createHash("sha256");
  for (const part of projectionText(state)) {
    hash.update(part);
    if (slices.due()) await slices.next();
  }
  return hash.digest("hex");
}
