// Thousands of seeded garbage requests on every subject the processes answer: every process
// stays up, every answer is a coded error or a legitimate success, and a put still round-trips.
// Reproduce a run with DFS_FUZZ_SEED=<the seed it printed>.
import { createHash, randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import type { Msg, NatsConnection } from "@nats-io/transport-node";
import * as assert from "uvu/assert";
import { MASTER_OPS, WORKER_OPS } from "../streams/catalogue.js";
import { decode, encode } from "../src/codec.js";
import { isErrorCode } from "../src/errors.js";
import { ERROR_HEADER, uploadIdOf } from "../src/protocol.js";
import { keyedUpload, seededRandom, storeSuite, waitFor, type TestStore } from "./harness.js";

const SEED = Number(process.env.DFS_FUZZ_SEED ?? Date.now() % 2 ** 32);
const RPC_REQUESTS = 2_400;
const PULL_REQUESTS = 400;
const CONFIRMATIONS = 300;
const LANES = 16;
const REPLY_TIMEOUT_MS = 3_000;

// Workers must stay live in the master's view while they are paused (SIGSTOP) in the pull phase.
const test = storeSuite("fuzz", { workers: ["w1", "w2"], workerTimeoutMs: 60_000 });

class Fuzzer {
  constructor(
    readonly random: () => number,
    private readonly maxPayload: number,
  ) {}

  int(below: number): number {
    return Math.floor(this.random() * below);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  bytes(length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) out[i] = this.int(256);
    return out;
  }

  /** Mostly short, now and then close to max_payload. */
  size(): number {
    return this.random() < 0.02 ? this.maxPayload - 1_024 - this.int(4_096) : this.int(this.random() < 0.8 ? 64 : 2_048);
  }

  text(length: number): string {
    const alphabets = ["abc/", "\u0000\u0001\u001b\u007f\u0085", "\u202e\u2066\u200f", "\u00e9e\u0301\u{1F600}", "./", "\ud800"];
    const alphabet = [...this.pick(alphabets)];
    let out = "";
    for (let i = 0; i < length; i++) out += this.pick(alphabet);
    return out;
  }

  /** CBOR nested `depth` arrays deep, written by hand (encoding it would blow our own stack). */
  nested(depth: number): Uint8Array {
    const out = new Uint8Array(depth + 1).fill(0x81);
    out[depth] = 0x00;
    return out;
  }

  /** A value of the wrong shape for almost any field. */
  weird(): unknown {
    const choices: (() => unknown)[] = [
      () => -1,
      () => 2 ** 53 + 2,
      () => -(2 ** 63),
      () => 2n ** 64n + 1n,
      () => 1e308,
      () => Number.NaN,
      () => Number.POSITIVE_INFINITY,
      () => -0,
      () => 0.5,
      () => "",
      () => null,
      () => true,
      () => [],
      () => ({}),
      () => [[[[[[[[1]]]]]]]],
      () => this.bytes(this.int(100)),
      () => this.text(this.int(300)),
      () => "/" + "p".repeat(5_000),
      () => "x".repeat(Math.floor(this.maxPayload * 0.9)),
      () => "\u0001".repeat(Math.floor(this.maxPayload / 5)), // six times longer once escaped in a message
      () => new Date(0),
    ];
    return this.pick(choices)();
  }

  /** A request for `template`'s subject: garbage bytes, cut CBOR, the template with wrong fields, or as is. */
  payload(template: Record<string, unknown>): Uint8Array {
    const roll = this.random();
    if (roll > 0.95) return encode(template);
    if (roll < 0.15) return this.bytes(this.size());
    if (roll < 0.3) {
      const whole = encode(template);
      return whole.subarray(0, this.int(whole.length));
    }
    if (roll < 0.35) return this.nested(1_000 + this.int(100_000));
    if (roll < 0.4) return new Uint8Array(0);
    if (roll < 0.45) return encode(this.weird());
    const request: Record<string, unknown> = { ...template };
    const keys = Object.keys(template);
    for (let n = 1 + this.int(3); n > 0; n--) {
      const key = keys.length && this.random() < 0.9 ? this.pick(keys) : this.text(1 + this.int(10));
      if (this.random() < 0.15) delete request[key];
      else request[key] = this.weird();
    }
    const encoded = encode(request);
    return encoded.length < this.maxPayload - 512 ? encoded : encoded.subarray(0, this.maxPayload - 512);
  }
}

const sha = "ab".repeat(32);
/** A streamed upload is named by its key to extend and seal it, by the key's digest to create it. */
const streamKey = "fuzz-stream-key-".padEnd(43, "k");
const masterTemplates: Record<(typeof MASTER_OPS)[number], Record<string, unknown>[]> = {
  create: [
    // Well formed: an empty file declares the empty content's SHA-256, a one-piece file its piece's.
    { ...keyedUpload("fuzz-empty"), uploader: "client", path: "/fuzz/empty", size: 0, sha256: createHash("sha256").digest("hex"), pieceSize: 4096, replicas: 1, pieceHashes: new Uint8Array(0) },
    { ...keyedUpload("fuzz-up"), uploader: "client", path: "/fuzz/ten", size: 10, sha256: "00".repeat(32), pieceSize: 4096, replicas: 2, pieceHashes: new Uint8Array(32) },
    { uploadId: uploadIdOf(streamKey), uploadKey: streamKey, uploader: "client", path: "/fuzz/stream", streamed: true, pieceSize: 4096, replicas: 1 },
  ],
  createMany: [
    {
      creates: [
        { ...keyedUpload("fuzz-many-1"), uploader: "client", path: "/fuzz/many/1", size: 10, sha256: "00".repeat(32), pieceSize: 4096, replicas: 1, pieceHashes: new Uint8Array(32) },
        { ...keyedUpload("fuzz-many-2"), uploader: "client", path: "/fuzz/many/2", size: 0, sha256: createHash("sha256").digest("hex"), pieceSize: 4096, replicas: 1, pieceHashes: new Uint8Array(0), waitMs: 10 },
      ],
    },
  ],
  extend: [
    { uploadKey: streamKey, pieces: [{ index: 0, size: 4096, sha256: sha }] },
    { uploadKey: streamKey, pieces: [] },
  ],
  seal: [{ uploadKey: streamKey, size: 4096, sha256: sha }],
  abort: [{ uploadKey: keyedUpload("fuzz-up").uploadKey, reason: "fuzz" }],
  wait: [{ uploadId: keyedUpload("fuzz-up").uploadId, stored: 0, waitMs: 10 }],
  status: [{}],
  reader: [{ fromSeq: 1 }],
  pieces: [{ sha256s: [sha] }],
  locate: [{ path: "/fuzz/empty", version: 1, fromPiece: 0, limit: 10 }],
  list: [{ prefix: "/fuzz", after: "/fuzz/a", limit: 10 }],
  stat: [{ path: "/fuzz/empty" }],
  delete: [{ path: "/fuzz/none", version: 1 }],
  state: [{ full: true }],
  retention: [{ keepVersions: 3 }, { keepForMs: 1000 }, {}],
};
const workerTemplates: Record<(typeof WORKER_OPS)[number], Record<string, unknown>> = {
  read: { sha256: sha, offset: 0, length: 10, waitMs: 10 },
  health: {},
  verify: { sha256: sha },
  inventory: { after: sha, limit: 10 },
  scrub: { after: sha, limit: 2 },
};

type Verdict = "success" | "coded error" | "no answer";

/** What a CBOR reply says; throws on a reply that is neither a success nor a coded error. */
function judgeCbor(subject: string, msg: Msg): Verdict {
  const reply = decode(msg.data) as { ok?: unknown; code?: unknown; message?: unknown };
  if (reply?.ok === true) return "success";
  assert.is(reply?.ok, false, `${subject}: a reply is ok: true or ok: false`);
  assert.ok(isErrorCode(reply.code), `${subject}: known code, got ${String(reply.code)}`);
  assert.type(reply.message, "string", `${subject}: an error has a message`);
  return "coded error";
}

/** What a byte reply says: bytes, or an error marked by its header with a known code. */
function judgeBytes(subject: string, msg: Msg): Verdict {
  const code = msg.headers?.get(ERROR_HEADER);
  if (!code) return "success";
  assert.ok(isErrorCode(code), `${subject}: known code in ${ERROR_HEADER}, got ${code}`);
  return "coded error";
}

async function ask(nc: NatsConnection, subject: string, payload: Uint8Array, judge: typeof judgeCbor): Promise<Verdict> {
  let msg: Msg;
  try {
    msg = await nc.request(subject, payload, { timeout: REPLY_TIMEOUT_MS });
  } catch {
    return "no answer";
  }
  return judge(subject, msg);
}

/** Run `count` tasks, `LANES` at a time, tallying their verdicts. */
async function inLanes(count: number, task: (i: number) => Promise<Verdict>): Promise<Record<Verdict, number>> {
  const tally: Record<Verdict, number> = { success: 0, "coded error": 0, "no answer": 0 };
  let next = 0;
  const lane = async () => {
    while (next < count) tally[await task(next++)] += 1;
  };
  await Promise.all(Array.from({ length: LANES }, lane));
  return tally;
}

function assertAllUp(store: TestStore): void {
  for (const role of store.roles) assert.ok(role.process.exitCode === null && role.process.signalCode === null, `${role.name} is up:\n${role.output()}`);
  assert.is(store.server.process.exitCode, null, "nats-server is up");
}

test(`seeded garbage to every RPC and the confirmations stops nobody (DFS_FUZZ_SEED=${SEED})`, async ({ store }) => {
  process.stdout.write(`\n  fuzz seed ${SEED}\n`);
  const client = await store.client();
  const nc = client.nc;
  const fuzz = new Fuzzer(seededRandom(SEED), nc.info?.max_payload ?? 1024 * 1024);
  const subjects = [
    ...MASTER_OPS.flatMap((op) => masterTemplates[op].map((template) => ({ subject: store.cat.masterRpc(op), template, judge: judgeCbor }))),
    ...["w1", "w2"].flatMap((id) =>
      WORKER_OPS.map((op) => ({ subject: store.cat.workerRpc(id, op), template: workerTemplates[op], judge: op === "read" ? judgeBytes : judgeCbor })),
    ),
  ];
  const rpcs = await inLanes(RPC_REQUESTS, async () => {
    const { subject, template, judge } = fuzz.pick(subjects);
    return ask(nc, subject, fuzz.payload(template), judge);
  });
  // Confirmations can only come from workers, each on its own subject (the server sees to that).
  const workers = await Promise.all(["w1", "w2"].map(async (id) => ({ id, js: jetstream(await store.connect("worker", id, { streams: true })) })));
  const confirmation = { workerId: "w1", fileId: "fuzzfile", version: 1, piece: 0, sha256: sha, ok: false, code: "INTERNAL", message: "fuzz" };
  const batch = { kind: "batch", workerId: "w1", reports: [confirmation, { kind: "copy", workerId: "w1", sha256: sha, ok: true }] };
  for (let i = 0; i < CONFIRMATIONS; i++) {
    // One report alone, or a batch of them, as workers send them.
    const payload = fuzz.payload(i % 2 ? batch : confirmation);
    const { id, js } = fuzz.pick(workers);
    await js.publish(store.cat.confirm(id), payload);
  }
  process.stdout.write(`  fuzz rpc replies: ${JSON.stringify(rpcs)}\n`);
  assertAllUp(store);
  assert.ok(rpcs["coded error"] > RPC_REQUESTS / 2, "most garbage is answered with a coded error");
});

test("garbage to a live upload's pull subject, then the upload completes", async ({ store }) => {
  const client = await store.client();
  // Only a worker may send pulls; a master's rights overhear the create (outside the masters'
  // queue group) to learn the upload id.
  const spy = await store.connect("worker", "w1");
  const listener = await store.connect("master");
  const fuzz = new Fuzzer(seededRandom(SEED + 1), client.nc.info?.max_payload ?? 1024 * 1024);
  let uploadId: string | undefined;
  const overheard = listener.subscribe(store.cat.masterRpc("create"), {
    callback: (_err, msg) => {
      uploadId = (decode(msg.data) as { uploadId?: string }).uploadId;
    },
  });
  await listener.flush(); // subscribed at the server before the create is sent
  const workers = [store.role("worker w1").process, store.role("worker w2").process];
  const local = join(store.dir, "pulled");
  const content = randomBytes(16 * 4096 + 123);
  await writeFile(local, content);
  // Paused workers keep the upload live (nothing is pulled) while we pester its uploader.
  for (const worker of workers) worker.kill("SIGSTOP");
  let put: ReturnType<typeof client.put> | undefined;
  try {
    put = client.put(local, "/fuzz/pulled", { replicas: 2, pieceSize: 4096 });
    put.catch(() => undefined); // awaited below; not an unhandled rejection meanwhile
    const id = await waitFor("the upload id", () => uploadId, 5_000);
    const pulls = await inLanes(PULL_REQUESTS, async () => {
      const subject = fuzz.random() < 0.9 ? store.cat.pull(client.uploader, id, fuzz.int(20)) : `${store.cat.pull(client.uploader, id, 0)}x`;
      return ask(spy, subject, fuzz.payload({ offset: 0, length: 100 }), judgeBytes);
    });
    process.stdout.write(`  fuzz pull replies: ${JSON.stringify(pulls)}\n`);
    assert.ok(pulls["coded error"] > 0 && pulls.success > 0, "garbage refused, good pulls served");
  } finally {
    for (const worker of workers) worker.kill("SIGCONT");
    overheard.unsubscribe();
  }
  const result = await put!;
  assert.is(result.size, content.length);
  assertAllUp(store);
});

test("after the garbage, a put and a get round-trip byte-exact", async ({ store }) => {
  const client = await store.client();
  await writeFile(join(store.dir, "after"), randomBytes(5 * 4096 + 7));
  await client.put(join(store.dir, "after"), "/fuzz/after", { replicas: 2, pieceSize: 4096 });
  for (const name of ["pulled", "after"]) {
    const local = join(store.dir, name);
    const back = join(store.dir, `${name}.back`);
    await client.get(`/fuzz/${name}`, back);
    assert.ok((await readFile(back)).equals(await readFile(local)), `${name} reads back byte-exact`);
  }
  assert.ok((await client.list("/")).length >= 2, "ls / works");
  assertAllUp(store);
});

test.run();
