// The wire contract: what every RPC, confirmation and heartbeat carries. Requests are
// validated here, so a garbage message becomes a BAD_REQUEST reply, never a crash.
import { createHash } from "node:crypto";
import { z } from "zod";
import { MAX_PIECES } from "./events.js";
import { DfsError, ErrorCodes, MAX_MESSAGE_LENGTH } from "./errors.js";
import { MAX_PATH_BYTES } from "./paths.js";

const count = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const sha256 = z.string().regex(/^[0-9a-f]{64}$/, "must be 64 lowercase hex digits");
const token = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1-64 letters, digits, _ or -");
/** Bounded by `normalisePath` (MAX_PATH_BYTES, a BAD_PATH when longer), which every handler applies first. */
const remotePath = z.string();
const message = z.string().max(MAX_MESSAGE_LENGTH);
const errorCode = z.enum(Object.values(ErrorCodes));

/**
 * An upload's key: a secret the uploader picks (32 random bytes, base64url) and shows only to
 * the masters (`create`, `extend`, `seal`, `abort` and the abandon note: requests and a stream
 * no other role can read). Its upload id, which the log, `history` and the pull subjects show,
 * is derived from it (`uploadIdOf`), so knowing an upload's id is not enough to extend, seal,
 * abort or abandon it.
 */
const uploadKey = z.string().regex(/^[A-Za-z0-9_-]{43}$/, "must be 43 base64url characters (32 bytes)");

/** The upload id of an upload: its key's SHA-256, base64url (43 characters, a subject token). */
export function uploadIdOf(key: string): string {
  return createHash("sha256").update(key).digest("base64url");
}

/** A create names its upload by the id and proves it holds the key: the id must be the key's digest. */
const idOfKey = { message: "is not the upload id of this upload key", path: ["uploadId"] };

/**
 * The NATS user that serves an upload's bytes: its uploader's own (`client`, `client-<name>`;
 * `anonymous` without credentials). Workers pull on that user's subjects, which only that user
 * may subscribe to; naming another user only leaves one's own upload unserved.
 */
const uploader = token;

export const CreateRequest = z
  .object({
    uploadId: token,
    uploadKey,
    uploader,
    path: remotePath,
    size: count,
    sha256,
    pieceSize: count,
    replicas: z.number().int(),
    /** The pieces' SHA-256 digests, 32 bytes each, in order. */
    pieceHashes: z.instanceof(Uint8Array).refine((hashes) => hashes.length <= 32 * MAX_PIECES, `must hold at most ${MAX_PIECES} digests`),
    /** Answer once the version is no longer pending, or after this long (a small file's put then needs no `wait`). */
    waitMs: z.number().int().nonnegative().max(30_000).optional(),
  })
  .refine((r) => uploadIdOf(r.uploadKey) === r.uploadId, idOfKey);
export type CreateRequest = z.infer<typeof CreateRequest>;

/** Most creates one `createMany` asks for, and most pieces they may hold in all (each create's plan comes back in the one reply). */
export const MAX_CREATES_PER_REQUEST = 64;
export const MAX_PIECES_PER_CREATE_MANY = 256;

/**
 * Several creates in one request (many small files at once, `put -r`): each is an ordinary
 * `create` request, checked and answered on its own (`CreateManyReply`), and they are decided
 * together. Only the envelope is checked here; a bad create is its own BAD_REQUEST.
 */
export const CreateManyRequest = z.object({ creates: z.array(z.unknown()).min(1).max(MAX_CREATES_PER_REQUEST) }).refine(
  (r) => r.creates.reduce<number>((pieces, c) => pieces + piecesDeclared(c), 0) <= MAX_PIECES_PER_CREATE_MANY,
  { message: `must hold at most ${MAX_PIECES_PER_CREATE_MANY} pieces in all`, path: ["creates"] },
);

/** The pieces a create declares (its `pieceHashes`, 32 bytes each), whatever else it holds. */
function piecesDeclared(create: unknown): number {
  const hashes = (create as { pieceHashes?: unknown } | null)?.pieceHashes;
  return hashes instanceof Uint8Array ? Math.ceil(hashes.length / 32) : 0;
}

/** One answer of a `createMany`, in the order of its creates: as `create` would have answered that create alone. */
export type CreateAnswer<T> = { ok: true; result: T } | { ok: false; code: string; message: string };

/** A streamed create (stdin): no size or hashes yet; the pieces come with `extend`, the size with `seal`. `uploadId` is `uploadIdOf(uploadKey)`. */
export const CreateStreamRequest = z
  .object({ uploadId: token, uploadKey, uploader, path: remotePath, streamed: z.literal(true), pieceSize: count, replicas: z.number().int() })
  .refine((r) => uploadIdOf(r.uploadKey) === r.uploadId, idOfKey);

/** Most pieces one `extend` plans, and one `wait` reports on. */
export const MAX_PIECES_PER_REQUEST = 256;

/**
 * A streamed upload's next pieces (named by its key), in order, each full but the last (`seal` follows a short
 * one). With no pieces it only says the uploader is still there (reading a slow stdin).
 */
export const ExtendRequest = z.object({
  uploadKey,
  pieces: z.array(z.object({ index: count, size: count, sha256 })).max(MAX_PIECES_PER_REQUEST),
});

/** A streamed upload's content (named by its key) is complete: its size and SHA-256. */
export const SealRequest = z.object({ uploadKey, size: count, sha256 });

/**
 * Answered when the upload's version has more stored copies than `stored`, or is no longer
 * pending, or after `waitMs`. With `pieces`, the answer says which of them hold all their
 * replicas (`complete`): a streamed upload frees those.
 */
export const WaitRequest = z.object({
  uploadId: token,
  stored: z.number().int().min(-1).max(Number.MAX_SAFE_INTEGER),
  waitMs: z.number().int().nonnegative().max(30_000).optional(),
  pieces: z.array(count).max(MAX_PIECES_PER_REQUEST).optional(),
});
/**
 * A client gave up on an upload (named by its key, on the subject of its id), said durably
 * (the abandon stream) for whichever master reads it first.
 */
export const AbandonNote = z.object({ uploadKey, reason: message });
/** A client gives up on an upload, named by its key: its id alone is not enough. */
export const AbortRequest = z.object({ uploadKey, reason: message });
const pageLimit = z.number().int().positive().max(10_000).optional();
export const LocateRequest = z.object({
  path: remotePath,
  version: z.number().int().positive().optional(),
  fromPiece: count.optional(),
  limit: pageLimit,
});
export const ListRequest = z.object({ prefix: remotePath.optional(), after: z.string().max(MAX_PATH_BYTES).optional(), limit: pageLimit });
export const StatRequest = z.object({ path: remotePath });
export const DeleteRequest = z.object({ path: remotePath, version: z.number().int().positive().optional() });
export const StateRequest = z.object({ full: z.boolean().optional() });
/** The retention policy to set: a field left out sets no limit of that kind (neither: keep every version). */
export const RetentionRequest = z.object({ keepVersions: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(), keepForMs: count.optional() });
export const StatusRequest = z.object({});
/** A consumer of the audit mirror for a reader, from this sequence on. */
export const ReaderRequest = z.object({ fromSeq: count.optional() });
/** The health of up to 2,000 pieces, by SHA-256. */
export const PiecesRequest = z.object({ sha256s: z.array(sha256).max(2_000) });

/** A worker stored (or failed to store) a piece of an upload it was assigned. */
export const Confirmation = z.object({
  workerId: token,
  fileId: token,
  version: z.number().int().positive(),
  piece: count,
  sha256,
  ok: z.boolean(),
  code: errorCode.optional(),
  message: message.optional(),
});
export type Confirmation = z.infer<typeof Confirmation>;

/** A worker made (or failed to make) a copy it was ordered. */
export const CopyConfirmation = z.object({
  kind: z.literal("copy"),
  workerId: token,
  sha256,
  ok: z.boolean(),
  code: errorCode.optional(),
  message: message.optional(),
});
export type CopyConfirmation = z.infer<typeof CopyConfirmation>;

/** A worker found its own copy of a piece bad (on a read, a check or a scrub) and dropped it. */
export const CorruptReport = z.object({ kind: z.literal("corrupt"), workerId: token, sha256, reason: message });
export type CorruptReport = z.infer<typeof CorruptReport>;

/** One thing a worker says to the master. */
export const WorkerReport = z.union([Confirmation.strict(), CopyConfirmation, CorruptReport]);
export type WorkerReport = z.infer<typeof WorkerReport>;

/** Most reports in one message: 256 of the longest fit well within 1 MiB. */
export const MAX_REPORTS = 256;
/** A worker's reports sent together (when small pieces come fast, one message says many). */
export const ReportBatch = z.object({ kind: z.literal("batch"), workerId: token, reports: z.array(WorkerReport).min(1).max(MAX_REPORTS) });
export type ReportBatch = z.infer<typeof ReportBatch>;

/** Everything a worker says on its confirmation subject: a batch of reports, or one report alone (as workers sent them before batches). */
export const WorkerMessage = z.union([ReportBatch, WorkerReport]);

/** Ask a worker to hash its copy of a piece again (someone read bad bytes from it). */
export const VerifyRequest = z.object({ sha256 });
export interface VerifyReply {
  /** Whether the worker held the piece when asked. */
  held: boolean;
  /** Whether its bytes hash right; a bad copy is dropped and reported at once. */
  ok: boolean;
}

/** Hash a page of a worker's pieces again (after `after`, in SHA-256 order): `dfs scrub`. */
export const ScrubRequest = z.object({ after: sha256.optional(), limit: z.number().int().positive().max(1_000).optional() });

/** The pieces a worker holds, a page at a time, in SHA-256 order. */
export const InventoryRequest = z.object({ after: sha256.optional(), limit: z.number().int().positive().max(10_000).optional() });
export interface InventoryPage {
  sha256s: string[];
  /** Pass as `after` for the next page; absent on the last one. */
  next?: string;
}

/** A worker's heartbeat, and its answer to `health`. */
export const Heartbeat = z.object({
  workerId: token,
  pieces: count,
  bytes: count,
  freeBytes: count.optional(),
  at: count,
  /** New at every start of the worker: a change means its store may not be what the log says (a wiped disk). */
  boot: token.optional(),
});
export type Heartbeat = z.infer<typeof Heartbeat>;
export type WorkerStatus = Required<Heartbeat>;

/** A pull or read asks for a byte range; the reply is the raw bytes. */
export const PullRequest = z.object({ offset: count, length: count });
export type PullRequest = z.infer<typeof PullRequest>;

/** Most frames one pull of many asks for, and the most bytes they may add up to (the reply fits one message). */
export const MAX_FRAMES_PER_PULL = 32;
export const MAX_PULLED_BYTES = 512 * 1024;
/**
 * A worker's pull of many small pieces from one uploader at once, sent on the pull subject of
 * the first (so only the process serving that upload answers). The reply is CBOR `{frames}`,
 * one entry for each frame asked, in order: its bytes, or `{code, message}` (NOT_FOUND: an
 * upload this process does not serve; pull that one alone).
 */
export const PullManyRequest = z
  .object({ frames: z.array(z.object({ uploadId: token, piece: count, offset: count, length: count })).min(1).max(MAX_FRAMES_PER_PULL) })
  .refine((r) => r.frames.reduce((bytes, f) => bytes + f.length, 0) <= MAX_PULLED_BYTES, { message: `must ask for at most ${MAX_PULLED_BYTES} bytes in all`, path: ["frames"] });
export type PullManyRequest = z.infer<typeof PullManyRequest>;
/** One frame of a pull of many: its bytes, or why not. */
export type PulledFrame = Uint8Array | { code: string; message: string };
export const ReadRequest = z.object({
  sha256,
  offset: count,
  length: count,
  /** If the piece is not here yet, wait up to this long for it to be stored (a minor waiting for its major). */
  waitMs: z.number().int().nonnegative().max(60_000).optional(),
});
export type ReadRequest = z.infer<typeof ReadRequest>;

/** Header that marks a binary reply as an error: its value is the code, the body the message. */
export const ERROR_HEADER = "Dfs-Error";

export function parse<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const where = issue?.path.length ? ` (${issue.path.join(".")})` : "";
  throw new DfsError(ErrorCodes.BAD_REQUEST, `bad ${what}${where}: ${issue?.message ?? "invalid"}`);
}

/** What one reply may carry: half of max_payload, the rest is room for the envelope and headers. */
export function replyBudgetFor(maxPayload: number): number {
  return Math.floor(maxPayload / 2);
}

/** Frames of a piece: each fits one NATS message with room to spare for headers. */
export function frameSizeFor(maxPayload: number): number {
  return Math.max(4096, Math.min(960 * 1024, maxPayload - 64 * 1024));
}
