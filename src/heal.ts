// Healing decisions: pure functions of the table, like the rest of the decider. They restore
// every committed piece to the replicas its versions want (copying from a live holder to the
// least-loaded live worker that lacks it), drop copies beyond that, re-place the shares of an
// open upload whose worker was lost, and turn a worker's own account of its store into facts.
// The shell runs them whenever the table changes in a way that may need them, and on a timer.
import { copiesInFlight, isPlaced, liveHolders, liveCopies, wantedReplicas, type ContentState } from "./content.js";
import {
  MAX_SOURCES,
  PIECES_PER_EVENT,
  uploaderOf,
  type AssignedPiece,
  type CopyOrder,
  type DfsEvent,
} from "./events.js";
import { expiredVersions } from "./retention.js";
import type { State } from "./state.js";

/** Copy orders in flight at once over the whole store: healing must not starve the puts. */
export const MAX_COPIES_IN_FLIGHT = 64;
/** A target whose copy failed is not asked again for this long. */
export const COPY_RETRY_MS = 10_000;
/**
 * Unhealthy pieces one healing pass considers: a pass runs on the leader's event loop, and at
 * 200,000 unhealthy pieces a pass over all of them held it for about half a second each second.
 * The shell walks `state.unhealthy` this many at a time with a HealCursor, so every piece is
 * still reached.
 */
export const HEAL_PASS_PIECES = 5_000;
/** Drop events one pass decides at most (each of up to PIECES_PER_EVENT pieces): the rest wait for the next pass. */
export const DROP_EVENTS_PER_PASS = 16;

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

const byId = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Bytes placed on each live worker, which this decision adds to as it goes. */
function liveLoads(state: State): Map<string, number> {
  return new Map([...state.workers.values()].filter((w) => w.live).map((w) => [w.workerId, w.assignedBytes]));
}

/** Drops owed: pieces no live version needs on a worker any more (at most DROP_EVENTS_PER_PASS events of them). */
function owedDrops(state: State, at: number): DfsEvent[] {
  const events: DfsEvent[] = [];
  for (const [workerId, owed] of [...state.dropsOwed.entries()].sort(([a], [b]) => byId(a, b))) {
    const room = (DROP_EVENTS_PER_PASS - events.length) * PIECES_PER_EVENT;
    if (room <= 0) break;
    const sha256s = owed.size <= room ? [...owed] : take(owed, room);
    for (const group of chunks(sha256s.sort(), PIECES_PER_EVENT)) events.push({ type: "PiecesDropped" as const, at, workerId, sha256s: group });
  }
  return events;
}

/** The first `n` items of `items`, without walking the rest. */
function take<T>(items: Iterable<T>, n: number): T[] {
  const out: T[] = [];
  if (n <= 0) return out;
  for (const item of items) if (out.push(item) >= n) break;
  return out;
}

/**
 * Where healing goes on from: each pass takes the next `limit` pieces of `state.unhealthy`,
 * resuming where the last pass stopped and starting over once it reached the end, so every
 * unhealthy piece is considered in turn however many there are. It rides a live iterator of
 * the set (a piece that became healthy meanwhile is skipped, one that became unhealthy is
 * reached), and starts over on a new table (one folded again from the log).
 */
export class HealCursor {
  private over?: ReadonlySet<string>;
  private position?: Iterator<string>;

  next(state: State, limit: number): string[] {
    if (this.over !== state.unhealthy) {
      this.over = state.unhealthy;
      this.position = undefined;
    }
    const window: string[] = [];
    this.position ??= state.unhealthy.values();
    while (window.length < limit) {
      const step = this.position.next();
      if (step.done) {
        this.position = undefined; // the next pass starts over
        break;
      }
      window.push(step.value);
    }
    return window;
  }
}

/** Copies ordered to workers that were lost since: given up, so they can be ordered elsewhere. */
function abandonedCopies(state: State, at: number): DfsEvent[] {
  const events: DfsEvent[] = [];
  for (const [workerId, shas] of state.copyingTo) {
    if (state.workers.get(workerId)?.live) continue;
    for (const sha256 of shas) events.push({ type: "CopyFailed", at, workerId, sha256, code: "WORKER_LOST", reason: `worker ${workerId} was lost before it confirmed the copy` });
  }
  return events;
}

/**
 * Open uploads whose peers were lost before storing their pieces: each such share goes to
 * another live worker (a new major pulling from the uploader if the major was lost, else a
 * minor pulling from the major), so the upload commits without waiting for the lost one.
 */
function replanUploads(state: State, at: number, loads: Map<string, number>, touched: Set<string>): DfsEvent[] {
  const events: DfsEvent[] = [];
  for (const uploadId of state.pendingUploads) {
    const v = state.uploads.get(uploadId)!;
    const byWorker = new Map<string, AssignedPiece[]>();
    for (const piece of v.pieces) {
      if (!piece) continue;
      const active = piece.peers.filter((p) => piece.stored.includes(p.workerId) || state.workers.get(p.workerId)?.live);
      let missing = v.replicas - active.length;
      if (missing <= 0) continue;
      let major = active.find((p) => p.role === "major")?.workerId;
      const candidates = [...loads.entries()]
        .filter(([w]) => !piece.peers.some((p) => p.workerId === w) && !byWorker.get(w)?.some((a) => a.piece === piece.index))
        .sort(([a, la], [b, lb]) => la - lb || byId(a, b));
      for (const [workerId] of candidates) {
        if (missing === 0) break;
        const entry = { piece: piece.index, size: piece.size, sha256: piece.sha256 };
        const assigned: AssignedPiece = major === undefined ? { ...entry, role: "major" } : { ...entry, role: "minor", pullFrom: major };
        if (major === undefined) major = workerId;
        let list = byWorker.get(workerId);
        if (!list) byWorker.set(workerId, (list = []));
        list.push(assigned);
        loads.set(workerId, loads.get(workerId)! + piece.size);
        touched.add(piece.sha256);
        missing -= 1;
      }
    }
    for (const [workerId, pieces] of [...byWorker.entries()].sort(([a], [b]) => byId(a, b))) {
      for (const group of chunks(pieces, PIECES_PER_EVENT)) {
        events.push({ type: "PeersAssigned", at, fileId: v.fileId, version: v.version, uploadId: v.uploadId, ...uploaderOf(v), workerId, pieces: group });
      }
    }
  }
  return events;
}

/**
 * Committed bytes with too few or too many readable copies (those of `pieces` still so): order
 * copies from live holders to the least-loaded live workers that lack them (within the
 * in-flight budget), and drop the copies beyond what the versions want from the most loaded holders.
 */
function healContent(state: State, at: number, pieces: Iterable<string>, loads: Map<string, number>, touched: Set<string>): DfsEvent[] {
  let budget = MAX_COPIES_IN_FLIGHT - copiesInFlight(state);
  const orders = new Map<string, CopyOrder[]>();
  const drops = new Map<string, string[]>();
  for (const sha256 of pieces) {
    if (touched.has(sha256) || !state.unhealthy.has(sha256)) continue;
    const c = state.content.get(sha256)!;
    const wanted = wantedReplicas(c);
    const holders = liveHolders(state, c);
    const copies = liveCopies(state, c);
    if (holders.length > wanted) {
      if (copies.length > 0) continue; // settle the copies first, then count again
      const spare = [...holders].sort((a, b) => (loads.get(b) ?? 0) - (loads.get(a) ?? 0) || byId(b, a)).slice(0, holders.length - wanted);
      for (const w of spare.filter((w) => !c.assigned.has(w))) {
        let list = drops.get(w);
        if (!list) drops.set(w, (list = []));
        list.push(sha256);
      }
      continue;
    }
    const need = wanted - holders.length - copies.length;
    if (need <= 0 || holders.length === 0 || budget <= 0) continue;
    const sources = [...holders].sort((a, b) => (loads.get(a) ?? 0) - (loads.get(b) ?? 0) || byId(a, b)).slice(0, MAX_SOURCES);
    const targets = [...loads.entries()]
      .filter(([w]) => !isPlaced(c, w) && !recentlyFailed(c, w, at))
      .sort(([a, la], [b, lb]) => la - lb || byId(a, b))
      .slice(0, Math.min(need, budget));
    for (const [w] of targets) {
      let list = orders.get(w);
      if (!list) orders.set(w, (list = []));
      list.push({ sha256, size: c.size, sources });
      loads.set(w, loads.get(w)! + c.size);
      budget -= 1;
    }
  }
  const events: DfsEvent[] = [];
  for (const [workerId, sha256s] of [...drops.entries()].sort(([a], [b]) => byId(a, b))) {
    for (const group of chunks(sha256s, PIECES_PER_EVENT)) events.push({ type: "PiecesDropped", at, workerId, sha256s: group });
  }
  for (const [workerId, pieces] of [...orders.entries()].sort(([a], [b]) => byId(a, b))) {
    for (const group of chunks(pieces, PIECES_PER_EVENT)) events.push({ type: "CopiesOrdered", at, workerId, pieces: group });
  }
  return events;
}

/** Whether a copy of these bytes failed on that worker too recently to order it there again. */
export function recentlyFailed(c: ContentState, workerId: string, at: number): boolean {
  const failed = c.failedAt.get(workerId);
  return failed !== undefined && at - failed < COPY_RETRY_MS;
}

/**
 * Everything the table owes, in an order whose events all fold: drops owed first, then copies
 * given up with their lost targets, re-placed upload shares, and healing of `pieces` (a window
 * of `state.unhealthy` from a HealCursor; every unhealthy piece when not given).
 */
export function reconcile(state: State, at: number, pieces: Iterable<string> = state.unhealthy): DfsEvent[] {
  const loads = liveLoads(state);
  const touched = new Set<string>();
  // Expiries last: the orders before them were decided on the versions they remove.
  return [
    ...owedDrops(state, at),
    ...abandonedCopies(state, at),
    ...replanUploads(state, at, loads, touched),
    ...healContent(state, at, pieces, loads, touched),
    ...expiredVersions(state, at),
  ];
}

/** Whether anything is owed at `at`: `reconcile` would decide something (or might, once a retry delay passes). */
export function hasWork(state: State, at: number): boolean {
  if (state.dropsOwed.size > 0 || state.unhealthy.size > 0) return true;
  // Versions outlive their time only as the clock moves: nothing in the log says when.
  if (state.retention.keepForMs !== undefined && expiredVersions(state, at).length > 0) return true;
  for (const w of state.copyingTo.keys()) if (!state.workers.get(w)?.live) return true;
  for (const uploadId of state.pendingUploads) {
    const v = state.uploads.get(uploadId)!;
    if (v.pieces.some((p) => p && p.peers.filter((x) => p.stored.includes(x.workerId) || state.workers.get(x.workerId)?.live).length < v.replicas)) return true;
  }
  return false;
}

/**
 * Pieces one inventory decision speaks of at most: folding its events holds the leader's event
 * loop (about 1.4 s for a worker found to lack all of its 66,000 pieces), so a larger account
 * is settled in several decisions (see reconcileInventory).
 */
export const INVENTORY_PIECES_PER_DECISION = 10_000;

/** The copies the log counts on a worker now: what its inventory is checked against. */
export function countedOn(state: State, workerId: string): Set<string> {
  const counted = new Set<string>();
  for (const sha256 of state.placedOn.get(workerId) ?? []) if (state.content.get(sha256)!.holders.has(workerId)) counted.add(sha256);
  return counted;
}

/**
 * A worker's own account of its store (its inventory, `held`), settled against the copies the
 * log counted on it when it was asked (`countedWhenAsked`), since it may store or drop bytes
 * while it answers: counted copies it lacks are lost (one confirmed since is not in its answer);
 * copies it made whose confirmation never reached the log are counted (unless counted when
 * asked: not counted now, they were dropped or lost since); bytes it keeps that nothing
 * expects of it are dropped. At most `limit` pieces a decision, lost ones first:
 * decided again on the table its events leave, with the pieces it dropped taken out of
 * `held`, it goes on with the rest.
 */
export function reconcileInventory(
  state: State,
  workerId: string,
  held: ReadonlySet<string>,
  countedWhenAsked: ReadonlySet<string>,
  at: number,
  limit = INVENTORY_PIECES_PER_DECISION,
): DfsEvent[] {
  const lost: string[] = [];
  for (const sha256 of state.placedOn.get(workerId) ?? []) {
    if (lost.length >= limit) break;
    if (state.content.get(sha256)!.holders.has(workerId) && !held.has(sha256) && countedWhenAsked.has(sha256)) lost.push(sha256);
  }
  const found: DfsEvent[] = [];
  const stray: string[] = [];
  const owed = state.dropsOwed.get(workerId);
  for (const sha256 of held) {
    if (lost.length + found.length + stray.length >= limit) break;
    if (owed?.has(sha256)) continue;
    const c = state.content.get(sha256);
    if (c && isPlaced(c, workerId)) {
      // Counted when it was asked and not now: dropped or lost since, so its answer is stale.
      if (!c.holders.has(workerId) && !countedWhenAsked.has(sha256)) found.push({ type: "ReplicaStored", at, workerId, sha256 });
    } else stray.push(sha256);
  }
  return [
    ...chunks(lost.sort(), PIECES_PER_EVENT).map((sha256s) => ({ type: "ReplicasLost" as const, at, workerId, sha256s, reason: "missing from its store" })),
    ...found,
    ...chunks(stray.sort(), PIECES_PER_EVENT).map((sha256s) => ({ type: "PiecesDropped" as const, at, workerId, sha256s })),
  ];
}
