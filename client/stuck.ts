// Node ends a process whose event loop has nothing left to do while the main module's
// top-level await is still pending (bin/dfs.js awaits the command) with status 13 and no
// word: a command waiting on a promise that nothing can settle any more. A command of ours
// never ends that way: it ends with a coded line instead.

/**
 * `work`, and `onStuck` called (to print a coded line and exit) if the event loop empties
 * while `work` is still pending: nothing can settle it any more.
 */
export async function failIfStuck<T>(work: Promise<T>, onStuck: () => void): Promise<T> {
  process.on("beforeExit", onStuck);
  try {
    return await work;
  } finally {
    process.off("beforeExit", onStuck);
  }
}
