// The far end of the request-reply ceiling (scripts/bench.ts): a process of its own, as a
// worker is, answering every request on SUBJECT with FRAME_BYTES bytes, until stopped.
// Run: node --import tsx scripts/ceiling-responder.ts URL CREDS SUBJECT FRAME_BYTES
import { connectNats } from "../src/connection.js";

const [servers, creds, subject, frameBytes] = process.argv.slice(2);
const nc = await connectNats({ servers: servers!, creds, name: "dfs-bench-responder" });
const frame = new Uint8Array(Number(frameBytes));
nc.subscribe(subject!, {
  callback: (err, msg) => {
    if (!err) msg.respond(frame);
  },
});
await nc.flush();
process.stdout.write("ready\n");
process.on("SIGTERM", () => void nc.close().then(() => process.exit(0)));
