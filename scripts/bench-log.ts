// A large, valid log for the replay benchmark, and the bare reader it is compared with.
// The log is what a master would have written for many one-piece files put with one replica
// on a few workers: every event folds without rejection.
import { randomBytes } from "node:crypto";
import { DeliverPolicy, jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Catalogue } from "../streams/catalogue.js";
import { decode, encode } from "../src/codec.js";
import type { DfsEvent } from "../src/events.js";
import { subjectFor } from "../src/fold.js";
import { PULL_EXPIRES_MS } from "../src/failover.js";
import { lastSequence } from "../src/log.js";

/** Events a one-piece, one-replica file costs: created, planned, assigned, stored, committed. */
export const EVENTS_PER_FILE = 5;
const FILE_BYTES = 1024;
const PIECE_SIZE = 4096;
const WORKERS = ["w1", "w2", "w3"];
/** A reader that gets nothing for this long has stalled: fail rather than wait for ever. */
const STALL_LIMIT_MS = 60_000;
/** Publishes awaiting their ack at once. */
const PUBLISHES_IN_FLIGHT = 2_000;

/**
 * The largest log of whole files within `events` events (the workers join first): a file cut
 * in the middle would be an open upload, which a master would go on to heal.
 */
export function wholeFilesWithin(events: number): { files: number; events: number } {
  const files = Math.floor(Math.max(0, events - WORKERS.length) / EVENTS_PER_FILE);
  return { files, events: WORKERS.length + files * EVENTS_PER_FILE };
}

function* syntheticEvents(files: number): Generator<DfsEvent> {
  const at = Date.now();
  for (const workerId of WORKERS) yield { type: "WorkerJoined", at, workerId };
  for (let n = 0; n < files; n++) {
    const fileId = `f${n}`;
    const path = `/log/${n}`;
    const sha256 = randomBytes(32).toString("hex");
    const workerId = WORKERS[n % WORKERS.length]!;
    yield* [
      { type: "FileCreated", at, fileId, path, version: 1, size: FILE_BYTES, sha256, pieceSize: PIECE_SIZE, replicas: 1, uploadId: `u${n}` },
      { type: "PiecesPlanned", at, fileId, version: 1, pieces: [{ index: 0, size: FILE_BYTES, sha256 }] },
      { type: "PeersAssigned", at, fileId, version: 1, uploadId: `u${n}`, workerId, pieces: [{ piece: 0, size: FILE_BYTES, sha256, role: "major" }] },
      { type: "PieceStored", at, fileId, version: 1, piece: 0, workerId, sha256 },
      { type: "FileCommitted", at, fileId, path, version: 1, size: FILE_BYTES, sha256 },
    ] satisfies DfsEvent[];
  }
}

/**
 * Append the log of `files` files to an empty events stream with pipelined publishes (no
 * master may run meanwhile: nothing fences them). Resolves once the stream holds all of it.
 */
export async function appendSyntheticLog(nc: NatsConnection, cat: Catalogue, files: number): Promise<void> {
  const js = jetstream(nc);
  const inFlight = new Set<Promise<unknown>>();
  const events = WORKERS.length + files * EVENTS_PER_FILE;
  for (const event of syntheticEvents(files)) {
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
