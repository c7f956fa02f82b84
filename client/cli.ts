// The `dfs` command. Each verb parses its flags and calls the client library (or starts a
// role); no store logic lives here.
import { describePolicy } from "../src/retention.js";
import { basename, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { setFlagsFromString } from "node:v8";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import cliProgress from "cli-progress";
import { existsSync, readFileSync, statSync } from "node:fs";
import { DEFAULT_NATS_URL, DEFAULT_PREFIX, catalogue, isSubjectToken } from "../streams/catalogue.js";
import { ROLES, userName, type RoleName } from "../streams/permissions.js";
import { provisionStreams, provisionWorkers } from "../streams/provision.js";
import { connectNats, connectRole, drainRole, lostForGood, type NatsOptions, type RoleConnections } from "../src/connection.js";
import { SERVER_AUTH_FILE, addCredentials, credsFile, initCredentials } from "../src/credentials.js";
import { DfsError, ErrorCodes, asDfsError, printable } from "../src/errors.js";
import { DEFAULT_SNAPSHOT_EVERY, DEFAULT_STREAM_TIMEOUT_MS, Master } from "../src/master/master.js";
import { DEFAULT_UPLOAD_CAPS } from "../src/decide.js";
import { durationMs, parseLogPoint, type LogPoint } from "../src/log-point.js";
import { locate, stat } from "../src/queries.js";
import { projection, stateDigest } from "../src/state.js";
import { DEFAULT_SCRUB_RATE, Worker } from "../workers/worker.js";
import { DfsClient, DEFAULT_REPLICAS, type PutResult } from "./client.js";
import { runDemo } from "./demo.js";
import { counted, eventJson, formatEvent, formatHistory, formatLayout, formatListing, formatScrub, formatStat, formatStatus, formatWorkers, humanBytes, parseBytes, useColour } from "./format.js";
import { DEFAULT_MASTERS, DEFAULT_WORKERS, LocalCluster } from "./local-cluster.js";
import { watchParentPipe } from "./parent-pipe.js";
import { DEFAULT_PARALLEL_PUTS, planPut } from "./put-many.js";
import { DEFAULT_PARALLEL_GETS } from "./get-many.js";
import type { Progress } from "./progress.js";
import { STOP_GRACE_MS } from "./stop-child.js";
import { failIfStuck } from "./stuck.js";
import { CA_FILE } from "./tls.js";

const CLI_ENTRY = fileURLToPath(import.meta.url);
/** The package's version, as npm knows it. */
const VERSION = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;

/** Exit statuses, documented in the README. */
export const EXIT = { ok: 0, failed: 1, usage: 2, notFound: 3 } as const;
/** A command stopped by a signal exits as shells report it: 128 + the signal's number. */
const SIGNAL_EXIT = { SIGINT: 130, SIGTERM: 143 } as const;
type StopSignal = keyof typeof SIGNAL_EXIT;

/** A command that SIGINT or SIGTERM stopped, once it has cleaned up. */
class Interrupted extends DfsError {
  constructor(readonly signal: StopSignal, cause: unknown) {
    super(ErrorCodes.INTERRUPTED, `${asDfsError(cause).message} (${signal})`, { cause });
  }
}

interface GlobalOptions {
  nats: string;
  prefix: string;
  creds?: string;
  credsDir: string;
  tlsCa?: string;
}

/** A comma-separated list of worker ids, each checked. */
function workerIds(list: string): string[] {
  const ids = list.split(",").filter(Boolean);
  for (const id of ids) if (!isSubjectToken(id)) throw new DfsError(ErrorCodes.BAD_REQUEST, `worker id ${JSON.stringify(id)} must be 1-64 letters, digits, _ or -`);
  return ids;
}

/** Where `dfs up` keeps everything unless told otherwise; commands look here for credentials and TLS. */
const HOME = ".dfs";

/** The credentials a command runs with: `--creds`, else its role's file in `--creds-dir` if there is one. */
function credsFor(globals: GlobalOptions, role: RoleName, id?: string): string | undefined {
  if (globals.creds) return globals.creds;
  const file = credsFile(globals.credsDir, role, id);
  return existsSync(file) ? file : undefined;
}

function tlsCaOf(globals: GlobalOptions): string | undefined {
  if (globals.tlsCa) return globals.tlsCa;
  const file = join(HOME, "tls", CA_FILE);
  return existsSync(file) ? file : undefined;
}

/** `90s`, `10m`, `2h`, `30d` in ms. */
function duration(text: string): number {
  const ms = durationMs(text);
  if (ms === undefined || !Number.isSafeInteger(ms)) throw new InvalidArgumentError("must be a duration such as 90s, 10m, 2h or 30d");
  return ms;
}

/** An id that becomes a subject token (a worker's id). */
function subjectToken(text: string): string {
  if (!isSubjectToken(text)) throw new InvalidArgumentError("must be 1-64 letters, digits, _ or -");
  return text;
}

function integer(min: number) {
  return (text: string) => {
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`must be a whole number >= ${min}`);
    return n;
  };
}

function bytes(text: string): number {
  try {
    return parseBytes(text);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/** A point in the log (`42`, `2026-11-27T10:00Z`, `10m`), or BAD_REQUEST naming the option. */
function point(option: string) {
  return (text: string): LogPoint => {
    try {
      return parseLogPoint(text);
    } catch (err) {
      throw new DfsError(ErrorCodes.BAD_REQUEST, `${option}: ${asDfsError(err).message}`);
    }
  };
}

const AT_HELP = "as the store was right after this point of the log: a sequence, an ISO 8601 time, or 90s/10m/2h/3d ago (reads the log: the auditor's credentials)";

function exitCodeFor(err: DfsError): number {
  if (err instanceof Interrupted) return SIGNAL_EXIT[err.signal];
  if (err.code === ErrorCodes.NOT_FOUND) return EXIT.notFound;
  if (err.code === ErrorCodes.BAD_PATH || err.code === ErrorCodes.BAD_REQUEST) return EXIT.usage;
  return EXIT.failed;
}

function fail(err: unknown): never {
  const coded = asDfsError(err);
  process.stderr.write(`dfs: ${coded.code}: ${printable(coded.message)}\n`);
  process.exit(exitCodeFor(coded));
}

function progressBar(label: string): { update: (p: Progress) => void; stop: () => void } {
  if (!process.stderr.isTTY) return { update: () => undefined, stop: () => undefined };
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: `${label} {phase} [{bar}] {percentage}% {done}/{size}`, hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(p) {
      const payload = { phase: p.phase.padEnd(8), done: humanBytes(p.done), size: humanBytes(p.total) };
      if (!started) bar.start(Math.max(1, p.total), p.done, payload);
      else bar.setTotal(Math.max(1, p.total));
      started = true;
      bar.update(p.done, payload);
    },
    stop: () => started && bar.stop(),
  };
}

/**
 * One line of progress for many files when stderr is a terminal: files done of the total, and
 * bytes. `log` prints a line above it (or just prints it, without a terminal).
 */
function filesBar(label: string, total: number): { update: (bytes: number) => void; log: (line: string, stream: NodeJS.WriteStream) => void; stop: () => void } {
  if (!process.stderr.isTTY) return { update: () => undefined, log: (line, stream) => stream.write(line), stop: () => undefined };
  const bars = new cliProgress.MultiBar(
    { stream: process.stderr, format: `${label} [{bar}] {value}/{total} files, {bytes}`, hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  const bar = bars.create(total, 0, { bytes: humanBytes(0) });
  let stopped = false;
  return {
    update: (bytes) => bar.increment(1, { bytes: humanBytes(bytes) }),
    // Lines for the terminal go above the bar; a redirected stream gets them as they are.
    log: (line, stream) => (stream.isTTY ? bars.log(line) : stream.write(line)),
    stop: () => {
      if (!stopped) bars.stop();
      stopped = true;
    },
  };
}

/** Run with a client connection, as the client role (or the auditor, for the log readers). */
async function withClient<T>(globals: GlobalOptions, run: (client: DfsClient) => Promise<T>, role: RoleName = "client"): Promise<T> {
  const client = await DfsClient.connect({ servers: globals.nats, prefix: globals.prefix, creds: credsFor(globals, role), tlsCa: tlsCaOf(globals) });
  try {
    return await run(client);
  } finally {
    await client.close();
  }
}

/** How a long-running role (master, worker) or the admin connects: a long-running role keeps reconnecting. */
function roleConnection(globals: GlobalOptions, role: RoleName, id?: string): NatsOptions {
  return {
    servers: globals.nats,
    creds: credsFor(globals, role, id),
    tlsCa: tlsCaOf(globals),
    prefix: globals.prefix,
    name: `dfs-${userName(role, id)}`,
    maxReconnectAttempts: role === "admin" ? 10 : -1,
  };
}

/**
 * Serve until a signal stops the role (`stop`, then its connections drained), or until its
 * connection is closed for good: then it ends, and a supervisor (`dfs up`) starts it again.
 */
async function serveUntilStopped(conns: RoleConnections, stop: () => Promise<void>): Promise<void> {
  let stopping = false;
  await Promise.race([
    untilStopped(async () => {
      stopping = true;
      await stop();
      await drainRole(conns);
    }),
    lostForGood(conns, () => stopping),
  ]);
}

/**
 * Run `run` with an AbortSignal that SIGINT and SIGTERM abort, so that it stops and cleans up
 * (a get removes its temporary file, a put abandons its version); it then fails as
 * Interrupted. A second signal does not wait for the clean-up.
 */
async function interruptible<T>(run: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const interrupt = new AbortController();
  let received: StopSignal | undefined;
  const onSignal = (signal: StopSignal) => {
    if (received) process.exit(SIGNAL_EXIT[signal]);
    received = signal;
    interrupt.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    return await run(interrupt.signal);
  } catch (err) {
    throw received ? new Interrupted(received, err) : err;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/**
 * Run until SIGINT, SIGTERM or SIGHUP, or, in a role `dfs up` started, until `dfs up` is gone;
 * then stop cleanly. `stop` is told why. A second identical signal kills at once.
 */
function untilStopped(stop: (why: string) => Promise<void>): Promise<void> {
  return new Promise((done) => {
    let stopping = false;
    const onStop = (why: string) => {
      if (stopping) return;
      stopping = true;
      stop(why).then(() => {
        stopWatchingParent?.();
        done();
      }, (err) => fail(err));
    };
    const stopWatchingParent = watchParentPipe(() => {
      // Nobody is left to SIGKILL a stop that hangs (the server may be gone as well), even
      // one a signal began: bound it here.
      setTimeout(() => process.exit(EXIT.failed), STOP_GRACE_MS).unref();
      onStop("dfs up is gone");
    });
    for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.once(signal, () => onStop(signal));
  });
}

/** A put of one file (or stdin), a get of one file, or a cat: bytes through one file at a time. */
function movesOneFileAtATime(command: Command): boolean {
  const name = command.name();
  if (name === "cat") return true;
  if (name !== "put" && name !== "get") return false;
  return !command.opts().recursive && (name === "get" || command.args.length <= 2);
}

/**
 * bin/dfs.js keeps V8's young generation at its first size (semi-spaces of 1 MiB) while the CLI
 * loads, since what moves through a put or a get of one file is buffers outside the heap: a
 * young generation grown to 16 MiB semi-spaces only adds about 20 MB to their peak RSS (a get
 * of 256 MiB: about 150 → 130 MB). Every other command (many small files at once, a master, a
 * worker, a replay) lets it grow as V8 does by default (factor 2): there it saves collections
 * (a put -r of 2,000 files of 1 KiB takes about 13% less CPU). The flag is read each time
 * V8 would grow the young generation, so setting it at run time works.
 */
function letYoungGenerationGrow(): void {
  setFlagsFromString("--semi-space-growth-factor=2");
}

export function buildProgram(): Command {
  const program = new Command("dfs")
    .description("A distributed file store whose master is event-sourced over NATS JetStream")
    // `dfs --version` is handled in main, alone: commands keep their own --version (a file's).
    .addHelpText("after", "\n`dfs --version` prints the version of dfs.")
    .addOption(new Option("--nats <urls>", "NATS server URL (several, comma-separated: the first is used, the others when it is lost)").env("DFS_NATS").default(DEFAULT_NATS_URL))
    .addOption(new Option("--prefix <prefix>", "subject prefix of the store").env("DFS_PREFIX").default(DEFAULT_PREFIX))
    .addOption(new Option("--creds <file>", "NATS credentials to use (default: the command's role in --creds-dir)").env("DFS_CREDS"))
    .addOption(
      new Option("--creds-dir <dir>", "where each role's credentials are (<role>.creds), as `dfs up` and `dfs creds init` write them")
        .env("DFS_CREDS_DIR")
        .default(join(HOME, "creds")),
    )
    .addOption(new Option("--tls-ca <file>", `CA certificate of a TLS server (default ${HOME}/tls/${CA_FILE} when there)`).env("DFS_TLS_CA"))
    .configureOutput({
      // Usage errors are one line too: "dfs: usage: <what>; see dfs --help".
      outputError: (text, write) => write(`dfs: usage: ${text.replace(/^error: /, "").trim()}; see dfs --help\n`),
    })
    .exitOverride()
    .hook("preAction", (_program, command) => {
      if (!movesOneFileAtATime(command)) letYoungGenerationGrow();
    });
  const globals = () => program.opts<GlobalOptions>();

  program
    .command("up")
    .description("run a local cluster: nats-server, masters and workers, restarted when they die (Ctrl-C stops all)")
    .addHelpText("after", "\nExamples:\n  dfs up                          # nats://127.0.0.1:4222, data and credentials in ./.dfs\n  dfs up --cluster 3 --workers 5  # three nats-servers (streams with 3 replicas), five workers\n  dfs up --tls --port 4443")
    .option("--port <port>", "NATS port (a cluster's servers: this one and the next ones)", integer(1), 4222)
    .option("--cluster <n>", "nats-servers forming one JetStream cluster, streams replicated on up to 3 of them", integer(1), 1)
    .option("--dir <dir>", "where everything is stored", ".dfs")
    .option("--masters <n>", "number of masters", integer(1), DEFAULT_MASTERS)
    .option("--workers <n>", "number of workers", integer(1), DEFAULT_WORKERS)
    .option("--tls", "serve NATS over TLS, with a local CA made for it (DIR/tls/ca.pem)")
    .action(async (opts: { port: number; cluster: number; dir: string; masters: number; workers: number; tls?: boolean }) => {
      const cluster = await LocalCluster.start({
        dir: opts.dir,
        port: opts.port,
        servers: opts.cluster,
        masters: opts.masters,
        workers: opts.workers,
        tls: opts.tls,
        prefix: globals().prefix,
        cliEntry: CLI_ENTRY,
        // The server's own chatter stays out of the way; its warnings and errors do not.
        log: (line) => (!/^nats-server( \d+)?:/.test(line) || /\[(WRN|ERR|FTL)\]/.test(line)) && process.stderr.write(`${line}\n`),
      });
      process.stdout.write(
        `dfs is up: ${cluster.url} (${cluster.serverCount > 1 ? `${counted(cluster.serverCount, "nats-server")}, ` : ""}${counted(cluster.masters, "master")}, ${counted(cluster.workers, "worker")}, data in ${cluster.dir}, credentials in ${cluster.credsDir})\n`,
      );
      // Commands run from here find the credentials (and the CA) in ./.dfs by themselves.
      const here = resolve(HOME) === cluster.dir;
      const env = [
        `DFS_NATS=${cluster.url}`,
        ...(here ? [] : [`DFS_CREDS_DIR=${cluster.credsDir}`, ...(cluster.tlsCa ? [`DFS_TLS_CA=${cluster.tlsCa}`] : [])]),
      ];
      process.stdout.write(`try: ${env.join(" ")} npx dfs put README.md /docs/readme\nCtrl-C stops everything.\n`);
      await untilStopped(async (signal) => {
        process.stderr.write(`dfs up: ${signal}: stopping everything\n`);
        await cluster.stop();
      });
      process.stdout.write("dfs is down\n");
    });

  program
    .command("master")
    .description("run a master against a NATS server with JetStream")
    .addHelpText("after", "\nExample:\n  dfs master --nats nats://nats:4222 --creds creds/master.creds")
    .option("--worker-timeout <ms>", "a worker silent this long is lost", integer(100), 5000)
    .option("--snapshot-every <events>", "write a snapshot of the table every this many events, as a follower (a lone leader: every twice as many; 0: never)", integer(0), DEFAULT_SNAPSHOT_EVERY)
    .option("--stream-timeout <ms>", "a put from stdin whose client is silent this long before its end is abandoned", integer(100), DEFAULT_STREAM_TIMEOUT_MS)
    .option("--max-pending-uploads <n>", "uploads one uploader (NATS user) may have pending at once", integer(1), DEFAULT_UPLOAD_CAPS.pending)
    .option("--max-open-streams <n>", "puts from stdin one uploader may have open (not sealed) at once", integer(1), DEFAULT_UPLOAD_CAPS.openStreams)
    .addOption(new Option("--no-lease", "decide without the lease, as every master then does (a test of the fence)").hideHelp())
    .addOption(new Option("--heal-pass-pieces <n>", "unhealthy pieces one healing pass considers (tests make it small)").argParser(integer(1)).hideHelp())
    .action(async (opts: { workerTimeout: number; lease: boolean; snapshotEvery: number; streamTimeout: number; healPassPieces?: number; maxPendingUploads: number; maxOpenStreams: number }) => {
      const conns = await connectRole(roleConnection(globals(), "master"));
      const master = await Master.start(conns, {
        prefix: globals().prefix,
        lease: opts.lease,
        workerTimeoutMs: opts.workerTimeout,
        snapshotEvery: opts.snapshotEvery,
        streamTimeoutMs: opts.streamTimeout,
        healPassPieces: opts.healPassPieces,
        uploadCaps: { pending: opts.maxPendingUploads, openStreams: opts.maxOpenStreams },
        onFatal: fail,
      });
      process.stderr.write(`master: serving on ${globals().nats}\n`);
      await serveUntilStopped(conns, () => master.stop());
    });

  program
    .command("worker")
    .description("run a worker that keeps pieces in LevelDB")
    .addHelpText("after", "\nExample:\n  dfs worker --id w4 --data /srv/dfs/w4 --nats nats://nats:4222 --creds creds/worker-w4.creds")
    .requiredOption("--id <id>", "worker id (1-64 letters, digits, _ and -)", subjectToken)
    .option("--data <dir>", "LevelDB directory (default .dfs/workers/<id>)")
    .option("--heartbeat <ms>", "heartbeat interval", integer(50), 1000)
    .option("--scrub-rate <bytes>", "bytes a second the background scrub hashes again, e.g. 16MiB; 0 turns it off", bytes, DEFAULT_SCRUB_RATE)
    .action(async (opts: { id: string; data?: string; heartbeat: number; scrubRate: number }) => {
      const conns = await connectRole(roleConnection(globals(), "worker", opts.id));
      const worker = await Worker.start(conns, {
        id: opts.id,
        dataDir: resolve(opts.data ?? `.dfs/workers/${opts.id}`),
        prefix: globals().prefix,
        heartbeatMs: opts.heartbeat,
        scrubBytesPerSecond: opts.scrubRate,
        onFatal: fail,
      });
      process.stderr.write(`worker ${opts.id}: serving on ${globals().nats}\n`);
      await serveUntilStopped(conns, () => worker.stop());
    });

  program
    .command("provision")
    .description("create the store's streams, and workers' assignment consumers, on a NATS server (admin credentials); safe to run again")
    .option("--stream-replicas <n>", "replicas of each stream (3 on a three-server cluster)", integer(1), 1)
    .option("--workers <ids>", "worker ids whose assignment consumers to make, comma-separated")
    .addHelpText("after", "\nExample:\n  dfs provision --creds creds/admin.creds --nats nats://nats:4222 --workers w1,w2,w3")
    .action(async (opts: { streamReplicas: number; workers?: string }) => {
      const workers = workerIds(opts.workers ?? "");
      const nc = await connectNats(roleConnection(globals(), "admin"));
      try {
        const cat = catalogue(globals().prefix);
        await provisionStreams(nc, cat, { replicas: opts.streamReplicas });
        await provisionWorkers(nc, cat, workers);
        process.stderr.write(`the streams of "${cat.prefix}" are in place${workers.length ? `, and the consumers of ${workers.join(", ")}` : ""}\n`);
      } finally {
        await nc.drain().catch(() => undefined);
      }
    });

  const creds = program
    .command("creds")
    .description("make NATS credentials for each role (operator mode, .creds files)")
    .addHelpText("after", "\nExamples:\n  dfs creds init ./creds --workers w1,w2,w3\n  dfs creds add worker w4 ./creds");
  creds
    .command("init")
    .description("make a credentials folder: signing keys, the server's auth config, one .creds file per role")
    .argument("[dir]", "the folder", join(HOME, "creds"))
    .option("--workers <ids>", "worker ids to make credentials for, comma-separated", "w1,w2,w3")
    .addHelpText("after", "\nExample:\n  dfs creds init ./creds --workers w1,w2,w3\n  nats-server -js -c ./creds/server.conf")
    .action(async (dir: string, opts: { workers: string }) => {
      const workers = workerIds(opts.workers);
      const written = await initCredentials(dir, catalogue(globals().prefix), { workers });
      for (const file of written) process.stdout.write(`${file}\n`);
      process.stderr.write(`start nats-server with: nats-server -js -c ${join(dir, SERVER_AUTH_FILE)}\n`);
    });
  creds
    .command("add")
    .description("sign credentials for one more worker, or a client of its own, with the folder's keys")
    .argument("<role>", "worker | client | master | auditor | admin")
    .argument("[id]", "the worker's id, or the client's name")
    .argument("[dir]", "the credentials folder", join(HOME, "creds"))
    .addHelpText("after", "\nExample:\n  dfs creds add worker w4 ./creds")
    .action(async (role: string, id: string | undefined, dir: string) => {
      if (!(ROLES as readonly string[]).includes(role)) throw new DfsError(ErrorCodes.BAD_REQUEST, `role must be one of ${ROLES.join(", ")}`);
      if (role === "worker" && !id) throw new DfsError(ErrorCodes.BAD_REQUEST, "a worker's credentials need its id");
      if (id !== undefined && !isSubjectToken(id)) throw new DfsError(ErrorCodes.BAD_REQUEST, `${JSON.stringify(id)} must be 1-64 letters, digits, _ or -`);
      process.stdout.write(`${await addCredentials(dir, catalogue(globals().prefix), role as RoleName, id)}\n`);
      if (role === "worker") process.stderr.write(`then, with admin credentials: dfs provision --workers ${id}\n`);
    });

  program
    .command("put")
    .description("store local files (a new version where a path exists), directories with -r, stdin with -")
    .argument("<local...>", "local files (directories with -r, - for stdin), then REMOTE when more than one is named")
    .option("-r, --recursive", "store directories: each keeps its name below REMOTE")
    .option("--replicas <n>", "copies of every piece", integer(1), DEFAULT_REPLICAS)
    .option("--piece-size <bytes>", "piece size, e.g. 4KiB or 8MiB (default 16MiB; 4MiB for stdin)", bytes)
    .option("--timeout <seconds>", "give up a file after this long without progress", integer(1), 60)
    .option("--parallel <n>", "files in flight at once, with several files or -r", integer(1), DEFAULT_PARALLEL_PUTS)
    .option("--verbose", "with several files or -r: a line for every file stored")
    .addHelpText(
      "after",
      "\nExamples:\n  dfs put cat.jpg                    # /cat.jpg\n  dfs put cat.jpg /photos/           # /photos/cat.jpg\n  dfs put a.txt b.txt /docs          # /docs/a.txt, /docs/b.txt\n  dfs put -r photos /backup          # /backup/photos/...\n  tar c . | dfs put - /backup/all.tar",
    )
    .action(async (args: string[], opts: { recursive?: boolean; replicas: number; pieceSize?: number; timeout: number; parallel: number; verbose?: boolean }) => {
      const [locals, remote] = args.length === 1 ? [args, undefined] : [args.slice(0, -1), args.at(-1)!];
      const putOptions = { replicas: opts.replicas, pieceSize: opts.pieceSize, idleTimeoutMs: opts.timeout * 1000 };
      const stored = (r: PutResult) =>
        `stored ${r.path} v${r.version}: ${humanBytes(r.size)} in ${counted(r.pieces, "piece")} × ${counted(r.replicas, "replica")} (sent ${humanBytes(r.servedBytes)}), sha256 ${r.sha256}\n`;
      if (locals.includes("-")) {
        if (locals.length > 1 || opts.recursive) throw new DfsError(ErrorCodes.BAD_REQUEST, "- (stdin) must be the only LOCAL, without -r");
        if (remote === undefined) throw new DfsError(ErrorCodes.BAD_REQUEST, "stdin needs a REMOTE path: dfs put - REMOTE");
        await withClient(globals(), (client) =>
          interruptible(async (signal) => {
            const bar = progressBar("put");
            try {
              const r = await client.putStream(process.stdin, remote, { ...putOptions, onProgress: bar.update, signal });
              bar.stop();
              process.stdout.write(stored(r));
            } finally {
              bar.stop();
            }
          }),
        );
        return;
      }
      const plan = await planPut(locals, remote ?? "/", { recursive: opts.recursive });
      for (const s of plan.skipped) process.stderr.write(`dfs: skipped ${printable(s.local)}: ${s.reason}\n`);
      if (locals.length === 1 && !opts.recursive) {
        const [entry] = plan.entries;
        await withClient(globals(), (client) =>
          // Ctrl-C abandons the version in the log at once instead of leaving workers to find out.
          interruptible(async (signal) => {
            const bar = progressBar("put");
            try {
              const r = await client.put(entry!.local, entry!.remote, { ...putOptions, onProgress: bar.update, signal });
              bar.stop();
              process.stdout.write(stored(r));
            } finally {
              bar.stop();
            }
          }),
        );
        return;
      }
      await withClient(globals(), (client) =>
        // Ctrl-C abandons every version in flight and starts no more.
        interruptible(async (signal) => {
          const started = performance.now();
          const bar = filesBar("put", plan.entries.length);
          let bytes = 0;
          try {
            const { stored: done, failed } = await client.putMany(plan.entries, {
              ...putOptions,
              parallel: opts.parallel,
              signal,
              onFile: (outcome) => {
                if ("error" in outcome) bar.log(`dfs: ${outcome.error.code}: ${printable(`${outcome.entry.local}: ${outcome.error.message}`)}\n`, process.stderr);
                else {
                  bytes += outcome.result.size;
                  if (opts.verbose) bar.log(stored(outcome.result), process.stdout);
                }
                bar.update(bytes);
              },
            });
            bar.stop();
            const seconds = ((performance.now() - started) / 1000).toFixed(1);
            process.stdout.write(`stored ${counted(done.length, "file")}, ${humanBytes(bytes)}, in ${seconds} s${plan.skipped.length ? ` (${plan.skipped.length} skipped)` : ""}\n`);
            if (failed.length > 0) throw new DfsError(ErrorCodes.SOME_FILES_FAILED, `${failed.length} of ${counted(plan.entries.length, "file")} failed`);
          } finally {
            bar.stop();
          }
        }),
      );
    });

  program
    .command("get")
    .description("read a file back, verifying every piece; with -r, every file below a prefix")
    .argument("<remote>", "remote path (with -r, a prefix)")
    .argument("[local]", "local file or directory, or - for stdout (default: basename of remote)")
    .option("-r, --recursive", "every file at or below REMOTE, written below LOCAL at the same relative path")
    .option("--version <n>", "a named version instead of the latest", integer(1))
    .option("--parallel <n>", "with -r: files in flight at once", integer(1), DEFAULT_PARALLEL_GETS)
    .option("--at <point>", AT_HELP, point("--at"))
    .addHelpText(
      "after",
      "\nExamples:\n  dfs get /photos/cat.jpg            # into ./cat.jpg\n  dfs get /photos/cat.jpg pictures/  # into pictures/cat.jpg\n  dfs get /notes.txt - | less\n  dfs get /notes.txt old.txt --at 2h  # as it was two hours ago\n  dfs get -r /backup/photos restore  # /backup/photos/x/y.jpg into restore/x/y.jpg",
    )
    .action(async (remote: string, local: string | undefined, opts: { recursive?: boolean; version?: number; parallel: number; at?: LogPoint }) => {
      if (opts.recursive) {
        if (opts.at !== undefined) throw new DfsError(ErrorCodes.BAD_REQUEST, "get -r reads the latest version of each file: --at names one file's past");
        if (local === "-") throw new DfsError(ErrorCodes.BAD_REQUEST, "get -r writes files, not stdout: use dfs cat");
        if (opts.version !== undefined) throw new DfsError(ErrorCodes.BAD_REQUEST, "get -r reads the latest version of each file: --version names one file's");
        const name = basename(remote.replace(/\/+$/, ""));
        if (local === undefined && name === "") throw new DfsError(ErrorCodes.BAD_REQUEST, "get -r / needs a local directory: dfs get -r / DIR");
        const dir = local ?? name;
        await withClient(globals(), (client) =>
          // Ctrl-C stops every get in flight and removes its temporary file.
          interruptible(async (signal) => {
            const started = performance.now();
            let bar: ReturnType<typeof filesBar> | undefined;
            let bytes = 0;
            try {
              const { files, written, failed } = await client.getTree(remote, dir, {
                parallel: opts.parallel,
                signal,
                onFile: (outcome) => {
                  if ("error" in outcome) bar?.log(`dfs: ${outcome.error.code}: ${printable(`${outcome.remote}: ${outcome.error.message}`)}\n`, process.stderr);
                  else bytes += outcome.result.size;
                  bar?.update(bytes);
                },
                onListed: (n) => (bar = filesBar("get", n)),
              });
              bar?.stop();
              const seconds = ((performance.now() - started) / 1000).toFixed(1);
              process.stderr.write(`read ${counted(written.length, "file")} into ${dir}: ${humanBytes(bytes)} in ${seconds} s, sha256 verified\n`);
              if (failed.length > 0) throw new DfsError(ErrorCodes.SOME_FILES_FAILED, `${failed.length} of ${counted(files, "file")} failed`);
            } finally {
              bar?.stop();
            }
          }),
        );
        return;
      }
      // A past version's pieces, from the log (the auditor's right), read as any version's are.
      const location = opts.at ? await withClient(globals(), (auditor) => auditor.locate(remote, opts.version, { at: opts.at }), "auditor") : undefined;
      await withClient(globals(), (client) =>
        // Ctrl-C stops the get and removes its temporary file.
        interruptible(async (signal) => {
          const toStdout = local === "-";
          const bar = toStdout ? progressBar("") : progressBar("get");
          try {
            // Into a directory (one that exists, or any path ending in /), as cp does.
            const intoDir = local !== undefined && !toStdout && (local.endsWith("/") || statSync(local, { throwIfNoEntry: false })?.isDirectory());
            const dest = toStdout ? process.stdout : intoDir ? join(local!, basename(remote)) : (local ?? basename(remote));
            const r = await client.get(remote, dest, { version: opts.version, location, onProgress: bar.update, signal });
            bar.stop();
            if (!toStdout) process.stderr.write(`read ${r.path} v${r.version} into ${dest as string}: ${humanBytes(r.size)}, sha256 verified\n`);
          } finally {
            bar.stop();
          }
        }),
      );
    });

  program
    .command("cat")
    .description("write files to stdout, one after the other, each verified")
    .argument("<remote...>", "remote paths")
    .option("--version <n>", "a named version instead of the latest (of every file named)", integer(1))
    .option("--at <point>", AT_HELP, point("--at"))
    .addHelpText("after", "\nExample:\n  dfs cat /logs/a.txt /logs/b.txt | grep error")
    .action(async (remotes: string[], opts: { version?: number; at?: LogPoint }) => {
      const at = opts.at;
      const locations = at ? await withClient(globals(), (auditor) => Promise.all(remotes.map((r) => auditor.locate(r, opts.version, { at }))), "auditor") : undefined;
      await withClient(globals(), (client) =>
        interruptible(async (signal) => {
          for (const [i, remote] of remotes.entries()) await client.get(remote, process.stdout, { version: opts.version, location: locations?.[i], signal });
        }),
      );
    });

  program
    .command("ls")
    .description("list files (the latest committed version of each)")
    .addHelpText("after", "\nExamples:\n  dfs ls /photos\n  dfs ls --at 2h\n  dfs ls --json | jq -r '.[].path'")
    .argument("[prefix]", "only files at or below this path")
    .option("--json", "one JSON array")
    .option("--at <point>", AT_HELP, point("--at"))
    .action(async (prefix: string | undefined, opts: { json?: boolean; at?: LogPoint }) => {
      await withClient(globals(), async (client) => {
        const files = await client.list(prefix, { at: opts.at });
        if (opts.json) process.stdout.write(JSON.stringify(files, null, 2) + "\n");
        else if (files.length) process.stdout.write(formatListing(files) + "\n");
      }, opts.at ? "auditor" : "client");
    });

  program
    .command("stat")
    .description("show a file: size, sha256, pieces, versions (and with --pieces, where each piece is)")
    .argument("<remote>", "remote path")
    .option("--pieces", "the layout: each piece's offset, size, sha256 and the workers holding it")
    .option("--json", "JSON (with --pieces, the layout under `layout`)")
    .option("--at <point>", AT_HELP, point("--at"))
    .addHelpText("after", "\nExample:\n  dfs stat /photos/cat.jpg --pieces\n  dfs stat /photos/cat.jpg --at 2026-11-27T10:00Z")
    .action(async (remote: string, opts: { json?: boolean; pieces?: boolean; at?: LogPoint }) => {
      await withClient(globals(), async (client) => {
        // As of a point: the file and its layout then, from one fold of the log.
        const table = opts.at ? (await client.tableAt(opts.at)).state : undefined;
        const info = table ? stat(table, remote) : await client.stat(remote);
        const layout = opts.pieces ? (table ? locate(table, remote, info.version) : await client.locate(remote, info.version)) : undefined;
        if (opts.json) process.stdout.write(JSON.stringify(layout ? { ...info, layout: layout.pieces } : info, null, 2) + "\n");
        else process.stdout.write(formatStat(info) + (layout ? "\n" + formatLayout(layout) : "") + "\n");
      }, opts.at ? "auditor" : "client");
    });

  program
    .command("rm")
    .description("delete a file (every version), or one version")
    .addHelpText("after", "\nExamples:\n  dfs rm /photos/cat.jpg              # every version\n  dfs rm /photos/cat.jpg --version 2  # only version 2")
    .argument("<remote>", "remote path")
    .option("--version <n>", "delete only this version", integer(1))
    .action(async (remote: string, opts: { version?: number }) => {
      await withClient(globals(), async (client) => {
        await client.remove(remote, opts.version);
        process.stderr.write(`deleted ${remote}${opts.version ? ` v${opts.version}` : ""}\n`);
      });
    });

  program
    .command("retention")
    .description("show or set which older versions the store keeps (setting it is the admin's)")
    .option("--keep-versions <n>", "keep each path's newest N committed versions", integer(1))
    .option("--keep-for <duration>", "keep a version this long after a newer one committed: 90s, 10m, 2h, 30d", duration)
    .option("--keep-all", "keep every version until it is deleted (the default)")
    .addHelpText(
      "after",
      "\nWith both limits a version goes only once it is past both. Each version removed is a VersionExpired\nevent, and its pieces are dropped where no other version needs them.\n\nExamples:\n  dfs retention                                # show the policy\n  dfs retention --keep-versions 5 --keep-for 30d\n  dfs retention --keep-all",
    )
    .action(async (opts: { keepVersions?: number; keepFor?: number; keepAll?: boolean }) => {
      const setting = opts.keepVersions !== undefined || opts.keepFor !== undefined;
      if (setting && opts.keepAll) throw new DfsError(ErrorCodes.BAD_REQUEST, "--keep-all keeps every version: it takes no other limit");
      if (!setting && !opts.keepAll) {
        await withClient(globals(), async (client) => process.stdout.write(`${describePolicy((await client.status()).retention)}\n`));
        return;
      }
      await withClient(
        globals(),
        async (admin) => {
          const policy = await admin.setRetention(opts.keepAll ? {} : { keepVersions: opts.keepVersions, keepForMs: opts.keepFor });
          process.stderr.write(`retention: ${describePolicy(policy)}\n`);
        },
        "admin",
      );
    });

  program
    .command("workers")
    .description("list the workers: live or lost, pieces held, free disk")
    .addHelpText("after", "\nExamples:\n  dfs workers\n  dfs workers --json | jq '.[] | select(.live | not)'")
    .option("--json", "JSON")
    .action(async (opts: { json?: boolean }) => {
      await withClient(globals(), async (client) => {
        const workers = await client.workers();
        if (opts.json) process.stdout.write(JSON.stringify(workers, null, 2) + "\n");
        else if (workers.length) process.stdout.write(formatWorkers(workers) + "\n");
      });
    });

  program
    .command("history")
    .description("every version a path ever had, committed, abandoned or deleted, with its events (from the log)")
    .argument("<remote>", "remote path")
    .option("--json", "JSON")
    .addHelpText("after", "\nExample:\n  dfs history /docs/report.pdf")
    .action(async (remote: string, opts: { json?: boolean }) => {
      await withClient(
        globals(),
        async (client) => {
          const versions = await client.history(remote);
          process.stdout.write((opts.json ? JSON.stringify(versions, null, 2) : formatHistory(versions)) + "\n");
        },
        "auditor",
      );
    });

  program
    .command("status")
    .description("the store's health: workers, pieces short of copies, copies being made")
    .option("--json", "JSON")
    .addHelpText("after", "\nExample:\n  dfs status\n  dfs status --json | jq .pieces")
    .action(async (opts: { json?: boolean }) => {
      await withClient(globals(), async (client) => {
        const status = await client.status();
        process.stdout.write((opts.json ? JSON.stringify(status, null, 2) : formatStatus(status)) + "\n");
      });
    });

  program
    .command("scrub")
    .description("have workers hash every piece again; wait until the bad ones are repaired")
    .option("--worker <id>", "only this worker (default: every live one)")
    .option("--timeout <seconds>", "how long to wait for repairs", integer(1), 120)
    .option("--json", "JSON")
    .addHelpText("after", "\nExits 0 once every piece found bad is whole again, 1 (PIECE_UNAVAILABLE) listing those that are not.\n\nExample:\n  dfs scrub --worker w2")
    .action(async (opts: { worker?: string; timeout: number; json?: boolean }) => {
      await withClient(globals(), async (client) => {
        const result = await client.scrub({
          worker: opts.worker,
          repairTimeoutMs: opts.timeout * 1000,
          onProgress: (p) => process.stderr.isTTY && process.stderr.write(`\rscrub ${p.workerId}: ${p.checked} checked, ${p.bad} bad `),
        });
        if (process.stderr.isTTY) process.stderr.write("\n");
        if (opts.json) process.stdout.write(JSON.stringify(result, null, 2) + "\n");
        else process.stdout.write(formatScrub(result) + "\n");
        if (result.unrepaired.length > 0) {
          throw new DfsError(ErrorCodes.PIECE_UNAVAILABLE, `${result.unrepaired.length} bad piece${result.unrepaired.length === 1 ? " is" : "s are"} not repaired: ${result.unrepaired.map((h) => h.sha256.slice(0, 12)).join(", ")}`);
        }
      });
    });

  program
    .command("tail")
    .description("print the audit log: one line per event")
    .option("--follow", "keep printing new events (through a server restart)")
    .option("--json", "one JSON object per line")
    .option("--path <prefix>", "only events of files at or below this path")
    .option("--type <types>", "only events of these types, comma-separated (e.g. FileCommitted,FileDeleted)")
    .option("--worker <id>", "only events about or assigned to this worker")
    .option("--since <point>", "from this point: a sequence, an ISO 8601 time, or 90s/10m/2h/3d ago", point("--since"))
    .option("--until <point>", "up to this point (with --follow, ends there)", point("--until"))
    .addOption(new Option("--from <seq>", "start at this sequence (as --since SEQ)").argParser(integer(1)).hideHelp())
    .addOption(new Option("--color <when>", "colour the type column and rejections").choices(["auto", "always", "never"]).default("auto"))
    .addHelpText("after", "\nExamples:\n  dfs tail --path /photos --type FileCommitted,FileDeleted\n  dfs tail --since 10m --follow --json | jq .event.type")
    .action(async (opts: { follow?: boolean; json?: boolean; path?: string; type?: string; worker?: string; since?: LogPoint; until?: LogPoint; from?: number; color: "auto" | "always" | "never" }) => {
      const colour = useColour(opts.color, process.stdout);
      await withClient(globals(), async (client) => {
        const filters = {
          follow: opts.follow,
          since: opts.since ?? (opts.from === undefined ? undefined : { seq: opts.from }),
          until: opts.until,
          path: opts.path,
          types: opts.type?.split(",").filter(Boolean),
          worker: opts.worker,
        };
        const reader = await client.tail(filters, (entry) => {
          process.stdout.write((opts.json ? eventJson(entry) : formatEvent(entry, colour)) + "\n");
        });
        // Until Ctrl-C, `--until`, or a server that went away and did not come back (an error).
        if (opts.follow) await Promise.race([untilStopped(async () => reader.stop()), reader.done]);
        else await reader.done;
      }, "auditor");
    });

  program
    .command("replay")
    .description("rebuild the master's table from the log alone and print it")
    .addHelpText("after", "\nExamples:\n  dfs replay --check\n  dfs replay --until 2026-11-28T10:00:00Z\n  dfs replay --json | jq .rejected")
    .option("--json", "the whole projection as JSON")
    .option("--check", "compare with the live master's table (exit 1 if they differ)")
    .option("--until <point>", "the table right after this point: a sequence, an ISO 8601 time, or 90s/10m/2h/3d ago", point("--until"))
    .action(async (opts: { json?: boolean; check?: boolean; until?: LogPoint }) => {
      if (opts.check && opts.until) throw new DfsError(ErrorCodes.BAD_REQUEST, "--check compares the live master's table with the log's: it takes no --until");
      await withClient(globals(), async (client) => {
        const live = opts.check ? await client.masterState() : undefined;
        const { state } = await client.replay(live?.lastSeq ?? opts.until);
        const digest = stateDigest(state);
        if (opts.json) process.stdout.write(JSON.stringify(projection(state), null, 2) + "\n");
        else {
          const files = [...state.paths.values()].map((id) => state.files.get(id)!);
          const { rejected } = state;
          process.stdout.write(`replayed ${counted(state.lastSeq, "event")} (${rejected.count} rejected): ${counted(files.length, "file")}, ${counted(state.workers.size, "worker")}\n`);
          if (rejected.count > rejected.recent.length) process.stdout.write(`  the latest ${rejected.recent.length} rejected:\n`);
          for (const r of rejected.recent) process.stdout.write(`  rejected seq ${r.seq}: ${r.reason}\n`);
          // Many lines a write: a write a line was a tenth of the CPU of replaying 300,000 files.
          let listing = "";
          for (const f of files.sort((a, b) => (a.path < b.path ? -1 : 1))) {
            const versions = [...f.versions.values()].map((v) => `v${v.version}:${v.status}`).join(" ");
            listing += `  ${f.path}  ${versions}\n`;
            if (listing.length >= 64 * 1024) {
              process.stdout.write(listing);
              listing = "";
            }
          }
          process.stdout.write(listing);
          for (const w of [...state.workers.values()].sort((a, b) => (a.workerId < b.workerId ? -1 : 1))) {
            process.stdout.write(`  worker ${w.workerId} ${w.live ? "live" : "lost"}, ${humanBytes(w.assignedBytes)} placed\n`);
          }
          process.stdout.write(`digest ${digest}\n`);
        }
        if (live) {
          if (live.digest !== digest) throw new DfsError(ErrorCodes.INTERNAL, `replay differs from the live master at sequence ${live.lastSeq}: ${digest} ≠ ${live.digest}`);
          process.stderr.write(`replay matches the live master at sequence ${live.lastSeq}\n`);
          // The snapshot masters start from must be what the log says too.
          const snapshot = await client.latestSnapshot();
          if (snapshot) {
            const replayed = snapshot.seq === state.lastSeq ? digest : stateDigest((await client.replay(snapshot.seq)).state);
            if (replayed !== snapshot.digest) throw new DfsError(ErrorCodes.INTERNAL, `replay differs from the snapshot at sequence ${snapshot.seq}: ${replayed} ≠ ${snapshot.digest}`);
            process.stderr.write(`replay matches the snapshot at sequence ${snapshot.seq}\n`);
          }
        }
      }, "auditor");
    });

  program
    .command("demo")
    .description("start a local cluster in a temporary directory, put and get sample files, show ls and the log, stop")
    .addHelpText("after", "\nExample:\n  dfs demo --workers 5")
    .option("--workers <n>", "number of workers", integer(1), 3)
    .action(async (opts: { workers: number }) => {
      await runDemo({ workers: opts.workers, cliEntry: CLI_ENTRY, out: (line) => process.stdout.write(line + "\n") });
    });

  return program;
}

export async function main(argv: string[]): Promise<void> {
  // A reader that stopped reading (`dfs tail | head -1`) ends the command quietly, as
  // `git log | head` does: nothing more is wanted.
  process.stdout.on("error", (err: NodeJS.ErrnoException) => (err.code === "EPIPE" ? process.exit(EXIT.ok) : fail(err)));
  // Whatever escapes is still one coded line (INTERNAL: a bug), never a stack trace.
  process.on("uncaughtException", fail);
  process.on("unhandledRejection", fail);
  const program = buildProgram();
  const args = argv.slice(2);
  if (args.length === 1 && (args[0] === "--version" || args[0] === "-V")) {
    process.stdout.write(`${VERSION}\n`);
    return;
  }
  try {
    await failIfStuck(program.parseAsync(argv), () =>
      fail(new DfsError(ErrorCodes.INTERNAL, "the command was left waiting for something that can no longer happen (a bug: please report it with the command)")),
    );
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? EXIT.ok : EXIT.usage);
    fail(err);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === CLI_ENTRY) void main(process.argv);
