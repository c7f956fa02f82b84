// A stream that can be read only once (stdin) put as a file: a put declares every piece's
// SHA-256 before workers pull the bytes, so the stream is copied to a temporary file in the OS
// temporary folder, hashed on the way in, and served from there. Memory holds one chunk at a
// time, whatever the size. The file is removed when the put ends, however it ends.
import { rmSync } from "node:fs";
import { mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { DfsError, ErrorCodes } from "../src/errors.js";
import { PieceHasher, type ContentHashes } from "./piece-hasher.js";

export interface SpooledStream extends ContentHashes {
  /** The temporary file holding the bytes. */
  path: string;
  /** The piece size the hashes were taken at. */
  pieceSize: number;
  /** Remove the temporary file (and its folder); safe to call twice. */
  remove(): Promise<void>;
}

/**
 * Copy `input` into a new temporary file, hashing pieces of `pieceSize` as it goes. The file
 * lives in its own folder (mode 0700) under the OS temporary folder; a process that exits
 * without calling `remove` (a second Ctrl-C) removes it on its way out.
 */
export async function spoolStream(input: Readable, pieceSize: number, signal?: AbortSignal): Promise<SpooledStream> {
  let folder: string;
  try {
    folder = await mkdtemp(join(tmpdir(), "dfs-spool-"));
  } catch (err) {
    throw new DfsError(ErrorCodes.LOCAL_IO, `cannot make a temporary folder in ${tmpdir()}: ${(err as Error).message}`, { cause: err });
  }
  const removeNow = () => rmSync(folder, { recursive: true, force: true });
  process.once("exit", removeNow);
  const remove = async () => {
    process.off("exit", removeNow);
    await rm(folder, { recursive: true, force: true });
  };
  const path = join(folder, "stdin");
  const hasher = new PieceHasher(pieceSize);
  try {
    const file = await open(path, "wx", 0o600);
    try {
      await pipeline(
        input,
        async (chunks: AsyncIterable<Buffer>) => {
          for await (const chunk of chunks) {
            hasher.update(chunk);
            for (let written = 0; written < chunk.length; ) written += (await file.write(chunk, written)).bytesWritten;
          }
        },
        { signal },
      );
    } finally {
      await file.close();
    }
  } catch (err) {
    await remove();
    if (signal?.aborted) throw new DfsError(ErrorCodes.INTERRUPTED, "reading stdin was interrupted", { cause: err });
    throw new DfsError(ErrorCodes.LOCAL_IO, `cannot spool stdin to ${path}: ${(err as Error).message}`, { cause: err });
  }
  return { ...hasher.digest(), path, pieceSize, remove };
}
