// The small-file surfaces attacked from outside: `createMany` (many creates in one request) and
// a worker's pull of many small pieces from one uploader, with real processes.
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import * as assert from "uvu/assert";
import { catalogue } from "../streams/catalogue.js";
import { decode, encode } from "../src/codec.js";
import type { CreateAnswer } from "../src/protocol.js";
import { call } from "../src/rpc.js";
import { stateDigest } from "../src/state.js";
import { CLI, keyedUpload, runCli, storeSuite, waitFor, type TestStore } from "./harness.js";

const cat = catalogue("dfs");
const test = storeSuite("small attack", { workers: ["w1", "w2"] });

type Plan = { fileId: string; path: string; version: number; status: string };

/** A create of `bytes` as one piece, answered once it is no longer pending or after `waitMs`. */
function onePiece(name: string, path: string, bytes: Uint8Array, waitMs = 200) {
  const digest = createHash("sha256").update(bytes).digest();
  return { ...keyedUpload(name), uploader: "client", path, size: bytes.length, sha256: digest.toString("hex"), pieceSize: 4096, replicas: 1, pieceHashes: new Uint8Array(digest), waitMs };
}

const outcome = (answer: CreateAnswer<Plan>) => (answer.ok ? `${answer.result.path} v${answer.result.version}` : answer.code);

test("createMany: one upload key twice in a request is one version, the same key with other content is BAD_REQUEST, one path twice is two versions", async ({ store }) => {
  const client = await store.client();
  const many = (creates: unknown[]) => call<{ answers: CreateAnswer<Plan>[] }>(client.nc, cat.masterRpc("createMany"), { creates });
  const bytes = randomBytes(1000);
  const first = onePiece("dup-key", "/dup/a", bytes);
  const { answers } = await many([first, first, { ...first, path: "/dup/b" }, onePiece("dup-path-1", "/dup/same", bytes), onePiece("dup-path-2", "/dup/same", randomBytes(1000))]);
  assert.equal(answers.map(outcome), ["/dup/a v1", "/dup/a v1", "BAD_REQUEST", "/dup/same v1", "/dup/same v2"]);
  // Asked again, alone or together: the same version, never a second one.
  const alone = await call<Plan>(client.nc, cat.masterRpc("create"), first);
  const together = await many([first, { ...first, size: 999 }]);
  assert.equal([`${alone.path} v${alone.version}`, ...together.answers.map(outcome)], ["/dup/a v1", "/dup/a v1", "BAD_REQUEST"]);
  const state = await (await store.client("auditor")).replay();
  const versions = [...state.state.uploads.values()].filter((v) => v.path.startsWith("/dup/")).map((v) => `${v.path} v${v.version}`).sort();
  assert.equal(versions, ["/dup/a v1", "/dup/same v1", "/dup/same v2"]);
});

/** A remote path of exactly `bytes` bytes (segments of at most 250), starting `start`. */
function pathOf(start: string, bytes: number): string {
  let path = start;
  while (path.length < bytes) path += "/" + "x".repeat(Math.min(250, bytes - path.length - 1));
  return path;
}

test("createMany near the payload limit: 64 creates of the longest paths, padded to about 1 MB, each answered; one path a byte too long is its own BAD_PATH", async ({ store }) => {
  const client = await store.client();
  const padding = "p".repeat(10_500); // a field nobody reads: the request still has to be taken apart
  const creates = Array.from({ length: 64 }, (_, i) => ({ ...onePiece(`near-${i}`, pathOf(`/near/${i}`, 4_096), randomBytes(100), 0), padding }));
  creates[7] = { ...creates[7]!, path: pathOf("/near/7", 4_097) };
  const request = encode({ creates });
  assert.ok(request.length > 900_000 && request.length < 1_000_000, `${request.length} bytes`);
  const { answers } = await call<{ answers: CreateAnswer<Plan>[] }>(client.nc, cat.masterRpc("createMany"), { creates }, 30_000);
  assert.is(answers.length, 64);
  answers.forEach((answer, i) => {
    if (i === 7) assert.is(answer.ok ? "ok" : answer.code, "BAD_PATH");
    else assert.is(answer.ok ? answer.result.path : answer.code, creates[i]!.path, `create ${i}`);
  });
  // The master still answers, and its table is the log's.
  const state = await client.masterState();
  assert.is(stateDigest((await store.replay(state.lastSeq)).state), state.digest);
});

test("a forged uploader answering pulls of many: bad bytes, bad lengths and junk codes are refused (the version never commits); a reply of the wrong shape falls back to single pulls", async ({ store }) => {
  const client = await store.client();
  const uploader = await store.connect("client");
  const bytes = new Map<string, Uint8Array>();
  // How this uploader answers one frame of a pull of many, by its upload's id; single pulls get the right bytes.
  const forged = new Map<string, (right: Uint8Array) => unknown>();
  // The whole reply to a pull of many, when the case forges that instead.
  const wholeReply = new Map<string, () => Uint8Array>();
  const pullsOfMany: string[] = [];
  const sub = uploader.subscribe(cat.pullsOf("client"), {
    callback: (_err, msg) => {
      const where = cat.parsePull(msg.subject)!;
      if (!bytes.has(where.uploadId)) return; // another test's upload
      const request = decode(msg.data) as { frames?: { uploadId: string }[]; offset: number; length: number };
      if (!request.frames) {
        const right = bytes.get(where.uploadId)!;
        msg.respond(right.subarray(request.offset, request.offset + request.length));
        return;
      }
      pullsOfMany.push(where.uploadId);
      const whole = wholeReply.get(where.uploadId);
      if (whole) {
        msg.respond(whole());
        return;
      }
      msg.respond(encode({ frames: request.frames.map((f) => forged.get(f.uploadId)!(bytes.get(f.uploadId)!)) }));
    },
  });
  await uploader.flush();
  const cases: [string, "committed" | "abandoned", (id: string) => void][] = [
    ["other bytes", "abandoned", (id) => forged.set(id, (right) => randomBytes(right.length))],
    ["a frame too long", "abandoned", (id) => forged.set(id, (right) => Buffer.concat([right, Buffer.from("x")]))],
    ["a frame too short", "abandoned", (id) => forged.set(id, (right) => right.subarray(1))],
    ["a code that is none", "abandoned", (id) => forged.set(id, () => ({ code: "NOT_A_CODE", message: 12 }))],
    ["a string", "abandoned", (id) => forged.set(id, () => "bytes")],
    ["NOT_FOUND", "committed", (id) => forged.set(id, () => ({ code: "NOT_FOUND", message: "elsewhere" }))],
    ["too many frames", "committed", (id) => wholeReply.set(id, () => encode({ frames: [new Uint8Array(1), new Uint8Array(1)] }))],
    ["no frames", "committed", (id) => wholeReply.set(id, () => encode({ frames: {} }))],
    ["not CBOR", "committed", (id) => wholeReply.set(id, () => new Uint8Array([0xff, 0xfe]))],
  ];
  try {
    for (const [name, expected, forge] of cases) {
      const content = randomBytes(1000);
      // Both workers pull it: one replica's refusal is enough to give the version up.
      const create = { ...onePiece(`forged-${name.replaceAll(" ", "-")}`, `/forged/${name}`, content, 10_000), replicas: 2 };
      bytes.set(create.uploadId, content);
      forge(create.uploadId);
      const plan = await call<Plan>(client.nc, cat.masterRpc("create"), create, 15_000);
      assert.is(`${name}: ${plan.status}`, `${name}: ${expected}`);
      assert.ok(pullsOfMany.includes(create.uploadId), `${name}: pulled with a pull of many`);
    }
  } finally {
    sub.unsubscribe();
  }
  assert.equal((await client.list("/forged")).map((f) => f.path).sort(), ["/forged/NOT_FOUND", "/forged/no frames", "/forged/not CBOR", "/forged/too many frames"]);
  for (const name of ["NOT_FOUND", "not CBOR"]) {
    const local = join(store.dir, `forged-${name}`);
    await client.get(`/forged/${name}`, local);
    assert.ok((await readFile(local)).equals(bytes.get(keyedUpload(`forged-${name.replaceAll(" ", "-")}`).uploadId)!), `${name} reads back`);
  }
  const state = await client.masterState();
  assert.is(stateDigest((await store.replay(state.lastSeq)).state), state.digest);
});

test("creates naming another user as uploader, asked many at a time while that user puts small files: only the forged versions fail; every one of the user's files is stored", async ({ store }) => {
  const bob = await store.client("client", "bob");
  const mallory = await store.client("client", "mallory");
  const root = join(store.dir, "bobs");
  await mkdir(root, { recursive: true });
  const entries = await Promise.all(
    Array.from({ length: 48 }, async (_, i) => {
      await writeFile(join(root, `f${i}`), randomBytes(500 + i));
      return { local: join(root, `f${i}`), remote: `/bobs/f${i}` };
    }),
  );
  // Versions that say bob serves them: workers' pulls of many for bob may name them first.
  const forge = async (round: number) =>
    call<{ answers: CreateAnswer<Plan>[] }>(mallory.nc, cat.masterRpc("createMany"), {
      creates: Array.from({ length: 16 }, (_, i) => ({ ...onePiece(`forged-bob-${round}-${i}`, `/forged-bob/${round}-${i}`, randomBytes(700), 0), uploader: bob.uploader, replicas: 2 })),
    });
  const [put] = await Promise.all([bob.putMany(entries, { replicas: 2 }), forge(1), forge(2), forge(3)]);
  assert.equal(put.failed.map((f) => `${f.entry.remote}: ${f.error.code}: ${f.error.message}`), []);
  assert.is(put.stored.length, entries.length);
  assert.is((await bob.list("/bobs")).length, entries.length);
  await waitFor("the forged versions given up", async () => (await bob.status()).uploadsPending === 0, 30_000);
  assert.equal(await bob.list("/forged-bob"), [], "nobody served the forged versions");
});

/** Files of the sizes around the small-file bounds (0, 1 KiB, a small pull's 16 KiB, one byte over, 1 MiB) and a few MiB, `copies` of each, in subfolders. */
async function mixedTree(root: string, copies: number): Promise<Map<string, Buffer>> {
  const sizes = [0, 1024, 16 * 1024, 16 * 1024 + 1, 1024 * 1024, 3 * 1024 * 1024 + 7];
  const tree = new Map<string, Buffer>();
  for (let i = 0; i < copies; i++) {
    for (const size of sizes) {
      // The big ones once: the tree is about its many small files.
      if (size > 1024 * 1024 && i > 0) continue;
      const relative = join(`d${i % 7}`, `f${i}-${size}`);
      const bytes = randomBytes(size);
      await mkdir(dirname(join(root, relative)), { recursive: true });
      await writeFile(join(root, relative), bytes);
      tree.set(relative, bytes);
    }
  }
  return tree;
}

/** `dfs status --json` says every piece is healthy, nothing pending, nothing rejected; `dfs replay --check` agrees with the live master. */
async function assertHealthy(store: TestStore): Promise<void> {
  const status = await waitFor(
    "no upload pending",
    async () => {
      const run = await runCli([...store.flags, "status", "--json"]);
      assert.is(run.code, 0, run.stderr);
      const report = JSON.parse(run.stdout) as { uploadsPending: number; rejected: number; copiesInFlight: number; pieces: { total: number; healthy: number } };
      return report.uploadsPending === 0 && report.copiesInFlight === 0 && report;
    },
    60_000,
    250,
  );
  assert.is(status.rejected, 0);
  assert.is(status.pieces.healthy, status.pieces.total, JSON.stringify(status));
  const check = await runCli([...store.flags, "replay", "--check"], { timeoutMs: 60_000 });
  assert.is(check.code, 0, check.stdout + check.stderr);
}

test("put -r of sizes around the small-file bounds, with refused names: each refused name fails alone on its line, the rest are stored; a second put -r makes version 2 of each; get -r gives every byte back", async ({ store }) => {
  const root = join(store.dir, "bounds");
  const tree = await mixedTree(root, 3);
  await writeFile(join(root, "d0", "bell\u0007"), "a control character\n");
  await writeFile(join(root, "d1", "new\nline"), "a newline\n");
  for (const round of [1, 2]) {
    const put = await runCli([...store.flags, "put", "-r", `${root}/.`, "/bounds", "--replicas", "2"], { timeoutMs: 120_000 });
    assert.is(put.code, 1, put.stderr);
    const lines = put.stderr.trim().split("\n");
    const refused = lines.slice(0, 2).sort();
    assert.is(lines.length, 3, put.stderr);
    // Each on one line, the names' control characters escaped (a bell rung, or a line broken, by a file name is a terminal driven by it).
    assert.match(refused[0]!, /^dfs: BAD_PATH: .*\/d0\/bell\\u0007: path "\/bounds\/d0\/bell\\u0007" contains a control character$/);
    assert.match(refused[1]!, /^dfs: BAD_PATH: .*\/d1\/new\\nline: path "\/bounds\/d1\/new\\nline" contains a control character$/);
    assert.is(lines[2], `dfs: SOME_FILES_FAILED: 2 of ${tree.size + 2} files failed`);
    const listed = await runCli([...store.flags, "ls", "/bounds", "--json"]);
    const files = JSON.parse(listed.stdout) as { path: string; version: number }[];
    assert.is(files.length, tree.size);
    assert.ok(files.every((f) => f.version === round), `round ${round}: ${JSON.stringify(files.filter((f) => f.version !== round))}`);
  }
  const back = join(store.dir, "bounds-back");
  const get = await runCli([...store.flags, "get", "-r", "/bounds", back], { timeoutMs: 120_000 });
  assert.is(get.code, 0, get.stderr);
  for (const [relative, bytes] of tree) assert.ok((await readFile(join(back, relative))).equals(bytes), `${relative} reads back`);
  await assertHealthy(store);
});

test("put -r with 16 KiB pieces: files of 16 and 17 pieces (created together, and alone) and of 64, every piece pulled many at a time by both replicas; get -r gives every byte back", async ({ store }) => {
  const root = join(store.dir, "pieces");
  const tree = new Map<string, Buffer>();
  for (const size of [0, 16 * 1024, 16 * 16 * 1024, 16 * 16 * 1024 + 1, 64 * 16 * 1024]) {
    for (let copy = 0; copy < 3; copy++) tree.set(`f${size}-${copy}`, randomBytes(size));
  }
  await mkdir(root, { recursive: true });
  for (const [name, bytes] of tree) await writeFile(join(root, name), bytes);
  const put = await runCli([...store.flags, "put", "-r", `${root}/.`, "/pieces", "--replicas", "2", "--piece-size", "16KiB"], { timeoutMs: 120_000 });
  assert.is(put.code, 0, put.stderr);
  const back = join(store.dir, "pieces-back");
  const get = await runCli([...store.flags, "get", "-r", "/pieces", back], { timeoutMs: 120_000 });
  assert.is(get.code, 0, get.stderr);
  for (const [name, bytes] of tree) assert.ok((await readFile(join(back, name))).equals(bytes), `${name} reads back`);
  await assertHealthy(store);
});

test("the uploader killed -9 in the middle of a put -r of small files: every file commits or is given up, none is left pending; what is listed reads back; the store is healthy and replays; a retry stores every file", async ({ store }) => {
  const root = join(store.dir, "killed");
  const tree = await mixedTree(root, 60);
  const put = spawn(process.execPath, [CLI, ...store.flags, "put", "-r", `${root}/.`, "/killed", "--replicas", "2", "--verbose"], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  put.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
  const exited = new Promise((resolve) => put.once("exit", resolve));
  try {
    await waitFor("30 files stored", () => stdout.split("\n").filter((l) => l.startsWith("stored /")).length >= 30, 60_000, 10);
  } finally {
    put.kill("SIGKILL");
    await exited;
  }
  const stored = stdout.split("\n").filter((l) => l.startsWith("stored /")).length;
  assert.ok(stored < tree.size, `killed before the end (${stored} of ${tree.size} stored)`);
  await assertHealthy(store);
  // Whatever was committed reads back whole.
  const back = join(store.dir, "killed-back");
  const get = await runCli([...store.flags, "get", "-r", "/killed", back], { timeoutMs: 120_000 });
  assert.is(get.code, 0, get.stderr);
  const listed = JSON.parse((await runCli([...store.flags, "ls", "/killed", "--json"])).stdout) as { path: string }[];
  assert.ok(listed.length >= stored, `${listed.length} listed, ${stored} said stored`);
  for (const { path } of listed) {
    const relative = path.slice("/killed/".length);
    assert.ok((await readFile(join(back, relative))).equals(tree.get(relative)!), `${relative} reads back`);
  }
  const retry = await runCli([...store.flags, "put", "-r", `${root}/.`, "/killed", "--replicas", "2"], { timeoutMs: 120_000 });
  assert.is(retry.code, 0, retry.stderr);
  const again = join(store.dir, "killed-again");
  assert.is((await runCli([...store.flags, "get", "-r", "/killed", again], { timeoutMs: 120_000 })).code, 0);
  for (const [relative, bytes] of tree) assert.ok((await readFile(join(again, relative))).equals(bytes), `${relative} reads back after the retry`);
  await assertHealthy(store);
});

test.run();
