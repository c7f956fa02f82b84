// The master's table, bytes of heap per file: fold FILES one-piece files (the events a master
// logs for a small put with one replica) in this process and compare the heap before and
// after, garbage collected. Run: node --expose-gc --import tsx scripts/measure-table-memory.ts [FILES]
import { randomBytes } from "node:crypto";
import { catalogue } from "../streams/catalogue.js";
import { encode } from "../src/codec.js";
import { foldLogged, subjectFor } from "../src/fold.js";
import { initialState } from "../src/state.js";
const cat = catalogue("dfs");
const FILES = Number(process.argv[2] ?? 100000);
const gc = (globalThis as any).gc as () => void;
const state = initialState();
let seq = 0;
const at = Date.now(); const W = ["w1", "w2", "w3"];
const fold = (e: any) => foldLogged(state, cat, { seq: ++seq, subject: subjectFor(cat, e), data: encode(e) });
for (const workerId of W) fold({ type: "WorkerJoined", at, workerId });
gc(); const before = process.memoryUsage().heapUsed;
for (let n = 0; n < FILES; n++) {
  const fileId = randomBytes(11).toString("base64url"), path = `/photos/2026/11/img-${n}.jpg`, sha256 = randomBytes(32).toString("hex"), workerId = W[n % 3]!;
  const uploadId = randomBytes(11).toString("base64url");
  fold({ type: "FileCreated", at, fileId, path, version: 1, size: 1024, sha256, pieceSize: 4096, replicas: 1, uploadId });
  fold({ type: "PiecesPlanned", at, fileId, version: 1, pieces: [{ index: 0, size: 1024, sha256 }] });
  fold({ type: "PeersAssigned", at, fileId, version: 1, uploadId, workerId, pieces: [{ piece: 0, size: 1024, sha256, role: "major" }] });
  fold({ type: "PieceStored", at, fileId, version: 1, piece: 0, workerId, sha256 });
  fold({ type: "FileCommitted", at, fileId, path, version: 1, size: 1024, sha256 });
}
gc(); const after = process.memoryUsage().heapUsed;
console.log(`${FILES} files: ${((after - before) / FILES).toFixed(0)} bytes/file, rejected ${state.rejected.count}`);
