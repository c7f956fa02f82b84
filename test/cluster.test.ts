// `dfs up --cluster 3`: three nats-servers in one JetStream cluster, every stream on all three.
// The server leading the log is killed with kill -9 in the middle of a run of puts: the puts
// ride through the election, each that succeeded reads back, the log stays one history, and
// `dfs up` restarts the server, which catches up until the cluster is whole again.
import { randomBytes } from "node:crypto";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { jetstreamManager, type StreamInfo } from "@nats-io/jetstream";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { DfsClient } from "../client/client.js";
import { freePort } from "../client/nats-server.js";
import { catalogue } from "../streams/catalogue.js";
import { connectNats } from "../src/connection.js";
import { childrenOf, runCli, startUp, tempDir, waitFor, type ProcessInfo, type RunningUp } from "./harness.js";

const PUTS = 20;
/** The put after which the server is killed. */
const KILL_AFTER = 6;

const test = suite<{ dir: string; up: RunningUp }>("dfs up --cluster 3", {} as { dir: string; up: RunningUp });

test.before(async (ctx) => {
  ctx.dir = await tempDir("cluster");
  ctx.up = await startUp(["--cluster", "3", "--port", String(await freePort()), "--dir", join(ctx.dir, ".dfs")], 60_000);
});

test.after(async (ctx) => {
  await ctx.up?.kill();
  await rm(ctx.dir, { recursive: true, force: true });
});

/** The events stream as the admin sees it. */
async function eventsStreamInfo(ctx: { dir: string; up: RunningUp }): Promise<StreamInfo> {
  const nc = await connectNats({ servers: ctx.up.url, creds: join(ctx.dir, ".dfs", "creds", "admin.creds"), name: "dfs-test-admin", maxReconnectAttempts: 0 });
  try {
    return await (await jetstreamManager(nc)).streams.info(catalogue().eventsStream);
  } finally {
    await nc.close();
  }
}

/** The nats-server child of `dfs up` named `dfs-<n>` (its config is `nats/<n>.conf`). */
async function serverProcess(up: RunningUp, name: string): Promise<ProcessInfo | undefined> {
  const n = name.replace(/^dfs-/, "");
  return (await childrenOf(up.process.pid!)).find((p) => p.args[0]!.endsWith("nats-server") && p.args.some((a) => a.endsWith(join("nats", `${n}.conf`))));
}

test("puts ride through the loss of the log's leader; every one that succeeded reads back, in one history; the server comes back", async (ctx) => {
  assert.match(ctx.up.stdout(), /dfs is up: nats:\/\/127\.0\.0\.1:(\d+),nats:\/\/127\.0\.0\.1:\d+,nats:\/\/127\.0\.0\.1:\d+ \(3 nats-servers, 2 masters, 3 workers/);
  const before = await eventsStreamInfo(ctx);
  assert.is(before.config.num_replicas, 3);
  const leader = before.cluster!.leader!;
  const victim = (await serverProcess(ctx.up, leader))!;
  assert.ok(victim, `the process of ${leader}`);

  const written = new Map<string, Buffer>();
  const failed: string[] = [];
  let killedAt = 0;
  let longestPutMs = 0;
  let firstSuccessAfterKillMs: number | undefined;
  for (let i = 0; i < PUTS; i++) {
    const bytes = randomBytes(20_000 + Math.floor(Math.random() * 200_000));
    const local = join(ctx.dir, `p${i}`);
    await writeFile(local, bytes);
    const started = Date.now();
    const put = await runCli(["--nats", ctx.up.url, "put", local, `/cluster/p${i}`, "--replicas", "2", "--timeout", "30"], { cwd: ctx.dir, timeoutMs: 60_000 });
    longestPutMs = Math.max(longestPutMs, Date.now() - started);
    if (put.code === 0) written.set(`/cluster/p${i}`, bytes);
    else failed.push(`p${i}: ${put.stderr.trim()}`);
    if (put.code === 0 && killedAt && firstSuccessAfterKillMs === undefined) firstSuccessAfterKillMs = Date.now() - killedAt;
    if (i + 1 === KILL_AFTER) {
      process.kill(victim.pid, "SIGKILL");
      killedAt = Date.now();
    }
  }
  process.stdout.write(
    `\n  killed ${leader} (the log's leader); ${written.size}/${PUTS} puts succeeded; longest put ${longestPutMs} ms; first put done ${firstSuccessAfterKillMs} ms after the kill\n`,
  );
  assert.ok(written.size >= PUTS - 2, `at least ${PUTS - 2} puts succeed: ${failed.join("; ")}`);

  for (const [remote, bytes] of written) {
    const out = join(ctx.dir, "back");
    const get = await runCli(["--nats", ctx.up.url, "get", remote, out], { cwd: ctx.dir, timeoutMs: 30_000 });
    assert.is(get.code, 0, get.stderr);
    assert.ok(Buffer.compare(await readFile(out), bytes) === 0, `${remote} reads back byte-exact`);
  }
  // One history: the replay agrees with the live master, and the fold rejected nothing.
  const check = await runCli(["--nats", ctx.up.url, "replay", "--check"], { cwd: ctx.dir, timeoutMs: 30_000 });
  assert.is(check.code, 0, check.stderr);
  const auditor = await DfsClient.connect({ servers: ctx.up.url, creds: join(ctx.dir, ".dfs", "creds", "auditor.creds") });
  try {
    assert.is((await auditor.replay()).state.rejected.count, 0);
  } finally {
    await auditor.close();
  }

  // `dfs up` restarted the server with the same port, routes and store; it caught up.
  const restarted = await waitFor("the killed server to be restarted", async () => {
    const p = await serverProcess(ctx.up, leader);
    return p && p.pid !== victim.pid && p;
  }, 20_000, 100);
  assert.equal(restarted.args.slice(1), victim.args.slice(1), "the same port, store and configuration");
  const whole = await waitFor("the events stream on three current replicas", async () => {
    const info = await eventsStreamInfo(ctx);
    const replicas = info.cluster?.replicas ?? [];
    return info.cluster?.leader && replicas.length === 2 && replicas.every((r) => r.current) ? info : undefined;
  }, 30_000, 250);
  assert.ok([whole.cluster!.leader, ...whole.cluster!.replicas!.map((r) => r.name)].includes(leader), `${leader} is one of them again`);
  assert.match(ctx.up.stderr(), new RegExp(`dfs up: nats-server ${leader.replace(/^dfs-/, "")} exited with signal SIGKILL; restarting in 0\\.5 s\\n`));
});

test.run();
