// One master decides at a time: the leader holds a lease, a message on the lease subject of
// a stream whose messages age out after LEASE_TTL_MS. Taking the lease is a publish that
// JetStream accepts only while the subject is empty; keeping it, a publish that it accepts
// only while the leader's own message is still the last. A leader that dies stops renewing,
// its message ages out, and a follower takes over. The fence on every append stays: a leader
// paused past its lease cannot fork the history, it only loses a race and steps down.
// While a JetStream cluster elects a new leader for the lease stream (a lost server), nobody
// can take the lease either: the leader keeps it through such a failover, for up to
// FAILOVER_MS, rather than step down and set everything up again a few seconds later.
import { JetStreamApiCodes, JetStreamApiError, type JetStreamClient } from "@nats-io/jetstream";
import { LEASE_TTL_MS, type Catalogue } from "../streams/catalogue.js";
import { decode, encode } from "./codec.js";
import { FAILOVER_MS, isFailoverError } from "./failover.js";

/** How often the leader renews, and a follower tries to take over. */
export const LEASE_RENEW_MS = 500;
/** How long before the lease could age out it stops counting as firm: more than any append takes to land. */
const FIRM_MARGIN_MS = 1_000;

export interface LeaseEvents {
  /** This master now holds the lease: it decides. */
  lead(): void;
  /** It lost the lease (another took it, or it could not renew in time): it only follows. */
  follow(why: string): void;
}

export class Lease {
  /** Sequence of our lease message, while we hold it. */
  private held?: number;
  private renewedAt = 0;
  /** When the last renewal that was acknowledged was sent: our lease message ages out no sooner than LEASE_TTL_MS after. */
  private renewalSentAt = 0;
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly js: JetStreamClient,
    private readonly cat: Catalogue,
    private readonly holder: string,
    private readonly on: LeaseEvents,
  ) {}

  get leading(): boolean {
    return this.held !== undefined;
  }

  /**
   * Held, and renewed so recently that no rival can take the lease for at least another
   * FIRM_MARGIN_MS: nobody else appends meanwhile (see Appender).
   */
  get firm(): boolean {
    return this.held !== undefined && Date.now() - this.renewalSentAt < LEASE_TTL_MS - FIRM_MARGIN_MS;
  }

  start(): void {
    void this.tick();
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    try {
      // Taking it: only if nobody holds it. Keeping it: only if ours is still the last word.
      const sentAt = Date.now();
      const ack = await this.js.publish(this.cat.leaseSubject(), encode({ holder: this.holder, at: Date.now() }), {
        expect: { lastSubjectSequence: this.held ?? 0 },
        timeout: LEASE_RENEW_MS * 2,
      });
      const took = this.held === undefined;
      this.held = ack.seq;
      this.renewedAt = Date.now();
      this.renewalSentAt = sentAt;
      if (took) this.on.lead();
    } catch (err) {
      if (this.held !== undefined) {
        const taken = err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence && !(await this.landedUnanswered());
        // Unsure: still ours until it would have aged out, or, through a failover, until the
        // cluster answers again (a rival that took it meanwhile is refused by the fence, and
        // the next renewal says so).
        const unsureForMs = isFailoverError(err) ? FAILOVER_MS : LEASE_TTL_MS - LEASE_RENEW_MS;
        if (taken || Date.now() - this.renewedAt >= unsureForMs) this.lose(taken ? "another master took the lease" : `could not renew the lease: ${(err as Error).message}`);
      }
    }
    if (!this.stopped) this.timer = setTimeout(() => void this.tick(), LEASE_RENEW_MS);
  }

  /**
   * Whether the lease's last message is this master's own: a renewal whose answer was lost
   * (it timed out while the event loop was busy) can land all the same, and the next renewal
   * then expects the sequence before it. It is still ours: held at that sequence from now on.
   */
  private async landedUnanswered(): Promise<boolean> {
    try {
      const jsm = await this.js.jetstreamManager(false);
      const last = await jsm.streams.getMessage(this.cat.leaseStream, { last_by_subj: this.cat.leaseSubject() });
      if (!last || (decode(last.data) as { holder?: unknown } | null)?.holder !== this.holder) return false;
      this.held = last.seq;
      return true;
    } catch {
      return false;
    }
  }

  private lose(why: string): void {
    this.held = undefined;
    this.on.follow(why);
  }

  /** Stop renewing; a leader steps down (its lease ages out, or is taken over at once by whoever tries). */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.held !== undefined) this.lose("stopping");
  }
}
