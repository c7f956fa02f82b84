// `dfs up`: a whole store on one machine. A nats-server child with JetStream, one master and
// N workers, each its own process, everything under one directory, all stopped together.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { DfsError, ErrorCodes } from "../src/errors.js";
import { DfsClient } from "./client.js";
import { startNatsServer, type RunningNatsServer } from "./nats-server.js";

export interface LocalClusterOptions {
  dir: string;
  port?: number;
  workers?: number;
  prefix?: string;
  /** The dfs CLI script the master and workers run as (this process's own, normally). */
  cliEntry: string;
  log?: (line: string) => void;
}

interface Child {
  name: string;
  process: ChildProcess;
  exited: Promise<void>;
}

export class LocalCluster {
  private children: Child[] = [];
  private constructor(readonly server: RunningNatsServer, readonly dir: string, private readonly opts: LocalClusterOptions) {}

  get url(): string {
    return this.server.url;
  }

  static async start(opts: LocalClusterOptions): Promise<LocalCluster> {
    const dir = resolve(opts.dir);
    await mkdir(dir, { recursive: true });
    const server = await startNatsServer({ port: opts.port, storeDir: join(dir, "nats"), log: (l) => opts.log?.(`nats-server: ${l}`) });
    const cluster = new LocalCluster(server, dir, opts);
    try {
      cluster.spawnRole("master", ["master"]);
      const workers = opts.workers ?? 3;
      for (let i = 1; i <= workers; i++) {
        const id = `w${i}`;
        cluster.spawnRole(`worker ${id}`, ["worker", "--id", id, "--data", join(dir, "workers", id)]);
      }
      await cluster.waitUntilReady(workers);
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  private spawnRole(name: string, args: string[]): void {
    const prefixArgs = this.opts.prefix ? ["--prefix", this.opts.prefix] : [];
    const child = spawn(process.execPath, [...process.execArgv, this.opts.cliEntry, ...args, "--nats", this.url, ...prefixArgs], {
      stdio: ["ignore", "inherit", "pipe"],
    });
    child.stderr!.on("data", (chunk: Buffer) => {
      for (const line of chunk.toString().split("\n")) if (line.trim()) this.opts.log?.(line);
    });
    const exited = new Promise<void>((done) => child.once("exit", () => done()));
    this.children.push({ name, process: child, exited });
  }

  /** Until the master answers and has recorded every worker as joined. */
  private async waitUntilReady(workers: number, timeoutMs = 30_000): Promise<void> {
    const client = await DfsClient.connect({ servers: this.url, prefix: this.opts.prefix, name: "dfs-up" });
    try {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        for (const child of this.children) {
          if (child.process.exitCode !== null) throw new DfsError(ErrorCodes.UNAVAILABLE, `${child.name} exited with code ${child.process.exitCode}`);
        }
        const live = await client
          .masterState()
          .then((s) => s.workers.filter((w) => w.live).length)
          .catch(() => -1);
        if (live >= workers) return;
        if (Date.now() > deadline) throw new DfsError(ErrorCodes.TIMEOUT, `the cluster was not ready after ${timeoutMs / 1000} s`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await client.close();
    }
  }

  /** Stop workers and master (SIGTERM, then SIGKILL after a grace period), then the server. */
  async stop(): Promise<void> {
    await Promise.all(
      this.children.map(async (child) => {
        if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill("SIGTERM");
        const timer = setTimeout(() => child.process.kill("SIGKILL"), 5_000);
        await child.exited;
        clearTimeout(timer);
      }),
    );
    await this.server.stop();
  }
}
