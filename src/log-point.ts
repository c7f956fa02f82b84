// Points in the log, as users name them: a sequence, an ISO 8601 time, or a time relative to
// now (`90s`, `10m`, `2h`, `3d` ago). Readers fold the log up to a point (`--at`, `--until`)
// or show events from one (`--since`). Times are the server's timestamps of the logged
// messages (what `dfs tail` shows), never the events' own `at`: every message has one, forged
// or not. Pure: `now` comes in.
import { DfsError, ErrorCodes, quote } from "./errors.js";

/** A sequence of the log, or a moment (ms since epoch). */
export type LogPoint = { readonly seq: number } | { readonly time: number };

const RELATIVE_UNITS_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
/** `2026-11-27`, `2026-11-27T10:00`, `2026-11-27 10:00:05.250Z`, `2026-11-27T10:00+01:00`... */
const ISO_8601 = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

function badPoint(text: string): DfsError {
  return new DfsError(ErrorCodes.BAD_REQUEST, `not a point in the log: ${quote(text)} (a sequence such as 42, a time such as 2026-11-27T10:00:00Z, or how long ago: 90s, 10m, 2h, 3d)`);
}

/** `90s`, `10m`, `2h`, `3d` in ms; undefined when `text` is not such a duration. */
export function durationMs(text: string): number | undefined {
  const match = /^(\d+)([smhd])$/.exec(text.trim());
  return match ? Number(match[1]) * RELATIVE_UNITS_MS[match[2]!]! : undefined;
}

/**
 * `text` as a point: a positive whole number is a sequence; `<n>s|m|h|d` is that long before
 * `now`; otherwise an ISO 8601 date or date-time (without an offset, local time; a date alone,
 * UTC midnight, as JavaScript reads them). Anything else is BAD_REQUEST.
 */
export function parseLogPoint(text: string, now: number = Date.now()): LogPoint {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) {
    const seq = Number(trimmed);
    if (!Number.isSafeInteger(seq) || seq < 1) throw badPoint(text);
    return { seq };
  }
  const ago = durationMs(trimmed);
  if (ago !== undefined) {
    if (!Number.isSafeInteger(ago)) throw badPoint(text);
    return { time: now - ago };
  }
  const iso = ISO_8601.exec(trimmed);
  if (!iso) throw badPoint(text);
  const [, year, month, day, hour = "0", minute = "0", second = "0"] = iso.map((part) => part ?? undefined);
  // Date.parse rolls 2026-02-30 over to March: a day or hour that does not exist is refused.
  const fields = Date.UTC(Number(year), Number(month) - 1, Number(day), Number(hour), Number(minute), Number(second));
  const check = new Date(fields);
  const exists = check.getUTCDate() === Number(day) && check.getUTCMonth() === Number(month) - 1 && check.getUTCHours() === Number(hour) && check.getUTCMinutes() === Number(minute);
  const time = Date.parse(trimmed.replace(" ", "T"));
  if (!exists || Number.isNaN(time)) throw badPoint(text);
  return { time };
}

/** Whether a logged message (its sequence and server time) comes after the point. */
export function isPast(point: LogPoint, message: { seq: number; time: Date }): boolean {
  return "seq" in point ? message.seq > point.seq : message.time.getTime() > point.time;
}

/** Whether a logged message is at or after the point (a time: stamped at or after it). */
export function isFrom(point: LogPoint, message: { seq: number; time: Date }): boolean {
  return "seq" in point ? message.seq >= point.seq : message.time.getTime() >= point.time;
}

/** The point as users wrote it: `seq 42`, or the time in ISO 8601 (UTC). */
export function describePoint(point: LogPoint): string {
  return "seq" in point ? `sequence ${point.seq}` : new Date(point.time).toISOString();
}
