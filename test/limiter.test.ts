// The one concurrency limiter: at most N tasks (or N units of weight) at once, the others in the order they came.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { Limiter } from "../src/limiter.js";

const test = suite("limiter");

/** A task that runs until `finish` is called. */
function gate() {
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  return { done, finish };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

test("limiter - runs at most its limit at once and starts the rest first come, first served", async () => {
  const limiter = new Limiter(2);
  const gates = Array.from({ length: 5 }, gate);
  const started: number[] = [];
  const runs = gates.map((g, i) => limiter.run(async () => {
    started.push(i);
    await g.done;
    return i;
  }));
  await settle();
  assert.equal(started, [0, 1]);
  assert.is(limiter.active, 2);
  assert.is(limiter.queued, 3);
  gates[1]!.finish();
  await settle();
  assert.equal(started, [0, 1, 2], "a freed slot goes to the oldest waiter");
  gates[0]!.finish();
  gates[2]!.finish();
  await settle();
  assert.equal(started, [0, 1, 2, 3, 4]);
  gates[3]!.finish();
  gates[4]!.finish();
  assert.equal(await Promise.all(runs), [0, 1, 2, 3, 4]);
  assert.is(limiter.active, 0);
  assert.is(limiter.queued, 0);
});

test("limiter - a task that fails rejects its own run and frees its slot", async () => {
  const limiter = new Limiter(1);
  const failed = limiter.run(async () => {
    throw new Error("broken");
  }).catch((err: Error) => err.message);
  const next = limiter.run(() => "ran");
  assert.is(await failed, "broken");
  assert.is(await next, "ran");
  assert.is(limiter.active, 0);
});

test("limiter - weighted tasks run while their weights fit, and a heavy one waiting holds back lighter ones behind it", async () => {
  const limiter = new Limiter(10);
  const gates = Array.from({ length: 5 }, gate);
  const weights = [4, 4, 5, 1, 30];
  const started: number[] = [];
  const runs = gates.map((g, i) => limiter.run(async () => {
    started.push(i);
    await g.done;
  }, weights[i]));
  await settle();
  assert.equal(started, [0, 1], "4 + 4 fit in 10; 5 more does not, and the 1 behind it waits its turn");
  gates[0]!.finish();
  await settle();
  assert.equal(started, [0, 1, 2, 3], "4 + 5 and then the 1 fit");
  gates[1]!.finish();
  gates[2]!.finish();
  await settle();
  assert.equal(started, [0, 1, 2, 3], "a weight above the limit waits for the whole limit");
  gates[3]!.finish();
  await settle();
  assert.equal(started, [0, 1, 2, 3, 4], "and then runs alone");
  gates[4]!.finish();
  await Promise.all(runs);
  assert.is(limiter.active, 0);
});

test("limiter - a limit below 1 is refused", () => {
  assert.throws(() => new Limiter(0), /at least 1/);
  assert.throws(() => new Limiter(1.5), /at least 1/);
});

test.run();
