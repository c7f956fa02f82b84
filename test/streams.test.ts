// The catalogue and provisioning: names derived from the prefix, idempotent and race-safe
// creation, and an events stream that refuses to forget.
import { rm } from "node:fs/promises";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { catalogue } from "../streams/catalogue.js";
import { provisionMaster, provisionStreams, provisionWorkers } from "../streams/provision.js";
import { requireStore } from "../src/connection.js";
import { startNatsServer, type RunningNatsServer } from "../client/nats-server.js";
import { join } from "node:path";
import { runCli, tempDir } from "./harness.js";

interface Ctx {
  server: RunningNatsServer;
  nc: NatsConnection;
  dir: string;
}
const test = suite<Ctx>("streams", {} as Ctx);

test.before(async (ctx) => {
  ctx.dir = await tempDir("streams");
  ctx.server = await startNatsServer({ storeDir: ctx.dir });
  ctx.nc = await connect({ servers: ctx.server.url });
});

test.after(async (ctx) => {
  await ctx.nc?.close();
  await ctx.server?.stop();
  await rm(ctx.dir, { recursive: true, force: true });
});

test("catalogue - every name derives from the prefix, and ids must be subject tokens", () => {
  const cat = catalogue("acme.store");
  assert.is(cat.eventsStream, "ACME_STORE_EVENTS");
  assert.is(cat.confirmStream, "ACME_STORE_CONFIRM");
  assert.is(cat.fileEvents("f1"), "acme.store.evt.file.f1");
  assert.is(cat.assignEvents("w1"), "acme.store.evt.assign.w1");
  assert.is(cat.workerRpc("w1", "read"), "acme.store.rpc.worker.w1.read");
  assert.equal(cat.parsePull(cat.pull("client-bob", "up1", 12)), { uploader: "client-bob", uploadId: "up1", piece: 12 });
  assert.is(cat.parsePull("acme.store.pull.client.up1.x"), undefined);
  assert.is(cat.parsePull("acme.store.pull.client.up1.1.2"), undefined);
  assert.is(cat.parsePull("other.pull.client.up1.1"), undefined);
  // A version created before uploads named their user is pulled where it always was.
  assert.is(cat.pull(undefined, "up1", 3), "acme.store.pull.up1.3");
  assert.throws(() => cat.fileEvents("a.b"), /invalid file id/);
  assert.throws(() => cat.heartbeat("*"), /invalid worker id/);
  assert.throws(() => catalogue("bad prefix"), /invalid subject prefix/);
  assert.equal(cat.eventsStreamConfig().subjects, ["acme.store.evt.>"]);
});

test("provisioning is idempotent and safe when everyone races to do it", async ({ nc }) => {
  const cat = catalogue("race");
  await Promise.all([provisionStreams(nc, cat), provisionStreams(nc, cat), provisionStreams(nc, cat)]);
  await Promise.all([provisionMaster(nc, cat), provisionMaster(nc, cat), provisionWorkers(nc, cat, ["w1"]), provisionWorkers(nc, cat, ["w1"])]);
  await provisionMaster(nc, cat);
  const jsm = await jetstreamManager(nc);
  const names: string[] = [];
  for await (const s of jsm.streams.list()) names.push(s.config.name);
  assert.equal(names.filter((n) => n.startsWith("RACE_")).sort(), ["RACE_ABANDON", "RACE_AUDIT", "RACE_CONFIRM", "RACE_EVENTS", "RACE_LEASE", "RACE_SNAPSHOTS"]);
  const consumers: string[] = [];
  for await (const c of jsm.consumers.list("RACE_EVENTS")) consumers.push(c.name);
  assert.equal(consumers, ["worker-w1"]);
  assert.is((await jsm.consumers.info("RACE_CONFIRM", "master")).config.ack_policy, "explicit");
});

test("the events stream keeps everything and refuses delete and purge", async ({ nc }) => {
  const cat = catalogue("audit");
  await provisionStreams(nc, cat);
  const js = jetstream(nc);
  await js.publish(cat.workerEvents("w1"), new Uint8Array([1]));
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(cat.eventsStream);
  assert.is(info.config.max_age, 0);
  assert.is(info.config.deny_delete, true);
  assert.is(info.config.deny_purge, true);
  let purged = true;
  await jsm.streams.purge(cat.eventsStream).catch(() => (purged = false));
  assert.not.ok(purged, "purge refused");
  let deleted = true;
  await jsm.streams.deleteMessage(cat.eventsStream, 1).catch(() => (deleted = false));
  assert.not.ok(deleted, "delete refused");
  assert.is((await jsm.streams.info(cat.eventsStream)).state.messages, 1);
  assert.is((await jsm.streams.info(cat.confirmStream)).config.retention, "workqueue");
});

test("a store that is not there is NOT_FOUND, naming its prefix, and nothing is created", async (ctx) => {
  const { nc } = ctx;
  const cat = catalogue("typo");
  const err = await requireStore(nc, cat).then(
    () => undefined,
    (e: { code?: string; message: string }) => e,
  );
  assert.is(err?.code, "NOT_FOUND");
  assert.match(err!.message, /prefix "typo"/);
  // The CLI's readers likewise: a clear NOT_FOUND (exit 3), and still nothing created.
  for (const command of ["tail", "replay"]) {
    const run = await runCli(["--nats", ctx.server.url, "--creds-dir", join(ctx.dir, "none"), "--prefix", "typo", command]);
    assert.is(run.code, 3, run.stderr);
    assert.match(run.stderr, /^dfs: NOT_FOUND: no store with prefix "typo"/);
  }
  const jsm = await jetstreamManager(nc);
  for await (const s of jsm.streams.list()) assert.not.ok(s.config.name.startsWith("TYPO_"), `${s.config.name} was created`);
});

test.run();
