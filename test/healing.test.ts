// The store heals itself, against real processes: a worker killed (kill -9) has its pieces
// copied elsewhere, a worker that comes back has the spare copies dropped, a worker whose
// disk was wiped gets everything back, a rotted copy is repaired, and a put whose worker dies
// early still commits. Each test checks the bytes read back and the facts in the log.
import { createHash, randomBytes } from "node:crypto";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as assert from "uvu/assert";
import type { DfsClient } from "../client/client.js";
import { liveHolders, wantedReplicas } from "../src/content.js";
import { call } from "../src/rpc.js";
import type { State } from "../src/state.js";
import { runCli, storeSuite, waitFor, type TestStore } from "./harness.js";

const PIECE = 64 * 1024;
const WORKERS = ["w1", "w2", "w3", "w4"];
const test = storeSuite("healing", { workers: WORKERS, workerTimeoutMs: 1_500 });

const files = new Map<string, Buffer>();

async function put(store: TestStore, client: DfsClient, remote: string, size: number, replicas = 2): Promise<void> {
  const bytes = randomBytes(size);
  const local = join(store.dir, remote.replaceAll("/", "_"));
  await writeFile(local, bytes);
  await client.put(local, remote, { replicas, pieceSize: PIECE });
  files.set(remote, bytes);
}

async function readsBack(store: TestStore, client: DfsClient): Promise<void> {
  for (const [remote, bytes] of files) {
    const out = join(store.dir, "back");
    await client.get(remote, out);
    assert.ok(Buffer.compare(await readFile(out), bytes) === 0, `${remote} reads back byte-exact`);
  }
}

/** Every committed piece has exactly its wanted copies on live workers, and nothing is left to heal. */
function whole(state: State): boolean {
  for (const c of state.content.values()) {
    const wanted = wantedReplicas(c);
    if (wanted > 0 && liveHolders(state, c).length !== wanted) return false;
  }
  return state.unhealthy.size === 0 && state.copyingTo.size === 0;
}

async function waitWhole(store: TestStore, what: string): Promise<State> {
  let state: State | undefined;
  await waitFor(what, async () => whole((state = (await store.replay()).state)), 30_000, 200);
  return state!;
}

/** Every worker running, answering and live in the log again, whatever an earlier test left behind. */
async function everyoneUp(store: TestStore): Promise<void> {
  const client = await store.client();
  for (const id of WORKERS) {
    const role = store.role(`worker ${id}`);
    if (role.process.exitCode !== null || role.process.signalCode !== null) await store.startWorker(id);
    await waitFor(`${id} answers`, () => health(client, id), 15_000, 100);
  }
  await store.waitForLiveWorkers(WORKERS.length);
}

async function lost(store: TestStore, id: string): Promise<void> {
  await waitFor(`${id} recorded lost`, async () => !(await store.replay()).state.workers.get(id)!.live, 15_000, 100);
}

async function health(client: DfsClient, id: string) {
  return call<{ pieces: number; bytes: number }>(client.nc, client.cat.workerRpc(id, "health"), {}, 2_000);
}

test("a killed worker's pieces are copied to the others; a second loss then costs nothing", async ({ store }) => {
  const client = await store.client();
  await put(store, client, "/a.bin", 6 * PIECE + 5);
  await put(store, client, "/b.bin", 9 * PIECE);
  const onW1 = [...(await store.replay()).state.content.values()].filter((c) => c.holders.has("w1")).map((c) => c.sha256);
  assert.ok(onW1.length > 0, "w1 holds pieces");
  await store.role("worker w1").kill();
  await lost(store, "w1");
  const state = await waitWhole(store, "every piece back to 2 live copies");
  for (const sha256 of onW1) {
    const c = state.content.get(sha256)!;
    assert.ok(c.holders.has("w1"), "a lost worker's copies still count, should it come back");
    assert.is(liveHolders(state, c).length, 2);
  }
  // Another worker dies: with two copies of everything on three live workers, nothing is lost.
  await store.role("worker w2").kill();
  await readsBack(store, client);
});

test("a worker that comes back is counted again, and the copies beyond what is wanted are dropped", async ({ store }) => {
  const client = await store.client();
  await everyoneUp(store);
  await waitWhole(store, "the store settles with every worker back");
  const state = (await store.replay()).state;
  // No piece keeps more copies than its versions want.
  for (const c of state.content.values()) if (wantedReplicas(c) > 0) assert.is(liveHolders(state, c).length, wantedReplicas(c));
  let held = 0;
  for (const id of WORKERS) held += (await health(client, id)).pieces;
  const wanted = [...state.content.values()].reduce((n, c) => n + wantedReplicas(c), 0);
  await waitFor("the workers' stores hold just the wanted copies", async () => {
    let now = 0;
    for (const id of WORKERS) now += (await health(client, id)).pieces;
    return now === wanted;
  }, 20_000, 200);
  assert.ok(held >= wanted);
  await readsBack(store, client);
});

test("a worker whose disk was wiped while it was down gets every piece back", async ({ store }) => {
  const client = await store.client();
  await everyoneUp(store);
  const before = (await health(client, "w3")).pieces;
  assert.ok(before > 0);
  await store.role("worker w3").kill();
  await rm(join(store.dir, "workers", "w3"), { recursive: true, force: true });
  await everyoneUp(store);
  // Restarted within the loss timeout or not, its empty store is noticed and healed.
  await waitFor("w3's copies lost in the log", async () => ![...(await store.replay()).state.content.values()].some((c) => c.holders.has("w3") && !c.copying.has("w3")) || (await health(client, "w3")).pieces > 0, 20_000, 200);
  const state = await waitWhole(store, "everything re-made after the wipe");
  assert.ok(state.rejected.count === 0, "every healing decision folds");
  // What the log says w3 holds is what its store holds.
  const onW3 = [...state.content.values()].filter((c) => c.holders.has("w3")).length;
  assert.is((await health(client, "w3")).pieces, onW3);
  await readsBack(store, client);
});

/** Flip a byte of one piece inside a worker's LevelDB while it is stopped; start it again (with `args`). */
async function rot(store: TestStore, victim: string, sha256: string, args: string[] = []): Promise<void> {
  await store.rot(victim, sha256);
  await store.startWorker(victim, args);
  await everyoneUp(store);
}

test("a rotted copy is found by a read's complaint, dropped by its worker, and made again", async ({ store }) => {
  const client = await store.client();
  await everyoneUp(store);
  await waitWhole(store, "the store settles");
  const where = await client.locate("/a.bin");
  const piece = where.pieces[1]!;
  const victim = piece.workers[0]!;
  await rot(store, victim, piece.sha256);
  // A reader that got bad bytes asks the worker to check: it finds the rot, drops, reports.
  const verdict = await call<{ held: boolean; ok: boolean }>(client.nc, client.cat.workerRpc(victim, "verify"), { sha256: piece.sha256 });
  assert.equal(verdict, { held: true, ok: false });
  const state = await waitWhole(store, "the rotted piece repaired");
  assert.ok(liveHolders(state, state.content.get(piece.sha256)!).length === 2);
  const lost = (await store.replay()).state;
  assert.ok(lost.rejected.count === 0);
  await readsBack(store, client);
});

test("dfs scrub finds a rotted copy, waits for its repair, and exits 0; dfs status shows it all", async ({ store }) => {
  const client = await store.client();
  await everyoneUp(store);
  await waitWhole(store, "the store settles");
  const piece = (await client.locate("/b.bin")).pieces[3]!;
  const victim = piece.workers[0]!;
  await rot(store, victim, piece.sha256);
  const scrubbed = await runCli([...store.flags, "scrub", "--json"]);
  assert.is(scrubbed.code, 0, scrubbed.stderr);
  const result = JSON.parse(scrubbed.stdout) as { checked: number; bad: { workerId: string; sha256: string }[]; repaired: number; unrepaired: unknown[] };
  assert.equal(result.bad, [{ workerId: victim, sha256: piece.sha256 }]);
  assert.is(result.repaired, 1);
  assert.ok(result.checked >= 2 * (await store.replay()).state.content.size - 2, "every copy was checked");
  const status = await runCli([...store.flags, "status", "--json"]);
  const json = JSON.parse(status.stdout) as { pieces: { total: number; healthy: number; unavailable: number } };
  assert.is(json.pieces.unavailable, 0);
  assert.is(json.pieces.healthy, json.pieces.total);
  const human = await runCli([...store.flags, "status"]);
  assert.match(human.stdout, /pieces\s+\d+ \(\d+ healthy\)/);
  assert.match(human.stdout, /w1\s+live/);
  // With a worker killed and every piece wanted on all four, copies cannot be placed: status says so.
  await put(store, client, "/everywhere.bin", 2 * PIECE, 4);
  await store.role("worker w2").kill();
  await lost(store, "w2");
  const down = JSON.parse((await runCli([...store.flags, "status", "--json"])).stdout) as { pieces: { unplaceable: number }; workers: { workerId: string; live: boolean }[] };
  assert.is(down.pieces.unplaceable, 2);
  assert.equal(down.workers.find((w) => w.workerId === "w2")?.live, false);
  await everyoneUp(store);
  await waitWhole(store, "whole again with w2 back");
});

test("the background scrub finds rot by itself", async ({ store }) => {
  const client = await store.client();
  await everyoneUp(store);
  const piece = (await client.locate("/a.bin")).pieces[2]!;
  const victim = piece.workers[0]!;
  await rot(store, victim, piece.sha256, ["--scrub-rate", "64MiB"]);
  await waitFor("the scrub to find the rot", () => /failed its SHA-256 \(a scrub found it bad\): dropped/.test(store.role(`worker ${victim}`).output()), 20_000, 200);
  await waitFor("the rot recorded", async () => !(await store.replay()).state.content.get(piece.sha256)!.holders.has(victim) || (await health(client, victim)).pieces > 0, 10_000, 200);
  await waitWhole(store, "repaired");
  await readsBack(store, client);
});

test("a put whose worker is killed early still commits, on the workers left, and reads back", async ({ store }) => {
  const client = await store.client();
  await everyoneUp(store);
  const size = 48 * PIECE;
  const bytes = randomBytes(size);
  const local = join(store.dir, "survivor.bin");
  await writeFile(local, bytes);
  // One of its workers is killed as soon as the upload starts.
  const put = client.put(local, "/survivor.bin", { replicas: 2, pieceSize: PIECE });
  await new Promise((r) => setTimeout(r, 150));
  await store.role("worker w4").kill();
  const started = Date.now();
  const result = await put;
  assert.is(result.size, size);
  assert.ok(Date.now() - started < 20_000, "no idle timeout waited out");
  files.set("/survivor.bin", bytes);
  await readsBack(store, client);
  const sha = createHash("sha256").update(bytes).digest("hex");
  assert.is(result.sha256, sha);
  await everyoneUp(store);
});

test.run();
