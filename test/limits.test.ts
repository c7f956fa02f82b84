// What an attacker did to the master, replayed against real processes: huge paths are refused
// with a short coded error, and listings keep fitting max_payload however long the paths and
// however many the versions.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as assert from "uvu/assert";
import { decode, encode } from "../src/codec.js";
import { MAX_PATH_BYTES } from "../src/paths.js";
import { STAT_VERSIONS } from "../src/queries.js";
import { call } from "../src/rpc.js";
import { errorCode, keyedUpload, runCli, storeSuite } from "./harness.js";

const test = storeSuite("limits", { workers: ["w1"] });

const LONG_FILES = 300;
const VERSIONS = STAT_VERSIONS + 30;

/** A path of exactly MAX_PATH_BYTES bytes, told apart by its last segment. */
function longestPath(i: number): string {
  const tail = `/f${String(i).padStart(4, "0")}`;
  const dirs: string[] = [];
  let bytes = tail.length;
  while (bytes + 256 <= MAX_PATH_BYTES) {
    dirs.push("d".repeat(255));
    bytes += 256;
  }
  dirs.push("e".repeat(MAX_PATH_BYTES - bytes - 1));
  return "/" + dirs.join("/") + tail;
}

/** Run `count` tasks, a few at a time. */
async function inLanes(count: number, lanes: number, task: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: lanes }, async () => {
    while (next < count) await task(next++);
  }));
}

test("a stat of 200,000 control characters gets a short BAD_PATH, and the master stays up", async ({ store }) => {
  const client = await store.client();
  const msg = await client.nc.request(store.cat.masterRpc("stat"), encode({ path: "\u0001".repeat(200_000) }), { timeout: 5_000 });
  const reply = decode(msg.data) as { ok: boolean; code: string; message: string };
  assert.is(reply.ok, false);
  assert.is(reply.code, "BAD_PATH");
  assert.ok(reply.message.length < 600, `a short message: ${reply.message}`);
  assert.match(reply.message, /\(200000 bytes\)/);
  assert.is(store.role("master").process.exitCode, null);
  assert.ok(await client.masterState());
});

test("CBOR big integers are refused before they cost anything: the master answers at once", async ({ store }) => {
  const client = await store.client();
  // Tag 2 (a big integer) over a byte string of 900 KB: seconds to minutes to turn into a BigInt.
  const size = 900 * 1024;
  const bignum = Buffer.concat([Buffer.from([0xc2, 0x5a, (size >>> 24) & 255, (size >>> 16) & 255, (size >>> 8) & 255, size & 255]), Buffer.alloc(size, 0xff)]);
  const replies = await Promise.all([1, 2, 3].map(() => client.nc.request(store.cat.masterRpc("list"), bignum, { timeout: 5_000 })));
  for (const reply of replies) assert.equal(decode(reply.data), { ok: false, code: "BAD_REQUEST", message: "request is not CBOR" });
  assert.ok(Array.isArray(await client.list("/")), "and goes on serving");
});

test("a 600 KB path is refused, by the client and by the master", async ({ store }) => {
  const client = await store.client();
  const local = join(store.dir, "empty");
  await writeFile(local, "");
  const huge = "/" + "a".repeat(600 * 1024);
  assert.is(await errorCode(() => client.put(local, huge)), "BAD_PATH");
  const create = { ...keyedUpload("huge"), uploader: client.uploader, path: huge, size: 0, sha256: "ab".repeat(32), pieceSize: 4096, replicas: 1, pieceHashes: new Uint8Array(0) };
  assert.is(await errorCode(() => call(client.nc, store.cat.masterRpc("create"), create)), "BAD_PATH");
  assert.is(await errorCode(() => client.put(local, "/" + "s".repeat(256))), "BAD_PATH", "a segment over 255 bytes");
  assert.is(await errorCode(() => client.put(local, "/invoice\u202efdp.exe")), "BAD_PATH", "a bidi override");
});

test("ls / pages through many files at the path limit and one file with many versions", async ({ store }) => {
  const client = await store.client();
  const local = join(store.dir, "small");
  await writeFile(local, "");
  await inLanes(LONG_FILES, 8, (i) => client.put(local, longestPath(i), { replicas: 1 }));
  await inLanes(VERSIONS, 1, () => client.put(local, "/many-versions", { replicas: 1 }));
  const files = await client.list("/");
  assert.is(files.length, LONG_FILES + 1);
  assert.equal(files.slice(0, LONG_FILES).map((f) => f.path), Array.from({ length: LONG_FILES }, (_, i) => longestPath(i)));
  assert.is(Buffer.byteLength(files[0]!.path), MAX_PATH_BYTES);
  const many = files.at(-1)!;
  assert.is(many.path, "/many-versions");
  assert.is(many.versionCount, VERSIONS);
  const info = await client.stat("/many-versions");
  assert.is(info.versions.length, STAT_VERSIONS);
  assert.is(info.versions.at(-1)!.version, VERSIONS);
  const ls = await runCli([...store.flags, "ls", "/"]);
  assert.is(ls.code, 0, ls.stderr);
  assert.is(ls.stdout.trim().split("\n").length, LONG_FILES + 1);
  const stat = await runCli([...store.flags, "stat", "/many-versions"]);
  assert.is(stat.code, 0, stat.stderr);
  assert.match(stat.stdout, new RegExp(`versions  ${VERSIONS - STAT_VERSIONS} older, then v${VERSIONS - STAT_VERSIONS + 1} `));
});

test.run();
