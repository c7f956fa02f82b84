// Riding through a lost server. When a server of a JetStream cluster dies, the streams and
// consumers it led elect new leaders: for 4-7 s publishes and API calls fail with "no
// responders" (which nats.js reports as JetStreamNotEnabled), time out, or get a 503, and a
// connection to the lost server is moving to another one. Each of those is worth another
// try. Only what is safe to ask twice goes through here: appends carry their fence (a retry
// of one that landed is refused as "wrong last sequence"), confirmations and abandon notes
// their message ids, and the rest only read or make what is already there.
import { JetStreamApiError, JetStreamError } from "@nats-io/jetstream";
import { NoRespondersError, RequestError, TimeoutError } from "@nats-io/transport-node";
import { DfsError, ErrorCodes } from "./errors.js";

/** How long a failover may take before a JetStream call is given up (PLATFORM.md: 4-7 s seen). */
export const FAILOVER_MS = 15_000;

/**
 * How long a consumer's pull request lasts (nats.js's default is 30 s). A consumer notices a
 * lost leader after two missed idle heartbeats, half of this each, then pulls again from the
 * new one: with the default, work would stall for 30 s after a server is lost.
 */
export const PULL_EXPIRES_MS = 5_000;

/** Whether `err` is what a JetStream call fails with while the cluster elects a leader or the connection moves. */
export function isFailoverError(err: unknown): boolean {
  // nats.js's JetStreamNotEnabled (not among its public exports) is how "no responders" reaches a JetStream caller.
  if (err instanceof Error && err.name === "JetStreamNotEnabled") return true;
  // "JetStream system temporarily unavailable", a stream or consumer without a leader yet.
  if (err instanceof JetStreamApiError) return err.status === 503;
  // A fetch from a consumer whose leader is gone, or not yet elected.
  if (err instanceof JetStreamError) return err.message === "heartbeats missed";
  if (err instanceof RequestError) return err.isNoResponders();
  return err instanceof TimeoutError || err instanceof NoRespondersError;
}

/**
 * `attempt`, tried again (after 0.1 s, doubling up to 1 s) while it fails as a failover does,
 * for up to `forMs`; then UNAVAILABLE, which callers of the master retry in turn.
 */
export async function throughFailover<T>(attempt: () => Promise<T>, forMs = FAILOVER_MS): Promise<T> {
  const deadline = Date.now() + forMs;
  for (let wait = 100; ; wait = Math.min(1_000, wait * 2)) {
    try {
      return await attempt();
    } catch (err) {
      if (!isFailoverError(err)) throw err;
      if (Date.now() + wait > deadline) {
        throw new DfsError(ErrorCodes.UNAVAILABLE, `JetStream did not answer for ${Math.round(forMs / 1000)} s: ${(err as Error).message}`, { cause: err });
      }
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}
