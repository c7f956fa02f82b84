// What the three-server cluster costs: put and get one file through `dfs up`-style local
// processes on a single nats-server, then on a three-server JetStream cluster (streams on
// three replicas), at 1 and 3 piece replicas, and print the median MB/s of several runs.
// Run: npm run bench:cluster [-- SIZE_MIB RUNS]
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DfsClient } from "../client/client.js";
import { putGetMedians } from "./measure.js";
import { LocalCluster } from "../client/local-cluster.js";

const MiB = 1024 * 1024;
const fileMiB = Number(process.argv[2] ?? 64);
const runs = Number(process.argv[3] ?? 3);

const dir = await mkdtemp(join(tmpdir(), "dfs-bench-"));
try {
  const local = join(dir, "input");
  await writeFile(local, randomBytes(fileMiB * MiB));
  console.log(`file ${fileMiB} MiB, 2 masters, 3 workers, median of ${runs} runs (MB/s = 10^6 bytes/s of file)`);
  console.log("nats-servers | put r1 | get r1 | put r3 | get r3");
  for (const servers of [1, 3]) {
    const cluster = await LocalCluster.start({ dir: join(dir, `store-${servers}`), servers, cliEntry: fileURLToPath(new URL("../dist/client/cli.js", import.meta.url)) });
    const client = await DfsClient.connect({ ...cluster.connection("client"), name: "dfs-bench" });
    try {
      const row: string[] = [];
      for (const replicas of [1, 3]) {
        const { put, get } = await putGetMedians(client, local, fileMiB * MiB, runs, { replicas, scratchDir: dir, remote: `/bench/${replicas}` });
        row.push(put.toFixed(0), get.toFixed(0));
      }
      console.log(`${String(servers).padStart(12)} | ${row.map((x) => x.padStart(6)).join(" | ")}`);
    } finally {
      await client.close();
      await cluster.stop();
    }
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
