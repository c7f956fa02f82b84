// Memory of the data path: peak RSS of `dfs put` and `dfs get` run as the CLI (through
// /usr/bin/time -f %M), and the workers' RSS (from /proc) after a restart with data stored and
// after a put and a get. A local cluster (`dfs up`: one nats-server, one master, three workers)
// in a temp dir. Run: npm run bench:memory [-- RUNS [CASES]]; CASES is a comma-separated list
// of case names (default: all), each printed as the median of RUNS.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, createWriteStream, openSync } from "node:fs";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "../client/nats-server.js";

const MiB = 1024 * 1024;
const runs = Number(process.argv[2] ?? 3);
const only = process.argv[3]?.split(",");
const dfs = fileURLToPath(new URL("../bin/dfs.js", import.meta.url));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mb = (kib: number) => Math.round((kib * 1024) / 1e6);

const dir = await mkdtemp(join(tmpdir(), "dfs-memory-"));
const store = join(dir, "store");

async function randomFile(name: string, size: number): Promise<string> {
  const path = join(dir, name);
  const out = createWriteStream(path);
  for (let left = size; left > 0; left -= 16 * MiB) {
    if (!out.write(randomBytes(Math.min(16 * MiB, left)))) await new Promise<void>((r) => out.once("drain", () => r()));
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  return path;
}

/** `dfs up` as a child, resolved with its URL once it is up. */
async function up(): Promise<{ url: string; stop: () => Promise<void>; pid: number }> {
  const port = String(await freePort());
  const child = spawn(process.execPath, [dfs, "up", "--dir", store, "--port", port, "--masters", "1", "--workers", "3"], { stdio: ["ignore", "pipe", "ignore"] });
  const url = await new Promise<string>((resolve, reject) => {
    let text = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      text += chunk.toString();
      const found = /dfs is up: (\S+)/.exec(text);
      if (found) resolve(found[1]!);
    });
    child.once("exit", (code) => reject(new Error(`dfs up exited with ${code}`)));
  });
  const stop = () =>
    new Promise<void>((resolve) => {
      child.once("exit", () => resolve());
      child.kill("SIGINT");
    });
  return { url, stop, pid: child.pid! };
}

/** Peak RSS (KiB) of one dfs command, its stdin read from `stdinFile` if given. */
async function peakKiB(url: string, args: string[], stdinFile?: string): Promise<number> {
  const stdin = stdinFile === undefined ? "ignore" : openSync(stdinFile, "r");
  try {
    const child = spawn("/usr/bin/time", ["-f", "peak %M", process.execPath, dfs, ...args], {
      env: { ...process.env, DFS_NATS: url, DFS_CREDS_DIR: join(store, "creds") },
      stdio: [stdin, "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    const found = /peak (\d+)/.exec(stderr);
    if (code !== 0 || !found) throw new Error(`dfs ${args.join(" ")} failed (${code}): ${stderr}`);
    return Number(found[1]);
  } finally {
    if (typeof stdin === "number") closeSync(stdin);
  }
}

/** The workers of the `dfs up` whose pid is given: RSS now and its peak (KiB) each, from /proc. */
async function workers(upPid: number): Promise<{ rss: number; hwm: number; file: number }[]> {
  const out: { rss: number; hwm: number; file: number }[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const status = await readFile(`/proc/${entry}/status`, "utf8").catch(() => "");
    const cmdline = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    if (Number(/PPid:\s+(\d+)/.exec(status)?.[1]) !== upPid || !cmdline.split("\0").includes("worker")) continue;
    const field = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
    out.push({ rss: field("VmRSS"), hwm: field("VmHWM"), file: field("RssFile") });
  }
  return out;
}

const show = (ws: { rss: number; hwm: number; file: number }[]) =>
  `RSS ${ws.map((w) => mb(w.rss)).join("/")} MB (of which file-backed ${ws.map((w) => mb(w.file)).join("/")}), peak ${ws.map((w) => mb(w.hwm)).join("/")} MB`;

try {
  const files = { "256MiB": await randomFile("256MiB", 256 * MiB), "1GiB": await randomFile("1GiB", 1024 * MiB), "300MiB": await randomFile("300MiB", 300 * MiB) };
  const cases: { name: string; file: keyof typeof files; put: string[]; stdin?: true }[] = [
    { name: "256MiB-r1", file: "256MiB", put: ["--replicas", "1"] },
    { name: "1GiB-r1", file: "1GiB", put: ["--replicas", "1"] },
    { name: "256MiB-r3", file: "256MiB", put: ["--replicas", "3"] },
    { name: "1GiB-r3", file: "1GiB", put: ["--replicas", "3"] },
    { name: "256MiB-p256", file: "256MiB", put: ["--replicas", "1", "--piece-size", "256MiB"] },
    { name: "1GiB-stdin-r1", file: "1GiB", put: ["--replicas", "1"], stdin: true },
  ];
  let cluster = await up();
  console.log(`client peak RSS, MB (10^6 bytes), median of ${runs} (${process.execPath} ${dfs} put|get through /usr/bin/time -f %M)`);
  for (const c of cases.filter((c) => !only || only.includes(c.name))) {
    const puts: number[] = [];
    const gets: number[] = [];
    for (let run = 0; run < runs; run++) {
      const remote = `/memory/${c.name}/${run}`;
      puts.push(await (c.stdin ? peakKiB(cluster.url, ["put", "-", remote, ...c.put], files[c.file]) : peakKiB(cluster.url, ["put", files[c.file], remote, ...c.put])));
      gets.push(await peakKiB(cluster.url, ["get", remote, join(dir, "output")]));
      await peakKiB(cluster.url, ["rm", remote]);
      await rm(join(dir, "output"), { force: true });
    }
    console.log(`${c.name}: put ${mb(median(puts))} (${puts.map(mb).join(", ")}), get ${mb(median(gets))} (${gets.map(mb).join(", ")})`);
  }
  if (!only || only.includes("workers")) {
    // About 1 GiB on every worker, then a restart: what a worker holds at start with data stored.
    await peakKiB(cluster.url, ["put", files["1GiB"], "/memory/stored", "--replicas", "3"]);
    console.log(`workers after a 1 GiB put at 3 replicas: ${show(await workers(cluster.pid))}`);
    await cluster.stop();
    cluster = await up();
    await new Promise((r) => setTimeout(r, 10_000));
    console.log(`workers 10 s after a restart with 1 GiB stored: ${show(await workers(cluster.pid))}`);
    await peakKiB(cluster.url, ["put", files["300MiB"], "/memory/300", "--replicas", "3"]);
    await peakKiB(cluster.url, ["get", "/memory/300", join(dir, "output")]);
    console.log(`workers after a 300 MiB put (3 replicas) and get: ${show(await workers(cluster.pid))}`);
  }
  await cluster.stop();
} finally {
  await rm(dir, { recursive: true, force: true });
}
