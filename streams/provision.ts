// Idempotent provisioning. The streams are the admin's (only that role may create, change or
// delete them); each master and worker then makes its own durable consumer, which its
// permissions allow and nothing else. Racing creators are fine: the loser sees "already in
// use" and reads what the winner made.
import { jetstreamManager, JetStreamApiCodes, JetStreamApiError, type ConsumerConfig, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Catalogue } from "./catalogue.js";

async function ensureStream(jsm: JetStreamManager, config: { name: string }): Promise<void> {
  try {
    await jsm.streams.info(config.name);
    return;
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound)) throw err;
  }
  try {
    await jsm.streams.add(config);
  } catch (err) {
    // Someone else created it between our look and our add.
    await jsm.streams.info(config.name).catch(() => {
      throw err;
    });
  }
}

async function ensureConsumer(jsm: JetStreamManager, stream: string, config: Partial<ConsumerConfig>): Promise<void> {
  const name = config.durable_name!;
  try {
    const existing = await jsm.consumers.info(stream, name);
    // Made by an older version: bring its timing up to date (the rest cannot change).
    if (existing.config.ack_wait !== config.ack_wait) await jsm.consumers.update(stream, name, { ack_wait: config.ack_wait });
    return;
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound)) throw err;
  }
  try {
    await jsm.consumers.add(stream, config);
  } catch (err) {
    await jsm.consumers.info(stream, name).catch(() => {
      throw err;
    });
  }
}

export interface ProvisionOptions {
  /** Stream replicas: 1 on a single server, 3 on a three-server cluster. */
  replicas?: number;
}

/** The streams (events, confirmations, and the events' mirror for readers): the admin's job, done once per store (`dfs provision`, `dfs up`). */
export async function provisionStreams(nc: NatsConnection, cat: Catalogue, opts: ProvisionOptions = {}): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await ensureStream(jsm, cat.eventsStreamConfig(opts.replicas));
  await ensureStream(jsm, cat.confirmStreamConfig(opts.replicas));
  await ensureStream(jsm, cat.auditStreamConfig(opts.replicas));
  await ensureStream(jsm, cat.leaseStreamConfig(opts.replicas));
  await ensureStream(jsm, cat.abandonStreamConfig(opts.replicas));
  await ensureStream(jsm, cat.snapshotStreamConfig(opts.replicas));
}

/** Whether a stream is there (readers and roles never create one). */
export async function streamExists(nc: NatsConnection, stream: string): Promise<boolean> {
  try {
    await (await jetstreamManager(nc)).streams.info(stream);
    return true;
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return false;
    throw err;
  }
}

/** The masters' shared durable consumer of confirmations (the streams must be there). */
export async function provisionMaster(nc: NatsConnection, cat: Catalogue): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await ensureConsumer(jsm, cat.confirmStream, cat.masterConfirmConsumerConfig());
  await ensureConsumer(jsm, cat.abandonStream, cat.masterAbandonConsumerConfig());
}

/**
 * Workers' durable consumers of their assignment subjects: the admin's job (a worker that
 * could make its own consumer could also make it push the log anywhere).
 */
export async function provisionWorkers(nc: NatsConnection, cat: Catalogue, workerIds: readonly string[]): Promise<void> {
  const jsm = await jetstreamManager(nc);
  for (const id of workerIds) await ensureConsumer(jsm, cat.eventsStream, cat.workerConsumerConfig(id));
}

/** Whether a consumer is there. */
export async function consumerExists(nc: NatsConnection, stream: string, name: string): Promise<boolean> {
  try {
    await (await jetstreamManager(nc)).consumers.info(stream, name);
    return true;
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound) return false;
    throw err;
  }
}
