// A long job on the event loop (encoding the master's table, hashing its projection) done in
// slices of a few milliseconds, so that timers, RPCs and the lease's renewals run between
// them. The job asks `due()` after each item of work and, when it says so, awaits `next()`.

/** How long a slice may hold the event loop. */
const SLICE_MS = 20;

export class Slices {
  private sliceStart = performance.now();

  constructor(private readonly sliceMs = SLICE_MS) {}

  /** Whether this slice has had its time. */
  due(): boolean {
    return performance.now() - this.sliceStart >= this.sliceMs;
  }

  /** Let everything waiting on the event loop run, then start the next slice. */
  async next(): Promise<void> {
    await new Promise(setImmediate);
    this.sliceStart = performance.now();
  }
}
