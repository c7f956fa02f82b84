// A worker's piece store: pieces keyed by their SHA-256 (the same bytes are kept once), in two
// LevelDBs: the data folder's own holds every piece's metadata and the bytes of the pieces of
// one chunk (a small file's: one batch); `chunks/` inside it holds the chunks of longer pieces,
// and nothing else, so each of its tables is one chunk and its compactions only move files
// instead of rewriting bytes that metadata written in between had mixed with. A piece is kept
// as chunks no bigger than a NATS frame, so a read of one frame touches one value. Its chunks
// are written as they come and its metadata last, in the batch that also clears its "being
// written" mark: a piece without metadata is absent, and the chunks of one whose writer died
// (a crash) are removed at the next open.
import { createHash } from "node:crypto";
import { join } from "node:path";
import { Level, type ChainedBatch as LevelBatch } from "level";
import { DfsError, ErrorCodes } from "../src/errors.js";

interface PieceMeta {
  size: number;
  chunkSize: number;
  storedAt: number;
  /**
   * Log sequence of the latest order to keep these bytes (an assignment or a copy): a drop
   * from before it is stale (redelivered late) and must not delete them.
   */
  keptSince?: number;
  /** Its chunks are in the `chunks/` database (a piece of more than one chunk, stored since it exists). */
  apart?: true;
}

/** A piece being written, chunk by chunk: invisible until `commit`. */
export interface PieceWriter {
  /** The next chunk: all of one size but the last, which may be shorter. */
  write(chunk: Uint8Array): Promise<void>;
  /** Make the piece visible, its bytes already checked against its SHA-256. */
  commit(keptSince?: number): Promise<void>;
  /** Remove what was written. */
  abort(): Promise<void>;
}

const CHUNK_KEY_DIGITS = 6;
const META = { valueEncoding: "json" } as const;
const BYTES = { valueEncoding: "view" } as const;

// Three key spaces in one database: `m!<sha256>` → PieceMeta, `c!<sha256>!<chunk>` → bytes,
// `w!<sha256>` → a piece being written (its start time).
const metaKey = (sha256: string) => `m!${sha256}`;
const chunkKey = (sha256: string, index: number) => `c!${sha256}!${String(index).padStart(CHUNK_KEY_DIGITS, "0")}`;
const chunksOf = (sha256: string) => ({ gt: `c!${sha256}!`, lt: `c!${sha256}!~` });
const writingKey = (sha256: string) => `w!${sha256}`;

/**
 * LevelDB's memory, bounded whatever the store's size. LevelDB maps each table file it holds
 * open into memory (up to 1,000 files), and every page read from one (a piece served,
 * scrubbed, checked) stays in the worker's RSS until the file is closed: with the defaults
 * (1,000 open files of 2-5 MiB) a worker that read 1 GiB held 1 GiB of it (README,
 * Benchmarks). So: 74 open files, LevelDB's floor (64 tables and 10 others), and tables of one
 * chunk each (a 512 KiB write buffer and table size: a chunk of up to 960 KiB closes a table),
 * which bounds the mapped pages near 64 MiB in `chunks/` and 32 MiB in the other; an 8 MiB
 * block cache each (the default, said here).
 * No Snappy compression: LevelDB compresses every block again at each flush and compaction,
 * and most of what a file store holds (media, archives, encrypted backups) does not shrink.
 * Storing 128 MiB of random chunks took 0.94-1.07 s of CPU with it and 0.70-0.76 s without.
 * A store written with it is still read: each block says whether it is compressed.
 */
const LEVEL_OPTIONS = { cacheSize: 8 * 1024 * 1024, writeBufferSize: 512 * 1024, maxFileSize: 512 * 1024, maxOpenFiles: 74, compression: false } as const;

/** Bits of the filter of pieces held (8 MiB): under 1% of false "maybe" up to about 5 million pieces. */
const HELD_FILTER_BITS = 2 ** 26;
/** Bit positions per piece: 32-bit slices of its SHA-256, which is uniform already. */
const HELD_FILTER_SLICES = 7;

/**
 * The pieces that are certainly not here, known without asking LevelDB: a Bloom filter of
 * the pieces held (never cleared on a drop: that only makes a "maybe"). Every piece a worker
 * is given is looked up first (the same bytes are kept once), and each LevelDB read takes the
 * database's lock on the main thread for its snapshot: when small pieces came fast those
 * reads, nearly all misses, held a fifth of a worker's main thread.
 */
class HeldFilter {
  private readonly bits = new Uint32Array(HELD_FILTER_BITS / 32);

  add(sha256: string): void {
    for (let i = 0; i < HELD_FILTER_SLICES; i++) {
      const bit = this.slot(sha256, i);
      this.bits[bit >>> 5]! |= 1 << (bit & 31);
    }
  }

  mayHold(sha256: string): boolean {
    for (let i = 0; i < HELD_FILTER_SLICES; i++) {
      const bit = this.slot(sha256, i);
      if ((this.bits[bit >>> 5]! & (1 << (bit & 31))) === 0) return false;
    }
    return true;
  }

  private slot(sha256: string, i: number): number {
    return Number.parseInt(sha256.slice(i * 8, i * 8 + 8), 16) & (HELD_FILTER_BITS - 1);
  }
}

/** Open a LevelDB of the data folder, with a coded error for a folder in use or unusable. */
async function openLevel(dir: string, folder: string): Promise<Level<string, unknown>> {
  const db = new Level<string, unknown>(folder, { keyEncoding: "utf8", ...LEVEL_OPTIONS });
  try {
    await db.open();
    return db;
  } catch (err) {
    // LevelDB locks its folder: another worker (or this one, started twice) has it open.
    if ((err as { cause?: { code?: string } }).cause?.code === "LEVEL_LOCKED") throw new DfsError(ErrorCodes.IN_USE, `the data folder ${dir} is in use by another worker`, { cause: err });
    throw new DfsError(ErrorCodes.LOCAL_IO, `cannot open the data folder ${dir}: ${(err as Error).message}`, { cause: err });
  }
}

export class PieceStore {
  private constructor(
    private readonly db: Level<string, unknown>,
    /** The chunks of pieces longer than one chunk. */
    private readonly apart: Level<string, unknown>,
    private readonly counts: { pieces: number; bytes: number },
    private readonly held: HeldFilter,
  ) {}

  static async open(dir: string): Promise<PieceStore> {
    const db = await openLevel(dir, dir);
    let apart: Level<string, unknown>;
    try {
      apart = await openLevel(dir, join(dir, "chunks"));
    } catch (err) {
      await db.close();
      throw err;
    }
    // Pieces whose writing (or dropping) never ended (the worker died): their chunks go, they
    // were never there. A piece begun before chunks were kept apart has them in `db`.
    for await (const key of db.keys({ gt: "w!", lt: "w~" })) {
      const sha256 = key.slice(2);
      await apart.clear(chunksOf(sha256));
      await db.clear(chunksOf(sha256));
      await db.del(key);
    }
    const counts = { pieces: 0, bytes: 0 };
    const held = new HeldFilter();
    for await (const [key, value] of db.iterator({ gt: "m!", lt: "m~", ...META })) {
      counts.pieces += 1;
      counts.bytes += (value as PieceMeta).size;
      held.add(key.slice(2));
    }
    return new PieceStore(db, apart, counts, held);
  }

  get pieces(): number {
    return this.counts.pieces;
  }

  get bytes(): number {
    return this.counts.bytes;
  }

  private async meta(sha256: string): Promise<PieceMeta | undefined> {
    if (!this.held.mayHold(sha256)) return undefined;
    return (await this.db.get(metaKey(sha256), META)) as PieceMeta | undefined;
  }

  async has(sha256: string): Promise<boolean> {
    return (await this.meta(sha256)) !== undefined;
  }

  /**
   * Store a piece whose bytes were already checked against `sha256`, as the chunks given: all
   * of one size but the last, which may be shorter.
   */
  async put(sha256: string, chunks: readonly Uint8Array[], keptSince = 0): Promise<void> {
    if (await this.has(sha256)) return this.keep(sha256, keptSince);
    const writer = await this.begin(sha256);
    try {
      for (const chunk of chunks) await writer.write(chunk);
      await writer.commit(keptSince);
    } catch (err) {
      await writer.abort();
      throw err;
    }
  }

  /**
   * Start writing a piece that is not here, chunk by chunk as its bytes come (the caller
   * checks them against `sha256` before it commits). One writer per piece at a time. The
   * first chunk is held until a second comes: a piece of one chunk (every small file's) is
   * written in one batch with its metadata; a longer one marks itself as being written, then
   * its chunks go to the chunks database, the first two in one batch.
   */
  async begin(sha256: string): Promise<PieceWriter> {
    const { db, apart } = this;
    let first: Uint8Array | undefined;
    let chunks = 0;
    let size = 0;
    let chunkSize = 0;
    let short = false;
    return {
      write: async (chunk) => {
        // Every piece has at least one byte (an empty file has no pieces).
        if (chunk.length === 0 || short || (chunks > 0 && chunk.length > chunkSize)) throw new Error("chunks must be non-empty and all of one size but the last");
        if (chunks === 0) {
          chunkSize = chunk.length;
          first = chunk;
        } else {
          if (chunk.length < chunkSize) short = true;
          const held = first;
          first = undefined;
          const batch = apart.batch();
          if (held) {
            await db.put(writingKey(sha256), Date.now(), META);
            batch.put(chunkKey(sha256, 0), held, BYTES);
          }
          await batch.put(chunkKey(sha256, chunks), chunk, BYTES).write();
        }
        chunks += 1;
        size += chunk.length;
      },
      commit: async (keptSince = 0) => {
        if (chunks === 0) throw new Error("a piece has at least one chunk");
        const meta: PieceMeta = { size, chunkSize, storedAt: Date.now(), keptSince, ...(chunks > 1 ? { apart: true as const } : {}) };
        // Held from before the write: a read meanwhile asks LevelDB, which answers as it stands.
        this.held.add(sha256);
        const batch = db.batch();
        if (first) batch.put(chunkKey(sha256, 0), first, BYTES);
        await batch.put(metaKey(sha256), meta, META).del(writingKey(sha256)).write();
        first = undefined;
        this.counts.pieces += 1;
        this.counts.bytes += size;
      },
      abort: async () => {
        if (first !== undefined) return void (first = undefined); // nothing written yet
        await apart.clear(chunksOf(sha256));
        await db.del(writingKey(sha256));
      },
    };
  }

  /** Bytes [offset, offset+length) of a piece, or undefined if the piece is not here. */
  async read(sha256: string, offset: number, length: number): Promise<Uint8Array | undefined> {
    const meta = await this.meta(sha256);
    if (!meta) return undefined;
    const end = Math.min(meta.size, offset + length);
    if (offset >= end) return new Uint8Array(0);
    const first = Math.floor(offset / meta.chunkSize);
    const last = Math.floor((end - 1) / meta.chunkSize);
    const keys = [];
    for (let i = first; i <= last; i++) keys.push(chunkKey(sha256, i));
    const parts = (await this.chunkLevel(meta).getMany(keys, BYTES)) as (Uint8Array | undefined)[];
    if (parts.some((p) => p === undefined)) throw new Error(`piece ${sha256} is missing chunks`);
    const whole = parts.length === 1 ? parts[0]! : Buffer.concat(parts as Uint8Array[]);
    const from = offset - first * meta.chunkSize;
    return whole.subarray(from, from + (end - offset));
  }

  /**
   * Whether the stored bytes of a piece still hash to its SHA-256 (undefined: not here).
   * Reads one chunk at a time, so memory stays at one chunk whatever the piece size.
   */
  async verify(sha256: string): Promise<boolean | undefined> {
    const meta = await this.meta(sha256);
    if (!meta) return undefined;
    const hash = createHash("sha256");
    const count = Math.max(1, Math.ceil(meta.size / meta.chunkSize));
    for (let i = 0; i < count; i++) {
      const chunk = (await this.chunkLevel(meta).get(chunkKey(sha256, i), BYTES)) as Uint8Array | undefined;
      if (!chunk) return false;
      hash.update(chunk);
    }
    return hash.digest("hex") === sha256;
  }

  /** Record that the order at log sequence `seq` wants these bytes kept (they are here already). */
  async keep(sha256: string, seq: number): Promise<void> {
    const meta = await this.meta(sha256);
    if (meta && seq > (meta.keptSince ?? 0)) await this.db.put(metaKey(sha256), { ...meta, keptSince: seq }, META);
  }

  /** Log sequence of the latest order to keep a piece (0 if none was recorded), or undefined if it is not here. */
  async keptSince(sha256: string): Promise<number | undefined> {
    const meta = await this.meta(sha256);
    return meta ? (meta.keptSince ?? 0) : undefined;
  }

  /** The size of a piece, or undefined if it is not here. */
  async sizeOf(sha256: string): Promise<number | undefined> {
    return (await this.meta(sha256))?.size;
  }

  /** SHA-256s of the pieces held, in order, after `after`, at most `limit`. */
  async list(after: string | undefined, limit: number): Promise<string[]> {
    const out: string[] = [];
    for await (const key of this.db.keys({ gt: after === undefined ? "m!" : metaKey(after), lt: "m~", limit })) out.push(key.slice(2));
    return out;
  }

  async drop(sha256: string): Promise<boolean> {
    const meta = await this.meta(sha256);
    if (!meta) return false;
    const chunks = (batch: LevelBatch<Level<string, unknown>, string, unknown>) => {
      for (let i = 0, count = Math.max(1, Math.ceil(meta.size / meta.chunkSize)); i < count; i++) batch.del(chunkKey(sha256, i));
      return batch;
    };
    if (meta.apart) {
      // Gone at once; its chunks next, or at the next open if the worker dies first (the mark says so).
      await this.db.batch().del(metaKey(sha256)).put(writingKey(sha256), Date.now(), META).write();
      await chunks(this.apart.batch()).write();
      await this.db.del(writingKey(sha256));
    } else await chunks(this.db.batch()).del(metaKey(sha256)).write();
    this.counts.pieces -= 1;
    this.counts.bytes -= meta.size;
    return true;
  }

  /** The database a piece's chunks are in. */
  private chunkLevel(meta: PieceMeta): Level<string, unknown> {
    return meta.apart ? this.apart : this.db;
  }

  async close(): Promise<void> {
    await this.apart.close();
    await this.db.close();
  }
}
