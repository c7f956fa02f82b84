// A large, valid log for the replay benchmark, and the bare reader it is compared with.
// The log is what a master writes for many one-piece files put with one replica by `put -r`
// on a few workers (creates decided together, as the master does with files in flight at
// once): every event folds without rejection.
import { randomBytes } from "node:crypto";
import { DeliverPolicy, jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Catalogue } from "../streams/catalogue.js";
import { decode, encode } from "../src/codec.js";
import type { DfsEvent } from "../src/events.js";
import { subjectFor } from "../src/fold.js";
import { PULL_EXPIRES_MS } from "../src/failover.js";
import { lastSequence } from "../src/log.js";

const FILE_BYTES = 1024;
const PIECE_SIZE = 4096;
const WORKERS = ["w1", "w2", "w3"];
/** Files decided together: about what a `put -r` of small files gets (16 an UploadsAssigned, measured). */
const FILES_PER_GROUP = 16;
/** A group's events: each file's FileCreated (with its plan), PieceStored and FileCommitted, and one UploadsAssigned per worker. */
const EVENTS_PER_GROUP = 3 * FILES_PER_GROUP + WORKERS.length;
const UPLOADER = "client";
/** A reader that gets nothing for this long has stalled: fail rather than wait for ever. */
const STALL_LIMIT_MS = 60_000;
/** Publishes awaiting their ack at once. */
const PUBLISHES_IN_FLIGHT = 2_000;

/**
 * The largest log of whole groups of files within `events` events (the workers join first): a
 * file cut in the middle would be an open upload, which a master would go on to heal.
 */
export function wholeFilesWithin(events: number): { files: number; events: number } {
  const groups = Math.floor(Math.max(0, events - WORKERS.length) / EVENTS_PER_GROUP);
  return { files: groups * FILES_PER_GROUP, events: WORKERS.length + groups * EVENTS_PER_GROUP };
}

function* syntheticEvents(files: number): Generator<DfsEvent> {
  const at = Date.now();
  for (const workerId of WORKERS) yield { type: "WorkerJoined", at, workerId };
  for (let first = 0; first < files; first += FILES_PER_GROUP) {
    const group = Array.from({ length: Math.min(FILES_PER_GROUP, files - first) }, (_, i) => {
      const n = first + i;
      return { n, fileId: `f${n}`, path: `/log/${n}`, uploadId: `u${n}`, sha256: randomBytes(32).toString("hex"), workerId: WORKERS[n % WORKERS.length]! };
    });
    for (const f of group) {
      const plan = [{ index: 0, size: FILE_BYTES, sha256: f.sha256 }];
      yield { type: "FileCreated", at, fileId: f.fileId, path: f.path, version: 1, size: FILE_BYTES, sha256: f.sha256, pieceSize: PIECE_SIZE, replicas: 1, uploadId: f.uploadId, uploader: UPLOADER, pieces: plan };
    }
    for (const workerId of WORKERS) {
      const uploads = group
        .filter((f) => f.workerId === workerId)
        .map((f) => ({ fileId: f.fileId, version: 1, uploadId: f.uploadId, uploader: UPLOADER, pieces: [{ piece: 0, size: FILE_BYTES, sha256: f.sha256, role: "major" as const }] }));
      if (uploads.length > 0) yield { type: "UploadsAssigned", at, workerId, uploads };
    }
    for (const f of group) {
      yield { type: "PieceStored", at, fileId: f.fileId, version: 1, piece: 0, workerId: f.workerId, sha256: f.sha256 };
      yield { type: "FileCommitted", at, fileId: f.fileId, path: f.path, version: 1, size: FILE_BYTES, sha256: f.sha256 };
    }
  }
}

/**
 * Append the log of `files` files to an empty events stream with pipelined publishes (no
 * master may run meanwhile: nothing fences them). Resolves once the stream holds all of it.
 */
export async function appendSyntheticLog(nc: NatsConnection, cat: Catalogue, files: number): Promise<void> {
  const js = jetstream(nc);
  const inFlight = new Set<Promise<unknown>>();
  let events = 0;
  for (const event of syntheticEvents(files)) {
    events += 1;
    const ack = js.publish(subjectFor(cat, event), encode(event));
    inFlight.add(ack);
    void ack.finally(() => inFlight.delete(ack)).catch(() => undefined);
    if (inFlight.size >= PUBLISHES_IN_FLIGHT) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  const last = await lastSequence(nc, cat);
  if (last !== events) throw new Error(`the events stream holds ${last} events, not ${events}`);
}

/**
 * Read the whole events stream through an ordered consumer, pulled as the product's readers
 * pull (`readLog` in src/log.ts), and CBOR-decode every message: the floor of any replay.
 */
export async function readBare(nc: NatsConnection, cat: Catalogue): Promise<number> {
  const last = await lastSequence(nc, cat);
  const consumer = await jetstream(nc).consumers.get(cat.eventsStream, { deliver_policy: DeliverPolicy.All });
  const messages = await consumer.consume({ max_messages: 10_000, expires: PULL_EXPIRES_MS });
  let decoded = 0;
  let lastProgress = Date.now();
  const watchdog = setInterval(() => {
    if (Date.now() - lastProgress > STALL_LIMIT_MS) void messages.close();
  }, 1_000);
  try {
    for await (const m of messages) {
      decode(m.data);
      decoded += 1;
      lastProgress = Date.now();
      if (m.seq >= last) break;
    }
  } finally {
    clearInterval(watchdog);
    await messages.close();
  }
  if (decoded < last) throw new Error(`the bare reader stalled at ${decoded} of ${last} events`);
  return decoded;
}
