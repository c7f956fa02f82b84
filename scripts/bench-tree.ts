// Many small files: `dfs put -r` and `dfs get -r` of a tree of small files, run as a user
// runs them (the compiled CLI as a child process, start-up included), through `dfs up`'s
// local cluster (a nats-server, two masters, three workers), at 1 and 3 replicas.
// Run: npm run bench:tree [-- FILES BYTES PARALLEL]
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { LocalCluster } from "../client/local-cluster.js";

const files = Number(process.argv[2] ?? 2000);
const bytes = Number(process.argv[3] ?? 1024);
const parallel = Number(process.argv[4] ?? 16);
const cli = fileURLToPath(new URL("../dist/client/cli.js", import.meta.url));

const dir = await mkdtemp(join(tmpdir(), "dfs-bench-"));
const cluster = await LocalCluster.start({ dir: join(dir, "store"), cliEntry: cli });
try {
  const tree = join(dir, "tree");
  for (let i = 0; i < files; i++) {
    if (i % 100 === 0) await mkdir(join(tree, `d${i / 100}`), { recursive: true });
    await writeFile(join(tree, `d${Math.floor(i / 100)}`, `f${i}`), randomBytes(bytes));
  }
  const { servers, prefix, creds } = cluster.connection("client");
  const flags = ["--nats", servers.join(","), "--creds", creds, ...(prefix ? ["--prefix", prefix] : [])];
  /** Run the CLI, fail loudly, and say how long it took (s). */
  const timed = (args: string[]) => {
    const started = performance.now();
    const run = spawnSync(process.execPath, [cli, ...flags, ...args], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
    if (run.status !== 0) throw new Error(`dfs ${args.join(" ")} exited ${run.status}: ${run.stderr}`);
    return (performance.now() - started) / 1000;
  };
  console.log(`${files} files of ${bytes} B, ${parallel} in flight, 2 masters, 3 workers, one nats-server (files/s, whole command)`);
  for (const replicas of [1, 3]) {
    const put = timed(["put", "-r", tree, `/bench/r${replicas}`, "--replicas", String(replicas), "--parallel", String(parallel)]);
    const get = timed(["get", "-r", `/bench/r${replicas}`, join(dir, `back-r${replicas}`), "--parallel", String(parallel)]);
    console.log(`replicas ${replicas}: put -r ${(files / put).toFixed(0)} files/s (${put.toFixed(1)} s), get -r ${(files / get).toFixed(0)} files/s (${get.toFixed(1)} s)`);
  }
} finally {
  await cluster.stop();
  await rm(dir, { recursive: true, force: true });
}
