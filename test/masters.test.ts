// Several masters: one leads (holds the lease) and decides, the others follow the log and
// answer reads; when the leader dies (kill -9), another takes over within a few seconds and
// a stream of puts goes on, every one committed and readable, in one history.
import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { stateDigest } from "../src/state.js";
import { TestStore, runCli, waitFor, type Role } from "./harness.js";

const test = suite<{ store: TestStore }>("masters", {} as { store: TestStore });

test.before(async (ctx) => {
  ctx.store = await TestStore.start("masters");
  ctx.store.startMaster(3_000);
  ctx.store.startMaster(3_000);
  for (const id of ["w1", "w2", "w3"]) await ctx.store.startWorker(id);
  await ctx.store.waitForLiveWorkers(3);
});

test.after(async (ctx) => {
  await ctx.store?.stop();
});

const leading = (role: Role) => role.output().split("\n").filter((l) => /leading \(master/.test(l)).length;
const masters = (store: TestStore) => store.roles.filter((r) => r.name === "master" && r.process.exitCode === null && r.process.signalCode === null);

test("one master leads; when it is killed another takes over, and puts go on", async ({ store }) => {
  await waitFor("a leader", () => masters(store).some((m) => leading(m) > 0), 10_000);
  const [leader, ...followers] = [...masters(store)].sort((a, b) => leading(b) - leading(a));
  assert.is(leading(leader!), 1);
  assert.ok(followers.every((f) => leading(f) === 0), "only one leads");

  const client = await store.client();
  const written = new Map<string, Buffer>();
  let longest = 0;
  let stop = false;
  const putting = (async () => {
    for (let i = 0; !stop && i < 200; i++) {
      const bytes = randomBytes(10_000 + i);
      const local = join(store.dir, `p${i}`);
      await writeFile(local, bytes);
      const started = Date.now();
      await client.put(local, `/stream/p${i}`, { replicas: 2, pieceSize: 4096 });
      longest = Math.max(longest, Date.now() - started);
      written.set(`/stream/p${i}`, bytes);
    }
  })();
  await waitFor("a few puts", () => written.size >= 5, 20_000);
  const killedAt = Date.now();
  await leader!.kill();
  await waitFor("a follower to take over", () => followers.some((f) => leading(f) > 0), 15_000, 20);
  const takeover = Date.now() - killedAt;
  const before = written.size;
  await waitFor("puts after the takeover", () => written.size >= before + 5, 30_000);
  stop = true;
  await putting;
  process.stdout.write(`\n  takeover ${takeover} ms; longest put ${longest} ms over ${written.size} puts\n`);
  assert.ok(takeover < 10_000, `takeover took ${takeover} ms`);

  for (const [remote, bytes] of written) {
    const out = join(store.dir, "back");
    await client.get(remote, out);
    assert.ok(Buffer.compare(await readFile(out), bytes) === 0, `${remote} reads back`);
  }
  // One history: the replay agrees with the new leader, and nothing was rejected.
  const check = await runCli([...store.flags, "replay", "--check"]);
  assert.is(check.code, 0, check.stderr);
  const { state } = await store.replay();
  assert.is(state.rejected.count, 0);
  const live = await client.masterState();
  assert.is(stateDigest((await store.replay(live.lastSeq)).state), live.digest);
  // The killed master comes back as a follower.
  store.startMaster(3_000);
  await waitFor("the new master to answer", async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) seen.add((await client.masterState()).masterId);
    return seen.size === 2;
  }, 20_000, 200);
  const restarted = masters(store).at(-1)!;
  assert.is(leading(restarted), 0, "it follows");
});

test("a read from a new client right after a put finds the file, even on a follower that lags", async ({ store }) => {
  await waitFor("two masters", () => masters(store).length === 2, 10_000);
  const follower = masters(store).at(-1)!;
  assert.is(leading(follower), 0, "the restarted master follows");
  const local = join(store.dir, "fresh");
  await writeFile(local, randomBytes(5_000));
  // The follower misses the put's events while it is stopped, and meets the reads as it wakes.
  follower.process.kill("SIGSTOP");
  try {
    const put = await runCli([...store.flags, "put", local, "/fresh", "--replicas", "1"]);
    assert.is(put.code, 0, put.stderr);
    const clients = await Promise.all(Array.from({ length: 8 }, () => store.client()));
    const reads = clients.map((c) => c.stat("/fresh").then((info) => info.path, (err: { code?: string }) => err.code ?? "uncoded"));
    await new Promise((r) => setTimeout(r, 500));
    follower.process.kill("SIGCONT");
    assert.equal(await Promise.all(reads), Array(8).fill("/fresh"), "every new client found it");
  } finally {
    follower.process.kill("SIGCONT");
  }
});

test("a put from stdin goes on across a leader killed mid-stream, its pieces before and after in one version", async ({ store }) => {
  await waitFor("a leader", () => masters(store).some((m) => leading(m) > 0), 20_000);
  const leader = masters(store).find((m) => leading(m) > 0)!;
  const client = await store.client();
  const input = new PassThrough();
  const before = randomBytes(5 * 4096);
  const after = randomBytes(5 * 4096 + 17);
  const put = client.putStream(input, "/stdin/across", { replicas: 2, pieceSize: 4096 });
  put.catch(() => undefined);
  input.write(before);
  const stored = async () => {
    const { state } = await store.replay();
    const v = state.files.get(state.paths.get("/stdin/across") ?? "")?.versions.get(1);
    return v?.pieces.filter((p) => p?.stored.length === 2).length ?? 0;
  };
  await waitFor("the first pieces stored", async () => (await stored()) === 5, 20_000, 100);
  await leader.kill();
  input.end(after);
  const result = await put;
  assert.is(result.size, before.length + after.length);
  const out = join(store.dir, "across");
  await client.get("/stdin/across", out);
  assert.ok(Buffer.compare(await readFile(out), Buffer.concat([before, after])) === 0, "reads back byte-exact");
  const check = await runCli([...store.flags, "replay", "--check"]);
  assert.is(check.code, 0, check.stderr);
  assert.is((await store.replay()).state.rejected.count, 0);
  store.startMaster(3_000);
});

test("a put given up while no master runs is abandoned by the next master, never committed", async ({ store }) => {
  const client = await store.client();
  const workers = ["w1", "w2", "w3"].map((id) => store.role(`worker ${id}`).process);
  // The upload is created, then its workers pause and every master dies before any commit.
  for (const w of workers) w.kill("SIGSTOP");
  const local = join(store.dir, "orphan");
  await writeFile(local, randomBytes(20_000));
  const put = client.put(local, "/orphan", { replicas: 2, pieceSize: 4096, idleTimeoutMs: 3_000 }).then(
    () => "committed",
    (err: { code?: string }) => err.code ?? "uncoded",
  );
  const { store: s } = { store };
  await waitFor("the version created", async () => (await s.replay()).state.paths.has("/orphan"), 10_000, 100);
  for (const m of masters(store)) await m.kill();
  for (const w of workers) w.kill("SIGCONT"); // they store the pieces and confirm, into the queue
  assert.is(await put, "TIMEOUT", "the put gives up");
  store.startMaster(3_000);
  await waitFor("the next master to settle it", async () => {
    const { state } = await store.replay();
    const v = state.files.get(state.paths.get("/orphan")!)?.versions.get(1);
    return v && v.status !== "pending" && v;
  }, 20_000, 200);
  const { state } = await store.replay();
  assert.is(state.files.get(state.paths.get("/orphan")!)!.versions.get(1)!.status, "abandoned", "abandoned, as the put said");
  assert.not.ok((await client.list("/")).some((f) => f.path === "/orphan"));
});

test.run();
