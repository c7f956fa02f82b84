// Reports said one at a time and sent together: nothing lost, nothing waits when alone.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { Batcher } from "../src/batcher.js";

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

test.run();
