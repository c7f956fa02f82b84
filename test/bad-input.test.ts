// Garbage on every subject a process listens on gets a coded error, and the process keeps serving.
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import * as assert from "uvu/assert";
import { catalogue } from "../streams/catalogue.js";
import { decode, encode } from "../src/codec.js";
import type { CreateAnswer } from "../src/protocol.js";
import { call } from "../src/rpc.js";
import { stateDigest } from "../src/state.js";
import { TestStore, errorCode, keyedUpload, runCli, storeSuite, waitFor } from "./harness.js";

const cat = catalogue("dfs");
const test = storeSuite("bad input", { workers: ["w1", "w2"] });


const hash = "ab".repeat(32);
/** One piece, whose SHA-256 (all zero bytes) is the whole file's. */
const goodCreate = { ...keyedUpload("up1"), uploader: "client", path: "/x", size: 10, sha256: "00".repeat(32), pieceSize: 4096, replicas: 1, pieceHashes: new Uint8Array(32) };

async function rawReply(store: TestStore, subject: string, payload: Uint8Array): Promise<{ ok: boolean; code?: string; message?: string }> {
  const client = await store.client();
  const msg = await client.nc.request(subject, payload, { timeout: 5_000 });
  return decode(msg.data) as { ok: boolean; code?: string; message?: string };
}

test("undecodable bytes and non-map requests get BAD_REQUEST from every master RPC", async ({ store }) => {
  for (const op of ["create", "createMany", "abort", "locate", "list", "stat", "delete", "state"] as const) {
    const garbage = await rawReply(store, cat.masterRpc(op), new Uint8Array([0xff, 0xfe, 0x00, 0x13]));
    assert.is(garbage.ok, false, op);
    assert.is(garbage.code, "BAD_REQUEST", op);
    const notAMap = await rawReply(store, cat.masterRpc(op), encode("hello"));
    assert.is(notAMap.code, "BAD_REQUEST", `${op} with a string`);
  }
});

test("missing fields, bad paths and negative sizes get stable codes", async ({ store }) => {
  const client = await store.client();
  const create = (extra: object) => call(client.nc, cat.masterRpc("create"), { ...goodCreate, ...extra });
  assert.is(await errorCode(() => call(client.nc, cat.masterRpc("create"), { path: "/x" })), "BAD_REQUEST");
  assert.is(await errorCode(() => create({ size: -1 })), "BAD_REQUEST");
  assert.is(await errorCode(() => create({ pieceSize: 100 })), "BAD_REQUEST");
  assert.is(await errorCode(() => create({ replicas: 0 })), "BAD_REQUEST");
  assert.is(await errorCode(() => create({ pieceHashes: new Uint8Array(33) })), "BAD_REQUEST");
  assert.is(await errorCode(() => create({ sha256: "nothex" })), "BAD_REQUEST");
  // A file of one piece, or of none, whose declared SHA-256 is not what its pieces say: it could never be read.
  assert.is(await errorCode(() => create({ sha256: hash })), "CHECKSUM_MISMATCH");
  assert.is(await errorCode(() => create({ size: 0, pieceHashes: new Uint8Array(0), sha256: hash })), "CHECKSUM_MISMATCH");
  assert.is(await errorCode(() => create({ uploadId: "has.dot" })), "BAD_REQUEST");
  for (const path of ["", "/", "a//b", "/a/../b", "./a", "a/", "a\u0000b", "a\nb"]) {
    assert.is(await errorCode(() => create({ path, ...keyedUpload("u" + path.length) })), "BAD_PATH", JSON.stringify(path));
  }
  assert.is(await errorCode(() => client.stat("../etc")), "BAD_PATH");
  assert.is(await errorCode(() => client.stat("/no/such/file")), "NOT_FOUND");
  assert.is(await errorCode(() => client.locate("/no/such/file")), "NOT_FOUND");
  assert.is(await errorCode(() => client.remove("/no/such/file")), "NOT_FOUND");
  assert.is(await errorCode(() => call(client.nc, cat.masterRpc("locate"), { path: "/x", version: -2 })), "BAD_REQUEST");
  assert.is(await errorCode(() => create({ replicas: 3 })), "NOT_ENOUGH_WORKERS");
});

test("createMany: a bad envelope is BAD_REQUEST, and each create in it is answered on its own, as create answers it", async ({ store }) => {
  const client = await store.client();
  const many = (creates: unknown) => call<{ answers: CreateAnswer<{ status: string }>[] }>(client.nc, cat.masterRpc("createMany"), { creates });
  assert.is(await errorCode(() => many("not a list")), "BAD_REQUEST");
  assert.is(await errorCode(() => many([])), "BAD_REQUEST");
  assert.is(await errorCode(() => many(Array.from({ length: 65 }, () => goodCreate))), "BAD_REQUEST", "more than 64 creates");
  assert.is(await errorCode(() => many([{ ...goodCreate, pieceHashes: new Uint8Array(32 * 257) }])), "BAD_REQUEST", "more than 256 pieces in all");
  const empty = { uploader: client.uploader, size: 0, sha256: createHash("sha256").digest("hex"), pieceSize: 4096, replicas: 1, pieceHashes: new Uint8Array(0), waitMs: 5_000 };
  // One piece nobody serves: still pending when its wait is over.
  const unserved = { ...keyedUpload("many-unserved"), ...empty, path: "/many/unserved", size: 10, sha256: "00".repeat(32), pieceHashes: new Uint8Array(32), waitMs: 200 };
  const { answers } = await many([
    { ...keyedUpload("many-a"), ...empty, path: "/many/a" },
    { ...keyedUpload("many-b"), ...empty, path: "a//b" },
    { path: "/many/c" },
    { ...unserved, ...keyedUpload("many-d"), path: "/many/d", replicas: 3 },
    { ...keyedUpload("many-e"), ...empty, path: "/many/e", sha256: hash },
    unserved,
    { ...keyedUpload("many-f"), ...empty, path: "/many/f" },
  ]);
  assert.equal(
    answers.map((a) => (a.ok ? a.result.status : a.code)),
    ["committed", "BAD_PATH", "BAD_REQUEST", "NOT_ENOUGH_WORKERS", "CHECKSUM_MISMATCH", "pending", "committed"],
  );
  assert.equal((await client.list("/many")).map((f) => f.path), ["/many/a", "/many/f"], "nothing pending is listed");
  await call(client.nc, cat.masterRpc("abort"), { uploadKey: unserved.uploadKey, reason: "test over" });
});

test("garbage to workers, heartbeats, confirmations and event subjects does not stop anyone", async ({ store }) => {
  const client = await store.client();
  const read = await client.nc.request(cat.workerRpc("w1", "read"), new Uint8Array([1, 2, 3]), { timeout: 5_000 });
  assert.is(read.headers?.get("Dfs-Error"), "BAD_REQUEST");
  const missing = await client.nc.request(cat.workerRpc("w1", "read"), encode({ sha256: hash, offset: 0, length: 10 }), { timeout: 5_000 });
  assert.is(missing.headers?.get("Dfs-Error"), "NOT_FOUND");
  // Each kind of garbage from the one role allowed on that subject: workers send heartbeats
  // and confirmations; only a (buggy) master could append junk to the log.
  const w1 = await store.connect("worker", "w1");
  const bogus = await store.connect("worker", "bogus");
  const master = jetstream(await store.connect("master", undefined, { streams: true }));
  w1.publish(cat.heartbeat("w1"), new Uint8Array([0xc1]));
  bogus.publish(cat.heartbeat("bogus"), encode({ workerId: 12 }));
  await jetstream(await store.connect("worker", "w1", { streams: true })).publish(cat.confirm("w1"), new Uint8Array([0xc1, 0x00]));
  await jetstream(await store.connect("worker", "w2", { streams: true })).publish(
    cat.confirm("w2"),
    encode({ workerId: "w2", fileId: "nope", version: 1, piece: 0, sha256: hash, ok: true }),
  );
  await master.publish(cat.fileEvents("junk"), encode({ type: "NotAnEvent", at: 1 }));
  await master.publish(cat.assignEvents("w1"), new Uint8Array([0xff]));
  // Everyone still serves, and the master folded past the junk.
  const local = join(store.dir, "after-garbage");
  await writeFile(local, "still working\n");
  const put = await client.put(local, "/after-garbage", { replicas: 2 });
  assert.is(put.version, 1);
  const state = await client.masterState();
  const replayed = await store.replay(state.lastSeq);
  assert.is(replayed.state.rejected.count, 2, "the two junk events are rejected by replay");
  assert.is(stateDigest(replayed.state), state.digest);
});

test("garbage to an uploader's pull subject gets BAD_REQUEST, and the put still completes", async ({ store }) => {
  const client = await store.client();
  // Only a worker may send pulls; a master's rights overhear the create (outside the masters'
  // queue group) to learn the upload id.
  const spy = await store.connect("worker", "w1");
  const listener = await store.connect("master");
  const answers: (string | undefined)[] = [];
  let many: { frames: (Uint8Array | { code: string })[] } | undefined;
  const overheard = listener.subscribe(cat.masterRpc("create"), {
    callback: (_err, msg) => {
      const { uploadId, uploader } = decode(msg.data) as { uploadId: string; uploader: string };
      const garbage = [
        [cat.pull(uploader, uploadId, 0), new Uint8Array([0xff, 0x00])],
        [cat.pull(uploader, uploadId, 0), encode({ offset: -1, length: 10 })],
        [cat.pull(uploader, uploadId, 0), encode({ offset: 0, length: 50_000_000 })],
        [cat.pull(uploader, uploadId, 999), encode({ offset: 0, length: 10 })],
        [cat.pull(uploader, uploadId, 0), encode({ frames: "all of them" })],
        [cat.pull(uploader, uploadId, 0), encode({ frames: Array.from({ length: 33 }, () => ({ uploadId, piece: 0, offset: 0, length: 1 })) })],
      ] as const;
      // All at once, while the upload has barely begun.
      for (const [subject, payload] of garbage) {
        void spy.request(subject, payload, { timeout: 5_000 }).then((reply) => answers.push(reply.headers?.get("Dfs-Error")));
      }
      // A pull of many: each frame answered on its own, an upload served elsewhere NOT_FOUND, a bad range BAD_REQUEST.
      const frames = [
        { uploadId, piece: 1, offset: 0, length: 4096 },
        { uploadId: "served-elsewhere", piece: 0, offset: 0, length: 10 },
        { uploadId, piece: 999, offset: 0, length: 10 },
      ];
      void spy.request(cat.pull(uploader, uploadId, 1), encode({ frames }), { timeout: 5_000 }).then((reply) => (many = decode(reply.data) as typeof many));
    },
  });
  await listener.flush(); // subscribed at the server before the create is sent
  try {
    const local = join(store.dir, "pulled");
    await writeFile(local, randomBytes(64 * 4096));
    const put = await client.put(local, "/pulled", { replicas: 2, pieceSize: 4096 });
    assert.is(put.version, 1);
    await waitFor("six answers and the pull of many's", () => answers.length === 6 && many !== undefined, 5_000);
    assert.equal(answers, Array(6).fill("BAD_REQUEST"));
    const [bytes, elsewhere, outside] = many!.frames;
    assert.equal(bytes, (await readFile(local)).subarray(4096, 8192), "piece 1's bytes");
    assert.equal([(elsewhere as { code: string }).code, (outside as { code: string }).code], ["NOT_FOUND", "BAD_REQUEST"]);
  } finally {
    overheard.unsubscribe();
  }
});

test("garbage on one subject is logged once a while, not once a message: nobody floods the master's log", async ({ store }) => {
  const w2 = await store.connect("worker", "w2");
  for (let i = 0; i < 50; i++) w2.publish(cat.heartbeat("w2"), encode({ workerId: "not-w2", pieces: 0, bytes: 0, at: 1 }));
  await w2.flush();
  await waitFor("the master to see them", () => store.role("master").output().includes("ignored a heartbeat on dfs.hb.w2"), 5_000);
  await new Promise((r) => setTimeout(r, 300));
  const lines = store.role("master").output().split("\n").filter((l) => l.includes("ignored a heartbeat on dfs.hb.w2"));
  assert.is(lines.length, 1, lines.join("\n"));
});

test("an upload whose bytes never come holds up no other upload", async ({ store }) => {
  const client = await store.client();
  // A client creates a version of many pieces and answers none of the pulls (it subscribes,
  // so workers wait for each frame's timeout rather than failing at once).
  const { uploadId, uploadKey } = keyedUpload("never-served");
  const silent = client.nc.subscribe(cat.pullAll(client.uploader, uploadId), { callback: () => undefined });
  try {
    const pieces = 24;
    await call(client.nc, cat.masterRpc("create"), {
      uploadId,
      uploadKey,
      uploader: client.uploader,
      path: "/never",
      size: pieces * 4096,
      sha256: "ab".repeat(32),
      pieceSize: 4096,
      replicas: 2,
      // Distinct (made-up) hashes, so each piece takes a slot of its own on the workers.
      pieceHashes: Uint8Array.from({ length: 32 * pieces }, (_, i) => (i * 7 + Math.floor(i / 32)) & 255),
    });
    await new Promise((r) => setTimeout(r, 500));
    // Meanwhile a real put, on the same workers, goes through.
    const local = join(store.dir, "meanwhile");
    await writeFile(local, randomBytes(8 * 4096));
    const put = await client.put(local, "/meanwhile", { replicas: 2, pieceSize: 4096, idleTimeoutMs: 20_000 });
    assert.is(put.size, 8 * 4096);
  } finally {
    silent.unsubscribe();
    await call(client.nc, cat.masterRpc("abort"), { uploadKey, reason: "test over" }).catch(() => undefined);
  }
});

test("the CLI reports failures on one line with a documented exit status", async ({ store }) => {
  const missingLocal = await runCli([...store.flags, "put", join(store.dir, "does-not-exist"), "/x"]);
  assert.is(missingLocal.code, 1);
  assert.match(missingLocal.stderr, /^dfs: LOCAL_IO: /);
  // A named pipe is no file to put: refused at once, never waited on for a writer.
  const fifo = join(store.dir, "a-pipe");
  execFileSync("mkfifo", [fifo]);
  const pipe = await runCli([...store.flags, "put", fifo, "/pipe"]);
  assert.is(pipe.code, 1);
  assert.match(pipe.stderr, /^dfs: LOCAL_IO: .*a-pipe is not a regular file\n$/);
  const directory = await runCli([...store.flags, "put", store.dir, "/dir"]);
  assert.is(directory.code, 2, "a directory without -r is a usage error");
  assert.match(directory.stderr, /^dfs: BAD_REQUEST: .* is a directory: put it with -r/);
  const badPath = await runCli([...store.flags, "put", join(store.dir, "after-garbage"), "a//b"]);
  assert.is(badPath.code, 2);
  assert.match(badPath.stderr, /^dfs: BAD_PATH: /);
  const usage = await runCli([...store.flags, "put"]);
  assert.is(usage.code, 2);
  const tooMany = await runCli([...store.flags, "put", join(store.dir, "after-garbage"), "/y", "--replicas", "5"]);
  assert.is(tooMany.code, 1);
  assert.match(tooMany.stderr, /^dfs: NOT_ENOUGH_WORKERS: 5 replicas asked for, but 2 workers are live/);
  const noServer = await runCli(["--nats", "nats://127.0.0.1:1", "ls"]);
  assert.is(noServer.code, 1);
  assert.match(noServer.stderr, /^dfs: UNAVAILABLE: cannot reach NATS/);
  assert.is(noServer.stderr.trim().split("\n").length, 1);
});

test.run();
