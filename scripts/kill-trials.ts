// Kill trials: kill -9 real processes in the middle of real work, from outside, and check
// what an operator would: the put completes or fails clearly and a retry completes, every
// file reads back byte-exact, `dfs replay --check` agrees, `dfs status` ends healthy.
// Usage: node --import tsx scripts/kill-trials.ts SCENARIO [SEED] [ROUNDS]; each round is a
// fresh store (real nats-server, masters, workers: test/harness.ts) and a seed of its own.
//   leader    the leading master, in the middle of a put -r of 400 small files (1 or 3 replicas)
//   masters   both masters at once, the same way, started again 0-4 s later
//   snapshot  a follower writing a snapshot of a 40,000-file table (KT_FILES), six times a store
//   worker    a worker in the middle of a put of 8 MiB in 16 pieces (2 or 3 replicas), back 0-6 s later
//   copy      a worker copying a lost worker's pieces (healing), back 0-4 s later
//   client    a put of a file, a put from stdin, and a get
//   server    the nats-server under a put -r and a big put, started again on its store 0-3 s later
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { startNatsServer } from "../client/nats-server.js";
import { appendSyntheticLog } from "./bench-log.js";
import { CLI, TestStore, runCli, seededRandom, waitFor, type Role } from "../test/harness.js";

const log = (line: string) => process.stdout.write(`${new Date().toISOString().slice(11, 23)} ${line}\n`);

async function makeTree(dir: string, files: number, maxBytes: number, random: () => number): Promise<void> {
  for (let i = 0; i < files; i++) {
    const sub = join(dir, `d${i % 7}`);
    await mkdir(sub, { recursive: true });
    const bytes = Buffer.alloc(Math.floor(random() * maxBytes));
    for (let b = 0; b < bytes.length; b++) bytes[b] = Math.floor(random() * 256);
    await writeFile(join(sub, `f${i}.bin`), bytes);
  }
}

async function filesBelow(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(join(entry.parentPath ?? (entry as unknown as { path: string }).path, entry.name));
  }
  return out.sort();
}

async function sameTree(a: string, b: string): Promise<string[]> {
  const problems: string[] = [];
  const left = (await filesBelow(a)).map((f) => relative(a, f));
  const right = new Set((await filesBelow(b)).map((f) => relative(b, f)));
  for (const f of left) {
    if (!right.has(f)) problems.push(`missing ${f}`);
    else if (!(await readFile(join(a, f))).equals(await readFile(join(b, f)))) problems.push(`differs ${f}`);
  }
  return problems;
}

interface Running {
  child: ChildProcess;
  /** Files it said it stored so far (`--verbose`). */
  stored(): number;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

function startCli(args: string[]): Running {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { child, done, stored: () => stdout.split("\n").filter((l) => l.startsWith("stored /")).length };
}

/** Until a put -r has stored `files` files (or ended). */
async function afterStored(put: Running, files: number): Promise<void> {
  await waitFor(`${files} files stored`, () => put.stored() >= files || put.child.exitCode !== null, 120_000, 10);
}

const leadingNow = (role: Role) => {
  const out = role.output();
  return out.lastIndexOf("leading (master") > out.lastIndexOf("following");
};
const liveMasters = (store: TestStore) => store.roles.filter((r) => r.name === "master" && r.process.exitCode === null && r.process.signalCode === null);

async function healthy(store: TestStore): Promise<string> {
  const status = await runCli(["status", "--json", ...store.flags], { timeoutMs: 20_000 });
  if (status.code !== 0) return `status exit ${status.code}: ${status.stderr.trim()}`;
  const report = JSON.parse(status.stdout) as { pieces: { total: number; healthy: number }; uploadsPending: number; copiesInFlight: number; dropsOwed: number };
  const ok = report.pieces.healthy === report.pieces.total && report.uploadsPending === 0 && report.copiesInFlight === 0 && report.dropsOwed === 0;
  return ok ? "" : JSON.stringify({ pieces: report.pieces, uploadsPending: report.uploadsPending, copies: report.copiesInFlight, drops: report.dropsOwed });
}

async function replayCheck(store: TestStore): Promise<string> {
  const r = await runCli(["replay", "--check", ...store.flags], { timeoutMs: 60_000 });
  return r.code === 0 ? "" : `replay --check exit ${r.code}: ${r.stdout.split("\n").slice(-3).join(" | ")} ${r.stderr.trim()}`;
}

/** Scenario: kill -9 of the leader master in the middle of a put -r of many small files. */
async function leaderMidPut(seed: number, opts: { everyMaster?: boolean } = {}): Promise<string[]> {
  const random = seededRandom(seed);
  const replicas = seed % 2 === 0 ? 1 : 3;
  const store = await TestStore.start(`kt-leader-${seed}`);
  const findings: string[] = [];
  try {
    store.startMaster(3_000);
    store.startMaster(3_000);
    for (const id of ["w1", "w2", "w3"]) await store.startWorker(id);
    await store.waitForLiveWorkers(3);
    const tree = join(store.dir, "tree");
    await makeTree(tree, 400, 3000, random);
    const storedBefore = Math.floor(random() * 300);
    await waitFor("a leader", () => liveMasters(store).some(leadingNow), 10_000);
    const put = startCli(["put", "-r", tree, "/t", "--replicas", String(replicas), "--verbose", ...store.flags]);
    await afterStored(put, storedBefore);
    const victims = opts.everyMaster ? liveMasters(store) : [liveMasters(store).find(leadingNow)!];
    await Promise.all(victims.map((m) => m.kill()));
    const downMs = opts.everyMaster ? Math.floor(random() * 4000) : 0;
    await new Promise((r) => setTimeout(r, downMs));
    log(`seed ${seed}: replicas ${replicas}, killed ${victims.length} master(s) after ${storedBefore} files stored (put still running: ${put.child.exitCode === null}), down ${downMs} ms`);
    for (const _ of victims) store.startMaster(3_000);
    const first = await Promise.race([put.done, new Promise<null>((r) => setTimeout(() => r(null), 120_000))]);
    if (!first) {
      put.child.kill("SIGKILL");
      findings.push("put -r did not end within 120 s");
      return findings;
    }
    const storedFirst = first.stdout.split("\n").filter((l) => l.startsWith("stored /")).length;
    log(`seed ${seed}: put -r exit ${first.code}; ${storedFirst} lines stored; stderr: ${first.stderr.trim().split("\n").slice(-2).join(" | ").slice(0, 300)}`);
    if (first.code !== 0) {
      const retry = await runCli(["put", "-r", tree, "/t", "--replicas", String(replicas), ...store.flags], { timeoutMs: 120_000 });
      log(`seed ${seed}: retry exit ${retry.code} ${retry.stdout.trim()} ${retry.stderr.trim().slice(0, 300)}`);
      if (retry.code !== 0) findings.push(`retry failed: ${retry.stderr.trim().slice(0, 300)}`);
    }
    const back = join(store.dir, "back");
    const get = await runCli(["get", "-r", "/t", back, ...store.flags], { timeoutMs: 120_000 });
    if (get.code !== 0) findings.push(`get -r exit ${get.code}: ${get.stderr.trim().slice(0, 300)}`);
    else findings.push(...(await sameTree(tree, join(back, "tree"))));
    findings.push(await replayCheck(store));
    const unhealthy = await waitFor("a healthy status", async () => ((await healthy(store)) === "" ? "ok" : false), 30_000).then(
      () => "",
      async () => `status not healthy: ${await healthy(store)}`,
    );
    findings.push(unhealthy);
  } finally {
    await store.stop();
  }
  return findings.filter(Boolean);
}

/**
 * Scenario: kill -9 of a follower master while it writes a snapshot of a large table (a
 * synthetic log), then start it again: it must start from a whole snapshot or fold the log.
 * One store (the synthetic log takes a while to write), six kills at seeded moments of the write.
 */
async function followerMidSnapshot(seed: number): Promise<string[]> {
  const rounds = 6;
  const random = seededRandom(seed);
  const store = await TestStore.start(`kt-snap-${seed}`);
  const findings: string[] = [];
  try {
    const files = Number(process.env.KT_FILES ?? 40_000);
    await appendSyntheticLog(await store.connect("master", undefined, { streams: true }), store.cat, files);
    const leader = store.startMaster(600_000, ["--snapshot-every", "0"]);
    await waitFor("a leader", () => leadingNow(leader), 60_000);
    const first = store.startMaster(600_000, ["--snapshot-every", "1000"]);
    await waitFor("its fold", () => /replayed \d+ events/.test(first.output()), 60_000, 20);
    await runCli(["retention", "--keep-versions", "1", ...store.flags], { timeoutMs: 30_000 });
    await waitFor("the first snapshot", () => /snapshot at sequence (\d+)/.exec(first.output()), 120_000, 100);
    const writeMs = Number(/, (\d+) ms/.exec(first.output())![1]);
    log(`seed ${seed}: ${first.output().split("\n").filter((l) => /snapshot at|replayed/.test(l)).join(" | ")}`);
    await first.kill();
    for (let round = 0; round < rounds; round++) {
      const follower = store.startMaster(600_000, ["--snapshot-every", "1"]);
      await waitFor("its fold", () => /replayed \d+ events/.test(follower.output()), 60_000, 20);
      // One event (the policy set again) makes a snapshot due at once.
      const set = await runCli(["retention", "--keep-versions", String(round + 2), ...store.flags], { timeoutMs: 30_000 });
      if (set.code !== 0) findings.push(`retention exit ${set.code}: ${set.stderr.trim()}`);
      const delay = Math.floor(random() * writeMs * 1.5);
      await new Promise((r) => setTimeout(r, delay));
      await follower.kill();
      const said = /master: (no )?snapshot at sequence.*/.exec(follower.output())?.[0] ?? "nothing";
      const again = store.startMaster(600_000, ["--snapshot-every", "0"]);
      await waitFor("the restarted follower's fold", () => /replayed \d+ events/.test(again.output()), 120_000, 100);
      const started = again.output().split("\n").filter((l) => /snapshot/.test(l)).join(" | ");
      log(`seed ${seed} round ${round}: killed ${delay} ms after the event, write about ${writeMs} ms; it had said: ${said}; restarted: ${started}`);
      if (/not starting from/.test(started)) findings.push(`round ${round}: ${started}`);
      const check = await replayCheck(store);
      if (check) findings.push(`round ${round}: ${check}`);
      await again.stop();
    }
  } finally {
    await store.stop();
  }
  return findings;
}

/** What every worker holds (its own count) against what the table expects it to keep: strays show as a difference. */
async function strayPieces(store: TestStore): Promise<string> {
  const workers = await runCli(["workers", "--json", ...store.flags], { timeoutMs: 20_000 });
  const status = await runCli(["status", "--json", ...store.flags], { timeoutMs: 20_000 });
  if (workers.code !== 0 || status.code !== 0) return `workers/status exit ${workers.code}/${status.code}`;
  const held = new Map((JSON.parse(workers.stdout) as { workerId: string; live: boolean; status?: { pieces: number } }[]).map((w) => [w.workerId, w.status?.pieces]));
  const expected = (JSON.parse(status.stdout) as { workers: { workerId: string; live: boolean; pieces: number }[] }).workers.filter((w) => w.live);
  return expected.filter((w) => held.get(w.workerId) !== w.pieces).map((w) => `${w.workerId} holds ${held.get(w.workerId)}, expected ${w.pieces}`).join(", ");
}

async function settled(store: TestStore, findings: string[]): Promise<void> {
  await waitFor("a healthy status", async () => ((await healthy(store)) === "" ? "ok" : false), 60_000, 500).catch(async () => findings.push(`status not healthy: ${await healthy(store)}`));
  await waitFor("no stray pieces", async () => ((await strayPieces(store)) === "" ? "ok" : false), 30_000, 500).catch(async () => findings.push(`strays: ${await strayPieces(store)}`));
  const check = await replayCheck(store);
  if (check) findings.push(check);
}

async function readsBack(store: TestStore, remote: string, bytes: Buffer, findings: string[]): Promise<void> {
  const out = join(store.dir, `back-${Math.random().toString(36).slice(2)}`);
  const get = await runCli(["get", remote, out, ...store.flags], { timeoutMs: 60_000 });
  if (get.code !== 0) findings.push(`get ${remote} exit ${get.code}: ${get.stderr.trim()}`);
  else if (!(await readFile(out)).equals(bytes)) findings.push(`${remote} reads back different bytes`);
}

function randomBytesSeeded(n: number, random: () => number): Buffer {
  const bytes = Buffer.alloc(n);
  for (let b = 0; b < n; b += 4) bytes.writeUInt32LE(Math.floor(random() * 2 ** 32), b);
  return bytes;
}

/** Scenario: kill -9 of a worker in the middle of a put of a big file, started again on the same data folder. */
async function workerMidPut(seed: number): Promise<string[]> {
  const random = seededRandom(seed);
  const replicas = 2 + (seed % 2);
  const store = await TestStore.start(`kt-worker-${seed}`);
  const findings: string[] = [];
  try {
    store.startMaster(3_000);
    const ids = ["w1", "w2", "w3", "w4"];
    for (const id of ids) await store.startWorker(id);
    await store.waitForLiveWorkers(4);
    const bytes = randomBytesSeeded(8 * 1024 * 1024, random);
    const local = join(store.dir, "big");
    await writeFile(local, bytes);
    const victim = ids[Math.floor(random() * ids.length)]!;
    const delay = Math.floor(random() * 1500);
    const downMs = Math.floor(random() * 6000);
    const put = startCli(["put", local, "/big", "--replicas", String(replicas), "--piece-size", "512KiB", ...store.flags]);
    await new Promise((r) => setTimeout(r, delay));
    const running = put.child.exitCode === null;
    await store.role(`worker ${victim}`).kill();
    await new Promise((r) => setTimeout(r, downMs));
    await store.startWorker(victim);
    const done = await put.done;
    log(`seed ${seed}: replicas ${replicas}, killed ${victim} ${delay} ms into the put (running: ${running}), down ${downMs} ms; put exit ${done.code}: ${(done.stdout + done.stderr).trim().slice(0, 200)}`);
    if (done.code !== 0) {
      const retry = await runCli(["put", local, "/big", "--replicas", String(replicas), "--piece-size", "512KiB", ...store.flags], { timeoutMs: 120_000 });
      if (retry.code !== 0) findings.push(`retry exit ${retry.code}: ${retry.stderr.trim()}`);
    }
    await readsBack(store, "/big", bytes, findings);
    await settled(store, findings);
    await readsBack(store, "/big", bytes, findings);
  } finally {
    await store.stop();
  }
  return findings;
}

/** Scenario: a worker lost, and the worker copying its pieces killed -9 mid-copy and started again. */
async function workerMidCopy(seed: number): Promise<string[]> {
  const random = seededRandom(seed);
  const store = await TestStore.start(`kt-copy-${seed}`);
  const findings: string[] = [];
  try {
    store.startMaster(2_000);
    const ids = ["w1", "w2", "w3"];
    for (const id of ids) await store.startWorker(id);
    await store.waitForLiveWorkers(3);
    const files: [string, Buffer][] = [];
    for (let i = 0; i < 3; i++) {
      const bytes = randomBytesSeeded(6 * 1024 * 1024 + i * 4096, random);
      const local = join(store.dir, `f${i}`);
      await writeFile(local, bytes);
      const put = await runCli(["put", local, `/f${i}`, "--replicas", "2", "--piece-size", "256KiB", ...store.flags], { timeoutMs: 60_000 });
      if (put.code !== 0) findings.push(`put f${i}: ${put.stderr.trim()}`);
      files.push([`/f${i}`, bytes]);
    }
    await store.role("worker w1").kill();
    const target = store.role("worker w3");
    await waitFor("w1 counted lost", () => /worker w1 lost/.test(store.role("master").output()), 30_000, 20);
    const delay = Math.floor(random() * 800);
    await new Promise((r) => setTimeout(r, delay));
    await target.kill();
    const downMs = Math.floor(random() * 4000);
    await new Promise((r) => setTimeout(r, downMs));
    await store.startWorker("w3");
    log(`seed ${seed}: w1 killed, w3 killed ${delay} ms after w1 was counted lost, down ${downMs} ms; master said: ${store.role("master").output().split("\n").filter((l) => /healing|w3/.test(l)).join(" | ").slice(0, 400)}`);
    await settled(store, findings);
    for (const [remote, bytes] of files) await readsBack(store, remote, bytes, findings);
    await store.startWorker("w1");
    await settled(store, findings);
    for (const [remote, bytes] of files) await readsBack(store, remote, bytes, findings);
  } finally {
    await store.stop();
  }
  return findings;
}

/** Scenario: kill -9 of the client in the middle of a put (a file, or stdin) and of a get. */
async function clientKilled(seed: number): Promise<string[]> {
  const random = seededRandom(seed);
  const store = await TestStore.start(`kt-client-${seed}`);
  const findings: string[] = [];
  try {
    store.startMaster(3_000, ["--stream-timeout", "5000"]);
    for (const id of ["w1", "w2", "w3"]) await store.startWorker(id);
    await store.waitForLiveWorkers(3);
    const bytes = randomBytesSeeded(12 * 1024 * 1024, random);
    const local = join(store.dir, "big");
    await writeFile(local, bytes);
    const outcomes: string[] = [];
    for (const [remote, args, stdin] of [
      ["/file", ["put", local, "/file", "--replicas", "2", "--piece-size", "256KiB"], false],
      ["/piped", ["put", "-", "/piped", "--replicas", "2", "--piece-size", "256KiB"], true],
    ] as const) {
      const child = spawn(process.execPath, [CLI, ...args, ...store.flags], { stdio: [stdin ? "pipe" : "ignore", "pipe", "pipe"] });
      if (stdin) {
        // Feed a first part, then the rest slowly: killed mid-stream.
        child.stdin!.write(bytes.subarray(0, 4 * 1024 * 1024));
        child.stdin!.on("error", () => undefined);
      }
      const exited = new Promise((r) => child.once("exit", r));
      const delay = Math.floor(random() * 1500);
      await new Promise((r) => setTimeout(r, delay));
      child.kill("SIGKILL");
      await exited;
      const history = await waitFor(`${remote}'s version settled`, async () => {
        const h = await runCli(["history", remote, "--json", ...store.flags], { timeoutMs: 20_000 });
        if (h.code === 3) return "never created";
        const versions = JSON.parse(h.stdout) as { status: string; reason?: string }[];
        return versions.every((v) => v.status !== "pending") && versions.map((v) => `${v.status}${v.reason ? ` (${v.reason})` : ""}`).join(",");
      }, 60_000, 500).catch((err) => `${err}`);
      const ls = await runCli(["stat", remote, ...store.flags], { timeoutMs: 20_000 });
      outcomes.push(`${remote} killed after ${delay} ms: ${history}; stat exit ${ls.code}`);
      if (/timed out/.test(history)) findings.push(`${remote}: ${history}`);
      if (ls.code === 0 && !/committed/.test(history)) findings.push(`${remote} visible but not committed`);
      if (ls.code === 0) await readsBack(store, remote, stdin ? bytes.subarray(0, 4 * 1024 * 1024) : bytes, findings);
    }
    // A get killed mid-way: the local name never holds a partial file.
    const put = await runCli(["put", local, "/whole", "--replicas", "2", "--piece-size", "256KiB", ...store.flags], { timeoutMs: 60_000 });
    if (put.code !== 0) findings.push(`put /whole: ${put.stderr.trim()}`);
    const dir = join(store.dir, "gets");
    await mkdir(dir, { recursive: true });
    const get = spawn(process.execPath, [CLI, "get", "/whole", join(dir, "whole"), ...store.flags], { stdio: "ignore" });
    const exited = new Promise((r) => get.once("exit", r));
    const delay = Math.floor(random() * 600);
    await new Promise((r) => setTimeout(r, delay));
    get.kill("SIGKILL");
    await exited;
    const left = await readdir(dir);
    outcomes.push(`get killed after ${delay} ms left: ${left.join(", ") || "nothing"}`);
    if (left.includes("whole") && !(await readFile(join(dir, "whole"))).equals(bytes)) findings.push("a partial file under the local name");
    log(`seed ${seed}: ${outcomes.join("; ")}`);
    await settled(store, findings);
  } finally {
    await store.stop();
  }
  return findings;
}

/** Scenario: the nats-server killed -9 under load (a put -r of small files and a big put) and started again on the same store. */
async function serverKilled(seed: number): Promise<string[]> {
  const random = seededRandom(seed);
  const store = await TestStore.start(`kt-server-${seed}`);
  const findings: string[] = [];
  try {
    store.startMaster(5_000);
    store.startMaster(5_000);
    for (const id of ["w1", "w2", "w3"]) await store.startWorker(id);
    await store.waitForLiveWorkers(3);
    const tree = join(store.dir, "tree");
    await makeTree(tree, 300, 3000, random);
    const bytes = randomBytesSeeded(8 * 1024 * 1024, random);
    const big = join(store.dir, "big");
    await writeFile(big, bytes);
    const many = startCli(["put", "-r", tree, "/t", "--replicas", "2", "--verbose", ...store.flags]);
    const one = startCli(["put", big, "/big", "--replicas", "2", "--piece-size", "512KiB", ...store.flags]);
    const storedBefore = Math.floor(random() * 250);
    const downMs = Math.floor(random() * 3000);
    await afterStored(many, storedBefore);
    await store.server.stop("SIGKILL");
    await new Promise((r) => setTimeout(r, downMs));
    store.server = await startNatsServer({ port: store.server.port, storeDir: join(store.dir, "nats"), config: join(store.dir, "nats.conf") });
    const [a, b] = await Promise.all([many.done, one.done]);
    log(`seed ${seed}: server killed after ${storedBefore} files stored, down ${downMs} ms; put -r exit ${a.code} ${a.stderr.trim().split("\n").slice(-2).join(" | ").slice(0, 300)}; put exit ${b.code} ${b.stderr.trim().slice(0, 200)}`);
    if (a.code !== 0) {
      const retry = await runCli(["put", "-r", tree, "/t", "--replicas", "2", ...store.flags], { timeoutMs: 120_000 });
      if (retry.code !== 0) findings.push(`put -r retry exit ${retry.code}: ${retry.stderr.trim().slice(0, 300)}`);
    }
    if (b.code !== 0) {
      const retry = await runCli(["put", big, "/big", "--replicas", "2", "--piece-size", "512KiB", ...store.flags], { timeoutMs: 120_000 });
      if (retry.code !== 0) findings.push(`put retry exit ${retry.code}: ${retry.stderr.trim().slice(0, 300)}`);
    }
    const back = join(store.dir, "back");
    const get = await runCli(["get", "-r", "/t", back, ...store.flags], { timeoutMs: 120_000 });
    if (get.code !== 0) findings.push(`get -r exit ${get.code}: ${get.stderr.trim().slice(0, 300)}`);
    else findings.push(...(await sameTree(tree, join(back, "tree"))));
    await readsBack(store, "/big", bytes, findings);
    await settled(store, findings);
  } finally {
    await store.stop();
  }
  return findings;
}

const scenarios: Record<string, (seed: number) => Promise<string[]>> = {
  leader: (seed) => leaderMidPut(seed),
  masters: (seed) => leaderMidPut(seed, { everyMaster: true }),
  snapshot: followerMidSnapshot,
  worker: workerMidPut,
  copy: workerMidCopy,
  client: clientKilled,
  server: serverKilled,
};

const [name = "leader", seedArg = "1", roundsArg = "1"] = process.argv.slice(2);
const scenario = scenarios[name];
if (!scenario) throw new Error(`no scenario ${name}: ${Object.keys(scenarios).join(", ")}`);
let failed = 0;
for (let round = 0; round < Number(roundsArg); round++) {
  const seed = Number(seedArg) + round;
  const findings = await scenario(seed);
  if (findings.length) failed++;
  log(`seed ${seed}: ${findings.length ? `FOUND ${findings.join("; ")}` : "ok"}`);
}
log(`${name}: ${failed} of ${roundsArg} rounds with findings`);
process.exit(failed ? 1 : 0);
