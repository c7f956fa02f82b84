// The CLI behaves like the tools people know: --version, get into a directory, cat.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as assert from "uvu/assert";
import { runCli, storeSuite } from "./harness.js";

const test = storeSuite("habits", { workers: ["w1"] });

test("dfs --version prints the package's version", async () => {
  const { version } = JSON.parse(await readFile(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
  const run = await runCli(["--version"]);
  assert.is(run.code, 0);
  assert.is(run.stdout.trim(), version);
});

test("get into an existing directory, or a path ending in /, writes inside it (a version named too)", async ({ store }) => {
  await writeFile(join(store.dir, "one"), "first\n");
  assert.is((await runCli([...store.flags, "put", join(store.dir, "one"), "/h/one", "--replicas", "1"])).code, 0);
  await writeFile(join(store.dir, "one"), "second\n");
  assert.is((await runCli([...store.flags, "put", join(store.dir, "one"), "/h/one", "--replicas", "1"])).code, 0);
  const dir = join(store.dir, "into");
  await mkdir(dir);
  const get = await runCli([...store.flags, "get", "/h/one", dir]);
  assert.is(get.code, 0, get.stderr);
  assert.is(await readFile(join(dir, "one"), "utf8"), "second\n");
  const old = await runCli([...store.flags, "get", "/h/one", `${dir}/`, "--version", "1"]);
  assert.is(old.code, 0, old.stderr);
  assert.is(await readFile(join(dir, "one"), "utf8"), "first\n", "the named version replaced it");
});

test("cat writes several files to stdout, in order", async ({ store }) => {
  await writeFile(join(store.dir, "two"), "two\n");
  assert.is((await runCli([...store.flags, "put", join(store.dir, "two"), "/h/two", "--replicas", "1"])).code, 0);
  const cat = await runCli([...store.flags, "cat", "/h/one", "/h/two"]);
  assert.is(cat.code, 0, cat.stderr);
  assert.is(cat.stdout, "second\ntwo\n");
  const missing = await runCli([...store.flags, "cat", "/h/one", "/h/none"]);
  assert.is(missing.code, 3);
  assert.match(missing.stderr, /^dfs: NOT_FOUND: no file \/h\/none/);
});

test.run();
