// Puts and gets of real files through a real nats-server, master and three workers.
import { createHash, randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import * as assert from "uvu/assert";
import { DEFAULT_PIECE_SIZE } from "../client/client.js";
import { PIECES_PER_EVENT } from "../src/events.js";
import { errorCode, runCli, storeSuite } from "./harness.js";

const PIECE = 4096;
const test = storeSuite("roundtrip", { workers: ["w1", "w2", "w3"] });


const sizes: [string, number][] = [
  ["0 bytes", 0],
  ["one byte", 1],
  ["one byte less than a piece", PIECE - 1],
  ["exactly one piece", PIECE],
  ["one byte more than a piece", PIECE + 1],
  ["hundreds of pieces", 300 * PIECE + 7],
];

test("minors pull a piece bigger than a frame from its major: the uploader serves each byte about once", async ({ store }) => {
  const client = await store.client();
  const size = 6 * 1024 * 1024 + 5;
  const bytes = randomBytes(size);
  const local = join(store.dir, "pipelined");
  await writeFile(local, bytes);
  const put = await client.put(local, "/rt/pipelined.bin", { replicas: 3, pieceSize: 2 * 1024 * 1024 });
  // A minor that finds its major slow may still fall back to the uploader.
  assert.ok(put.servedBytes >= size && put.servedBytes <= size * 1.5, `served ${put.servedBytes} of ${size} bytes`);
  const got = await client.get(put.path, join(store.dir, "pipelined-back"));
  assert.is(got.sha256, createHash("sha256").update(bytes).digest("hex"));
});

for (const replicas of [1, 3]) {
  for (const [name, size] of sizes) {
    test(`put then get round-trips ${name} with ${replicas} replica(s)`, async ({ store }) => {
      const client = await store.client();
      const bytes = randomBytes(size);
      const local = join(store.dir, `in-${replicas}-${size}`);
      await writeFile(local, bytes);
      const put = await client.put(local, `rt/r${replicas}/${size}.bin`, { replicas, pieceSize: PIECE });
      assert.is(put.path, `/rt/r${replicas}/${size}.bin`);
      // Pieces this small travel in one frame: every replica pulls them from the uploader (see
      // the pipelined-replication test below for bigger ones).
      assert.is(put.servedBytes, size * replicas, `served ${put.servedBytes} of ${size} bytes`);
      assert.is(put.pieces, Math.ceil(size / PIECE));
      const where = await client.locate(put.path);
      for (const piece of where.pieces) {
        assert.is(piece.workers.length, replicas, `piece ${piece.index} replicas`);
        assert.is(new Set(piece.workers).size, replicas, "no two replicas on one worker");
      }
      const back = join(store.dir, `out-${replicas}-${size}`);
      const got = await client.get(put.path, back);
      assert.is(got.sha256, createHash("sha256").update(bytes).digest("hex"));
      assert.ok(Buffer.compare(await readFile(back), bytes) === 0, "bytes differ");
    });
  }
}

test("a file of several default-size pieces streams to a writable", async ({ store }) => {
  const client = await store.client();
  const bytes = randomBytes(2 * DEFAULT_PIECE_SIZE + 3);
  const local = join(store.dir, "big");
  await writeFile(local, bytes);
  const put = await client.put(local, "/big.bin");
  assert.is(put.pieces, 3);
  const sink = new PassThrough();
  const chunks: Buffer[] = [];
  sink.on("data", (c: Buffer) => chunks.push(c));
  await client.get("/big.bin", sink);
  assert.ok(Buffer.compare(Buffer.concat(chunks), bytes) === 0);
});

test("a file of more pieces than one event or one locate page holds round-trips", async ({ store }) => {
  const client = await store.client();
  const pieces = PIECES_PER_EVENT + 50;
  const bytes = randomBytes(pieces * PIECE - 1);
  const local = join(store.dir, "many-pieces");
  await writeFile(local, bytes);
  const put = await client.put(local, "/many-pieces.bin", { replicas: 1, pieceSize: PIECE });
  assert.is(put.pieces, pieces);
  const back = join(store.dir, "many-pieces.out");
  await client.get("/many-pieces.bin", back, { parallelPieces: 16 });
  assert.ok(Buffer.compare(await readFile(back), bytes) === 0);
});

test("list and locate answer in pages that add up to the whole", async ({ store }) => {
  const client = await store.client();
  const all = await client.list("/rt");
  assert.ok(all.length >= 12);
  assert.equal(await client.list("/rt", { pageSize: 5 }), all);
  const path = `/rt/r3/${300 * PIECE + 7}.bin`;
  assert.equal(await client.locate(path, undefined, { pageSize: 7 }), await client.locate(path));
});

test("an update makes a new version; the old one stays readable", async ({ store }) => {
  const client = await store.client();
  const first = join(store.dir, "v1");
  const second = join(store.dir, "v2");
  await writeFile(first, "first version\n");
  await writeFile(second, "second, longer version\n");
  assert.is((await client.put(first, "/docs/note.txt")).version, 1);
  assert.is((await client.put(second, "docs/note.txt")).version, 2);
  const info = await client.stat("/docs/note.txt");
  assert.is(info.version, 2);
  assert.equal(info.versions.map((v) => v.version), [1, 2]);
  await client.get("/docs/note.txt", join(store.dir, "latest"));
  await client.get("/docs/note.txt", join(store.dir, "old"), { version: 1 });
  assert.is(await readFile(join(store.dir, "latest"), "utf8"), "second, longer version\n");
  assert.is(await readFile(join(store.dir, "old"), "utf8"), "first version\n");
  await client.remove("/docs/note.txt", 1);
  assert.is(await errorCode(() => client.get("/docs/note.txt", join(store.dir, "gone"), { version: 1 })), "NOT_FOUND");
  assert.equal((await client.stat("/docs/note.txt")).versions.map((v) => v.version), [2]);
});

test("the CLI puts, lists, stats, gets to stdout and deletes", async ({ store }) => {
  const local = join(store.dir, "cli-in.txt");
  const text = "bytes through the command line\n".repeat(1000);
  await writeFile(local, text);
  const put = await runCli([...store.flags, "put", local, "/cli/file.txt", "--replicas", "2", "--piece-size", "8KiB"]);
  assert.is(put.code, 0, put.stderr);
  assert.match(put.stdout, /stored \/cli\/file\.txt v1/);
  const ls = await runCli([...store.flags, "ls", "/cli", "--json"]);
  assert.is(ls.code, 0, ls.stderr);
  const listed = JSON.parse(ls.stdout) as { path: string; size: number; replicas: number; pieceSize: number }[];
  assert.equal(listed.map((f) => [f.path, f.size, f.replicas, f.pieceSize]), [["/cli/file.txt", text.length, 2, 8192]]);
  const human = await runCli([...store.flags, "ls"]);
  assert.match(human.stdout, /\/cli\/file\.txt/);
  const stat = await runCli([...store.flags, "stat", "cli/file.txt", "--json"]);
  assert.is(JSON.parse(stat.stdout).sha256, createHash("sha256").update(text).digest("hex"));
  const get = await runCli([...store.flags, "get", "/cli/file.txt", "-"]);
  assert.is(get.code, 0, get.stderr);
  assert.is(get.stdout, text);
  const workersJson = await runCli([...store.flags, "workers", "--json"]);
  const workers = JSON.parse(workersJson.stdout) as { workerId: string; live: boolean; assignedBytes: number; status: { pieces: number; freeBytes: number } }[];
  assert.equal(workers.map((w) => [w.workerId, w.live]), [["w1", true], ["w2", true], ["w3", true]]);
  assert.ok(workers.every((w) => w.status.pieces > 0 && w.status.freeBytes > 0 && w.assignedBytes > 0));
  const workersHuman = await runCli([...store.flags, "workers"]);
  assert.match(workersHuman.stdout, /^w1\s+live\s+\d+ pieces?\s+\S+ \S+\s+\S+ \S+ free\s+\S+ \S+ placed$/m);
  const rm = await runCli([...store.flags, "rm", "/cli/file.txt"]);
  assert.is(rm.code, 0, rm.stderr);
  const after = await runCli([...store.flags, "ls", "/cli", "--json"]);
  assert.equal(JSON.parse(after.stdout), []);
  const missing = await runCli([...store.flags, "get", "/cli/file.txt", join(store.dir, "nothing")]);
  assert.is(missing.code, 3);
  assert.is(missing.stderr.trim().split("\n").length, 1, "one line on stderr");
  assert.match(missing.stderr, /^dfs: NOT_FOUND: /);
});

test.run();
