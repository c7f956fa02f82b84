// `dfs up` keeps its children running: one that exits, for whatever reason (a crash, kill -9,
// a lost server), is started again, after a delay that grows while it keeps dying.
import type { ChildProcess } from "node:child_process";
import { stopChild } from "./stop-child.js";

/** 0.5 s, doubling up to 10 s; a child that ran a minute before it died starts over at 0.5 s. */
export const RESTART_BACKOFF = { firstMs: 500, maxMs: 10_000, healthyAfterMs: 60_000 } as const;

export class SupervisedChild {
  private child?: ChildProcess;
  private launchedAt = 0;
  private nextDelayMs: number = RESTART_BACKOFF.firstMs;
  private restartTimer?: NodeJS.Timeout;
  private restarting?: Promise<void>;
  private supervising = false;
  private stopping = false;
  /** How it ended before `supervise()` was called, if it did: the store could not start. */
  exitedEarly?: string;

  constructor(
    readonly name: string,
    /** Start the process: a failure (thrown) counts as an exit. */
    private readonly launch: () => Promise<ChildProcess>,
    /** One line per restart. */
    private readonly log: (line: string) => void,
  ) {}

  /** The first start; a failure is the caller's. */
  async start(): Promise<void> {
    this.launchedAt = Date.now();
    this.watch(await this.launch());
  }

  /**
   * Restart it whenever it exits from now on. Until then an exit is only recorded: a store
   * that cannot start says why instead of trying forever.
   */
  supervise(): void {
    this.supervising = true;
  }

  /** No more restarts: from now on an exit is expected (the store is stopping). */
  endSupervision(): void {
    this.stopping = true;
    clearTimeout(this.restartTimer);
  }

  /** No more restarts; SIGTERM, then SIGKILL after a grace period, and wait. */
  async stop(): Promise<void> {
    this.endSupervision();
    await this.restarting;
    if (this.child) await stopChild(this.child);
  }

  private watch(child: ChildProcess): void {
    this.child = child;
    child.once("exit", (code, signal) => {
      const how = signal ? `signal ${signal}` : `code ${code}`;
      if (this.stopping) return;
      if (this.supervising) this.scheduleRestart(`exited with ${how}`);
      else this.exitedEarly ??= `exited with ${how}`;
    });
  }

  private scheduleRestart(why: string): void {
    if (this.stopping) return;
    if (Date.now() - this.launchedAt >= RESTART_BACKOFF.healthyAfterMs) this.nextDelayMs = RESTART_BACKOFF.firstMs;
    const delayMs = this.nextDelayMs;
    this.nextDelayMs = Math.min(delayMs * 2, RESTART_BACKOFF.maxMs);
    this.log(`${this.name} ${why}; restarting in ${delayMs / 1000} s`);
    this.restartTimer = setTimeout(() => (this.restarting = this.restart()), delayMs);
  }

  private async restart(): Promise<void> {
    this.launchedAt = Date.now();
    try {
      this.watch(await this.launch());
    } catch (err) {
      this.scheduleRestart(`did not start (${err instanceof Error ? err.message : String(err)})`);
    }
  }
}
