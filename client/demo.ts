// `npm run demo`: the whole product in one run. A local cluster in a temporary directory,
// sample files put and read back byte for byte, the listing, the audit log, then a clean stop.
import { randomBytes, createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DfsError, ErrorCodes } from "../src/errors.js";
import { stateDigest } from "../src/state.js";
import { DfsClient } from "./client.js";
import { counted, formatEvent, formatListing, humanBytes } from "./format.js";
import { DEFAULT_MASTERS, LocalCluster } from "./local-cluster.js";

export interface DemoOptions {
  workers: number;
  cliEntry: string;
  out: (line: string) => void;
}

export async function runDemo(opts: DemoOptions): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "dfs-demo-"));
  const { out } = opts;
  out(`starting a local cluster in ${dir} (nats-server, ${counted(DEFAULT_MASTERS, "master")}, ${counted(opts.workers, "worker")})`);
  const cluster = await LocalCluster.start({ dir: join(dir, "store"), workers: opts.workers, cliEntry: opts.cliEntry });
  out(`cluster up at ${cluster.url}`);
  const client = await DfsClient.connect({ ...cluster.connection("client"), name: "dfs-demo" });
  // Reading the log is the auditor's right, not the client's.
  const auditor = await DfsClient.connect({ ...cluster.connection("auditor"), name: "dfs-demo-auditor" });
  try {
    const replicas = Math.min(3, opts.workers);
    const samples: [string, Buffer][] = [
      ["/demo/hello.txt", Buffer.from("hello, event-sourced world\n")],
      ["/demo/empty", Buffer.alloc(0)],
      ["/demo/data/random-6MiB.bin", randomBytes(6 * 1024 * 1024 + 12345)],
      ["/demo/data/random-20MiB.bin", randomBytes(20 * 1024 * 1024)],
    ];
    for (const [remote, bytes] of samples) {
      const local = join(dir, remote.replaceAll("/", "_"));
      await writeFile(local, bytes);
      const started = performance.now();
      const r = await client.put(local, remote, { replicas });
      const ms = performance.now() - started;
      out(`put ${remote} v${r.version}: ${humanBytes(r.size)}, ${counted(r.pieces, "piece")} × ${counted(r.replicas, "replica")} in ${ms.toFixed(0)} ms`);
    }
    // An update makes version 2; version 1 stays readable.
    const v2 = Buffer.from("hello again: this is version 2\n");
    await writeFile(join(dir, "hello-v2"), v2);
    await client.put(join(dir, "hello-v2"), "/demo/hello.txt", { replicas });
    samples.push(["/demo/hello.txt", v2]);
    for (const [remote, bytes] of samples.slice(1)) {
      const back = join(dir, "back");
      const r = await client.get(remote, back);
      const same = Buffer.compare(await readFile(back), bytes) === 0;
      out(`get ${remote} v${r.version}: ${humanBytes(r.size)} ${same ? "identical" : "DIFFERENT"} (sha256 ${createHash("sha256").update(bytes).digest("hex").slice(0, 16)}…)`);
      if (!same) throw new DfsError(ErrorCodes.CHECKSUM_MISMATCH, `${remote} did not read back byte for byte`);
    }
    await client.get("/demo/hello.txt", join(dir, "v1"), { version: 1 });
    if (Buffer.compare(await readFile(join(dir, "v1")), samples[0]![1]) !== 0) throw new DfsError(ErrorCodes.CHECKSUM_MISMATCH, "version 1 changed");
    out("get /demo/hello.txt --version 1: identical to the first put");
    out("\n$ dfs ls");
    out(formatListing(await client.list()));
    out("\n$ dfs tail   (the audit log)");
    const reader = await auditor.tail({}, (entry) => out(formatEvent(entry)));
    await reader.done;
    const live = await auditor.masterState();
    const { state } = await auditor.replay(live.lastSeq);
    const agrees = stateDigest(state) === live.digest;
    out(`\nreplay of ${live.lastSeq} events ${agrees ? "matches" : "DIFFERS FROM"} the live master`);
    if (!agrees) throw new DfsError(ErrorCodes.INTERNAL, "replay differs from the live master");
  } finally {
    await client.close();
    await auditor.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
  out("stopped the cluster; demo passed");
}
