// The log is the truth: after a random run of puts, updates and deletes, replaying the log
// gives exactly the live master's table, a restarted master rebuilds the same table, and
// `dfs tail` shows every event.
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as assert from "uvu/assert";
import { EVENT_TYPES } from "../src/events.js";
import { projection, stateDigest } from "../src/state.js";
import { spawn } from "node:child_process";
import { CLI, runCli, storeSuite, waitFor } from "./harness.js";

const test = storeSuite("replay", { workers: ["w1", "w2", "w3"] });


/** A small deterministic PRNG (mulberry32), so a failing run can be repeated. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test("replay of a random run equals the live master, before and after a master crash", async ({ store }) => {
  const client = await store.client();
  const rand = random(20261127);
  const live = new Set<string>();
  for (let step = 0; step < 40; step++) {
    const path = `/r/f${Math.floor(rand() * 8)}`;
    const roll = rand();
    if (roll < 0.7 || !live.has(path)) {
      const local = join(store.dir, `step${step}`);
      await writeFile(local, randomBytes(Math.floor(rand() * 20_000)));
      await client.put(local, path, { replicas: 1 + Math.floor(rand() * 3), pieceSize: 4096 });
      live.add(path);
    } else if (roll < 0.85) {
      const versions = (await client.stat(path)).versions;
      if (versions.length > 1) await client.remove(path, versions[0]!.version);
    } else {
      await client.remove(path);
      live.delete(path);
    }
  }
  assert.equal((await client.list("/r")).map((f) => f.path).sort(), [...live].sort());

  const check = await runCli([...store.flags, "replay", "--check"]);
  assert.is(check.code, 0, check.stderr);
  assert.match(check.stderr, /replay matches the live master at sequence \d+/);

  const before = await client.masterState(true);
  const replayed = await store.replay(before.lastSeq);
  assert.is(stateDigest(replayed.state), before.digest);
  assert.equal(JSON.parse(JSON.stringify(projection(replayed.state))), before.projection);
  const json = await runCli([...store.flags, "replay", "--json"]);
  assert.equal(JSON.parse(json.stdout), before.projection);

  // A crash loses nothing but the process: replay needs no master (with the admin's
  // credentials, which may open their own reader of the log), and a new master folds the same
  // table from the log. The auditor, who may not, is told why.
  await store.role("master").kill();
  const asAdmin = [...store.flags, "--creds", join(store.credsDir, "admin.creds")];
  const masterless = await runCli([...asAdmin, "replay", "--json"]);
  assert.is(masterless.code, 0, masterless.stderr);
  assert.equal(JSON.parse(masterless.stdout), before.projection, "replay with no master running");
  const auditor = await runCli([...store.flags, "replay"]);
  assert.match(auditor.stderr, /^dfs: UNAVAILABLE: no master answers to open a reader of the log/);
  const table = await runCli([...asAdmin, "replay"]);
  for (const path of live) assert.match(table.stdout, new RegExp(`^  ${path}  .*committed`, "m"));
  store.startMaster();
  const after = await waitFor("the new master", async () => {
    const s = await client.masterState();
    return s.masterId !== before.masterId && s;
  });
  assert.is(after.lastSeq >= before.lastSeq, true);
  const replayedAfter = await store.replay(after.lastSeq);
  assert.is(stateDigest(replayedAfter.state), after.digest);
  if (after.lastSeq === before.lastSeq) assert.is(after.digest, before.digest);
  assert.equal((await client.list("/r")).map((f) => f.path).sort(), [...live].sort(), "same files after the restart");
});

test("dfs tail prints every event, as lines or JSON", async ({ store }) => {
  const client = await store.client();
  const { lastSeq } = await client.masterState();
  const json = await runCli([...store.flags, "tail", "--json"]);
  assert.is(json.code, 0, json.stderr);
  const entries = json.stdout.trim().split("\n").map((l) => JSON.parse(l) as { seq: number; subject: string; event: { type: string; at: number } });
  assert.ok(entries.length >= lastSeq);
  assert.equal(entries.slice(0, lastSeq).map((e) => e.seq), Array.from({ length: lastSeq }, (_, i) => i + 1));
  for (const e of entries) {
    assert.ok(EVENT_TYPES.includes(e.event.type as never), `known type ${e.event.type}`);
    assert.match(e.subject, /^dfs\.evt\.(file|assign|worker)\./);
    assert.type(e.event.at, "number");
  }
  const types = new Set(entries.map((e) => e.event.type));
  for (const t of ["WorkerJoined", "FileCreated", "UploadsAssigned", "PieceStored", "FileCommitted", "FileDeleted", "PiecesDropped"]) {
    assert.ok(types.has(t), `the run produced ${t}`);
  }
  const human = await runCli([...store.flags, "tail"]);
  const lines = human.stdout.trimEnd().split("\n");
  assert.is(lines.length, entries.length);
  assert.match(lines[0]!, /^\s+1\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ\s+WorkerJoined\s+workerId=w\d/);
  assert.ok(lines.some((l) => /FileCommitted\s+path=\/r\/f\d/.test(l)));
  const from = await runCli([...store.flags, "tail", "--json", "--from", String(lastSeq)]);
  assert.is(JSON.parse(from.stdout.trim().split("\n")[0]!).seq, lastSeq);
});

test("a reader that stops reading ends dfs tail quietly, with status 0", async ({ store }) => {
  // As `dfs tail --follow | head -1`: the pipe closes after the first line, and the next event
  // finds nobody reading.
  const tail = spawn(process.execPath, [CLI, ...store.flags, "tail", "--follow"], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  tail.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => tail.once("exit", (c) => resolve(c)));
  const first = await Promise.race([new Promise<string>((resolve) => tail.stdout!.once("data", () => resolve("line"))), exited.then(() => "exited")]);
  assert.is(first, "line", stderr);
  tail.stdout!.destroy();
  const client = await store.client();
  await writeFile(join(store.dir, "after-head"), "one more event");
  await client.put(join(store.dir, "after-head"), "/after-head", { replicas: 1 });
  const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r("still running"), 10_000))]);
  if (code === "still running") tail.kill("SIGKILL");
  assert.is(code, 0, stderr);
  assert.is(stderr, "", "no stack trace");
});

test.run();
