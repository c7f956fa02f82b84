// The pulls of the uploads a client has open. Each upload is served on its own subjects
// (`<prefix>.pull.<user>.<uploadId>.*`), so a pull of an upload nobody serves any more gets
// "no responders" at once; and a worker may ask, on the subject of one of them, for the frames
// of many small pieces (`PullManyRequest`), which this client answers for every upload it has open.
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Catalogue } from "../streams/catalogue.js";
import { encode } from "../src/codec.js";
import { DfsError, ErrorCodes, codedFailure, quote } from "../src/errors.js";
import { PullManyRequest, PullRequest, parse, type PulledFrame } from "../src/protocol.js";
import { serveBytes } from "../src/rpc.js";

/** Serves the frames of one upload: bytes [offset, offset + length) of a piece. */
export type FrameServer = (piece: number, range: PullRequest) => Promise<Uint8Array>;

export class UploadServer {
  private readonly open = new Map<string, FrameServer>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly cat: Catalogue,
    private readonly uploader: string,
  ) {}

  /**
   * Answer the pulls of `uploadId` with `frames` until `end`: committed, no pull is owed and
   * the subscription just goes; otherwise a pull already on its way is answered (this upload
   * being over), so no worker waits for a timeout.
   */
  serve(uploadId: string, frames: FrameServer): { end: (committed: boolean) => Promise<void> } {
    this.open.set(uploadId, frames);
    const subscription: Subscription = serveBytes(this.nc, this.cat.pullAll(this.uploader, uploadId), async (request, msg) => {
      const where = this.cat.parsePull(msg.subject);
      if (!where) throw new DfsError(ErrorCodes.BAD_REQUEST, `bad pull subject ${quote(msg.subject)}`);
      if (typeof request === "object" && request !== null && "frames" in request) return encode({ frames: await this.many(parse(PullManyRequest, request, "pull request")) });
      return this.frame(where.uploadId, where.piece, parse(PullRequest, request, "pull request"));
    });
    return {
      end: async (committed) => {
        if (committed) subscription.unsubscribe();
        else await subscription.drain().catch(() => undefined);
        this.open.delete(uploadId);
      },
    };
  }

  private async frame(uploadId: string, piece: number, range: PullRequest): Promise<Uint8Array> {
    const frames = this.open.get(uploadId);
    if (!frames) throw new DfsError(ErrorCodes.NOT_FOUND, `upload ${uploadId} is not served here (over, or another process's)`);
    return frames(piece, range);
  }

  /** Each frame of a pull of many on its own: its bytes, or its coded error. */
  private many(request: PullManyRequest): Promise<PulledFrame[]> {
    return Promise.all(
      request.frames.map(({ uploadId, piece, offset, length }) =>
        this.frame(uploadId, piece, { offset, length }).catch(codedFailure),
      ),
    );
  }
}
