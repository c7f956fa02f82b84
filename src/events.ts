// The event catalogue. Events are facts: past-tense names, one shape each, never reshaped
// (a new need gets a new event type). Every event is a CBOR map with `type` and `at`
// (ms since epoch). The README lists them with their fields.

export type Role = "major" | "minor";

export interface PlannedPiece {
  readonly index: number;
  readonly size: number;
  readonly sha256: string;
}

export interface AssignedPiece {
  readonly piece: number;
  readonly size: number;
  readonly sha256: string;
  readonly role: Role;
  /** Minors only: the piece's major, to pull the bytes from once it holds them (pipelined replication). */
  readonly pullFrom?: string;
}

/** A live worker announced itself with a heartbeat. */
export interface WorkerJoined {
  readonly type: "WorkerJoined";
  readonly at: number;
  readonly workerId: string;
}

/** A worker stopped sending heartbeats; it gets no new pieces until it joins again. */
export interface WorkerLost {
  readonly type: "WorkerLost";
  readonly at: number;
  readonly workerId: string;
  readonly reason: string;
}

/** A new version of a path was opened for upload. `sha256` is what the client declared. */
export interface FileCreated {
  readonly type: "FileCreated";
  readonly at: number;
  readonly fileId: string;
  readonly path: string;
  readonly version: number;
  readonly size: number;
  readonly sha256: string;
  readonly pieceSize: number;
  readonly replicas: number;
  readonly uploadId: string;
}

/** Pieces `pieces[i].index` of a version, with their size and declared SHA-256. */
export interface PiecesPlanned {
  readonly type: "PiecesPlanned";
  readonly at: number;
  readonly fileId: string;
  readonly version: number;
  readonly pieces: readonly PlannedPiece[];
}

/** Pieces of a version a worker must store; published on that worker's assignment subject. */
export interface PeersAssigned {
  readonly type: "PeersAssigned";
  readonly at: number;
  readonly fileId: string;
  readonly version: number;
  readonly uploadId: string;
  readonly workerId: string;
  readonly pieces: readonly AssignedPiece[];
}

/** A worker confirmed it holds a piece's bytes, checked against their SHA-256. */
export interface PieceStored {
  readonly type: "PieceStored";
  readonly at: number;
  readonly fileId: string;
  readonly version: number;
  readonly piece: number;
  readonly workerId: string;
  readonly sha256: string;
}

/** Every piece of a version holds its replicas: the version is visible from now on. */
export interface FileCommitted {
  readonly type: "FileCommitted";
  readonly at: number;
  readonly fileId: string;
  readonly path: string;
  readonly version: number;
  readonly size: number;
  readonly sha256: string;
}

/** A version was given up before it committed; it is never visible. */
export interface UploadAbandoned {
  readonly type: "UploadAbandoned";
  readonly at: number;
  readonly fileId: string;
  readonly path: string;
  readonly version: number;
  readonly code: string;
  readonly reason: string;
}

/** A whole file (every version), or with `version` only that one, was deleted. */
export interface FileDeleted {
  readonly type: "FileDeleted";
  readonly at: number;
  readonly fileId: string;
  readonly path: string;
  readonly version?: number;
}

/** A worker may forget these pieces: no live version needs them there any more. */
export interface PiecesDropped {
  readonly type: "PiecesDropped";
  readonly at: number;
  readonly workerId: string;
  readonly sha256s: readonly string[];
}

export type DfsEvent =
  | WorkerJoined
  | WorkerLost
  | FileCreated
  | PiecesPlanned
  | PeersAssigned
  | PieceStored
  | FileCommitted
  | UploadAbandoned
  | FileDeleted
  | PiecesDropped;

export type EventType = DfsEvent["type"];

export const EVENT_TYPES: readonly EventType[] = [
  "WorkerJoined",
  "WorkerLost",
  "FileCreated",
  "PiecesPlanned",
  "PeersAssigned",
  "PieceStored",
  "FileCommitted",
  "UploadAbandoned",
  "FileDeleted",
  "PiecesDropped",
];

/** Most entries one PiecesPlanned or PeersAssigned event carries, so an event stays far below max_payload. */
export const PIECES_PER_EVENT = 2000;
