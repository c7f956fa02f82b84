// How the default piece size was chosen: put and get one file through a local cluster (a
// nats-server, a master and three workers as processes) at several piece sizes, and print
// the median MB/s of several runs. Run: npm run bench:pieces [-- SIZE_MIB RUNS]
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DfsClient } from "../client/client.js";
import { putGetMedians } from "./measure.js";
import { LocalCluster } from "../client/local-cluster.js";

const MiB = 1024 * 1024;
const fileMiB = Number(process.argv[2] ?? 128);
const runs = Number(process.argv[3] ?? 3);
const pieceSizes = [1, 2, 4, 8, 16, 32].map((n) => n * MiB);

const dir = await mkdtemp(join(tmpdir(), "dfs-bench-"));
const cluster = await LocalCluster.start({
  dir: join(dir, "store"),
  masters: 1,
  workers: 3,
  cliEntry: fileURLToPath(new URL("../dist/client/cli.js", import.meta.url)),
});
const client = await DfsClient.connect({ ...cluster.connection("client"), name: "dfs-bench" });
try {
  const local = join(dir, "input");
  await writeFile(local, randomBytes(fileMiB * MiB));
  console.log(`file ${fileMiB} MiB, 3 workers, replicas 1 and 3, median of ${runs} runs (MB/s = 10^6 bytes/s of file)`);
  console.log("piece size | put r1 | get r1 | put r3 | get r3");
  for (const pieceSize of pieceSizes) {
    const row: string[] = [];
    for (const replicas of [1, 3]) {
      const { put, get } = await putGetMedians(client, local, fileMiB * MiB, runs, { pieceSize, replicas, scratchDir: dir, remote: `/bench/${pieceSize}/${replicas}` });
      row.push(put.toFixed(0), get.toFixed(0));
    }
    console.log(`${String(pieceSize / MiB).padStart(6)} MiB | ${row[0]!.padStart(6)} | ${row[1]!.padStart(6)} | ${row[2]!.padStart(6)} | ${row[3]!.padStart(6)}`);
  }
} finally {
  await client.close();
  await cluster.stop();
  await rm(dir, { recursive: true, force: true });
}
