// `dfs up`: a whole store on one machine. A nats-server child with JetStream and
// authentication on (and TLS if asked), one master and N workers, each its own process with
// its own role's credentials, everything under one directory, all stopped together, and
// also when `dfs up` itself dies, however it dies (see `parent-pipe.ts` for the roles,
// `startNatsServer` for the server).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { catalogue } from "../streams/catalogue.js";
import type { RoleName } from "../streams/permissions.js";
import { provisionStreams } from "../streams/provision.js";
import { connectNats } from "../src/connection.js";
import { SERVER_AUTH_FILE, credsFile, initCredentials } from "../src/credentials.js";
import { DfsError, ErrorCodes } from "../src/errors.js";
import { DfsClient } from "./client.js";
import { startNatsServer, type RunningNatsServer } from "./nats-server.js";
import { PARENT_PIPE_ENV } from "./parent-pipe.js";
import { stopChild } from "./stop-child.js";
import { makeLocalTls } from "./tls.js";

export interface LocalClusterOptions {
  dir: string;
  port?: number;
  workers?: number;
  prefix?: string;
  /** Serve NATS over TLS with a local CA made for it. */
  tls?: boolean;
  /** The dfs CLI script the master and workers run as (this process's own, normally). */
  cliEntry: string;
  log?: (line: string) => void;
}

interface Child {
  name: string;
  process: ChildProcess;
}

export class LocalCluster {
  private children: Child[] = [];
  private constructor(
    readonly server: RunningNatsServer,
    readonly dir: string,
    /** The CA to trust when the server speaks TLS. */
    readonly tlsCa: string | undefined,
    private readonly opts: LocalClusterOptions,
  ) {}

  get url(): string {
    return this.server.url;
  }

  /** Each role's `.creds` file is here. */
  get credsDir(): string {
    return join(this.dir, "creds");
  }

  static async start(opts: LocalClusterOptions): Promise<LocalCluster> {
    const dir = resolve(opts.dir);
    await mkdir(dir, { recursive: true });
    const cat = catalogue(opts.prefix);
    const workerIds = Array.from({ length: opts.workers ?? 3 }, (_, i) => `w${i + 1}`);
    await initCredentials(join(dir, "creds"), cat, { workers: workerIds });
    // A CA from an earlier `dfs up --tls` would make commands run here expect TLS.
    await rm(join(dir, "tls"), { recursive: true, force: true });
    const tls = opts.tls ? await makeLocalTls(join(dir, "tls")) : undefined;
    const config = join(dir, "nats.conf");
    await writeFile(
      config,
      [
        "# Written by `dfs up` at every start.",
        `include ./creds/${SERVER_AUTH_FILE}`,
        ...(tls ? [`tls {`, `  cert_file: ${JSON.stringify(tls.certFile)}`, `  key_file: ${JSON.stringify(tls.keyFile)}`, `}`] : []),
        "",
      ].join("\n"),
    );
    const server = await startNatsServer({ port: opts.port, storeDir: join(dir, "nats"), config, tls: !!tls, log: (l) => opts.log?.(`nats-server: ${l}`) });
    const cluster = new LocalCluster(server, dir, tls?.caFile, opts);
    try {
      await cluster.provision();
      cluster.spawnRole("master", ["master"], "master");
      for (const id of workerIds) cluster.spawnRole(`worker ${id}`, ["worker", "--id", id, "--data", join(dir, "workers", id)], "worker", id);
      await cluster.waitUntilReady(workerIds.length);
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  /** The streams, made as the admin. */
  private async provision(): Promise<void> {
    const nc = await connectNats({ ...this.connection("admin"), name: "dfs-up" });
    try {
      await provisionStreams(nc, catalogue(this.opts.prefix));
    } finally {
      await nc.close();
    }
  }

  /** How a process of this cluster connects as `role`. */
  connection(role: RoleName, id?: string) {
    return { servers: this.url, prefix: this.opts.prefix, creds: credsFile(this.credsDir, role, id), tlsCa: this.tlsCa };
  }

  private spawnRole(name: string, args: string[], role: RoleName, id?: string): void {
    const { prefix, creds, tlsCa } = this.connection(role, id);
    const connectArgs = ["--nats", this.url, "--creds", creds, ...(prefix ? ["--prefix", prefix] : []), ...(tlsCa ? ["--tls-ca", tlsCa] : [])];
    const child = spawn(process.execPath, [...process.execArgv, this.opts.cliEntry, ...args, ...connectArgs], {
      // stdin is the pipe whose end tells the role that `dfs up` is gone (parent-pipe.ts).
      stdio: ["pipe", "inherit", "pipe"],
      env: { ...process.env, [PARENT_PIPE_ENV]: "1" },
      // A process group of its own: a Ctrl-C in the terminal reaches `dfs up` alone, which
      // stops the roles before the server, instead of everything dying at once.
      detached: true,
    });
    child.stderr!.on("data", (chunk: Buffer) => {
      for (const line of chunk.toString().split("\n")) if (line.trim()) this.opts.log?.(line);
    });
    this.children.push({ name, process: child });
  }

  /** Until the master answers and has recorded every worker as joined. */
  private async waitUntilReady(workers: number, timeoutMs = 30_000): Promise<void> {
    const client = await DfsClient.connect({ ...this.connection("client"), name: "dfs-up" });
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
    await Promise.all(this.children.map((child) => stopChild(child.process)));
    await this.server.stop();
  }
}
