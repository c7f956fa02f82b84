// `npm run bench` must not rot: run it at tiny sizes and check it ends well and writes every
// row, each a figure or `n/a` with its reason. No timing is asserted: it is a benchmark.
import { spawn } from "node:child_process";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { stopChild } from "../client/stop-child.js";
import { tempDir } from "./harness.js";

const test = suite("bench");
const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** Far above the ~15 s it takes, for a busy machine; the run is killed past it. */
const RUN_LIMIT_MS = 120_000;

const ROW_IDS = [
  "put-r1-obj", "put-r1-ceiling", "get-r1-obj", "get-r1-ceiling", "put-r3-obj", "get-r3-obj", "rss-client-put", "rss-client-get",
  "rss-client-put-large", "rss-client-get-large",
  "small-cli-r1", "small-cli-r3", "small-lib-r1", "small-lib-r3", "small-lib-serial",
  "log-append", "replay-cli", "replay-master", "snapshot-start", "master-rss-log", "master-bytes-per-file",
  "rss-worker", "rss-master",
];

interface Row {
  id: string;
  dfs: number | null;
  na?: string;
  target?: { text: string };
}

test("a tiny run exits 0 and writes every row, a figure or n/a with a reason", async () => {
  const dir = await tempDir("bench");
  const json = join(dir, "result.json");
  try {
    const args = ["--import", "tsx", "scripts/bench.ts", "--size", "1MiB", "--large-size", "2MiB", "--runs", "1", "--small", "20", "--log-events", "2000", "--json", json];
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (c: Buffer) => (output += c.toString()));
    child.stderr.on("data", (c: Buffer) => (output += c.toString()));
    const limit = setTimeout(() => void stopChild(child, { signal: "SIGKILL" }), RUN_LIMIT_MS);
    const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
    clearTimeout(limit);
    assert.is(code, 0, output.slice(-2000));
    const result = JSON.parse(await readFile(json, "utf8")) as { machine: { cpus: number; node: string; natsServer: string }; rows: Row[] };
    assert.ok(result.machine.cpus > 0 && result.machine.node.startsWith("v") && /nats-server/.test(result.machine.natsServer));
    assert.equal(result.rows.map((r) => r.id).sort(), [...ROW_IDS].sort());
    for (const row of result.rows) {
      if (row.dfs === null) assert.ok(row.na && row.na.length > 0, `${row.id} has neither a figure nor a reason`);
      else assert.ok(Number.isFinite(row.dfs) && row.dfs >= 0, `${row.id}: ${row.dfs}`);
    }
    assert.match(output, /\| what +\| +dfs \|/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
