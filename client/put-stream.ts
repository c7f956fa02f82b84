// A stream that can be read only once (stdin), put without touching the disk: its bytes are
// read into pieces, each hashed as it fills, declared to the master (`extend`) as soon as it
// is full, served to its workers from memory, and let go once its replicas are stored. At
// most a window of pieces is held, so memory does not grow with the stream; when the window
// is full, reading waits (and the pipe with it). At the end, `seal` says the size and the
// SHA-256 of the whole, and the version commits once every piece holds its replicas.
import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import { DfsError, ErrorCodes } from "../src/errors.js";
import type { PlannedPiece } from "../src/events.js";
import type { UploadSource } from "./upload-source.js";

/**
 * Default piece size of a stream, and the bytes of pieces it holds at most (but always 2
 * pieces, never more than 64). Measured (README, memory): a 512 MiB stream peaked at 138-141 MB
 * with 2 pieces of 4 MiB, 143-157 MB with 4, 161-183 MB with 4 of 8 MiB; the target is 150 MB.
 */
export const STREAM_PIECE_SIZE = 4 * 1024 * 1024;
const STREAM_WINDOW_BYTES = 8 * 1024 * 1024;
const MAX_WINDOW_PIECES = 64;
/**
 * A stream waiting for its input says it is still there this often, or three times within the
 * master's stream timeout when that is shorter (the master gives up on a quiet one).
 */
const KEEPALIVE_MS = 5_000;

/** Pieces a stream holds at most, at a piece size. */
function windowPieces(pieceSize: number): number {
  return Math.min(MAX_WINDOW_PIECES, Math.max(2, Math.floor(STREAM_WINDOW_BYTES / pieceSize)));
}

/** How a stream talks to the master about its upload: both calls are decisions that may be asked again. */
export interface StreamCalls {
  extend(pieces: PlannedPiece[]): Promise<void>;
  seal(content: { size: number; sha256: string }): Promise<void>;
}

export class StreamSource implements UploadSource {
  readonly declared = { streamed: true } as const;
  readonly small = false;
  readonly window: number;
  /** Pieces read and not yet stored everywhere, by index. */
  private readonly inMemory = new Map<number, Buffer>();
  private readonly whole = createHash("sha256");
  private size = 0;
  private pieces = 0;
  private sealed?: string;
  private closed = false;
  /** Wakes the reader when a piece is let go (or the upload ends). */
  private wake?: () => void;
  /** Declarations go one after the other, in piece order. */
  private declaring: Promise<void> = Promise.resolve();
  private declareFailed?: unknown;
  /** Rejects when a declaration fails, to end a feed that may be waiting for its input. */
  private readonly failed: Promise<never>;
  private fail!: (err: unknown) => void;
  private lastCall = Date.now();

  constructor(
    private readonly input: Readable,
    readonly path: string,
    readonly pieceSize: number,
    readonly replicas: number,
    private readonly calls: StreamCalls,
  ) {
    this.window = windowPieces(pieceSize);
    this.failed = new Promise<never>((_, reject) => (this.fail = reject));
    this.failed.catch(() => undefined);
  }

  async frame(piece: number, offset: number, length: number): Promise<Uint8Array> {
    const bytes = this.inMemory.get(piece);
    if (!bytes || offset + length > bytes.length) throw new DfsError(ErrorCodes.NOT_FOUND, `the uploader does not hold bytes [${offset}, +${length}) of piece ${piece}`);
    return bytes.subarray(offset, offset + length);
  }

  async feed(quietMs?: number): Promise<void> {
    const every = Math.min(KEEPALIVE_MS, quietMs === undefined ? Infinity : quietMs / 3);
    const keepalive = setInterval(() => {
      if (Date.now() - this.lastCall >= every) this.declare([]);
    }, every / 5);
    try {
      await Promise.race([
        this.read().catch((err: unknown) => {
          throw err instanceof DfsError ? err : new DfsError(ErrorCodes.LOCAL_IO, `cannot read the input: ${(err as Error).message}`, { cause: err });
        }),
        this.failed,
      ]);
    } finally {
      clearInterval(keepalive);
    }
  }

  /** Read the input to its end, piece by piece, then seal. */
  private async read(): Promise<void> {
    let piece: Buffer | undefined;
    let filled = 0;
    let hash = createHash("sha256");
    for await (const chunk of this.input as AsyncIterable<Buffer>) {
      this.whole.update(chunk);
      this.size += chunk.length;
      for (let offset = 0; offset < chunk.length; ) {
        if (!piece) {
          await this.room();
          piece = Buffer.allocUnsafe(this.pieceSize);
        }
        const take = Math.min(chunk.length - offset, this.pieceSize - filled);
        chunk.copy(piece, filled, offset, offset + take);
        hash.update(chunk.subarray(offset, offset + take));
        filled += take;
        offset += take;
        if (filled === this.pieceSize) {
          this.declarePiece(piece, hash.digest("hex"));
          piece = undefined;
          filled = 0;
          hash = createHash("sha256");
        }
      }
      if (this.closed) return;
    }
    if (piece) this.declarePiece(piece.subarray(0, filled), hash.digest("hex"));
    await this.declaring;
    this.throwIfFailed();
    this.sealed = this.whole.digest("hex");
    await this.calls.seal({ size: this.size, sha256: this.sealed });
  }

  held(): number[] {
    return [...this.inMemory.keys()];
  }

  release(complete: readonly number[]): void {
    for (const index of complete) this.inMemory.delete(index);
    this.wake?.();
  }

  waitingForInput(): boolean {
    return this.inMemory.size === 0;
  }

  progress(now: { storedBytes: number }) {
    // The size is not known before the end: bytes stored (every replica) of bytes read so far.
    return { phase: "stream" as const, done: Math.round(now.storedBytes / this.replicas), total: this.size };
  }

  summary() {
    return { size: this.size, sha256: this.sealed ?? "", pieces: this.pieces };
  }

  close(): void {
    this.closed = true;
    this.inMemory.clear();
    this.wake?.();
  }

  /** Until the window has room for one more piece. */
  private async room(): Promise<void> {
    while (this.inMemory.size >= this.window) {
      this.throwIfFailed();
      if (this.closed) throw new DfsError(ErrorCodes.UPLOAD_ABANDONED, `upload of ${this.path} is over`);
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    this.throwIfFailed();
    if (this.closed) throw new DfsError(ErrorCodes.UPLOAD_ABANDONED, `upload of ${this.path} is over`);
  }

  private declarePiece(bytes: Buffer, sha256: string): void {
    const index = this.pieces++;
    this.inMemory.set(index, bytes);
    this.declare([{ index, size: bytes.length, sha256 }]);
  }

  /** Say pieces (or, with none, that we are still here) after those said before. */
  private declare(pieces: PlannedPiece[]): void {
    this.lastCall = Date.now();
    this.declaring = this.declaring.then(async () => {
      if (this.declareFailed !== undefined || this.closed) return;
      try {
        await this.calls.extend(pieces);
      } catch (err) {
        this.declareFailed = err;
        this.fail(err);
        this.wake?.();
      }
    });
  }

  private throwIfFailed(): void {
    if (this.declareFailed !== undefined) throw this.declareFailed;
  }
}
