// What a worker's piece store costs alone, without NATS: pieces of 16 MiB written as a worker
// writes them (frames of 960 KiB, four pieces at once, begin/write/commit), then the CPU time
// of this process (all threads: LevelDB writes and compacts on its own) and the wall time.
// The bytes are not hashed here: a worker's SHA-256 of them is counted apart.
// Run: node --import tsx scripts/bench-store.ts [MIB]
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { frameSizeFor } from "../src/protocol.js";
import { PieceStore } from "../workers/store.js";

const MiB = 1024 * 1024;
const PIECE_BYTES = 16 * MiB;
const PIECES_AT_ONCE = 4;
const mib = Number(process.argv[2] ?? 256);
const frame = frameSizeFor(MiB);
const pieces = Math.ceil((mib * MiB) / PIECE_BYTES);
const bytes = randomBytes(PIECE_BYTES);

const dir = await mkdtemp(join(tmpdir(), "dfs-bench-store-"));
const store = await PieceStore.open(dir);
try {
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  let next = 0;
  const writeOne = async () => {
    for (let piece = next++; piece < pieces; piece = next++) {
      // Each piece's bytes differ (its first 4 bytes are its number), so none is stored once for two.
      const content = Buffer.from(bytes);
      content.writeUInt32LE(piece, 0);
      // The store keys by the SHA-256 it is given and leaves checking it to the worker: any unique key will do, and costs nothing here.
      const writer = await store.begin(createHash("sha256").update(String(piece)).digest("hex"));
      for (let offset = 0; offset < PIECE_BYTES; offset += frame) await writer.write(content.subarray(offset, Math.min(PIECE_BYTES, offset + frame)));
      await writer.commit();
    }
  };
  await Promise.all(Array.from({ length: PIECES_AT_ONCE }, writeOne));
  const cpu = process.cpuUsage(cpuBefore);
  const seconds = (performance.now() - started) / 1000;
  console.log(`${pieces} pieces of 16 MiB (${(pieces * PIECE_BYTES) / MiB} MiB) in frames of ${frame / 1024} KiB, ${PIECES_AT_ONCE} at once: CPU ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s, wall ${seconds.toFixed(2)} s`);
} finally {
  await store.close();
  await rm(dir, { recursive: true, force: true });
}
