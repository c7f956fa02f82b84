// Who may publish and subscribe to what, the users of each role, derived from the subject
// catalogue so that a new subject cannot be forgotten. The server enforces these lists (they
// go into each user's credentials); `test/permissions.test.ts` checks them against a real
// nats-server.
import { MASTER_OPS, type Catalogue } from "./catalogue.js";

export type RoleName = "master" | "worker" | "client" | "auditor" | "admin";
export const ROLES: readonly RoleName[] = ["master", "worker", "client", "auditor", "admin"];

export interface Permissions {
  publish: string[];
  subscribe: string[];
  /** May answer requests (publish once to the reply subject of a message it received). */
  respond: boolean;
}

/** The JetStream API subjects a role needs, named as the server names them. */
const api = {
  info: "$JS.API.INFO",
  streamInfo: (stream: string) => `$JS.API.STREAM.INFO.${stream}`,
  /** Create (or look up) a consumer by name, with its filter subject when it has one. */
  consumerCreate: (stream: string, name: string, filter?: string) =>
    filter ? `$JS.API.CONSUMER.CREATE.${stream}.${name}.${filter}` : `$JS.API.CONSUMER.CREATE.${stream}.${name}`,
  consumerInfo: (stream: string, name: string) => `$JS.API.CONSUMER.INFO.${stream}.${name}`,
  consumerDelete: (stream: string, name: string) => `$JS.API.CONSUMER.DELETE.${stream}.${name}`,
  next: (stream: string, name: string) => `$JS.API.CONSUMER.MSG.NEXT.${stream}.${name}`,
  /** One stored message, such as the last on a subject. */
  messageGet: (stream: string) => `$JS.API.STREAM.MSG.GET.${stream}`,
  purge: (stream: string) => `$JS.API.STREAM.PURGE.${stream}`,
  ack: (stream: string, name: string) => `$JS.ACK.${stream}.${name}.>`,
  all: "$JS.API.>",
};

/**
 * Reading a stream through ordered consumers (ephemeral, named by the library), made by the
 * reader itself: for the master, which is trusted with the log. Delete too: an ordered
 * consumer that resets (after a server restart) deletes its old self.
 */
function logReader(stream: string): string[] {
  return [api.info, api.streamInfo(stream), api.consumerCreate(stream, ">"), api.consumerInfo(stream, ">"), api.consumerDelete(stream, ">"), api.next(stream, ">")];
}

/**
 * Reading the audit mirror through a pull consumer a master made for it (`reader` RPC):
 * a reader makes no consumer, so it cannot make one push the log into the store's subjects.
 */
function mirrorReader(cat: Catalogue): string[] {
  const stream = cat.auditStream;
  return [api.info, api.streamInfo(stream), api.streamInfo(cat.eventsStream), api.consumerInfo(stream, "*"), api.next(stream, "*"), cat.masterRpc("reader")];
}

/**
 * One NATS user of a role. A role that answers requests (master, worker) has two: the first
 * answers core requests (`respond`); the second, `<user>.streams`, reads and writes
 * JetStream. nats-server 2.9 records the reply subject of every message delivered to a user
 * that may respond, JetStream's included, and walks all it recorded at each delivery once
 * there are 4,096: an ordered read of 20,000 events took 3.4 s that way, 0.15 s without.
 */
export interface UserPermissions extends Permissions {
  /** `master`, `master.streams`, `worker-<id>`, `worker-<id>.streams`, `client`... */
  user: string;
}

/** The users of a role, the one that answers requests first. `id` is the worker's id, or the client's user name. */
export function usersOf(cat: Catalogue, role: RoleName, id?: string): UserPermissions[] {
  const user = userName(role, id);
  const streams = streamsUser(user);
  const inbox = (name: string) => `${cat.inbox(name)}.>`;
  switch (role) {
    case "master": {
      const confirms = cat.confirmStream;
      const consumer = cat.masterConfirmConsumer;
      const abandons = cat.abandonStream;
      return [
        {
          user,
          // What a worker holds, when it joins; whether a copy a reader doubts is good.
          publish: [cat.workerRpc("*", "inventory"), cat.workerRpc("*", "verify")],
          subscribe: [cat.allMasterRpcs(), cat.allHeartbeats(), inbox(user)],
          respond: true,
        },
        {
          user: streams,
          publish: [
            cat.allEvents(),
            ...logReader(cat.eventsStream),
            // Readers' consumers of the audit mirror, made for them.
            api.streamInfo(cat.auditStream),
            api.consumerCreate(cat.auditStream, ">"),
            // The lease: who decides (and, after an unanswered renewal, whether it landed).
            cat.leaseSubject(),
            api.streamInfo(cat.leaseStream),
            api.messageGet(cat.leaseStream),
            api.streamInfo(confirms),
            api.consumerCreate(confirms, consumer),
            api.consumerInfo(confirms, consumer),
            api.next(confirms, consumer),
            api.ack(confirms, consumer),
            api.streamInfo(abandons),
            api.consumerCreate(abandons, consumer),
            api.consumerInfo(abandons, consumer),
            api.next(abandons, consumer),
            api.ack(abandons, consumer),
            // Snapshots of the table: written, read back at start, the replaced ones purged.
            cat.snapshotHead(),
            cat.snapshotChunks("*"),
            ...logReader(cat.snapshotStream),
            api.messageGet(cat.snapshotStream),
            api.purge(cat.snapshotStream),
          ],
          subscribe: [inbox(streams)],
          respond: false,
        },
      ];
    }
    case "worker": {
      if (!id) throw new Error("a worker's permissions name its id");
      const stream = cat.eventsStream;
      const consumer = cat.workerConsumer(id);
      return [
        {
          user,
          publish: [
            cat.heartbeat(id),
            cat.workerRpc("*", "read"),
            // A peer that served bad bytes is asked to check its copy.
            cat.workerRpc("*", "verify"),
            // Any uploader's pulls, under its user's name or (a version created before uploads named one) none.
            cat.pullsOf("*"),
          ],
          subscribe: [cat.workerRpcs(id), inbox(user)],
          respond: true,
        },
        {
          user: streams,
          publish: [
            cat.confirm(id),
            api.info,
            api.streamInfo(stream),
            api.streamInfo(cat.confirmStream),
            // Its own durable consumer, made by the admin: it reads it, never makes or changes it.
            api.consumerInfo(stream, consumer),
            api.next(stream, consumer),
            api.ack(stream, consumer),
          ],
          subscribe: [inbox(streams)],
          respond: false,
        },
      ];
    }
    case "client":
      // One user: its only JetStream use is publishing abandons, and acks of publishes carry no reply subject.
      return [
        {
          user,
          publish: [
            // Every master RPC but the one that opens a reader of the log (clients do not read it)
            // and the one that sets the retention policy (the admin's).
            ...MASTER_OPS.filter((op) => op !== "reader" && op !== "retention").map((op) => cat.masterRpc(op)),
            cat.workerRpc("*", "read"),
            cat.workerRpc("*", "health"),
            // Giving up an upload, durably.
            cat.abandon("*"),
            // A reader that got bad bytes asks that worker to check its copy; `dfs scrub` asks for all.
            cat.workerRpc("*", "verify"),
            cat.workerRpc("*", "scrub"),
          ],
          // Only its own uploads' pulls: another client (user) can neither watch nor answer them.
          subscribe: [cat.pullsOf(user), inbox(user)],
          respond: true,
        },
      ];
    case "auditor":
      return [
        {
          user,
          // The log, and the master's own digests of it (live, and the latest snapshot's head) for `dfs replay --check`.
          publish: [...mirrorReader(cat), cat.masterRpc("state"), cat.masterRpc("status"), api.streamInfo(cat.snapshotStream), api.messageGet(cat.snapshotStream)],
          subscribe: [inbox(user)],
          respond: false,
        },
      ];
    case "admin":
      return [
        {
          user,
          publish: [api.all, cat.masterRpc("state"), cat.masterRpc("status"), cat.masterRpc("retention")],
          subscribe: [inbox(user)],
          respond: false,
        },
      ];
  }
}

/** The name of a user's companion that reads and writes JetStream (see UserPermissions). */
export function streamsUser(user: string): string {
  return `${user}.streams`;
}

/** The NATS user name of a role: `master`, `worker-<id>`, `client` or `client-<name>`, `auditor`, `admin`. */
export function userName(role: RoleName, id?: string): string {
  if (role === "worker") return `worker-${id}`;
  if (role === "client" && id) return `client-${id}`;
  return role;
}
