// Whose bytes are whose, as `dfs tail --path` judges the events that name only bytes:
// given(events folded) / then(the paths of a piece hash). No server.
import { createHash } from "node:crypto";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { BytesReferrers } from "../src/byte-referrers.js";
import type { DfsEvent } from "../src/events.js";
import { evolve } from "../src/fold.js";
import { initialState } from "../src/state.js";

const sha = (seed: string): string => createHash("sha256").update(seed).digest("hex");
const X = sha("x");

/** Fold `events` as a reader does, the index beside the table. */
function given(events: DfsEvent[]) {
  const state = initialState();
  const referrers = new BytesReferrers();
  for (const event of [{ type: "WorkerJoined", at: 0, workerId: "w1" } as const, ...events]) {
    assert.is(evolve(state, event), undefined, `${event.type} is folded`);
    referrers.observe(event, state);
  }
  return (sha256: string) => referrers.pathsOf(sha256, state).sort();
}

/** A committed version of `path` (file `fileId`) whose one piece holds the bytes `sha256`, on w1. */
function put(fileId: string, path: string, sha256: string): DfsEvent[] {
  const version = { fileId, version: 1 };
  return [
    { type: "FileCreated", at: 1, ...version, path, size: 10, sha256, pieceSize: 4096, replicas: 1, uploadId: `u${fileId}` },
    { type: "PiecesPlanned", at: 1, ...version, pieces: [{ index: 0, size: 10, sha256 }] },
    { type: "PeersAssigned", at: 1, ...version, uploadId: `u${fileId}`, workerId: "w1", pieces: [{ piece: 0, size: 10, sha256, role: "major" }] },
    { type: "PieceStored", at: 1, ...version, piece: 0, workerId: "w1", sha256 },
    { type: "FileCommitted", at: 1, ...version, path, size: 10, sha256 },
  ];
}
const remove = (fileId: string, path: string): DfsEvent => ({ type: "FileDeleted", at: 2, fileId, path });

test("bytes two files refer to are about both; once both are deleted, still about both", () => {
  assert.equal(given([...put("a", "/a", X), ...put("b", "/b", X)])(X), ["/a", "/b"]);
  assert.equal(given([...put("a", "/a", X), ...put("b", "/b", X), remove("a", "/a"), remove("b", "/b")])(X), ["/a", "/b"]);
});

test("bytes one file let go of while another still refers to them are about that other one", () => {
  assert.equal(given([...put("a", "/a", X), ...put("b", "/b", X), remove("a", "/a")])(X), ["/b"]);
});

test("bytes forgotten and planned again are about the new file only", () => {
  assert.equal(given([...put("a", "/a", X), remove("a", "/a"), ...put("b", "/b", X)])(X), ["/b"]);
  assert.equal(given([...put("a", "/a", X), remove("a", "/a"), ...put("b", "/b", X), remove("b", "/b")])(X), ["/b"]);
});

test("bytes no file planned are about no path", () => {
  assert.equal(given(put("a", "/a", X))(sha("never planned")), []);
});

test.run();
