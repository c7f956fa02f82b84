// The leader's writer. A decision's events are folded into the table at once and appended
// without waiting for one another's acknowledgements (pipelined), so the master decides at
// the speed of its fold, not of a round trip to the stream per event. The fence still holds
// for every event: each must land right after the sequence before it and, when this writer
// sent that one too, right after its message id, so the log takes the pipeline in order or
// not at all: once one append is refused, every one sent after it is refused as well.
//
// The price is that the table can be ahead of the log by the appends in flight. Nothing it
// shows is told to anyone before the log has it (`whenLogged`), and when an append fails the
// table is no longer what the log says: `broken` is set and the master folds it again from
// the log before it decides anything else.
import type { JetStreamClient } from "@nats-io/jetstream";
import { nuid } from "@nats-io/transport-node";
import { DfsError, ErrorCodes } from "../errors.js";
import type { LoggedMessage } from "../fold.js";
import { appendEvent } from "../log.js";
import { Watchers } from "../watchers.js";

const LOGGED = "logged";

export class Appender {
  /** The highest sequence known to be in the stream: acknowledged, or read from it. */
  private loggedSeq: number;
  /** The last message this writer sent: the next one is chained to its id. */
  private last?: { seq: number; id: string };
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly watch = new Watchers();
  /** Why the table is ahead of the log for good: an append was refused, or its fate is unknown. */
  broken?: unknown;

  constructor(private readonly js: JetStreamClient, loggedSeq: number) {
    this.loggedSeq = loggedSeq;
  }

  /**
   * Send messages already folded at the end of the table, at the sequences they must take.
   * Resolves with how many landed, in order, and the first failure if any.
   */
  async append(messages: readonly LoggedMessage[]): Promise<{ landed: number; failure?: unknown }> {
    const sent = messages.map((message) => {
      const id = nuid.next();
      const lastId = this.last?.seq === message.seq - 1 ? this.last.id : undefined;
      this.last = { seq: message.seq, id };
      const append = appendEvent(this.js, message, { lastSeq: message.seq - 1, lastId }, id);
      this.inFlight.add(append);
      return append.then(
        (seq) => {
          this.inFlight.delete(append);
          this.noteLogged(seq);
          return undefined;
        },
        (err: unknown) => {
          this.inFlight.delete(append);
          this.broken ??= err;
          this.watch.changed(LOGGED);
          return err;
        },
      );
    });
    const failures = await Promise.all(sent);
    const first = failures.findIndex((failure) => failure !== undefined);
    return first < 0 ? { landed: messages.length } : { landed: first, failure: failures[first] };
  }

  /** The stream holds everything up to `seq` (the master's tail read it). */
  noteLogged(seq: number): void {
    if (seq <= this.loggedSeq) return;
    this.loggedSeq = seq;
    this.watch.changed(LOGGED);
  }

  /** Until the stream holds everything up to `seq`; throws once the table is broken. */
  async whenLogged(seq: number, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.loggedSeq < seq) {
      if (this.broken !== undefined) throw new DfsError(ErrorCodes.UNAVAILABLE, "the master is folding the log again after a refused append: try again");
      const left = deadline - Date.now();
      if (left <= 0) throw new DfsError(ErrorCodes.TIMEOUT, `the log did not take sequence ${seq} in time`);
      await this.watch.next(LOGGED, left);
    }
  }

  /** Until every append sent has been answered (before the table is folded again). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
  }

  /** Start again from a table folded from the log up to `seq`. */
  reset(seq: number): void {
    this.broken = undefined;
    this.last = undefined;
    this.loggedSeq = seq;
    this.watch.changed(LOGGED);
  }
}
