import { DfsError, ErrorCodes, quote } from "./errors.js";

/** The longest canonical path, in UTF-8 bytes (as NFC, with its leading `/`). */
export const MAX_PATH_BYTES = 4_096;
/** The longest segment of a path, in UTF-8 bytes. */
export const MAX_SEGMENT_BYTES = 255;

// C0 and C1 control characters, and DEL.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
// Bidirectional overrides and isolates: they would let a name display as another one.
const BIDI_CONTROL = /[\u202a-\u202e\u2066-\u2069]/;

function refuse(message: string): never {
  throw new DfsError(ErrorCodes.BAD_PATH, message);
}

/**
 * The canonical form of a remote path: NFC, one leading `/`, segments joined by `/`.
 * `a/b` and `/a/b` are the same file; empty, `.` and `..` segments, control and bidi-override
 * characters, and paths or segments over their byte limits are refused rather than silently repaired.
 */
export function normalisePath(input: unknown): string {
  if (typeof input !== "string") refuse("path must be a string");
  // NFC shrinks UTF-8 by far less than 4 times: anything this long cannot fit, so don't normalise it.
  if (input.length > 4 * MAX_PATH_BYTES) refuse(`path ${quote(input)} is longer than ${MAX_PATH_BYTES} bytes`);
  const path = input.normalize("NFC");
  if (CONTROL.test(path)) refuse(`path ${quote(input)} contains a control character`);
  if (BIDI_CONTROL.test(path)) refuse(`path ${quote(input)} contains a bidirectional override or isolate character`);
  const body = path.startsWith("/") ? path.slice(1) : path;
  if (body === "") refuse("path is empty");
  if (Buffer.byteLength(body) + 1 > MAX_PATH_BYTES) refuse(`path ${quote(input)} is longer than ${MAX_PATH_BYTES} bytes`);
  const segments = body.split("/");
  for (const segment of segments) {
    if (segment === "") refuse(`path ${quote(input)} has an empty segment`);
    if (segment === "." || segment === "..") refuse(`path ${quote(input)} has a "${segment}" segment`);
    if (Buffer.byteLength(segment) > MAX_SEGMENT_BYTES) refuse(`path ${quote(input)} has a segment longer than ${MAX_SEGMENT_BYTES} bytes`);
  }
  return "/" + segments.join("/");
}

// A path of printable ASCII only: NFC already, and its bytes are its characters.
const PLAIN_CANONICAL_PATH = /^(?:\/(?!\.\.?(?:\/|$))[\x20-\x2e\x30-\x7e]{1,255})+$/;

/** Whether `path` is a canonical path as it is (what `normalisePath` returns it as). Never throws. */
export function isCanonicalPath(path: string): boolean {
  // Most paths are plain ASCII: told apart without normalising (as often as every event of a log is checked).
  if (path.length <= MAX_PATH_BYTES && PLAIN_CANONICAL_PATH.test(path)) return true;
  try {
    return normalisePath(path) === path;
  } catch {
    return false;
  }
}

/** A listing prefix: like a path, but empty or `/` means everything, and `/a/` means `/a`. */
export function normalisePrefix(input: unknown): string {
  if (input === undefined || input === "" || input === "/") return "/";
  return normalisePath(typeof input === "string" && input.length > 1 && input.endsWith("/") ? input.slice(0, -1) : input);
}

/** Whether `path` is `prefix` itself or lies below it. */
export function isUnder(path: string, prefix: string): boolean {
  return prefix === "/" || path === prefix || path.startsWith(prefix + "/");
}

/** The last segment of a canonical path. */
export function baseName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}
