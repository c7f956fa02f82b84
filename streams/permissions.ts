// Who may publish and subscribe to what, one function per role, derived from the subject
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

/** What each role may do. `id` is the worker's id, or the client's user name. */
export function permissionsFor(cat: Catalogue, role: RoleName, id?: string): Permissions {
  switch (role) {
    case "master": {
      const confirms = cat.confirmStream;
      const consumer = cat.masterConfirmConsumer;
      const abandons = cat.abandonStream;
      return {
        publish: [
          cat.allEvents(),
          ...logReader(cat.eventsStream),
          // Readers' consumers of the audit mirror, made for them.
          api.streamInfo(cat.auditStream),
          api.consumerCreate(cat.auditStream, ">"),
          // The lease: who decides.
          cat.leaseSubject(),
          api.streamInfo(cat.leaseStream),
          // What a worker holds, when it joins; whether a copy a reader doubts is good.
          cat.workerRpc("*", "inventory"),
          cat.workerRpc("*", "verify"),
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
        subscribe: [cat.allMasterRpcs(), cat.allHeartbeats(), `${cat.inbox(userName("master"))}.>`],
        respond: true,
      };
    }
    case "worker": {
      if (!id) throw new Error("a worker's permissions name its id");
      const stream = cat.eventsStream;
      const consumer = cat.workerConsumer(id);
      return {
        publish: [
          cat.confirm(id),
          cat.heartbeat(id),
          cat.workerRpc("*", "read"),
          // A peer that served bad bytes is asked to check its copy.
          cat.workerRpc("*", "verify"),
          cat.pullAll("*"),
          api.info,
          api.streamInfo(stream),
          api.streamInfo(cat.confirmStream),
          // Its own durable consumer, made by the admin: it reads it, never makes or changes it.
          api.consumerInfo(stream, consumer),
          api.next(stream, consumer),
          api.ack(stream, consumer),
        ],
        subscribe: [cat.workerRpcs(id), `${cat.inbox(userName("worker", id))}.>`],
        respond: true,
      };
    }
    case "client":
      return {
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
        subscribe: [cat.pullAll("*"), `${cat.inbox(userName("client", id))}.>`],
        respond: true,
      };
    case "auditor":
      return {
        // The log, and the master's own digests of it (live, and the latest snapshot's head) for `dfs replay --check`.
        publish: [...mirrorReader(cat), cat.masterRpc("state"), cat.masterRpc("status"), api.streamInfo(cat.snapshotStream), api.messageGet(cat.snapshotStream)],
        subscribe: [`${cat.inbox(userName("auditor"))}.>`],
        respond: false,
      };
    case "admin":
      return {
        publish: [api.all, cat.masterRpc("state"), cat.masterRpc("status"), cat.masterRpc("retention")],
        subscribe: [`${cat.inbox(userName("admin"))}.>`],
        respond: false,
      };
  }
}

/** The NATS user name of a role: `master`, `worker-<id>`, `client` or `client-<name>`, `auditor`, `admin`. */
export function userName(role: RoleName, id?: string): string {
  if (role === "worker") return `worker-${id}`;
  if (role === "client" && id) return `client-${id}`;
  return role;
}
