// `dfs up` keeps its store running and takes it down with it: children killed with kill -9
// come back, and nothing outlives `dfs up`, however it ends.
import { spawn } from "node:child_process";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { freePort } from "../client/nats-server.js";
import { PARENT_PIPE_ENV } from "../client/parent-pipe.js";
import { stopChild } from "../client/stop-child.js";
import { SupervisedChild } from "../client/supervisor.js";
import { CLI, TestStore, alive, childrenOf, runCli, startUp, tempDir, waitFor, type ProcessInfo, type RunningUp } from "./harness.js";

const isMaster = (p: ProcessInfo) => p.args.includes("master");
const isWorker = (id: string) => (p: ProcessInfo) => p.args.includes("worker") && p.args[p.args.indexOf("--id") + 1] === id;
const isNatsServer = (p: ProcessInfo) => p.args[0]!.endsWith("nats-server");

/** The one child of `dfs up` that `which` picks, once there is exactly one. */
async function theChild(up: RunningUp, which: (p: ProcessInfo) => boolean): Promise<ProcessInfo> {
  const found = (await childrenOf(up.process.pid!)).filter(which);
  assert.is(found.length, 1, `one such child of dfs up: ${JSON.stringify(found)}`);
  return found[0]!;
}

/** kill -9 that child, then wait until `dfs up` runs a new one (another pid). */
async function killAndSeeRestarted(up: RunningUp, which: (p: ProcessInfo) => boolean): Promise<ProcessInfo> {
  const victim = await theChild(up, which);
  process.kill(victim.pid, "SIGKILL");
  return waitFor(
    "a new child in its place",
    async () => (await childrenOf(up.process.pid!)).find((p) => which(p) && p.pid !== victim.pid),
    15_000,
    100,
  );
}

const store = suite<{ dir: string; up: RunningUp }>("dfs up - supervision", {} as { dir: string; up: RunningUp });

store.before(async (ctx) => {
  ctx.dir = await tempDir("supervise");
  // One master, so that a put working again proves the killed master came back.
  ctx.up = await startUp(["--port", String(await freePort()), "--dir", join(ctx.dir, ".dfs"), "--masters", "1", "--workers", "2"]);
});

store.after(async (ctx) => {
  await ctx.up?.kill();
  await rm(ctx.dir, { recursive: true, force: true });
});

/** Put `text` as `remote` through the CLI, run from the folder holding `.dfs`; retried until it works (bounded). */
async function putEventually(ctx: { dir: string; up: RunningUp }, remote: string, text: string): Promise<void> {
  const local = join(ctx.dir, "upload.txt");
  await writeFile(local, text);
  await waitFor(
    `a put of ${remote} to work`,
    async () => {
      const put = await runCli(["--nats", ctx.up.url, "put", local, remote, "--replicas", "2", "--timeout", "10"], { cwd: ctx.dir, timeoutMs: 15_000 });
      if (put.code !== 0) throw new Error(put.stderr);
      return true;
    },
    30_000,
    200,
  );
}

async function get(ctx: { dir: string; up: RunningUp }, remote: string): Promise<string> {
  const got = await runCli(["--nats", ctx.up.url, "get", remote, "-"], { cwd: ctx.dir });
  if (got.code !== 0) throw new Error(got.stderr);
  return got.stdout;
}

store("a master killed with kill -9 is restarted, and puts work again", async (ctx) => {
  await putEventually(ctx, "/before-master.txt", "written before the master died\n");
  await killAndSeeRestarted(ctx.up, isMaster);
  await putEventually(ctx, "/after-master.txt", "written after the master came back\n");
  assert.is(await get(ctx, "/after-master.txt"), "written after the master came back\n");
  assert.is(await get(ctx, "/before-master.txt"), "written before the master died\n");
  assert.match(ctx.up.stderr(), /dfs up: master 1 exited with signal SIGKILL; restarting in 0\.5 s\n/);
});

store("a worker killed with kill -9 is restarted, and puts that need it work again", async (ctx) => {
  await killAndSeeRestarted(ctx.up, isWorker("w1"));
  // Two replicas on two workers: the put needs w1 back.
  await putEventually(ctx, "/after-worker.txt", "both workers hold this\n");
  assert.is(await get(ctx, "/after-worker.txt"), "both workers hold this\n");
  assert.match(ctx.up.stderr(), /dfs up: worker w1 exited with signal SIGKILL; restarting in 0\.5 s\n/);
});

store("a nats-server killed with kill -9 is restarted on the same port and store; the roles reconnect without exiting", async (ctx) => {
  await putEventually(ctx, "/before-server.txt", "written before the server died\n");
  const server = await theChild(ctx.up, isNatsServer);
  const roles = (await childrenOf(ctx.up.process.pid!)).filter((p) => !isNatsServer(p)).map((p) => p.pid);
  const restarted = await killAndSeeRestarted(ctx.up, isNatsServer);
  assert.equal(restarted.args.slice(1), server.args.slice(1), "the same port, store and configuration");
  assert.is(await waitFor("the file put before to read back", () => get(ctx, "/before-server.txt"), 30_000, 200), "written before the server died\n");
  await putEventually(ctx, "/after-server.txt", "written after the server came back\n");
  assert.is(await get(ctx, "/after-server.txt"), "written after the server came back\n");
  assert.ok(roles.every(alive), "the master and the workers rode the restart out");
  assert.match(ctx.up.stderr(), /dfs up: nats-server exited with signal SIGKILL; restarting in 0\.5 s\n/);
});

store.run();

const ending = suite("dfs up - how it ends");

/** A fresh `dfs up` with its children, for a test that ends it. */
async function startAndList(name: string): Promise<{ dir: string; up: RunningUp; children: number[] }> {
  const dir = await tempDir(name);
  const up = await startUp(["--port", String(await freePort()), "--dir", join(dir, ".dfs"), "--workers", "1"]);
  const children = (await childrenOf(up.process.pid!)).map((p) => p.pid);
  assert.is(children.length, 4, "nats-server, two masters and a worker");
  return { dir, up, children };
}

ending("dfs up killed with kill -9 leaves nothing running within a few seconds", async () => {
  const { dir, up, children } = await startAndList("up-kill");
  try {
    up.process.kill("SIGKILL");
    await up.exited;
    await waitFor("every child of dfs up to be gone", () => children.every((pid) => !alive(pid)), 5_000);
  } finally {
    await up.kill();
    for (const pid of children) if (alive(pid)) process.kill(pid, "SIGKILL");
    await rm(dir, { recursive: true, force: true });
  }
});

ending("dfs up stops everything cleanly on SIGHUP and exits 0", async () => {
  const { dir, up, children } = await startAndList("up-hup");
  try {
    up.process.kill("SIGHUP");
    assert.is(await up.exited, 0);
    assert.match(up.stderr(), /dfs up: SIGHUP: stopping everything\n/);
    assert.match(up.stdout(), /dfs is down\n/);
    assert.not.match(up.stderr(), /restarting/, "nothing is restarted while stopping");
    assert.ok(children.every((pid) => !alive(pid)), "every child is gone when dfs up exits");
  } finally {
    await up.kill();
    await rm(dir, { recursive: true, force: true });
  }
});

ending.run();

const pipe = suite("parent pipe");

pipe("a master and a worker started with DFS_PARENT_PIPE=1 stop cleanly (exit 0) when their stdin ends", async () => {
  const testStore = await TestStore.start("parent-pipe");
  try {
    await testStore.prepareWorker("w1");
    const roles = [["master"], ["worker", "--id", "w1", "--data", join(testStore.dir, "workers", "w1")]].map((args) => {
      const child = spawn(process.execPath, [CLI, ...args, ...testStore.flags], { stdio: ["pipe", "ignore", "pipe"], env: { ...process.env, [PARENT_PIPE_ENV]: "1" } });
      let stderr = "";
      child.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      return { child, stderr: () => stderr, exited };
    });
    try {
      await waitFor("both roles to serve", () => roles.every((r) => r.stderr().includes("serving on")), 15_000);
      // What the kernel does when `dfs up` dies: the writing end of the pipe closes.
      for (const role of roles) role.child.stdin!.end();
      const codes = await Promise.race([Promise.all(roles.map((r) => r.exited)), new Promise((r) => setTimeout(() => r("still running"), 5_000))]);
      assert.equal(codes, [0, 0], roles.map((r) => r.stderr()).join("\n"));
    } finally {
      await Promise.all(roles.map((r) => stopChild(r.child, { signal: "SIGKILL" })));
    }
  } finally {
    await testStore.stop();
  }
});

pipe.run();

const backoff = suite("supervisor");

backoff("a child that keeps dying is restarted after 0.5 s, then 1 s, then 2 s; stop ends it", async () => {
  const lines: string[] = [];
  const child = new SupervisedChild("quitter", async () => spawn("sh", ["-c", "exit 3"]), (line) => lines.push(line));
  await child.start();
  child.supervise();
  try {
    await waitFor("three restarts", () => lines.length >= 3, 10_000);
    assert.equal(lines.slice(0, 3), [
      "quitter exited with code 3; restarting in 0.5 s",
      "quitter exited with code 3; restarting in 1 s",
      "quitter exited with code 3; restarting in 2 s",
    ]);
  } finally {
    await child.stop();
  }
  const after = lines.length;
  await new Promise((r) => setTimeout(r, 600));
  assert.is(lines.length, after, "no restart after stop");
});

backoff("a child that dies before supervision begins is only recorded", async () => {
  const lines: string[] = [];
  const child = new SupervisedChild("early", async () => spawn("sh", ["-c", "kill -9 $$"]), (line) => lines.push(line));
  await child.start();
  await waitFor("the exit to be recorded", () => child.exitedEarly);
  assert.is(child.exitedEarly, "exited with signal SIGKILL");
  await child.stop();
  assert.equal(lines, []);
});

backoff.run();
