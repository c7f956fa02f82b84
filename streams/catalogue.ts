// The one place where subject names, stream names and stream/consumer configs are written.
// Everything is derived from a prefix (default "dfs") so that several stores, or several
// test runs, can share one NATS server without seeing each other.
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  RetentionPolicy,
  StorageType,
  type ConsumerConfig,
  type StreamConfig,
} from "@nats-io/jetstream";

export const DEFAULT_PREFIX = "dfs";
/** Consumers the audit mirror allows at once: every `dfs tail` or `dfs replay` holds one while it reads. */
export const MAX_READERS = 256;
/** How long the masters' lease lives without renewal. */
export const LEASE_TTL_MS = 3_000;
/**
 * How long an assignment delivered to a worker waits for its acknowledgement before it is
 * delivered again. A worker at work on one says so every quarter of it. Short, because a
 * worker killed and started again (by `dfs up`, 0.5 s later, before the master counts it lost)
 * gets back what its previous run held only then: at 60 s, puts in flight stalled a minute.
 */
export const ASSIGNMENT_ACK_WAIT_MS = 10_000;
export const DEFAULT_NATS_URL = "nats://127.0.0.1:4222";

/** Master RPC operations, each answered on `<prefix>.rpc.master.<op>`. */
export const MASTER_OPS = ["create", "createMany", "extend", "seal", "abort", "wait", "locate", "list", "stat", "delete", "state", "status", "pieces", "reader", "retention"] as const;
export type MasterOp = (typeof MASTER_OPS)[number];

/** Worker RPC operations, each answered on `<prefix>.rpc.worker.<workerId>.<op>`. */
export const WORKER_OPS = ["read", "health", "verify", "inventory", "scrub"] as const;
export type WorkerOp = (typeof WORKER_OPS)[number];

const TOKEN = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * The user a client without credentials names as its uploads' server (a server without
 * authentication, where any connection may answer any subject): a token no role's user has.
 */
export const ANONYMOUS_UPLOADER = "anonymous";

/** A worker id, file id or upload id becomes one subject token: keep it to a safe alphabet. */
export function isSubjectToken(value: string): boolean {
  return TOKEN.test(value);
}

function checkPrefix(prefix: string): string {
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(prefix)) {
    throw new Error(`invalid subject prefix ${JSON.stringify(prefix)}`);
  }
  return prefix;
}

export interface Catalogue {
  readonly prefix: string;
  readonly eventsStream: string;
  readonly confirmStream: string;
  /** Clients' word that they gave up an upload: a work queue the leader reads before any confirmation. */
  readonly abandonStream: string;
  abandon(uploadId: string): string;
  abandonStreamConfig(replicas?: number): Partial<StreamConfig> & { name: string; subjects: string[] };
  masterAbandonConsumerConfig(): Partial<ConsumerConfig>;
  /** The masters' lease: who decides now (see src/lease.ts). */
  readonly leaseStream: string;
  leaseSubject(): string;
  leaseStreamConfig(replicas?: number): Partial<StreamConfig> & { name: string; subjects: string[] };
  /** A mirror of the events stream, for readers: they may make consumers on it, never on the events stream itself. */
  readonly auditStream: string;
  /** The masters' snapshots of the table: chunks first, then the head that names them (the commit). */
  readonly snapshotStream: string;
  snapshotHead(): string;
  /** The chunks of one snapshot (`*`: every snapshot's). */
  snapshotChunks(snapshotId: string): string;
  snapshotStreamConfig(replicas?: number): Partial<StreamConfig> & { name: string; subjects: string[] };
  /** Durable consumer the masters share on the confirmation work queue. */
  readonly masterConfirmConsumer: string;
  /** Queue group the masters share for RPCs, so each request is answered once. */
  readonly masterQueue: string;
  allEvents(): string;
  /** Events about the whole store (its retention policy). */
  storeEvents(): string;
  fileEvents(fileId: string): string;
  assignEvents(workerId: string): string;
  workerEvents(workerId: string): string;
  confirm(workerId: string): string;
  allConfirms(): string;
  masterRpc(op: MasterOp): string;
  allMasterRpcs(): string;
  /** One RPC of a worker (`*` for any worker). */
  workerRpc(workerId: string, op: WorkerOp): string;
  /** Every RPC of one worker (`*` for any worker). */
  workerRpcs(workerId: string): string;
  /**
   * Where a worker pulls a piece of an upload from its uploader: `<prefix>.pull.<user>.<uploadId>.<piece>`,
   * `user` being the NATS user that serves it (the uploader's, as its create said). Without a
   * user (a version created before uploads named theirs), `<prefix>.pull.<uploadId>.<piece>`.
   */
  pull(uploader: string | undefined, uploadId: string, piece: number): string;
  /** Every piece of one upload served by `uploader` (`*` for any of its uploads). */
  pullAll(uploader: string, uploadId: string): string;
  /** Every pull a user may answer: its own uploads' (`*`: any user's). */
  pullsOf(uploader: string): string;
  heartbeat(workerId: string): string;
  allHeartbeats(): string;
  /** Parse `<prefix>.pull.<user>.<uploadId>.<piece>` back into its parts. */
  parsePull(subject: string): { uploader: string; uploadId: string; piece: number } | undefined;
  workerConsumer(workerId: string): string;
  /**
   * The inbox prefix of a NATS user of this store: replies to its requests arrive below it,
   * and its permissions let only that user subscribe there.
   */
  inbox(user: string): string;
  eventsStreamConfig(replicas?: number): Partial<StreamConfig> & { name: string; subjects: string[] };
  confirmStreamConfig(replicas?: number): Partial<StreamConfig> & { name: string; subjects: string[] };
  auditStreamConfig(replicas?: number): Partial<StreamConfig> & { name: string };
  masterConfirmConsumerConfig(): Partial<ConsumerConfig>;
  workerConsumerConfig(workerId: string): Partial<ConsumerConfig>;
  /**
   * A reader's consumer of the audit mirror: a pull consumer that a master (or the admin)
   * makes for it, so readers never make consumers themselves (a consumer's deliver subject
   * is beyond what subject permissions can check).
   */
  readerConsumerConfig(name: string, fromSeq: number): Partial<ConsumerConfig> & { name: string };
}

export function catalogue(prefix: string = DEFAULT_PREFIX): Catalogue {
  const p = checkPrefix(prefix);
  const upper = p.replace(/[.-]/g, "_").toUpperCase();
  const eventsStream = `${upper}_EVENTS`;
  const confirmStream = `${upper}_CONFIRM`;
  const auditStream = `${upper}_AUDIT`;
  const leaseStream = `${upper}_LEASE`;
  const abandonStream = `${upper}_ABANDON`;
  const snapshotStream = `${upper}_SNAPSHOTS`;
  const token = (kind: string, value: string) => {
    if (!isSubjectToken(value)) throw new Error(`invalid ${kind} ${JSON.stringify(value)}`);
    return value;
  };
  const cat: Catalogue = {
    prefix: p,
    eventsStream,
    confirmStream,
    auditStream,
    leaseStream,
    leaseSubject: () => `${p}.lease`,
    abandonStream,
    abandon: (uploadId) => `${p}.abandon.${uploadId === "*" ? "*" : token("upload id", uploadId)}`,
    abandonStreamConfig: (replicas = 1) => ({
      name: abandonStream,
      subjects: [`${p}.abandon.*`],
      storage: StorageType.File,
      retention: RetentionPolicy.Workqueue,
      duplicate_window: 10 * 60 * 1_000_000_000,
      // Nobody may fill it for ever: a day is long past any upload.
      max_age: 24 * 3_600 * 1_000_000_000,
      num_replicas: replicas,
    }),
    masterAbandonConsumerConfig: () => ({
      durable_name: "master",
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: 5 * 1_000_000_000,
    }),
    snapshotStream,
    snapshotHead: () => `${p}.snap.head`,
    snapshotChunks: (snapshotId) => `${p}.snap.chunk.${snapshotId === "*" ? "*" : token("snapshot id", snapshotId)}`,
    snapshotStreamConfig: (replicas = 1) => ({
      name: snapshotStream,
      subjects: [`${p}.snap.>`],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      // A head is small; the chunks of a snapshot a newer head replaced are purged by the master.
      max_msgs_per_subject: -1,
      num_replicas: replicas,
    }),
    masterConfirmConsumer: "master",
    masterQueue: `${p}-master`,
    allEvents: () => `${p}.evt.>`,
    storeEvents: () => `${p}.evt.store`,
    fileEvents: (fileId) => `${p}.evt.file.${token("file id", fileId)}`,
    assignEvents: (workerId) => `${p}.evt.assign.${token("worker id", workerId)}`,
    workerEvents: (workerId) => `${p}.evt.worker.${token("worker id", workerId)}`,
    confirm: (workerId) => `${p}.confirm.${token("worker id", workerId)}`,
    allConfirms: () => `${p}.confirm.*`,
    masterRpc: (op) => `${p}.rpc.master.${op}`,
    allMasterRpcs: () => `${p}.rpc.master.*`,
    workerRpc: (workerId, op) => `${p}.rpc.worker.${workerId === "*" ? "*" : token("worker id", workerId)}.${op}`,
    workerRpcs: (workerId) => `${p}.rpc.worker.${token("worker id", workerId)}.*`,
    pull: (uploader, uploadId, piece) =>
      uploader === undefined ? `${p}.pull.${token("upload id", uploadId)}.${piece}` : `${p}.pull.${token("user name", uploader)}.${token("upload id", uploadId)}.${piece}`,
    pullAll: (uploader, uploadId) => `${p}.pull.${token("user name", uploader)}.${uploadId === "*" ? "*" : token("upload id", uploadId)}.*`,
    pullsOf: (uploader) => `${p}.pull.${uploader === "*" ? "*" : token("user name", uploader)}.>`,
    heartbeat: (workerId) => `${p}.hb.${token("worker id", workerId)}`,
    allHeartbeats: () => `${p}.hb.*`,
    parsePull(subject) {
      const head = `${p}.pull.`;
      if (!subject.startsWith(head)) return undefined;
      const [uploader, uploadId, piece, ...rest] = subject.slice(head.length).split(".");
      const index = Number(piece);
      if (rest.length || !uploader || !uploadId || !piece || !Number.isSafeInteger(index) || index < 0) return undefined;
      return { uploader, uploadId, piece: index };
    },
    workerConsumer: (workerId) => `worker-${token("worker id", workerId)}`,
    // A role's JetStream user, `<user>.streams`, gets its own inbox below its user's.
    inbox: (user) => `_INBOX_${upper}_${user.split(".").map((part) => token("user name", part)).join(".")}`,
    eventsStreamConfig: (replicas = 1) => ({
      name: eventsStream,
      subjects: [`${p}.evt.>`],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      // The audit trail: nothing ages out, nothing is deleted or purged through the API.
      max_age: 0,
      max_msgs: -1,
      max_bytes: -1,
      discard: DiscardPolicy.Old,
      deny_delete: true,
      deny_purge: true,
      allow_rollup_hdrs: false,
      num_replicas: replicas,
    }),
    confirmStreamConfig: (replicas = 1) => ({
      name: confirmStream,
      subjects: [`${p}.confirm.*`],
      storage: StorageType.File,
      retention: RetentionPolicy.Workqueue,
      // Long enough that a worker's retried confirmation is recognised as the same one.
      duplicate_window: 10 * 60 * 1_000_000_000,
      num_replicas: replicas,
    }),
    leaseStreamConfig: (replicas = 1) => ({
      name: leaseStream,
      subjects: [`${p}.lease`],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      // A lease nobody renews ages out: then a follower may take it.
      max_age: LEASE_TTL_MS * 1_000_000,
      max_msgs_per_subject: 1,
      num_replicas: replicas,
    }),
    auditStreamConfig: (replicas = 1) => ({
      name: auditStream,
      mirror: { name: eventsStream },
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      max_age: 0,
      max_msgs: -1,
      max_bytes: -1,
      deny_delete: true,
      deny_purge: true,
      // Readers make their own (ordered) consumers here: bounded, so none can make thousands.
      max_consumers: MAX_READERS,
      num_replicas: replicas,
    }),
    masterConfirmConsumerConfig: () => ({
      durable_name: "master",
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      // Short: what a leader that died had taken and not acknowledged goes to the next soon.
      ack_wait: 5 * 1_000_000_000,
      max_ack_pending: 1000,
    }),
    readerConsumerConfig: (name, fromSeq) => ({
      name: `reader-${token("reader", name)}`,
      ack_policy: AckPolicy.None,
      ...(fromSeq > 1 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: fromSeq } : { deliver_policy: DeliverPolicy.All }),
      // Gone a minute after its reader stops asking.
      inactive_threshold: 60 * 1_000_000_000,
      mem_storage: true,
      num_replicas: 1,
    }),
    workerConsumerConfig: (workerId) => ({
      durable_name: `worker-${token("worker id", workerId)}`,
      filter_subject: `${p}.evt.assign.${workerId}`,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: ASSIGNMENT_ACK_WAIT_MS * 1_000_000,
      max_ack_pending: 256,
    }),
  };
  return cat;
}
