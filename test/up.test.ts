// `dfs up` and `dfs demo` as a user runs them: real processes, stopped by a signal.
import { existsSync } from "node:fs";
import { readdir, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { freePort } from "../client/nats-server.js";
import { alive, childrenOf, runCli, startUp, tempDir, waitFor } from "./harness.js";

const test = suite("dfs up");

test("dfs up --tls runs a store with authentication and TLS until SIGINT, then stops every child", async () => {
  const dir = await tempDir("up");
  const port = await freePort();
  // As in the quick start: `dfs up` in a folder, then commands in that folder find their
  // credentials and the CA in ./.dfs by themselves.
  const store = join(dir, ".dfs");
  const up = await startUp(["--port", String(port), "--dir", store, "--workers", "2", "--tls"]);
  try {
    assert.match(up.stdout(), new RegExp(`dfs is up: tls://127\\.0\\.0\\.1:${port} \\(2 masters, 2 workers`));
    const children = (await childrenOf(up.process.pid!)).map((child) => child.pid);
    assert.is(children.length, 5, "nats-server, two masters and two workers");
    const flags = ["--nats", `tls://127.0.0.1:${port}`];
    await writeFile(join(dir, "hello.txt"), "hello from dfs up\n");
    const put = await runCli([...flags, "put", join(dir, "hello.txt"), "/hello.txt", "--replicas", "2"], { cwd: dir });
    assert.is(put.code, 0, put.stderr);
    const get = await runCli([...flags, "get", "/hello.txt", "-"], { cwd: dir });
    assert.is(get.stdout, "hello from dfs up\n");
    const tail = await runCli([...flags, "tail"], { cwd: dir });
    assert.match(tail.stdout, /FileCommitted\s+path=\/hello\.txt/, "tail runs as the auditor");
    // A second `dfs up` on the same folder is refused before it touches anything.
    const second = await runCli(["up", "--port", String(await freePort()), "--dir", store], { cwd: dir });
    assert.is(second.code, 1);
    assert.match(second.stderr, /^dfs: IN_USE: .* is in use by another dfs up \(pid \d+\)/);
    // So is a worker on a data folder a running worker has open.
    const twin = await runCli([...flags, "worker", "--id", "w1", "--data", join(store, "workers", "w1")], { cwd: dir, timeoutMs: 20_000 });
    assert.is(twin.code, 1);
    assert.match(twin.stderr, /^dfs: IN_USE: the data folder .* is in use by another worker\n$/);
    assert.is((await runCli([...flags, "get", "/hello.txt", "-"], { cwd: dir })).stdout, "hello from dfs up\n", "the first one still serves");
    // Elsewhere, without the CA or without credentials, the server is closed.
    const noCa = await runCli([...flags, "--creds-dir", join(store, "creds"), "ls"], { cwd: tmpdir() });
    assert.is(noCa.code, 1);
    assert.match(noCa.stderr, /^dfs: UNAVAILABLE: .*certificate/i);
    const noCreds = await runCli([...flags, "--tls-ca", join(store, "tls", "ca.pem"), "--creds-dir", join(dir, "none"), "ls"], { cwd: tmpdir() });
    assert.match(noCreds.stderr, /^dfs: UNAUTHORIZED: /);
    up.process.kill("SIGINT");
    assert.is(await up.exited, 0, "dfs up exits 0 on SIGINT");
    assert.not.ok(existsSync(join(store, "up.pid")), "the folder is given back");
    assert.match(up.stderr(), /dfs up: SIGINT: stopping everything/);
    assert.match(up.stdout(), /dfs is down/);
    await waitFor("every child to be gone", () => children.every((pid) => !alive(pid)), 10_000);
    assert.equal((await readdir(store)).sort(), ["creds", "nats", "nats.conf", "tls", "workers"], "everything stays under --dir");
    assert.equal((await readdir(join(store, "workers"))).sort(), ["w1", "w2"]);
    assert.equal(
      (await readdir(join(store, "creds"))).sort(),
      ["admin.creds", "auditor.creds", "client.creds", "keys", "master.creds", "server.conf", "worker-w1.creds", "worker-w2.creds"],
    );
  } finally {
    await up.kill();
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

test("a worker id that cannot be one is a usage error, before anything connects", async () => {
  const bad = await runCli(["worker", "--id", "bad id!", "--nats", "nats://127.0.0.1:1"]);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /--id .*must be 1-64 letters, digits, _ or -/);
  assert.is(bad.stderr.trim().split("\n").length, 1, "one line");
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
