// Retention through the CLI against real processes: the admin sets the policy, the leader
// expires what it no longer keeps, the bytes are dropped, and the log says why.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as assert from "uvu/assert";
import { errorCode, runCli, storeSuite, tempDir, waitFor } from "./harness.js";

const test = storeSuite("retention", { workers: ["r1", "r2"] });

test("the admin keeps the newest 2 versions: older ones expire, their bytes go, history says why", async ({ store }) => {
  const shown = await runCli(["retention", ...store.flags]);
  assert.is(shown.stdout, "keep every version\n");
  // Only the admin may set it.
  assert.is(await errorCode(async () => (await store.client()).setRetention({ keepVersions: 1 })), "FORBIDDEN");
  const set = await runCli(["retention", "--keep-versions", "2", ...store.flags]);
  assert.is(set.code, 0, set.stderr);
  assert.match(set.stderr, /^retention: keep the newest 2 versions\n$/);

  const dir = await tempDir("retention");
  const client = await store.client();
  const pieces: string[] = [];
  for (let n = 1; n <= 4; n++) {
    const local = join(dir, `v${n}`);
    await writeFile(local, `version ${n} `.repeat(500));
    pieces.push((await client.put(local, "/kept/doc", { replicas: 2 })).sha256);
  }
  await waitFor("versions 1 and 2 to expire", async () => {
    const history = JSON.parse((await runCli(["history", "/kept/doc", "--json", ...store.flags])).stdout) as { version: number; status: string; reason?: string; events: { type: string }[] }[];
    return history.filter((v) => v.status === "deleted").map((v) => v.version).join() === "1,2";
  });
  const history = JSON.parse((await runCli(["history", "/kept/doc", "--json", ...store.flags])).stdout) as { version: number; status: string; reason?: string; events: { type: string }[] }[];
  assert.equal(history.map((v) => `${v.version}:${v.status}`), ["1:deleted", "2:deleted", "3:committed", "4:committed"]);
  assert.is(history[0]!.reason, "expired: keep the newest 2 versions");
  assert.ok(history[0]!.events.some((e) => e.type === "VersionExpired"), "the expiry is an event of that version");
  // An expired version is gone for readers; the kept ones read back.
  const old = await runCli(["get", "/kept/doc", "-", "--version", "1", ...store.flags]);
  assert.is(old.code, 3, old.stderr);
  assert.is((await runCli(["get", "/kept/doc", "-", "--version", "3", ...store.flags])).stdout, "version 3 ".repeat(500));
  // Its bytes are dropped: no worker keeps them any more, and nothing is owed.
  await waitFor("the expired bytes dropped", async () => {
    const { state } = await store.replay();
    return !state.content.has(pieces[0]!) && state.dropsOwed.size === 0;
  });
  const status = await runCli(["status", ...store.flags]);
  assert.match(status.stdout, /^retention keep the newest 2 versions$/m);
  const check = await runCli(["replay", "--check", ...store.flags]);
  assert.is(check.code, 0, check.stderr);

  // Keeping everything again: a fifth version expires nothing.
  assert.is((await runCli(["retention", "--keep-all", ...store.flags])).code, 0);
  await writeFile(join(dir, "v5"), "version 5");
  await client.put(join(dir, "v5"), "/kept/doc", { replicas: 2 });
  const after = JSON.parse((await runCli(["history", "/kept/doc", "--json", ...store.flags])).stdout) as { status: string }[];
  assert.equal(after.map((v) => v.status), ["deleted", "deleted", "committed", "committed", "committed"]);
});

test("a bad policy is a usage error", async ({ store }) => {
  const bad = await runCli(["retention", "--keep-for", "soon", ...store.flags]);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /--keep-for .*must be a duration/);
  const both = await runCli(["retention", "--keep-all", "--keep-versions", "3", ...store.flags]);
  assert.is(both.code, 2);
  assert.match(both.stderr, /^dfs: BAD_REQUEST: --keep-all keeps every version/);
});

test.run();
