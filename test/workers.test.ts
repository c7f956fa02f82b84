// Workers are real processes: killed, restarted, starved of their uploader, fed bad bytes.
import { createHash, randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as assert from "uvu/assert";
import type { DfsClient } from "../client/client.js";
import { catalogue } from "../streams/catalogue.js";
import { DfsError, ErrorCodes } from "../src/errors.js";
import { call, callBytes, serveBytes } from "../src/rpc.js";
import { TestStore, errorCode, keyedUpload, storeSuite, waitFor } from "./harness.js";

const cat = catalogue("dfs");
const PIECE = 64 * 1024;
const WORKER_TIMEOUT_MS = 2_000;
const test = storeSuite("workers", { workers: ["w1", "w2", "w3"], workerTimeoutMs: WORKER_TIMEOUT_MS });


const sha = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

async function putBytes(store: TestStore, client: DfsClient, remote: string, bytes: Buffer, replicas = 3) {
  const local = join(store.dir, remote.replaceAll("/", "_"));
  await writeFile(local, bytes);
  return client.put(local, remote, { replicas, pieceSize: PIECE });
}

/**
 * Start a killed worker again and let the master settle: if it noticed the silence it records
 * WorkerLost, then WorkerJoined on the next heartbeat; either way, later tests see three live workers.
 */
async function restart(store: TestStore, id: string): Promise<void> {
  await store.startWorker(id);
  await new Promise((r) => setTimeout(r, WORKER_TIMEOUT_MS + 500));
  await store.waitForLiveWorkers(3);
}

async function health(client: DfsClient, id: string) {
  return call<{ pieces: number; bytes: number }>(client.nc, cat.workerRpc(id, "health"), {});
}

test("a worker killed and restarted keeps every piece it stored", async ({ store }) => {
  const client = await store.client();
  const bytes = randomBytes(5 * PIECE + 99);
  await putBytes(store, client, "/keep.bin", bytes);
  const where = await client.locate("/keep.bin");
  const held = (await health(client, "w1")).pieces;
  await store.role(`worker ${"w1"}`).kill();
  await store.startWorker("w1");
  await waitFor("w1 back", () => health(client, "w1"));
  assert.is((await health(client, "w1")).pieces, held);
  for (const piece of where.pieces) {
    const frame = await callBytes(client.nc, cat.workerRpc("w1", "read"), { sha256: piece.sha256, offset: 0, length: piece.size });
    assert.is(sha(frame), piece.sha256, `piece ${piece.index} read back from w1`);
  }
});

test("an assignment made while a worker is down is done when it comes back", async ({ store }) => {
  const client = await store.client();
  await store.role(`worker ${"w3"}`).kill();
  const bytes = randomBytes(3 * PIECE);
  // The master still counts w3 live (it has not missed its heartbeats yet), so w3 gets pieces.
  const put = putBytes(store, client, "/while-down.bin", bytes, 3);
  await new Promise((r) => setTimeout(r, 700));
  const restarted = restart(store, "w3");
  const result = await put;
  assert.is(result.version, 1);
  // Under load, w3's inventory at its rejoin can be taken before its queued assignments are
  // stored, and then reports them missing: healing copies them to w3 again (a race not fixed
  // yet). Either way w3 ends up holding every piece.
  const where = await waitFor("w3 holds every piece", async () => {
    const located = await client.locate("/while-down.bin");
    return located.pieces.every((p) => p.workers.includes("w3")) && located;
  }, 30_000);
  assert.ok(where.pieces.every((p) => p.workers.includes("w3")), "w3 stored its pieces after the restart");
  await client.get("/while-down.bin", join(store.dir, "while-down.out"));
  assert.ok(Buffer.compare(await readFile(join(store.dir, "while-down.out")), bytes) === 0);
  await restarted;
});

test("get fails over to another replica when one worker is gone", async ({ store }) => {
  const client = await store.client();
  const bytes = randomBytes(6 * PIECE + 1);
  await putBytes(store, client, "/failover.bin", bytes, 2);
  const where = await client.locate("/failover.bin");
  const victim = where.pieces[0]!.workers[0]!; // the first replica tried for piece 0
  await store.role(`worker ${victim}`).kill();
  try {
    const result = await client.get("/failover.bin", join(store.dir, "failover.out"));
    assert.ok(result.failovers >= 1, "some piece came from its second replica");
    assert.ok(Buffer.compare(await readFile(join(store.dir, "failover.out")), bytes) === 0);
  } finally {
    await restart(store, victim);
  }
});

test("a put that stops making progress (a worker died for good) times out and is abandoned", async ({ store }) => {
  const client = await store.client();
  await store.role(`worker ${"w2"}`).kill();
  try {
    const local = join(store.dir, "stalled.bin");
    await writeFile(local, randomBytes(3 * PIECE));
    const code = await errorCode(() => client.put(local, "/stalled.bin", { replicas: 3, pieceSize: PIECE, idleTimeoutMs: 1_000 }));
    assert.is(code, "TIMEOUT");
    const report = await client.workers();
    assert.is(report.find((w) => w.workerId === "w2")!.status, undefined, "a dead worker does not answer");
    assert.ok(report.find((w) => w.workerId === "w1")!.status!.pieces > 0);
    const { state } = await store.replay();
    const file = [...state.files.values()].find((f) => f.path === "/stalled.bin")!;
    assert.is(file.versions.get(1)!.status, "abandoned");
    assert.is(await errorCode(() => client.stat("/stalled.bin")), "NOT_FOUND");
  } finally {
    await restart(store, "w2");
  }
});

test("bytes rotted on one replica are caught by their SHA-256 and read from another", async ({ store }) => {
  const client = await store.client();
  const bytes = randomBytes(4 * PIECE + 5);
  await putBytes(store, client, "/rotten.bin", bytes, 2);
  const piece = (await client.locate("/rotten.bin")).pieces[1]!;
  const victim = piece.workers[0]!; // the replica a reader tries first
  await store.rot(victim, piece.sha256);
  await restart(store, victim);
  const rotten = await callBytes(client.nc, cat.workerRpc(victim, "read"), { sha256: piece.sha256, offset: 0, length: piece.size });
  assert.is.not(sha(rotten), piece.sha256, "the replica really serves bad bytes");
  const result = await client.get("/rotten.bin", join(store.dir, "rotten.out"));
  assert.ok(result.failovers >= 1, "the bad replica was passed over");
  assert.ok(Buffer.compare(await readFile(join(store.dir, "rotten.out")), bytes) === 0, "the file reads back intact");
});

test("an upload whose client stops serving is abandoned and never listed", async ({ store }) => {
  const client = await store.client();
  const created = await call<{ fileId: string; version: number; seq: number }>(client.nc, cat.masterRpc("create"), {
    ...keyedUpload("nobodyserves"),
    uploader: client.uploader,
    path: "/ghost.bin",
    size: 10,
    sha256: "00".repeat(32),
    pieceSize: PIECE,
    replicas: 2,
    pieceHashes: new Uint8Array(32),
  });
  const abandoned = await waitFor("UploadAbandoned", async () => {
    const { state } = await store.replay();
    const v = state.files.get(created.fileId)?.versions.get(created.version);
    return v?.status === "abandoned" && v;
  });
  assert.match(abandoned.reason!, /UNAVAILABLE/);
  assert.is(await errorCode(() => client.stat("/ghost.bin")), "NOT_FOUND");
  assert.not.ok((await client.list()).some((f) => f.path === "/ghost.bin"));
});

test("an interrupted put is abandoned in the log at once, and its pieces dropped", async ({ store }) => {
  const client = await store.client();
  const local = join(store.dir, "interrupted.bin");
  // Many pieces, so that the abort lands long before the last of them is stored: a put whose
  // few pieces all land at once can commit before its abort, and is then rightly a success
  // (it did, in 2 of 2 full runs, with 40 pieces and idle workers).
  await writeFile(local, randomBytes(320 * PIECE));
  const interrupt = new AbortController();
  const put = client.put(local, "/interrupted.bin", {
    pieceSize: PIECE,
    // Interrupt as soon as the first replica lands: the upload is under way.
    onProgress: (p) => p.phase === "upload" && interrupt.abort(),
    signal: interrupt.signal,
  });
  assert.is(await errorCode(() => put), "UPLOAD_ABANDONED");
  const { state } = await store.replay();
  const file = [...state.files.values()].find((f) => f.path === "/interrupted.bin")!;
  const version = file.versions.get(1)!;
  assert.is(version.status, "abandoned");
  assert.match(version.reason!, /interrupted/);
  assert.is(await errorCode(() => client.stat("/interrupted.bin")), "NOT_FOUND");
  await waitFor("no piece of it is owed a drop", async () => (await store.replay()).state.dropsOwed.size === 0);
});

test("bytes that do not match the declared SHA-256 are refused and the version abandoned", async ({ store }) => {
  const client = await store.client();
  const served = serveBytes(client.nc, cat.pullAll(client.uploader, keyedUpload("liar").uploadId), async () => new Uint8Array(10).fill(7));
  try {
    const created = await call<{ fileId: string; version: number }>(client.nc, cat.masterRpc("create"), {
      ...keyedUpload("liar"),
      uploader: client.uploader,
      path: "/liar.bin",
      size: 10,
      sha256: "01".repeat(32), // its one piece's, which the bytes served do not have
      pieceSize: PIECE,
      replicas: 1,
      pieceHashes: new Uint8Array(32).fill(1),
    });
    const v = await waitFor("UploadAbandoned", async () => {
      const { state } = await store.replay();
      const version = state.files.get(created.fileId)?.versions.get(created.version);
      return version?.status === "abandoned" && version;
    });
    assert.match(v.reason!, /^CHECKSUM_MISMATCH: /);
    assert.is(await errorCode(() => client.stat("/liar.bin")), "NOT_FOUND");
  } finally {
    served.unsubscribe();
  }
});

test("the same bytes under two paths are stored once, and dropped only when neither needs them", async ({ store }) => {
  const client = await store.client();
  const bytes = randomBytes(2 * PIECE);
  const before = await Promise.all(["w1", "w2", "w3"].map((id) => health(client, id)));
  await putBytes(store, client, "/dedup/a", bytes);
  const once = await Promise.all(["w1", "w2", "w3"].map((id) => health(client, id)));
  await putBytes(store, client, "/dedup/b", bytes);
  const twice = await Promise.all(["w1", "w2", "w3"].map((id) => health(client, id)));
  assert.equal(twice.map((h) => h.pieces), once.map((h) => h.pieces), "the second copy added no pieces");
  assert.ok(once.reduce((n, h) => n + h.pieces, 0) - before.reduce((n, h) => n + h.pieces, 0) === 6, "2 pieces × 3 replicas");
  await client.remove("/dedup/a");
  await client.get("/dedup/b", join(store.dir, "dedup.out"));
  assert.ok(Buffer.compare(await readFile(join(store.dir, "dedup.out")), bytes) === 0, "b still reads after a is deleted");
  await client.remove("/dedup/b");
  await waitFor("pieces dropped on every worker", async () => {
    const now = await Promise.all(["w1", "w2", "w3"].map((id) => health(client, id)));
    return now.every((h, i) => h.pieces === before[i]!.pieces);
  });
});

test("an uploader that refuses pulls of many (a build before them) has its small pieces pulled one by one", async ({ store }) => {
  const client = await store.client();
  const { uploadId, uploadKey } = keyedUpload("old-uploader");
  const bytes = randomBytes(1000);
  const asked: string[] = [];
  // As an uploader of the build before answers: one range per pull, anything else BAD_REQUEST.
  const old = serveBytes(client.nc, cat.pullAll(client.uploader, uploadId), async (request) => {
    const { offset, length } = request as { offset?: unknown; length?: unknown };
    if (typeof offset !== "number" || typeof length !== "number") {
      asked.push("many");
      throw new DfsError(ErrorCodes.BAD_REQUEST, "bad pull request");
    }
    asked.push("one");
    return bytes.subarray(offset, offset + length);
  });
  try {
    const created = await call<{ status: string }>(client.nc, cat.masterRpc("create"), {
      uploadId,
      uploadKey,
      uploader: client.uploader,
      path: "/old-uploader",
      size: bytes.length,
      sha256: sha(bytes),
      pieceSize: PIECE,
      replicas: 2,
      pieceHashes: createHash("sha256").update(bytes).digest(),
      waitMs: 10_000,
    });
    assert.is(created.status, "committed");
    assert.equal([...asked].sort(), ["many", "many", "one", "one"], "each replica asked for many, then for one");
  } finally {
    old.unsubscribe();
  }
});

test.run();
