// Snapshots on JetStream: the table's bytes as chunks on a subject of their own, then a head
// that names them (the last write is the commit, as NATS Object Store does it), then the
// snapshots it replaces purged.
//
// Several masters may write at once. A writer purges only what cannot be the latest snapshot
// nor become it: the snapshots whose heads came before its own in the stream (the latest head
// is at or after it), and chunks no head names that have had no new message for
// ORPHANED_AFTER_MS (a writer that died before its head). Chunks another writer is still
// sending, or whose head came after the heads were read, are left to the next writer.
import { createHash } from "node:crypto";
import { jetstream, jetstreamManager, JetStreamApiCodes, JetStreamApiError, type JetStreamManager } from "@nats-io/jetstream";
import { nuid, type NatsConnection } from "@nats-io/transport-node";
import type { Catalogue } from "../../streams/catalogue.js";
import { decode, encode } from "../codec.js";
import { readLog } from "../log.js";
import { frameSizeFor } from "../protocol.js";
import { SNAPSHOT_FORMAT, SnapshotHead, decodeTable } from "../snapshot.js";
import type { State } from "../state.js";
import { throughFailover } from "../failover.js";

/** Chunks sent before waiting for their acknowledgements. */
const CHUNKS_IN_FLIGHT = 16;
/** Bytes of a snapshot on their way to a master that reads it: half of what the server lets a connection have pending. */
const SNAPSHOT_BYTES_IN_FLIGHT = 32 * 1024 * 1024;
/** Chunks that no head names and that got no new message for this long are a dead writer's. */
const ORPHANED_AFTER_MS = 10 * 60_000;

/** Write a snapshot of an encoded table; resolves with its head once the head is stored and what it replaces purged. */
export async function writeSnapshot(
  nc: NatsConnection,
  cat: Catalogue,
  bytes: Uint8Array,
  about: { seq: number; digest: string; files: number },
  opts: { orphanedAfterMs?: number } = {},
): Promise<SnapshotHead> {
  const js = jetstream(nc);
  const snapshotId = nuid.next();
  const subject = cat.snapshotChunks(snapshotId);
  const chunkSize = frameSizeFor(nc.info?.max_payload ?? 1024 * 1024);
  const hash = createHash("sha256").update(bytes);
  let chunks = 0;
  for (let offset = 0; offset < bytes.length; offset += chunkSize * CHUNKS_IN_FLIGHT) {
    const window = [];
    for (let start = offset; start < Math.min(bytes.length, offset + chunkSize * CHUNKS_IN_FLIGHT); start += chunkSize) {
      window.push(throughFailover(() => js.publish(subject, bytes.subarray(start, start + chunkSize))));
      chunks += 1;
    }
    await Promise.all(window);
  }
  const head: SnapshotHead = { format: SNAPSHOT_FORMAT, snapshotId, ...about, bytes: bytes.length, chunks, sha256: hash.digest("hex"), at: Date.now() };
  const { seq: headSeq } = await throughFailover(() => js.publish(cat.snapshotHead(), encode(head)));
  await purgeReplaced(nc, cat, headSeq, opts.orphanedAfterMs ?? ORPHANED_AFTER_MS);
  return head;
}

/** Purge what the head stored at `headSeq` replaces (see the top of this file). */
async function purgeReplaced(nc: NatsConnection, cat: Catalogue, headSeq: number, orphanedAfterMs: number): Promise<void> {
  const jsm = await jetstreamManager(nc);
  // The chunks first, the heads after: chunks whose head comes in between are seen named.
  const info = await jsm.streams.info(cat.snapshotStream, { subjects_filter: cat.snapshotChunks("*") });
  const namedAt = new Map<string, number>();
  for (const { seq, head } of await storedHeads(jsm, cat)) namedAt.set(cat.snapshotChunks(head.snapshotId), seq);
  for (const subject of Object.keys(info.state.subjects ?? {})) {
    const named = namedAt.get(subject);
    const replaced = named !== undefined ? named < headSeq : await idleFor(jsm, cat, subject, orphanedAfterMs);
    if (replaced) await jsm.streams.purge(cat.snapshotStream, { filter: subject });
  }
  await jsm.streams.purge(cat.snapshotStream, { filter: cat.snapshotHead(), seq: headSeq });
}

/** Every head the stream keeps, with its stream sequence (a message there that is no head names nothing). */
async function storedHeads(jsm: JetStreamManager, cat: Catalogue): Promise<{ seq: number; head: SnapshotHead }[]> {
  const heads = [];
  for (let seq = 1; ; ) {
    const stored = await throughFailover(() => jsm.streams.getMessage(cat.snapshotStream, nextOn(cat.snapshotHead(), seq)));
    if (!stored) return heads;
    const head = SnapshotHead.safeParse(safeDecode(stored.data));
    if (head.success) heads.push({ seq: stored.seq, head: head.data });
    seq = stored.seq + 1;
  }
}

/** Whether the last message on `subject` is older than `ms` (or there is none). */
async function idleFor(jsm: JetStreamManager, cat: Catalogue, subject: string, ms: number): Promise<boolean> {
  const last = await throughFailover(() => jsm.streams.getMessage(cat.snapshotStream, { last_by_subj: subject }));
  return !last || Date.now() - last.time.getTime() >= ms;
}

function safeDecode(data: Uint8Array): unknown {
  try {
    return decode(data);
  } catch {
    return undefined;
  }
}

/** The query for the first message on `subject` at or after `seq`. */
function nextOn(subject: string, seq: number): Parameters<JetStreamManager["streams"]["getMessage"]>[1] {
  // nats.js types a stream's message get without `next_by_subj`, which nats-server (2.9 on) answers.
  return { seq, next_by_subj: subject } as unknown as Parameters<JetStreamManager["streams"]["getMessage"]>[1];
}

/**
 * Whether a snapshot may be folded on from in a log that ends at `last`: one that covers more
 * than the log holds is of another log (its events stream was made again), and folding on
 * from it would fork the history. The master and `--at` readers both ask this.
 */
export function withinLog(head: SnapshotHead, last: number): boolean {
  return head.seq <= last;
}

/** The latest snapshot's head, if any (undefined too on a store made before snapshots). */
export async function latestSnapshotHead(nc: NatsConnection, cat: Catalogue): Promise<SnapshotHead | undefined> {
  const jsm = await jetstreamManager(nc);
  let stored;
  try {
    stored = await throughFailover(() => jsm.streams.getMessage(cat.snapshotStream, { last_by_subj: cat.snapshotHead() }));
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return undefined; // a store provisioned before snapshots
    throw err;
  }
  return stored ? SnapshotHead.parse(decode(stored.data)) : undefined;
}

/** The latest snapshot, read back and checked against its head; undefined when there is none. */
export async function readLatestSnapshot(nc: NatsConnection, cat: Catalogue): Promise<{ head: SnapshotHead; state: State } | undefined> {
  const head = await latestSnapshotHead(nc, cat);
  if (!head) return undefined;
  const chunks: Uint8Array[] = [];
  if (head.chunks > 0) {
    // As many chunks at once as fit in SNAPSHOT_BYTES_IN_FLIGHT: 10,000 at once put 160 MB on
    // their way, past the server's 64 MiB limit for a connection, which then was cut.
    const batch = Math.max(1, Math.floor(SNAPSHOT_BYTES_IN_FLIGHT / Math.ceil(head.bytes / head.chunks)));
    const reader = await readLog(nc, cat, { stream: cat.snapshotStream, filter: cat.snapshotChunks(head.snapshotId), batch }, (m) => void chunks.push(m.data));
    await reader.done;
  }
  return { head, state: decodeTable(head, chunks) };
}

/**
 * The chunks a snapshot's head names, fetched one message at a time (the next on its chunk
 * subject from a sequence on): how a reader of the log reads a snapshot, as it may get the
 * snapshot stream's messages but makes no consumer. Check them with `decodeTable`.
 */
export async function getSnapshotChunks(nc: NatsConnection, cat: Catalogue, head: SnapshotHead): Promise<Uint8Array[]> {
  const jsm = await jetstreamManager(nc);
  const subject = cat.snapshotChunks(head.snapshotId);
  const chunks: Uint8Array[] = [];
  for (let seq = 1; chunks.length < head.chunks; ) {
    const stored = await throughFailover(() => jsm.streams.getMessage(cat.snapshotStream, nextOn(subject, seq)));
    if (!stored) break;
    chunks.push(stored.data);
    seq = stored.seq + 1;
  }
  return chunks;
}
