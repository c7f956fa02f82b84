// The small-file surfaces attacked from outside: `createMany` (many creates in one request) and
// a worker's pull of many small pieces from one uploader, with real processes.
import { createHash, randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import * as assert from "uvu/assert";
import { catalogue } from "../streams/catalogue.js";
import { decode, encode } from "../src/codec.js";
import type { CreateAnswer } from "../src/protocol.js";
import { call } from "../src/rpc.js";
import { stateDigest } from "../src/state.js";
import { keyedUpload, storeSuite } from "./harness.js";

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

test.run();
