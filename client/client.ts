// The client library: everything `dfs` does, usable from a program. It holds no state of the
// store; it asks the master, serves its own bytes to workers during a put, and reads pieces
// from workers during a get (`get.ts`), checking every SHA-256.
import { randomBytes } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import type { Readable } from "node:stream";
import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import { type NatsConnection } from "@nats-io/transport-node";
import { ANONYMOUS_UPLOADER, catalogue, DEFAULT_NATS_URL, type Catalogue, type MasterOp } from "../streams/catalogue.js";
import { MAX_PIECES, MIN_PIECE_SIZE } from "../src/events.js";
import { encode } from "../src/codec.js";
import { connectUser, requireStore } from "../src/connection.js";
import { DfsError, ErrorCodes, asDfsError, clipText, reportedFailure } from "../src/errors.js";
import { throughFailover } from "../src/failover.js";
import { type LogReader } from "../src/log.js";
import { normalisePath } from "../src/paths.js";
import { MAX_PIECES_PER_CREATE_MANY, frameSizeFor, uploadIdOf, type CreateAnswer, type WorkerStatus } from "../src/protocol.js";
import type { FileInfo, ListEntry, ListPage, Location, LocationPage, UploadPlan, UploadProgress } from "../src/queries.js";
import type { LogPoint } from "../src/log-point.js";
import { list, stat } from "../src/queries.js";
import { auditLog, locateAt, pathHistory, replayLog, tableAt, type AuditEntry, type AuditOptions, type ReplayResult, type VersionHistory } from "../src/replay.js";
import { scrub, scrubTargets, type ScrubOptions, type ScrubResult, type StatusReport } from "./admin.js";
import { call, callRetrying } from "../src/rpc.js";
import { CallBatcher } from "../src/batcher.js";
import type { projection } from "../src/state.js";
import type { SnapshotHead } from "../src/snapshot.js";
import type { RetentionPolicy } from "../src/retention.js";
import { latestSnapshotHead } from "../src/master/snapshots.js";
import { getFile, type GetOptions, type GetResult } from "./get.js";
import { getTree, type GetTreeOptions, type GetTreeResult } from "./get-many.js";
import { PieceHasher, type ContentHashes } from "./piece-hasher.js";
import type { Progress } from "./progress.js";
import { putMany, type PutEntry, type PutManyOptions, type PutManyResult } from "./put-many.js";
import { StreamSource, STREAM_PIECE_SIZE, type StreamCalls } from "./put-stream.js";
import { declaredSource, SMALL_FILE_BYTES, type ReadAt, type UploadSource } from "./upload-source.js";
import { UploadServer } from "./upload-server.js";

/** Chosen by `npm run bench:pieces` (see README): big enough to keep every worker busy, small enough to spread. */
export const DEFAULT_PIECE_SIZE = 16 * 1024 * 1024;
export const DEFAULT_REPLICAS = 3;
/** How long a read waits for some master to answer. */
const READ_WAIT_MS = 5_000;
/** How long a call that only the leader answers waits for one (a new leader takes over within a few seconds). */
const LEADER_WAIT_MS = 15_000;
/** How long one `wait` for an upload's progress may be held by the master. */
const WAIT_MS = 2_000;
/**
 * Most small files' creates in one `createMany`. Several requests of a few files each, rather
 * than one of all the files in flight: a request's answer waits for all its files' commits, and
 * the files of one answered meanwhile make room for the next.
 */
const CREATES_PER_REQUEST = 16;
/** A small file is created with others when it has at most so many pieces (a `createMany` holds at most MAX_PIECES_PER_CREATE_MANY). */
const PIECES_CREATED_TOGETHER = Math.floor(MAX_PIECES_PER_CREATE_MANY / CREATES_PER_REQUEST);

/** A create's answer: the version's plan and the log sequence it reflects; a stream's also says how long the master lets it be quiet (`quietMs`; absent from masters before it). */
type Created = UploadPlan & { seq: number; quietMs?: number };

export interface ConnectOptions {
  /** NATS URL(s); default `DFS_NATS` or nats://127.0.0.1:4222. */
  servers?: string | string[];
  prefix?: string;
  name?: string;
  /** A `.creds` file; none for a server without authentication. */
  creds?: string;
  /** A CA certificate (PEM) to trust, for a server with TLS. */
  tlsCa?: string;
}

export interface PutOptions {
  replicas?: number;
  pieceSize?: number;
  /** Give up when nothing moves for this long (ms). */
  idleTimeoutMs?: number;
  onProgress?: (p: Progress) => void;
  /** Abort the upload: the version is abandoned in the log and put rejects. */
  signal?: AbortSignal;
}

export interface PutResult {
  fileId: string;
  path: string;
  version: number;
  size: number;
  sha256: string;
  pieces: number;
  pieceSize: number;
  replicas: number;
  /** Bytes this client served to workers: about `size` when minors pull from majors. */
  servedBytes: number;
}

export interface MasterState {
  masterId: string;
  lastSeq: number;
  digest: string;
  workers: { workerId: string; live: boolean; assignedBytes: number }[];
  /** Appends this master lost to a rival and decided again. */
  conflicts: number;
  projection?: ReturnType<typeof projection>;
}

export interface WorkerReport {
  workerId: string;
  /** As the log says: joined and not lost since. */
  live: boolean;
  /** Bytes of live versions placed on it (the master's placement load). */
  assignedBytes: number;
  /** Its own answer to `health`; undefined when it does not answer. */
  status?: WorkerStatus;
}

/** Default sizes for files too large to fit in MAX_PIECES pieces grow by doubling. */
export function pieceSizeFor(size: number, requested?: number): number {
  if (requested !== undefined) return requested;
  let pieceSize = DEFAULT_PIECE_SIZE;
  while (Math.ceil(size / pieceSize) > MAX_PIECES) pieceSize *= 2;
  return pieceSize;
}

function checkedPieceSize(size: number, requested?: number): number {
  const pieceSize = pieceSizeFor(size, requested);
  if (!Number.isSafeInteger(pieceSize) || pieceSize < MIN_PIECE_SIZE) {
    throw new DfsError(ErrorCodes.BAD_REQUEST, `piece size must be at least ${MIN_PIECE_SIZE} bytes`);
  }
  return pieceSize;
}

/** A file's hashes, read once from start to end in steps of at most 4 MiB. */
async function hashFile(file: FileHandle, size: number, pieceSize: number, onProgress?: (p: Progress) => void): Promise<ContentHashes> {
  const hasher = new PieceHasher(pieceSize);
  const buffer = Buffer.allocUnsafe(Math.min(size, 4 * 1024 * 1024));
  for (let position = 0; position < size; ) {
    const { bytesRead } = await file.read(buffer, 0, Math.min(buffer.length, size - position), position);
    if (bytesRead === 0) throw new DfsError(ErrorCodes.LOCAL_IO, "the file shrank while it was being read");
    hasher.update(buffer.subarray(0, bytesRead));
    position += bytesRead;
    onProgress?.({ phase: "hash", done: position, total: size });
  }
  return hasher.digest();
}

/** A fresh upload key: 32 random bytes, base64url (see `uploadIdOf`). */
function newUploadKey(): string {
  return randomBytes(32).toString("base64url");
}

function readerOf(file: FileHandle): ReadAt {
  return async (position, length) => {
    const frame = Buffer.allocUnsafe(length);
    const { bytesRead } = await file.read(frame, 0, length, position);
    return frame.subarray(0, bytesRead);
  };
}

export class DfsClient {
  readonly cat: Catalogue;
  /** Highest log sequence this client has seen: reads ask the master to be at least there. */
  private seenSeq = 0;

  private readonly js: JetStreamClient;
  /** Serves the pulls of the uploads in flight, each on its own subscription, and workers' pulls of many small pieces across them. */
  private readonly uploadServer: UploadServer;
  /** Small files' creates asked in one turn go in one `createMany`, CREATES_PER_REQUEST at most. */
  private readonly createBatch = new CallBatcher<object, CreateAnswer<Created>>(
    async (creates) => (await call<{ answers: CreateAnswer<Created>[] }>(this.nc, this.cat.masterRpc("createMany"), { creates }, WAIT_MS + 2_000)).answers,
    CREATES_PER_REQUEST,
  );
  /** Off once these credentials were refused `createMany`: then every create is asked alone. */
  private createsTogether = true;

  /**
   * `uploader` is the NATS user `nc` connected as (ANONYMOUS_UPLOADER on a server without
   * authentication): workers pull this client's uploads on that user's subjects, the only pull
   * subjects its permissions let it serve.
   */
  constructor(
    readonly nc: NatsConnection,
    readonly uploader: string,
    prefix?: string,
  ) {
    this.cat = catalogue(prefix);
    this.js = jetstream(nc);
    this.uploadServer = new UploadServer(nc, this.cat, uploader);
  }

  static async connect(opts: ConnectOptions = {}): Promise<DfsClient> {
    const { nc, user } = await connectUser({
      servers: opts.servers ?? process.env.DFS_NATS ?? DEFAULT_NATS_URL,
      creds: opts.creds,
      tlsCa: opts.tlsCa,
      prefix: opts.prefix,
      name: opts.name ?? "dfs-client",
    });
    return new DfsClient(nc, user ?? ANONYMOUS_UPLOADER, opts.prefix);
  }

  private get frameSize(): number {
    return frameSizeFor(this.nc.info?.max_payload ?? 1024 * 1024);
  }

  /**
   * A read of the masters' table: any master answers, so nobody answering is a moment (a
   * server or master failing over, a restart) worth waiting out, briefly.
   */
  private read<T>(op: MasterOp, request: unknown): Promise<T> {
    return callRetrying<T>(this.nc, this.cat.masterRpc(op), request, { retryOn: [ErrorCodes.UNAVAILABLE], forMs: READ_WAIT_MS });
  }

  private seen(seq: number | undefined): void {
    if (typeof seq === "number" && seq > this.seenSeq) this.seenSeq = seq;
  }

  /**
   * Every file at or below `prefix`, fetched a page at a time; with `at`, as the store was right
   * after that point, from the log alone (the auditor's right).
   */
  async list(prefix?: string, opts: { pageSize?: number; at?: LogPoint } = {}): Promise<ListEntry[]> {
    if (opts.at) return list((await this.tableAt(opts.at)).state, prefix);
    const files: ListEntry[] = [];
    let after: string | undefined;
    do {
      const page: ListPage = await this.read("list", { prefix, after, limit: opts.pageSize, atLeastSeq: this.seenSeq });
      files.push(...page.files);
      after = page.next;
    } while (after !== undefined);
    return files;
  }

  /** A file; with `at`, as it was right after that point, from the log alone (the auditor's right). */
  async stat(path: string, opts: { at?: LogPoint } = {}): Promise<FileInfo> {
    if (opts.at) return stat((await this.tableAt(opts.at)).state, path);
    return this.read("stat", { path, atLeastSeq: this.seenSeq });
  }

  /**
   * Where every piece of a version lives, fetched a page at a time (all pages name one version).
   * With `at`: the version as it was right after that point, its pieces where they are now,
   * both from the log alone (the auditor's right); PIECES_DROPPED when a piece is held by no
   * live worker any more. Hand the answer to `get` (`location`) to read that version.
   */
  async locate(path: string, version?: number, opts: { pageSize?: number; at?: LogPoint } = {}): Promise<Location> {
    if (opts.at) {
      await requireStore(this.nc, this.cat, [this.cat.auditStream]);
      return locateAt(this.nc, this.cat, opts.at, path, version);
    }
    const request = (v: number | undefined, fromPiece: number) =>
      this.read<LocationPage>("locate", { path, version: v, fromPiece, limit: opts.pageSize, atLeastSeq: this.seenSeq });
    const first = await request(version, 0);
    const { pieceCount: _count, fromPiece: _from, ...where } = first;
    while (where.pieces.length < first.pieceCount) {
      const page = await request(first.version, where.pieces.length);
      if (page.pieces.length === 0) throw new DfsError(ErrorCodes.INTERNAL, `locate of ${path} stopped at piece ${where.pieces.length}`);
      where.pieces.push(...page.pieces);
    }
    return where;
  }

  /** The table as the log had it right after `at` (from the latest snapshot when it covers a point before): what `ls --at` and `stat --at` answer from. */
  async tableAt(at: LogPoint): Promise<ReplayResult> {
    await requireStore(this.nc, this.cat, [this.cat.auditStream]);
    return tableAt(this.nc, this.cat, at);
  }

  async remove(path: string, version?: number): Promise<void> {
    // Nobody answered means nobody received it (a new leader taking over): safe to ask again.
    const reply = await callRetrying<{ seq: number }>(this.nc, this.cat.masterRpc("delete"), { path, version }, { retryOn: [ErrorCodes.UNAVAILABLE], forMs: LEADER_WAIT_MS });
    this.seen(reply.seq);
  }

  /**
   * Set the store's retention policy (the admin's right): fields left out set no limit of that
   * kind, so `{}` keeps every version. Resolves with the policy now in force.
   */
  async setRetention(policy: RetentionPolicy): Promise<RetentionPolicy> {
    const reply = await callRetrying<{ seq: number; retention: RetentionPolicy }>(this.nc, this.cat.masterRpc("retention"), policy, {
      retryOn: [ErrorCodes.UNAVAILABLE],
      forMs: LEADER_WAIT_MS,
    });
    this.seen(reply.seq);
    return reply.retention;
  }

  /** The live master's view: its last folded sequence and the digest of its table. */
  async masterState(full = false): Promise<MasterState> {
    return this.read("state", { full });
  }

  /** Every worker the log knows, live or lost, with what it reports of itself when it answers. */
  async workers(): Promise<WorkerReport[]> {
    const { workers } = await this.masterState();
    return Promise.all(
      workers
        .sort((a, b) => (a.workerId < b.workerId ? -1 : 1))
        .map(async (w) => ({
          ...w,
          status: await call<WorkerStatus>(this.nc, this.cat.workerRpc(w.workerId, "health"), {}, 2_000).catch(() => undefined),
        })),
    );
  }

  /** The store's health: workers, pieces short of copies or with too many, copies in flight. */
  async status(): Promise<StatusReport> {
    return this.read("status", { atLeastSeq: this.seenSeq });
  }

  /** Hash every piece again on one worker or every live one, and wait for the bad ones to be repaired. */
  async scrub(opts: ScrubOptions = {}): Promise<ScrubResult> {
    const { workers } = await this.masterState();
    return scrub(this.nc, this.cat, scrubTargets(workers, opts.worker), opts);
  }

  /** Every version a path ever had, with the events about each, from the log (the auditor's right). */
  async history(path: string): Promise<VersionHistory[]> {
    await requireStore(this.nc, this.cat, [this.cat.auditStream]);
    return pathHistory(this.nc, this.cat, path);
  }

  /** The table rebuilt from the log, up to a point (a sequence number is `{ seq }`) or to its end. */
  async replay(until?: number | LogPoint): Promise<ReplayResult> {
    await requireStore(this.nc, this.cat, [this.cat.auditStream]);
    return replayLog(this.nc, this.cat, typeof until === "number" ? { seq: until } : until);
  }

  /** The head of the latest snapshot of the master's table (what it covers and its digest), if one was written. */
  async latestSnapshot(): Promise<SnapshotHead | undefined> {
    return latestSnapshotHead(this.nc, this.cat);
  }

  /** The audit log, filtered as `opts` say, each message judged by a fold of the whole log. */
  async tail(opts: AuditOptions, onEntry: (e: AuditEntry) => void): Promise<LogReader> {
    await requireStore(this.nc, this.cat, [this.cat.auditStream]);
    return auditLog(this.nc, this.cat, opts, onEntry);
  }

  /**
   * Store a local file at `remotePath` (a new version if the path exists). A small file is read
   * once, into memory; a larger one is read twice, streaming (to hash it, then as workers pull).
   */
  async put(localPath: string, remotePath: string, opts: PutOptions = {}): Promise<PutResult> {
    const path = normalisePath(remotePath);
    const unreadable = (err: unknown) =>
      err instanceof DfsError ? err : new DfsError(ErrorCodes.LOCAL_IO, `cannot read ${localPath}: ${(err as Error).message}`, { cause: err });
    const replicas = opts.replicas ?? DEFAULT_REPLICAS;
    // A small regular file is read at once, without the thread pool: its four trips there
    // (open, stat, read, close) cost more than the read, about a third of the client's CPU
    // for a file of 1 KiB when many go at once (put -r).
    let found;
    try {
      found = statSync(localPath);
    } catch (err) {
      throw unreadable(err);
    }
    if (!found.isFile()) throw new DfsError(ErrorCodes.LOCAL_IO, `${localPath} is not a regular file`);
    if (found.size <= SMALL_FILE_BYTES) {
      let bytes: Buffer;
      try {
        bytes = readFileSync(localPath);
      } catch (err) {
        throw unreadable(err);
      }
      const pieceSize = checkedPieceSize(bytes.length, opts.pieceSize);
      const hasher = new PieceHasher(pieceSize);
      hasher.update(bytes);
      return this.upload(declaredSource({ path, pieceSize, replicas, ...hasher.digest() }, async (position, length) => bytes.subarray(position, position + length)), opts);
    }
    const file = await open(localPath, "r").catch((err) => Promise.reject(unreadable(err)));
    let isOpen = true;
    const close = async () => {
      if (isOpen) await file.close();
      isOpen = false;
    };
    try {
      const info = await file.stat();
      if (!info.isFile()) throw new DfsError(ErrorCodes.LOCAL_IO, `${localPath} is not a regular file`);
      const pieceSize = checkedPieceSize(info.size, opts.pieceSize);
      const hashes = await hashFile(file, info.size, pieceSize, opts.onProgress).catch((err) => Promise.reject(unreadable(err)));
      return await this.upload(declaredSource({ path, pieceSize, replicas, ...hashes }, readerOf(file)), opts);
    } finally {
      await close();
    }
  }

  /**
   * Store what `input` yields (stdin) at `remotePath`, streamed: it can be read only once, so
   * each piece is hashed as it is read, declared to the master, served to its workers from
   * memory and let go once stored; at most a window of pieces is held (see put-stream.ts),
   * and nothing touches the disk. Pieces are `opts.pieceSize` or STREAM_PIECE_SIZE.
   */
  async putStream(input: Readable, remotePath: string, opts: PutOptions = {}): Promise<PutResult> {
    const path = normalisePath(remotePath);
    const pieceSize = checkedPieceSize(0, opts.pieceSize ?? STREAM_PIECE_SIZE);
    const leader = { retryOn: [ErrorCodes.UNAVAILABLE, ErrorCodes.TIMEOUT], forMs: LEADER_WAIT_MS };
    const decided = async (op: MasterOp, request: unknown) => this.seen((await callRetrying<{ seq: number }>(this.nc, this.cat.masterRpc(op), request, leader)).seq);
    const uploadKey = newUploadKey();
    const calls: StreamCalls = {
      extend: (pieces) => decided("extend", { uploadKey, pieces }),
      seal: (content) => decided("seal", { uploadKey, ...content }),
    };
    const source = new StreamSource(input, path, pieceSize, opts.replicas ?? DEFAULT_REPLICAS, calls);
    return this.upload(source, opts, uploadKey);
  }

  /**
   * `uploadKey` names the upload to the masters (create, extend, seal, abort, the abandon note);
   * only they see it. The id the log and the pull subjects show is derived from it, so nobody
   * who learns the id can give the upload up.
   */
  private async upload(source: UploadSource, opts: PutOptions, uploadKey = newUploadKey()): Promise<PutResult> {
    const uploadId = uploadIdOf(uploadKey);
    const idleTimeoutMs = opts.idleTimeoutMs ?? 60_000;
    let lastActivity = Date.now();
    let over = false;
    let committed = false;
    let servedBytes = 0;
    // Serve our bytes before asking for the version: workers may start pulling at once.
    const served = this.uploadServer.serve(uploadId, async (piece, { offset, length }) => {
      if (over) throw new DfsError(ErrorCodes.UPLOAD_ABANDONED, "this upload is over");
      if (length > this.frameSize) throw new DfsError(ErrorCodes.BAD_REQUEST, `a frame is at most ${this.frameSize} bytes, not ${length}`);
      const frame = await source.frame(piece, offset, length);
      lastActivity = Date.now();
      servedBytes += frame.length;
      return frame;
    });
    try {
      const resultOf = (fileId: string, version: number): PutResult => ({
        fileId,
        path: source.path,
        version,
        ...source.summary(),
        pieceSize: source.pieceSize,
        replicas: source.replicas,
        servedBytes,
      });
      // Pending, or given up or deleted: the `wait` says why.
      const waitForCommit = async (seq: number): Promise<number> => {
        let known = { stored: 0, seq };
        while (!over) {
          let now: UploadProgress;
          try {
            const held = source.held();
            now = await call<UploadProgress>(
              this.nc,
              this.cat.masterRpc("wait"),
              { uploadId, stored: known.stored, waitMs: WAIT_MS, atLeastSeq: known.seq, ...(held.length ? { pieces: held } : {}) },
              // Short, so a master that dies holding the question costs little.
              WAIT_MS + 2_000,
            );
          } catch (err) {
            // A master restarting or a failover: keep asking until the idle timeout says otherwise.
            const code = asDfsError(err).code;
            if (code !== ErrorCodes.TIMEOUT && code !== ErrorCodes.UNAVAILABLE) throw err;
            await new Promise((r) => setTimeout(r, 250));
            continue;
          }
          if (now.complete?.length) source.release(now.complete);
          if (now.stored !== known.stored) {
            lastActivity = Date.now();
            opts.onProgress?.(source.progress(now));
          }
          known = { stored: now.stored, seq: Math.max(known.seq, now.seq) };
          if (now.status === "committed") return now.seq;
          if (now.status === "abandoned") throw new DfsError(ErrorCodes.UPLOAD_ABANDONED, `upload of ${source.path} failed: ${now.reason ?? "given up"}`);
          if (now.status === "deleted") throw new DfsError(ErrorCodes.UPLOAD_ABANDONED, `${source.path} was deleted during the upload`);
        }
        throw new DfsError(ErrorCodes.UPLOAD_ABANDONED, `upload of ${source.path} is over`);
      };
      let created: { fileId: string; version: number } | undefined;
      // Create the version, then ask the master how the upload stands until it commits or is
      // given up; each answer comes as soon as something changed (or after a while, to show we
      // are still here). The idle timeout and an abort cover all of it, the create included.
      const outcome = (async () => {
        const request = {
          uploadId,
          uploadKey,
          uploader: this.uploader,
          path: source.path,
          pieceSize: source.pieceSize,
          replicas: source.replicas,
          ...source.declared,
          // A small file is usually stored before a `wait` could be asked: the answer waits for it.
          ...(source.small ? { waitMs: WAIT_MS } : {}),
        };
        const batched = source.small && this.createsTogether && source.summary().pieces <= PIECES_CREATED_TOGETHER;
        const answer = batched ? await this.createTogether(request) : await this.create(request, source.small);
        this.seen(answer.seq);
        lastActivity = Date.now();
        created = answer;
        // A small file's answer waited for the commit (and with several masters any upload can be over before the reply is written).
        if (answer.status === "committed") return answer.seq;
        // A stream's pieces are read and declared meanwhile: its failure ends the upload.
        const fed = source.feed(answer.quietMs).then(() => new Promise<never>(() => undefined));
        return Promise.race([fed, waitForCommit(answer.seq)]);
      })();
      const idle = new Promise<never>((_, reject) => {
        const timer = setInterval(() => {
          // Waiting for a stream's input is not the store's fault.
          if (source.waitingForInput()) lastActivity = Date.now();
          if (Date.now() - lastActivity < idleTimeoutMs) return;
          clearInterval(timer);
          reject(new DfsError(ErrorCodes.TIMEOUT, `upload of ${source.path} made no progress for ${Math.round(idleTimeoutMs / 1000)} s`));
        }, Math.min(1_000, idleTimeoutMs));
        void outcome.finally(() => clearInterval(timer)).catch(() => undefined);
      });
      const aborted = new Promise<never>((_, reject) => {
        const onAbort = () => reject(new DfsError(ErrorCodes.UPLOAD_ABANDONED, `upload of ${source.path} was interrupted`));
        if (opts.signal?.aborted) onAbort();
        opts.signal?.addEventListener("abort", onAbort, { once: true });
        void outcome.finally(() => opts.signal?.removeEventListener("abort", onAbort)).catch(() => undefined);
      });
      try {
        this.seen(await Promise.race([outcome, idle, aborted]));
        committed = true;
      } catch (err) {
        const reason = clipText(asDfsError(err).message);
        // Given up: said durably first (a master that starts later abandons the version before
        // it reads any confirmation), then to a live master, so the version is abandoned now.
        const note = encode({ uploadKey, reason });
        await throughFailover(() => this.js.publish(this.cat.abandon(uploadId), note, { msgID: `abandon.${uploadId}`, timeout: 2_000 })).catch(() => undefined);
        await call(this.nc, this.cat.masterRpc("abort"), { uploadKey, reason }).catch(() => undefined);
        // The exit status must not lie: a version that committed all the same is a success.
        const last = await call<UploadProgress>(this.nc, this.cat.masterRpc("wait"), { uploadId, stored: -1 }, 2_000).catch(() => undefined);
        if (last?.status === "committed") {
          this.seen(last.seq);
          return resultOf(last.fileId, last.version);
        }
        throw err;
      }
      return resultOf(created!.fileId, created!.version);
    } finally {
      over = true;
      source.close();
      await served.end(committed);
    }
  }

  /**
   * Ask for a version alone. A create is the same decision however often it is asked (its
   * upload id says which), so it is asked again while a new leader takes over, even after a
   * timeout; short when the answer waits for the commit, so a master that dies holding it costs little.
   */
  private create(request: object, answerWaits: boolean): Promise<Created> {
    return callRetrying<Created>(this.nc, this.cat.masterRpc("create"), request, {
      retryOn: [ErrorCodes.UNAVAILABLE, ErrorCodes.TIMEOUT],
      forMs: LEADER_WAIT_MS,
      ...(answerWaits ? { timeoutMs: WAIT_MS + 2_000 } : {}),
    });
  }

  /**
   * Ask for a small file's version with the others asked in the same turn (`createMany`), each
   * answered on its own. What the request as a whole could not get (no leader this moment, a
   * master or credentials older than `createMany`), or a create answered UNAVAILABLE or TIMEOUT,
   * is asked alone, as any create is; credentials that may not ask `createMany` stop this client
   * asking it.
   */
  private async createTogether(request: object): Promise<Created> {
    let answer: CreateAnswer<Created>;
    try {
      answer = await this.createBatch.call(request);
    } catch (err) {
      if (asDfsError(err).code === ErrorCodes.FORBIDDEN) this.createsTogether = false;
      return this.create(request, true);
    }
    if (answer.ok) return answer.result;
    const failure = reportedFailure(answer.code, answer.message);
    if (failure.code === ErrorCodes.UNAVAILABLE || failure.code === ErrorCodes.TIMEOUT) return this.create(request, true);
    throw failure;
  }

  /**
   * Put many files over this connection, `parallel` at a time (default 16), each an ordinary
   * put committed or abandoned on its own; see `planPut` for which file goes where.
   */
  async putMany(entries: readonly PutEntry[], opts: PutManyOptions = {}): Promise<PutManyResult> {
    return putMany(this, entries, opts);
  }

  /** Write every latest committed file at or below `prefix` below the local `dir`; see `getTree`. */
  async getTree(prefix: string, dir: string, opts: GetTreeOptions = {}): Promise<GetTreeResult> {
    return getTree(this, prefix, dir, opts);
  }

  /**
   * Read a file into `dest` (a local path, or a writable stream such as stdout), every piece
   * verified; see `getFile`. Any failure is one DfsError and leaves no temporary file. With
   * `location` (from `locate`, e.g. of a past point), that version's pieces are read.
   */
  async get(remotePath: string, dest: string | NodeJS.WritableStream, opts: GetOptions & { location?: Location } = {}): Promise<GetResult> {
    const { location, ...rest } = opts;
    // A location from `locate(..., { at })`: those pieces are read, as any version's are.
    return getFile(location ? { nc: this.nc, cat: this.cat, locate: async () => location } : this, remotePath, dest, rest);
  }

  async close(): Promise<void> {
    await this.nc.drain().catch(() => this.nc.close());
  }
}
