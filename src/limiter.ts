// One way to bound concurrency: at most `limit` tasks run at once, the others wait their turn
// in the order they were handed in. A get's pieces in flight and the frames of a piece use it.

export class Limiter {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly limit: number) {
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`a limiter needs a limit of at least 1, not ${limit}`);
  }

  /** Tasks started and not yet finished. */
  get active(): number {
    return this.running;
  }

  /** Tasks waiting for a slot. */
  get queued(): number {
    return this.waiting.length;
  }

  /** Run `task` once a slot is free (first come, first served); settles as the task does. */
  async run<T>(task: () => Promise<T> | T): Promise<T> {
    // A finishing task hands its slot straight to the next waiter, so no newcomer slips in.
    if (this.running < this.limit) this.running += 1;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running -= 1;
    }
  }
}
