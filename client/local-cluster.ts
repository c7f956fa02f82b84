// `dfs up`: a whole store on one machine. A nats-server child with JetStream and
// authentication on (and TLS if asked), masters and workers, each its own process with its
// own role's credentials, everything under one directory. Every child is supervised: one
// that dies is started again (the server on the same port and store). Stopped together,
// and the children also stop when `dfs up` itself dies, however it dies (see
// `parent-pipe.ts` for the roles, `startNatsServer` for the server).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { catalogue } from "../streams/catalogue.js";
import type { RoleName } from "../streams/permissions.js";
import { provisionStreams, provisionWorkers } from "../streams/provision.js";
import { connectNats } from "../src/connection.js";
import { SERVER_AUTH_FILE, credsFile, initCredentials } from "../src/credentials.js";
import { DfsError, ErrorCodes } from "../src/errors.js";
import { DfsClient } from "./client.js";
import { startNatsServer } from "./nats-server.js";
import { PARENT_PIPE_ENV } from "./parent-pipe.js";
import { SupervisedChild } from "./supervisor.js";
import { makeLocalTls } from "./tls.js";

/** Two masters: they share the RPCs through a queue group and every append is fenced, so losing one costs nothing. */
export const DEFAULT_MASTERS = 2;
export const DEFAULT_WORKERS = 3;

export interface LocalClusterOptions {
  dir: string;
  port?: number;
  masters?: number;
  workers?: number;
  prefix?: string;
  /** Serve NATS over TLS with a local CA made for it. */
  tls?: boolean;
  /** The dfs CLI script the master and workers run as (this process's own, normally). */
  cliEntry: string;
  /** Lines from the children's stderr, and one line per restart (`dfs up: ...`). */
  log?: (line: string) => void;
}

export class LocalCluster {
  private server?: SupervisedChild;
  private readonly roles: SupervisedChild[] = [];
  private constructor(
    readonly dir: string,
    /** The port the server listens on (a free one is picked when none is asked for). */
    private port: number | undefined,
    /** The CA to trust when the server speaks TLS. */
    readonly tlsCa: string | undefined,
    private readonly opts: LocalClusterOptions,
  ) {}

  get url(): string {
    return `${this.tlsCa ? "tls" : "nats"}://127.0.0.1:${this.port}`;
  }

  /** Each role's `.creds` file is here. */
  get credsDir(): string {
    return join(this.dir, "creds");
  }

  get masters(): number {
    return this.opts.masters ?? DEFAULT_MASTERS;
  }

  get workers(): number {
    return this.opts.workers ?? DEFAULT_WORKERS;
  }

  static async start(opts: LocalClusterOptions): Promise<LocalCluster> {
    const dir = resolve(opts.dir);
    await mkdir(dir, { recursive: true });
    const cat = catalogue(opts.prefix);
    const workerIds = Array.from({ length: opts.workers ?? DEFAULT_WORKERS }, (_, i) => `w${i + 1}`);
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
    const cluster = new LocalCluster(dir, opts.port, tls?.caFile, opts);
    try {
      await cluster.startServer(config);
      await cluster.provision(workerIds);
      for (let i = 1; i <= cluster.masters; i++) await cluster.startRole(`master ${i}`, ["master"], "master");
      for (const id of workerIds) await cluster.startRole(`worker ${id}`, ["worker", "--id", id, "--data", join(dir, "workers", id)], "worker", id);
      await cluster.waitUntilReady();
      for (const child of [cluster.server!, ...cluster.roles]) child.supervise();
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  private say(line: string): void {
    this.opts.log?.(`dfs up: ${line}`);
  }

  private async startServer(config: string): Promise<void> {
    this.server = new SupervisedChild(
      "nats-server",
      async () => {
        // A restart takes the same port and the same store: the roles reconnect by themselves.
        const server = await startNatsServer({
          port: this.port,
          storeDir: join(this.dir, "nats"),
          config,
          tls: this.tlsCa !== undefined,
          log: (l) => this.opts.log?.(`nats-server: ${l}`),
        });
        this.port = server.port;
        return server.process;
      },
      (line) => this.say(line),
    );
    await this.server.start();
  }

  /** The streams, made as the admin. */
  /** The streams and the workers' assignment consumers, made as the admin. */
  private async provision(workerIds: readonly string[]): Promise<void> {
    const nc = await connectNats({ ...this.connection("admin"), name: "dfs-up" });
    try {
      const cat = catalogue(this.opts.prefix);
      await provisionStreams(nc, cat);
      await provisionWorkers(nc, cat, workerIds);
    } finally {
      await nc.close();
    }
  }

  /** How a process of this cluster connects as `role`. */
  connection(role: RoleName, id?: string) {
    return { servers: this.url, prefix: this.opts.prefix, creds: credsFile(this.credsDir, role, id), tlsCa: this.tlsCa };
  }

  private async startRole(name: string, args: string[], role: RoleName, id?: string): Promise<void> {
    const child = new SupervisedChild(name, async () => this.spawnRole(args, role, id), (line) => this.say(line));
    this.roles.push(child);
    await child.start();
  }

  private spawnRole(args: string[], role: RoleName, id?: string): ChildProcess {
    const { prefix, creds, tlsCa } = this.connection(role, id);
    const connectArgs = ["--nats", this.url, "--creds", creds, ...(prefix ? ["--prefix", prefix] : []), ...(tlsCa ? ["--tls-ca", tlsCa] : [])];
    const child = spawn(process.execPath, [...process.execArgv, this.opts.cliEntry, ...args, ...connectArgs], {
      // stdin is the pipe whose end tells the role that `dfs up` is gone (parent-pipe.ts).
      stdio: ["pipe", "inherit", "pipe"],
      // A process group of its own: a Ctrl-C in the terminal reaches `dfs up` alone, which
      // stops the roles before the server, instead of everything dying at once.
      detached: true,
      env: { ...process.env, [PARENT_PIPE_ENV]: "1" },
    });
    child.stderr!.on("data", (chunk: Buffer) => {
      for (const line of chunk.toString().split("\n")) if (line.trim()) this.opts.log?.(line);
    });
    return child;
  }

  /** Until every master answers and has recorded every worker as joined. */
  private async waitUntilReady(timeoutMs = 30_000): Promise<void> {
    const client = await DfsClient.connect({ ...this.connection("client"), name: "dfs-up" });
    try {
      const deadline = Date.now() + timeoutMs;
      // Masters share one queue group: each answer comes from one of them, so count who said it.
      const readyMasters = new Set<string>();
      for (;;) {
        for (const child of [this.server!, ...this.roles]) {
          if (child.exitedEarly) throw new DfsError(ErrorCodes.UNAVAILABLE, `${child.name} ${child.exitedEarly}`);
        }
        const state = await client.masterState().catch(() => undefined);
        if (state && state.workers.filter((w) => w.live).length >= this.workers) readyMasters.add(state.masterId);
        if (readyMasters.size >= this.masters) return;
        if (Date.now() > deadline) throw new DfsError(ErrorCodes.TIMEOUT, `the cluster was not ready after ${timeoutMs / 1000} s`);
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      await client.close();
    }
  }

  /** Stop the workers and masters (SIGTERM, then SIGKILL after a grace period), then the server. */
  async stop(): Promise<void> {
    // The server is stopped last, but must not be restarted if it dies meanwhile.
    this.server?.endSupervision();
    await Promise.all(this.roles.map((role) => role.stop()));
    await this.server?.stop();
  }
}
