// The in-order window: items fetched a few at a time, in whatever order they arrive, consumed
// strictly in index order, never more than the window held, the first failure the only one.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { fetchInOrder } from "../src/in-order.js";

const test = suite("in-order");

/** A fetch that resolves when the test says so. */
function pending<T>() {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
};

test("in-order - items arriving out of order are consumed in order, and at most the window is held", async () => {
  const fetches = Array.from({ length: 6 }, () => pending<string>());
  const asked: number[] = [];
  const consumed: string[] = [];
  let held = 0;
  let mostHeld = 0;
  const done = fetchInOrder(
    6,
    3,
    (i) => {
      asked.push(i);
      held += 1;
      mostHeld = Math.max(mostHeld, held);
      return fetches[i]!.promise;
    },
    (item) => {
      consumed.push(item);
      held -= 1;
    },
  );
  await settle();
  assert.equal(asked, [0, 1, 2], "only the window is asked");
  fetches[2]!.resolve("c");
  fetches[1]!.resolve("b");
  await settle();
  assert.equal(consumed, [], "nothing is consumed ahead of item 0");
  assert.equal(asked, [0, 1, 2], "items that came ahead still hold their place in the window");
  fetches[0]!.resolve("a");
  await settle();
  assert.equal(consumed, ["a", "b", "c"]);
  assert.equal(asked, [0, 1, 2, 3, 4, 5], "consuming makes room");
  fetches[5]!.resolve("f");
  fetches[4]!.resolve("e");
  fetches[3]!.resolve("d");
  await done;
  assert.equal(consumed, ["a", "b", "c", "d", "e", "f"]);
  assert.is(mostHeld, 3);
});

test("in-order - a slow consumer holds the fetching back", async () => {
  const gate = pending<void>();
  const asked: number[] = [];
  const done = fetchInOrder(
    5,
    2,
    async (i) => {
      asked.push(i);
      return i;
    },
    (i) => (i === 0 ? gate.promise : undefined),
  );
  await settle();
  assert.equal(asked, [0, 1], "item 2 waits for item 0 to be consumed");
  gate.resolve();
  await done;
  assert.equal(asked, [0, 1, 2, 3, 4]);
});

test("in-order - a failed fetch aborts the others, consumes nothing after it, and is the one error", async () => {
  const fetches = Array.from({ length: 5 }, () => pending<number>());
  const answered = new Set<number>();
  const aborted: number[] = [];
  const consumed: number[] = [];
  const done = fetchInOrder(
    5,
    3,
    (i, signal) => {
      void fetches[i]!.promise.finally(() => answered.add(i)).catch(() => undefined);
      signal.addEventListener("abort", () => {
        if (answered.has(i)) return;
        aborted.push(i);
        fetches[i]!.reject(new Error(`fetch ${i} aborted`));
      });
      return fetches[i]!.promise;
    },
    (i) => void consumed.push(i),
  ).then(
    () => "resolved",
    (err: Error) => err.message,
  );
  await settle();
  fetches[0]!.resolve(0);
  fetches[2]!.resolve(2);
  await settle();
  fetches[1]!.reject(new Error("frame 1 is bad"));
  assert.is(await done, "frame 1 is bad");
  assert.equal(consumed, [0], "nothing after the failure is consumed");
  assert.equal(aborted.sort(), [3], "the fetch under way was aborted; none started after");
});

test("in-order - a failed consume stops everything after it", async () => {
  const consumed: number[] = [];
  const result = await fetchInOrder(
    10,
    4,
    async (i) => i,
    (i) => {
      if (i === 3) throw new Error("disk full");
      consumed.push(i);
    },
  ).catch((err: Error) => err.message);
  assert.is(result, "disk full");
  assert.equal(consumed, [0, 1, 2]);
});

test("in-order - the caller's signal stops it with its reason; nothing is an unhandled rejection", async () => {
  const caller = new AbortController();
  const done = fetchInOrder(
    100,
    4,
    (_i, signal) => new Promise<number>((_, reject) => signal.addEventListener("abort", () => reject(signal.reason))),
    () => undefined,
    caller.signal,
  ).catch((err: Error) => err.message);
  await settle();
  caller.abort(new Error("interrupted"));
  assert.is(await done, "interrupted");
});

test("in-order - no items: resolves at once", async () => {
  await fetchInOrder(0, 4, async () => 1, () => assert.unreachable("nothing to consume"));
});

test.run();
