// The pulls of every upload a client has open, served over one subscription to its user's pull
// subjects (`<prefix>.pull.<user>.*.*`) instead of one subscription per upload: a `put -r` of
// many small files then costs the server no subscription made and removed per file.
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Catalogue } from "../streams/catalogue.js";
import { DfsError, ErrorCodes, quote } from "../src/errors.js";
import { serveBytes } from "../src/rpc.js";

/** Serves the frames of one upload: the pull request as sent, and the message (its subject names the piece). */
export type FrameServer = (request: unknown, msg: Msg) => Promise<Uint8Array>;

/** How long an upload that ended still answers a late pull with UPLOAD_ABANDONED (about: between this and twice this). */
const ENDED_KEPT_MS = 10_000;

export class UploadServer {
  private subscription?: Subscription;
  private readonly open = new Map<string, FrameServer>();
  /** Uploads that ended lately, in two generations: a late pull of theirs is told so at once. */
  private ended = new Set<string>();
  private endedBefore = new Set<string>();
  private endedSince = Date.now();

  constructor(
    private readonly nc: NatsConnection,
    private readonly cat: Catalogue,
    private readonly uploader: string,
  ) {}

  /**
   * Answer the pulls of `uploadId` with `frames` until `end()`. Pulls of uploads this client
   * does not know are left unanswered: another process of the same user may be serving them.
   */
  serve(uploadId: string, frames: FrameServer): { end: () => void } {
    this.subscription ??= serveBytes(this.nc, this.cat.pullAll(this.uploader, "*"), (request, msg) => this.frame(request, msg), {
      ours: (msg) => {
        const uploadId = this.cat.parsePull(msg.subject)?.uploadId;
        return uploadId !== undefined && (this.open.has(uploadId) || this.ended.has(uploadId) || this.endedBefore.has(uploadId));
      },
    });
    this.open.set(uploadId, frames);
    return { end: () => this.end(uploadId) };
  }

  private frame(request: unknown, msg: Msg): Promise<Uint8Array> {
    const where = this.cat.parsePull(msg.subject);
    if (!where) throw new DfsError(ErrorCodes.BAD_REQUEST, `bad pull subject ${quote(msg.subject)}`);
    const frames = this.open.get(where.uploadId);
    if (!frames) throw new DfsError(ErrorCodes.UPLOAD_ABANDONED, "this upload is over");
    return frames(request, msg);
  }

  private end(uploadId: string): void {
    if (!this.open.delete(uploadId)) return;
    const now = Date.now();
    if (now - this.endedSince >= ENDED_KEPT_MS) {
      this.endedBefore = this.ended;
      this.ended = new Set();
      this.endedSince = now;
    }
    this.ended.add(uploadId);
  }
}
