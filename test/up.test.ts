// `dfs up` and `dfs demo` as a user runs them: real processes, stopped by a signal.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile, readdir, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { freePort } from "../client/nats-server.js";
import { CLI, runCli, tempDir, waitFor } from "./harness.js";

const test = suite("dfs up");

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Process ids of `dfs up`'s children (nats-server, master, workers), from /proc. */
async function childrenOf(pid: number): Promise<number[]> {
  const out: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (ppid === pid) out.push(Number(entry));
  }
  return out;
}

test("dfs up --tls runs a store with authentication and TLS until SIGINT, then stops every child", async () => {
  const dir = await tempDir("up");
  const port = await freePort();
  // As in the quick start: `dfs up` in a folder, then commands in that folder find their
  // credentials and the CA in ./.dfs by themselves.
  const store = join(dir, ".dfs");
  const up = spawn(process.execPath, [CLI, "up", "--port", String(port), "--dir", store, "--workers", "2", "--tls"], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  up.stdout!.on("data", (c: Buffer) => (stdout += c.toString()));
  up.stderr!.resume();
  const exited = new Promise<number | null>((resolve) => up.once("exit", (code) => resolve(code)));
  try {
    await waitFor("dfs up to say it is up", () => stdout.includes("dfs is up"), 30_000);
    assert.match(stdout, new RegExp(`dfs is up: tls://127\\.0\\.0\\.1:${port} \\(1 master, 2 workers`));
    const children = await childrenOf(up.pid!);
    assert.is(children.length, 4, "nats-server, a master and two workers");
    const flags = ["--nats", `tls://127.0.0.1:${port}`];
    await writeFile(join(dir, "hello.txt"), "hello from dfs up\n");
    const put = await runCli([...flags, "put", join(dir, "hello.txt"), "/hello.txt", "--replicas", "2"], { cwd: dir });
    assert.is(put.code, 0, put.stderr);
    const get = await runCli([...flags, "get", "/hello.txt", "-"], { cwd: dir });
    assert.is(get.stdout, "hello from dfs up\n");
    const tail = await runCli([...flags, "tail"], { cwd: dir });
    assert.match(tail.stdout, /FileCommitted\s+path=\/hello\.txt/, "tail runs as the auditor");
    // Elsewhere, without the CA or without credentials, the server is closed.
    const noCa = await runCli([...flags, "--creds-dir", join(store, "creds"), "ls"], { cwd: tmpdir() });
    assert.is(noCa.code, 1);
    assert.match(noCa.stderr, /^dfs: UNAVAILABLE: .*certificate/i);
    const noCreds = await runCli([...flags, "--tls-ca", join(store, "tls", "ca.pem"), "--creds-dir", join(dir, "none"), "ls"], { cwd: tmpdir() });
    assert.match(noCreds.stderr, /^dfs: UNAUTHORIZED: /);
    up.kill("SIGINT");
    assert.is(await exited, 0, "dfs up exits 0 on SIGINT");
    assert.match(stdout, /dfs is down/);
    await waitFor("every child to be gone", () => children.every((pid) => !alive(pid)), 10_000);
    assert.equal((await readdir(store)).sort(), ["creds", "nats", "nats.conf", "tls", "workers"], "everything stays under --dir");
    assert.equal((await readdir(join(store, "workers"))).sort(), ["w1", "w2"]);
    assert.equal(
      (await readdir(join(store, "creds"))).sort(),
      ["admin.creds", "auditor.creds", "client.creds", "keys", "master.creds", "server.conf", "worker-w1.creds", "worker-w2.creds"],
    );
  } finally {
    if (up.exitCode === null) up.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
  }
});

test("dfs up on a port that is taken says so and exits non-zero", async () => {
  const dir = await tempDir("up-busy");
  const holder = createServer();
  const port = await new Promise<number>((resolve) => holder.listen(0, "127.0.0.1", () => resolve((holder.address() as { port: number }).port)));
  try {
    const up = await runCli(["up", "--port", String(port), "--dir", join(dir, "store")], { timeoutMs: 30_000 });
    assert.is(up.code, 1);
    assert.match(up.stderr, new RegExp(`^dfs: UNAVAILABLE: port ${port} on 127\\.0\\.0\\.1 is already in use`));
  } finally {
    holder.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test("dfs demo puts, gets and verifies sample files, then exits 0", async () => {
  const demo = await runCli(["demo"], { timeoutMs: 120_000 });
  assert.is(demo.code, 0, demo.stderr);
  assert.match(demo.stdout, /get \/demo\/data\/random-20MiB\.bin v1: 20\.0 MiB identical/);
  assert.match(demo.stdout, /replay of \d+ events matches the live master/);
  assert.match(demo.stdout, /demo passed/);
  const dir = /starting a local cluster in (\S+)/.exec(demo.stdout)?.[1];
  assert.ok(dir && !existsSync(dir), "the demo removes its temporary directory");
});

test.run();
