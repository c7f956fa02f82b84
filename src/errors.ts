// Errors carry a stable code: messages may change, codes may not. Replies over NATS carry the
// code so the client rethrows the same error, and the CLI prints `code: message`.

export const ErrorCodes = {
  /** The request could not be decoded or lacks a field. */
  BAD_REQUEST: "BAD_REQUEST",
  /** A remote path is empty or too long, has empty, `.` or `..` segments, or control or bidi-override characters. */
  BAD_PATH: "BAD_PATH",
  /** No such file, or no such version of it. */
  NOT_FOUND: "NOT_FOUND",
  /** Fewer live workers than the replicas asked for. */
  NOT_ENOUGH_WORKERS: "NOT_ENOUGH_WORKERS",
  /** A piece's bytes do not match the SHA-256 they were declared with. */
  CHECKSUM_MISMATCH: "CHECKSUM_MISMATCH",
  /** The version was given up before it committed (a worker failed, or the client aborted). */
  UPLOAD_ABANDONED: "UPLOAD_ABANDONED",
  /** A worker could not write a piece to its store (disk full or failing). */
  STORAGE_FAILED: "STORAGE_FAILED",
  /** No replica of a piece could be read. */
  PIECE_UNAVAILABLE: "PIECE_UNAVAILABLE",
  /** A version read as of a past point of the log has a piece no live worker holds any more. */
  PIECES_DROPPED: "PIECES_DROPPED",
  /** The NATS server refused the connection: no credentials, or credentials it does not trust. */
  UNAUTHORIZED: "UNAUTHORIZED",
  /** The credentials in use do not allow this (a role doing another role's work). */
  FORBIDDEN: "FORBIDDEN",
  /** Nobody answers: no master, no worker, or no NATS server. */
  UNAVAILABLE: "UNAVAILABLE",
  /** Waited too long for an answer or for the commit. */
  TIMEOUT: "TIMEOUT",
  /** The caller stopped the operation (an AbortSignal; Ctrl-C or SIGTERM in the CLI). */
  INTERRUPTED: "INTERRUPTED",
  /** Some files of a put or get of many failed; each was reported on its own. */
  SOME_FILES_FAILED: "SOME_FILES_FAILED",
  /** A local file could not be read or written. */
  LOCAL_IO: "LOCAL_IO",
  /** One uploader already has as many uploads pending (or streams open) as the master allows: wait for some to finish. */
  TOO_MANY_UPLOADS: "TOO_MANY_UPLOADS",
  /** A data folder is in use by another process (a worker's store, a `dfs up`). */
  IN_USE: "IN_USE",
  /** nats-server is not installed. */
  NO_NATS_SERVER: "NO_NATS_SERVER",
  /** A bug: something that should not happen did. */
  INTERNAL: "INTERNAL",
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export class DfsError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DfsError";
    this.code = code;
  }
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && Object.prototype.hasOwnProperty.call(ErrorCodes, value);
}

/** A failure as a reply carries it: its code and its message, clipped so it always fits. */
export function codedFailure(err: unknown): { code: ErrorCode; message: string } {
  const coded = asDfsError(err);
  return { code: coded.code, message: clipText(coded.message) };
}

/** A failure a reply reported: its code when it is one of ours, else INTERNAL (a peer's bug). */
export function reportedFailure(code: unknown, message: string): DfsError {
  return new DfsError(isErrorCode(code) ? code : ErrorCodes.INTERNAL, message);
}

/** Any thrown value as a DfsError, keeping the code when it has one. */
export function asDfsError(err: unknown): DfsError {
  if (err instanceof DfsError) return err;
  const message = err instanceof Error ? err.message : String(err);
  // The NATS server refused a publish or subscribe: the credentials in use lack the right.
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e.name === "PermissionViolationError") {
      return new DfsError(ErrorCodes.FORBIDDEN, `${e.message} (credentials of another role, or for another --prefix?)`, { cause: err });
    }
    // nats.js gave up reconnecting (or the server refused it on the way back): nothing answers any more.
    if (e.name === "ClosedConnectionError") return new DfsError(ErrorCodes.UNAVAILABLE, `lost the NATS server: ${e.message}`, { cause: err });
  }
  return new DfsError(ErrorCodes.INTERNAL, message, { cause: err });
}

/**
 * A role (master, worker) lost something it cannot run without: hand the error to `onFatal`
 * (the CLI prints it and exits), or throw it when there is none.
 */
export function reportFatal(what: string, err: unknown, onFatal?: (err: DfsError) => void): void {
  const fatal = new DfsError(ErrorCodes.INTERNAL, `${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  if (onFatal) onFatal(fatal);
  else throw fatal;
}

/** The longest message a reply, a reason or a confirmation carries (characters). */
export const MAX_MESSAGE_LENGTH = 1_000;
const QUOTED_CHARS = 64;
// Bidirectional overrides and isolates: escaped when quoted, so a message cannot be made to read backwards.
const BIDI_CONTROL = /[\u202a-\u202e\u2066-\u2069]/g;

/** `text` cut to at most `max` characters (never in the middle of a surrogate pair), marked with "…" when cut. */
export function clipText(text: string, max = MAX_MESSAGE_LENGTH): string {
  if (text.length <= max) return text;
  const end = /[\ud800-\udbff]/.test(text[max - 2] ?? "") ? max - 2 : max - 1;
  return text.slice(0, end) + "…";
}

/** `1 master`, `2 masters`: a count in a message, singular or plural. */
export function counted(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

// C0 and C1 control characters and DEL, and the bidi controls: what may not reach a terminal as it is.
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/**
 * `text` with its control and bidi characters escaped (`\n`, `\u0007`, `\u202e`): a message naming
 * a local file as it is (`put -r` of a tree whose names hold a newline or an escape sequence)
 * still prints as one line and cannot drive the terminal.
 */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => (c < "\u0020" ? JSON.stringify(c).slice(1, -1) : `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`));
}

/**
 * User input as it may appear in a message: JSON-quoted (control characters escaped), bidi
 * controls escaped, and cut to 64 characters (with its length in bytes) when longer, so an
 * error never echoes unbounded input.
 */
export function quote(input: string): string {
  const shown = JSON.stringify(clipText(input, QUOTED_CHARS)).replace(BIDI_CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
  return input.length > QUOTED_CHARS ? `${shown} (${Buffer.byteLength(input)} bytes)` : shown;
}
