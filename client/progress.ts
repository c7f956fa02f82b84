/**
 * How far a put or a get is: bytes done of the total, in the phase it is in. A stream's total
 * is not known before its end: "stream" counts bytes stored of the bytes read so far.
 */
export interface Progress {
  phase: "hash" | "upload" | "stream" | "download";
  done: number;
  total: number;
}
