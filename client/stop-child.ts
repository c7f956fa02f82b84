// The one way to stop a child process: for `dfs up`, the nats-server helper and the tests.
import type { ChildProcess } from "node:child_process";

/** How long a child has to stop after the polite signal before it is killed. */
export const STOP_GRACE_MS = 5_000;

export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/**
 * Send `signal` (SIGTERM by default), then SIGKILL if the child still runs after `graceMs`;
 * resolves once it has exited. A child that has already exited, or never started, is left be.
 */
export async function stopChild(child: ChildProcess, opts: { signal?: NodeJS.Signals; graceMs?: number } = {}): Promise<void> {
  if (child.pid === undefined || hasExited(child)) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill(opts.signal ?? "SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), opts.graceMs ?? STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
}
