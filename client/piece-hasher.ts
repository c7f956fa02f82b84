// What a put declares up front: the whole file's SHA-256 and every piece's, from one pass over
// its bytes in chunks of any size (a file read in 4 MiB steps, stdin as it comes, a small file
// in memory).
import { createHash, type Hash } from "node:crypto";

export interface ContentHashes {
  size: number;
  /** Of the whole content, hex. */
  sha256: string;
  /** Every piece's SHA-256, 32 bytes each, in piece order. */
  pieceHashes: Buffer;
}

export class PieceHasher {
  private readonly whole = createHash("sha256");
  private piece: Hash = createHash("sha256");
  private inPiece = 0;
  private readonly pieces: Buffer[] = [];
  private size = 0;

  constructor(readonly pieceSize: number) {}

  /** Bytes hashed so far. */
  get hashed(): number {
    return this.size;
  }

  update(chunk: Uint8Array): void {
    this.whole.update(chunk);
    this.size += chunk.length;
    for (let offset = 0; offset < chunk.length; ) {
      const take = Math.min(chunk.length - offset, this.pieceSize - this.inPiece);
      this.piece.update(chunk.subarray(offset, offset + take));
      this.inPiece += take;
      offset += take;
      if (this.inPiece === this.pieceSize) this.endPiece();
    }
  }

  /** The hashes of everything given; the hasher is spent. */
  digest(): ContentHashes {
    if (this.inPiece > 0) this.endPiece();
    return { size: this.size, sha256: this.whole.digest("hex"), pieceHashes: Buffer.concat(this.pieces) };
  }

  private endPiece(): void {
    this.pieces.push(this.piece.digest());
    this.piece = createHash("sha256");
    this.inPiece = 0;
  }
}
