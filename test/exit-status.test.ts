// Every way a command ends is a documented exit status with a coded line: never Node's 13
// (a top-level await left pending), never a role that lingers with nothing it can do.
// Real processes: the compiled CLI, a real nats-server.
import { spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { startNatsServer } from "../client/nats-server.js";
import { SERVER_AUTH_FILE, initCredentials } from "../src/credentials.js";
import { catalogue } from "../streams/catalogue.js";
import { TestStore, tempDir } from "./harness.js";

/** Run an ES module's source in a new node process (bounded): its status and stderr. */
function runModule(source: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--input-type=module", "-e", source], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error("the module ran past 10 s"));
    }, 10_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

test("a command left waiting on a promise nothing can settle ends with a coded line and status 1, not Node's 13", async () => {
  const stuck = new URL("../dist/client/stuck.js", import.meta.url).href;
  const never = "new Promise(() => {})";
  const bare = await runModule(`await ${never};`);
  assert.is(bare.code, 13, "what Node does on its own");
  const guarded = await runModule(
    `import { failIfStuck } from ${JSON.stringify(stuck)};\nawait failIfStuck(${never}, () => { process.stderr.write("dfs: INTERNAL: stuck\\n"); process.exit(1); });`,
  );
  assert.is(guarded.code, 1, guarded.stderr);
  assert.is(guarded.stderr, "dfs: INTERNAL: stuck\n");
  const done = await runModule(`import { failIfStuck } from ${JSON.stringify(stuck)};\nawait failIfStuck(Promise.resolve(), () => process.exit(1));`);
  assert.is(done.code, 0, "a command that ends is not stuck");
});

test("a master and a worker whose server comes back refusing their credentials end with a coded line instead of lingering", async () => {
  const store = await TestStore.running("exit-status", { workers: ["e1"] });
  const other = await tempDir("exit-status-other");
  let server: Awaited<ReturnType<typeof startNatsServer>> | undefined;
  try {
    // The same port, another store whose server trusts other credentials (as after `dfs creds init` elsewhere).
    await initCredentials(join(other, "creds"), catalogue(store.prefix));
    await writeFile(join(other, "nats.conf"), `include ./creds/${SERVER_AUTH_FILE}\n`);
    const exits = store.roles.map((role) => new Promise<number | null>((resolve) => role.process.once("exit", (code) => resolve(code))));
    const port = store.server.port;
    await store.server.stop();
    server = await startNatsServer({ port, storeDir: join(other, "nats"), config: join(other, "nats.conf") });
    for (const [i, role] of store.roles.entries()) {
      const code = await Promise.race([exits[i]!, new Promise<string>((r) => setTimeout(() => r("still running"), 60_000))]);
      assert.is(code, 1, `${role.name}: ${role.output()}`);
      assert.match(role.output(), /^dfs: (UNAVAILABLE|INTERNAL): /m, `${role.name} says why, coded`);
    }
  } finally {
    await server?.stop();
    await store.restartServer();
    await store.stop();
  }
});

test.run();
