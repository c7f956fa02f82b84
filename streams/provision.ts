// Idempotent provisioning: whoever starts first (master, worker, CLI) creates what it needs;
// everyone after finds it in place. Racing creators are fine: the loser sees "already in use"
// and reads what the winner made.
import { jetstreamManager, JetStreamApiError, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Catalogue } from "./catalogue.js";

const STREAM_NOT_FOUND = 10059;
const CONSUMER_NOT_FOUND = 10014;

async function ensureStream(jsm: JetStreamManager, config: { name: string; subjects: string[] }): Promise<void> {
  try {
    await jsm.streams.info(config.name);
    return;
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === STREAM_NOT_FOUND)) throw err;
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

async function ensureConsumer(jsm: JetStreamManager, stream: string, config: { durable_name?: string }): Promise<void> {
  const name = config.durable_name!;
  try {
    await jsm.consumers.info(stream, name);
    return;
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === CONSUMER_NOT_FOUND)) throw err;
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

/** The events stream: enough for readers (`dfs tail`, `dfs replay`). */
export async function provisionEvents(nc: NatsConnection, cat: Catalogue, opts: ProvisionOptions = {}): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await ensureStream(jsm, cat.eventsStreamConfig(opts.replicas));
}

/** Both streams and the masters' confirmation consumer. */
export async function provisionMaster(nc: NatsConnection, cat: Catalogue, opts: ProvisionOptions = {}): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await ensureStream(jsm, cat.eventsStreamConfig(opts.replicas));
  await ensureStream(jsm, cat.confirmStreamConfig(opts.replicas));
  await ensureConsumer(jsm, cat.confirmStream, cat.masterConfirmConsumerConfig());
}

/** Both streams and the worker's own durable assignment consumer. */
export async function provisionWorker(
  nc: NatsConnection,
  cat: Catalogue,
  workerId: string,
  opts: ProvisionOptions = {},
): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await ensureStream(jsm, cat.eventsStreamConfig(opts.replicas));
  await ensureStream(jsm, cat.confirmStreamConfig(opts.replicas));
  await ensureConsumer(jsm, cat.eventsStream, cat.workerConsumerConfig(workerId));
}
