// Rebuild the master's table from the log alone: what `dfs replay` prints, what a check
// against the live master or a snapshot compares with, what `dfs tail` judges events by, and
// the table at any point in the past (`--at`).
import type { NatsConnection } from "@nats-io/transport-node";
import type { Catalogue } from "../streams/catalogue.js";
import type { DecodedEvent } from "./codec.js";
import { BytesReferrers, bytesNamed } from "./byte-referrers.js";
import { foldLogged } from "./fold.js";
import { DfsError, ErrorCodes, asDfsError, quote } from "./errors.js";
import { EVENT_TYPES } from "./events.js";
import { describePoint, isFrom, isPast, type LogPoint } from "./log-point.js";
import { lastSequence, mirrorReaches, openReader, readLog, type LogReader, type Reader, type TimedMessage } from "./log.js";
import { callRetrying } from "./rpc.js";
import { isUnder, normalisePath, normalisePrefix } from "./paths.js";
import { locate, type Location } from "./queries.js";
import { initialState, type State } from "./state.js";
import { decodeTable } from "./snapshot.js";
import { getSnapshotChunks, latestSnapshotHead, withinLog } from "./master/snapshots.js";

export interface ReplayResult {
  /** The table, with the events it rejected counted in `state.rejected` as the master counts them. */
  state: State;
}

/**
 * Fold the log from its first event up to `until` (default: its end as of now), read from the
 * audit mirror, as readers do: the table right after that point. Reading stops there. What
 * `dfs replay` prints, so it never starts from a snapshot: it is what snapshots are checked by.
 */
export async function replayLog(nc: NatsConnection, cat: Catalogue, until?: LogPoint, onEntry?: (entry: AuditEntry) => void): Promise<ReplayResult> {
  const state = initialState();
  const last = await logEnd(nc, cat, until);
  await readFrom(nc, cat, 1, last, (message) => {
    if (until && isPast(until, message)) return "stop";
    const outcome = foldLogged(state, cat, message);
    onEntry?.({ ...message, ...outcome });
  });
  return { state };
}

/**
 * The table right after `point` (what `ls`, `stat` and `cat` answer from with `--at`): the
 * latest snapshot and the events after it when it covers a sequence at or before the point,
 * the whole log up to the point otherwise. Either way the same table.
 */
export async function tableAt(nc: NatsConnection, cat: Catalogue, point: LogPoint): Promise<ReplayResult> {
  return { state: await foldTowards(nc, cat, point, { stopPastPoint: true }) };
}

/**
 * Fold the whole log (to its end as of now), handing `atPoint` the table as it stood right
 * after `point` on the way (it must read what it needs then: the fold goes on in place).
 * Starts from the latest snapshot when it covers a sequence at or before the point.
 */
export async function replayPast(nc: NatsConnection, cat: Catalogue, point: LogPoint, atPoint: (table: State) => void): Promise<ReplayResult> {
  let reached = false;
  const reach = (state: State) => {
    if (reached) return;
    reached = true;
    atPoint(state);
  };
  const state = await foldTowards(nc, cat, point, { stopPastPoint: false, beforeEach: (message, table) => isPast(point, message) && reach(table) });
  reach(state);
  return { state };
}

/** The log's last sequence now; a sequence `within` names must be in the log (BAD_REQUEST). The audit mirror is waited for up to it. */
async function logEnd(nc: NatsConnection, cat: Catalogue, within?: LogPoint): Promise<number> {
  const last = await lastSequence(nc, cat);
  if (within && "seq" in within && within.seq > last) {
    throw new DfsError(ErrorCodes.BAD_REQUEST, `the log ends at sequence ${last}: there is no sequence ${within.seq} yet`);
  }
  await mirrorReaches(nc, cat, last);
  return last;
}

/**
 * Fold the log towards `point`, from the latest snapshot if it covers a sequence at or before
 * the point, else from the first event: up to the point (`stopPastPoint`) or to the log's end
 * as of now. `beforeEach` sees each message and the table before it is folded in.
 */
async function foldTowards(
  nc: NatsConnection,
  cat: Catalogue,
  point: LogPoint,
  opts: { stopPastPoint: boolean; beforeEach?: (message: TimedMessage, table: State) => void },
): Promise<State> {
  const last = await logEnd(nc, cat, point);
  /** The table folded on from `start` (covering sequences up to `covered`), or undefined if `covered` is past the point. */
  const foldFrom = async (start: State, covered: number): Promise<State | undefined> => {
    let usable = covered === 0;
    // A snapshot's reader starts at the last message it covers: whether that one is past the
    // point (a time) is known only from the message's timestamp.
    await readFrom(nc, cat, Math.max(1, covered), last, (message) => {
      if (message.seq === covered) {
        usable = !isPast(point, message);
        return usable ? undefined : "stop";
      }
      if (opts.stopPastPoint && isPast(point, message)) return "stop";
      opts.beforeEach?.(message, start);
      foldLogged(start, cat, message);
    });
    return usable ? start : undefined;
  };
  const snapshot = await snapshotBefore(nc, cat, point, last);
  return (snapshot && (await foldFrom(snapshot, snapshot.lastSeq))) || (await foldFrom(initialState(), 0))!;
}

/**
 * The table of the latest snapshot, when it may cover a sequence at or before `point` and
 * checks out as a master checks it: its chunks' size, SHA-256 and format, and a sequence not
 * past the log's end (`last`: a snapshot of an events stream made again). Otherwise, or when
 * it cannot be read, undefined: the log is folded from its first event, which gives the same table.
 */
async function snapshotBefore(nc: NatsConnection, cat: Catalogue, point: LogPoint, last: number): Promise<State | undefined> {
  try {
    const head = await latestSnapshotHead(nc, cat);
    if (!head || head.seq === 0 || !withinLog(head, last) || ("seq" in point && head.seq > point.seq)) return undefined;
    return decodeTable(head, await getSnapshotChunks(nc, cat, head));
  } catch {
    return undefined;
  }
}

/**
 * Deliver the log from `fromSeq`, through a reader of the audit mirror, to its end as of now
 * (`last`), or until `onMessage` says "stop".
 */
async function readFrom(nc: NatsConnection, cat: Catalogue, fromSeq: number, last: number, onMessage: (message: TimedMessage) => "stop" | void): Promise<void> {
  if (fromSeq > last) return;
  let stopped = false;
  let reader: LogReader | undefined = undefined;
  reader = await readLog(nc, cat, { stream: cat.auditStream, consumer: (await askForReader(nc, cat, fromSeq)).consumer, fromSeq }, (message) => {
    if (stopped) return;
    if (onMessage(message) === "stop") {
      stopped = true;
      reader?.stop();
    }
  });
  if (stopped) reader.stop();
  await reader.done;
}

/**
 * Where the pieces of a version as it was right after `point` are now: the version (the latest
 * committed then, or `version`) from the table at that point, the same query the master
 * answers `locate` with; each piece's holders from the table now, live ones first. A piece no
 * live worker holds any more (its copies were dropped, or their workers lost) is
 * PIECES_DROPPED: nothing can be read, so nothing is.
 */
export async function locateAt(nc: NatsConnection, cat: Catalogue, point: LogPoint, path: string, version?: number): Promise<Location> {
  let then: Location | undefined;
  let missing: unknown;
  const { state: now } = await replayPast(nc, cat, point, (table) => {
    try {
      then = locate(table, path, version);
    } catch (err) {
      missing = err;
    }
  });
  if (!then) throw asDfsError(missing);
  return withHoldersNow(now, then, point);
}

function withHoldersNow(now: State, then: Location, point: LogPoint): Location {
  const live = (workerId: string) => now.workers.get(workerId)?.live === true;
  const holders = (sha256: string) => [...(now.content.get(sha256)?.holders ?? [])];
  const dropped = then.pieces.filter((p) => !holders(p.sha256).some(live));
  if (dropped.length > 0) {
    const first = dropped[0]!;
    throw new DfsError(
      ErrorCodes.PIECES_DROPPED,
      `${then.path} v${then.version} as of ${describePoint(point)} can no longer be read: ${dropped.length} of its ${then.pieces.length} pieces are held by no live worker (piece ${first.index}, sha256 ${first.sha256.slice(0, 12)}…, was dropped since or its holders are lost)`,
    );
  }
  const rank = (workerId: string) => (live(workerId) ? 0 : 1);
  return {
    ...then,
    pieces: then.pieces.map((p) => ({ ...p, workers: holders(p.sha256).sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : 1)) })),
  };
}

/**
 * A consumer of the audit mirror, made by a master for this reader, or, with no master
 * answering, by this connection itself if its credentials may (the admin's, or none on a
 * server without authentication). `waitMs`: how long to wait for a master to answer.
 */
async function askForReader(nc: NatsConnection, cat: Catalogue, fromSeq: number, waitMs = 0): Promise<Reader> {
  let asked: DfsError;
  try {
    return await callRetrying<Reader>(nc, cat.masterRpc("reader"), { fromSeq }, { retryOn: [ErrorCodes.UNAVAILABLE], forMs: waitMs });
  } catch (err) {
    asked = asDfsError(err);
    // Nobody answers, or these credentials may not ask (the admin's): open one ourselves.
    if (asked.code !== ErrorCodes.UNAVAILABLE && asked.code !== ErrorCodes.FORBIDDEN) throw asked;
  }
  return openReader(nc, cat, fromSeq).catch((own) => {
    if (asDfsError(own).code !== ErrorCodes.FORBIDDEN) throw asDfsError(own);
    if (asked.code === ErrorCodes.UNAVAILABLE) throw new DfsError(ErrorCodes.UNAVAILABLE, "no master answers to open a reader of the log (or read it with admin credentials)", { cause: own });
    throw asked;
  });
}

/** A message of the log as an auditor sees it: decoded, and whether the fold rejected it. */
export type AuditEntry = TimedMessage & DecodedEvent;

/** Which messages of the log `auditLog` hands over: all of them, unless these say otherwise (together: all must hold). */
export interface AuditOptions {
  /** From this point on: a sequence, or the first message stamped at or after a time. */
  since?: LogPoint;
  /** Up to this point; reading stops past it (with `follow`, once the log or the clock gets there). */
  until?: LogPoint;
  /** Only events of files at or below this path: those naming a `fileId`, and those about the bytes of such files' versions. */
  path?: string;
  /** Only events of these types (names from the event catalogue). */
  types?: readonly string[];
  /** Only events about or assigned to this worker (those whose `workerId` it is). */
  worker?: string;
  /** Keep handing over new messages until stopped; through a reconnection, from where it was. */
  follow?: boolean;
}

/** With `follow`, the time a reader gets to be given again after its connection came back. */
const RESUME_WAIT_MS = 15_000;
/** With `follow` and `until` a time: messages stamped up to then get this long to arrive. */
const UNTIL_GRACE_MS = 1_000;

/**
 * Read the log as an auditor: fold it from its first event (whether an event contradicts the
 * table depends on everything before it, and the filters need the table: which path a file id
 * is) and hand over the messages the options let through. With `follow`, a lost connection
 * that comes back is picked up where the fold was, with a new reader: nothing is handed over
 * twice or skipped; one that does not (see connectNats) ends `done` with UNAVAILABLE.
 */
export async function auditLog(nc: NatsConnection, cat: Catalogue, opts: AuditOptions, onEntry: (entry: AuditEntry) => void): Promise<LogReader> {
  const shows = auditFilter(opts);
  // Following up to a time already gone is reading what is there.
  const follow = opts.follow === true && !(opts.until && "time" in opts.until && opts.until.time + UNTIL_GRACE_MS <= Date.now());
  const state = initialState();
  let folded = 0;
  let stopped = false;
  let reconnected = false;
  let session: LogReader | undefined = undefined;
  const stop = () => {
    stopped = true;
    session?.stop();
  };
  const onMessage = (message: TimedMessage) => {
    if (stopped || message.seq <= folded) return;
    if (opts.until && isPast(opts.until, message)) return stop();
    folded = message.seq;
    const entry = { ...message, ...foldLogged(state, cat, message) };
    if (shows(entry, state)) onEntry(entry);
    if (opts.until && "seq" in opts.until && message.seq >= opts.until.seq) stop();
  };
  const open = async (waitMs: number) => {
    const { consumer } = await askForReader(nc, cat, folded + 1, waitMs);
    return readLog(nc, cat, { follow, stream: cat.auditStream, consumer, fromSeq: folded + 1 }, onMessage);
  };
  await mirrorReaches(nc, cat, await lastSequence(nc, cat));
  session = await open(0);
  const first = session;
  if (stopped) first.stop();
  if (!follow) return { done: first.done, startLastSeq: first.startLastSeq, stop };
  // A reconnection: the reader's consumer may be gone with the server (it lives in memory),
  // so this reader is stopped and a new one asked for, from the next sequence to fold.
  void (async () => {
    for await (const status of nc.status()) {
      if (stopped) return;
      if (status.type === "reconnect") {
        reconnected = true;
        session?.stop();
      }
    }
  })();
  let untilTimer: NodeJS.Timeout | undefined;
  if (opts.until && "time" in opts.until) untilTimer = setTimeout(stop, Math.max(0, opts.until.time + UNTIL_GRACE_MS - Date.now()));
  const done = (async () => {
    try {
      for (;;) {
        await session.done.catch((err) => {
          if (!stopped && !nc.isClosed() && !reconnected) throw err;
        });
        if (stopped) return;
        if (nc.isClosed() || !reconnected) {
          throw new DfsError(ErrorCodes.UNAVAILABLE, `lost the NATS server after sequence ${folded}, and it did not come back in time (follow again with --since ${folded + 1})`);
        }
        reconnected = false;
        session = await open(RESUME_WAIT_MS).catch((err) => {
          throw new DfsError(ErrorCodes.UNAVAILABLE, `the NATS server came back, but the log could not be read again after sequence ${folded}: ${asDfsError(err).message}`, { cause: err });
        });
        if (stopped) session.stop();
      }
    } finally {
      clearTimeout(untilTimer);
    }
  })();
  return { done, startLastSeq: first.startLastSeq, stop };
}

/**
 * Whether an entry passes the options' filters, judged against the table it was folded into.
 * Called with every entry folded, in log order, shown or not: the path filter keeps an index
 * of whose bytes are whose beside the table.
 */
function auditFilter(opts: AuditOptions): (entry: AuditEntry, state: State) => boolean {
  const unknown = opts.types?.filter((t) => !(EVENT_TYPES as readonly string[]).includes(t)) ?? [];
  if (unknown.length > 0) throw new DfsError(ErrorCodes.BAD_REQUEST, `no event type ${quote(unknown[0]!)}: the types are ${EVENT_TYPES.join(", ")}`);
  const root = opts.path === undefined ? undefined : normalisePrefix(opts.path);
  const referrers = root === undefined ? undefined : new BytesReferrers();
  return (entry, state) => {
    if (entry.event) referrers?.observe(entry.event, state);
    if (opts.since && !isFrom(opts.since, entry)) return false;
    const logged: Record<string, unknown> = entry.event ?? (typeof entry.value === "object" && entry.value !== null && !Array.isArray(entry.value) ? (entry.value as Record<string, unknown>) : {});
    if (opts.types && !opts.types.includes(logged.type as string)) return false;
    if (opts.worker !== undefined && logged.workerId !== opts.worker) return false;
    if (root !== undefined) {
      // An event of a file by the path it has in the table; one about bytes only, by the paths of the files whose bytes they are.
      const paths =
        typeof logged.fileId === "string"
          ? [state.files.get(logged.fileId)?.path ?? logged.path]
          : entry.event?.type === "UploadsAssigned"
            ? entry.event.uploads.map((u) => state.files.get(u.fileId)?.path)
            : bytesNamed(logged).flatMap((sha256) => referrers!.pathsOf(sha256, state));
      if (!paths.some((path) => typeof path === "string" && isUnder(path, root))) return false;
    }
    return true;
  };
}

/** One version of a path as the log tells it: what became of it, and the events that made it so. */
export interface VersionHistory {
  fileId: string;
  version: number;
  status: string;
  /** Of a streamed version (stdin), 0 and "" until it is sealed. */
  size: number;
  sha256: string;
  /** Why it was given up, when it was. */
  reason?: string;
  events: { seq: number; time: string; type: string }[];
}

/**
 * Every version a path ever had, committed, abandoned or deleted, in log order, with the
 * events about each: read from the log alone (a path deleted and put again has a new file id).
 */
export async function pathHistory(nc: NatsConnection, cat: Catalogue, path: string): Promise<VersionHistory[]> {
  const canonical = normalisePath(path);
  const versions = new Map<string, VersionHistory>();
  const fileIds = new Set<string>();
  const { state } = await replayLog(nc, cat, undefined, (entry) => {
    const event = entry.event;
    if (!event || entry.rejected !== undefined) return;
    if (event.type === "UploadsAssigned") {
      // An event of each version it assigns.
      const record = { seq: entry.seq, time: entry.time.toISOString(), type: event.type };
      for (const u of event.uploads) if (fileIds.has(u.fileId)) versions.get(`${u.fileId}:${u.version}`)?.events.push(record);
      return;
    }
    if (!("fileId" in event)) return;
    if (event.type === "FileCreated" && event.path === canonical) fileIds.add(event.fileId);
    if (!fileIds.has(event.fileId)) return;
    // A whole file's delete is an event of each of its versions still there.
    const touched =
      event.type === "FileDeleted" && event.version === undefined
        ? [...versions.values()].filter((v) => v.fileId === event.fileId && !v.events.some((e) => e.type === "FileDeleted" || e.type === "UploadAbandoned"))
        : [];
    const key = `${event.fileId}:${"version" in event ? event.version : ""}`;
    if (event.type === "FileCreated") versions.set(key, { fileId: event.fileId, version: event.version, status: "pending", size: event.size, sha256: event.sha256 ?? "", events: [] });
    const sealed = event.type === "FileSealed" ? versions.get(key) : undefined;
    if (sealed && event.type === "FileSealed") Object.assign(sealed, { size: event.size, sha256: event.sha256 });
    const record = { seq: entry.seq, time: entry.time.toISOString(), type: event.type };
    for (const v of touched.length ? touched : [versions.get(key)]) v?.events.push(record);
  });
  for (const v of versions.values()) {
    const folded = state.files.get(v.fileId)?.versions.get(v.version);
    if (!folded) continue;
    v.status = folded.status;
    if (folded.reason) v.reason = folded.reason;
  }
  if (versions.size === 0) throw new DfsError(ErrorCodes.NOT_FOUND, `no file was ever at ${canonical}`);
  return [...versions.values()];
}
