// What the benchmarks share: put and get one local file several times, and the median MB/s
// (10^6 bytes of file a second) of each.
import { join } from "node:path";
import type { DfsClient, PutOptions } from "../client/mod.js";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function putGetMedians(
  client: DfsClient,
  local: string,
  bytes: number,
  runs: number,
  opts: PutOptions & { scratchDir: string; remote: string },
): Promise<{ put: number; get: number }> {
  const puts: number[] = [];
  const gets: number[] = [];
  for (let run = 0; run < runs; run++) {
    const remote = `${opts.remote}/${run}`;
    let t = performance.now();
    await client.put(local, remote, opts);
    puts.push(bytes / 1e6 / ((performance.now() - t) / 1000));
    t = performance.now();
    await client.get(remote, join(opts.scratchDir, "output"));
    gets.push(bytes / 1e6 / ((performance.now() - t) / 1000));
    await client.remove(remote);
  }
  return { put: median(puts), get: median(gets) };
}
