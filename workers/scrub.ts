// Scrubbing: a worker hashes its pieces again, a page at a time, so rot is found before a
// reader meets it. In the background at a bounded pace, and on demand (`dfs scrub`) through
// the `scrub` RPC. A bad copy is dropped and reported by `check`, which the worker gives.
import type { PieceStore } from "./store.js";

export interface ScrubPage {
  /** Pieces hashed in this page, and their bytes. */
  checked: number;
  bytes: number;
  /** Pieces that failed their SHA-256: dropped and reported. */
  bad: string[];
  /** Pass as `after` for the next page; absent once every piece was checked. */
  next?: string;
}

/** The outcome of checking one piece: it hashed right, it was bad, or it was not there (any more). */
export type CheckOutcome = "good" | "bad" | "absent";

/** Most bytes one page hashes, so a page answers in about a second even with large pieces. */
const PAGE_BYTES = 512 * 1024 * 1024;
/**
 * What checking a piece costs beyond its bytes, counted against the background pace as that
 * many bytes: its lookups. Without it, a store of small pieces was scrubbed flat out (16 MiB/s
 * of 1 KiB pieces is 16,000 pieces a second) and took a third of its worker's CPU.
 */
export const PIECE_COST_BYTES = 64 * 1024;

export class Scrubber {
  private running = false;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly store: PieceStore,
    private readonly check: (sha256: string) => Promise<CheckOutcome>,
    private readonly log: (line: string) => void,
  ) {}

  /** Check up to `limit` pieces after `after` (in SHA-256 order), stopping early past PAGE_BYTES. */
  async page(after: string | undefined, limit: number): Promise<ScrubPage> {
    const page: ScrubPage = { checked: 0, bytes: 0, bad: [] };
    let last: string | undefined;
    for (const sha256 of await this.store.list(after, limit)) {
      last = sha256;
      const size = (await this.store.sizeOf(sha256)) ?? 0;
      const outcome = await this.check(sha256);
      if (outcome === "absent") continue;
      page.checked += 1;
      page.bytes += size;
      if (outcome === "bad") page.bad.push(sha256);
      if (page.bytes >= PAGE_BYTES) break;
    }
    const more = last !== undefined && (await this.store.list(last, 1)).length > 0;
    return more ? { ...page, next: last } : page;
  }

  /**
   * Scrub for ever in the background at about `bytesPerSecond` (each piece counting
   * PIECE_COST_BYTES more than its size), one pass after the other, with a pause between
   * passes; 0 leaves it off.
   */
  start(bytesPerSecond: number, pauseMs = 60_000): void {
    if (bytesPerSecond <= 0 || this.running) return;
    this.running = true;
    let after: string | undefined;
    let found = 0;
    const step = () => {
      if (!this.running) return;
      this.page(after, 16)
        .then((page) => {
          found += page.bad.length;
          after = page.next;
          let wait = Math.ceil(((page.bytes + page.checked * PIECE_COST_BYTES) / bytesPerSecond) * 1000);
          if (after === undefined) {
            if (found > 0) this.log(`scrub pass done: ${found} bad piece${found === 1 ? "" : "s"} dropped and reported`);
            found = 0;
            wait += pauseMs;
          }
          this.timer = setTimeout(step, wait);
        })
        .catch((err) => {
          if (!this.running) return;
          this.log(`scrub paused: ${err instanceof Error ? err.message : String(err)}`);
          this.timer = setTimeout(step, pauseMs);
        });
    };
    this.timer = setTimeout(step, 1_000);
  }

  stop(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
  }
}
