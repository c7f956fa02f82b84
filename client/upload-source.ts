// What an upload serves and declares. A file's content is hashed before the version is
// created (its size and every piece's SHA-256 go with `create`); a stream's (stdin) is read,
// hashed and declared piece by piece while workers store it (see put-stream.ts). `upload` in
// client.ts drives either the same way: serve frames, create, wait for the commit.
import { DfsError, ErrorCodes } from "../src/errors.js";
import type { UploadProgress } from "../src/queries.js";
import type { ContentHashes } from "./piece-hasher.js";
import type { Progress } from "./progress.js";

/** The content once known: a file's from the start, a stream's once it is sealed. */
export interface ContentSummary {
  size: number;
  sha256: string;
  pieces: number;
}

export interface UploadSource {
  readonly path: string;
  readonly pieceSize: number;
  readonly replicas: number;
  /** The `create` request's fields besides `uploadId`, `path`, `pieceSize` and `replicas`. */
  readonly declared: Record<string, unknown>;
  /** Small enough that the create's answer waits for the commit (usually stored before a `wait` could be asked). */
  readonly small: boolean;
  /** Bytes [offset, offset + length) of a piece, for a worker's pull; a coded error for bytes it does not have. */
  frame(piece: number, offset: number, length: number): Promise<Uint8Array>;
  /**
   * Once the version is created, beside the wait for its commit: a stream reads, declares and
   * seals here, and says it is still there well within `quietMs` (the master gives up on a
   * stream quiet that long). Its failure ends the upload.
   */
  feed(quietMs?: number): Promise<void>;
  /** Pieces a `wait` asks about: those held in memory until their replicas are stored. */
  held(): number[];
  /** These pieces hold all their replicas: their bytes may go. */
  release(complete: readonly number[]): void;
  /** Waiting for input, not for the store: the idle timeout does not run meanwhile. */
  waitingForInput(): boolean;
  progress(now: UploadProgress): Progress;
  summary(): ContentSummary;
  /** The upload is over, however it ended: stop feeding, let go of every byte held. */
  close(): void;
}

/** The bytes of a content at a position (a frame a worker pulls). */
export type ReadAt = (position: number, length: number) => Promise<Uint8Array>;

/** Contents up to this size: the create's answer waits for the commit. */
export const SMALL_FILE_BYTES = 1024 * 1024;

/** A content hashed before the upload (a file), read at any position as workers pull it. */
export function declaredSource(plan: ContentHashes & { path: string; pieceSize: number; replicas: number }, readAt: ReadAt): UploadSource {
  const summary = { size: plan.size, sha256: plan.sha256, pieces: plan.pieceHashes.length / 32 };
  return {
    path: plan.path,
    pieceSize: plan.pieceSize,
    replicas: plan.replicas,
    declared: { size: plan.size, sha256: plan.sha256, pieceHashes: plan.pieceHashes },
    small: plan.size <= SMALL_FILE_BYTES,
    async frame(piece, offset, length) {
      const start = piece * plan.pieceSize;
      const pieceEnd = Math.min(plan.size, start + plan.pieceSize);
      if (start >= plan.size || start + offset + length > pieceEnd) throw new DfsError(ErrorCodes.BAD_REQUEST, `piece ${piece} has no bytes [${offset}, +${length})`);
      return readAt(start + offset, length);
    },
    feed: async () => undefined,
    held: () => [],
    release: () => undefined,
    waitingForInput: () => false,
    // Progress counts file bytes: a piece's bytes count in full once all its replicas are stored.
    progress: (now) => ({ phase: "upload", done: Math.round(now.storedBytes / plan.replicas), total: plan.size }),
    summary: () => summary,
    close: () => undefined,
  };
}
