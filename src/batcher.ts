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
