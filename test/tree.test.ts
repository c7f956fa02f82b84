// Many files at once through the CLI: several LOCALs, directories both ways (-r); stdin is in stream.test.ts.
import { randomBytes } from "node:crypto";
import { mkdir, readFile, readdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as assert from "uvu/assert";
import { runCli, storeSuite, tempDir } from "./harness.js";

const test = storeSuite("tree", { workers: ["w1"] });

/** The remote paths at or below `prefix`, as `dfs ls --json` lists them. */
async function listed(flags: string[], prefix: string): Promise<string[]> {
  const run = await runCli([...flags, "ls", prefix, "--json"]);
  assert.is(run.code, 0, run.stderr);
  return (JSON.parse(run.stdout) as { path: string }[]).map((f) => f.path).sort();
}

/** A small tree: files in subdirectories, an empty file, an empty directory and a symbolic link. */
async function makeTree(root: string): Promise<void> {
  await mkdir(join(root, "sub", "deeper"), { recursive: true });
  await mkdir(join(root, "nothing-here"));
  await writeFile(join(root, "a.txt"), "alpha\n");
  await writeFile(join(root, "sub", "b.bin"), randomBytes(10_000));
  await writeFile(join(root, "sub", "deeper", "c.txt"), "gamma\n");
  await writeFile(join(root, "empty"), "");
  await symlink(join(root, "a.txt"), join(root, "link"));
}

test("put of one file: REMOTE is the file, or a directory when it ends with /", async ({ store }) => {
  await writeFile(join(store.dir, "one.txt"), "one\n");
  const into = await runCli([...store.flags, "put", join(store.dir, "one.txt"), "/single/", "--replicas", "1"]);
  assert.is(into.code, 0, into.stderr);
  assert.match(into.stdout, /^stored \/single\/one\.txt v1: 4 B in 1 piece × 1 replica/);
  const named = await runCli([...store.flags, "put", join(store.dir, "one.txt"), "/single/renamed", "--replicas", "1"]);
  assert.is(named.code, 0, named.stderr);
  assert.equal(await listed(store.flags, "/single"), ["/single/one.txt", "/single/renamed"]);
});

test("put of several files stores each below REMOTE under its own name", async ({ store }) => {
  await writeFile(join(store.dir, "x.txt"), "x\n");
  await writeFile(join(store.dir, "y.txt"), "y\n");
  const run = await runCli([...store.flags, "put", join(store.dir, "x.txt"), join(store.dir, "y.txt"), "/several", "--replicas", "1"]);
  assert.is(run.code, 0, run.stderr);
  assert.match(run.stdout, /^stored 2 files, 4 B, in \d+\.\d s\n$/);
  assert.equal(await listed(store.flags, "/several"), ["/several/x.txt", "/several/y.txt"]);
  const cat = await runCli([...store.flags, "cat", "/several/x.txt", "/several/y.txt"]);
  assert.is(cat.stdout, "x\ny\n");
});

test("a tree wider than Node's listener warning, at the default parallelism both ways: nothing on stderr", async ({ store }) => {
  const root = join(store.dir, "wide");
  await mkdir(root, { recursive: true });
  for (let i = 0; i < 40; i++) await writeFile(join(root, `f${i}`), `file ${i}\n`);
  const put = await runCli([...store.flags, "put", "-r", root, "/wide", "--replicas", "1"]);
  assert.is(put.code, 0, put.stderr);
  assert.is(put.stderr, "", "no warning of too many abort listeners");
  const get = await runCli([...store.flags, "get", "-r", "/wide", join(store.dir, "wide-back"), "--parallel", "40"]);
  assert.is(get.code, 0, get.stderr);
  assert.match(get.stderr, /^read 40 files into .*wide-back: .*, sha256 verified\n$/);
});

test("put -r keeps the directory's name below REMOTE, skips links, stores empty files; get -r writes the tree back", async ({ store }) => {
  const root = join(store.dir, "photos");
  await makeTree(root);
  const put = await runCli([...store.flags, "put", "-r", root, "/backup", "--replicas", "1", "--parallel", "3", "--verbose"]);
  assert.is(put.code, 0, put.stderr);
  assert.match(put.stderr, /^dfs: skipped .*photos\/link: a symbolic link, not followed\n$/);
  assert.is(put.stdout.split("\n").filter((l) => l.startsWith("stored /backup/")).length, 4, "one line per file with --verbose");
  assert.match(put.stdout, /stored 4 files, 9\.8 KiB, in \d+\.\d s \(1 skipped\)\n$/);
  assert.equal(await listed(store.flags, "/backup"), ["/backup/photos/a.txt", "/backup/photos/empty", "/backup/photos/sub/b.bin", "/backup/photos/sub/deeper/c.txt"]);

  const out = join(store.dir, "restored");
  const get = await runCli([...store.flags, "get", "-r", "/backup/photos", out, "--parallel", "2"]);
  assert.is(get.code, 0, get.stderr);
  assert.match(get.stderr, /^read 4 files into .*restored: 9\.8 KiB in \d+\.\d s, sha256 verified\n$/);
  for (const file of ["a.txt", "empty", join("sub", "b.bin"), join("sub", "deeper", "c.txt")]) {
    assert.equal(await readFile(join(out, file)), await readFile(join(root, file)), file);
  }
  assert.equal((await readdir(out)).sort(), ["a.txt", "empty", "sub"], "no temporary files, no link, no empty directory");
});

test("put -r of many small files: their creates decided together, one UploadsAssigned naming many; get -r gives every byte back; the replay agrees", async ({ store }) => {
  const root = join(store.dir, "many");
  await mkdir(join(root, "d"), { recursive: true });
  const names = Array.from({ length: 150 }, (_, i) => (i % 2 ? join("d", `f${i}`) : `f${i}`));
  for (const [i, name] of names.entries()) await writeFile(join(root, name), randomBytes(1 + ((i * 37) % 2048)));
  const put = await runCli([...store.flags, "put", "-r", `${root}/.`, "/many", "--replicas", "1"]);
  assert.is(put.code, 0, put.stderr);
  assert.match(put.stdout, /^stored 150 files, /);
  const assigned = await runCli([...store.flags, "tail", "--json", "--type", "UploadsAssigned", "--path", "/many"]);
  assert.is(assigned.code, 0, assigned.stderr);
  const events = assigned.stdout.trim().split("\n").map((l) => JSON.parse(l) as { event: { uploads: unknown[] } });
  const named = events.reduce((n, e) => n + e.event.uploads.length, 0);
  assert.is(named, 150, "every file assigned once");
  assert.ok(events.length < 150 && Math.max(...events.map((e) => e.event.uploads.length)) > 1, `${events.length} events for 150 files`);
  // The human line says which files each decision touched, not only how many.
  const lines = await runCli([...store.flags, "tail", "--type", "UploadsAssigned", "--path", "/many"]);
  assert.is(lines.code, 0, lines.stderr);
  const printed = lines.stdout.trim().split("\n");
  assert.is(printed.length, events.length);
  for (const [i, line] of printed.entries()) {
    const uploads = (events[i]!.event.uploads as { fileId: string }[]).map((u) => u.fileId);
    const listed = `uploads=[${uploads.length}: ${uploads.slice(0, 3).join(", ")}${uploads.length > 3 ? ", …" : ""}]`;
    assert.ok(line.includes(listed), `${line} names ${listed}`);
  }
  const out = join(store.dir, "many-back");
  const get = await runCli([...store.flags, "get", "-r", "/many", out]);
  assert.is(get.code, 0, get.stderr);
  for (const name of names) assert.equal(await readFile(join(out, name)), await readFile(join(root, name)), name);
  const check = await runCli([...store.flags, "replay", "--check"]);
  assert.is(check.code, 0, check.stderr);
  assert.match(check.stderr, /replay matches the live master at sequence \d+/);
});

test("two put -r of one user at once: a worker's pull of many small pieces may name both processes' uploads; each answers for its own, the others are pulled alone", async ({ store }) => {
  const trees = ["left", "right"].map((side) => join(store.dir, `same-user-${side}`));
  for (const root of trees) {
    await mkdir(root);
    for (let i = 0; i < 60; i++) await writeFile(join(root, `f${i}`), randomBytes(100 + i));
  }
  // Both connect as the same user, so each hears the other's pulls on its user's subjects.
  const puts = await Promise.all(trees.map((root) => runCli([...store.flags, "put", "-r", root, "/same-user", "--replicas", "1", "--timeout", "20"])));
  for (const put of puts) {
    assert.is(put.code, 0, put.stderr);
    assert.match(put.stdout, /^stored 60 files, /);
  }
  assert.is((await listed(store.flags, "/same-user")).length, 120);
});

test("put -r DIR/. stores the directory's contents; get -r into an existing directory writes inside it", async ({ store }) => {
  const root = join(store.dir, "contents");
  await makeTree(root);
  const put = await runCli([...store.flags, "put", "-r", `${root}/.`, "/flat", "--replicas", "1"]);
  assert.is(put.code, 0, put.stderr);
  assert.equal(await listed(store.flags, "/flat"), ["/flat/a.txt", "/flat/empty", "/flat/sub/b.bin", "/flat/sub/deeper/c.txt"]);
  const out = await tempDir("tree-get");
  const get = await runCli([...store.flags, "get", "-r", "/flat/sub", out]);
  assert.is(get.code, 0, get.stderr);
  assert.equal(await readFile(join(out, "deeper", "c.txt"), "utf8"), "gamma\n");
  assert.equal(await readFile(join(out, "b.bin")), await readFile(join(root, "sub", "b.bin")));
});

test("a directory without -r is a usage error, and nothing is stored", async ({ store }) => {
  const root = join(store.dir, "no-r");
  await makeTree(root);
  await writeFile(join(store.dir, "loose.txt"), "loose\n");
  const run = await runCli([...store.flags, "put", join(store.dir, "loose.txt"), root, "/no-r", "--replicas", "1"]);
  assert.is(run.code, 2);
  assert.match(run.stderr, /^dfs: BAD_REQUEST: .*no-r is a directory: put it with -r\n$/);
  assert.equal(await listed(store.flags, "/no-r"), []);
  const alone = await runCli([...store.flags, "put", root, "--replicas", "1"]);
  assert.is(alone.code, 2);
});

test("two files bound for one remote path are refused before anything is stored", async ({ store }) => {
  await mkdir(join(store.dir, "twice"), { recursive: true });
  await writeFile(join(store.dir, "twice", "same"), "1");
  await writeFile(join(store.dir, "same"), "2");
  const run = await runCli([...store.flags, "put", join(store.dir, "same"), join(store.dir, "twice", "same"), "/twice", "--replicas", "1"]);
  assert.is(run.code, 2);
  assert.match(run.stderr, /^dfs: BAD_REQUEST: .* would both be stored at \/twice\/same\n$/);
});

test("a file that fails mid-tree is reported on its own line; the others are stored; exit 1 with a count", async ({ store }) => {
  const root = join(store.dir, "mixed");
  await makeTree(root);
  await writeFile(join(root, "sub", "bad\u0001name"), "a control character cannot be in a remote path\n");
  const run = await runCli([...store.flags, "put", "-r", root, "/mixed", "--replicas", "1"]);
  assert.is(run.code, 1, run.stderr);
  const lines = run.stderr.trim().split("\n").filter((l) => !l.includes("skipped"));
  assert.is(lines.length, 2, run.stderr);
  // The local name's control character escaped as the remote path's is: the line stays one line.
  assert.match(lines[0]!, /^dfs: BAD_PATH: .*mixed\/sub\/bad\\u0001name: path ".*bad\\u0001name" contains a control character$/);
  assert.is(lines[1], "dfs: SOME_FILES_FAILED: 1 of 5 files failed");
  assert.match(run.stdout, /^stored 4 files, /);
  assert.equal(await listed(store.flags, "/mixed"), ["/mixed/mixed/a.txt", "/mixed/mixed/empty", "/mixed/mixed/sub/b.bin", "/mixed/mixed/sub/deeper/c.txt"]);
});

test("put - needs a REMOTE and must be alone", async ({ store }) => {
  const none = await runCli([...store.flags, "put", "-"], { stdin: Buffer.from("x") });
  assert.is(none.code, 2);
  assert.match(none.stderr, /^dfs: BAD_REQUEST: stdin needs a REMOTE path/);
  const mixed = await runCli([...store.flags, "put", "-", join(store.dir, "one.txt"), "/d"], { stdin: Buffer.from("x") });
  assert.is(mixed.code, 2);
});

test("get -r of a prefix with no file is NOT_FOUND", async ({ store }) => {
  const run = await runCli([...store.flags, "get", "-r", "/nothing/here", join(store.dir, "nowhere")]);
  assert.is(run.code, 3);
  assert.match(run.stderr, /^dfs: NOT_FOUND: no file at or below \/nothing\/here\n$/);
});

test.run();
