// Rebuild the master's table from the log alone: what `dfs replay` prints and what a check
// against the live master or a snapshot compares with.
import type { NatsConnection } from "@nats-io/transport-node";
import type { Catalogue } from "../streams/catalogue.js";
import { readLog } from "./log.js";
import { evolve, initialState, type State } from "./state.js";

export interface ReplayResult {
  state: State;
  /** Messages on event subjects that were not dfs events, skipped as the master skips them. */
  skipped: number;
}

/** Fold the log from its first event up to `untilSeq` (default: its end as of now). */
export async function replayLog(nc: NatsConnection, cat: Catalogue, untilSeq?: number): Promise<ReplayResult> {
  const state = initialState();
  let skipped = 0;
  const reader = await readLog(nc, cat, {}, (entry) => {
    if (untilSeq !== undefined && entry.seq > untilSeq) return;
    if (entry.event) evolve(state, entry.event, entry.seq);
    else {
      state.lastSeq = entry.seq;
      skipped += 1;
    }
  });
  await reader.done;
  return { state, skipped };
}
