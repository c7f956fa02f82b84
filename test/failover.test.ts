// What is retried through a failover can never land twice: an append whose ack was lost is
// tried again and recognised by the stream as the same message; what is not a failover is not retried.
import { jetstream, JetStreamApiError, type JetStreamClient } from "@nats-io/jetstream";
import { TimeoutError } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { encode } from "../src/codec.js";
import { isFailoverError, throughFailover } from "../src/failover.js";
import { appendEvent, lastSequence } from "../src/log.js";
import { TestStore, errorCode } from "./harness.js";

// A store with no master: nothing else appends meanwhile.
const test = suite<{ store: TestStore }>("failover", {} as { store: TestStore });

test.before(async (ctx) => {
  ctx.store = await TestStore.start("failover");
});

test.after(async (ctx) => {
  await ctx.store?.stop();
});


/** A JetStream client whose first publish lands but whose ack is lost, as when its server dies right after storing it. */
function losingFirstAck(js: JetStreamClient): JetStreamClient {
  let lost = false;
  return new Proxy(js, {
    get(target, key) {
      if (key !== "publish") return Reflect.get(target, key);
      return async (...args: Parameters<JetStreamClient["publish"]>) => {
        const ack = await target.publish(...args);
        if (lost) return ack;
        lost = true;
        throw new TimeoutError();
      };
    },
  });
}

const joined = (store: TestStore, workerId: string) => ({ subject: store.cat.workerEvents(workerId), data: encode({ type: "WorkerJoined", at: Date.now(), workerId }) });

test("an append whose ack was lost is tried again and recognised as the same message: the event is logged once", async ({ store }) => {
  const nc = await store.connect("master", undefined, { streams: true });
  const before = await lastSequence(nc, store.cat);
  const seq = await appendEvent(losingFirstAck(jetstream(nc)), joined(store, "wx"), before);
  assert.is(seq, before + 1, "where the first attempt landed");
  assert.is(await lastSequence(nc, store.cat), before + 1, "logged once");
});

test("only a failover's errors are retried, and for a bounded time, then UNAVAILABLE", async () => {
  assert.ok(isFailoverError(new TimeoutError()));
  assert.not.ok(isFailoverError(new JetStreamApiError({ code: 400, err_code: 10071, description: "wrong last sequence: 7" })));
  assert.ok(isFailoverError(new JetStreamApiError({ code: 503, err_code: 10008, description: "JetStream system temporarily unavailable" })));
  let attempts = 0;
  const started = Date.now();
  assert.is(await errorCode(() => throughFailover(async () => (attempts++, Promise.reject(new TimeoutError())), 500)), "UNAVAILABLE");
  assert.ok(attempts >= 3 && Date.now() - started < 1_500, `${attempts} attempts in ${Date.now() - started} ms`);
  attempts = 0;
  await throughFailover(async () => (attempts++, Promise.reject(new Error("not a failover")))).catch(() => undefined);
  assert.is(attempts, 1);
});

test.run();
