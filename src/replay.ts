// Rebuild the master's table from the log alone: what `dfs replay` prints, what a check
// against the live master or a snapshot compares with, and what `dfs tail` judges events by.
import type { NatsConnection } from "@nats-io/transport-node";
import type { Catalogue } from "../streams/catalogue.js";
import type { DecodedEvent } from "./codec.js";
import { foldLogged } from "./fold.js";
import { DfsError, ErrorCodes, asDfsError } from "./errors.js";
import { lastSequence, mirrorReaches, openReader, readLog, type LogReader, type Reader, type TimedMessage } from "./log.js";
import { call } from "./rpc.js";
import { initialState, type State } from "./state.js";

export interface ReplayResult {
  /** The table, with the events it rejected counted in `state.rejected` as the master counts them. */
  state: State;
}

/**
 * Fold the log from its first event up to `untilSeq` (default: its end as of now), read
 * from the audit mirror, as readers do.
 */
export async function replayLog(nc: NatsConnection, cat: Catalogue, untilSeq?: number): Promise<ReplayResult> {
  const state = initialState();
  await mirrorReaches(nc, cat, untilSeq ?? (await lastSequence(nc, cat)));
  const reader = await readLog(nc, cat, { stream: cat.auditStream, consumer: (await askForReader(nc, cat, 1)).consumer }, (message) => {
    if (untilSeq === undefined || message.seq <= untilSeq) foldLogged(state, cat, message);
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
