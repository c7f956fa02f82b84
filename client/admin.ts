// The store's health, for operators: `dfs status` and `dfs scrub`.
import type { NatsConnection } from "@nats-io/transport-node";
import type { Catalogue } from "../streams/catalogue.js";
import { DfsError, ErrorCodes } from "../src/errors.js";
import { call } from "../src/rpc.js";
import type { PieceHealth, StoreStatus, WorkerSummary } from "../src/status.js";
import type { ScrubPage } from "../workers/scrub.js";

/** `status`, as the master answers it: the table's view, with each worker's free space from its heartbeats. */
export interface StatusReport extends Omit<StoreStatus, "workers"> {
  workers: (WorkerSummary & { freeBytes?: number })[];
}

export interface ScrubOptions {
  /** Only this worker (default: every live worker). */
  worker?: string;
  /** How long to wait for the bad pieces to be repaired (ms). */
  repairTimeoutMs?: number;
  onProgress?: (p: { workerId: string; checked: number; bad: number }) => void;
}

export interface ScrubResult {
  /** Pieces hashed again, and their bytes, over every worker scrubbed. */
  checked: number;
  bytes: number;
  /** Copies that failed their SHA-256 (each dropped and reported by its worker). */
  bad: { workerId: string; sha256: string }[];
  /** Of those, pieces whose copies are all back. */
  repaired: number;
  /** Pieces still short of copies when the wait ended (with their health). */
  unrepaired: PieceHealth[];
}

const SCRUB_CALL_MS = 60_000;

/**
 * Have workers hash every piece again, a page at a time; bad copies are dropped and reported
 * by the workers themselves, and the master orders them made again. Resolves once every bad
 * piece is whole again, or the wait ends (then `unrepaired` lists them).
 */
export async function scrub(nc: NatsConnection, cat: Catalogue, workers: readonly string[], opts: ScrubOptions = {}): Promise<ScrubResult> {
  const result: ScrubResult = { checked: 0, bytes: 0, bad: [], repaired: 0, unrepaired: [] };
  for (const workerId of workers) {
    let after: string | undefined;
    let checked = 0;
    do {
      const page: ScrubPage = await call(nc, cat.workerRpc(workerId, "scrub"), { after }, SCRUB_CALL_MS);
      checked += page.checked;
      result.checked += page.checked;
      result.bytes += page.bytes;
      for (const sha256 of page.bad) result.bad.push({ workerId, sha256 });
      opts.onProgress?.({ workerId, checked, bad: result.bad.filter((b) => b.workerId === workerId).length });
      after = page.next;
    } while (after !== undefined);
  }
  const pending = [...new Set(result.bad.map((b) => b.sha256))];
  if (pending.length === 0) return result;
  const deadline = Date.now() + (opts.repairTimeoutMs ?? 120_000);
  let health: PieceHealth[] = [];
  for (;;) {
    health = [];
    for (let i = 0; i < pending.length; i += 2_000) health.push(...(await call<PieceHealth[]>(nc, cat.masterRpc("pieces"), { sha256s: pending.slice(i, i + 2_000) })));
    // Bytes no committed version wants any more need no repair.
    const short = health.filter((h) => h.wanted > 0 && h.live < h.wanted);
    if (short.length === 0 || Date.now() > deadline) {
      result.unrepaired = short;
      result.repaired = pending.length - short.length;
      return result;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** The workers a scrub covers: one by name, or every live one. */
export function scrubTargets(live: readonly { workerId: string; live: boolean }[], only?: string): string[] {
  if (only === undefined) return live.filter((w) => w.live).map((w) => w.workerId);
  if (!live.some((w) => w.workerId === only)) throw new DfsError(ErrorCodes.NOT_FOUND, `no worker ${only}`);
  return [only];
}
