// The master process: a thin shell around `decide` and `evolve`. It replays the log, tails it,
// and turns RPCs, heartbeats and confirmations into commands. Its table is only ever changed
// by folding events read from, or appended to, the stream.
import { jetstream, type ConsumerMessages, type JetStreamClient, type JsMsg } from "@nats-io/jetstream";
import { nuid, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { catalogue, type Catalogue, type MasterOp } from "../../streams/catalogue.js";
import { provisionMaster } from "../../streams/provision.js";
import { requireStore, type RoleConnections } from "../connection.js";
import { Watchers } from "../watchers.js";
import { Lease } from "../lease.js";
import { PULL_EXPIRES_MS, throughFailover } from "../failover.js";
import { DEFAULT_UPLOAD_CAPS, decide, isSameUpload, type Command, type CreateVersion, type UploadCaps } from "../decide.js";
import { Batcher } from "../batcher.js";
import { DfsError, ErrorCodes, asDfsError, codedFailure, counted, reportFatal } from "../errors.js";
import type { DfsEvent } from "../events.js";
import { decode, encode } from "../codec.js";
import { foldLogged, subjectFor, type LoggedMessage } from "../fold.js";
import { AppendConflict, lastSequence, openReader, readLog, type LogReader } from "../log.js";
import { Limiter } from "../limiter.js";
import { Appender } from "./appender.js";
import { latestSnapshotHead, readLatestSnapshot, withinLog, writeSnapshot } from "./snapshots.js";
import { encodeTable } from "../snapshot.js";
import {
  AbandonNote,
  AbortRequest,
  CreateManyRequest,
  CreateRequest,
  type CreateAnswer,
  CreateStreamRequest,
  DeleteRequest,
  ExtendRequest,
  SealRequest,
  uploadIdOf,
  Heartbeat,
  ListRequest,
  LocateRequest,
  StatRequest,
  PiecesRequest,
  ReaderRequest,
  RetentionRequest,
  StateRequest,
  StatusRequest,
  WaitRequest,
  WorkerMessage,
  type WorkerReport,
  parse,
  type InventoryPage,
  replyBudgetFor,
} from "../protocol.js";
import { listPage, locatePage, stat, uploadPlan, uploadProgress, type UploadPlan } from "../queries.js";
import { call, serve } from "../rpc.js";
import { HEAL_PASS_PIECES, INVENTORY_PIECES_PER_DECISION, HealCursor, countedOn, hasWork } from "../heal.js";
import { piecesHealth, storeStatus } from "../status.js";
import { initialState, projection, stateDigest, stateDigestInSlices, versionOf, type State } from "../state.js";

export interface MasterOptions {
  prefix?: string;
  /** A worker silent this long is lost (ms). */
  workerTimeoutMs?: number;
  log?: (line: string) => void;
  /**
   * Take part in the lease, so that one master decides at a time (default). Off, every master
   * decides and only the fence on every append keeps the history linear (a test of the fence).
   */
  lease?: boolean;
  /** The master can no longer follow the log or the confirmations (default: throw). */
  onFatal?: (err: DfsError) => void;
  /** The leader writes a snapshot of the table every this many events (default 100,000; 0: never). */
  snapshotEvery?: number;
  /** A streamed upload whose uploader says nothing this long before it seals is abandoned (ms, default 30,000). */
  streamTimeoutMs?: number;
  /** Unhealthy pieces one healing pass considers (default HEAL_PASS_PIECES; small in tests, to see passes resume). */
  healPassPieces?: number;
  /** What one uploader may have open at once (default DEFAULT_UPLOAD_CAPS). */
  uploadCaps?: UploadCaps;
}

export const DEFAULT_SNAPSHOT_EVERY = 100_000;
/** An uploader streaming stdin says it is there (an `extend`) at least every 5 s: six missed and the upload is given up. */
export const DEFAULT_STREAM_TIMEOUT_MS = 30_000;

/**
 * A table this large takes longer to encode than the lease lasts (about 6 s at 200,000 files,
 * 25 s on a loaded machine): a new leader leaves such a snapshot to a follower for
 * LEADER_SNAPSHOT_DELAY_MS, and writes it itself only when none came meanwhile (it runs alone).
 */
const LARGE_TABLE_FILES = 20_000;
const LEADER_SNAPSHOT_DELAY_MS = 60_000;

const MAX_DECISION_ATTEMPTS = 100;
/** An answer computed from a table the log then refused is computed again, at most this often. */
const MAX_ANSWER_ATTEMPTS = 20;
const FOLDED = "folded";
/** Changes to the table are let settle this long before healing decides on them. */
const RECONCILE_DELAY_MS = 25;
/** How often the table is checked for work left (retries after a failed copy, unplaced pieces). */
const HEAL_TICK_MS = 1_000;
const INVENTORY_PAGE = 5_000;
const LOG_QUIET_MS = 10_000;
const QUIET_SUBJECTS_KEPT = 1_000;
/** Facts after which the table may owe something. */
const RECONCILE_AFTER: ReadonlySet<DfsEvent["type"]> = new Set([
  "WorkerJoined",
  "WorkerLost",
  "FileCommitted",
  "UploadAbandoned",
  "FileDeleted",
  "ReplicaStored",
  "CopyFailed",
  "ReplicasLost",
  "RetentionSet",
  "VersionExpired",
]);

/** The command a worker's report asks for. */
function commandFor(report: WorkerReport, at: number): Command {
  if (!("kind" in report)) return { type: "ConfirmPiece", at, ...report };
  if (report.kind === "copy") return { type: "ConfirmCopy", at, workerId: report.workerId, sha256: report.sha256, ok: report.ok, code: report.code, message: report.message };
  return { type: "ReportLost", at, workerId: report.workerId, sha256s: [report.sha256], reason: report.reason };
}

/** "3 CopiesOrdered, 1 PiecesDropped": what a decision did, for the log line. */
function summarise(events: readonly DfsEvent[]): string {
  const counts = new Map<string, number>();
  for (const e of events) counts.set(e.type, (counts.get(e.type) ?? 0) + 1);
  return [...counts].map(([type, n]) => `${n} ${type}`).join(", ");
}
const CATCH_UP_TIMEOUT_MS = 15_000;
/** Most creates decided in one pass. */
const CREATES_DECIDED_TOGETHER = 256;
/** Confirmations decided at once, their appends in flight together. */
const CONFIRMATIONS_IN_FLIGHT = 256;

export class Master {
  readonly cat: Catalogue;
  private state: State = initialState();
  /** Appends that lost a race and were decided again: the fence at work. */
  conflicts = 0;
  /** Tells masters apart in `state` replies (they share one queue group). */
  readonly instanceId = nuid.next();
  private readonly js: JetStreamClient;
  private readonly log: (line: string) => void;
  private readonly workerTimeoutMs: number;
  /** A stream whose uploader says nothing this long before its end is abandoned. */
  private readonly streamTimeoutMs: number;
  private readonly uploadCaps: UploadCaps;
  /** Decisions are taken one at a time, each on the table every earlier one left. */
  private turn: Promise<unknown> = Promise.resolve();
  private readonly appender: Appender;
  /** While the table is folded again from the log (after a refused append), reads wait for it. */
  private refolding?: Promise<void>;
  private tail?: LogReader;
  private subs: Subscription[] = [];
  /** The read RPCs, which every master answers in one queue (see serveReads). */
  private readSubs: Subscription[] = [];
  private confirms?: ConsumerMessages;
  private abandons?: ConsumerMessages;
  private lastHeard = new Map<string, number>();
  private joining = new Set<string>();
  /** Per subject, when garbage on it was last logged and how much since was not (see logRarely). */
  private quiet = new Map<string, { at: number; unshown: number }>();
  /** Each worker's last heartbeat: its free space for `status`, its run (`boot`) to notice a restart. */
  private heartbeats = new Map<string, Heartbeat>();
  private livenessTimer?: NodeJS.Timeout;
  /** Open streamed uploads → when the leader last heard from their uploader (create, extend, seal). */
  private streamsHeard = new Map<string, number>();
  /** Creates that come while others are being decided, decided together (see CreateVersions). */
  private readonly creates = new Batcher<CreateVersion>(async (creates) => void (await this.execute({ type: "CreateVersions", at: Date.now(), creates })), CREATES_DECIDED_TOGETHER);
  /** Callers of `wait`, woken when an event about their file is folded. */
  private readonly uploadWatch = new Watchers();
  /** Callers waiting for the fold to reach a sequence, woken once the messages folded in a turn of the event loop are. */
  private readonly foldWatch = new Watchers();
  private foldWakeQueued = false;
  private stopped = false;
  /** This master holds the lease: it decides. */
  private leading = false;
  private lease?: Lease;
  /** The subscriptions only the leader holds (the RPCs that append). */
  private leaderSubs: Subscription[] = [];
  private reconcileTimer?: NodeJS.Timeout;
  private healTimer?: NodeJS.Timeout;
  /** Where the next healing pass goes on from in the unhealthy pieces. */
  private readonly healCursor = new HealCursor();
  /** The sequence the latest snapshot covers, as far as this master knows (read at start or since, or written). */
  private snapshotSeq = 0;
  /** Where the table was when this master last found a snapshot not worth writing yet. */
  private snapshotCheckedSeq = 0;
  private snapshotting = false;
  /** When this master took the lead (see LEADER_SNAPSHOT_DELAY_MS), and its timer to think of a snapshot then. */
  private leadingSince = 0;
  private leaderSnapshotTimer?: NodeJS.Timeout;
  /** While a snapshot is encoded, the messages the tail read, to fold after it (see snapshot). */
  private heldMessages?: LoggedMessage[];
  /** The log folded up to where it ended at start: only then is a snapshot worth thinking of. */
  private caughtUp = false;
  /** The question to JetStream of where the log ends, while one is on its way (see logEndAfter). */
  private logEnd?: { askedAt: number; answer: Promise<number> };

  /** `nc` answers requests and hears heartbeats; `streams` reads and appends to the log (see RoleConnections). */
  private readonly nc: NatsConnection;
  private readonly streams: NatsConnection;

  private constructor(conns: RoleConnections, private readonly opts: MasterOptions) {
    this.nc = conns.rpc;
    this.streams = conns.streams;
    this.cat = catalogue(opts.prefix);
    this.js = jetstream(this.streams);
    this.appender = new Appender(this.js, 0);
    this.log = opts.log ?? ((line) => process.stderr.write(`master: ${line}\n`));
    this.workerTimeoutMs = opts.workerTimeoutMs ?? 5_000;
    this.streamTimeoutMs = opts.streamTimeoutMs ?? DEFAULT_STREAM_TIMEOUT_MS;
    this.uploadCaps = opts.uploadCaps ?? DEFAULT_UPLOAD_CAPS;
  }

  static async start(conns: RoleConnections, opts: MasterOptions = {}): Promise<Master> {
    const master = new Master(conns, opts);
    await master.run();
    return master;
  }

  private async run(): Promise<void> {
    await requireStore(this.streams, this.cat, [this.cat.eventsStream, this.cat.confirmStream, this.cat.abandonStream, this.cat.leaseStream]);
    await throughFailover(() => provisionMaster(this.streams, this.cat));
    await this.followLog();
    this.caughtUp = true;
    const now = Date.now();
    for (const w of this.state.workers.values()) if (w.live) this.lastHeard.set(w.workerId, now);
    this.log(`replayed ${counted(this.state.lastSeq, "event")}: ${counted(this.state.paths.size, "file")}, ${counted(this.state.workers.size, "worker")}`);
    this.serveReads();
    this.subs.push(this.nc.subscribe(this.cat.allHeartbeats(), { callback: (_e, msg) => this.onHeartbeat(msg.subject, msg.data) }));
    if (this.opts.lease === false) this.lead();
    else {
      this.lease = new Lease(this.js, this.cat, this.instanceId, { lead: () => this.lead(), follow: (why) => this.follow(why) });
      this.lease.start();
    }
  }

  /**
   * Fold the log from the latest snapshot (or its first event), then keep tailing it: events
   * appended by another master arrive here too.
   */
  private async followLog(): Promise<void> {
    this.state = (await this.latestSnapshot()) ?? initialState();
    const tail = await readLog(this.streams, this.cat, { follow: true, fromSeq: this.state.lastSeq + 1 }, (message) => {
      if (this.heldMessages) this.heldMessages.push(message);
      else this.foldTailed(message);
    });
    this.tail = tail;
    tail.done.catch((err) => this.tail === tail && this.fatal("the master stopped following the log")(err));
    await this.waitForSeq(tail.startLastSeq);
    this.appender.reset(this.state.lastSeq);
  }

  /** A message the tail read: folded, unless this master appended and folded it already. */
  private foldTailed(message: LoggedMessage): void {
    if (message.seq <= this.state.lastSeq) return; // already folded: our own append
    if (message.seq !== this.state.lastSeq + 1) {
      // Stream sequences have no holes (nothing is deleted); a gap would mean a broken table.
      reportFatal("the master cannot fold the log", `it skipped from ${this.state.lastSeq} to ${message.seq}`, this.opts.onFatal);
      return;
    }
    this.fold(message);
    this.appender.noteLogged(message.seq);
  }

  /** The table of the latest snapshot, if there is a good one: otherwise the log is folded from its first event. */
  private async latestSnapshot(): Promise<State | undefined> {
    try {
      const snapshot = await readLatestSnapshot(this.streams, this.cat);
      if (!snapshot) return undefined;
      const last = await lastSequence(this.streams, this.cat);
      if (!withinLog(snapshot.head, last)) throw new Error(`it covers sequence ${snapshot.head.seq}, past the log's end (${last})`);
      this.snapshotSeq = snapshot.head.seq;
      this.log(`starting from the snapshot at sequence ${snapshot.head.seq} (${counted(snapshot.head.files, "file")})`);
      return snapshot.state;
    } catch (err) {
      this.log(`not starting from the latest snapshot, folding the whole log: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    }
  }

  /**
   * Think of a snapshot once the table is `snapshotEvery` events past the latest one known or
   * the last look. Encoding a large table and its digest takes seconds (about 2 s at 200,000
   * files here), in slices of the event loop, during which the table must not change: a leader
   * would take no decision meanwhile. So a follower writes them, and the leader only once none
   * has come for twice as long (it runs alone). Either first reads the latest head: another may
   * have written one.
   */
  private snapshotIfDue(): void {
    const every = this.opts.snapshotEvery ?? DEFAULT_SNAPSHOT_EVERY;
    const leaderWaits = this.leading && this.state.paths.size >= LARGE_TABLE_FILES && Date.now() - this.leadingSince < LEADER_SNAPSHOT_DELAY_MS;
    if (every > 0 && this.caughtUp && !leaderWaits && !this.refolding && !this.snapshotting && this.state.lastSeq - Math.max(this.snapshotSeq, this.snapshotCheckedSeq) >= every) {
      this.snapshotting = true;
      setImmediate(() => void this.snapshotIfStillDue(every)); // not in the middle of a decision
    }
  }

  private async snapshotIfStillDue(every: number): Promise<void> {
    try {
      const head = await latestSnapshotHead(this.streams, this.cat);
      if (head && withinLog(head, this.state.lastSeq)) this.snapshotSeq = Math.max(this.snapshotSeq, head.seq);
    } catch (err) {
      this.log(`could not read the latest snapshot's head: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (this.state.lastSeq - this.snapshotSeq >= (this.leading ? 2 * every : every) && !this.refolding) return this.snapshot();
    this.snapshotCheckedSeq = this.state.lastSeq;
    this.snapshotting = false;
  }

  /** Write a snapshot of the table as it is now, once the log holds all of it. */
  private async snapshot(): Promise<void> {
    const started = Date.now();
    // A follower steps out of the masters' read queue while its fold waits (reads that must see a sequence would wait): the others answer meanwhile.
    let readsPaused = !this.leading;
    const resumeReads = () => {
      if (readsPaused && !this.stopped) this.serveReads();
      readsPaused = false;
    };
    let seq = this.state.lastSeq;
    try {
      if (readsPaused) await Promise.all(this.readSubs.splice(0).map((sub) => sub.drain()));
      // The table is encoded and digested in slices of the event loop, and must not change
      // in between: no decision is taken meanwhile (this is the leader's turn; a follower
      // takes none), and what the tail reads waits in `heldMessages`, folded once both are
      // made. Copying the table first would cost as much as encoding it.
      const { bytes, digest, files } = await this.inTurn(async () => {
        this.heldMessages = [];
        try {
          seq = this.state.lastSeq;
          const table = this.state;
          return { bytes: await encodeTable(table), digest: await stateDigestInSlices(table), files: table.paths.size };
        } finally {
          const held = this.heldMessages;
          this.heldMessages = undefined;
          for (const message of held) this.foldTailed(message);
        }
      });
      resumeReads();
      await this.appender.whenLogged(seq);
      const head = await writeSnapshot(this.streams, this.cat, bytes, { seq, digest, files });
      this.log(`snapshot at sequence ${seq}: ${counted(files, "file")}, ${counted(bytes.length, "byte")} in ${counted(head.chunks, "chunk")}, ${Date.now() - started} ms`);
    } catch (err) {
      this.log(`no snapshot at sequence ${seq}: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      resumeReads();
      // Tried again only after as many events again, whatever happened.
      this.snapshotSeq = seq;
      this.snapshotting = false;
    }
  }

  /**
   * The table ran ahead of the log and the log did not take it (an append was refused: a
   * rival master appended first; or its fate is unknown): fold it again from the first event.
   */
  private async refold(): Promise<void> {
    const why = this.appender.broken;
    this.refolding = (async () => {
      await this.appender.settled();
      this.log(`folding the log again: ${why instanceof Error ? why.message : String(why)}`);
      this.tail?.stop();
      await this.followLog();
    })();
    try {
      await this.refolding;
    } finally {
      this.refolding = undefined;
    }
  }

  /**
   * A line about garbage on `subject`, at most once per LOG_QUIET_MS per subject (with how many
   * were not shown): whoever may publish there cannot flood the master's log.
   */
  private logRarely(subject: string, line: string): void {
    const now = Date.now();
    const last = this.quiet.get(subject);
    if (last && now - last.at < LOG_QUIET_MS) {
      last.unshown += 1;
      return;
    }
    if (this.quiet.size >= QUIET_SUBJECTS_KEPT) this.quiet.clear();
    this.quiet.set(subject, { at: now, unshown: 0 });
    this.log(last?.unshown ? `${line} (and ${last.unshown} more like it not shown)` : line);
  }

  private fatal(what: string) {
    return (err: unknown) => this.stopped || reportFatal(what, err, this.opts.onFatal);
  }

  /**
   * This master decides from now on: it answers the RPCs that append, reads confirmations,
   * watches the workers' liveness and heals. Every other master only follows the log and
   * answers reads.
   */
  private lead(): void {
    if (this.leading || this.stopped) return;
    this.leading = true;
    this.log(`leading (master ${this.instanceId})`);
    const now = Date.now();
    // A worker this master has not heard from yet gets a full timeout before it counts as lost.
    for (const w of this.state.workers.values()) if (w.live && !this.lastHeard.has(w.workerId)) this.lastHeard.set(w.workerId, now);
    // Streams' uploaders spoke to whoever led meanwhile: each open stream gets a full timeout.
    this.streamsHeard.clear();
    this.leaderSubs = this.serveWrites();
    // A long log folded from its first event is worth a snapshot now (a large table's, once followers had their chance), not at the next event.
    this.leadingSince = Date.now();
    this.snapshotIfDue();
    this.leaderSnapshotTimer = setTimeout(() => this.snapshotIfDue(), LEADER_SNAPSHOT_DELAY_MS);
    this.livenessTimer = setInterval(() => {
      this.checkLiveness();
      this.checkStreams();
    }, Math.max(100, Math.floor(this.workerTimeoutMs / 4)));
    this.healTimer = setInterval(() => hasWork(this.state, Date.now()) && this.reconcileSoon(), HEAL_TICK_MS);
    this.reconcileSoon();
    // What the live workers really hold: the log may not know about a disk that changed.
    for (const w of this.state.workers.values()) if (w.live) this.inventorySoon(w.workerId);
    void (async () => {
      // Uploads given up while no master ran are abandoned before any confirmation can commit them.
      await this.drainAbandons();
      if (!this.leading) return;
      this.consumeConfirmations().catch(this.fatal("the master stopped reading confirmations"));
      this.consumeAbandons().catch(this.fatal("the master stopped reading abandoned uploads"));
    })().catch(this.fatal("the master could not read abandoned uploads"));
  }

  /** The masters' shared durable consumer on `stream` (its info may be asked mid-failover). */
  private durable(stream: string) {
    return throughFailover(() => this.js.consumers.get(stream, this.cat.masterConfirmConsumer));
  }

  private async drainAbandons(): Promise<void> {
    const consumer = await this.durable(this.cat.abandonStream);
    for (;;) {
      // Abandoning is idempotent, and what a failed fetch left unacknowledged comes again.
      const taken = await throughFailover(async () => {
        let n = 0;
        for await (const m of await consumer.fetch({ max_messages: 256, expires: 1_000 })) {
          n += 1;
          await this.onAbandon(m);
        }
        return n;
      });
      if (taken === 0 || !this.leading) return;
    }
  }

  private async consumeAbandons(): Promise<void> {
    const consumer = await this.durable(this.cat.abandonStream);
    const abandons = await consumer.consume({ max_messages: 64, expires: PULL_EXPIRES_MS });
    if (!this.leading) return void (await abandons.close());
    this.abandons = abandons;
    for await (const m of abandons) {
      if (!this.leading) m.nak();
      else await this.onAbandon(m);
    }
  }

  private async onAbandon(m: JsMsg): Promise<void> {
    let note: { uploadId: string; reason: string };
    try {
      // Named by its key, which only the uploader (and the masters) know: an id alone gives up nothing.
      const { uploadKey, reason } = parse(AbandonNote, decode(m.data), "abandon note");
      note = { uploadId: uploadIdOf(uploadKey), reason };
      if (m.subject !== this.cat.abandon(note.uploadId)) throw new Error(`upload ${note.uploadId} on ${m.subject}`);
    } catch (err) {
      this.logRarely(m.subject, `dropped an abandon note on ${m.subject}: ${err instanceof Error ? err.message : String(err)}`);
      return m.term();
    }
    try {
      await this.execute({ type: "AbandonUpload", at: Date.now(), uploadId: note.uploadId, code: ErrorCodes.UPLOAD_ABANDONED, reason: note.reason });
      m.ack();
    } catch (err) {
      // An upload the log never had (its create never landed) has nothing to abandon.
      if (asDfsError(err).code === ErrorCodes.NOT_FOUND) return m.ack();
      if (!this.stopped) m.nak(1_000);
    }
  }

  /** Back to following: another master decides (or this one is stopping). */
  private follow(why: string): void {
    if (!this.leading) return;
    this.leading = false;
    this.log(`following: ${why}`);
    for (const sub of this.leaderSubs) sub.unsubscribe();
    this.leaderSubs = [];
    if (this.livenessTimer) clearInterval(this.livenessTimer);
    if (this.healTimer) clearInterval(this.healTimer);
    if (this.reconcileTimer) clearTimeout(this.reconcileTimer);
    if (this.leaderSnapshotTimer) clearTimeout(this.leaderSnapshotTimer);
    this.reconcileTimer = undefined;
    void this.confirms?.close();
    this.confirms = undefined;
    void this.abandons?.close();
    this.abandons = undefined;
  }

  /** Fold a message of the log, as every reader of the log does; a rejected one gets one line. */
  private fold(message: LoggedMessage): void {
    const { event, rejected } = foldLogged(this.state, this.cat, message);
    if (rejected !== undefined) this.log(`rejected seq ${message.seq} on ${message.subject}: ${rejected}`);
    else if (event) this.folded(event);
    this.wakeFoldWatchers();
    this.snapshotIfDue();
  }

  /**
   * Wake the callers waiting for the fold once the messages at hand are folded, not at every
   * one: catching up with a long log folds thousands of messages a turn of the event loop, and
   * each wake set every waiter's timer again (a tenth of a master's start-up CPU).
   */
  private wakeFoldWatchers(): void {
    if (this.foldWakeQueued) return;
    this.foldWakeQueued = true;
    setImmediate(() => {
      this.foldWakeQueued = false;
      this.foldWatch.changed(FOLDED);
    });
  }

  /** What a fact just folded sets in motion: woken waiters, healing, a new worker's inventory. */
  private folded(event: DfsEvent): void {
    if ("fileId" in event) this.uploadWatch.changed(event.fileId);
    if (!this.leading || this.refolding) return; // replaying, or following: the leader decides
    if (RECONCILE_AFTER.has(event.type)) this.reconcileSoon();
    if (event.type === "WorkerJoined") this.inventorySoon(event.workerId);
  }

  private inventorySoon(workerId: string): void {
    this.takeInventory(workerId).catch((err) => this.log(`no inventory from worker ${workerId}: ${err instanceof Error ? err.message : String(err)}`));
  }

  /** Wait until the tail has folded the log up to `seq`. */
  private async waitForSeq(seq: number, timeoutMs = CATCH_UP_TIMEOUT_MS): Promise<void> {
    // A long log takes long to fold: what must not last is a fold that stopped moving.
    let deadline = Date.now() + timeoutMs;
    let reached = this.state.lastSeq;
    while (this.state.lastSeq < seq) {
      if (this.state.lastSeq > reached) {
        reached = this.state.lastSeq;
        deadline = Date.now() + timeoutMs;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new DfsError(ErrorCodes.TIMEOUT, `master could not catch up to sequence ${seq} (at ${this.state.lastSeq}, for ${timeoutMs} ms)`);
      await this.foldWatch.next(FOLDED, left);
    }
  }

  /** Run `step` after every step handed in before it. */
  private inTurn<T>(step: () => T | Promise<T>): Promise<T> {
    const run = this.turn.then(step);
    this.turn = run.catch(() => undefined);
    return run;
  }

  /**
   * Decide and append: decisions are taken in turn, each folded at once, and their appends
   * pipelined (see Appender); resolves once the decision's events are in the log. A refused
   * append means: fold the log again, decide again.
   */
  async execute(cmd: Command): Promise<DfsEvent[]> {
    const appended: DfsEvent[] = [];
    for (let attempt = 0; attempt < MAX_DECISION_ATTEMPTS; attempt++) {
      const decision = await this.inTurn(async () => {
        if (this.appender.broken !== undefined) await this.refold();
        let events: DfsEvent[];
        try {
          events = decide(this.state, cmd);
        } catch (err) {
          // Part of this decision landed before a rival's event; what it says now is settled.
          if (appended.length > 0) return undefined;
          throw err;
        }
        if (events.length === 0) return undefined;
        const base = this.state.lastSeq;
        const messages = events.map((event, i) => ({ seq: base + 1 + i, subject: subjectFor(this.cat, event), data: encode(event) }));
        // Folded from the bytes as they will be logged, so this table is the one every reader of the log gets.
        for (const message of messages) this.fold(message);
        const pipelined = this.lease?.firm ?? false;
        const sent = this.appender.append(messages, !pipelined);
        // Not pipelined: the next decision waits until these landed (or were refused).
        if (!pipelined) await sent;
        return { events, sent };
      });
      if (!decision) return appended;
      const { landed, failure } = await decision.sent;
      appended.push(...decision.events.slice(0, landed));
      if (failure === undefined) return appended;
      if (!(failure instanceof AppendConflict)) throw failure;
      this.conflicts += 1;
    }
    throw new DfsError(ErrorCodes.INTERNAL, `gave up on ${cmd.type} after ${MAX_DECISION_ATTEMPTS} lost races`);
  }

  /** Whether an upload's version is in the table with every piece placed on its replicas. */
  private isPlaced(uploadId: string): boolean {
    const v = this.state.uploads.get(uploadId);
    return v !== undefined && v.pieces.length === v.pieces.filter((p) => p.peers.length >= v.replicas).length;
  }

  /** Reads wait until the master has folded what the caller has already seen. */
  private async readAfter(request: unknown): Promise<void> {
    const seq = (request as { atLeastSeq?: unknown })?.atLeastSeq;
    if (typeof seq === "number" && Number.isSafeInteger(seq) && seq > 0) return this.waitForSeq(seq, 5_000);
    // A caller that has seen nothing (a new process, right after another's put) reads at least
    // what the log held when it asked: a follower may lag (by seconds while a server of the
    // cluster is lost), and the leader's table is never behind the log.
    if (!this.leading) await this.waitForSeq(await this.logEndAfter(performance.now()), 5_000);
  }

  /**
   * The log's last sequence as JetStream says it at or after `asked` (a `performance.now()`):
   * callers that come together (reads from new processes, confirmations of orders not folded
   * yet) share one question, so a flood of them is not a flood of JetStream requests, and
   * none gets an answer from before it came.
   */
  private async logEndAfter(asked: number): Promise<number> {
    for (;;) {
      const current = this.logEnd;
      if (current && current.askedAt >= asked) return current.answer;
      if (current) {
        // Asked before this read came: wait for it to end, then ask (or join whoever asked) anew.
        await current.answer.catch(() => undefined);
        if (this.logEnd === current) this.logEnd = undefined;
        continue;
      }
      const answer = lastSequence(this.streams, this.cat);
      const query = { askedAt: performance.now(), answer };
      this.logEnd = query;
      void answer.catch(() => undefined).finally(() => this.logEnd === query && (this.logEnd = undefined));
      return answer;
    }
  }

  private rpc(op: MasterOp, handler: (request: unknown) => Promise<unknown> | unknown): Subscription {
    const onInternalError = (err: unknown) => this.log(`internal error: ${err instanceof Error ? err.stack : String(err)}`);
    const answer = async (request: unknown) => {
      for (let attempt = 1; ; attempt++) {
        await this.refolding;
        const reply = await handler(request);
        try {
          // The table may be ahead of the log by the appends in flight: nothing is told before the log has it.
          await this.appender.whenLogged(this.state.lastSeq);
          return reply;
        } catch (err) {
          if (attempt >= MAX_ANSWER_ATTEMPTS || this.appender.broken === undefined) throw err;
          // Answer again from the table folded again from the log.
          await this.inTurn(async () => {
            if (this.appender.broken !== undefined) await this.refold();
          });
        }
      }
    };
    return serve(this.nc, this.cat.masterRpc(op), answer, { queue: this.cat.masterQueue, onInternalError });
  }

  /** The RPCs that decide (and append): only the leader answers them. */
  private serveWrites(): Subscription[] {
    const rpc = (op: MasterOp, handler: (request: unknown) => Promise<unknown> | unknown) => this.rpc(op, handler);
    return [
      rpc("create", async (request) => {
        if ((request as { streamed?: unknown })?.streamed !== true) return this.createVersion(request);
        const req = parse(CreateStreamRequest, request, "create request");
        this.streamsHeard.set(req.uploadId, Date.now());
        const { uploadId, uploader, path, pieceSize, replicas } = req;
        await this.execute({ type: "CreateStream", at: Date.now(), uploadId, uploader, newFileId: nuid.next(), path, pieceSize, replicas, caps: this.uploadCaps });
        // How long a quiet stream lasts here: its uploader says it is still there well within it.
        return { ...uploadPlan(this.state, req.uploadId), seq: this.state.lastSeq, quietMs: this.streamTimeoutMs };
      }),
      rpc("createMany", async (request) => {
        const { creates } = parse(CreateManyRequest, request, "createMany request");
        // Each reaches the creates' batcher in this turn (before any of them waits), so they are
        // decided together; each is answered as a create alone would be, failures included.
        const answers = await Promise.all(
          creates.map((create) =>
            this.createVersion(create).then(
              (result): CreateAnswer<typeof result> => ({ ok: true, result }),
              (err: unknown): CreateAnswer<never> => {
                const failure = codedFailure(err);
                if (failure.code === ErrorCodes.INTERNAL) this.log(`internal error: ${err instanceof Error ? err.stack : String(err)}`);
                return { ok: false, ...failure };
              },
            ),
          ),
        );
        return { answers };
      }),
      rpc("extend", async (request) => {
        const req = parse(ExtendRequest, request, "extend request");
        const uploadId = uploadIdOf(req.uploadKey);
        this.streamsHeard.set(uploadId, Date.now());
        await this.execute({ type: "ExtendUpload", at: Date.now(), uploadId, pieces: req.pieces });
        return { seq: this.state.lastSeq };
      }),
      rpc("seal", async (request) => {
        const req = parse(SealRequest, request, "seal request");
        const uploadId = uploadIdOf(req.uploadKey);
        this.streamsHeard.set(uploadId, Date.now());
        await this.execute({ type: "SealUpload", at: Date.now(), uploadId, size: req.size, sha256: req.sha256 });
        return { seq: this.state.lastSeq };
      }),
      rpc("abort", async (request) => {
        const req = parse(AbortRequest, request, "abort request");
        await this.execute({ type: "AbandonUpload", at: Date.now(), uploadId: uploadIdOf(req.uploadKey), code: ErrorCodes.UPLOAD_ABANDONED, reason: req.reason });
        return { seq: this.state.lastSeq };
      }),
      rpc("retention", async (request) => {
        const req = parse(RetentionRequest, request, "retention request");
        await this.execute({ type: "SetRetention", at: Date.now(), keepVersions: req.keepVersions, keepForMs: req.keepForMs });
        return { seq: this.state.lastSeq, retention: { ...this.state.retention } };
      }),
      rpc("delete", async (request) => {
        const req = parse(DeleteRequest, request, "delete request");
        await this.execute({ type: "DeleteFile", at: Date.now(), path: req.path, version: req.version });
        return { seq: this.state.lastSeq };
      }),
    ];
  }

  /**
   * A version of a declared file (not a stream): decided with the creates that come meanwhile,
   * and answered once it is no longer pending or after the request's `waitMs`.
   */
  private async createVersion(request: unknown): Promise<UploadPlan & { seq: number }> {
    const req = parse(CreateRequest, request, "create request");
    if (req.pieceHashes.length % 32 !== 0) throw new DfsError(ErrorCodes.BAD_REQUEST, "pieceHashes must be 32 bytes per piece");
    const hashes = Buffer.from(req.pieceHashes.buffer, req.pieceHashes.byteOffset, req.pieceHashes.length);
    const pieces = [];
    for (let i = 0; i * 32 < hashes.length; i++) {
      const size = req.pieceSize > 0 ? Math.min(req.pieceSize, req.size - i * req.pieceSize) : 0;
      pieces.push({ index: i, size, sha256: hashes.subarray(i * 32, i * 32 + 32).toString("hex") });
    }
    const cmd = {
      type: "CreateVersion",
      at: Date.now(),
      uploadId: req.uploadId,
      uploader: req.uploader,
      newFileId: nuid.next(),
      path: req.path,
      size: req.size,
      sha256: req.sha256,
      pieceSize: req.pieceSize,
      replicas: req.replicas,
      pieces,
      caps: this.uploadCaps,
    } as const;
    // A new upload is decided with the creates that came meanwhile. One the batch left out (it
    // then says why it is refused), one part of whose batch lost a race to the log, a retry
    // (checked against the first create, with peers to place again), and one whose upload id the
    // batch placed for another create of that id (then refused) are decided alone.
    const retried = this.state.uploads.has(req.uploadId);
    if (!retried) await this.creates.add(cmd).catch(() => undefined);
    if (retried || !this.isPlaced(req.uploadId) || !isSameUpload(this.state.uploads.get(req.uploadId)!, cmd)) await this.execute(cmd);
    let plan = uploadPlan(this.state, req.uploadId);
    for (const deadline = Date.now() + (req.waitMs ?? 0); plan.status === "pending" && Date.now() < deadline; plan = uploadPlan(this.state, req.uploadId)) {
      await this.uploadWatch.next(plan.fileId, deadline - Date.now());
    }
    return { ...plan, seq: this.state.lastSeq };
  }

  /** The RPCs that read the table: every master answers them (after folding what the caller saw). */
  private serveReads(): void {
    const replyBytes = replyBudgetFor(this.nc.info?.max_payload ?? 1024 * 1024);
    const rpc = (op: MasterOp, handler: (request: unknown) => Promise<unknown> | unknown) => this.readSubs.push(this.rpc(op, handler));
    rpc("wait", async (request) => {
      await this.readAfter(request);
      const req = parse(WaitRequest, request, "wait request");
      const progress = () => uploadProgress(this.state, req.uploadId, this.state.lastSeq, req.pieces);
      let now = progress();
      if (now.status === "pending" && now.stored === req.stored && req.waitMs) {
        await this.uploadWatch.next(now.fileId, req.waitMs);
        now = progress();
      }
      return now;
    });
    rpc("locate", async (request) => {
      await this.readAfter(request);
      const req = parse(LocateRequest, request, "locate request");
      return locatePage(this.state, req.path, req.version, req.fromPiece, req.limit, replyBytes);
    });
    rpc("stat", async (request) => {
      await this.readAfter(request);
      return stat(this.state, parse(StatRequest, request, "stat request").path);
    });
    rpc("list", async (request) => {
      await this.readAfter(request);
      const req = parse(ListRequest, request, "list request");
      return listPage(this.state, req.prefix, req.after, req.limit, replyBytes);
    });
    rpc("status", async (request) => {
      await this.readAfter(request);
      parse(StatusRequest, request, "status request");
      const status = storeStatus(this.state, Date.now());
      // Free space is what the workers' heartbeats say: it is not in the log.
      return { ...status, workers: status.workers.map((w) => ({ ...w, freeBytes: this.heartbeats.get(w.workerId)?.freeBytes })) };
    });
    rpc("pieces", async (request) => {
      await this.readAfter(request);
      return piecesHealth(this.state, parse(PiecesRequest, request, "pieces request").sha256s, Date.now());
    });
    rpc("reader", async (request) => {
      const { fromSeq } = parse(ReaderRequest, request, "reader request");
      return openReader(this.streams, this.cat, fromSeq ?? 1);
    });
    rpc("state", async (request) => {
      const req = parse(StateRequest, request, "state request");
      // Behind pending decisions, so the answer is a state the log really had (mid-decision
      // the table may be ahead of what the caller could replay).
      return this.turn.then(() => ({
        masterId: this.instanceId,
        lastSeq: this.state.lastSeq,
        digest: stateDigest(this.state),
        conflicts: this.conflicts,
        workers: [...this.state.workers.values()].map((w) => ({ workerId: w.workerId, live: w.live, assignedBytes: w.assignedBytes })),
        ...(req.full ? { projection: projection(this.state) } : {}),
      }));
    });
  }

  private onHeartbeat(subject: string, data: Uint8Array): void {
    let hb: Heartbeat;
    try {
      hb = parse(Heartbeat, decode(data), "heartbeat");
      // A worker speaks only for itself: its permissions pin the subject, the subject pins the id.
      if (subject !== this.cat.heartbeat(hb.workerId)) throw new Error(`worker ${hb.workerId} on ${subject}`);
    } catch (err) {
      this.logRarely(subject, `ignored a heartbeat on ${subject}: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    this.lastHeard.set(hb.workerId, Date.now());
    const boot = this.heartbeats.get(hb.workerId)?.boot;
    this.heartbeats.set(hb.workerId, hb);
    if (!this.leading) return;
    // Restarted faster than it could be missed: what its store holds is asked again all the same.
    if (boot !== undefined && hb.boot !== undefined && boot !== hb.boot && this.state.workers.get(hb.workerId)?.live) this.inventorySoon(hb.workerId);
    if (this.state.workers.get(hb.workerId)?.live || this.joining.has(hb.workerId)) return;
    this.joining.add(hb.workerId);
    this.execute({ type: "NoteHeartbeat", at: Date.now(), workerId: hb.workerId })
      .then((events) => events.length && this.log(`worker ${hb.workerId} joined`))
      .catch((err) => this.log(`could not record worker ${hb.workerId}: ${err}`))
      .finally(() => this.joining.delete(hb.workerId));
  }

  /**
   * Streamed uploads whose uploader went quiet before sealing are abandoned: nothing else would
   * end one whose planned pieces are all stored (a worker finds a dead uploader only by pulling).
   */
  private checkStreams(): void {
    const now = Date.now();
    const timeoutMs = this.streamTimeoutMs;
    const open = new Set<string>();
    for (const uploadId of this.state.pendingUploads) {
      if (this.state.uploads.get(uploadId)?.stream !== "open") continue;
      open.add(uploadId);
      // A leader that has not heard from it yet gives it a full timeout.
      const heard = this.streamsHeard.get(uploadId) ?? now;
      this.streamsHeard.set(uploadId, heard);
      const quietMs = now - heard;
      if (quietMs <= timeoutMs) continue;
      this.streamsHeard.set(uploadId, now); // one decision per timeout, even if the append is slow
      const reason = `the uploader said nothing for ${Math.round(quietMs / 1000)} s before the end of its stream`;
      this.execute({ type: "AbandonUpload", at: now, uploadId, code: ErrorCodes.TIMEOUT, reason })
        .then((events) => events.length && this.log(`upload ${uploadId} abandoned: ${reason}`))
        .catch((err) => this.log(`could not abandon upload ${uploadId}: ${err}`));
    }
    for (const uploadId of this.streamsHeard.keys()) if (!open.has(uploadId)) this.streamsHeard.delete(uploadId);
  }

  private checkLiveness(): void {
    const now = Date.now();
    for (const w of this.state.workers.values()) {
      if (!w.live) continue;
      const heard = this.lastHeard.get(w.workerId) ?? now;
      if (!this.lastHeard.has(w.workerId)) this.lastHeard.set(w.workerId, now);
      const silentMs = now - heard;
      if (silentMs <= this.workerTimeoutMs) continue;
      this.lastHeard.set(w.workerId, now); // one report per timeout, even if the append is slow
      this.execute({ type: "NoteSilence", at: now, workerId: w.workerId, silentMs })
        .then((events) => events.length && this.log(`worker ${w.workerId} lost: silent for ${silentMs} ms`))
        .catch((err) => this.log(`could not record worker ${w.workerId} lost: ${err}`));
    }
  }

  private async consumeConfirmations(): Promise<void> {
    const consumer = await this.durable(this.cat.confirmStream);
    const confirms = await consumer.consume({ max_messages: 64, expires: PULL_EXPIRES_MS });
    // Leadership may have gone while this was set up: then the next leader reads them.
    if (!this.leading) return void (await confirms.close());
    this.confirms = confirms;
    const confirming = new Limiter(CONFIRMATIONS_IN_FLIGHT);
    for await (const m of confirms) {
      if (!this.leading) {
        m.nak();
        continue;
      }
      let reports: WorkerReport[];
      try {
        const message = parse(WorkerMessage, decode(m.data), "worker report");
        reports = "reports" in message ? message.reports : [message];
        // A worker speaks only for itself, in every report of a batch too.
        const other = [message, ...reports].find((said) => m.subject !== this.cat.confirm(said.workerId));
        if (other) throw new Error(`worker ${other.workerId} on ${m.subject}`);
      } catch (err) {
        this.logRarely(m.subject, `dropped a confirmation on ${m.subject}: ${err instanceof Error ? err.message : String(err)}`);
        m.term();
        continue;
      }
      // Decided as they come, without waiting for one another's appends (the consumer's
      // unacknowledged limit bounds them); the message is acknowledged once all its reports are logged.
      Promise.all(
        reports.map((report) =>
          confirming.run(async () => {
            // A rival master may have decided what this answers in events we have not folded yet.
            if (!this.knowsOrder(report)) await this.waitForSeq(await this.logEndAfter(performance.now()));
            return this.execute(commandFor(report, Date.now()));
          }),
        ),
      ).then(
        () => m.ack(),
        (err) => {
          if (this.stopped) return;
          // All of them again later: what was recorded already changes nothing the second time.
          this.log(`confirmation from ${reports[0]!.workerId} not recorded yet: ${err instanceof Error ? err.message : String(err)}`);
          m.nak(1_000);
        },
      );
    }
  }

  /** Whether the table already has the assignment or order a worker's report answers. */
  private knowsOrder(report: WorkerReport): boolean {
    if (!("kind" in report)) {
      const piece = versionOf(this.state, report.fileId, report.version)?.pieces[report.piece];
      return piece?.peers.some((p) => p.workerId === report.workerId) ?? false;
    }
    if (report.kind === "copy") return this.state.content.get(report.sha256)?.copying.has(report.workerId) ?? false;
    return true;
  }

  /** Soon (once per burst of changes), decide what the table owes: drops, re-placed shares, copies. */
  private reconcileSoon(): void {
    if (this.reconcileTimer || this.stopped) return;
    this.reconcileTimer = setTimeout(() => {
      const pieces = this.healCursor.next(this.state, this.opts.healPassPieces ?? HEAL_PASS_PIECES);
      this.execute({ type: "Reconcile", at: Date.now(), pieces })
        .then((events) => {
          if (events.length) this.log(`healing: ${summarise(events)}`);
        })
        .catch((err) => this.log(`could not reconcile: ${err instanceof Error ? err.message : String(err)}`))
        .finally(() => (this.reconcileTimer = undefined));
    }, RECONCILE_DELAY_MS);
  }

  /** Ask a worker that joined what its store holds, and turn the differences into facts. */
  private async takeInventory(workerId: string): Promise<void> {
    const countedWhenAsked = countedOn(this.state, workerId);
    const held = new Set<string>();
    let after: string | undefined;
    do {
      const page = await call<InventoryPage>(this.nc, this.cat.workerRpc(workerId, "inventory"), { after, limit: INVENTORY_PAGE });
      for (const sha256 of page.sha256s) held.add(sha256);
      after = page.next;
    } while (after !== undefined && !this.stopped);
    const count = held.size;
    // A decision at a time of at most INVENTORY_PIECES_PER_DECISION pieces, each appended before
    // the next (the lease is renewed in between), until nothing is left to say.
    const events: DfsEvent[] = [];
    // Each but the last speaks of a full decision's pieces: of what it holds, or of what it should.
    const mostDecisions = Math.ceil((count + this.state.content.size) / INVENTORY_PIECES_PER_DECISION) + 1;
    for (let decisions = 0; decisions < mostDecisions && !this.stopped; decisions++) {
      const decided = await this.execute({ type: "ReconcileInventory", at: Date.now(), workerId, held, countedWhenAsked });
      if (decided.length === 0) break;
      events.push(...decided);
      // Bytes it was told to drop are no longer what its account says to the next decision.
      for (const e of decided) if (e.type === "PiecesDropped") for (const sha256 of e.sha256s) held.delete(sha256);
    }
    this.log(`worker ${workerId} holds ${counted(count, "piece")}${events.length ? `: ${summarise(events)}` : ""}`);
  }

  async stop(): Promise<void> {
    this.lease?.stop();
    this.follow("stopping");
    this.stopped = true;
    this.uploadWatch.wakeAll();
    this.foldWatch.wakeAll();
    if (this.livenessTimer) clearInterval(this.livenessTimer);
    if (this.healTimer) clearInterval(this.healTimer);
    if (this.reconcileTimer) clearTimeout(this.reconcileTimer);
    for (const sub of [...this.subs, ...this.readSubs]) sub.unsubscribe();
    await this.confirms?.close();
    this.tail?.stop();
    await this.turn;
    await this.appender.settled();
  }
}
