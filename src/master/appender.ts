// The leader's writer. While its lease is firm (no rival can hold it), a decision's events are
// folded into the table at once and appended without waiting for one another's
// acknowledgements (pipelined), so the master decides at the speed of its fold, not of a
// round trip to the stream per event. Otherwise (no lease, or one that may lapse soon) every
// event waits for the one before it, as the fence alone needs: each append must land right
// after the sequence before it, but pipelined appends after a refused one could still land if
// a rival appended exactly one event in between, on a table the log does not have. (They are
// not chained by message id instead, with Nats-Expected-Last-Msg-Id: nats-server 2.9.10's
// mirrors check that header against an id they forget when the server restarts, and the
// audit mirror then stops for good.)
//
// The price is that the table can be ahead of the log by the appends in flight. Nothing it
// shows is told to anyone before the log has it (`whenLogged`), and when an append fails the
// table is no longer what the log says: `broken` is set and the master folds it again from
// the log before it decides anything else.
import type { JetStreamClient } from "@nats-io/jetstream";
import { DfsError, ErrorCodes } from "../errors.js";
import type { LoggedMessage } from "../fold.js";
import { appendEvent } from "../log.js";
import { Watchers } from "../watchers.js";

const LOGGED = "logged";

export class Appender {
  /** The highest sequence known to be in the stream: acknowledged, or read from it. */
  private loggedSeq: number;
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly watch = new Watchers();
  /** Why the table is ahead of the log for good: an append was refused, or its fate is unknown. */
  broken?: unknown;

  constructor(private readonly js: JetStreamClient, loggedSeq: number) {
    this.loggedSeq = loggedSeq;
  }

  /**
   * Send messages already folded at the end of the table, at the sequences they must take,
   * all at once or (`oneByOne`) each after the one before it landed. Resolves with how many
   * landed, in order, and the first failure if any.
   */
  async append(messages: readonly LoggedMessage[], oneByOne: boolean): Promise<{ landed: number; failure?: unknown }> {
    if (oneByOne) {
      for (const [landed, message] of messages.entries()) {
        const failure = await this.send(message);
        if (failure !== undefined) return { landed, failure };
      }
      return { landed: messages.length };
    }
    const failures = await Promise.all(messages.map((message) => this.send(message)));
    const first = failures.findIndex((failure) => failure !== undefined);
    return first < 0 ? { landed: messages.length } : { landed: first, failure: failures[first] };
  }

  /** One append: resolves with its failure, or undefined once it landed. */
  private send(message: LoggedMessage): Promise<unknown> {
    const append = appendEvent(this.js, message, message.seq - 1);
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
    this.loggedSeq = seq;
    this.watch.changed(LOGGED);
  }
}
