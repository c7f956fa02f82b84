// The event log on JetStream: fenced appends and ordered reads. Shared by the master (replay,
// then tail), `dfs tail`, `dfs replay` and the client waiting for its commit.
import {
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
  type ConsumerMessages,
  type JetStreamClient,
} from "@nats-io/jetstream";
import { nuid, type NatsConnection } from "@nats-io/transport-node";
import type { Catalogue } from "../streams/catalogue.js";
import { DfsError, ErrorCodes } from "./errors.js";
import { PULL_EXPIRES_MS, throughFailover } from "./failover.js";
import type { LoggedMessage } from "./fold.js";

/** Another writer appended first: `lastSeq`, when known, is where the stream really is. */
export class AppendConflict extends Error {
  constructor(readonly expected: number, readonly lastSeq: number | undefined) {
    super(`stream is past sequence ${expected}${lastSeq === undefined ? "" : ` (at ${lastSeq})`}`);
  }
}

/**
 * Append one message, only if the stream's last sequence is `lastSeq`: resolves with its
 * sequence. Each append carries a new message id, so one tried again through a failover
 * after its ack was lost is recognised as the same message (the stream deduplicates before
 * it checks the fence) and never lands twice.
 */
export async function appendEvent(js: JetStreamClient, message: { subject: string; data: Uint8Array }, lastSeq: number): Promise<number> {
  const id = nuid.next();
  try {
    const ack = await throughFailover(() => js.publish(message.subject, message.data, { msgID: id, expect: { lastSequence: lastSeq } }));
    if (ack.seq !== lastSeq + 1) throw new AppendConflict(lastSeq, undefined);
    return ack.seq;
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence) {
      const match = /wrong last sequence: (\d+)/.exec(err.message);
      throw new AppendConflict(lastSeq, match ? Number(match[1]) : undefined);
    }
    throw err;
  }
}

/** A message of the events stream with the time the server stored it. */
export interface TimedMessage extends LoggedMessage {
  readonly time: Date;
}

export interface ReadLogOptions {
  /** The stream to read: the events stream (default), or its audit mirror (same sequences). */
  stream?: string;
  /** A pull consumer made for this reader (see openReader); without one, an ordered consumer of its own. */
  consumer?: string;
  /** First sequence to deliver (default 1). */
  fromSeq?: number;
  /** One subject (or wildcard) to read instead of every event subject. */
  filter?: string;
  /** Keep delivering new events until `stop()`; otherwise end at the last event of now. */
  follow?: boolean;
  /**
   * Messages asked for at once (default 10,000, for events of a few hundred bytes). Large
   * messages want fewer: the server cuts a connection that has more than 64 MiB on its way.
   */
  batch?: number;
}

export interface LogReader {
  /** Resolves when the reader has delivered everything up to the stream's end as of its start (not with follow: when stopped). */
  done: Promise<void>;
  /** Sequence of the stream's last message when the reader started. */
  startLastSeq: number;
  stop(): void;
}

export async function lastSequence(nc: NatsConnection, cat: Catalogue, stream = cat.eventsStream): Promise<number> {
  // Without the API check each manager makes first: a follower asks this for reads from callers that saw nothing.
  return throughFailover(async () => (await (await jetstreamManager(nc, { checkAPI: false })).streams.info(stream)).state.last_seq);
}

/** Until the audit mirror holds the events stream up to `seq` (it follows within milliseconds). */
export async function mirrorReaches(nc: NatsConnection, cat: Catalogue, seq: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let wait = 10; (await lastSequence(nc, cat, cat.auditStream)) < seq; wait = Math.min(200, wait * 2)) {
    if (Date.now() > deadline) throw new DfsError(ErrorCodes.TIMEOUT, `the audit mirror ${cat.auditStream} did not reach sequence ${seq}`);
    await new Promise((r) => setTimeout(r, wait));
  }
}

/**
 * Deliver the stream's messages in log order through an ordered consumer (the fastest way to
 * read a stream from one process), undecoded: readers fold them with `foldLogged`, or decode
 * them with `decodeEvent`.
 */
export async function readLog(
  nc: NatsConnection,
  cat: Catalogue,
  opts: ReadLogOptions,
  onMessage: (message: TimedMessage) => void,
): Promise<LogReader> {
  const js = jetstream(nc);
  const stream = opts.stream ?? cat.eventsStream;
  const startLastSeq = await lastSequence(nc, cat, stream);
  const fromSeq = Math.max(1, opts.fromSeq ?? 1);
  let stopped = false;
  let messages: ConsumerMessages | undefined;
  const stop = () => {
    stopped = true;
    void messages?.close();
  };
  if (!opts.follow && startLastSeq < fromSeq) return { done: Promise.resolve(), startLastSeq, stop };
  const consumer = await throughFailover(() =>
    opts.consumer
      ? js.consumers.get(stream, opts.consumer)
      : js.consumers.get(stream, {
          deliver_policy: fromSeq > 1 ? DeliverPolicy.StartSequence : DeliverPolicy.All,
          ...(fromSeq > 1 ? { opt_start_seq: fromSeq } : {}),
          ...(opts.filter ? { filter_subjects: opts.filter } : {}),
        }),
  );
  messages = await consumer.consume({ max_messages: opts.batch ?? 10_000, expires: PULL_EXPIRES_MS });
  let previous = fromSeq - 1;
  const done = (async () => {
    for await (const m of messages!) {
      if (stopped) break;
      // A consumer made for this reader by someone else (a master) must not hide anything:
      // the log has no holes, so a skipped sequence means a filtered or tampered reader.
      if (opts.consumer && !opts.filter && m.seq !== previous + 1) {
        throw new DfsError(ErrorCodes.INTERNAL, `the reader of ${stream} skipped from sequence ${previous} to ${m.seq}`);
      }
      previous = m.seq;
      onMessage({ seq: m.seq, subject: m.subject, data: m.data, time: new Date(Math.floor(m.info.timestampNanos / 1e6)) });
      // A filtered reader may never see the stream's last sequence: pending 0 means caught up.
      if (!opts.follow && (m.seq >= startLastSeq || m.info.pending === 0)) break;
    }
    await messages!.close();
  })();
  return { done, startLastSeq, stop };
}


/** A pull consumer of the audit mirror made for one reader, from `fromSeq` on: what `readLog` reads with `consumer`. */
export interface Reader {
  stream: string;
  consumer: string;
}

/** Make a reader's consumer of the audit mirror (a master does it for readers; the admin may too). */
export async function openReader(nc: NatsConnection, cat: Catalogue, fromSeq: number): Promise<Reader> {
  const config = cat.readerConsumerConfig(nuid.next(), fromSeq);
  await (await jetstreamManager(nc)).consumers.add(cat.auditStream, config);
  return { stream: cat.auditStream, consumer: config.name };
}
