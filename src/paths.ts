import { DfsError, ErrorCodes } from "./errors.js";

// C0 and C1 control characters, and DEL.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * The canonical form of a remote path: NFC, one leading `/`, segments joined by `/`.
 * `a/b` and `/a/b` are the same file; empty, `.` and `..` segments and control characters are
 * refused rather than silently repaired.
 */
export function normalisePath(input: unknown): string {
  if (typeof input !== "string") throw new DfsError(ErrorCodes.BAD_PATH, "path must be a string");
  const path = input.normalize("NFC");
  if (CONTROL.test(path)) throw new DfsError(ErrorCodes.BAD_PATH, `path ${JSON.stringify(input)} contains a control character`);
  const body = path.startsWith("/") ? path.slice(1) : path;
  if (body === "") throw new DfsError(ErrorCodes.BAD_PATH, "path is empty");
  const segments = body.split("/");
  for (const segment of segments) {
    if (segment === "") throw new DfsError(ErrorCodes.BAD_PATH, `path ${JSON.stringify(input)} has an empty segment`);
    if (segment === "." || segment === "..") {
      throw new DfsError(ErrorCodes.BAD_PATH, `path ${JSON.stringify(input)} has a "${segment}" segment`);
    }
  }
  return "/" + segments.join("/");
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
