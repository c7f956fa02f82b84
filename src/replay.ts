// Rebuild the master's table from the log alone: what `dfs replay` prints, what a check
// against the live master or a snapshot compares with, and what `dfs tail` judges events by.
import type { NatsConnection } from "@nats-io/transport-node";
import type { Catalogue } from "../streams/catalogue.js";
import type { DecodedEvent } from "./codec.js";
import { foldLogged } from "./fold.js";
import { DfsError, ErrorCodes, asDfsError } from "./errors.js";
import { lastSequence, mirrorReaches, openReader, readLog, type LogReader, type Reader, type TimedMessage } from "./log.js";
import { call } from "./rpc.js";
import { normalisePath } from "./paths.js";
import { initialState, type State } from "./state.js";

export interface ReplayResult {
  /** The table, with the events it rejected counted in `state.rejected` as the master counts them. */
  state: State;
}

/**
 * Fold the log from its first event up to `untilSeq` (default: its end as of now), read
 * from the audit mirror, as readers do.
 */
export async function replayLog(nc: NatsConnection, cat: Catalogue, untilSeq?: number, onEntry?: (entry: AuditEntry) => void): Promise<ReplayResult> {
  const state = initialState();
  await mirrorReaches(nc, cat, untilSeq ?? (await lastSequence(nc, cat)));
  const reader = await readLog(nc, cat, { stream: cat.auditStream, consumer: (await askForReader(nc, cat, 1)).consumer }, (message) => {
    if (untilSeq !== undefined && message.seq > untilSeq) return;
    const outcome = foldLogged(state, cat, message);
    onEntry?.({ ...message, ...outcome });
  });
  await reader.done;
  return { state };
}

/**
 * A consumer of the audit mirror, made by a master for this reader, or, with no master
 * answering, by this connection itself if its credentials may (the admin's, or none on a
 * server without authentication).
 */
async function askForReader(nc: NatsConnection, cat: Catalogue, fromSeq: number): Promise<Reader> {
  let asked: DfsError;
  try {
    return await call<Reader>(nc, cat.masterRpc("reader"), { fromSeq });
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

/**
 * Read the log as an auditor: fold it from its first event (whether an event contradicts the
 * table depends on everything before it) and hand over each message from `fromSeq` on.
 */
export async function auditLog(
  nc: NatsConnection,
  cat: Catalogue,
  opts: { fromSeq?: number; follow?: boolean },
  onEntry: (entry: AuditEntry) => void,
): Promise<LogReader> {
  const state = initialState();
  const fromSeq = opts.fromSeq ?? 1;
  await mirrorReaches(nc, cat, await lastSequence(nc, cat));
  const { consumer } = await askForReader(nc, cat, 1);
  return readLog(nc, cat, { follow: opts.follow, stream: cat.auditStream, consumer }, (message) => {
    const outcome = foldLogged(state, cat, message);
    if (message.seq >= fromSeq) onEntry({ ...message, ...outcome });
  });
}

/** One version of a path as the log tells it: what became of it, and the events that made it so. */
export interface VersionHistory {
  fileId: string;
  version: number;
  status: string;
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
    if (!event || entry.rejected !== undefined || !("fileId" in event)) return;
    if (event.type === "FileCreated" && event.path === canonical) fileIds.add(event.fileId);
    if (!fileIds.has(event.fileId)) return;
    // A whole file's delete is an event of each of its versions still there.
    const touched =
      event.type === "FileDeleted" && event.version === undefined
        ? [...versions.values()].filter((v) => v.fileId === event.fileId && !v.events.some((e) => e.type === "FileDeleted" || e.type === "UploadAbandoned"))
        : [];
    const key = `${event.fileId}:${"version" in event ? event.version : ""}`;
    if (event.type === "FileCreated") versions.set(key, { fileId: event.fileId, version: event.version, status: "pending", size: event.size, sha256: event.sha256, events: [] });
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
