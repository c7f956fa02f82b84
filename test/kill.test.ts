// kill -9 of real processes in the middle of real work, as an operator's crash or `dfs up`'s
// supervisor (which starts a dead child again 0.5 s later) would have it.
import { createHash, randomBytes } from "node:crypto";
import * as assert from "uvu/assert";
import { call, serveBytes } from "../src/rpc.js";
import { keyedUpload, storeSuite, waitFor } from "./harness.js";

const PIECE = 64 * 1024;
/** Long: a worker started again within it is never counted lost, so nothing is re-placed. */
const WORKER_TIMEOUT_MS = 60_000;
const test = storeSuite("kill", { workers: ["k1"], workerTimeoutMs: WORKER_TIMEOUT_MS });

const sha = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

test("a worker killed while it stores an upload and started again at once finishes it, without waiting out the redelivery of its assignment", async ({ store }) => {
  const client = await store.client();
  const bytes = randomBytes(2 * PIECE);
  const pieces = [bytes.subarray(0, PIECE), bytes.subarray(PIECE)];
  const { uploadKey, uploadId } = keyedUpload("killedwhilestoring");
  let killed: Promise<void> | undefined;
  // The worker pulls both pieces under one assignment, acknowledged once both are stored: it
  // is killed as it asks for the second, so that assignment is delivered and not acknowledged.
  const served = serveBytes(client.nc, client.cat.pullAll(client.uploader, uploadId), async (request, msg) => {
    const piece = Number(msg.subject.split(".").at(-1));
    const { offset, length } = request as { offset: number; length: number };
    if (piece === 1 && !killed) {
      killed = store.role("worker k1").kill();
      await killed;
    }
    return pieces[piece]!.subarray(offset, offset + length);
  });
  try {
    const created = await call<{ fileId: string; version: number }>(client.nc, client.cat.masterRpc("create"), {
      uploadKey,
      uploadId,
      uploader: client.uploader,
      path: "/killed-while-storing.bin",
      size: bytes.length,
      sha256: sha(bytes),
      pieceSize: PIECE,
      replicas: 1,
      pieceHashes: Buffer.concat(pieces.map((p) => createHash("sha256").update(p).digest())),
    });
    await waitFor("the worker killed as it pulls the second piece", () => killed !== undefined, 20_000);
    await killed;
    await store.startWorker("k1");
    // Well inside the assignment's first delivery's acknowledgement wait as it was (60 s),
    // and long enough for the worker's start and a redelivery after its consumer's new wait.
    const committed = await waitFor(
      "the version committed",
      async () => (await store.replay()).state.files.get(created.fileId)?.versions.get(created.version)?.status === "committed",
      30_000,
      250,
    );
    assert.ok(committed);
    const back = await client.stat("/killed-while-storing.bin");
    assert.is(back.sha256, sha(bytes));
  } finally {
    served.unsubscribe();
  }
});

test.run();
