// Values the master's table repeats a million times but holds few of: the sets of workers
// holding a piece, the peers of a piece, a version's uploader. Each distinct one is kept
// once and shared; what is shared is never changed in place (the fold makes a new one).
// A Set or Map costs about 170 bytes even with one entry, an array that grew by `push` 150.

const pool = new Map<string, unknown>();
/** Past this many, the pool starts again: values in use stay where they are, later ones are shared anew. */
const MAX_INTERNED = 100_000;

/** The value kept under `key`, made by `make` the first time. Keys name their kind ("s:", "m:"...). */
export function interned<T>(key: string, make: () => T): T {
  let found = pool.get(key) as T | undefined;
  if (found === undefined) {
    if (pool.size >= MAX_INTERNED) pool.clear();
    pool.set(key, (found = make()));
  }
  return found;
}

/**
 * The value kept under `key` in `level`, made by `make` the first time: one step of a value
 * shared by the identity of its parts (each part a shared value already), level by level.
 */
export function within<K extends object, V>(level: WeakMap<K, V>, key: K, make: () => V): V {
  let found = level.get(key);
  if (found === undefined) level.set(key, (found = make()));
  return found;
}

/** Joins the parts of a key: no worker id, user or number has it. */
export const KEY_SEPARATOR = "\u0000";
