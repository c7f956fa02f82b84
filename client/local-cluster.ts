// `dfs up`: a whole store on one machine. A nats-server child with JetStream and
// authentication on (and TLS if asked), or a JetStream cluster of several, masters and
// workers, each its own process with its own role's credentials, everything under one
// directory. Every child is supervised: one that dies is started again (a server on the same
// port, routes and store). Stopped together,
// and the children also stop when `dfs up` itself dies, however it dies (see
// `parent-pipe.ts` for the roles, `startNatsServer` for the server).
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { catalogue } from "../streams/catalogue.js";
import type { RoleName } from "../streams/permissions.js";
import { provisionStreams, provisionWorkers } from "../streams/provision.js";
import { connectNats } from "../src/connection.js";
import { SERVER_AUTH_FILE, credsFile, initCredentials } from "../src/credentials.js";
import { DfsError, ErrorCodes } from "../src/errors.js";
import { throughFailover } from "../src/failover.js";
import { DfsClient } from "./client.js";
import { lockFolder } from "./folder-lock.js";
import { freePort, startNatsServer } from "./nats-server.js";
import { PARENT_PIPE_ENV } from "./parent-pipe.js";
import { SupervisedChild } from "./supervisor.js";
import { makeLocalTls } from "./tls.js";

/** Two masters: they share the RPCs through a queue group and every append is fenced, so losing one costs nothing. */
export const DEFAULT_MASTERS = 2;
export const DEFAULT_WORKERS = 3;
/** Stream replicas at most: three survive the loss of one server, which is what a local cluster is for. */
const MAX_STREAM_REPLICAS = 3;

/** One nats-server of the store: where it listens and keeps its store. */
interface ServerPlace {
  /** 1..N; its name in the cluster is `dfs-<n>`. */
  n: number;
  port: number;
  /** Where the other servers' routes reach it (a cluster only). */
  routePort?: number;
  storeDir: string;
  config: string;
}

export interface LocalClusterOptions {
  dir: string;
  /** The first server's port; a cluster's others listen on the next ports. */
  port?: number;
  /** nats-servers forming one JetStream cluster (default 1: a single server, no cluster). */
  servers?: number;
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
  private readonly servers: SupervisedChild[] = [];
  private readonly roles: SupervisedChild[] = [];
  private constructor(
    readonly dir: string,
    /** Where each server listens (ports picked at start when none was asked for). */
    private readonly places: ServerPlace[],
    /** The CA to trust when the server speaks TLS. */
    readonly tlsCa: string | undefined,
    private readonly opts: LocalClusterOptions,
    private readonly unlock: () => Promise<void>,
  ) {}

  /** Every server's URL. */
  get urls(): string[] {
    return this.places.map((place) => `${this.tlsCa ? "tls" : "nats"}://127.0.0.1:${place.port}`);
  }

  /** The URLs as `--nats` and `DFS_NATS` take them: comma-separated. */
  get url(): string {
    return this.urls.join(",");
  }

  /** How many nats-servers run (1, or the cluster's size). */
  get serverCount(): number {
    return this.places.length;
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
    const unlock = await lockFolder(dir);
    try {
      return await LocalCluster.startIn(dir, opts, unlock);
    } catch (err) {
      await unlock();
      throw err;
    }
  }

  private static async startIn(dir: string, opts: LocalClusterOptions, unlock: () => Promise<void>): Promise<LocalCluster> {
    const cat = catalogue(opts.prefix);
    const workerIds = Array.from({ length: opts.workers ?? DEFAULT_WORKERS }, (_, i) => `w${i + 1}`);
    await initCredentials(join(dir, "creds"), cat, { workers: workerIds });
    // A CA from an earlier `dfs up --tls` would make commands run here expect TLS.
    await rm(join(dir, "tls"), { recursive: true, force: true });
    const tls = opts.tls ? await makeLocalTls(join(dir, "tls")) : undefined;
    const places = await LocalCluster.placeServers(dir, opts.servers ?? 1, opts.port);
    await mkdir(join(dir, "nats"), { recursive: true });
    for (const place of places) {
      const routes = places.filter((other) => other !== place).map((other) => `nats-route://127.0.0.1:${other.routePort}`);
      await writeFile(
        place.config,
        [
          "# Written by `dfs up` at every start.",
          // nats-server reads an include relative to the config's folder, even an absolute path.
          `include ${relative(dirname(place.config), join(dir, "creds", SERVER_AUTH_FILE))}`,
          ...(tls ? [`tls {`, `  cert_file: ${JSON.stringify(tls.certFile)}`, `  key_file: ${JSON.stringify(tls.keyFile)}`, `}`] : []),
          // The store directory is given with -sd only: a config that also set it would be refused.
          ...(place.routePort === undefined
            ? []
            : [`server_name: dfs-${place.n}`, "cluster {", "  name: dfs", `  listen: 127.0.0.1:${place.routePort}`, `  routes: [${routes.join(", ")}]`, "}"]),
          "",
        ].join("\n"),
      );
    }
    const cluster = new LocalCluster(dir, places, tls?.caFile, opts, unlock);
    try {
      for (const place of places) cluster.servers.push(cluster.supervisedServer(place));
      await Promise.all(cluster.servers.map((server) => server.start()));
      await cluster.provision(workerIds);
      for (let i = 1; i <= cluster.masters; i++) await cluster.startRole(`master ${i}`, ["master"], "master");
      for (const id of workerIds) await cluster.startRole(`worker ${id}`, ["worker", "--id", id, "--data", join(dir, "workers", id)], "worker", id);
      await cluster.waitUntilReady();
      for (const child of [...cluster.servers, ...cluster.roles]) child.supervise();
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  private say(line: string): void {
    this.opts.log?.(`dfs up: ${line}`);
  }

  /**
   * Where each server listens and keeps its store: one server in `DIR/nats` (`DIR/nats.conf`),
   * or a cluster's server n in `DIR/nats/<n>` (`DIR/nats/<n>.conf`) on the n-th port from
   * `port`, with its routes on a free port. The two layouts are not mixed up: a store made by
   * one cannot be read by the other.
   */
  private static async placeServers(dir: string, count: number, port: number | undefined): Promise<ServerPlace[]> {
    const natsDir = join(dir, "nats");
    if (count === 1) {
      if (existsSync(join(natsDir, "1"))) throw new DfsError(ErrorCodes.BAD_REQUEST, `${dir} holds a cluster's store: start it with --cluster, or use another --dir`);
      return [{ n: 1, port: port ?? (await freePort()), storeDir: natsDir, config: join(dir, "nats.conf") }];
    }
    if (existsSync(join(natsDir, "jetstream"))) throw new DfsError(ErrorCodes.BAD_REQUEST, `${dir} holds a single server's store: start it without --cluster, or use another --dir`);
    const places: ServerPlace[] = [];
    for (let n = 1; n <= count; n++) {
      places.push({
        n,
        port: port !== undefined ? port + n - 1 : await freePort(),
        routePort: await freePort(),
        storeDir: join(natsDir, String(n)),
        config: join(natsDir, `${n}.conf`),
      });
    }
    return places;
  }

  private supervisedServer(place: ServerPlace): SupervisedChild {
    const name = this.places.length === 1 ? "nats-server" : `nats-server ${place.n}`;
    return new SupervisedChild(
      name,
      async () => {
        // A restart takes the same port, routes and store: the roles reconnect by themselves,
        // and a cluster's server catches up from the others.
        const server = await startNatsServer({
          port: place.port,
          storeDir: place.storeDir,
          config: place.config,
          tls: this.tlsCa !== undefined,
          log: (l) => this.opts.log?.(`${name}: ${l}`),
        });
        return server.process;
      },
      (line) => this.say(line),
    );
  }

  /** The streams, with one replica per server (three at most), and the workers' assignment consumers, made as the admin. */
  private async provision(workerIds: readonly string[]): Promise<void> {
    const nc = await connectNats({ ...this.connection("admin"), name: "dfs-up" });
    try {
      // A cluster answers once it has elected its meta leader, a fraction of a second after it starts.
      const replicas = Math.min(this.serverCount, MAX_STREAM_REPLICAS);
      const cat = catalogue(this.opts.prefix);
      await throughFailover(() => provisionStreams(nc, cat, { replicas }));
      await throughFailover(() => provisionWorkers(nc, cat, workerIds));
    } finally {
      await nc.close();
    }
  }

  /** How a process of this cluster connects as `role`. */
  connection(role: RoleName, id?: string) {
    return { servers: this.urls, prefix: this.opts.prefix, creds: credsFile(this.credsDir, role, id), tlsCa: this.tlsCa };
  }

  private async startRole(name: string, args: string[], role: RoleName, id?: string): Promise<void> {
    // Spread over the servers: the n-th role connects to the n-th server first, the others are its way out.
    const first = this.roles.length % this.serverCount;
    const urls = [...this.urls.slice(first), ...this.urls.slice(0, first)];
    const child = new SupervisedChild(name, async () => this.spawnRole(args, urls, role, id), (line) => this.say(line));
    this.roles.push(child);
    await child.start();
  }

  private spawnRole(args: string[], urls: string[], role: RoleName, id?: string): ChildProcess {
    const { prefix, creds, tlsCa } = this.connection(role, id);
    const connectArgs = ["--nats", urls.join(","), "--creds", creds, ...(prefix ? ["--prefix", prefix] : []), ...(tlsCa ? ["--tls-ca", tlsCa] : [])];
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
        for (const child of [...this.servers, ...this.roles]) {
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

  /** Stop the workers and masters (SIGTERM, then SIGKILL after a grace period), then the servers. */
  async stop(): Promise<void> {
    // The servers are stopped last, but must not be restarted if they die meanwhile.
    for (const server of this.servers) server.endSupervision();
    await Promise.all(this.roles.map((role) => role.stop()));
    await Promise.all(this.servers.map((server) => server.stop()));
    await this.unlock();
  }
}
