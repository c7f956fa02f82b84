// Small pieces pulled from one uploader together: the pulls a worker makes in one turn of its
// event loop (the pieces of an UploadsAssigned naming many small files) go in one request per
// uploader (`PullManyRequest`), on the pull subject of the first, instead of a request each.
import type { NatsConnection } from "@nats-io/transport-node";
import type { Catalogue } from "../streams/catalogue.js";
import { CallBatcher } from "../src/batcher.js";
import { decode } from "../src/codec.js";
import { DfsError, ErrorCodes, asDfsError, reportedFailure } from "../src/errors.js";
import { MAX_FRAMES_PER_PULL, MAX_PULLED_BYTES, type PulledFrame } from "../src/protocol.js";
import { callBytes } from "../src/rpc.js";

/** Pieces up to this size are pulled with others: MAX_FRAMES_PER_PULL of them fit MAX_PULLED_BYTES. */
export const SMALL_PULL_BYTES = MAX_PULLED_BYTES / MAX_FRAMES_PER_PULL;

interface Frame {
  uploadId: string;
  piece: number;
  offset: number;
  length: number;
}

export class SmallPulls {
  private readonly byUploader = new Map<string, CallBatcher<Frame, PulledFrame>>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly cat: Catalogue,
    private readonly timeoutMs: number,
  ) {}

  /**
   * The bytes of a small piece's frame, asked with the others of this turn; undefined when it
   * must be pulled alone (the request went unanswered or was refused: an uploader of a build
   * before pulls of many, or gone; or this upload is served by another process of the same
   * user). A coded error is the uploader's answer for this frame, and final.
   */
  async pull(uploader: string, frame: Frame): Promise<Uint8Array | undefined> {
    let batcher = this.byUploader.get(uploader);
    if (!batcher) this.byUploader.set(uploader, (batcher = new CallBatcher((frames) => this.ask(uploader, frames), MAX_FRAMES_PER_PULL)));
    const answer = await batcher.call(frame).catch(() => undefined);
    if (answer === undefined || answer instanceof Uint8Array) return answer;
    const failure = reportedFailure(answer.code, answer.message);
    if (failure.code === ErrorCodes.NOT_FOUND) return undefined;
    throw failure;
  }

  private async ask(uploader: string, frames: Frame[]): Promise<PulledFrame[]> {
    const first = frames[0]!;
    const reply = await callBytes(this.nc, this.cat.pull(uploader, first.uploadId, first.piece), { frames }, this.timeoutMs);
    let answers: unknown;
    try {
      answers = (decode(reply) as { frames?: unknown })?.frames;
    } catch (err) {
      throw new DfsError(ErrorCodes.BAD_REQUEST, `undecodable answer to a pull of many: ${asDfsError(err).message}`);
    }
    if (!Array.isArray(answers) || answers.length !== frames.length) throw new DfsError(ErrorCodes.BAD_REQUEST, "an answer to a pull of many that does not match it");
    return answers.map((answer: unknown) =>
      answer instanceof Uint8Array ? answer : { code: String((answer as { code?: unknown })?.code), message: String((answer as { message?: unknown })?.message ?? "") },
    );
  }
}
