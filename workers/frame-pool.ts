// Buffers of one frame, used over and over for the frames a worker pulls. nats.js hands each
// frame over in a buffer of its own, grown by doubling as the frame's socket reads come in
// (about 1.5 MiB for 960 KiB), and a frame is held while the ones before it are hashed and
// written: sixteen of them at a time in a worker storing four big pieces. Copied here as it
// arrives, a frame's own buffer is garbage at once, and what is held is these few buffers of
// exactly one frame. The bench's big-file sequence ended with the workers' malloc heap at
// 37 MB instead of 59 (README, Memory).

export class FramePool {
  private readonly free: ArrayBuffer[] = [];
  /** Every buffer this pool made: `give` takes back only those. */
  private readonly own = new WeakSet<ArrayBuffer>();

  /** Frames of `frameSize` bytes; at most `kept` free buffers are kept for reuse. */
  constructor(
    private readonly frameSize: number,
    private readonly kept: number,
  ) {}

  /**
   * Whether a frame of `length` bytes is worth a pooled copy: half a frame or more. A smaller
   * one (a small file's piece, a piece's last frame) is kept as it came rather than holding a
   * whole frame's buffer for a few bytes.
   */
  takes(length: number): boolean {
    return length >= this.frameSize / 2 && length <= this.frameSize;
  }

  /** `frame` copied into a pooled buffer (see `takes`); hand it back with `give` once nothing reads it. */
  copy(frame: Uint8Array): Uint8Array {
    let buffer = this.free.pop();
    if (!buffer) this.own.add((buffer = new ArrayBuffer(this.frameSize)));
    const copy = new Uint8Array(buffer, 0, frame.length);
    copy.set(frame);
    return copy;
  }

  /** A frame nothing reads any more: if it is a copy from `copy`, its buffer may be reused at once. */
  give(frame: Uint8Array): void {
    const buffer = frame.buffer as ArrayBuffer;
    if (this.own.has(buffer) && this.free.length < this.kept && !this.free.includes(buffer)) this.free.push(buffer);
  }
}
