// The read path: a version's pieces read from workers into a local file or a stream. Memory is
// bounded by frames, not pieces: a piece's frames are asked a few at a time, hashed in order as
// they come and written where they belong at once, so a get holds a few frames per piece in
// flight whatever the file's or the piece's size. Every piece is checked against its SHA-256
// before its bytes count: a piece whose replica fails, serves bad bytes or does not answer in
// time is read again from the next, over what the bad one wrote; one that is slow is raced by
// the next (a hedged read); one that served bad bytes is asked to check its copy. A local file
// is a temporary file renamed once every piece is verified; a stream gets each piece only once
// it is verified, from a spool file. Every way a get can end is one DfsError, after everything
// it started has stopped and its temporary files are gone.
import { createHash } from "node:crypto";
import { setMaxListeners } from "node:events";
import { open, rename, rm, type FileHandle } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { nuid, type NatsConnection } from "@nats-io/transport-node";
import type { Catalogue } from "../streams/catalogue.js";
import { DfsError, ErrorCodes, asDfsError } from "../src/errors.js";
import { fetchInOrder } from "../src/in-order.js";
import { Limiter } from "../src/limiter.js";
import { baseName } from "../src/paths.js";
import { frameSizeFor, type VerifyReply } from "../src/protocol.js";
import type { Location, PieceLocation } from "../src/queries.js";
import { call, callBytes } from "../src/rpc.js";
import type { Progress } from "./progress.js";

export interface GetOptions {
  version?: number;
  /**
   * Pieces read at once (default 4). Each holds at most a few frames in memory; a get to a
   * stream also spools up to this many pieces on disk (in the system's temporary folder).
   */
  parallelPieces?: number;
  onProgress?: (p: Progress) => void;
  /** Stop the get: it rejects with INTERRUPTED (or with the reason, when that is a DfsError) and leaves no temporary file. */
  signal?: AbortSignal;
}

export interface GetResult {
  path: string;
  version: number;
  size: number;
  sha256: string;
  /** Pieces read from another replica after one failed, served bad bytes or did not answer in time. */
  failovers: number;
  /** Pieces read from a replica asked because the one before it was slow. */
  hedges: number;
}

const DEFAULT_PARALLEL_PIECES = 4;
/** Frames of one piece asked of a replica at once, and so the most of them held: the window of in-order hashing. */
const FRAMES_IN_FLIGHT = 4;
/** Landed bytes are read back (to hash the whole file, and to stream them out) this much at a time. */
const READ_BACK_BYTES = 1024 * 1024;
/**
 * A frame request waits for its bytes, and those requested before it, at 10 MB/s, at least
 * a second, plus some slack: a replica that does not answer costs that, not the 10 s default.
 */
const ASSUMED_BYTES_PER_MS = 10_000;
const FRAME_TIMEOUT_FLOOR_MS = 1_000;
const FRAME_TIMEOUT_SLACK_MS = 500;
/** A piece not in after the 95th percentile of recent piece reads (at least 100 ms) is asked of the next replica too. */
const HEDGE_PERCENTILE = 0.95;
const HEDGE_FLOOR_MS = 100;
const HEDGE_SAMPLES = 32;
/** Below this many samples, the hedge delay is the time the piece takes at the assumed rate. */
const HEDGE_MIN_SAMPLES = 4;
/** A replica that timed out is asked once more, this many times as patiently, once no other is left to ask. */
const PATIENT_RETRY_FACTOR = 4;
/** How long a worker asked to check its copy is waited for; nobody waits on the answer. */
const VERIFY_TIMEOUT_MS = 10_000;

/** What a get needs of a client: its connection, its catalogue, and the master's answer to where a version's pieces are. */
export interface PieceSource {
  readonly nc: NatsConnection;
  readonly cat: Catalogue;
  locate(path: string, version?: number): Promise<Location>;
}

/**
 * Where a piece's bytes land as they come, before the piece is verified: a file written at
 * positions (the temporary file itself, or a spool for a stream), read back once it counts.
 */
class Landing {
  private constructor(
    private readonly file: FileHandle,
    private readonly what: string,
    /** Where a piece's bytes start in the file. */
    private readonly placeOf: (piece: PieceLocation) => number,
  ) {}

  /** The temporary file of a get into `dest`: each piece lands where it belongs in the file. */
  static async intoFile(temp: string, dest: string, pieceSize: number): Promise<Landing> {
    return new Landing(await open(temp, "wx+"), `cannot write ${dest}`, (piece) => piece.index * pieceSize);
  }

  /**
   * A spool of `slots` pieces for a get to a stream: piece i lands in slot i mod slots, which
   * is free, since a piece keeps its slot until it went out and they go out in order. The file
   * is unlinked at once: nothing is left behind, however the get ends.
   */
  static async spool(pieceSize: number, slots: number): Promise<Landing> {
    const path = join(tmpdir(), `dfs-get-${nuid.next()}.spool`);
    const file = await open(path, "wx+");
    await rm(path, { force: true });
    return new Landing(file, "cannot spool the output", (piece) => (piece.index % slots) * pieceSize);
  }

  async write(piece: PieceLocation, offset: number, bytes: Uint8Array): Promise<void> {
    await this.file.write(bytes, 0, bytes.length, this.placeOf(piece) + offset).catch((err: Error) => Promise.reject(this.failure(err)));
  }

  /**
   * A piece's bytes as they landed, in order, a buffer at a time: one buffer reused (`onChunk`
   * must be done with it when it settles), or a new one each time when `handedOn` (a stream
   * may keep what it was given).
   */
  async readBack(piece: PieceLocation, onChunk: (chunk: Buffer) => Promise<void> | void, handedOn = false): Promise<void> {
    const size = Math.min(READ_BACK_BYTES, piece.size);
    let buffer = Buffer.allocUnsafe(size);
    const start = this.placeOf(piece);
    for (let done = 0; done < piece.size; ) {
      if (handedOn && done > 0) buffer = Buffer.allocUnsafe(size);
      const { bytesRead } = await this.file.read(buffer, 0, Math.min(buffer.length, piece.size - done), start + done).catch((err: Error) => Promise.reject(this.failure(err)));
      if (bytesRead === 0) throw new DfsError(ErrorCodes.LOCAL_IO, `${this.what}: piece ${piece.index} is shorter than it was written`);
      await onChunk(buffer.subarray(0, bytesRead));
      done += bytesRead;
    }
  }

  /** Whether the landed bytes of a piece hash to its SHA-256. */
  async holds(piece: PieceLocation): Promise<boolean> {
    const hash = createHash("sha256");
    await this.readBack(piece, (chunk) => void hash.update(chunk));
    return hash.digest("hex") === piece.sha256;
  }

  /** Close the file; a close waits for the writes under way, so nothing lands after it. */
  async close(): Promise<void> {
    await this.file.close().catch((err: Error) => Promise.reject(this.failure(err)));
  }

  private failure(err: Error): DfsError {
    return new DfsError(ErrorCodes.LOCAL_IO, `${this.what}: ${err.message}`, { cause: err });
  }
}

/**
 * Read a file into `dest`, a local path or a writable stream. A local file appears only
 * complete and verified: bytes go to a temporary name renamed at the end.
 */
export async function getFile(source: PieceSource, remotePath: string, dest: string | NodeJS.WritableStream, opts: GetOptions = {}): Promise<GetResult> {
  const { nc, cat } = source;
  // Aborted by the caller or by the first failure; its reason is the get's one error.
  const stop = new AbortController();
  // Every piece, replica and write in flight listens to it: a few per piece in flight, more than the default warning allows.
  setMaxListeners(0, stop.signal);
  const onInterrupt = () => stop.abort(interruption(opts.signal?.reason, `get of ${remotePath}`));
  if (opts.signal?.aborted) onInterrupt();
  opts.signal?.addEventListener("abort", onInterrupt, { once: true });
  const parallel = Math.max(1, opts.parallelPieces ?? DEFAULT_PARALLEL_PIECES);
  let temp: string | undefined;
  let landing: Landing | undefined;
  const onStreamError = (err: unknown) => stop.abort(new DfsError(ErrorCodes.LOCAL_IO, `cannot write the output: ${asDfsError(err).message}`, { cause: err }));
  try {
    const where = await abortable(source.locate(remotePath, opts.version), stop.signal);
    if (typeof dest === "string") {
      temp = join(dirname(dest), `.${baseName(dest)}.dfs-${nuid.next()}.part`);
      try {
        landing = await Landing.intoFile(temp, dest, where.pieceSize);
      } catch (err) {
        temp = undefined; // not ours to remove
        throw new DfsError(ErrorCodes.LOCAL_IO, `cannot write ${dest}: ${(err as Error).message}`, { cause: err });
      }
    } else {
      // A stream that fails (stdout closed by its reader) stops the get instead of crashing the process.
      dest.on("error", onStreamError);
      landing = await Landing.spool(where.pieceSize, parallel).catch((err: Error) => {
        throw new DfsError(ErrorCodes.LOCAL_IO, `cannot spool the output in ${tmpdir()}: ${err.message}`, { cause: err });
      });
    }
    const land = landing;
    const out = typeof dest === "string" ? undefined : dest;
    const reader = new PieceReader(nc, cat, stop.signal);
    const whole = createHash("sha256");
    let written = 0;
    // A piece keeps its slot until its bytes were read back in file order, so at most `parallel`
    // pieces are under way (a stream's spool has that many slots), and the slots go out in
    // piece order, so the piece a read-back waits for is always under way.
    const pieces = new Limiter(parallel);
    let previous: Promise<void> = Promise.resolve();
    const reads = where.pieces.map((piece) => {
      const turn = previous;
      const done = pieces.run(async () => {
        stop.signal.throwIfAborted();
        const { overlapped } = await reader.read(piece, land);
        // Replicas raced over the same bytes: what landed is checked, and read again alone if it is not right.
        if (overlapped && !(await land.holds(piece))) await reader.read(piece, land, { hedge: false });
        await abortable(turn, stop.signal);
        await land.readBack(piece, async (chunk) => {
          stop.signal.throwIfAborted();
          whole.update(chunk);
          if (out) await abortable(writeTo(out, chunk), stop.signal);
        }, out !== undefined);
        written += piece.size;
        opts.onProgress?.({ phase: "download", done: written, total: where.size });
      });
      done.catch((err) => stop.abort(asDfsError(err)));
      previous = done;
      return done;
    });
    await Promise.allSettled(reads);
    stop.signal.throwIfAborted();
    const sha256 = whole.digest("hex");
    if (sha256 !== where.sha256) throw new DfsError(ErrorCodes.CHECKSUM_MISMATCH, `${where.path} v${where.version} reads back as ${sha256}, committed as ${where.sha256}`);
    landing = undefined;
    await land.close();
    if (temp) {
      await rename(temp, dest as string).catch((err: Error) => {
        throw new DfsError(ErrorCodes.LOCAL_IO, `cannot write ${dest as string}: ${err.message}`, { cause: err });
      });
      temp = undefined;
    }
    return { path: where.path, version: where.version, size: where.size, sha256, failovers: reader.failovers, hedges: reader.hedges };
  } catch (err) {
    throw asDfsError(err);
  } finally {
    opts.signal?.removeEventListener("abort", onInterrupt);
    if (typeof dest !== "string") dest.off("error", onStreamError);
    // close waits for a write still under way, so the file is removed after its last byte lands.
    if (landing) await landing.close().catch(() => undefined);
    if (temp) await rm(temp, { force: true }).catch(() => undefined);
  }
}

/** One replica asked for a piece, and how that ended. */
interface Attempt {
  workerId: string;
  /** Frame timeouts are this many times the usual. */
  patience: number;
  /** Asked because the replica before it was slow, not because it failed. */
  hedge: boolean;
  startedAt: number;
  stop: AbortController;
  settled: boolean;
  /** It wrote bytes where the piece lands. */
  wrote: boolean;
  /** Attempts at the same piece that ran while it did. */
  rivals: Attempt[];
  /** Settles once its last write landed; never rejects. */
  outcome: Promise<{ verified: true } | { error: DfsError }>;
}

/** Reads verified pieces for one get, learning as it goes which replicas are slow or failing. */
class PieceReader {
  failovers = 0;
  hedges = 0;
  private readonly frameSize: number;
  /** Frame bytes requested and not yet in: a frame's timeout allows for those before it. */
  private bytesInFlight = 0;
  /** Durations of recent piece reads (ms), for the hedge delay. */
  private readonly recentReads: number[] = [];
  /** Workers that failed or were outrun during this get: asked last from then on. */
  private readonly askLast = new Set<string>();
  /** Copies already reported bad, as `workerId sha256`: each is reported once. */
  private readonly reported = new Set<string>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly cat: Catalogue,
    private readonly signal: AbortSignal,
  ) {
    this.frameSize = frameSizeFor(nc.info?.max_payload ?? 1024 * 1024);
  }

  /**
   * Land a piece's bytes from the first replica to serve bytes that hash right. A replica that
   * fails is replaced at once, its successor writing over what it wrote; one that takes longer
   * than the hedge delay gets company (unless `hedge` is false); one that timed out is asked
   * again, patiently, when no other is left (it may only be busy). Resolves once every replica
   * asked has stopped writing; `overlapped` says whether replicas wrote at the same time, so
   * that the landed bytes may be a mix of theirs (to be checked before they count).
   */
  async read(piece: PieceLocation, landing: Landing, opts: { hedge?: boolean } = {}): Promise<{ overlapped: boolean }> {
    const winner = await this.race(piece, landing, opts.hedge !== false);
    // Read after every rival stopped: one may have written after the winner was known.
    return { overlapped: winner.rivals.some((rival) => rival.wrote) };
  }

  /** The attempt whose bytes hashed right (see `read`), once every attempt has stopped. */
  private async race(piece: PieceLocation, landing: Landing, hedging: boolean): Promise<Attempt> {
    const preferred = [...piece.workers.filter((w) => !this.askLast.has(w)), ...piece.workers.filter((w) => this.askLast.has(w))];
    const toAsk = preferred.map((workerId) => ({ workerId, patience: 1 }));
    const asked: Attempt[] = [];
    const errors: string[] = [];
    const ask = (hedge: boolean) => {
      const { workerId, patience } = toAsk[asked.length]!;
      const stop = new AbortController();
      const unlink = abortWith(this.signal, stop);
      const rivals = asked.filter((other) => !other.settled);
      const attempt: Attempt = { workerId, patience, hedge, startedAt: Date.now(), stop, settled: false, wrote: false, rivals, outcome: Promise.resolve({ verified: true }) };
      for (const rival of rivals) rival.rivals.push(attempt);
      const land = (offset: number, frame: Uint8Array) => {
        attempt.wrote = true;
        return landing.write(piece, offset, frame);
      };
      attempt.outcome = this.readFrom(workerId, piece, patience, stop.signal, land).then(
        () => ({ verified: true as const }),
        (err) => ({ error: asDfsError(err) }),
      );
      void attempt.outcome.finally(unlink);
      asked.push(attempt);
    };
    try {
      for (;;) {
        const running = asked.filter((a) => !a.settled);
        if (running.length === 0) {
          if (asked.length === toAsk.length) {
            const why = errors.length > 0 ? errors.join("; ") : "no replica holds it";
            throw new DfsError(ErrorCodes.PIECE_UNAVAILABLE, `piece ${piece.index} could not be read from any replica (${why})`);
          }
          ask(false);
          continue;
        }
        let hedgeTimer: NodeJS.Timeout | undefined;
        const hedgeDue =
          hedging && asked.length < toAsk.length ? [new Promise<"hedge">((resolve) => (hedgeTimer = setTimeout(() => resolve("hedge"), this.hedgeDelayMs(piece.size))))] : [];
        let first: { attempt: Attempt; outcome: Awaited<Attempt["outcome"]> } | "hedge";
        try {
          const answers = running.map((attempt) => attempt.outcome.then((outcome) => ({ attempt, outcome })));
          first = await abortable(Promise.race([...answers, ...hedgeDue]), this.signal);
        } finally {
          clearTimeout(hedgeTimer);
        }
        if (first === "hedge") {
          ask(true);
          continue;
        }
        const { attempt, outcome } = first;
        attempt.settled = true;
        if ("verified" in outcome) {
          this.noteRead(Date.now() - attempt.startedAt);
          // Those asked before the winner and still at it were slower: asked last from now on.
          for (const other of asked) if (other !== attempt && !other.settled) this.askLast.add(other.workerId);
          if (errors.length > 0) this.failovers += 1;
          else if (attempt.hedge) this.hedges += 1;
          return attempt;
        }
        errors.push(`${attempt.workerId}: ${outcome.error.message}`);
        this.askLast.add(attempt.workerId);
        if (outcome.error.code === ErrorCodes.TIMEOUT && attempt.patience === 1) toAsk.push({ workerId: attempt.workerId, patience: PATIENT_RETRY_FACTOR });
        if (outcome.error.code === ErrorCodes.CHECKSUM_MISMATCH) this.reportBadCopy(attempt.workerId, piece.sha256);
      }
    } finally {
      for (const attempt of asked) attempt.stop.abort(new DfsError(ErrorCodes.INTERRUPTED, `piece ${piece.index} is settled`));
      // Nothing of this piece may land after it is settled: wait for the losers' last writes.
      await Promise.all(asked.map((attempt) => attempt.outcome));
    }
  }

  /**
   * A piece from one worker: its frames asked a few at a time, hashed in order as they come
   * and handed to `land`, checked against the piece's SHA-256 at the end. Memory holds at most
   * FRAMES_IN_FLIGHT frames (those that came ahead of the next one to hash).
   */
  private async readFrom(workerId: string, piece: PieceLocation, patience: number, signal: AbortSignal, land: (offset: number, frame: Uint8Array) => Promise<void>): Promise<void> {
    const hash = createHash("sha256");
    await fetchInOrder(
      Math.ceil(piece.size / this.frameSize),
      FRAMES_IN_FLIGHT,
      async (index, frameSignal) => {
        const offset = index * this.frameSize;
        const length = Math.min(this.frameSize, piece.size - offset);
        const frame = await this.readFrame(workerId, { sha256: piece.sha256, offset, length }, patience, frameSignal);
        if (frame.length !== length) throw new DfsError(ErrorCodes.CHECKSUM_MISMATCH, `worker ${workerId} sent ${frame.length} bytes at ${offset}, not ${length}`);
        return frame;
      },
      async (frame, index) => {
        hash.update(frame);
        await land(index * this.frameSize, frame);
      },
      signal,
    );
    const actual = hash.digest("hex");
    if (actual !== piece.sha256) throw new DfsError(ErrorCodes.CHECKSUM_MISMATCH, `worker ${workerId} sent bytes that hash to ${actual}`);
  }

  private async readFrame(workerId: string, request: { sha256: string; offset: number; length: number }, patience: number, signal: AbortSignal): Promise<Uint8Array> {
    this.bytesInFlight += request.length;
    try {
      const timeoutMs = patience * (Math.max(FRAME_TIMEOUT_FLOOR_MS, this.bytesInFlight / ASSUMED_BYTES_PER_MS) + FRAME_TIMEOUT_SLACK_MS);
      return await abortable(callBytes(this.nc, this.cat.workerRpc(workerId, "read"), request, Math.ceil(timeoutMs)), signal);
    } finally {
      this.bytesInFlight -= request.length;
    }
  }

  private noteRead(ms: number): void {
    this.recentReads.push(ms);
    if (this.recentReads.length > HEDGE_SAMPLES) this.recentReads.shift();
  }

  /** How long the replicas asked so far get before the next one is asked too. */
  private hedgeDelayMs(size: number): number {
    if (this.recentReads.length < HEDGE_MIN_SAMPLES) return HEDGE_FLOOR_MS + size / ASSUMED_BYTES_PER_MS;
    const sorted = [...this.recentReads].sort((a, b) => a - b);
    return Math.max(HEDGE_FLOOR_MS, sorted[Math.ceil(HEDGE_PERCENTILE * sorted.length) - 1]!);
  }

  /**
   * Ask a worker that served bad bytes to hash its copy again: it drops a bad copy, so that it
   * is never served again, and reports it to the master. Nobody waits for the answer.
   */
  private reportBadCopy(workerId: string, sha256: string): void {
    const key = `${workerId} ${sha256}`;
    if (this.reported.has(key)) return;
    this.reported.add(key);
    call<VerifyReply>(this.nc, this.cat.workerRpc(workerId, "verify"), { sha256 }, VERIFY_TIMEOUT_MS).catch(() => undefined);
  }
}

/** `work`, or the signal's reason as soon as it aborts (`work` goes on, its outcome ignored). */
function abortable<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    work.catch(() => undefined);
    return Promise.reject(signal.reason);
  }
  let onAbort: () => void = () => undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
  });
  return Promise.race([work, aborted]).finally(() => signal.removeEventListener("abort", onAbort));
}

/** Abort `child` when `parent` aborts, with the same reason; returns the undo. */
function abortWith(parent: AbortSignal, child: AbortController): () => void {
  const onAbort = () => child.abort(parent.reason);
  if (parent.aborted) onAbort();
  else parent.addEventListener("abort", onAbort, { once: true });
  return () => parent.removeEventListener("abort", onAbort);
}

/** An abort's reason as the error a caller gets: its own DfsError, else INTERRUPTED. */
function interruption(reason: unknown, what: string): DfsError {
  return reason instanceof DfsError ? reason : new DfsError(ErrorCodes.INTERRUPTED, `${what} was interrupted`, { cause: reason });
}

function writeTo(stream: NodeJS.WritableStream, bytes: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.write(bytes, (err) => (err ? reject(new DfsError(ErrorCodes.LOCAL_IO, `cannot write the output: ${err.message}`, { cause: err })) : resolve()));
  });
}
