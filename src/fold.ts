// The one way a logged message enters a table: raw bytes → decoded → checked against its
// schema, its subject and the state → applied or rejected. The master (replay and tail),
// `dfs replay`, `dfs tail` and any other reader fold through here, so they all reach the same
// table, rejections included. Pure: no connection, no clock.
import type { Catalogue } from "../streams/catalogue.js";
import { decodeEvent, type DecodedEvent } from "./codec.js";
import type { DfsEvent } from "./events.js";
import { contradiction } from "./checks.js";
import { apply, initialState, recordRejection, type State } from "./state.js";

/** A message of the events stream as read or appended. */
export interface LoggedMessage {
  readonly seq: number;
  readonly subject: string;
  readonly data: Uint8Array;
}

/** The subject an event belongs on: its file's, its worker's, its worker's assignments, or the store's. */
export function subjectFor(cat: Catalogue, event: DfsEvent): string {
  switch (event.type) {
    case "WorkerJoined":
    case "WorkerLost":
    case "ReplicaStored":
    case "CopyFailed":
    case "ReplicasLost":
      return cat.workerEvents(event.workerId);
    case "PeersAssigned":
    case "UploadsAssigned":
    case "PiecesDropped":
    case "CopiesOrdered":
      return cat.assignEvents(event.workerId);
    case "RetentionSet":
      return cat.storeEvents();
    default:
      return cat.fileEvents(event.fileId);
  }
}

/**
 * Fold one schema-valid event into the state (in place), at stream sequence `seq` when given:
 * applied if it does not contradict the table, else counted as rejected. Returns the reason
 * for a rejection. Never throws.
 */
export function evolve(state: State, event: DfsEvent, seq?: number): string | undefined {
  if (seq !== undefined) state.lastSeq = seq;
  const reason = contradiction(state, event);
  if (reason === undefined) apply(state, event);
  else recordRejection(state, reason);
  return reason;
}

export function foldEvents(events: Iterable<DfsEvent>, state: State = initialState()): State {
  for (const e of events) evolve(state, e);
  return state;
}

function reject(state: State, seq: number, reason: string): string {
  state.lastSeq = seq;
  recordRejection(state, reason);
  return reason;
}

/**
 * Fold one logged message into the state (in place) at its sequence: the single entry point
 * for every reader of the log. The outcome is the decoded message with, when it was not
 * applied, the reason. Never throws.
 */
export function foldLogged(state: State, cat: Catalogue, message: LoggedMessage): DecodedEvent {
  const decoded = decodeEvent(message.data);
  if (!decoded.event) {
    reject(state, message.seq, decoded.rejected);
    return decoded;
  }
  const expected = subjectFor(cat, decoded.event);
  const rejected =
    message.subject === expected
      ? evolve(state, decoded.event, message.seq)
      : reject(state, message.seq, `${decoded.event.type} belongs on ${expected}, not ${message.subject}`);
  return rejected === undefined ? decoded : { value: decoded.value, rejected };
}
