// How a role started by `dfs up` knows that `dfs up` is gone, however it ended. Node has no
// PR_SET_PDEATHSIG, but a pipe does the job: `dfs up` starts each role with its stdin a pipe
// it never writes to and never closes. The kernel closes the writing end when `dfs up` exits,
// kill -9 included, and the role then reads end-of-file.

/** Set to "1" in a role's environment by `dfs up`: its stdin is the pipe from `dfs up`. */
export const PARENT_PIPE_ENV = "DFS_PARENT_PIPE";

/**
 * Call `onGone` once when the parent's pipe ends, if this process was started with one.
 * Returns what stops watching (so the process can exit), or undefined when there is no pipe.
 */
export function watchParentPipe(onGone: () => void): (() => void) | undefined {
  if (process.env[PARENT_PIPE_ENV] !== "1") return undefined;
  const stdin = process.stdin;
  const gone = () => {
    stdin.off("end", gone);
    stdin.off("error", gone);
    onGone();
  };
  stdin.once("end", gone);
  stdin.once("error", gone);
  stdin.resume();
  return () => stdin.destroy();
}
