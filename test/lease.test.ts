// The lease, as a master holds it over a real nats-server with the master's own permissions: a
// renewal that landed though its answer was lost is still the leader's own (it keeps leading),
// while a message of anyone else's on the lease subject takes the lease from it.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { jetstream } from "@nats-io/jetstream";
import { catalogue } from "../streams/catalogue.js";
import { encode } from "../src/codec.js";
import { LEASE_RENEW_MS, Lease } from "../src/lease.js";
import { TestStore, waitFor } from "./harness.js";

const cat = catalogue("dfs");
const test = suite<{ store: TestStore }>("lease", {} as { store: TestStore });
test.before(async (ctx) => {
  ctx.store = await TestStore.start("lease");
});
test.after(async (ctx) => {
  await ctx.store?.stop();
});

/** A lease held by `holder`, and what it was told. */
async function leading(store: TestStore, holder: string) {
  const js = jetstream(await store.connect("master", undefined, { streams: true }));
  const told: string[] = [];
  const lease = new Lease(js, cat, holder, { lead: () => told.push("lead"), follow: (why) => told.push(`follow: ${why}`) });
  lease.start();
  await waitFor("the lease taken", () => told.includes("lead"));
  return { js, lease, told };
}

test("a renewal that landed unanswered is still the leader's: it keeps the lease", async ({ store }) => {
  const { js, lease, told } = await leading(store, "m1");
  try {
    // What a renewal whose acknowledgement timed out leaves behind: the leader's message after the one it knows.
    await js.publish(cat.leaseSubject(), encode({ holder: "m1", at: Date.now() }));
    await new Promise((resolve) => setTimeout(resolve, 4 * LEASE_RENEW_MS));
    assert.equal(told, ["lead"], "never stepped down");
    assert.ok(lease.leading);
  } finally {
    lease.stop();
  }
});

test("a message of another holder on the lease subject takes the lease from the leader", async ({ store }) => {
  // The first test's lease ages out before this one can be taken.
  const { js, lease, told } = await leading(store, "m2");
  try {
    await js.publish(cat.leaseSubject(), encode({ holder: "rival", at: Date.now() }));
    await waitFor("the leader stepped down", () => told.includes("follow: another master took the lease"), 5_000);
    assert.not.ok(lease.leading);
  } finally {
    lease.stop();
  }
});

test.run();
