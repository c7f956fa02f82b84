// How healthy the store is, read from the table: what `dfs status` and `dfs scrub` show.
// Pure, like the other queries; the master adds what only heartbeats know (free space).
import type { RetentionPolicy } from "./retention.js";
import { copiesInFlight, isPlaced, wantedReplicas, type ContentState } from "./content.js";
import { recentlyFailed } from "./heal.js";
import type { State } from "./state.js";

/** What is wrong with a piece's copies, if anything. */
export type PieceProblem = "unavailable" | "unplaceable" | "under-replicated" | "excess";

export interface PieceHealth {
  sha256: string;
  size: number;
  /** Replicas its committed versions want (0: none committed). */
  wanted: number;
  /** Checked copies on live workers, and copies being made. */
  live: number;
  copying: number;
  problem?: PieceProblem;
}

export interface WorkerSummary {
  workerId: string;
  live: boolean;
  /** Pieces and bytes the table expects this worker to keep. */
  pieces: number;
  bytes: number;
  /** Copies ordered to it and not confirmed yet. */
  copying: number;
}

export interface StoreStatus {
  lastSeq: number;
  /** Messages on the log that the fold rejected. */
  rejected: number;
  workers: WorkerSummary[];
  pieces: {
    /** Distinct piece contents that live versions refer to. */
    total: number;
    /** Committed ones with exactly their wanted copies live. */
    healthy: number;
    underReplicated: number;
    /** No live worker holds a checked copy: unreadable until one comes back. */
    unavailable: number;
    /** Too few live workers lack it to place the missing copies. */
    unplaceable: number;
    excess: number;
  };
  copiesInFlight: number;
  uploadsPending: number;
  dropsOwed: number;
  /** Which older versions are kept (`{}`: every one). */
  retention: RetentionPolicy;
  /** The first pieces with a problem (at most PROBLEMS_SHOWN), worst first. */
  problems: PieceHealth[];
}

export const PROBLEMS_SHOWN = 100;

const SEVERITY: Record<PieceProblem, number> = { unavailable: 0, unplaceable: 1, "under-replicated": 2, excess: 3 };

/** How many of `workers` are live. */
function liveCount(state: State, workers: Iterable<string>): number {
  let n = 0;
  for (const w of workers) if (state.workers.get(w)?.live) n += 1;
  return n;
}

/** What is wrong with a piece that has `live` readable copies and `copying` being made, if anything. */
function problemOf(state: State, c: ContentState, at: number, wanted: number, live: number, copying: number): PieceProblem | undefined {
  if (wanted === 0) return undefined;
  if (live === 0) return "unavailable";
  if (live > wanted) return "excess";
  const need = wanted - live - copying;
  if (need <= 0) return undefined;
  let targets = 0;
  for (const w of state.workers.values()) if (w.live && !isPlaced(c, w.workerId) && !recentlyFailed(c, w.workerId, at)) targets += 1;
  return targets < need ? "unplaceable" : "under-replicated";
}

/** A piece's copies as the table has them now (`at`: now, for the retry delay of failed copies). */
export function pieceHealth(state: State, c: ContentState, at: number): PieceHealth {
  const wanted = wantedReplicas(c);
  const live = liveCount(state, c.holders);
  const copying = liveCount(state, c.copying);
  const problem = problemOf(state, c, at, wanted, live, copying);
  return { sha256: c.sha256, size: c.size, wanted, live, copying, ...(problem ? { problem } : {}) };
}

/** Worst first, then by SHA-256. */
function worse(a: { problem?: PieceProblem; sha256: string }, b: { problem?: PieceProblem; sha256: string }): boolean {
  const bySeverity = SEVERITY[a.problem!] - SEVERITY[b.problem!];
  return bySeverity < 0 || (bySeverity === 0 && a.sha256 < b.sha256);
}

/**
 * Put `health` among the worst PROBLEMS_SHOWN kept in order: a store with 200,000 unhealthy
 * pieces sorted them all at every `status` (about 0.9 s of the master's event loop).
 */
function keepWorst(worst: PieceHealth[], health: PieceHealth): void {
  let low = 0;
  let high = worst.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (worse(worst[mid]!, health)) low = mid + 1;
    else high = mid;
  }
  worst.splice(low, 0, health);
  if (worst.length > PROBLEMS_SHOWN) worst.pop();
}

export function storeStatus(state: State, at: number): StoreStatus {
  const problems: PieceHealth[] = [];
  const counts = { unavailable: 0, unplaceable: 0, "under-replicated": 0, excess: 0 };
  for (const sha256 of state.unhealthy) {
    // Counted without making a record of each: only those among the worst shown get one.
    const c = state.content.get(sha256)!;
    const problem = problemOf(state, c, at, wantedReplicas(c), liveCount(state, c.holders), liveCount(state, c.copying));
    if (!problem) continue;
    counts[problem] += 1;
    if (problems.length < PROBLEMS_SHOWN || worse({ problem, sha256 }, problems[problems.length - 1]!)) keepWorst(problems, pieceHealth(state, c, at));
  }
  let committed = 0;
  for (const c of state.content.values()) if (wantedReplicas(c) > 0) committed += 1;
  const workers = [...state.workers.values()]
    .sort((a, b) => (a.workerId < b.workerId ? -1 : 1))
    .map((w) => ({
      workerId: w.workerId,
      live: w.live,
      pieces: state.placedOn.get(w.workerId)?.size ?? 0,
      bytes: w.assignedBytes,
      copying: state.copyingTo.get(w.workerId)?.size ?? 0,
    }));
  return {
    lastSeq: state.lastSeq,
    rejected: state.rejected.count,
    workers,
    pieces: {
      total: state.content.size,
      healthy: committed - counts.unavailable - counts.unplaceable - counts["under-replicated"] - counts.excess,
      underReplicated: counts["under-replicated"],
      unavailable: counts.unavailable,
      unplaceable: counts.unplaceable,
      excess: counts.excess,
    },
    copiesInFlight: copiesInFlight(state),
    uploadsPending: state.pendingUploads.size,
    dropsOwed: [...state.dropsOwed.values()].reduce((n, owed) => n + owed.size, 0),
    retention: { ...state.retention },
    problems,
  };
}

/** The health of these pieces (bytes no live version needs have `wanted` 0). */
export function piecesHealth(state: State, sha256s: readonly string[], at: number): PieceHealth[] {
  return sha256s.map((sha256) => {
    const c = state.content.get(sha256);
    return c ? pieceHealth(state, c, at) : { sha256, size: 0, wanted: 0, live: 0, copying: 0 };
  });
}
