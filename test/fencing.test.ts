// Two masters race on many creates. The fence (expected last sequence) keeps one linear
// history: no path gets two file ids, no version number is used twice, no piece is placed twice.
import { createHash } from "node:crypto";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { catalogue } from "../streams/catalogue.js";
import { encode } from "../src/codec.js";
import { MAX_PIECES } from "../src/events.js";
import { call } from "../src/rpc.js";
import { stateDigest } from "../src/state.js";
import { TestStore, keyedUpload, waitFor } from "./harness.js";
import type { MasterState } from "../client/client.js";

const cat = catalogue("dfs");
const test = suite<{ store: TestStore }>("fencing", {} as { store: TestStore });
const WORKERS = ["f1", "f2", "f3", "f4"];

test.before(async (ctx) => {
  ctx.store = await TestStore.start("fencing");
  // Without the lease both masters decide at once: only the fence keeps one history.
  ctx.store.startMaster(60_000, ["--no-lease"]);
  ctx.store.startMaster(60_000, ["--no-lease"]);
});

test.after(async (ctx) => {
  await ctx.store?.stop();
});

test("two racing masters keep one history with no duplicate paths, versions or placements", async ({ store }) => {
  const client = await store.client();
  // Heartbeats from workers that exist only as names (each with its own credentials):
  // placement needs live workers, not bytes.
  const workers = await Promise.all(WORKERS.map(async (id) => ({ id, nc: await store.connect("worker", id) })));
  const beat = () => workers.forEach(({ id, nc }) => nc.publish(cat.heartbeat(id), encode({ workerId: id, pieces: 0, bytes: 0, at: Date.now() })));
  beat();
  const beating = setInterval(beat, 200);
  try {
    await waitFor("workers joined", async () => (await client.masterState()).workers.length === WORKERS.length);
    const pieceSize = 4096;
    const ROUNDS = 3;
    const PER_ROUND = 240;
    const create = (i: number) => {
      const pieces = 1 + (i % 3);
      return call<{ fileId: string; version: number }>(client.nc, cat.masterRpc("create"), {
        ...keyedUpload(`race${i}`),
        uploader: client.uploader,
        path: `/race/p${i % 12}`,
        size: pieceSize * pieces,
        // One piece: the file's SHA-256 is the piece's (all bytes i % 251, as pieceHashes says).
        sha256: pieces === 1 ? Buffer.alloc(32, i % 251).toString("hex") : createHash("sha256").update(String(i)).digest("hex"),
        pieceSize,
        replicas: 2,
        pieceHashes: new Uint8Array(32 * pieces).fill(i % 251),
      });
    };
    // Rounds of concurrent creates until the masters have really raced (an append fenced off);
    // one round nearly always does it.
    const replies: { fileId: string; version: number }[] = [];
    const masters = new Map<string, MasterState>();
    let rounds = 0;
    while (rounds < ROUNDS) {
      const start = rounds++ * PER_ROUND;
      replies.push(...(await Promise.all(Array.from({ length: PER_ROUND }, (_, i) => create(start + i)))));
      // Ask until both masters have answered (they share a queue group).
      masters.clear();
      await waitFor("both masters to answer", async () => {
        const s = await client.masterState();
        masters.set(s.masterId, s);
        return masters.size === 2;
      });
      if ([...masters.values()].some((m) => m.conflicts > 0)) break;
    }
    assert.ok([...masters.values()].some((m) => m.conflicts > 0), `the masters raced (a fenced-off append) within ${ROUNDS} rounds`);

    const { state } = await store.replay();
    const files = [...state.files.values()];
    assert.is(files.length, 12, "one file id per path");
    assert.is(new Set(files.map((f) => f.path)).size, 12);
    for (const file of files) {
      const versions = [...file.versions.values()].map((v) => v.version).sort((a, b) => a - b);
      const perPath = (rounds * PER_ROUND) / 12;
      assert.equal(versions, Array.from({ length: perPath }, (_, i) => i + 1), `${file.path} versions 1..${perPath} once each`);
      for (const v of file.versions.values()) {
        for (const piece of v.pieces) {
          const peers = piece.peers.map((p) => p.workerId);
          assert.is(peers.length, 2, `${file.path} v${v.version} piece ${piece.index} has exactly 2 peers`);
          assert.is(new Set(peers).size, 2, "on two different workers");
          assert.is(piece.peers.filter((p) => p.role === "major").length, 1, "one major");
        }
      }
    }
    // Each reply names the version the log gave it.
    for (const r of replies) assert.ok(state.files.get(r.fileId)?.versions.get(r.version), "reply matches the log");
    assert.is(new Set(replies.map((r) => `${r.fileId}/${r.version}`)).size, rounds * PER_ROUND, "no two creates got the same version");

    // Both masters' tables equal the replay of the log at their sequence.
    for (const m of masters.values()) {
      const replayed = await store.replay(m.lastSeq);
      assert.is(stateDigest(replayed.state), m.digest, `master ${m.masterId} agrees with replay at ${m.lastSeq}`);
    }
  } finally {
    clearInterval(beating);
  }
});

test("the largest create (MAX_PIECES pieces, three replicas) is planned and answered", async ({ store }) => {
  const client = await store.client();
  const pieceSize = 4096;
  const plan = await call<{ pieces: number; peers: { workerId: string; major: number[]; minor: number[] }[] }>(client.nc, cat.masterRpc("create"), {
    ...keyedUpload("largest"),
    uploader: client.uploader,
    path: "/largest",
    size: MAX_PIECES * pieceSize,
    sha256: "ab".repeat(32),
    pieceSize,
    replicas: 3,
    pieceHashes: new Uint8Array(32 * MAX_PIECES).fill(9),
  });
  assert.is(plan.pieces, MAX_PIECES);
  assert.is(plan.peers.reduce((n, p) => n + p.major.length, 0), MAX_PIECES, "one major per piece");
  assert.is(plan.peers.reduce((n, p) => n + p.minor.length, 0), 2 * MAX_PIECES, "two minors per piece");
  const where = await store.replay();
  const file = [...where.state.files.values()].find((f) => f.path === "/largest")!;
  assert.is(file.versions.get(1)!.pieces.length, MAX_PIECES);
});

test.run();
