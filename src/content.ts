// The table by content: for every piece hash that a live version refers to, which workers
// hold checked copies of those bytes, which are being made, and how many the versions want.
// Re-replication, repair, dedup and drops all work here, so bytes shared by a hundred files
// are copied, repaired or dropped once. Pure: only `evolve` (state.ts) changes it.
import { KEY_SEPARATOR, interned, within } from "./interned.js";
import type { State, WorkerState } from "./state.js";

/** Who holds, is making and wants copies of some bytes: values, shared (see below). */
export interface Copies {
  /** Replicas asked for by the committed versions' pieces with these bytes: replicas → pieces. */
  readonly wanted: ReadonlyMap<number, number>;
  /** Workers holding a copy whose bytes hashed right when they were stored (as confirmed in the log). */
  readonly holders: ReadonlySet<string>;
  /** Workers assigned these bytes by a pending upload, with how many such assignments. */
  readonly assigned: ReadonlyMap<string, number>;
  /** Targets of copy orders not settled yet. */
  readonly copying: ReadonlySet<string>;
  /** Targets whose last copy order failed, and when (they are not asked again at once). */
  readonly failedAt: ReadonlyMap<string, number>;
}

export interface ContentState extends Copies {
  readonly sha256: string;
  readonly size: number;
  /** Pieces of pending and committed versions with these bytes. */
  readonly refs: number;
}

// A ContentState's collections are values, never changed in place, and interned (see
// interned.ts): every piece held by w1 and w3 shares one Set, every piece wanted once at 3
// replicas one Map. `added`, `removed`, `withEntry` and `withCount` are the only ways to a new
// one; their members come out sorted, so a table has the same collections however it was
// made (folded, or read from a snapshot).
const byKey = <T extends string | number>(a: T, b: T) => (a < b ? -1 : a > b ? 1 : 0);

function setOf<T extends string>(members: T[]): ReadonlySet<T> {
  members.sort(byKey);
  return interned(`s:${members.join(KEY_SEPARATOR)}`, () => new Set(members) as ReadonlySet<T>);
}

function mapOf<K extends string | number, V extends number>(entries: [K, V][]): ReadonlyMap<K, V> {
  entries.sort(([a], [b]) => byKey(a, b));
  const kind = typeof entries[0]?.[0] === "number" ? "n" : "m";
  return interned(`${kind}:${entries.map(([k, v]) => `${k}=${v}`).join(KEY_SEPARATOR)}`, () => new Map(entries) as ReadonlyMap<K, V>);
}

/** `set` with `value` in it. */
export function added<T extends string>(set: ReadonlySet<T>, value: T): ReadonlySet<T> {
  return set.has(value) ? set : setOf([...set, value]);
}

/** `set` without `value`. */
export function removed<T extends string>(set: ReadonlySet<T>, value: T): ReadonlySet<T> {
  return set.has(value) ? setOf([...set].filter((member) => member !== value)) : set;
}

/** `map` with `key` set to `value`, or without `key` when `value` is undefined. */
export function withEntry<K extends string | number, V extends number>(map: ReadonlyMap<K, V>, key: K, value: V | undefined): ReadonlyMap<K, V> {
  if (map.get(key) === value) return map;
  const entries = [...map].filter(([k]) => k !== key);
  if (value !== undefined) entries.push([key, value]);
  return mapOf(entries);
}

/** `map` with the count at `key` changed by `delta`; a count that reaches 0 is removed. */
export function withCount<K extends string | number>(map: ReadonlyMap<K, number>, key: K, delta: number): ReadonlyMap<K, number> {
  const count = (map.get(key) ?? 0) + delta;
  return withEntry(map, key, count > 0 ? count : undefined);
}

const NOBODY = setOf<string>([]);
const NONE = mapOf<never, never>([]);

/** Every Copies, by its wanted, then its holders, assigned, copying and failedAt (each a shared collection already). */
const allCopies = new WeakMap<object, WeakMap<object, WeakMap<object, WeakMap<object, WeakMap<object, Copies>>>>>();

/** The one Copies with these collections: a table has few distinct ones (most bytes are held by one or a few workers and wanted alike). */
function copiesOf(c: Copies): Copies {
  const byHolders = within(allCopies, c.wanted, () => new WeakMap());
  const byAssigned = within(byHolders, c.holders, () => new WeakMap());
  const byCopying = within(byAssigned, c.assigned, () => new WeakMap());
  const byFailed = within(byCopying, c.copying, () => new WeakMap());
  return within(byFailed, c.failedAt, (): Copies => Object.freeze({ wanted: c.wanted, holders: c.holders, assigned: c.assigned, copying: c.copying, failedAt: c.failedAt }));
}

const NO_COPIES = copiesOf({ wanted: NONE, holders: NOBODY, assigned: NONE, copying: NOBODY, failedAt: NONE });

/**
 * Bytes as the table holds them: 56 bytes, their five collections in one shared Copies (a
 * field each cost 8 bytes a piece of content). Setting one of them sets the Copies with it.
 */
export class ContentRecord implements ContentState {
  /** Pieces of pending and committed versions with these bytes. */
  refs = 0;
  private copies = NO_COPIES;
  constructor(
    readonly sha256: string,
    readonly size: number,
  ) {}

  /** All five collections at once (as the snapshot's decoder makes them). */
  setCopies(copies: Copies): void {
    this.copies = copiesOf(copies);
  }

  get wanted(): Copies["wanted"] {
    return this.copies.wanted;
  }
  set wanted(wanted: Copies["wanted"]) {
    this.copies = copiesOf({ ...this.copies, wanted });
  }
  get holders(): Copies["holders"] {
    return this.copies.holders;
  }
  set holders(holders: Copies["holders"]) {
    this.copies = copiesOf({ ...this.copies, holders });
  }
  get assigned(): Copies["assigned"] {
    return this.copies.assigned;
  }
  set assigned(assigned: Copies["assigned"]) {
    this.copies = copiesOf({ ...this.copies, assigned });
  }
  get copying(): Copies["copying"] {
    return this.copies.copying;
  }
  set copying(copying: Copies["copying"]) {
    this.copies = copiesOf({ ...this.copies, copying });
  }
  get failedAt(): Copies["failedAt"] {
    return this.copies.failedAt;
  }
  set failedAt(failedAt: Copies["failedAt"]) {
    this.copies = copiesOf({ ...this.copies, failedAt });
  }
}

/** The most replicas any committed version wants of these bytes (0: none committed). */
export function wantedReplicas(c: ContentState): number {
  let most = 0;
  for (const replicas of c.wanted.keys()) most = Math.max(most, replicas);
  return most;
}

/** Whether a worker is expected to keep these bytes: it holds them, is copying them, or an upload assigned them. */
export function isPlaced(c: ContentState, workerId: string): boolean {
  return c.holders.has(workerId) || c.copying.has(workerId) || c.assigned.has(workerId);
}

function live(state: State, workerId: string): boolean {
  return state.workers.get(workerId)?.live ?? false;
}

/** Holders that are live: the copies that can be read now. */
export function liveHolders(state: State, c: ContentState): string[] {
  return [...c.holders].filter((w) => live(state, w));
}

/** Copies being made on live workers. */
export function liveCopies(state: State, c: ContentState): string[] {
  return [...c.copying].filter((w) => live(state, w));
}

/**
 * Whether committed bytes need a decision: fewer readable copies (counting those being made)
 * than wanted, or more readable copies than wanted.
 */
function needsHealing(state: State, c: ContentState): boolean {
  const wanted = wantedReplicas(c);
  if (wanted === 0) return false;
  // Counted, not listed: the fold asks this after every change to a piece's copies.
  let holders = 0, copies = 0;
  for (const workerId of c.holders) if (live(state, workerId)) holders += 1;
  for (const workerId of c.copying) if (live(state, workerId)) copies += 1;
  return holders + copies < wanted || holders > wanted;
}

/** Keep the index of bytes that need healing true for `c`. */
export function recheck(state: State, c: ContentState): void {
  if (state.content.get(c.sha256) === c && needsHealing(state, c)) state.unhealthy.add(c.sha256);
  else state.unhealthy.delete(c.sha256);
}

/**
 * After any change to what `workerId` is expected to keep of `c`: the per-worker index and
 * the worker's load (bytes placed on it) follow.
 */
export function syncPlacement(state: State, c: ContentState, workerId: string): void {
  let held = state.placedOn.get(workerId);
  const was = held?.has(c.sha256) ?? false;
  const now = state.content.get(c.sha256) === c && isPlaced(c, workerId);
  if (now === was) return;
  const worker: WorkerState | undefined = state.workers.get(workerId);
  if (now) {
    if (!held) state.placedOn.set(workerId, (held = new Set()));
    held.add(c.sha256);
    if (worker) worker.assignedBytes += c.size;
  } else {
    held!.delete(c.sha256);
    if (held!.size === 0) state.placedOn.delete(workerId);
    if (worker) worker.assignedBytes -= c.size;
  }
}

/** The bytes of a piece, made known to the table when a version first plans them. */
export function contentFor(state: State, sha256: string, size: number): ContentRecord {
  let c = state.content.get(sha256);
  if (!c) state.content.set(sha256, (c = new ContentRecord(sha256, size)));
  return c;
}

/**
 * Put `c` (just made again from a snapshot) in the indexes the fold keeps of `content`:
 * `placedOn` (and the load of the workers it names), `copyingTo` and `unhealthy`, by the
 * same rules the fold keeps them with. The workers must be in the table already.
 */
export function indexContent(state: State, c: ContentState): void {
  for (const workerId of c.holders) syncPlacement(state, c, workerId);
  for (const workerId of c.copying) {
    syncPlacement(state, c, workerId);
    indexCopy(state, workerId, c.sha256, true);
  }
  for (const workerId of c.assigned.keys()) syncPlacement(state, c, workerId);
  recheck(state, c);
}

/** Mark a drop owed: the worker may forget these bytes. */
export function oweDrop(state: State, workerId: string, sha256: string): void {
  let owed = state.dropsOwed.get(workerId);
  if (!owed) state.dropsOwed.set(workerId, (owed = new Set()));
  owed.add(sha256);
}

export function forgiveDrop(state: State, workerId: string, sha256: string): void {
  const owed = state.dropsOwed.get(workerId);
  if (!owed?.delete(sha256)) return;
  if (owed.size === 0) state.dropsOwed.delete(workerId);
}

/** No live version refers to these bytes any more: every worker that may keep them owes a drop. */
export function retire(state: State, c: ContentState): void {
  const workers = new Set([...c.holders, ...c.copying, ...c.assigned.keys()]);
  state.content.delete(c.sha256);
  for (const w of c.copying) indexCopy(state, w, c.sha256, false);
  state.unhealthy.delete(c.sha256);
  for (const w of workers) {
    syncPlacement(state, c, w);
    oweDrop(state, w, c.sha256);
  }
}

/** Keep the index of copies in flight by target true: `workerId` is (or is no longer) copying these bytes. */
export function indexCopy(state: State, workerId: string, sha256: string, copying: boolean): void {
  let set = state.copyingTo.get(workerId);
  if (copying) {
    if (!set) state.copyingTo.set(workerId, (set = new Set()));
    set.add(sha256);
  } else if (set?.delete(sha256) && set.size === 0) state.copyingTo.delete(workerId);
}

/** Copy orders in flight now, over every target. */
export function copiesInFlight(state: State): number {
  let n = 0;
  for (const shas of state.copyingTo.values()) n += shas.size;
  return n;
}
