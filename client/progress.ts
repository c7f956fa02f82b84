/** How far a put or a get is: bytes done of the total, in the phase it is in. */
export interface Progress {
  phase: "hash" | "upload" | "download";
  done: number;
  total: number;
}
