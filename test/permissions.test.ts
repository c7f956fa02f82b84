// The server enforces the roles: each test tries, with a real role's credentials against a
// real nats-server started with the generated config, something that role must not do.
import { randomBytes } from "node:crypto";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import * as assert from "uvu/assert";
import { encode } from "../src/codec.js";
import { usersOf, ROLES } from "../streams/permissions.js";
import { MASTER_OPS, WORKER_OPS, catalogue } from "../streams/catalogue.js";
import { startNatsServer } from "../client/nats-server.js";
import { connectNats } from "../src/connection.js";
import { call } from "../src/rpc.js";
import { DfsClient } from "../client/client.js";
import { errorCode, runCli, storeSuite, tempDir, waitFor, type TestStore } from "./harness.js";

const test = storeSuite("permissions", { workers: ["w1", "w2"] });

/** The events stream's last sequence, as the admin sees it. */
async function lastSeq(store: TestStore): Promise<number> {
  const jsm = await jetstreamManager(await store.connect("admin"));
  return (await jsm.streams.info(store.cat.eventsStream)).state.last_seq;
}

/** Whatever `run` does, it must be refused (an error, never a success). */
async function refused(what: string, run: () => Promise<unknown>): Promise<void> {
  const outcome = await run().then(
    () => "succeeded",
    (err: Error) => err.message,
  );
  assert.not.equal(outcome, "succeeded", `${what} was allowed`);
}

/** Publishes that the server drops leave the connection up: a flush proves it saw them. */
async function publishAndFlush(nc: NatsConnection, subject: string, data: Uint8Array): Promise<void> {
  nc.publish(subject, data);
  await nc.flush();
}

test("permissions - come from the catalogue, one set per user of each role", () => {
  const cat = catalogue("acme");
  for (const role of ROLES) {
    for (const p of usersOf(cat, role, role === "worker" ? "w7" : undefined)) {
      assert.ok(p.publish.length > 0 && p.subscribe.length > 0, p.user);
      // Nobody but the master's JetStream user appends to the log.
      assert.is(p.publish.includes(cat.allEvents()), p.user === "master.streams", `${p.user} may append`);
      // Everyone reads replies only below its own inbox prefix.
      assert.equal(p.subscribe.filter((s) => s.startsWith("_INBOX_")), [`${cat.inbox(p.user)}.>`], `${p.user} inbox`);
      assert.not.ok(p.subscribe.some((s) => s === ">" || s.startsWith("_INBOX.")), `${p.user} may read any inbox`);
      // A user that answers requests touches no JetStream API: on nats-server 2.9 it would read
      // JetStream slower and slower (see usersOf).
      if (p.respond) assert.not.ok(p.publish.some((s) => s.startsWith("$JS.")), `${p.user} answers requests and uses JetStream`);
    }
  }
  assert.equal(
    usersOf(cat, "worker", "w7").map((p) => p.user),
    ["worker-w7", "worker-w7.streams"],
  );
  assert.throws(() => usersOf(cat, "worker"), /name its id/);
});

/** Whether a NATS subject matches a permission pattern (`*` one token, `>` the rest). */
function matches(pattern: string, subject: string): boolean {
  const p = pattern.split(".");
  const s = subject.split(".");
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ">") return s.length > i;
    if (i >= s.length || (p[i] !== "*" && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
}

test("permissions - every subject of the catalogue has exactly the publishers and subscribers it should", () => {
  const cat = catalogue("dfs");
  const users = [
    ...(["master", "client", "auditor", "admin"] as const).flatMap((role) => usersOf(cat, role)),
    ...usersOf(cat, "client", "bob"),
    ...["w1", "w2"].flatMap((id) => usersOf(cat, "worker", id)),
  ];
  const clients = ["client", "client-bob"];
  const who = (kind: "publish" | "subscribe", subject: string) =>
    users
      .filter((p) => p[kind].some((pattern) => matches(pattern, subject)))
      .map((p) => p.user)
      .sort();
  const expect = (subject: string, publishers: string[], subscribers: string[]) => {
    assert.equal(who("publish", subject), [...publishers].sort(), `publishers of ${subject}`);
    assert.equal(who("subscribe", subject), [...subscribers].sort(), `subscribers of ${subject}`);
  };
  expect(cat.fileEvents("f1"), ["master.streams"], []);
  expect(cat.assignEvents("w1"), ["master.streams"], []);
  expect(cat.workerEvents("w1"), ["master.streams"], []);
  expect(cat.confirm("w1"), ["worker-w1.streams"], []);
  expect(cat.heartbeat("w1"), ["worker-w1"], ["master"]);
  expect(cat.leaseSubject(), ["master.streams"], []);
  expect(cat.abandon("upload1"), clients, []);
  // An upload's pulls reach only the user that serves it: no other client watches or answers them.
  expect(cat.pull("client", "upload1", 3), ["worker-w1", "worker-w2"], ["client"]);
  expect(cat.pull("client-bob", "upload1", 3), ["worker-w1", "worker-w2"], ["client-bob"]);
  // Where a version created before uploads named their user is pulled: nobody may serve it now.
  expect(cat.pull(undefined, "upload1", 3), ["worker-w1", "worker-w2"], []);
  const masterRpcCallers = (op: string) =>
    op === "state" || op === "status" ? ["admin", "auditor", ...clients] : op === "reader" ? ["auditor"] : op === "retention" ? ["admin"] : clients;
  for (const op of MASTER_OPS) expect(cat.masterRpc(op), masterRpcCallers(op), ["master"]);
  const workerRpcCallers = { read: [...clients, "worker-w1", "worker-w2"], health: clients, verify: [...clients, "master", "worker-w1", "worker-w2"], inventory: ["master"], scrub: clients };
  for (const op of WORKER_OPS) expect(cat.workerRpc("w1", op), workerRpcCallers[op], ["worker-w1"]);
  // The streams themselves: only the admin may change, purge or delete them.
  for (const api of ["STREAM.DELETE", "STREAM.UPDATE", "STREAM.PURGE", "STREAM.MSG.DELETE"]) {
    expect(`$JS.API.${api}.${cat.eventsStream}`, ["admin"], []);
  }
});

test("a connection without credentials is refused", async ({ store }) => {
  const err = await connect({ servers: store.url, reconnect: false }).then(
    async (nc) => {
      await nc.close();
      return undefined;
    },
    (e: Error) => e,
  );
  assert.ok(err, "an anonymous connection was accepted");
  assert.match(err!.message, /authorization/i);
  const cli = await runCli(["--nats", store.url, "--creds-dir", join(store.dir, "none"), "ls"]);
  assert.is(cli.code, 1);
  assert.match(cli.stderr, /^dfs: UNAUTHORIZED: .*without credentials/);
});

test("a client cannot append to the log, nor delete, purge or change the events stream", async ({ store }) => {
  const before = await lastSeq(store);
  const client = await store.connect("client");
  const forged = encode({ type: "FileCommitted", at: 1, fileId: "x", path: "/x", version: 1, size: 0, sha256: "0".repeat(64) });
  await refused("a JetStream publish into the log", () => jetstream(client).publish(store.cat.fileEvents("x"), forged, { timeout: 2_000 }));
  await publishAndFlush(client, store.cat.fileEvents("x"), forged);
  await refused("jetstreamManager", async () => {
    const jsm = await jetstreamManager(client);
    await jsm.streams.delete(store.cat.eventsStream);
  });
  const raw = (api: string) => client.request(api, "{}", { timeout: 2_000 });
  await refused("stream delete", () => raw(`$JS.API.STREAM.DELETE.${store.cat.eventsStream}`));
  await refused("stream update", () => raw(`$JS.API.STREAM.UPDATE.${store.cat.eventsStream}`));
  await refused("stream purge", () => raw(`$JS.API.STREAM.PURGE.${store.cat.eventsStream}`));
  assert.is(await lastSeq(store), before, "the log did not change");
  const jsm = await jetstreamManager(await store.connect("admin"));
  const info = await jsm.streams.info(store.cat.eventsStream);
  assert.is(info.config.max_msgs, -1);
  assert.is(info.config.deny_delete, true);
});

test("a worker reads only its own assignments and speaks only for itself", async ({ store }) => {
  const w1 = await store.connect("worker", "w1", { streams: true });
  const stream = store.cat.eventsStream;
  await refused("reading w2's consumer", () => w1.request(`$JS.API.CONSUMER.MSG.NEXT.${stream}.${store.cat.workerConsumer("w2")}`, "{}", { timeout: 2_000 }));
  await refused("a consumer of every event", async () => {
    const jsm = await jetstreamManager(w1);
    await jsm.consumers.add(stream, { durable_name: store.cat.workerConsumer("w1"), filter_subject: store.cat.allEvents(), ack_policy: "explicit" as never });
  });
  await refused("an ordered reader of the log", async () => {
    const consumer = await jetstream(w1).consumers.get(stream);
    await consumer.next({ expires: 1_000 });
  });
  // w2's heartbeat and confirmation subjects are not w1's to publish on.
  await refused("a confirmation for w2", () =>
    jetstream(w1).publish(store.cat.confirm("w2"), encode({ workerId: "w2", fileId: "f", version: 1, piece: 0, sha256: "0".repeat(64), ok: false }), { timeout: 2_000 }),
  );
  const w1rpc = await store.connect("worker", "w1");
  await publishAndFlush(w1rpc, store.cat.heartbeat("ghost"), encode({ workerId: "ghost", pieces: 0, bytes: 0, at: Date.now() }));
  // On its own subject, claiming another id, it is ignored by the master.
  await publishAndFlush(w1rpc, store.cat.heartbeat("w1"), encode({ workerId: "ghost", pieces: 0, bytes: 0, at: Date.now() }));
  // On its own subject, a batch of reports with one in w2's name is dropped whole.
  const forgedCopy = { kind: "copy", workerId: "w2", sha256: "0".repeat(64), ok: true };
  await jetstream(w1).publish(store.cat.confirm("w1"), encode({ kind: "batch", workerId: "w1", reports: [{ ...forgedCopy, workerId: "w1" }, forgedCopy] }));
  await waitFor("the master to drop the batch", () => store.role("master").output().includes("dropped a confirmation on dfs.confirm.w1: worker w2 on dfs.confirm.w1"), 5_000);
  await new Promise((r) => setTimeout(r, 500));
  const state = await (await store.client()).masterState();
  assert.equal(state.workers.map((w) => w.workerId).sort(), ["w1", "w2"], "no ghost worker joined");
});

test("an auditor reads the log and publishes nothing else", async ({ store }) => {
  const auditor = await store.connect("auditor");
  const before = await lastSeq(store);
  for (const subject of [store.cat.fileEvents("x"), store.cat.heartbeat("w1"), store.cat.confirm("w1")]) {
    await refused(`publishing to ${subject}`, () => auditor.request(subject, encode({}), { timeout: 1_000 }));
  }
  await refused("a create", () => auditor.request(store.cat.masterRpc("create"), encode({}), { timeout: 1_000 }));
  assert.is(await lastSeq(store), before);
  const { state } = await store.replay();
  assert.is(state.lastSeq, before, "but it reads the whole log");
});

test("no client reads another's traffic: _INBOX.>, > and the other's prefix give nothing", async ({ store }) => {
  const spy = await store.connect("client", "spy");
  const seen: string[] = [];
  const refusals: string[] = [];
  for (const subject of ["_INBOX.>", ">", `${store.cat.inbox("client")}.>`, `${store.cat.inbox("worker-w1")}.>`]) {
    spy.subscribe(subject, { callback: (err, m) => void (err ? refusals.push(subject) : seen.push(m.subject)) });
  }
  await spy.flush().catch(() => undefined);
  const client = await store.client();
  const bytes = randomBytes(300_000);
  const local = join(store.dir, "secret.bin");
  await writeFile(local, bytes);
  await client.put(local, "/secret.bin", { replicas: 2, pieceSize: 64 * 1024 });
  await client.get("/secret.bin", join(store.dir, "secret.out"));
  assert.ok(Buffer.compare(await readFile(join(store.dir, "secret.out")), bytes) === 0);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(seen, [], "the spy received someone else's messages");
  assert.is(refusals.length, 4, "the server refused every one of those subscriptions");
});

test("a client serves only its own uploads: another client user can neither watch nor answer its pulls, and the put commits", async ({ store }) => {
  const bob = await store.connect("client", "bob");
  const refusals: string[] = [];
  const answered: string[] = [];
  // The attack that once broke puts: answer every pull with junk. The server refuses each subscription.
  for (const subject of [store.cat.pullsOf("client"), store.cat.pullsOf("*"), `${store.cat.prefix}.pull.>`]) {
    bob.subscribe(subject, {
      callback: (err, m) => {
        if (err) return void refusals.push(err.message);
        answered.push(m.subject);
        m.respond(new Uint8Array(1000));
      },
    });
  }
  await bob.flush().catch(() => undefined);
  await waitFor("the server to refuse all three", () => refusals.length === 3, 5_000);
  for (const message of refusals) assert.match(message, /permissions violation for subscription to "?dfs\.pull\./i);
  const client = await store.client();
  const bytes = randomBytes(5 * 64 * 1024 + 17);
  const local = join(store.dir, "own.bin");
  await writeFile(local, bytes);
  const put = await client.put(local, "/own.bin", { replicas: 2, pieceSize: 64 * 1024 });
  assert.is(put.servedBytes > 0, true);
  await client.get("/own.bin", join(store.dir, "own.out"));
  assert.ok(Buffer.compare(await readFile(join(store.dir, "own.out")), bytes) === 0);
  assert.equal(answered, [], "bob saw none of the pulls");
  // Bob's own uploads are pulled under his own user, which he may serve.
  const asBob = await store.client("client", "bob");
  assert.is(asBob.uploader, "client-bob");
  assert.is((await asBob.put(local, "/bobs.bin", { replicas: 2, pieceSize: 64 * 1024 })).version, 1);
});

test("a client that names another user as its uploads' server only breaks its own upload", async ({ store }) => {
  // Bob's connection, claiming the client's user: the master cannot tell, but the pulls go to
  // the client's subjects, which bob may not serve and the client does not serve for this upload.
  const bob = await store.connect("client", "bob");
  const liar = new DfsClient(bob, "client", store.prefix);
  const local = join(store.dir, "liar.bin");
  await writeFile(local, randomBytes(3 * 64 * 1024));
  assert.is(await errorCode(() => liar.put(local, "/liar.bin", { replicas: 2, pieceSize: 64 * 1024, idleTimeoutMs: 20_000 })), "UPLOAD_ABANDONED");
  const { state } = await store.replay();
  const file = [...state.files.values()].find((f) => f.path === "/liar.bin")!;
  const version = file.versions.get(1)!;
  assert.is(version.uploader, "client");
  assert.is(version.status, "abandoned");
  // Everyone else's uploads go on.
  const client = await store.client();
  assert.is((await client.put(local, "/not-liar.bin", { replicas: 2, pieceSize: 64 * 1024 })).version, 1);
});

test("only the uploader can give an upload up: an abort or abandon note with only its id is refused, and the upload commits", async ({ store }) => {
  const client = await store.client();
  const bob = await store.connect("client", "bob");
  const workers = [store.role("worker w1").process, store.role("worker w2").process];
  const local = join(store.dir, "kept.bin");
  const bytes = randomBytes(3 * 64 * 1024);
  await writeFile(local, bytes);
  // Paused workers keep the upload pending while bob tries to end it.
  for (const worker of workers) worker.kill("SIGSTOP");
  let put: Promise<unknown> | undefined;
  try {
    put = client.put(local, "/kept.bin", { replicas: 2, pieceSize: 64 * 1024 });
    put.catch(() => undefined); // awaited below
    // The id is public: the log (and `dfs history`) shows it.
    const uploadId = await waitFor("the upload id in the log", async () => {
      const { state } = await store.replay();
      const fileId = state.paths.get("/kept.bin");
      return fileId !== undefined && state.files.get(fileId)!.versions.get(1)!.uploadId;
    });
    const reason = "bob says so";
    assert.is(await errorCode(() => call(bob, store.cat.masterRpc("abort"), { uploadId, reason })), "BAD_REQUEST", "an abort by id");
    assert.is(await errorCode(() => call(bob, store.cat.masterRpc("abort"), { uploadKey: uploadId, reason })), "NOT_FOUND", "an abort with the id as the key");
    const js = jetstream(bob);
    await js.publish(store.cat.abandon(uploadId), encode({ uploadId, reason }), { msgID: "bob-1" });
    await js.publish(store.cat.abandon(uploadId), encode({ uploadKey: uploadId, reason }), { msgID: "bob-2" });
    const jsm = await jetstreamManager(await store.connect("admin"));
    await waitFor("the master to take both notes", async () => (await jsm.streams.info(store.cat.abandonStream)).state.messages === 0, 10_000);
    assert.match(store.role("master").output(), /dropped an abandon note on dfs\.abandon\.\S+: bad abandon note \(uploadKey\)/);
  } finally {
    for (const worker of workers) worker.kill("SIGCONT");
  }
  await put;
  await client.get("/kept.bin", join(store.dir, "kept.out"));
  assert.ok(Buffer.compare(await readFile(join(store.dir, "kept.out")), bytes) === 0);
  const { state } = await store.replay();
  const version = state.files.get(state.paths.get("/kept.bin")!)!.versions.get(1)!;
  assert.is(version.status, "committed");
});

test("an auditor reads only through a consumer a master made for it: it cannot take, change or pull a worker's, nor make one", async ({ store }) => {
  const auditor = await store.connect("auditor");
  const events = store.cat.eventsStream;
  const w1 = store.cat.workerConsumer("w1");
  await refused("pulling w1's assignments", () => auditor.request(`$JS.API.CONSUMER.MSG.NEXT.${events}.${w1}`, JSON.stringify({ batch: 1 }), { timeout: 2_000 }));
  await refused("changing w1's consumer", () =>
    auditor.request(`$JS.API.CONSUMER.CREATE.${events}.${w1}`, JSON.stringify({ stream_name: events, action: "update", config: { durable_name: w1, headers_only: true } }), { timeout: 2_000 }),
  );
  await refused("a consumer of the events stream", async () => {
    const consumer = await jetstream(auditor).consumers.get(events);
    await consumer.next({ expires: 1_000 });
  });
  // It makes no consumer at all, not even on the mirror: a push consumer could deliver the log
  // into any subject of the store (the lease, a consumer's next-message API...).
  const jsm = await jetstreamManager(auditor);
  await refused("a push consumer on the mirror", () =>
    jsm.consumers.add(store.cat.auditStream, { name: "push-attack", deliver_subject: store.cat.leaseSubject(), ack_policy: "none" as never, idle_heartbeat: 500_000_000 }),
  );
  // A worker cannot make or change its own consumer either (the admin made it, as a pull one).
  const w1conn = await store.connect("worker", "w1", { streams: true });
  await refused("a worker changing its own consumer", async () => {
    const wjsm = await jetstreamManager(w1conn);
    await wjsm.consumers.update(events, w1, { description: "mine" });
  });
  // What it may do: read the log through a consumer a master made for it.
  const { state } = await store.replay();
  assert.ok(state.lastSeq > 0);
});

test("roles used for the wrong job get a coded FORBIDDEN, not a hang", async ({ store }) => {
  const auditorAsClient = await store.client("auditor");
  const local = join(store.dir, "small.bin");
  await writeFile(local, "hello");
  assert.is(await errorCode(() => auditorAsClient.put(local, "/small.bin", { replicas: 1 })), "FORBIDDEN");
  const clientReadsLog = await store.client();
  assert.is(await errorCode(() => clientReadsLog.replay()), "FORBIDDEN");
  await waitFor("the store still works", async () => (await store.client()).stat("/secret.bin"));
});

test("dfs creds and dfs provision set up a server that dfs does not start, and sign workers later", async () => {
  const dir = await tempDir("creds");
  try {
    const creds = join(dir, "creds");
    const init = await runCli(["creds", "init", creds, "--workers", "a1"]);
    assert.is(init.code, 0, init.stderr);
    assert.match(init.stderr, /nats-server -js -c .*server\.conf/);
    const again = await runCli(["creds", "init", creds, "--workers", "a1"]);
    assert.is(again.stdout, "", "a second init keeps what is there");
    const server = await startNatsServer({ storeDir: join(dir, "nats"), config: join(creds, "server.conf") });
    try {
      const flags = ["--nats", server.url];
      const provision = await runCli([...flags, "--creds", join(creds, "admin.creds"), "provision"]);
      assert.is(provision.code, 0, provision.stderr);
      const asClient = await runCli([...flags, "--creds", join(creds, "client.creds"), "provision"]);
      assert.match(asClient.stderr, /^dfs: FORBIDDEN: /, "only the admin provisions");
      const add = await runCli(["creds", "add", "worker", "late", creds]);
      assert.is(add.code, 0, add.stderr);
      assert.match(add.stderr, /dfs provision --workers late/);
      const consumer = await runCli([...flags, "--creds", join(creds, "admin.creds"), "provision", "--workers", "late"]);
      assert.is(consumer.code, 0, consumer.stderr);
      // The late worker reads its own consumer with its new credentials.
      const nc = await connectNats({ servers: server.url, creds: add.stdout.trim(), name: "late", streams: true });
      const jsm = await jetstreamManager(nc);
      assert.is((await jsm.consumers.info("DFS_EVENTS", "worker-late")).config.filter_subject, "dfs.evt.assign.late");
      await nc.close();
      assert.match((await runCli(["creds", "add", "worker", creds])).stderr, /^dfs: BAD_REQUEST: /);
      assert.match((await runCli(["creds", "add", "worker", "x", join(dir, "nowhere")])).stderr, /^dfs: NOT_FOUND: no signing keys/);
    } finally {
      await server.stop();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
