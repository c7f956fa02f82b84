// Many files in one process: which local files go to which remote paths (as `cp` decides it),
// and storing them with a bounded number in flight over one connection. Each file is an
// ordinary put, committed or abandoned on its own; one that fails does not stop the others.
import { readdir, stat } from "node:fs/promises";
import { getMaxListeners, setMaxListeners } from "node:events";
import { basename, join } from "node:path";
import { DfsError, ErrorCodes, asDfsError } from "../src/errors.js";
import { Limiter } from "../src/limiter.js";
import { normalisePath, normalisePrefix } from "../src/paths.js";
import type { PutOptions, PutResult } from "./client.js";

/**
 * Files in flight at once. Many: a small file's put is mostly waiting for its events to be
 * logged, and an uploader holds no bytes but the frames being served.
 */
export const DEFAULT_PARALLEL_PUTS = 64;

/** One local file and the remote path it is stored at. */
export interface PutEntry {
  local: string;
  remote: string;
}

/** What a walk of a directory left out, and why. */
export interface SkippedEntry {
  local: string;
  reason: string;
}

export interface PutPlan {
  entries: PutEntry[];
  skipped: SkippedEntry[];
}

/**
 * Which local file goes where, as `cp` decides it. One LOCAL file without `recursive`: REMOTE
 * is the file, or a directory to put it in when it ends with `/`. Several LOCALs, or
 * `recursive`: REMOTE is a directory and each LOCAL keeps its name below it (a directory named
 * `dir/.` or `.` gives its contents instead, as with `cp -r`). Inside a directory, symbolic
 * links and anything else that is not a regular file or a directory are skipped, not
 * followed; empty directories give no entries (the store has files, not directories). Remote
 * paths are checked when each file is put, so a bad one fails that file alone.
 */
export async function planPut(locals: readonly string[], remote: string, opts: { recursive?: boolean } = {}): Promise<PutPlan> {
  if (locals.length === 0) throw new DfsError(ErrorCodes.BAD_REQUEST, "nothing to put: name at least one local file");
  const kinds = await Promise.all(locals.map(async (local) => ({ local, isDirectory: (await statLocal(local)).isDirectory() })));
  const directory = kinds.find((k) => k.isDirectory);
  if (directory && !opts.recursive) throw new DfsError(ErrorCodes.BAD_REQUEST, `${directory.local} is a directory: put it with -r`);
  const plan: PutPlan = { entries: [], skipped: [] };
  if (locals.length === 1 && !opts.recursive) {
    plan.entries.push({ local: locals[0]!, remote: remote.endsWith("/") ? remote + basename(locals[0]!) : remote });
    return plan;
  }
  const into = normalisePrefix(remote);
  for (const { local, isDirectory } of kinds) {
    const name = keptName(local);
    const below = name === undefined ? into : childPath(into, name);
    if (isDirectory) await walk(local, below, plan);
    else plan.entries.push({ local, remote: below });
  }
  refuseCollisions(plan.entries);
  return plan;
}

export interface PutManyOptions extends Omit<PutOptions, "onProgress"> {
  /** Files in flight at once (default 16). */
  parallel?: number;
  /** Called as each file ends, stored or failed. */
  onFile?: (outcome: PutOutcome) => void;
}

export type PutOutcome = { entry: PutEntry; result: PutResult } | { entry: PutEntry; error: DfsError };

export interface PutManyResult {
  stored: PutResult[];
  failed: { entry: PutEntry; error: DfsError }[];
}

/** What `putMany` needs of a client. */
export interface Putter {
  put(localPath: string, remotePath: string, opts?: PutOptions): Promise<PutResult>;
}

/**
 * Put every entry, `parallel` at a time. A file that fails is reported (`onFile`) and the
 * others go on. An abort (`signal`) abandons the puts in flight, starts no more, and rejects
 * with INTERRUPTED once those in flight have ended.
 */
export async function putMany(client: Putter, entries: readonly PutEntry[], opts: PutManyOptions = {}): Promise<PutManyResult> {
  const { parallel = DEFAULT_PARALLEL_PUTS, onFile, ...putOptions } = opts;
  // Every put in flight listens for the abort: that many listeners are expected, not a leak.
  if (opts.signal) setMaxListeners(getMaxListeners(opts.signal) + parallel, opts.signal);
  const slots = new Limiter(parallel);
  const outcome: PutManyResult = { stored: [], failed: [] };
  await Promise.all(
    entries.map((entry) =>
      slots.run(async () => {
        if (opts.signal?.aborted) return;
        let ended: PutOutcome;
        try {
          ended = { entry, result: await client.put(entry.local, entry.remote, putOptions) };
          outcome.stored.push(ended.result);
        } catch (err) {
          ended = { entry, error: asDfsError(err) };
          outcome.failed.push(ended);
        }
        // After an abort, the puts it abandoned are not news: the interruption says it once.
        if (!opts.signal?.aborted || "result" in ended) onFile?.(ended);
      }),
    ),
  );
  if (opts.signal?.aborted) {
    throw new DfsError(ErrorCodes.INTERRUPTED, `put of ${entries.length} files was interrupted: ${outcome.stored.length} stored, the others abandoned or not begun`);
  }
  return outcome;
}

async function statLocal(local: string) {
  try {
    return await stat(local);
  } catch (err) {
    throw new DfsError(ErrorCodes.LOCAL_IO, `cannot read ${local}: ${(err as Error).message}`, { cause: err });
  }
}

/** The name a LOCAL keeps below REMOTE; none for `.`, `..`, `dir/.` or `/`, whose contents go there instead. */
function keptName(local: string): string | undefined {
  const last = local.replace(/\/+$/, "").split("/").pop();
  return last === undefined || last === "" || last === "." || last === ".." ? undefined : last;
}

function childPath(dir: string, name: string): string {
  return `${dir === "/" ? "" : dir}/${name}`;
}

/** Every regular file below `dir`, in name order, at the same relative path below `remote`. */
async function walk(dir: string, remote: string, plan: PutPlan): Promise<void> {
  let children;
  try {
    children = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    throw new DfsError(ErrorCodes.LOCAL_IO, `cannot read the directory ${dir}: ${(err as Error).message}`, { cause: err });
  }
  children.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const child of children) {
    const local = join(dir, child.name);
    if (child.isDirectory()) await walk(local, childPath(remote, child.name), plan);
    else if (child.isFile()) plan.entries.push({ local, remote: childPath(remote, child.name) });
    else plan.skipped.push({ local, reason: child.isSymbolicLink() ? "a symbolic link, not followed" : "not a regular file" });
  }
}

/** Two LOCALs stored at one remote path would race for its versions: refused before anything is put. */
function refuseCollisions(entries: readonly PutEntry[]): void {
  const seen = new Map<string, string>();
  for (const { local, remote } of entries) {
    let key = remote;
    try {
      key = normalisePath(remote);
    } catch {
      // A bad path fails its own put later.
    }
    const other = seen.get(key);
    if (other !== undefined) throw new DfsError(ErrorCodes.BAD_REQUEST, `${other} and ${local} would both be stored at ${key}`);
    seen.set(key, local);
  }
}
