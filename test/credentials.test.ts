// Credentials files as dfs writes and reads them: one user per role, two for the roles that
// answer requests (their JetStream user after), each a standard `.creds` block.
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { credsAuthenticator } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { catalogue } from "../streams/catalogue.js";
import { credsFile, initCredentials, readCredentials } from "../src/credentials.js";
import { errorCode, tempDir } from "./harness.js";

const test = suite("credentials");

test("credentials - a master's and a worker's file hold their user then its JetStream user; the others one; garbage is BAD_REQUEST", async () => {
  const dir = await tempDir("creds");
  try {
    await initCredentials(dir, catalogue(), { workers: ["w1"] });
    const users = async (file: string) => (await readCredentials(file)).map((u) => u.user);
    assert.equal(await users(credsFile(dir, "master")), ["master", "master.streams"]);
    assert.equal(await users(credsFile(dir, "worker", "w1")), ["worker-w1", "worker-w1.streams"]);
    assert.equal(await users(credsFile(dir, "client")), ["client"]);
    // Each block is a whole credentials file of its own, as nats.js reads one.
    for (const { creds } of await readCredentials(credsFile(dir, "master"))) assert.ok(credsAuthenticator(creds)("nonce"));

    const whole = await readFile(credsFile(dir, "client"), "utf8");
    const cases = {
      "not credentials": "hello\n",
      "a JWT without its seed": whole.slice(0, whole.indexOf("-----BEGIN USER NKEY SEED")),
      "a JWT that is not one": whole.replace(/(BEGIN NATS USER JWT-----\n)[^\n]+/, "$1not.a.jwt"),
    };
    for (const [what, text] of Object.entries(cases)) {
      const file = join(dir, "bad.creds");
      await writeFile(file, text);
      assert.is(await errorCode(() => readCredentials(file)), "BAD_REQUEST", what);
    }
    assert.is(await errorCode(() => readCredentials(join(dir, "missing.creds"))), "LOCAL_IO");

    // A master's file from before roles had a JetStream user is signed again with both; the rest is kept.
    const master = credsFile(dir, "master");
    const old = await readFile(master, "utf8");
    await writeFile(master, old.slice(0, old.indexOf("-----BEGIN NATS USER JWT", 1)));
    assert.equal(await users(master), ["master"]);
    assert.equal(await initCredentials(dir, catalogue(), { workers: ["w1"] }), [master]);
    assert.equal(await users(master), ["master", "master.streams"]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
