// `npm run bench`: dfs side by side with NATS Object Store on one nats-server (issue 8). It
// starts its own store (a nats-server, one master and three workers as processes, with
// credentials), then measures, as a user runs them: put and get of a big random file through
// the `dfs` CLI (1 and 3 replicas) against Object Store and against raw request-reply of the
// frame size (the ceiling); many small files; peak memory of the client, the workers and the
// master; and the replay of a large log against a bare ordered consumer. Prints one table and
// writes it as JSON. A benchmark, not a test: nothing here asserts a timing.
// Run: npm run bench [-- --size 256MiB --runs 3 --small 2000 --log-events 1000000 --only put,small --json FILE]
import { latestSnapshotHead } from "../src/master/snapshots.js";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { execFileSync } from "node:child_process";
import { createUser, encodeUser, fmtCreds, fromSeed } from "@nats-io/jwt";
import { Objm, type ObjectStore } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/transport-node";
import { DfsClient } from "../client/client.js";
import { parseBytes } from "../client/format.js";
import { LocalCluster } from "../client/local-cluster.js";
import { findNatsServer } from "../client/nats-server.js";
import { stopChild } from "../client/stop-child.js";
import { catalogue, type Catalogue } from "../streams/catalogue.js";
import { provisionStreams } from "../streams/provision.js";
import { connectNats } from "../src/connection.js";
import { credsFile, initCredentials } from "../src/credentials.js";
import { asDfsError, ErrorCodes } from "../src/errors.js";
import { Limiter } from "../src/limiter.js";
import { lastSequence } from "../src/log.js";
import { frameSizeFor } from "../src/protocol.js";
import { call } from "../src/rpc.js";
import { appendSyntheticLog, readBare, wholeFilesWithin } from "./bench-log.js";
import { cpuSeconds, peakRssMb, rssMb, runMeasured, type CommandRun } from "./bench-processes.js";
import { childrenOf } from "../test/harness.js";
import { ResultTable, type RowSpec } from "./bench-table.js";

const PARTS = ["ceiling", "put", "large", "small", "replay"] as const;
type Part = (typeof PARTS)[number];

const { values: flags } = parseArgs({
  options: {
    size: { type: "string", default: "256MiB" },
    "large-size": { type: "string", default: "1GiB" },
    runs: { type: "string", default: "3" },
    small: { type: "string", default: "2000" },
    "log-events": { type: "string", default: "1000000" },
    only: { type: "string", default: PARTS.join(",") },
    json: { type: "string", default: "bench-result.json" },
  },
  strict: true,
});

function wholeNumber(name: string, text: string, min: number): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`--${name} must be a whole number >= ${min}, not ${JSON.stringify(text)}`);
  return n;
}

const size = parseBytes(flags.size);
const largeSize = parseBytes(flags["large-size"]);
const runs = wholeNumber("runs", flags.runs, 1);
const smallFiles = wholeNumber("small", flags.small, 1);
/** The log holds whole files only: as many events as that allows within --log-events. */
const { files, events: logEvents } = wholeFilesWithin(wholeNumber("log-events", flags["log-events"], 10));
const only = new Set(flags.only.split(",").filter(Boolean));
for (const part of only) if (!PARTS.includes(part as Part)) throw new Error(`--only takes ${PARTS.join(", ")}; not ${JSON.stringify(part)}`);
const jsonPath = resolve(flags.json);

const MiB = 1024 * 1024;
/** A get reads 4 pieces with 4 frames each at once (client/get.ts): the ceiling runs as many. */
const GET_FRAMES_IN_FLIGHT = 16;
const SMALL_IN_FLIGHT = 16;
const SMALL_FILE_BYTES = 1024;
/** A tree, not one flat folder: this many files a folder. */
const SMALL_FILES_PER_DIR = 100;
const OBJECT_BUCKET = "BENCH";
const CEILING_SUBJECT = "bench.ceiling";
const LOG_PREFIX = "benchlog";
const BENCH_USER = "bench";
/** How long the master of the large log may take to answer its first read. */
const MASTER_START_LIMIT_MS = 15 * 60_000;
const BIN = fileURLToPath(new URL("../bin/dfs.js", import.meta.url));
const CLI_ENTRY = fileURLToPath(new URL("../dist/client/cli.js", import.meta.url));
const RESPONDER = fileURLToPath(new URL("./ceiling-responder.ts", import.meta.url));

const human = (bytes: number) => (bytes >= 1024 * MiB && bytes % (1024 * MiB) === 0 ? `${bytes / 1024 / MiB} GiB` : bytes >= MiB ? `${+(bytes / MiB).toFixed(1)} MiB` : `${+(bytes / 1024).toFixed(1)} KiB`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mbPerS = (bytes: number, seconds: number) => bytes / 1e6 / seconds;
const atLeast = (n: number, text = `>= ${n}x`) => ({ atLeast: n, text });
const below = (n: number, unit: string) => ({ below: n, text: `< ${n} ${unit}` });

const ROWS: Record<Part | "processes", RowSpec[]> = {
  ceiling: [],
  put: [
    { id: "put-r1-obj", what: `put ${human(size)}, 1 replica, dfs CLI`, unit: "MB/s", peerWhat: "Object Store put", target: atLeast(3) },
    { id: "put-r1-ceiling", what: `put ${human(size)}, 1 replica, vs the ceiling`, unit: "MB/s", peerWhat: "request-reply", target: atLeast(0.5) },
    { id: "get-r1-obj", what: `get ${human(size)}, 1 replica, dfs CLI`, unit: "MB/s", peerWhat: "Object Store get", target: atLeast(3) },
    { id: "get-r1-ceiling", what: `get ${human(size)}, 1 replica, vs the ceiling`, unit: "MB/s", peerWhat: "request-reply", target: atLeast(0.5) },
    { id: "put-r3-obj", what: `put ${human(size)}, 3 replicas, dfs CLI`, unit: "MB/s", peerWhat: "Object Store put", target: atLeast(2) },
    { id: "get-r3-obj", what: `get ${human(size)}, 3 replicas, dfs CLI`, unit: "MB/s", peerWhat: "Object Store get" },
    { id: "rss-client-put", what: `client peak RSS, put ${human(size)}`, unit: "MB", target: below(150, "MB") },
    { id: "rss-client-get", what: `client peak RSS, get ${human(size)}`, unit: "MB", target: below(150, "MB") },
  ],
  large: [
    { id: "rss-client-put-large", what: `client peak RSS, put ${human(largeSize)}`, unit: "MB", target: below(150, "MB") },
    { id: "rss-client-get-large", what: `client peak RSS, get ${human(largeSize)}`, unit: "MB", target: below(150, "MB") },
  ],
  small: [
    { id: "small-cli-r1", what: `${smallFiles} files of 1 KiB, dfs put -r, 1 replica`, unit: "files/s", peerWhat: `putBlob, ${SMALL_IN_FLIGHT} in flight`, target: atLeast(1 / 3, ">= 1/3x") },
    { id: "small-cli-r3", what: `${smallFiles} files of 1 KiB, dfs put -r, 3 replicas`, unit: "files/s", peerWhat: `putBlob, ${SMALL_IN_FLIGHT} in flight`, target: atLeast(1 / 6, ">= 1/6x") },
    { id: "small-lib-r1", what: `${smallFiles} files of 1 KiB, library, ${SMALL_IN_FLIGHT} in flight, 1 replica`, unit: "files/s", peerWhat: `putBlob, ${SMALL_IN_FLIGHT} in flight` },
    { id: "small-lib-r3", what: `${smallFiles} files of 1 KiB, library, ${SMALL_IN_FLIGHT} in flight, 3 replicas`, unit: "files/s", peerWhat: `putBlob, ${SMALL_IN_FLIGHT} in flight` },
    { id: "small-lib-serial", what: `${smallFiles} files of 1 KiB, library, one at a time, 1 replica`, unit: "files/s", peerWhat: "putBlob, one at a time" },
  ],
  replay: [
    { id: "log-append", what: `append ${logEvents} events, pipelined publishes`, unit: "events/s" },
    { id: "replay-cli", what: `dfs replay --check, ${logEvents} events`, unit: "events/s", peerWhat: "bare ordered consumer + decode", target: atLeast(0.8) },
    { id: "replay-master", what: `master start-up to first answer, ${logEvents} events from the first`, unit: "events/s", peerWhat: "bare ordered consumer + decode", target: atLeast(0.8) },
    { id: "snapshot-start", what: `master start-up to first answer from a snapshot, ${logEvents} events`, unit: "s", target: below(1, "s") },
    { id: "master-rss-log", what: `master RSS after replaying ${files} files`, unit: "MB" },
    { id: "master-bytes-per-file", what: `master memory per file, at ${files} files`, unit: "bytes", target: below(500, "bytes") },
  ],
  processes: [
    { id: "rss-worker", what: "worker peak RSS over the run, largest of 3", unit: "MB", target: below(300, "MB") },
    { id: "rss-master", what: "master peak RSS over the run", unit: "MB" },
  ],
};
const table = new ResultTable(Object.values(ROWS).flat());

function machine() {
  const natsVersion = execFileSync(findNatsServer(), ["--version"], { encoding: "utf8" }).trim();
  return { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? "unknown", node: process.version, natsServer: natsVersion, date: new Date().toISOString() };
}

/** A file of `bytes` random bytes, written a slice at a time. */
async function randomFile(path: string, bytes: number): Promise<void> {
  const out = createWriteStream(path);
  await pipeline(
    (async function* () {
      for (let left = bytes; left > 0; left -= 16 * MiB) yield randomBytes(Math.min(left, 16 * MiB));
    })(),
    out,
  );
}

/**
 * A user for the benchmark's own traffic (Object Store and the ceiling), signed with the
 * store's account key: on the same server and account as dfs, with no more rights than the
 * bucket and the ceiling's subject need. The store's roles stay as they are.
 */
async function benchUser(credsDir: string, cat: Catalogue): Promise<string> {
  const account = fromSeed(new TextEncoder().encode((await readFile(join(credsDir, "keys", "account.nk"), "utf8")).trim()));
  const stream = `OBJ_${OBJECT_BUCKET}`;
  const user = createUser();
  const jwt = await encodeUser(BENCH_USER, user, account, {
    pub: {
      allow: [
        "$JS.API.INFO",
        `$JS.API.STREAM.*.${stream}`,
        `$JS.API.STREAM.MSG.GET.${stream}`,
        `$JS.API.DIRECT.GET.${stream}.>`,
        `$JS.API.CONSUMER.CREATE.${stream}`,
        `$JS.API.CONSUMER.CREATE.${stream}.>`,
        `$JS.API.CONSUMER.*.${stream}.>`,
        `$JS.FC.${stream}.>`,
        `$JS.ACK.${stream}.>`,
        `$O.${OBJECT_BUCKET}.>`,
        CEILING_SUBJECT,
      ],
    },
    sub: { allow: [CEILING_SUBJECT, `${cat.inbox(BENCH_USER)}.>`] },
    resp: { max: 1, ttl: 0 },
  });
  const path = join(credsDir, `${BENCH_USER}.creds`);
  await writeFile(path, fmtCreds(jwt, user), { mode: 0o600 });
  return path;
}

/** The store's master and workers, as this process's children. */
async function rolePids(): Promise<{ master: number; workers: number[]; server: number }> {
  const all = await childrenOf(process.pid);
  const children = all.filter((c) => c.args.includes(CLI_ENTRY));
  const master = children.find((c) => c.args.includes("master"));
  if (!master) throw new Error("the store's master is not among this process's children");
  const server = all.find((c) => basename(c.args[0] ?? "") === "nats-server");
  if (!server) throw new Error("the store's nats-server is not among this process's children");
  return { master: master.pid, workers: children.filter((c) => c.args.includes("worker")).map((c) => c.pid), server: server.pid };
}

/**
 * A `dfs` command run as a user runs it, with the CPU time each process spent on it: the
 * command itself, the nats-server, the master and each worker (/proc, user + system). On a
 * machine of few cores the wall time is bounded by the sum, so this says where a put's or a
 * get's time goes.
 */
async function runWithCpu(argv: string[]): Promise<CommandRun & { cpu: string }> {
  const { master, workers, server } = await rolePids();
  const pids = [server, master, ...workers];
  const before = await Promise.all(pids.map((pid) => cpuSeconds(pid)));
  const run = await runMeasured(argv);
  const after = await Promise.all(pids.map((pid) => cpuSeconds(pid)));
  const spent = pids.map((_, i) => ((after[i] ?? 0) - (before[i] ?? 0)).toFixed(2));
  return { ...run, cpu: `client ${run.cpuSeconds.toFixed(2)}, nats-server ${spent[0]}, master ${spent[1]}, workers ${spent.slice(2).join("/")}` };
}

interface Bench {
  dir: string;
  cluster: LocalCluster;
  client: DfsClient;
  benchNc: NatsConnection;
  objects: ObjectStore;
  /** The `dfs` command as a user runs it against this store. */
  dfs: (...args: string[]) => string[];
  benchCreds: string;
  /** The master's resident memory once started, before any file: the floor for bytes per file. */
  masterStartRssMb: number;
  ceilingMbPerS?: number;
}

/** Raw request-reply with the frame size, as many in flight as a get: what no pull protocol over one connection can beat. */
async function measureCeiling(b: Bench): Promise<void> {
  const frame = frameSizeFor(b.benchNc.info?.max_payload ?? MiB);
  const responder = spawn(process.execPath, ["--import", "tsx", RESPONDER, b.cluster.url, b.benchCreds, CEILING_SUBJECT, String(frame)], { stdio: ["ignore", "pipe", "inherit"] });
  try {
    await new Promise<void>((ready, failed) => {
      responder.stdout!.once("data", () => ready());
      responder.once("exit", (code) => failed(new Error(`the ceiling's responder exited with ${code}`)));
    });
    const frames = Math.ceil(size / frame);
    const speeds: number[] = [];
    for (let run = 0; run < runs; run++) {
      const limiter = new Limiter(GET_FRAMES_IN_FLIGHT);
      const started = performance.now();
      await Promise.all(Array.from({ length: frames }, () => limiter.run(() => b.benchNc.request(CEILING_SUBJECT, new Uint8Array(32), { timeout: 10_000 }))));
      speeds.push(mbPerS(frames * frame, (performance.now() - started) / 1000));
    }
    b.ceilingMbPerS = median(speeds);
    console.log(`ceiling: ${human(frame)} replies, ${GET_FRAMES_IN_FLIGHT} in flight: ${b.ceilingMbPerS.toFixed(0)} MB/s`);
  } finally {
    await stopChild(responder);
  }
}

/** Object Store put and get of one local file, from this process: MB/s each. */
async function objectPutGet(b: Bench, local: string, name: string): Promise<{ put: number; get: number }> {
  let started = performance.now();
  await b.objects.put({ name }, Readable.toWeb(createReadStream(local)) as ReadableStream<Uint8Array>);
  const put = mbPerS(size, (performance.now() - started) / 1000);
  started = performance.now();
  const result = await b.objects.get(name);
  if (!result) throw new Error(`Object Store lost ${name}`);
  await pipeline(Readable.fromWeb(result.data as import("node:stream/web").ReadableStream<Uint8Array>), createWriteStream(join(b.dir, "object-out")));
  const failed = await result.error;
  if (failed) throw failed;
  const get = mbPerS(size, (performance.now() - started) / 1000);
  await b.objects.delete(name);
  return { put, get };
}

/** `dfs put` and `dfs get` of a fresh random file through the CLI: MB/s and the client's peak RSS. */
async function dfsPutGet(b: Bench, bytes: number, remote: string, replicas: number) {
  const local = join(b.dir, "input");
  await randomFile(local, bytes);
  const put = await runWithCpu(b.dfs("put", local, remote, "--replicas", String(replicas)));
  const get = await runWithCpu(b.dfs("get", remote, join(b.dir, "output")));
  await b.client.remove(remote);
  await rm(join(b.dir, "output"), { force: true });
  console.log(`  ${human(bytes)}, ${replicas} replica${replicas === 1 ? "" : "s"}, CPU s: put ${put.seconds.toFixed(2)} s wall (${put.cpu}); get ${get.seconds.toFixed(2)} s wall (${get.cpu})`);
  return { put: mbPerS(bytes, put.seconds), get: mbPerS(bytes, get.seconds), putRss: put.peakRssMb, getRss: get.peakRssMb };
}

async function measureBigFile(b: Bench): Promise<void> {
  const r1 = { put: [] as number[], get: [] as number[], putRss: 0, getRss: 0 };
  const r3 = { put: [] as number[], get: [] as number[] };
  const objects = { put: [] as number[], get: [] as number[] };
  for (let run = 0; run < runs; run++) {
    // A fresh file every time: nothing is deduplicated against an earlier run.
    const one = await dfsPutGet(b, size, `/bench/big-r1-${run}`, 1);
    r1.put.push(one.put);
    r1.get.push(one.get);
    r1.putRss = Math.max(r1.putRss, one.putRss);
    r1.getRss = Math.max(r1.getRss, one.getRss);
    const three = await dfsPutGet(b, size, `/bench/big-r3-${run}`, 3);
    r3.put.push(three.put);
    r3.get.push(three.get);
    await randomFile(join(b.dir, "input"), size);
    const object = await objectPutGet(b, join(b.dir, "input"), `big-${run}`);
    objects.put.push(object.put);
    objects.get.push(object.get);
    console.log(`run ${run + 1}/${runs}: put/get r1 ${one.put.toFixed(0)}/${one.get.toFixed(0)}, r3 ${three.put.toFixed(0)}/${three.get.toFixed(0)}, Object Store ${object.put.toFixed(0)}/${object.get.toFixed(0)} MB/s`);
  }
  const objectPut = median(objects.put);
  const objectGet = median(objects.get);
  table.set("put-r1-obj", median(r1.put), objectPut);
  table.set("get-r1-obj", median(r1.get), objectGet);
  table.set("put-r3-obj", median(r3.put), objectPut);
  table.set("get-r3-obj", median(r3.get), objectGet);
  for (const [id, mbs] of [["put-r1-ceiling", median(r1.put)], ["get-r1-ceiling", median(r1.get)]] as const) {
    if (b.ceilingMbPerS === undefined) table.notMeasured(id, "the ceiling was not measured (--only)");
    else table.set(id, mbs, b.ceilingMbPerS);
  }
  table.set("rss-client-put", r1.putRss);
  table.set("rss-client-get", r1.getRss);
}

async function measureLargeFile(b: Bench): Promise<void> {
  const large = await dfsPutGet(b, largeSize, "/bench/large", 1);
  console.log(`${human(largeSize)}: put ${large.put.toFixed(0)} MB/s (client ${large.putRss.toFixed(0)} MB), get ${large.get.toFixed(0)} MB/s (client ${large.getRss.toFixed(0)} MB)`);
  table.set("rss-client-put-large", large.putRss);
  table.set("rss-client-get-large", large.getRss);
  await rm(join(b.dir, "input"), { force: true });
}

/** A tree of small random files: its folder and every file's path relative to it. */
async function smallTree(root: string): Promise<string[]> {
  const paths: string[] = [];
  for (let i = 0; i < smallFiles; i++) {
    const folder = `d${Math.floor(i / SMALL_FILES_PER_DIR)}`;
    if (i % SMALL_FILES_PER_DIR === 0) await mkdir(join(root, folder), { recursive: true });
    const path = `${folder}/f${i}`;
    await writeFile(join(root, path), randomBytes(SMALL_FILE_BYTES));
    paths.push(path);
  }
  return paths;
}

/** Files a second doing `task` for every file, `inFlight` at once. */
async function filesPerSecond(paths: string[], inFlight: number, task: (path: string) => Promise<unknown>): Promise<number> {
  const limiter = new Limiter(inFlight);
  const started = performance.now();
  await Promise.all(paths.map((path) => limiter.run(() => task(path))));
  return paths.length / ((performance.now() - started) / 1000);
}

/** Whether this build's `dfs put` takes a folder (`-r`), and if not why. */
async function recursivePutMissing(b: Bench): Promise<string | undefined> {
  const help = (await runMeasured(b.dfs("put", "--help"))).stdout;
  return /(^|\s)-r\b|--recursive/.test(help) ? undefined : "this build's dfs put has no -r (a tree in one command)";
}

async function measureSmallFiles(b: Bench): Promise<void> {
  const noRecursive = await recursivePutMissing(b);
  const speeds: Record<string, number[]> = { cliR1: [], cliR3: [], libR1: [], libR3: [], serial: [], objects: [], objectsSerial: [] };
  // Both stores warmed first, unmeasured (every process's JIT, the streams' first blocks): the
  // runs measure stores that are up, as a user's are, and not which one went first.
  const warm = join(b.dir, "small-warm");
  const warmPaths = await smallTree(warm);
  await filesPerSecond(warmPaths, SMALL_IN_FLIGHT, (path) => b.client.put(join(warm, path), `/small/warm/${path}`, { replicas: 3 }));
  await filesPerSecond(warmPaths, SMALL_IN_FLIGHT, async (path) => b.objects.putBlob({ name: `small/warm/${path}` }, await readFile(join(warm, path))));
  for (let run = 0; run < runs; run++) {
    // Fresh bytes for every measurement: nothing is deduplicated against an earlier one.
    const tree = async (name: string) => {
      const root = join(b.dir, `small-${run}-${name}`);
      return { root, paths: await smallTree(root) };
    };
    if (!noRecursive) {
      for (const [key, replicas] of [["cliR1", 1], ["cliR3", 3]] as const) {
        const { root, paths } = await tree(key);
        const { seconds } = await runMeasured(b.dfs("put", "-r", root, `/small/${run}/${key}`, "--replicas", String(replicas)));
        speeds[key]!.push(paths.length / seconds);
      }
    }
    for (const [key, replicas, inFlight] of [["libR1", 1, SMALL_IN_FLIGHT], ["libR3", 3, SMALL_IN_FLIGHT], ["serial", 1, 1]] as const) {
      const { root, paths } = await tree(key);
      speeds[key]!.push(await filesPerSecond(paths, inFlight, (path) => b.client.put(join(root, path), `/small/${run}/${key}/${path}`, { replicas })));
    }
    for (const [key, inFlight] of [["objects", SMALL_IN_FLIGHT], ["objectsSerial", 1]] as const) {
      const { root, paths } = await tree(key);
      speeds[key]!.push(await filesPerSecond(paths, inFlight, async (path) => b.objects.putBlob({ name: `small/${run}/${key}/${path}` }, await readFile(join(root, path)))));
    }
    console.log(`run ${run + 1}/${runs}: small files/s ${Object.entries(speeds).map(([k, v]) => `${k} ${v.at(-1)?.toFixed(0) ?? "n/a"}`).join(", ")}`);
  }
  const objects = median(speeds.objects!);
  for (const [id, key] of [["small-cli-r1", "cliR1"], ["small-cli-r3", "cliR3"]] as const) {
    if (noRecursive) table.notMeasured(id, noRecursive);
    else table.set(id, median(speeds[key]!), objects);
  }
  table.set("small-lib-r1", median(speeds.libR1!), objects);
  table.set("small-lib-r3", median(speeds.libR3!), objects);
  table.set("small-lib-serial", median(speeds.serial!), median(speeds.objectsSerial!));
}

/**
 * A second store on the same server (prefix `benchlog`, same account, its roles signed with
 * the same key) holding a large synthetic log and no master, so nothing else appends while
 * it is written.
 */
async function logStore(b: Bench): Promise<{ cat: Catalogue; creds: (role: "master" | "client" | "auditor" | "admin") => string }> {
  const cat = catalogue(LOG_PREFIX);
  const credsDir = join(b.dir, `${LOG_PREFIX}-creds`);
  await mkdir(join(credsDir, "keys"), { recursive: true, mode: 0o700 });
  for (const key of ["operator", "system", "account"]) await copyFile(join(b.cluster.credsDir, "keys", `${key}.nk`), join(credsDir, "keys", `${key}.nk`));
  await initCredentials(credsDir, cat);
  const creds = (role: "master" | "client" | "auditor" | "admin") => credsFile(credsDir, role);
  const admin = await connectNats({ servers: b.cluster.url, creds: creds("admin"), prefix: LOG_PREFIX, name: "dfs-bench" });
  try {
    await provisionStreams(admin, cat, { replicas: 1 });
  } finally {
    await admin.close();
  }
  return { cat, creds };
}

/** Until a master of the log store answers a read at the log's last sequence; the master's child process. */
async function startLogMaster(b: Bench, cat: Catalogue, masterCreds: string, reader: NatsConnection, args: string[] = []): Promise<{ master: ChildProcess; seconds: number }> {
  const started = performance.now();
  // Workers the log names never send heartbeats here: they must not be declared lost mid-measurement.
  const master = spawn(process.execPath, [CLI_ENTRY, "master", "--nats", b.cluster.url, "--creds", masterCreds, "--prefix", LOG_PREFIX, "--worker-timeout", "3600000", ...args], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  const deadline = Date.now() + MASTER_START_LIMIT_MS;
  for (;;) {
    if (master.exitCode !== null || master.signalCode !== null) throw new Error(`the log's master exited (${master.exitCode ?? master.signalCode})`);
    try {
      await call(reader, cat.masterRpc("list"), { limit: 1, atLeastSeq: logEvents }, 60_000);
      return { master, seconds: (performance.now() - started) / 1000 };
    } catch (err) {
      const code = asDfsError(err).code;
      if (code !== ErrorCodes.UNAVAILABLE && code !== ErrorCodes.TIMEOUT) throw err;
      if (Date.now() > deadline) throw new Error(`the log's master did not answer within ${MASTER_START_LIMIT_MS / 1000} s`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

async function measureReplay(b: Bench): Promise<void> {
  const { cat, creds } = await logStore(b);
  const master = await connectNats({ servers: b.cluster.url, creds: creds("master"), prefix: LOG_PREFIX, name: "dfs-bench-log", streams: true });
  const client = await connectNats({ servers: b.cluster.url, creds: creds("client"), prefix: LOG_PREFIX, name: "dfs-bench-log" });
  try {
    let started = performance.now();
    await appendSyntheticLog(master, cat, files);
    table.set("log-append", logEvents / ((performance.now() - started) / 1000));
    const bare: number[] = [];
    for (let run = 0; run < runs; run++) {
      started = performance.now();
      const decoded = await readBare(master, cat);
      bare.push(decoded / ((performance.now() - started) / 1000));
    }
    const bareRate = median(bare);
    console.log(`log of ${logEvents} events (${files} files): bare ordered consumer + decode ${bareRate.toFixed(0)} events/s`);
    const masterStarts: number[] = [];
    const replays: number[] = [];
    for (let run = 0; run < runs; run++) {
      // From the first event: no snapshot is written (nor was one before).
      const { master: logMaster, seconds } = await startLogMaster(b, cat, creds("master"), client, ["--snapshot-every", "0"]);
      try {
        masterStarts.push(logEvents / seconds);
        const rss = (await rssMb(logMaster.pid!)) ?? 0;
        table.set("master-rss-log", rss);
        // A small log can leave the master no bigger than a fresh one (RSS moves by megabytes): then there is no figure.
        if (rss > b.masterStartRssMb) table.set("master-bytes-per-file", ((rss - b.masterStartRssMb) * 1e6) / Math.max(1, files));
        else table.notMeasured("master-bytes-per-file", `the master's RSS (${rss.toFixed(0)} MB) is not above a fresh master's (${b.masterStartRssMb.toFixed(0)} MB): too few files to tell`);
        // The audit mirror, which readers read, follows the log; replay once it holds all of it.
        for (const deadline = Date.now() + MASTER_START_LIMIT_MS; (await lastSequence(master, cat, cat.auditStream)) < logEvents; ) {
          if (Date.now() > deadline) throw new Error("the audit mirror did not catch up with the log");
          await new Promise((r) => setTimeout(r, 100));
        }
        const replay = await runMeasured([process.execPath, BIN, "replay", "--check", "--nats", b.cluster.url, "--creds", creds("auditor"), "--prefix", LOG_PREFIX]);
        replays.push(logEvents / replay.seconds);
        console.log(`run ${run + 1}/${runs}: master up in ${seconds.toFixed(1)} s (${rss.toFixed(0)} MB), dfs replay --check in ${replay.seconds.toFixed(1)} s`);
      } finally {
        await stopChild(logMaster);
      }
    }
    table.set("replay-master", median(masterStarts), bareRate);
    table.set("replay-cli", median(replays), bareRate);
    // A master writes a snapshot as it takes the lead (here at once, whatever the log's length); the next starts from it.
    const { master: snapshotter } = await startLogMaster(b, cat, creds("master"), client, ["--snapshot-every", "1"]);
    try {
      for (const deadline = Date.now() + MASTER_START_LIMIT_MS; ((await latestSnapshotHead(master, cat))?.seq ?? 0) < logEvents; ) {
        if (Date.now() > deadline) throw new Error("the log's master wrote no snapshot");
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await stopChild(snapshotter);
    }
    const fromSnapshot: number[] = [];
    for (let run = 0; run < runs; run++) {
      const { master: logMaster, seconds } = await startLogMaster(b, cat, creds("master"), client);
      await stopChild(logMaster);
      fromSnapshot.push(seconds);
      console.log(`run ${run + 1}/${runs}: master up from the snapshot in ${seconds.toFixed(2)} s`);
    }
    table.set("snapshot-start", median(fromSnapshot));
  } finally {
    await master.close();
    await client.close();
  }
}

async function measureRoles(): Promise<void> {
  const { master, workers } = await rolePids();
  const workerPeaks = await Promise.all(workers.map((pid) => peakRssMb(pid)));
  table.set("rss-worker", Math.max(...workerPeaks.map((mb) => mb ?? 0)));
  table.set("rss-master", (await peakRssMb(master)) ?? 0);
}

const MEASURE: Record<Part, (b: Bench) => Promise<void>> = {
  ceiling: measureCeiling,
  put: measureBigFile,
  large: measureLargeFile,
  small: measureSmallFiles,
  replay: measureReplay,
};

async function main(): Promise<void> {
  const info = machine();
  console.log(`machine: ${info.cpus} cores (${info.cpuModel}), node ${info.node}, ${info.natsServer}, ${info.date}`);
  console.log(`store: one nats-server, 1 master, 3 workers (processes of the compiled CLI); --size ${human(size)} --large-size ${human(largeSize)} --runs ${runs} --small ${smallFiles} --log-events ${logEvents} --only ${[...only].join(",")}`);
  const dir = await mkdtemp(join(tmpdir(), "dfs-bench-"));
  // The roles run as a user runs them: the compiled CLI, without this script's TypeScript loader.
  process.execArgv.splice(0);
  const cluster = await LocalCluster.start({ dir: join(dir, "store"), masters: 1, workers: 3, cliEntry: CLI_ENTRY, log: (line) => console.error(line) });
  let client: DfsClient | undefined;
  const failed: Part[] = [];
  let benchNc: NatsConnection | undefined;
  try {
    const cat = catalogue();
    client = await DfsClient.connect({ ...cluster.connection("client"), name: "dfs-bench" });
    const benchCreds = await benchUser(cluster.credsDir, cat);
    benchNc = await connectNats({ servers: cluster.url, creds: benchCreds, name: "dfs-bench" });
    const bench: Bench = {
      dir,
      cluster,
      client,
      benchNc,
      benchCreds,
      objects: await new Objm(benchNc).create(OBJECT_BUCKET),
      dfs: (...args) => [process.execPath, BIN, ...args, "--nats", cluster.url, "--creds", credsFile(cluster.credsDir, "client")],
      masterStartRssMb: (await rssMb((await rolePids()).master)) ?? 0,
    };
    for (const part of PARTS) {
      const ids = part in ROWS ? ROWS[part].map((r) => r.id) : [];
      if (!only.has(part)) {
        table.notMeasuredAll(ids, "not run (--only)");
        continue;
      }
      try {
        await MEASURE[part](bench);
      } catch (err) {
        console.error(`${part}: ${(err as Error).message}`);
        failed.push(part);
        table.notMeasuredAll(ids, `failed: ${(err as Error).message.slice(0, 200)}`);
      }
    }
    await measureRoles();
  } finally {
    await benchNc?.close();
    await client?.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
  console.log(`\n${table.format()}\n`);
  await writeFile(jsonPath, JSON.stringify({ machine: info, options: { size, largeSize, runs, small: smallFiles, logEvents, only: [...only] }, rows: table.all() }, null, 2) + "\n");
  console.log(`written to ${jsonPath}`);
  // A part that broke is a broken benchmark, not a slow store: say so by the exit status too.
  if (failed.length) {
    console.error(`failed: ${failed.join(", ")}`);
    process.exitCode = 1;
  }
}

await main();
