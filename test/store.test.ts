// The worker's piece store on a real LevelDB in a temporary directory.
import { createHash, randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { Level } from "level";
import { PieceStore } from "../workers/store.js";
import { PIECE_COST_BYTES, Scrubber } from "../workers/scrub.js";
import { tempDir, waitFor } from "./harness.js";

const test = suite("piece store");
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const chunksOf = (b: Buffer, size: number) => Array.from({ length: Math.ceil(b.length / size) }, (_, i) => b.subarray(i * size, (i + 1) * size));
/** The store's two LevelDBs (private): the data folder's own, and `chunks/` for longer pieces' chunks. */
const levelsOf = (store: PieceStore) => store as unknown as { db: Level<string, unknown>; apart: Level<string, unknown> };

/** Chunk keys in `db`, one count for each database: [the data folder's, chunks/]. */
async function chunkKeys(store: PieceStore): Promise<[number, number]> {
  const { db, apart } = levelsOf(store);
  const count = async (level: Level<string, unknown>) => {
    let n = 0;
    for await (const _ of level.keys({ gt: "c!", lt: "c~" })) n += 1;
    return n;
  };
  return [await count(db), await count(apart)];
}

/** Run `body` on a fresh store in a temporary directory; `reopen` closes it and opens it again. */
async function withStore(body: (store: () => PieceStore, reopen: () => Promise<void>) => Promise<void>): Promise<void> {
  const dir = await tempDir("store");
  let store = await PieceStore.open(join(dir, "db"));
  try {
    await body(
      () => store,
      async () => {
        await store.close();
        store = await PieceStore.open(join(dir, "db"));
      },
    );
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

test("store - reads any byte range of a piece, across chunk boundaries", () =>
  withStore(async (open) => {
    const store = open();
    const bytes = randomBytes(10_000);
    await store.put(sha(bytes), chunksOf(bytes, 3_000));
    for (const [offset, length] of [[0, 10_000], [0, 1], [2_999, 2], [2_500, 5_000], [9_999, 100], [6_000, 3_000]]) {
      const got = await store.read(sha(bytes), offset!, length!);
      assert.ok(Buffer.compare(Buffer.from(got!), bytes.subarray(offset!, offset! + length!)) === 0, `[${offset}, +${length})`);
    }
    assert.is((await store.read(sha(bytes), 10_000, 5))!.length, 0, "past the end is empty");
    assert.is(await store.read("00".repeat(32), 0, 10), undefined, "a missing piece is undefined");
  }),
);

test("store - the same bytes are kept once; counts survive a reopen; drop forgets", () =>
  withStore(async (open, reopen) => {
    let store = open();
    const a = randomBytes(5_000);
    const b = randomBytes(7_000);
    await store.put(sha(a), chunksOf(a, 4_096));
    await store.put(sha(a), chunksOf(a, 4_096));
    await store.put(sha(b), [b]);
    assert.is(store.pieces, 2);
    assert.is(store.bytes, 12_000);
    await reopen();
    store = open();
    assert.is(store.pieces, 2);
    assert.is(store.bytes, 12_000);
    assert.ok(await store.has(sha(a)));
    assert.is(await store.drop(sha(a)), true);
    assert.is(await store.drop(sha(a)), false, "dropping twice is harmless");
    assert.not.ok(await store.has(sha(a)));
    assert.is(store.pieces, 1);
    assert.is(store.bytes, 7_000);
    assert.ok(Buffer.compare(Buffer.from((await store.read(sha(b), 0, 7_000))!), b) === 0, "the other piece is untouched");
  }),
);

test("store - a longer piece's chunks are apart: dropped, or dropped by a worker that died meanwhile, they go; a store written before (every chunk in one database) is still read, checked and dropped", () =>
  withStore(async (open, reopen) => {
    const long = randomBytes(10_000);
    await open().put(sha(long), chunksOf(long, 4_096));
    assert.equal(await chunkKeys(open()), [0, 3]);
    assert.ok(await open().drop(sha(long)));
    assert.equal(await chunkKeys(open()), [0, 0], "its chunks went with it");

    // A worker that died in the middle of a drop: the metadata went and the mark was set, the chunks not yet.
    await open().put(sha(long), chunksOf(long, 4_096));
    await levelsOf(open()).db.batch().del(`m!${sha(long)}`).put(`w!${sha(long)}`, Date.now(), { valueEncoding: "json" }).write();
    await reopen();
    assert.not.ok(await open().has(sha(long)));
    assert.equal(await chunkKeys(open()), [0, 0], "the next open removed the chunks");

    // Written before chunks were kept apart: chunks and metadata in the data folder's database.
    const old = randomBytes(9_000);
    const { db } = levelsOf(open());
    const batch = db.batch();
    chunksOf(old, 4_096).forEach((chunk, i) => batch.put(`c!${sha(old)}!${String(i).padStart(6, "0")}`, chunk, { valueEncoding: "view" }));
    await batch.put(`m!${sha(old)}`, { size: 9_000, chunkSize: 4_096, storedAt: Date.now() }, { valueEncoding: "json" }).write();
    await reopen();
    assert.is(open().pieces, 1);
    assert.equal(Buffer.from((await open().read(sha(old), 4_000, 200))!), old.subarray(4_000, 4_200), "read across its chunks");
    assert.is(await open().verify(sha(old)), true);
    assert.ok(await open().drop(sha(old)));
    assert.equal(await chunkKeys(open()), [0, 0]);
    assert.is(open().pieces, 0);
  }),
);

test("store - refuses chunks of uneven sizes", () =>
  withStore(async (open) => {
    const store = open();
    const bytes = randomBytes(300);
    let refused = false;
    await store.put(sha(bytes), [bytes.subarray(0, 100), bytes.subarray(100, 300)]).catch(() => (refused = true));
    assert.ok(refused);
    assert.not.ok(await store.has(sha(bytes)));
  }),
);

test("store - a piece being written is absent until committed; an aborted one, or one whose writer died, leaves no chunk", () =>
  withStore(async (open, reopen) => {
    const bytes = randomBytes(10_000);
    const id = sha(bytes);
    const chunkCount = async () => (await chunkKeys(open())).reduce((a, b) => a + b);
    const writer = await open().begin(id);
    await writer.write(bytes.subarray(0, 4_096));
    assert.is(await chunkCount(), 0, "a first chunk is held until a second comes, or the commit");
    await writer.write(bytes.subarray(4_096, 8_192));
    assert.is(await chunkCount(), 2);
    assert.not.ok(await open().has(id), "absent while written");
    assert.is(await open().read(id, 0, 10), undefined, "nothing to read while written");
    await writer.abort();
    assert.is(await chunkCount(), 0, "aborted: no chunk left");

    const dying = await open().begin(id);
    await dying.write(bytes.subarray(0, 4_096));
    await dying.write(bytes.subarray(4_096, 8_192));
    assert.is(await chunkCount(), 2);
    await reopen(); // the worker died mid-piece
    assert.is(await chunkCount(), 0, "its chunks were removed at the next open");
    assert.not.ok(await open().has(id));
    assert.is(open().pieces, 0);

    const done = await open().begin(id);
    for (const chunk of chunksOf(bytes, 4_096)) await done.write(chunk);
    await done.commit(7);
    await reopen();
    assert.ok(Buffer.compare(Buffer.from((await open().read(id, 0, 10_000))!), bytes) === 0, "committed: all there after a reopen");
    assert.is(open().pieces, 1);
    assert.is(await open().keptSince(id), 7);

    // A piece of one chunk goes to disk with its metadata in one batch, at its commit.
    const small = randomBytes(100);
    const one = await open().begin(sha(small));
    await one.write(small);
    assert.is(await chunkCount(), 3, "nothing of it before the commit");
    await one.commit();
    await reopen();
    assert.equal(Buffer.from((await open().read(sha(small), 0, 100))!), small);
    assert.is(open().pieces, 2);
    assert.equal(await chunkKeys(open()), [1, 3], "a piece of one chunk in the data folder's database, a longer one's in chunks/");
  }),
);

test("store - remembers the latest order to keep a piece, so a drop from before it can be told stale", () =>
  withStore(async (open, reopen) => {
    const bytes = randomBytes(5_000);
    const id = sha(bytes);
    assert.is(await open().keptSince(id), undefined, "not here");
    await open().put(id, chunksOf(bytes, 4_096), 10);
    assert.is(await open().keptSince(id), 10);
    await open().put(id, chunksOf(bytes, 4_096), 30);
    assert.is(await open().keptSince(id), 30, "stored again by a later order");
    await open().keep(id, 20);
    assert.is(await open().keptSince(id), 30, "never goes back");
    await reopen();
    assert.is(await open().keptSince(id), 30, "kept across restarts");
  }));

test("store - every piece held is found, written now or before a reopen; others are not (the filter in front of LevelDB has no false no)", () =>
  withStore(async (open, reopen) => {
    const before = Array.from({ length: 200 }, () => randomBytes(50));
    for (const bytes of before) await open().put(sha(bytes), [bytes]);
    await reopen();
    const after = Array.from({ length: 200 }, () => randomBytes(50));
    for (const bytes of after) await open().put(sha(bytes), [bytes]);
    for (const bytes of [...before, ...after]) assert.ok(await open().has(sha(bytes)));
    const dropped = before[0]!;
    assert.ok(await open().drop(sha(dropped)));
    assert.not.ok(await open().has(sha(dropped)), "a drop is seen at once");
    for (let i = 0; i < 200; i++) assert.not.ok(await open().has(sha(randomBytes(50))));
    assert.is(open().pieces, 399);
  }),
);

test("scrub - each piece counts its lookups against the background pace: small pieces are not scrubbed flat out", () =>
  withStore(async (open) => {
    for (let i = 0; i < 300; i++) {
      const bytes = randomBytes(100);
      await open().put(sha(bytes), [bytes]);
    }
    let checked = 0;
    const scrubber = new Scrubber(open(), async () => ((checked += 1), "good"), () => undefined);
    // 16 pieces' worth a second: one page of 16 a second, whatever their few bytes.
    scrubber.start(16 * (PIECE_COST_BYTES + 100));
    try {
      await waitFor("the first page", () => checked >= 16, 10_000, 20);
      const before = checked;
      await new Promise((r) => setTimeout(r, 1_500));
      assert.ok(checked - before <= 32, `${checked - before} pieces checked in 1.5 s at 16 a second`);
    } finally {
      scrubber.stop();
    }
  }),
);

test.run();
