// Find and run Debian's nats-server as a child process: for `dfs up`, the demo and the tests.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { createConnection, createServer } from "node:net";
import { delimiter, join } from "node:path";
import { DfsError, ErrorCodes } from "../src/errors.js";
import { stopChild } from "./stop-child.js";

export const INSTALL_HINT = "install it with: sudo apt-get install -y nats-server";

function findProgram(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/usr/local/sbin", "/usr/local/bin", "/usr/bin"];
  for (const dir of dirs) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

export function findNatsServer(): string {
  const binary = findProgram("nats-server");
  if (!binary) throw new DfsError(ErrorCodes.NO_NATS_SERVER, `nats-server is not installed; ${INSTALL_HINT}`);
  return binary;
}

/**
 * The command line that runs nats-server so that it dies with this process, however this
 * process ends (kill -9 included, where it runs no code). The server cannot watch a pipe as
 * our own roles do, so the kernel does it: util-linux's `setpriv --pdeathsig SIGTERM` asks
 * Linux to send the server SIGTERM when its parent's thread ends, then execs it (same pid,
 * no process in between that could itself be killed). Node spawns from its main thread,
 * which ends only with the process. Without setpriv (not Linux, or no util-linux) the
 * server is run as is and outlives a killed parent.
 */
function diesWithParent(command: string[]): string[] {
  const setpriv = process.platform === "linux" ? findProgram("setpriv") : undefined;
  return setpriv ? [setpriv, "--pdeathsig", "SIGTERM", ...command] : command;
}

/** Listen on `port` (0: any) for a moment and give it back: the port nobody else holds. */
function claimPort(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/** A TCP port nobody listens on right now. */
export function freePort(): Promise<number> {
  return claimPort(0);
}

export interface NatsServerOptions {
  port?: number;
  /** JetStream store directory. */
  storeDir: string;
  /** A config file (authentication, TLS, cluster routes). */
  config?: string;
  /** Clients connect with tls:// URLs. */
  tls?: boolean;
  /** Where the server's own log lines go (default: dropped). */
  log?: (line: string) => void;
}

export interface RunningNatsServer {
  url: string;
  port: number;
  process: ChildProcess;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Whether a NATS server answers on `port` with its INFO line (before any TLS or authentication). */
function sendsInfo(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    let seen = "";
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.on("data", (chunk) => {
      seen += chunk.toString();
      if (seen.includes("\n")) done(seen.startsWith("INFO "));
    });
    socket.on("error", () => done(false));
  });
}

async function waitForServer(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new DfsError(ErrorCodes.UNAVAILABLE, `nats-server exited with code ${child.exitCode}`);
    if (await sendsInfo(port)) return;
    if (Date.now() > deadline) throw new DfsError(ErrorCodes.TIMEOUT, `nats-server did not accept connections on port ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startNatsServer(opts: NatsServerOptions): Promise<RunningNatsServer> {
  const binary = findNatsServer();
  const port = opts.port ?? (await freePort());
  // Otherwise the readiness check below would happily connect to whoever holds the port.
  await claimPort(port).catch((err: NodeJS.ErrnoException) => {
    const why = err.code === "EADDRINUSE" ? "is already in use (another nats-server or dfs up?); pick another with --port" : `cannot be used: ${err.message}`;
    throw new DfsError(ErrorCodes.UNAVAILABLE, `port ${port} on 127.0.0.1 ${why}`);
  });
  await mkdir(opts.storeDir, { recursive: true });
  const [program, ...args] = diesWithParent([binary, "-a", "127.0.0.1", "-p", String(port), "-js", "-sd", opts.storeDir, ...(opts.config ? ["-c", opts.config] : [])]);
  // A process group of its own: a Ctrl-C in the terminal reaches the parent alone, which stops
  // the server after what depends on it.
  const child = spawn(program!, args, { stdio: ["ignore", "pipe", "pipe"], detached: true });
  const recent: string[] = [];
  const forward = (chunk: Buffer) => {
    for (const line of chunk.toString().split("\n")) {
      if (!line.trim()) continue;
      opts.log?.(line);
      recent.push(line);
      if (recent.length > 5) recent.shift();
    }
  };
  child.stdout!.on("data", forward);
  child.stderr!.on("data", forward);
  const url = `${opts.tls ? "tls" : "nats"}://127.0.0.1:${port}`;
  try {
    await waitForServer(port, child, 10_000);
  } catch (err) {
    await stopChild(child, { signal: "SIGKILL" });
    // Its last words say why (a port in use, a bad store directory...).
    const why = recent.filter((l) => /\[(ERR|FTL)\]/.test(l)).map((l) => l.replace(/^.*\[(ERR|FTL)\] /, "")).join("; ");
    throw why ? new DfsError((err as DfsError).code ?? ErrorCodes.UNAVAILABLE, `nats-server on port ${port} failed: ${why}`) : err;
  }
  return {
    url,
    port,
    process: child,
    stop: (signal: NodeJS.Signals = "SIGTERM") => stopChild(child, { signal }),
  };
}
