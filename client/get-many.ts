// A tree read back: every latest committed file at or below a prefix, written below a local
// directory at the same relative path, several files in flight, each an ordinary get (verified,
// written under a temporary name, renamed when complete). One that fails does not stop the others.
import { getMaxListeners, setMaxListeners } from "node:events";
import { mkdir } from "node:fs/promises";
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { DfsError, ErrorCodes, asDfsError } from "../src/errors.js";
import { Limiter } from "../src/limiter.js";
import { baseName, normalisePrefix } from "../src/paths.js";
import type { ListEntry } from "../src/queries.js";
import { getFile, type GetResult, type PieceSource } from "./get.js";

/** Files read at once: each holds a few frames in memory while it is written. */
export const DEFAULT_PARALLEL_GETS = 16;

export interface GetTreeOptions {
  /** Files in flight at once (default 16); each reads one piece at a time, so at most this many pieces are in memory. */
  parallel?: number;
  /** Called once the prefix is listed, with the number of files to get. */
  onListed?: (files: number) => void;
  /** Called as each file ends, written or failed. */
  onFile?: (outcome: GetOutcome) => void;
  /** Stop: gets in flight remove their temporary files, no more begin, and it rejects with INTERRUPTED. */
  signal?: AbortSignal;
}

export type GetOutcome = { remote: string; local: string; result: GetResult } | { remote: string; local: string; error: DfsError };

export interface GetTreeResult {
  /** Files at or below the prefix, as listed when the get began. */
  files: number;
  written: GetResult[];
  failed: { remote: string; local: string; error: DfsError }[];
}

/** What a tree get needs of a client: reading pieces, and the listing. */
export interface TreeSource extends PieceSource {
  list(prefix?: string): Promise<ListEntry[]>;
}

/**
 * Write every latest committed file at or below `prefix` below `dir`: `/p/a/b` with prefix
 * `/p` lands at `dir/a/b` (a prefix that is itself a file lands at `dir/<its name>`). The
 * version listed is the one read. NOT_FOUND when nothing is there.
 */
export async function getTree(source: TreeSource, prefix: string, dir: string, opts: GetTreeOptions = {}): Promise<GetTreeResult> {
  const from = normalisePrefix(prefix);
  const files = await source.list(from);
  if (files.length === 0) throw new DfsError(ErrorCodes.NOT_FOUND, `no file at or below ${from}`);
  opts.onListed?.(files.length);
  const parallel = opts.parallel ?? DEFAULT_PARALLEL_GETS;
  // Every get in flight listens for the abort: that many listeners are expected, not a leak.
  if (opts.signal) setMaxListeners(getMaxListeners(opts.signal) + parallel, opts.signal);
  const slots = new Limiter(parallel);
  const outcome: GetTreeResult = { files: files.length, written: [], failed: [] };
  await Promise.all(
    files.map((file) =>
      slots.run(async () => {
        if (opts.signal?.aborted) return;
        let local = "";
        let ended: GetOutcome;
        try {
          local = localPathFor(file.path, from, dir);
          await mkdir(dirname(local), { recursive: true }).catch((err: Error) => {
            throw new DfsError(ErrorCodes.LOCAL_IO, `cannot make the directory for ${local}: ${err.message}`, { cause: err });
          });
          ended = { remote: file.path, local, result: await getFile(source, file.path, local, { version: file.version, parallelPieces: 1, signal: opts.signal }) };
          outcome.written.push(ended.result);
        } catch (err) {
          ended = { remote: file.path, local, error: asDfsError(err) };
          outcome.failed.push(ended);
        }
        // After an abort, the gets it stopped are not news: the interruption says it once.
        if (!opts.signal?.aborted || "result" in ended) opts.onFile?.(ended);
      }),
    ),
  );
  if (opts.signal?.aborted) {
    throw new DfsError(ErrorCodes.INTERRUPTED, `get of ${files.length} files was interrupted: ${outcome.written.length} written, the others not`);
  }
  return outcome;
}

/**
 * Where a remote file lands: its path below the prefix, below `dir`. Canonical remote paths
 * have no `.` or `..` segments, but a path that would still resolve outside `dir` is refused.
 */
function localPathFor(path: string, prefix: string, dir: string): string {
  const below = path === prefix ? baseName(path) : path.slice(prefix === "/" ? 1 : prefix.length + 1);
  const local = join(dir, ...below.split("/"));
  const inside = relative(resolve(dir), resolve(local));
  if (inside === "" || inside === ".." || inside.startsWith(`..${sep}`) || isAbsolute(inside)) {
    throw new DfsError(ErrorCodes.BAD_PATH, `${path} would be written outside ${dir}`);
  }
  return local;
}
