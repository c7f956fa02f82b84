// One `dfs up` per data folder: a second one would rewrite the first one's server config and
// TLS files and fight over its workers' LevelDB stores.
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { DfsError, ErrorCodes } from "../src/errors.js";

const LOCK_FILE = "up.pid";

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Take `dir` for this process (`dir/up.pid`); resolves with how to give it back. */
export async function lockFolder(dir: string): Promise<() => Promise<void>> {
  const file = join(dir, LOCK_FILE);
  for (let attempt = 1; ; attempt++) {
    try {
      await writeFile(file, `${process.pid}\n`, { flag: "wx" });
      return () => rm(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw new DfsError(ErrorCodes.LOCAL_IO, `cannot write ${file}: ${(err as Error).message}`, { cause: err });
    }
    const pid = Number((await readFile(file, "utf8").catch(() => "")).trim());
    if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && isRunning(pid)) {
      throw new DfsError(ErrorCodes.IN_USE, `${dir} is in use by another dfs up (pid ${pid}): stop it, or give this one another --dir`);
    }
    // Left by a `dfs up` that was killed: take it over, once.
    if (attempt > 1) throw new DfsError(ErrorCodes.IN_USE, `${dir} is being taken by another dfs up`);
    await rm(file, { force: true });
  }
}
