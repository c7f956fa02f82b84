// One way to connect to NATS for every role: with a user's credentials (and then that user's
// own inbox prefix, the only one its permissions let it read), optionally over TLS.
import { AuthorizationError, connect, credsAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { catalogue, type Catalogue } from "../streams/catalogue.js";
import { streamExists } from "../streams/provision.js";
import { readCredentials, type CredentialsUser } from "./credentials.js";
import { DfsError, ErrorCodes, asDfsError } from "./errors.js";
import { throughFailover } from "./failover.js";
import { gatherWholeMessages } from "./whole-messages.js";

export interface NatsOptions {
  /**
   * NATS URL(s): a list, or one string of comma-separated URLs (as `--nats` takes them). The
   * first is used; the others are where the connection goes when it loses that one.
   */
  servers: string | string[];
  /** A `.creds` file; without one the connection is anonymous (a server without authentication). */
  creds?: string;
  /** A CA certificate (PEM file) to trust: the connection uses TLS. */
  tlsCa?: string;
  /** Subject prefix of the store: inbox prefixes are per store and per user. */
  prefix?: string;
  /** Shown in the server's connection list. */
  name: string;
  /** -1 keeps trying forever (long-running roles); the default suits a command. */
  maxReconnectAttempts?: number;
  /**
   * Connect as the creds file's JetStream user (`<user>.streams`, see `usersOf`) instead of
   * its first user; a file with one user has no other to offer and its first is used.
   */
  streams?: boolean;
}

/** `nats://a:4222,nats://b:4222` or a list of such strings, as one list of URLs. */
export function serverList(servers: string | string[]): string[] {
  return [servers].flat().flatMap((s) => s.split(",")).map((s) => s.trim()).filter(Boolean);
}

export async function connectNats(opts: NatsOptions): Promise<NatsConnection> {
  return (await connectUser(opts)).nc;
}

/** A connection and the NATS user it is (none: anonymous), which a client names as its uploads' server. */
export async function connectUser(opts: NatsOptions): Promise<{ nc: NatsConnection; user?: string }> {
  const users = opts.creds ? await readCredentials(opts.creds) : undefined;
  const user = users && (opts.streams ? users.at(-1) : users[0]);
  return { nc: await connectAs(opts, user), ...(user ? { user: user.user } : {}) };
}

/** Connect as `user` of a creds file (read by the caller), or anonymously. */
async function connectAs(opts: NatsOptions, user: CredentialsUser | undefined): Promise<NatsConnection> {
  gatherWholeMessages();
  try {
    return await connect({
      servers: serverList(opts.servers),
      // In the order given: `dfs up` spreads its roles over a cluster by ordering their lists.
      noRandomize: true,
      name: opts.name,
      maxReconnectAttempts: opts.maxReconnectAttempts ?? 10,
      // Otherwise every request captures a stack trace up front, in case it fails: a third
      // of the master's CPU when small files come in fast.
      noAsyncTraces: true,
      ...(user ? { authenticator: credsAuthenticator(user.creds), inboxPrefix: catalogue(opts.prefix).inbox(user.user) } : {}),
      ...(opts.tlsCa ? { tls: { caFile: opts.tlsCa } } : {}),
    });
  } catch (err) {
    const text = err instanceof Error ? err.message : String(err);
    if (err instanceof AuthorizationError || (err instanceof Error && err.cause instanceof AuthorizationError)) {
      throw new DfsError(
        ErrorCodes.UNAUTHORIZED,
        `NATS at ${String(opts.servers)} refused ${user ? `user ${user.user}` : "a connection without credentials"}: ${text}${user ? "" : "; pass --creds FILE (or DFS_CREDS)"}`,
        { cause: err },
      );
    }
    throw new DfsError(ErrorCodes.UNAVAILABLE, `cannot reach NATS at ${String(opts.servers)}: ${text}`, { cause: err });
  }
}

/**
 * A long-running role's connections: `rpc` answers requests, `streams` reads and writes
 * JetStream. They are two connections when the creds file holds the role's JetStream user
 * (on nats-server 2.9 a user that may answer requests reads JetStream slower and slower, see
 * `usersOf`), and one otherwise: a server without authentication, or a file made before.
 */
export interface RoleConnections {
  rpc: NatsConnection;
  streams: NatsConnection;
}

export async function connectRole(opts: NatsOptions): Promise<RoleConnections> {
  const users = opts.creds ? await readCredentials(opts.creds) : [];
  const rpc = await connectAs(opts, users[0]);
  if (users.length < 2) return { rpc, streams: rpc };
  const streams = await connectAs({ ...opts, name: `${opts.name}.streams` }, users.at(-1)).catch(async (err) => {
    await rpc.close();
    throw err;
  });
  return { rpc, streams };
}

/**
 * Rejects with UNAVAILABLE once one of a role's connections is closed for good while the role
 * runs (it reconnects forever, so only a server that refuses it on the way back, its
 * credentials no longer trusted, does that): the role can do nothing more and must end, not
 * linger. A close while `stopping()` (the role draining itself) is no loss: it never settles.
 */
export function lostForGood(conns: RoleConnections, stopping: () => boolean): Promise<never> {
  return new Promise((_, reject) => {
    for (const nc of new Set([conns.rpc, conns.streams])) {
      void nc.closed().then((err) => {
        if (stopping()) return;
        reject(new DfsError(ErrorCodes.UNAVAILABLE, `lost the NATS server for good${err ? `: ${err.message}` : ""}`, { cause: err }));
      });
    }
  });
}

/** Drain both (or the one) of a role's connections. */
export async function drainRole(conns: RoleConnections): Promise<void> {
  await Promise.all([...new Set([conns.rpc, conns.streams])].map((nc) => nc.drain().catch(() => nc.close())));
}

/**
 * The store's streams must be there: roles and readers never create them (the admin does,
 * with `dfs provision`), so a mistyped prefix is an error that names it, not a new empty store.
 */
export async function requireStore(nc: NatsConnection, cat: Catalogue, streams: readonly string[] = [cat.eventsStream, cat.confirmStream]): Promise<void> {
  for (const stream of streams) {
    // A role without the right to look (FORBIDDEN) learns it here, coded.
    if (await throughFailover(() => streamExists(nc, stream)).catch((err) => Promise.reject(asDfsError(err)))) continue;
    throw new DfsError(
      ErrorCodes.NOT_FOUND,
      `no store with prefix "${cat.prefix}" on this server (no stream ${stream}): check --prefix, or create it with \`dfs provision\` (admin credentials)`,
    );
  }
}
