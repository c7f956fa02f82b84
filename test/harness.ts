// Fixtures for tests that talk: a real nats-server on a free port with its own store
// directory, masters and workers as real processes of the compiled CLI, and bounded waits.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { suite } from "uvu";
import { DfsClient } from "../client/client.js";
import { startNatsServer, type RunningNatsServer } from "../client/nats-server.js";
import { stopChild } from "../client/stop-child.js";
import type { NatsConnection } from "@nats-io/transport-node";
import { Level } from "level";
import { catalogue, type Catalogue } from "../streams/catalogue.js";
import type { RoleName } from "../streams/permissions.js";
import { provisionStreams, provisionWorkers } from "../streams/provision.js";
import { connectNats } from "../src/connection.js";
import { SERVER_AUTH_FILE, addCredentials, credsFile, initCredentials } from "../src/credentials.js";
import { uploadIdOf } from "../src/protocol.js";

export const CLI = fileURLToPath(new URL("../dist/client/cli.js", import.meta.url));

/**
 * An upload's key and id as a client draws them (the id is the key's digest), made from `name`
 * (at most 43 letters, digits, _ or -) so a test can name the same upload again.
 */
export function keyedUpload(name: string): { uploadKey: string; uploadId: string } {
  const uploadKey = name.padEnd(43, "k");
  return { uploadKey, uploadId: uploadIdOf(uploadKey) };
}

export async function tempDir(name: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `dfs-test-${name}-`));
}

/** Poll `check` until it returns a truthy value; fail after `timeoutMs`. */
/** mulberry32: a tiny seeded PRNG, so a failing run can be replayed with its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export async function waitFor<T>(what: string, check: () => Promise<T> | T, timeoutMs = 15_000, everyMs = 50): Promise<Exclude<T, false | null | undefined>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as Exclude<T, false | null | undefined>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface Role {
  name: string;
  process: ChildProcess;
  output: () => string;
  /** SIGTERM and wait (SIGKILL after 5 s). */
  stop(): Promise<void>;
  /** SIGKILL and wait: a crash. */
  kill(): Promise<void>;
}

function spawnRole(name: string, args: string[]): Role {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout!.on("data", (c: Buffer) => (output += c.toString()));
  child.stderr!.on("data", (c: Buffer) => (output += c.toString()));
  return { name, process: child, output: () => output, stop: () => stopChild(child), kill: () => stopChild(child, { signal: "SIGKILL" }) };
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export interface ProcessInfo {
  pid: number;
  /** Its command line: the program, then its arguments. */
  args: string[];
}

/** The processes whose parent is `pid` (zombies left out), from /proc. */
export async function childrenOf(pid: number): Promise<ProcessInfo[]> {
  const out: ProcessInfo[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
    const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(ppid) !== pid || state === "Z") continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    out.push({ pid: Number(entry), args: cmdline.split("\0").filter(Boolean) });
  }
  return out;
}

/** `dfs up` as a user runs it, a real process, once it has said it is up. */
export interface RunningUp {
  process: ChildProcess;
  url: string;
  /** What it printed so far. */
  stdout(): string;
  stderr(): string;
  /** Its exit code (null when a signal ended it). */
  exited: Promise<number | null>;
  /** SIGKILL it if it still runs (for `finally`). */
  kill(): Promise<void>;
}

/** Start `dfs up ARGS` and wait until it says it is up (or fail with what it said). */
export async function startUp(args: string[], timeoutMs = 30_000): Promise<RunningUp> {
  const up = spawn(process.execPath, [CLI, "up", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  up.stdout!.on("data", (c: Buffer) => (stdout += c.toString()));
  up.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => up.once("exit", (code) => resolve(code)));
  const running: RunningUp = { process: up, url: "", stdout: () => stdout, stderr: () => stderr, exited, kill: () => stopChild(up, { signal: "SIGKILL" }) };
  try {
    running.url = await Promise.race([
      waitFor("dfs up to say it is up", () => /dfs is up: (\S+)/.exec(stdout)?.[1], timeoutMs),
      exited.then((code) => Promise.reject(new Error(`dfs up exited with code ${code}: ${stderr}`))),
    ]);
  } catch (err) {
    await running.kill();
    throw err;
  }
  return running;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the dfs CLI to completion (bounded). */
export function runCli(args: string[], opts: { env?: Record<string, string>; stdin?: Buffer; timeoutMs?: number; cwd?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...opts.env }, cwd: opts.cwd, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => err.push(c));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`dfs ${args.join(" ")} ran past ${opts.timeoutMs ?? 60_000} ms`));
    }, opts.timeoutMs ?? 60_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
    child.stdin.end(opts.stdin);
  });
}

/**
 * A running store: one nats-server with authentication on (operator mode, as `dfs up` runs
 * it), masters and workers, all real processes, each with its own role's credentials.
 */
export class TestStore {
  readonly roles: Role[] = [];
  private clients: DfsClient[] = [];
  private connections: NatsConnection[] = [];
  private constructor(public server: RunningNatsServer, readonly dir: string, readonly prefix: string) {}

  static async start(name: string, opts: { prefix?: string } = {}): Promise<TestStore> {
    const dir = await tempDir(name);
    const prefix = opts.prefix ?? "dfs";
    await initCredentials(join(dir, "creds"), catalogue(prefix));
    await writeFile(join(dir, "nats.conf"), `include ./creds/${SERVER_AUTH_FILE}\n`);
    const server = await startNatsServer({ storeDir: join(dir, "nats"), config: join(dir, "nats.conf") });
    const store = new TestStore(server, dir, prefix);
    const admin = await store.connect("admin");
    await provisionStreams(admin, store.cat);
    return store;
  }

  get credsDir(): string {
    return join(this.dir, "creds");
  }

  /** The credentials file of a role, signed now if this store has none yet (a new worker). */
  async creds(role: RoleName, id?: string): Promise<string> {
    const file = credsFile(this.credsDir, role, id);
    return existsSync(file) ? file : addCredentials(this.credsDir, this.cat, role, id);
  }

  /** A raw NATS connection as `role` (as its JetStream user with `streams`), closed when the store stops. */
  async connect(role: RoleName, id?: string, opts: { streams?: boolean } = {}): Promise<NatsConnection> {
    const nc = await connectNats({ servers: this.url, creds: await this.creds(role, id), prefix: this.prefix, name: `dfs-test-${role}`, streams: opts.streams });
    this.connections.push(nc);
    return nc;
  }

  /** A store with a master and these workers running, every worker live. */
  static async running(name: string, opts: { workers: string[]; workerTimeoutMs?: number }): Promise<TestStore> {
    const store = await TestStore.start(name);
    store.startMaster(opts.workerTimeoutMs);
    for (const id of opts.workers) await store.startWorker(id);
    await store.waitForLiveWorkers(opts.workers.length);
    return store;
  }

  /** The running role of that name ("master", "worker w1"), the latest one started. */
  role(name: string): Role {
    const role = this.roles.filter((r) => r.name === name).at(-1);
    if (!role) throw new Error(`no role ${name}`);
    return role;
  }

  get cat(): Catalogue {
    return catalogue(this.prefix);
  }

  /** Stop the nats-server (SIGTERM, or `signal`: SIGKILL for a crash) and start it again on the same port with the same store. */
  async restartServer(signal?: NodeJS.Signals): Promise<void> {
    await this.server.stop(signal);
    this.server = await startNatsServer({ port: this.server.port, storeDir: join(this.dir, "nats"), config: join(this.dir, "nats.conf") });
  }

  get url(): string {
    return this.server.url;
  }

  /** Common flags for any CLI run against this store: each command finds its role's credentials. */
  get flags(): string[] {
    return ["--nats", this.url, "--prefix", this.prefix, "--creds-dir", this.credsDir];
  }

  startMaster(workerTimeoutMs = 3_000, args: string[] = []): Role {
    const role = spawnRole("master", ["master", ...this.flags, "--worker-timeout", String(workerTimeoutMs), ...args]);
    this.roles.push(role);
    return role;
  }

  /** A worker process; its background scrub is off unless `args` turn it on (`--scrub-rate`). */
  /** What a worker needs before it starts: its credentials, and its assignment consumer (the admin's job). */
  async prepareWorker(id: string): Promise<void> {
    await this.creds("worker", id);
    await provisionWorkers(await this.connect("admin"), this.cat, [id]);
  }

  async startWorker(id: string, args: string[] = []): Promise<Role> {
    await this.prepareWorker(id);
    const role = spawnRole(`worker ${id}`, ["worker", ...this.flags, "--id", id, "--data", join(this.dir, "workers", id), "--heartbeat", "250", "--scrub-rate", "0", ...args]);
    this.roles.push(role);
    return role;
  }

  /** A library client as `role`: the client by default (`name`: the client user `client-<name>`), the auditor to read the log. */
  async client(role: "client" | "auditor" | "admin" = "client", name?: string): Promise<DfsClient> {
    const client = await DfsClient.connect({ servers: this.url, prefix: this.prefix, creds: await this.creds(role, name), name: `dfs-test-${role}` });
    this.clients.push(client);
    return client;
  }

  /**
   * Rot: stop a worker and flip a byte of one chunk of a piece (the first unless told) in its
   * LevelDB (the store's own key layout: a piece of one chunk in the data folder's database, a
   * longer one's chunks in `chunks/`). The caller starts it again as it needs.
   */
  async rot(workerId: string, sha256: string, chunkIndex = 0): Promise<void> {
    await this.role(`worker ${workerId}`).stop();
    const key = `c!${sha256}!${String(chunkIndex).padStart(6, "0")}`;
    const data = join(this.dir, "workers", workerId);
    for (const folder of [data, join(data, "chunks")]) {
      const db = new Level<string, Uint8Array>(folder, { keyEncoding: "utf8", valueEncoding: "view" });
      try {
        const chunk = await db.get(key);
        if (!chunk) continue;
        const rotten = Buffer.from(chunk);
        rotten[0] = rotten[0]! ^ 0xff;
        return await db.put(key, rotten);
      } finally {
        await db.close();
      }
    }
    throw new Error(`worker ${workerId} does not hold ${sha256}`);
  }

  /** The table rebuilt from the log, as the auditor reads it. */
  async replay(untilSeq?: number) {
    return (await this.client("auditor")).replay(untilSeq);
  }

  /** Until a master answers and counts `n` live workers. */
  async waitForLiveWorkers(n: number, timeoutMs = 20_000): Promise<void> {
    const client = await this.client("auditor");
    await waitFor(
      `${n} live workers`,
      async () => (await client.masterState()).workers.filter((w) => w.live).length === n,
      timeoutMs,
    );
  }

  async stop(): Promise<void> {
    for (const client of this.clients) await client.close().catch(() => undefined);
    for (const nc of this.connections) await nc.close().catch(() => undefined);
    await Promise.all(this.roles.map((r) => r.stop()));
    await this.server.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** The DfsError code `run` fails with; fails the test if it succeeds. */
export async function errorCode(run: () => Promise<unknown>): Promise<string> {
  try {
    await run();
  } catch (err) {
    return (err as { code?: string }).code ?? `uncoded: ${String(err)}`;
  }
  throw new Error("expected an error, got success");
}

/** A uvu suite whose context holds a running store (master and workers), stopped after it. */
export function storeSuite(name: string, opts: { workers: string[]; workerTimeoutMs?: number }) {
  const test = suite<{ store: TestStore }>(name, {} as { store: TestStore });
  test.before(async (ctx) => {
    ctx.store = await TestStore.running(name.replaceAll(" ", "-"), opts);
  });
  test.after(async (ctx) => {
    await ctx.store?.stop();
  });
  return test;
}
