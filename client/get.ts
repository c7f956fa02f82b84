// The read path: a version's pieces read from workers into a local file or a stream. Pieces
// are read a few at a time and written in order, so memory holds a few pieces whatever the
// file's size. Every piece is checked against its SHA-256. A replica that fails, serves bad
// bytes or does not answer in time is replaced by the next; one that is slow is raced by the
// next (a hedged read); one that served bad bytes is asked to check its copy. Every way a get
// can end is one DfsError, after everything it started has stopped and its temporary file is gone.
import { createHash } from "node:crypto";
import { setMaxListeners } from "node:events";
import { open, rename, rm, type FileHandle } from "node:fs/promises";
import { dirname, join } from "node:path";
import { nuid, type NatsConnection } from "@nats-io/transport-node";
import type { Catalogue } from "../streams/catalogue.js";
import { DfsError, ErrorCodes, asDfsError } from "../src/errors.js";
import { Limiter } from "../src/limiter.js";
import { baseName } from "../src/paths.js";
import { frameSizeFor, type VerifyReply } from "../src/protocol.js";
import type { Location, PieceLocation } from "../src/queries.js";
import { call, callBytes } from "../src/rpc.js";
import type { Progress } from "./progress.js";

export interface GetOptions {
  version?: number;
  /** Pieces read at once, and so the most held in memory (default 4). */
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
const FRAMES_IN_FLIGHT = 4;
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
  let temp: string | undefined;
  let out: FileHandle | undefined;
  let write: (bytes: Buffer, position: number) => Promise<void>;
  const onStreamError = (err: unknown) => stop.abort(new DfsError(ErrorCodes.LOCAL_IO, `cannot write the output: ${asDfsError(err).message}`, { cause: err }));
  try {
    const where = await abortable(source.locate(remotePath, opts.version), stop.signal);
    if (typeof dest === "string") {
      temp = join(dirname(dest), `.${baseName(dest)}.dfs-${nuid.next()}.part`);
      try {
        out = await open(temp, "wx");
      } catch (err) {
        temp = undefined; // not ours to remove
        throw new DfsError(ErrorCodes.LOCAL_IO, `cannot write ${dest}: ${(err as Error).message}`, { cause: err });
      }
      const file = out;
      write = (bytes, position) =>
        file.write(bytes, 0, bytes.length, position).then(
          () => undefined,
          (err: Error) => Promise.reject(new DfsError(ErrorCodes.LOCAL_IO, `cannot write ${dest}: ${err.message}`, { cause: err })),
        );
    } else {
      // A stream that fails (stdout closed by its reader) stops the get instead of crashing the process.
      dest.on("error", onStreamError);
      write = (bytes) => writeTo(dest, bytes);
    }
    const reader = new PieceReader(nc, cat, stop.signal);
    const whole = createHash("sha256");
    let written = 0;
    // A piece keeps its slot until it is written, so at most `parallel` pieces are in memory,
    // and the slots go out in piece order, so the piece a write waits for is always under way.
    const pieces = new Limiter(Math.max(1, opts.parallelPieces ?? DEFAULT_PARALLEL_PIECES));
    let previous: Promise<void> = Promise.resolve();
    const reads = where.pieces.map((piece) => {
      const turn = previous;
      const done = pieces.run(async () => {
        stop.signal.throwIfAborted();
        const bytes = await reader.read(piece);
        await abortable(turn, stop.signal);
        whole.update(bytes);
        await abortable(write(bytes, written), stop.signal);
        written += bytes.length;
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
    if (out && temp) {
      const [file, part] = [out, temp];
      out = undefined;
      await file.close().then(() => rename(part, dest as string)).catch((err: Error) => {
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
    if (out) await out.close().catch(() => undefined);
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
  outcome: Promise<{ bytes: Buffer } | { error: DfsError }>;
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
   * A piece's bytes, from the first replica to serve bytes that hash right. A replica that
   * fails is replaced at once; one that takes longer than the hedge delay gets company; one
   * that timed out is asked again, patiently, when no other is left (it may only be busy).
   */
  async read(piece: PieceLocation): Promise<Buffer> {
    const preferred = [...piece.workers.filter((w) => !this.askLast.has(w)), ...piece.workers.filter((w) => this.askLast.has(w))];
    const toAsk = preferred.map((workerId) => ({ workerId, patience: 1 }));
    const asked: Attempt[] = [];
    const errors: string[] = [];
    const ask = (hedge: boolean) => {
      const { workerId, patience } = toAsk[asked.length]!;
      const stop = new AbortController();
      const unlink = abortWith(this.signal, stop);
      const outcome = this.readFrom(workerId, piece, patience, stop.signal).then(
        (bytes) => ({ bytes }),
        (err) => {
          // Its frames still waiting for a slot need not start.
          stop.abort(asDfsError(err));
          return { error: asDfsError(err) };
        },
      );
      void outcome.finally(unlink);
      asked.push({ workerId, patience, hedge, startedAt: Date.now(), stop, settled: false, outcome });
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
          asked.length < toAsk.length ? [new Promise<"hedge">((resolve) => (hedgeTimer = setTimeout(() => resolve("hedge"), this.hedgeDelayMs(piece.size))))] : [];
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
        if ("bytes" in outcome) {
          this.noteRead(Date.now() - attempt.startedAt);
          // Those asked before the winner and still at it were slower: asked last from now on.
          for (const other of asked) if (other !== attempt && !other.settled) this.askLast.add(other.workerId);
          if (errors.length > 0) this.failovers += 1;
          else if (attempt.hedge) this.hedges += 1;
          return outcome.bytes;
        }
        errors.push(`${attempt.workerId}: ${outcome.error.message}`);
        this.askLast.add(attempt.workerId);
        if (outcome.error.code === ErrorCodes.TIMEOUT && attempt.patience === 1) toAsk.push({ workerId: attempt.workerId, patience: PATIENT_RETRY_FACTOR });
        if (outcome.error.code === ErrorCodes.CHECKSUM_MISMATCH) this.reportBadCopy(attempt.workerId, piece.sha256);
      }
    } finally {
      for (const attempt of asked) attempt.stop.abort(new DfsError(ErrorCodes.INTERRUPTED, `piece ${piece.index} is settled`));
    }
  }

  /** The whole piece from one worker, its frames a few at a time, checked against its SHA-256. */
  private async readFrom(workerId: string, piece: PieceLocation, patience: number, signal: AbortSignal): Promise<Buffer> {
    const bytes = Buffer.allocUnsafe(piece.size);
    const frames = new Limiter(FRAMES_IN_FLIGHT);
    const reads: Promise<void>[] = [];
    for (let offset = 0; offset < piece.size; offset += this.frameSize) {
      const length = Math.min(this.frameSize, piece.size - offset);
      reads.push(
        frames.run(async () => {
          signal.throwIfAborted();
          const frame = await this.readFrame(workerId, { sha256: piece.sha256, offset, length }, patience, signal);
          if (frame.length !== length) throw new DfsError(ErrorCodes.CHECKSUM_MISMATCH, `worker ${workerId} sent ${frame.length} bytes at ${offset}, not ${length}`);
          bytes.set(frame, offset);
        }),
      );
    }
    await Promise.all(reads);
    const actual = createHash("sha256").update(bytes).digest("hex");
    if (actual !== piece.sha256) throw new DfsError(ErrorCodes.CHECKSUM_MISMATCH, `worker ${workerId} sent bytes that hash to ${actual}`);
    return bytes;
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
