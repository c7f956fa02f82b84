// The master's table, CPU to fold and to make again from a snapshot: fold FILES one-piece
// files (FileCreated with its plan, PeersAssigned, PieceStored, FileCommitted, as a master
// logs a small put with one replica), encode the table as a snapshot, then decode it RUNS
// times in this process (the first decode is what a starting master pays) and check that
// the decoded table's digest is the folded one's.
// Run: node --import tsx scripts/measure-table-decode.ts [FILES] [RUNS]
import { createHash, randomBytes } from "node:crypto";
import { catalogue } from "../streams/catalogue.js";
import { encode } from "../src/codec.js";
import { foldLogged, subjectFor } from "../src/fold.js";
import { SNAPSHOT_FORMAT, decodeTable, encodeTable } from "../src/snapshot.js";
import { initialState, stateDigest } from "../src/state.js";
import type { DfsEvent } from "../src/events.js";

const FILES = Number(process.argv[2] ?? 100_000);
const RUNS = Number(process.argv[3] ?? 2);
const cat = catalogue("dfs");
const WORKERS = ["w1", "w2", "w3"];
const cpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};
const id = () => randomBytes(16).toString("base64url").slice(0, 22); // as long as a nuid

const state = initialState();
let seq = 0;
const fold = (event: DfsEvent) => foldLogged(state, cat, { seq: ++seq, subject: subjectFor(cat, event), data: encode(event) });
const at = Date.now();
for (const workerId of WORKERS) fold({ type: "WorkerJoined", at, workerId });
let started = cpuMs();
for (let n = 0; n < FILES; n++) {
  const fileId = id(), uploadId = id(), path = `/photos/2026/11/img-${n}.jpg`, sha256 = randomBytes(32).toString("hex"), workerId = WORKERS[n % WORKERS.length]!;
  fold({ type: "FileCreated", at: at + n, fileId, path, version: 1, size: 1024, sha256, pieceSize: 65536, replicas: 1, uploadId, uploader: "client", pieces: [{ index: 0, size: 1024, sha256 }] });
  fold({ type: "PeersAssigned", at: at + n, fileId, version: 1, uploadId, uploader: "client", workerId, pieces: [{ piece: 0, size: 1024, sha256, role: "major" }] });
  fold({ type: "PieceStored", at: at + n, fileId, version: 1, piece: 0, workerId, sha256 });
  fold({ type: "FileCommitted", at: at + n + 5, fileId, path, version: 1, size: 1024, sha256 });
}
console.log(`${FILES} files: fold ${(((cpuMs() - started) * 1000) / seq).toFixed(1)} µs of CPU an event, ${state.rejected.count} rejected`);
const bytes = await encodeTable(state);
const digest = stateDigest(state);
const head = { format: SNAPSHOT_FORMAT, snapshotId: "measure", seq: state.lastSeq, digest, bytes: bytes.length, chunks: 1, sha256: createHash("sha256").update(bytes).digest("hex"), at, files: state.files.size };
for (let run = 1; run <= RUNS; run++) {
  started = cpuMs();
  const decoded = decodeTable(head, [bytes]);
  const ms = cpuMs() - started;
  console.log(`decode ${run}: ${ms.toFixed(0)} ms of CPU${run === 1 ? `, digest ${stateDigest(decoded) === digest ? "equal" : "DIFFERENT"}` : ""}`);
}
