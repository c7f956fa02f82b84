// The worker process: reads its own assignment subject through a durable consumer, pulls
// piece bytes from the uploader (a major) or from the piece's major (a minor), checks them
// against their SHA-256, keeps them in LevelDB and confirms through JetStream. Serves reads
// of the pieces it holds.
import { createHash } from "node:crypto";
import { statfs } from "node:fs/promises";
import { jetstream, type ConsumerMessages, type JsMsg, type JetStreamClient } from "@nats-io/jetstream";
import { nuid, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { ASSIGNMENT_ACK_WAIT_MS, catalogue, type Catalogue } from "../streams/catalogue.js";
import { consumerExists } from "../streams/provision.js";
import { decodeEvent, encode } from "../src/codec.js";
import { requireStore, type RoleConnections } from "../src/connection.js";
import { PULL_EXPIRES_MS, throughFailover } from "../src/failover.js";
import { Watchers } from "../src/watchers.js";
import { DfsError, ErrorCodes, asDfsError, clipText, reportFatal } from "../src/errors.js";
import { uploaderOf, type AssignedPiece, type CopiesOrdered, type PeersAssigned, type PiecesDropped, type UploadsAssigned } from "../src/events.js";
import {
  InventoryRequest,
  MAX_REPORTS,
  ReadRequest,
  ScrubRequest,
  VerifyRequest,
  frameSizeFor,
  parse,
  type Confirmation,
  type CopyConfirmation,
  type CorruptReport,
  type InventoryPage,
  type ReportBatch,
  type VerifyReply,
  type WorkerReport,
  type WorkerStatus,
} from "../src/protocol.js";
import { call, callBytes, serve, serveBytes } from "../src/rpc.js";
import { Scrubber, type CheckOutcome, type ScrubPage } from "./scrub.js";
import { PieceStore } from "./store.js";
import { SMALL_PULL_BYTES, SmallPulls } from "./small-pulls.js";
import { Batcher } from "../src/batcher.js";
import { Limiter } from "../src/limiter.js";
import { fetchInOrder } from "../src/in-order.js";

export interface WorkerOptions {
  id: string;
  dataDir: string;
  prefix?: string;
  heartbeatMs?: number;
  /**
   * Pieces pulled at once, in big pieces: the bytes they hold may be four big pieces' frames
   * in flight, and many small pieces fit in as much (at most 64 times as many).
   */
  parallelPieces?: number;
  /** Frames of one piece requested at once. */
  framesInFlight?: number;
  /** Bytes a second the background scrub hashes again (0: off). */
  scrubBytesPerSecond?: number;
  log?: (line: string) => void;
  /** The worker can no longer read its assignments (default: throw). */
  onFatal?: (err: DfsError) => void;
}

const PULL_ATTEMPTS = 4;
const INVENTORY_PAGE = 2_000;
const SCRUB_PAGE = 64;
/** Background scrub pace: a terabyte a day, about. */
export const DEFAULT_SCRUB_RATE = 16 * 1024 * 1024;
const PULL_TIMEOUT_MS = 5_000;
const DEAD_UPLOADS_KEPT = 1_000;
/** How many small pieces may be pulled at once in the room of one big piece. */
const SMALL_PIECES_PER_BIG = 64;
const STOP_GRACE_MS = 2_000;
/** How long a minor waits for the piece's major to hold it before pulling from the uploader. */
const PEER_WAIT_MS = 20_000;
const PEER_PROBES = 4;

/** Where a piece's bytes come from: a peer that holds them, or the uploading client (served under the user `uploader` when the version names one). */
type PieceSource = { worker: string } | { upload: string; uploader?: string; piece: number };

/** The assignment for this worker a message holds (checked against its schema), or why it holds none. */
function assignmentFor(workerId: string, data: Uint8Array): { assignment: PeersAssigned | UploadsAssigned | PiecesDropped | CopiesOrdered } | { rejected: string } {
  const { event, rejected } = decodeEvent(data);
  if (!event) return { rejected };
  if (event.type !== "PeersAssigned" && event.type !== "UploadsAssigned" && event.type !== "PiecesDropped" && event.type !== "CopiesOrdered") {
    return { rejected: `${event.type} is not an assignment` };
  }
  if (event.workerId !== workerId) return { rejected: `${event.type} is for worker ${event.workerId}` };
  return { assignment: event };
}

export class Worker {
  readonly cat: Catalogue;
  private readonly js: JetStreamClient;
  private readonly log: (line: string) => void;
  private readonly frameSize: number;
  private readonly pieces: Limiter;
  /** Confirmations and reports of bad copies, on their way to the master together. */
  private readonly reports: Batcher<WorkerReport>;
  /** Each upload's share of `pieces` (see fairShare). */
  private readonly uploadShares = new Map<string, Limiter>();
  private subs: Subscription[] = [];
  private assignments?: ConsumerMessages;
  private heartbeat?: NodeJS.Timeout;
  /** Work on one SHA-256 runs in log order (a drop never overtakes the store before it). */
  private perPiece = new Map<string, Promise<unknown>>();
  private inFlight = new Set<Promise<unknown>>();
  /** Uploads whose client stopped serving: their other pieces fail at once instead of each retrying. */
  private deadUploads = new Set<string>();
  /** Pieces assigned here and not yet settled (stored or failed), by SHA-256. */
  private working = new Map<string, number>();
  /** Reads waiting for a piece to be stored here (minors waiting for their major). */
  private readonly storedWatch = new Watchers();
  private readonly scrubber: Scrubber;
  /** This run of the worker: a restart the master did not see as a loss still shows in the heartbeat. */
  private readonly boot = nuid.next();
  private stopping = false;

  /** Answers reads and pulls bytes; `js` (on the role's JetStream connection) takes assignments and confirms. */
  private readonly nc: NatsConnection;
  private readonly smallPulls: SmallPulls;

  private constructor(conns: RoleConnections, private readonly store: PieceStore, private readonly opts: WorkerOptions) {
    this.nc = conns.rpc;
    this.cat = catalogue(opts.prefix);
    this.js = jetstream(conns.streams);
    this.log = opts.log ?? ((line) => process.stderr.write(`worker ${opts.id}: ${line}\n`));
    this.frameSize = frameSizeFor(this.nc.info?.max_payload ?? 1024 * 1024);
    this.smallPulls = new SmallPulls(this.nc, this.cat, PULL_TIMEOUT_MS);
    // Weighed in bytes held: a piece holds at most its frames in flight (see pullInto).
    this.reports = new Batcher((reports) => this.sendReports(reports), MAX_REPORTS);
    this.pieces = new Limiter((opts.parallelPieces ?? 4) * this.framesHeld(Infinity));
    this.scrubber = new Scrubber(store, (sha256) => this.inOrder(sha256, () => this.checkCopy(sha256, "a scrub found it bad")), this.log);
  }

  static async start(conns: RoleConnections, opts: WorkerOptions): Promise<Worker> {
    const cat = catalogue(opts.prefix);
    await requireStore(conns.streams, cat);
    const has = await throughFailover(() => consumerExists(conns.streams, cat.eventsStream, cat.workerConsumer(opts.id))).catch((err) => Promise.reject(asDfsError(err)));
    if (!has) throw new DfsError(ErrorCodes.NOT_FOUND, `worker ${opts.id} has no assignment consumer yet: run \`dfs provision --workers ${opts.id}\` (admin credentials)`);
    const store = await PieceStore.open(opts.dataDir);
    const worker = new Worker(conns, store, opts);
    worker.serveRpcs();
    worker.sendHeartbeat();
    worker.heartbeat = setInterval(() => worker.sendHeartbeat(), opts.heartbeatMs ?? 1_000);
    worker.scrubber.start(opts.scrubBytesPerSecond ?? DEFAULT_SCRUB_RATE);
    worker.consumeAssignments().catch((err) => worker.stopping || reportFatal(`worker ${opts.id} stopped reading its assignments`, err, opts.onFatal));
    return worker;
  }

  get id(): string {
    return this.opts.id;
  }

  /** What heartbeats and `health` report: pieces held, their bytes, and the disk's free space. */
  private async status(): Promise<WorkerStatus> {
    const disk = await statfs(this.opts.dataDir).catch(() => undefined);
    return {
      workerId: this.id,
      pieces: this.store.pieces,
      bytes: this.store.bytes,
      freeBytes: disk ? disk.bavail * disk.bsize : 0,
      at: Date.now(),
      boot: this.boot,
    };
  }

  private sendHeartbeat(): void {
    // Publishing throws once the connection is closing: a missed heartbeat is only logged.
    this.status()
      .then((status) => this.nc.publish(this.cat.heartbeat(this.id), encode(status)))
      .catch((err) => this.log(`heartbeat not sent: ${err instanceof Error ? err.message : String(err)}`));
  }

  private serveRpcs(): void {
    const onInternalError = (err: unknown) => this.log(`internal error: ${err instanceof Error ? err.stack : String(err)}`);
    this.subs.push(
      serveBytes(
        this.nc,
        this.cat.workerRpc(this.id, "read"),
        async (request) => {
          const req: ReadRequest = parse(ReadRequest, request, "read request");
          if (req.length > this.frameSize) throw new DfsError(ErrorCodes.BAD_REQUEST, `length must be at most ${this.frameSize}`);
          if (req.waitMs) await this.whenStored(req.sha256, req.waitMs);
          const bytes = await this.store.read(req.sha256, req.offset, req.length);
          if (!bytes) throw new DfsError(ErrorCodes.NOT_FOUND, `worker ${this.id} does not hold piece ${req.sha256}`);
          return bytes;
        },
        { onInternalError },
      ),
      serve(this.nc, this.cat.workerRpc(this.id, "health"), () => this.status(), { onInternalError }),
      serve(
        this.nc,
        this.cat.workerRpc(this.id, "verify"),
        async (request): Promise<VerifyReply> => {
          const { sha256 } = parse(VerifyRequest, request, "verify request");
          const outcome = await this.inOrder(sha256, () => this.checkCopy(sha256, "a reader got bytes that do not match"));
          return { held: outcome !== "absent", ok: outcome === "good" };
        },
        { onInternalError },
      ),
      serve(
        this.nc,
        this.cat.workerRpc(this.id, "scrub"),
        async (request): Promise<ScrubPage> => {
          const req = parse(ScrubRequest, request, "scrub request");
          return this.scrubber.page(req.after, req.limit ?? SCRUB_PAGE);
        },
        { onInternalError },
      ),
      serve(
        this.nc,
        this.cat.workerRpc(this.id, "inventory"),
        async (request): Promise<InventoryPage> => {
          const req = parse(InventoryRequest, request, "inventory request");
          const limit = req.limit ?? INVENTORY_PAGE;
          const sha256s = await this.store.list(req.after, limit);
          return sha256s.length === limit ? { sha256s, next: sha256s[sha256s.length - 1]! } : { sha256s };
        },
        { onInternalError },
      ),
    );
  }

  /**
   * Whether this worker holds good bytes of a piece: hashed again, never taken on trust. A bad
   * copy is dropped at once (so it is never served again) and reported to the master.
   */
  private async checkOwnCopy(sha256: string, why: string): Promise<boolean> {
    return (await this.checkCopy(sha256, why)) === "good";
  }

  private async checkCopy(sha256: string, why: string): Promise<CheckOutcome> {
    const good = await this.store.verify(sha256);
    if (good !== false) return good ? "good" : "absent";
    await this.store.drop(sha256);
    this.log(`piece ${sha256} failed its SHA-256 (${why}): dropped`);
    const report: CorruptReport = { kind: "corrupt", workerId: this.id, sha256, reason: why };
    await this.reports
      .add(report)
      .catch((err) => this.log(`could not report the bad copy of ${sha256}: ${err instanceof Error ? err.message : String(err)}`));
    return "bad";
  }

  private inOrder<T>(sha256: string, task: () => Promise<T>): Promise<T> {
    const previous = this.perPiece.get(sha256) ?? Promise.resolve();
    const next = previous.then(task, task);
    const settled = next.catch(() => undefined);
    this.perPiece.set(sha256, settled);
    void settled.then(() => {
      if (this.perPiece.get(sha256) === settled) this.perPiece.delete(sha256);
    });
    return next;
  }

  private async consumeAssignments(): Promise<void> {
    const consumer = await throughFailover(() => this.js.consumers.get(this.cat.eventsStream, this.cat.workerConsumer(this.id)));
    this.assignments = await consumer.consume({ max_messages: 64, expires: PULL_EXPIRES_MS });
    for await (const m of this.assignments) {
      // Start work now (so per-piece order follows the log), finish it in the background.
      const job = this.handleAssignment(m)
        .catch((err) => {
          this.log(`assignment seq ${m.seq} will be retried: ${err instanceof Error ? err.message : String(err)}`);
          m.nak(2_000);
        })
        // nak throws once the connection is closing; the assignment is redelivered all the same.
        .catch((err) => this.log(`assignment seq ${m.seq} not answered: ${err instanceof Error ? err.message : String(err)}`));
      this.inFlight.add(job);
      void job.finally(() => this.inFlight.delete(job));
    }
  }

  private async handleAssignment(m: JsMsg): Promise<void> {
    const read = assignmentFor(this.id, m.data);
    if ("rejected" in read) {
      // Terminated, not nak'ed: a malformed message would fail the same way on every redelivery.
      this.log(`rejected seq ${m.seq} on ${m.subject}: ${read.rejected}`);
      m.term();
      return;
    }
    const event = read.assignment;
    const keepAlive = setInterval(() => m.working(), ASSIGNMENT_ACK_WAIT_MS / 4);
    try {
      if (event.type === "PeersAssigned") await this.storePieces(event, m.seq);
      else if (event.type === "UploadsAssigned") {
        // Each upload's share as its own PeersAssigned would say it.
        await Promise.all(event.uploads.map((upload) => this.storePieces({ type: "PeersAssigned", at: event.at, workerId: event.workerId, ...upload }, m.seq)));
      }
      else if (event.type === "PiecesDropped") await this.dropPieces(event, m.seq);
      else await this.copyPieces(event, m.seq);
      m.ack();
    } finally {
      clearInterval(keepAlive);
    }
  }

  /**
   * Forget pieces, unless a later order wants them kept: a drop redelivered after a newer
   * assignment of the same bytes (a retry, a slow ack) would otherwise delete what a newer
   * file needs.
   */
  private async dropPieces(event: PiecesDropped, seq: number): Promise<void> {
    await Promise.all(
      event.sha256s.map((sha) =>
        this.inOrder(sha, async () => {
          const kept = await this.store.keptSince(sha);
          if (kept !== undefined && kept > seq) this.log(`ignored a stale drop of ${sha} (seq ${seq}; kept since seq ${kept})`);
          else await this.store.drop(sha);
        }),
      ),
    );
  }

  /** The bytes a piece of `size` holds while it is pulled: a few frames at most, and never less than 1/64 of a big piece's. */
  private framesHeld(size: number): number {
    const most = (this.opts.framesInFlight ?? 4) * this.frameSize;
    return Math.max(Math.ceil(most / SMALL_PIECES_PER_BIG), Math.min(size, most));
  }

  /**
   * Room in the piece limiter, but never more than half of it for one upload: an upload
   * whose bytes come slowly (or never) cannot hold up every other one.
   */
  private async fairShare<T>(uploadId: string, size: number, task: () => Promise<T>): Promise<T> {
    let share = this.uploadShares.get(uploadId);
    if (!share) this.uploadShares.set(uploadId, (share = new Limiter(Math.max(1, Math.floor(this.pieces.limit / 2)))));
    const mine = share;
    const weight = this.framesHeld(size);
    try {
      return await mine.run(() => this.pieces.run(task, weight), weight);
    } finally {
      if (mine.active === 0 && mine.queued === 0 && this.uploadShares.get(uploadId) === mine) this.uploadShares.delete(uploadId);
    }
  }

  /** Copy orders (re-replication, repair): pull each piece from its sources, in order, check it, keep it, confirm. */
  private async copyPieces(event: CopiesOrdered, seq: number): Promise<void> {
    await Promise.all(
      event.pieces.map((order) =>
        this.inOrder(order.sha256, async () => {
          let failure: DfsError | undefined;
          try {
            failure = await this.pieces.run(() => this.keepPiece(order, order.sources.map((worker) => ({ worker })), seq), this.framesHeld(order.size));
          } finally {
            this.storedWatch.changed(order.sha256);
          }
          await this.confirmCopy(order.sha256, failure);
        }),
      ),
    );
  }

  private async confirmCopy(sha256: string, failure: DfsError | undefined): Promise<void> {
    const confirmation: CopyConfirmation = {
      kind: "copy",
      workerId: this.id,
      sha256,
      ok: !failure,
      ...(failure ? { code: failure.code, message: clipText(failure.message) } : {}),
    };
    if (failure) this.log(`copy of ${sha256} failed: ${failure.code}: ${failure.message}`);
    await this.reports.add(confirmation);
  }

  private async storePieces(event: PeersAssigned, seq: number): Promise<void> {
    await Promise.all(
      event.pieces.map((piece) => {
        this.working.set(piece.sha256, (this.working.get(piece.sha256) ?? 0) + 1);
        return this.inOrder(piece.sha256, async () => {
          // Wait for the major outside the limiter: a slot held while waiting could starve the
          // very pieces this worker must store as a major. A piece that travels in one frame
          // comes from the uploader at once: waiting for the major (whose assignment may not
          // even have reached it yet) costs more than the uploader serving it twice.
          const fromMajor =
            piece.pullFrom !== undefined && piece.size > this.frameSize && (await this.waitForPeer(piece.pullFrom, piece.sha256, event.uploadId));
          let outcome: DfsError | undefined;
          try {
            // From the major when it holds the piece (pipelined replication), else, or if that
            // fails, from the uploader.
            const uploader: PieceSource = { upload: event.uploadId, ...uploaderOf(event), piece: piece.piece };
            const sources = fromMajor ? [{ worker: piece.pullFrom! }, uploader] : [uploader];
            outcome = await this.fairShare(event.uploadId, piece.size, () => this.keepPiece(piece, sources, seq));
          } finally {
            const left = this.working.get(piece.sha256)! - 1;
            if (left > 0) this.working.set(piece.sha256, left);
            else this.working.delete(piece.sha256);
            // Minors waiting on us learn the result now, stored or not (then they try the uploader).
            this.storedWatch.changed(piece.sha256);
          }
          await this.confirm(event, piece, outcome);
        });
      }),
    );
  }

  /**
   * Whether `peer` holds the piece, asking it to answer once it does; false sends us to the
   * uploader. A quick "not found" means the peer is not working on it (yet: its assignment may
   * still be on the way), so ask again a few times before giving up on it.
   */
  private async waitForPeer(peer: string, sha256: string, uploadId: string): Promise<boolean> {
    const probe = { sha256, offset: 0, length: 0, waitMs: PEER_WAIT_MS };
    for (let attempt = 0; attempt < PEER_PROBES; attempt++) {
      if ((await this.store.has(sha256)) || this.deadUploads.has(uploadId)) return false;
      try {
        await callBytes(this.nc, this.cat.workerRpc(peer, "read"), probe, PEER_WAIT_MS + 5_000);
        return true;
      } catch (err) {
        if (asDfsError(err).code !== ErrorCodes.NOT_FOUND) return false;
      }
      await new Promise((r) => setTimeout(r, 100 * (attempt + 1)));
    }
    return false;
  }

  /**
   * Resolves when a piece is here: at once if it is, else when this worker has tried to store
   * it (stored or failed), or after `waitMs`, whichever comes first.
   */
  private whenStored(sha256: string, waitMs: number): Promise<void> {
    const settled = this.storedWatch.next(sha256, waitMs);
    // Registered first, checked second: a store that lands in between still wakes us. Nothing
    // to wait for when the piece is here, or when this worker is not working on it.
    this.store
      .has(sha256)
      .then((here) => (here || !this.working.has(sha256)) && this.storedWatch.changed(sha256))
      .catch(() => this.storedWatch.changed(sha256)); // a closed store: the read will say what is missing
    return settled;
  }

  /**
   * Pull, check and keep one piece, from the major when `major` is given (falling back to the
   * uploader if that fails); an error here is the upload's, reported in the confirmation.
   */
  /**
   * Keep one piece: the one code path for puts, re-replication and repair. The same bytes
   * already here count only if they still hash right; otherwise they are pulled from the
   * sources in order (peers holding them, or the uploader), checked, and stored. A peer that
   * fails or serves bad bytes sends us to the next source (and is asked to check its copy);
   * the uploader's failure is the upload's, and final.
   */
  private async keepPiece(piece: { sha256: string; size: number }, sources: readonly PieceSource[], seq: number): Promise<DfsError | undefined> {
    if (await this.checkOwnCopy(piece.sha256, "a stored copy was checked before it was counted again")) {
      await this.store.keep(piece.sha256, seq);
      return undefined;
    }
    const tried: string[] = [];
    for (const source of sources) {
      if ("upload" in source && this.deadUploads.has(source.upload)) return new DfsError(ErrorCodes.UNAVAILABLE, "the uploader stopped serving the bytes");
      const read =
        "worker" in source
          ? (offset: number, length: number) => callBytes(this.nc, this.cat.workerRpc(source.worker, "read"), { sha256: piece.sha256, offset, length }, PULL_TIMEOUT_MS)
          : (offset: number, length: number) => this.pullFromUploader(source, piece.size, offset, length);
      let actual: string;
      try {
        actual = await this.pullInto(piece, read, seq);
      } catch (err) {
        const coded = asDfsError(err);
        // A full or broken disk fails the order now rather than after every retry.
        if (coded.code === ErrorCodes.STORAGE_FAILED) return coded;
        if ("worker" in source) {
          tried.push(`${source.worker}: ${coded.message}`);
          continue;
        }
        // An uploader that stops answering (gone, or never meaning to) fails its other pieces at once.
        if (coded.code === ErrorCodes.UNAVAILABLE || coded.code === ErrorCodes.TIMEOUT) this.noteDeadUpload(source.upload);
        return coded;
      }
      if (actual !== piece.sha256) {
        if ("upload" in source) {
          return new DfsError(ErrorCodes.CHECKSUM_MISMATCH, `piece ${source.piece} has SHA-256 ${actual}, declared ${piece.sha256} (did the file change during the upload?)`);
        }
        tried.push(`${source.worker}: bytes that do not match`);
        // That peer's copy is bad: it checks itself, drops it and reports it.
        void call(this.nc, this.cat.workerRpc(source.worker, "verify"), { sha256: piece.sha256 }, PULL_TIMEOUT_MS).catch(() => undefined);
        continue;
      }
      return undefined;
    }
    return new DfsError(ErrorCodes.PIECE_UNAVAILABLE, clipText(`no source gave ${piece.sha256}: ${tried.join("; ")}`));
  }

  private noteDeadUpload(uploadId: string): void {
    this.deadUploads.add(uploadId);
    // Keep the set small: the oldest entries are the least likely to come up again.
    if (this.deadUploads.size > DEAD_UPLOADS_KEPT) this.deadUploads.delete(this.deadUploads.values().next().value!);
  }

  /**
   * Pull a piece and write it to the store as it comes: its frames asked a few at a time,
   * hashed in order and written as its chunks, uncopied, so memory holds a few frames whatever
   * the piece's size. Kept (at log sequence `seq`) only if the bytes hash to its SHA-256;
   * resolves with what they hashed to. A store that fails is STORAGE_FAILED.
   */
  private async pullInto(piece: { size: number; sha256: string }, pull: (offset: number, length: number) => Promise<Uint8Array>, seq: number): Promise<string> {
    const storageFailed = (err: unknown) =>
      new DfsError(ErrorCodes.STORAGE_FAILED, `worker ${this.id} could not store ${piece.sha256}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    const writer = await this.store.begin(piece.sha256).catch((err) => Promise.reject(storageFailed(err)));
    const hash = createHash("sha256");
    try {
      await fetchInOrder(
        Math.ceil(piece.size / this.frameSize),
        this.opts.framesInFlight ?? 4,
        async (index) => {
          const offset = index * this.frameSize;
          const length = Math.min(this.frameSize, piece.size - offset);
          const frame = await pull(offset, length);
          if (frame.length !== length) throw new DfsError(ErrorCodes.BAD_REQUEST, `frame at ${offset} of piece ${piece.sha256} has ${frame.length} bytes, expected ${length}`);
          return frame;
        },
        async (frame) => {
          hash.update(frame);
          await writer.write(frame).catch((err) => Promise.reject(storageFailed(err)));
        },
      );
      const actual = hash.digest("hex");
      if (actual === piece.sha256) await writer.commit(seq).catch((err) => Promise.reject(storageFailed(err)));
      else await writer.abort();
      return actual;
    } catch (err) {
      await writer.abort().catch(() => undefined);
      throw err;
    }
  }

  /** A frame from the uploader: a small piece's asked with the others of this turn (see SmallPulls), or alone. */
  private async pullFromUploader(source: { upload: string; uploader?: string; piece: number }, size: number, offset: number, length: number): Promise<Uint8Array> {
    if (source.uploader !== undefined && size <= SMALL_PULL_BYTES) {
      const frame = await this.smallPulls.pull(source.uploader, { uploadId: source.upload, piece: source.piece, offset, length });
      if (frame) return frame;
    }
    return this.pullFrame(this.cat.pull(source.uploader, source.upload, source.piece), offset, length);
  }

  private async pullFrame(subject: string, offset: number, length: number): Promise<Uint8Array> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await callBytes(this.nc, subject, { offset, length }, PULL_TIMEOUT_MS);
      } catch (err) {
        const coded = asDfsError(err);
        const transient = coded.code === ErrorCodes.TIMEOUT || coded.code === ErrorCodes.UNAVAILABLE;
        if (!transient || attempt >= PULL_ATTEMPTS) {
          throw coded.code === ErrorCodes.UNAVAILABLE ? new DfsError(ErrorCodes.UNAVAILABLE, "the uploader stopped serving the bytes") : coded;
        }
        await new Promise((r) => setTimeout(r, 200 * attempt));
      }
    }
  }

  private async confirm(event: PeersAssigned, piece: AssignedPiece, failure: DfsError | undefined): Promise<void> {
    const confirmation: Confirmation = {
      workerId: this.id,
      fileId: event.fileId,
      version: event.version,
      piece: piece.piece,
      sha256: piece.sha256,
      ok: !failure,
      ...(failure ? { code: failure.code, message: clipText(failure.message) } : {}),
    };
    if (failure) this.log(`piece ${piece.piece} of ${event.fileId} v${event.version} failed: ${failure.code}: ${failure.message}`);
    await this.reports.add(confirmation);
  }

  /**
   * Send reports together: one JetStream message for what came while the last was on its way.
   * Its message id makes a retry after a lost ack count once; a report sent twice all the
   * same (its assignment redone after a crash) changes nothing the second time.
   */
  private async sendReports(reports: WorkerReport[]): Promise<void> {
    const batch: ReportBatch = { kind: "batch", workerId: this.id, reports };
    const msgID = `reports.${this.id}.${nuid.next()}`;
    await throughFailover(() => this.js.publish(this.cat.confirm(this.id), encode(batch), { msgID }));
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.scrubber.stop();
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.storedWatch.wakeAll();
    for (const sub of this.subs) sub.unsubscribe();
    await this.assignments?.close();
    // Work not finished in the grace period is not acknowledged, so it is redelivered later.
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...this.inFlight]), new Promise((r) => (grace = setTimeout(r, STOP_GRACE_MS)))]);
    clearTimeout(grace);
    await this.store.close();
  }
}
