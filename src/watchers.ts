// Waiting by being told: callers wait for news about a key, each until the news comes or its
// time is up. The master's `wait` RPC and catch-up, and a worker's reads waiting for a piece,
// all use it.

export class Watchers {
  private waiting = new Map<string, Set<() => void>>();

  /** Resolves at the next `changed(key)`, or after `timeoutMs`. */
  next(key: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      let set = this.waiting.get(key);
      if (!set) this.waiting.set(key, (set = new Set()));
      const waiters = set;
      const done = () => {
        clearTimeout(timer);
        waiters.delete(done);
        if (waiters.size === 0 && this.waiting.get(key) === waiters) this.waiting.delete(key);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      waiters.add(done);
    });
  }

  changed(key: string): void {
    const waiters = this.waiting.get(key);
    if (waiters) for (const done of [...waiters]) done();
  }

  wakeAll(): void {
    for (const key of [...this.waiting.keys()]) this.changed(key);
  }
}
