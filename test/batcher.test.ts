// Reports said one at a time and sent together: nothing lost, nothing waits when alone.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { Batcher, CallBatcher } from "../src/batcher.js";

const test = suite("batcher");

test("batcher - a lone item goes at once; what comes during a send goes together in the next, at most max a send", async () => {
  const sends: number[][] = [];
  let release!: () => void;
  let firstSend: Promise<void> | undefined;
  const batcher = new Batcher<number>((items) => {
    sends.push(items);
    if (!firstSend) firstSend = new Promise<void>((r) => (release = r));
    return sends.length === 1 ? firstSend : Promise.resolve();
  }, 3);
  const first = batcher.add(0);
  await new Promise((r) => setImmediate(r));
  assert.equal(sends, [[0]], "sent alone, without waiting for more");
  const rest = [1, 2, 3, 4, 5].map((i) => batcher.add(i));
  await new Promise((r) => setImmediate(r));
  assert.equal(sends, [[0]], "the others wait while a send is in flight");
  release();
  await Promise.all([first, ...rest]);
  assert.equal(sends, [[0], [1, 2, 3], [4, 5]]);
});

test("batcher - a failed send rejects every item of its batch, and the next batch still goes", async () => {
  let calls = 0;
  const batcher = new Batcher<string>(async (items) => {
    calls += 1;
    if (items.includes("bad")) throw new Error("refused");
  }, 10);
  const outcomes = await Promise.all(["a", "bad"].map((x) => batcher.add(x).then(() => "sent", (err: Error) => err.message)));
  assert.equal(outcomes, ["refused", "refused"]);
  assert.is(await batcher.add("c").then(() => "sent"), "sent");
  assert.is(calls, 2);
});

test("batcher - a batch of less than one item is refused", () => {
  assert.throws(() => new Batcher(async () => undefined, 0), /at least 1/);
});

test("call batcher - the calls of one turn go in requests of at most max, shared out evenly, each answered with its own", async () => {
  const requests: number[][] = [];
  const batcher = new CallBatcher<number, string>(async (items) => {
    requests.push(items);
    return items.map((i) => `answer ${i}`);
  }, 4);
  const answers = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => batcher.call(i)));
  assert.equal(answers, ["answer 0", "answer 1", "answer 2", "answer 3", "answer 4", "answer 5"]);
  assert.equal(requests, [[0, 1, 2], [3, 4, 5]]);
  assert.is(await batcher.call(6), "answer 6");
  assert.equal(requests.at(-1), [6], "a lone call goes alone");
});

test("call batcher - requests do not wait for one another, and a failed one fails only its own calls", async () => {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const batcher = new CallBatcher<string, string>(async (items) => {
    if (items.includes("slow")) await held;
    if (items.includes("bad")) throw new Error("refused");
    return items;
  }, 10);
  const slow = batcher.call("slow");
  await new Promise((r) => setImmediate(r));
  const outcomes = await Promise.all(["a", "bad"].map((x) => batcher.call(x).then((y) => y, (err: Error) => err.message)));
  assert.equal(outcomes, ["refused", "refused"], "answered while the first request is still out");
  release();
  assert.is(await slow, "slow");
});

test("call batcher - as many answers as calls, or every call of the request fails", async () => {
  const batcher = new CallBatcher<number, number>(async () => [1], 10);
  const outcomes = await Promise.all([1, 2].map((i) => batcher.call(i).then(String, (err: Error) => err.message)));
  assert.equal(outcomes, ["1 answers to 2 items", "1 answers to 2 items"]);
  assert.throws(() => new CallBatcher(async () => [], 0), /at least 1/);
});

test.run();
