// Things said one at a time, sent together: the first goes at once, and whatever comes while
// a send is in flight goes in the next one (at most `max` a send). Under load the batches
// grow by themselves; alone, nothing waits. A worker's reports to the master use it.

export class Batcher<T> {
  private pending: { item: T; sent: () => void; failed: (err: unknown) => void }[] = [];
  private sending = false;

  constructor(
    private readonly send: (items: T[]) => Promise<void>,
    private readonly max: number,
  ) {
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`a batch holds at least 1 item, not ${max}`);
  }

  /** Resolves once the batch holding `item` was sent; rejects as that send does. */
  add(item: T): Promise<void> {
    return new Promise<void>((sent, failed) => {
      this.pending.push({ item, sent, failed });
      if (!this.sending) {
        this.sending = true;
        // After what else this turn of the event loop brings.
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, this.max);
      try {
        await this.send(batch.map((b) => b.item));
        for (const b of batch) b.sent();
      } catch (err) {
        for (const b of batch) b.failed(err);
      }
    }
    this.sending = false;
  }
}

/**
 * Calls made one at a time, asked together: the items that come in one turn of the event loop
 * go in one request (at most `max` a request, shared out evenly), requests do not wait for one
 * another, and each item gets its own answer, the one at its place in the request's. A client
 * putting many small files asks the master to create them so.
 */
export class CallBatcher<T, R> {
  private pending: { item: T; answered: (answer: R) => void; failed: (err: unknown) => void }[] = [];

  constructor(
    private readonly ask: (items: T[]) => Promise<R[]>,
    private readonly max: number,
  ) {
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`a request holds at least 1 item, not ${max}`);
  }

  /** Resolves with this item's answer; rejects as its request does. */
  call(item: T): Promise<R> {
    return new Promise<R>((answered, failed) => {
      if (this.pending.push({ item, answered, failed }) === 1) setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    const all = this.pending;
    this.pending = [];
    const requests = Math.ceil(all.length / this.max);
    const size = Math.ceil(all.length / requests);
    for (let start = 0; start < all.length; start += size) {
      const batch = all.slice(start, start + size);
      this.ask(batch.map((b) => b.item)).then(
        (answers) => {
          if (answers.length !== batch.length) throw new Error(`${answers.length} answers to ${batch.length} items`);
          batch.forEach((b, i) => b.answered(answers[i]!));
        },
      ).catch((err: unknown) => batch.forEach((b) => b.failed(err)));
    }
  }
}
