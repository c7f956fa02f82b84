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

test("history lists every version of a path, committed, deleted or abandoned, with its events", async ({ store }) => {
  const put = async (text: string) => {
    await writeFile(join(store.dir, "hist"), text);
    const run = await runCli([...store.flags, "put", join(store.dir, "hist"), "/h/hist", "--replicas", "1"]);
    assert.is(run.code, 0, run.stderr);
  };
  await put("one");
  await put("two");
  assert.is((await runCli([...store.flags, "rm", "/h/hist", "--version", "1"])).code, 0);
  assert.is((await runCli([...store.flags, "rm", "/h/hist"])).code, 0);
  await put("three"); // a new file at the same path
  const json = await runCli([...store.flags, "history", "/h/hist", "--json"]);
  assert.is(json.code, 0, json.stderr);
  const versions = JSON.parse(json.stdout) as { fileId: string; version: number; status: string; size: number; events: { type: string; seq: number }[] }[];
  assert.equal(versions.map((v) => [v.version, v.status, v.size]), [[1, "deleted", 3], [2, "deleted", 3], [1, "committed", 5]]);
  assert.is(new Set(versions.map((v) => v.fileId)).size, 2, "deleted and put again: a new file id");
  assert.equal(versions[0]!.events.map((e) => e.type).filter((t) => t !== "UploadsAssigned" && t !== "PieceStored"), ["FileCreated", "FileCommitted", "FileDeleted"]);
  assert.ok(versions[1]!.events.at(-1)!.type === "FileDeleted", "the whole file's delete is in every version's events");
  const human = await runCli([...store.flags, "history", "h/hist"]);
  assert.match(human.stdout, /v2  deleted/);
  assert.match(human.stdout, /FileCommitted/);
  const none = await runCli([...store.flags, "history", "/h/never"]);
  assert.is(none.code, 3);
  assert.match(none.stderr, /^dfs: NOT_FOUND: no file was ever at \/h\/never/);
});

test("stat --pieces shows the layout: each piece's offset, size, sha256 and holders", async ({ store }) => {
  await writeFile(join(store.dir, "three-pieces"), Buffer.alloc(2 * 4096 + 10, 7));
  assert.is((await runCli([...store.flags, "put", join(store.dir, "three-pieces"), "/h/three", "--replicas", "1", "--piece-size", "4KiB"])).code, 0);
  const json = await runCli([...store.flags, "stat", "/h/three", "--pieces", "--json"]);
  assert.is(json.code, 0, json.stderr);
  const info = JSON.parse(json.stdout) as { layout: { index: number; size: number; sha256: string; workers: string[] }[] };
  assert.equal(info.layout.map((p) => [p.index, p.size, p.workers]), [[0, 4096, ["w1"]], [1, 4096, ["w1"]], [2, 10, ["w1"]]]);
  const human = await runCli([...store.flags, "stat", "/h/three", "--pieces"]);
  assert.match(human.stdout, /layout\n  #0\s+@0\s+4\.0 KiB\s+[0-9a-f]{12}…\s+w1\n  #1\s+@4096/);
});

test.run();
