// One way to bound concurrency: tasks run while the weight they hold together stays within
// `limit` (each weighs 1 unless told), the others wait their turn in the order they were
// handed in. A get's pieces in flight, the frames of a piece and a worker's pieces (weighed
// by the bytes they hold) use it.

export class Limiter {
  private running = 0;
  private held = 0;
  private readonly waiting: { weight: number; start: () => void }[] = [];

  constructor(readonly limit: number) {
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`a limiter needs a limit of at least 1, not ${limit}`);
  }

  /** Tasks started and not yet finished. */
  get active(): number {
    return this.running;
  }

  /** Tasks waiting for room. */
  get queued(): number {
    return this.waiting.length;
  }

  /**
   * Run `task` once there is room for its `weight` (first come, first served: a heavy task
   * waiting holds back lighter ones behind it); settles as the task does. A weight above the
   * limit counts as the limit, so every task runs in the end.
   */
  async run<T>(task: () => Promise<T> | T, weight = 1): Promise<T> {
    const w = Math.min(this.limit, Math.max(0, weight));
    if (this.waiting.length === 0 && this.held + w <= this.limit) this.held += w;
    else await new Promise<void>((start) => this.waiting.push({ weight: w, start }));
    this.running += 1;
    try {
      return await task();
    } finally {
      this.running -= 1;
      this.held -= w;
      // Room goes straight to the oldest waiters, so no newcomer slips in ahead of them.
      while (this.waiting.length > 0 && this.held + this.waiting[0]!.weight <= this.limit) {
        const next = this.waiting.shift()!;
        this.held += next.weight;
        next.start();
      }
    }
  }
}
