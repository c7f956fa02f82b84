// A bounded window over a sequence: items are fetched a few at a time, in any order they
// arrive, and handed on strictly in index order. Memory holds at most `window` items whatever
// the sequence's length: a piece's frames are read, hashed and written so, on the client and
// on a worker, instead of the whole piece being gathered first.
import { Limiter } from "./limiter.js";

/**
 * Fetch items 0..count-1, at most `window` of them fetched and not yet consumed at once, and
 * `consume` each in index order (one at a time: the next waits for the one before to finish,
 * so a slow consumer holds the fetching back). The first failure, of a fetch or a consume,
 * aborts the fetches under way (through their signal), starts no new one, consumes nothing
 * after it, and is what this rejects with once everything started has stopped.
 */
export async function fetchInOrder<T>(
  count: number,
  window: number,
  fetch: (index: number, signal: AbortSignal) => Promise<T>,
  consume: (item: T, index: number) => Promise<void> | void,
  signal?: AbortSignal,
): Promise<void> {
  const stop = new AbortController();
  const onAbort = () => stop.abort(signal!.reason);
  if (signal?.aborted) onAbort();
  signal?.addEventListener("abort", onAbort, { once: true });
  const slots = new Limiter(window);
  let failed = false;
  let failure: unknown;
  const fail = (err: unknown) => {
    if (failed) return;
    failed = true;
    failure = err;
    stop.abort(err);
  };
  let previous: Promise<void> = Promise.resolve();
  const steps: Promise<void>[] = [];
  try {
    for (let index = 0; index < count; index++) {
      const turn = previous;
      // A slot is held from the fetch until the item is consumed: that is the window.
      const step = slots.run(async () => {
        try {
          stop.signal.throwIfAborted();
          const item = await fetch(index, stop.signal);
          await turn;
          stop.signal.throwIfAborted();
          await consume(item, index);
        } catch (err) {
          // Before the slot is handed on: the next fetch must not start.
          fail(err);
          throw err;
        }
      });
      step.catch(() => undefined);
      steps.push(step);
      previous = step;
    }
    await Promise.allSettled(steps);
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
  if (failed) throw failure;
}
