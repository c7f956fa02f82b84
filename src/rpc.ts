// Request-reply over core NATS with coded errors. Replies are CBOR `{ ok: true, result }` or
// `{ ok: false, code, message }`; binary replies (piece bytes) mark errors with a header.
import { PermissionViolationError, headers, type Msg, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { decode, encode } from "./codec.js";
import { DfsError, ErrorCodes, asDfsError, clipText, codedFailure, reportedFailure, type ErrorCode } from "./errors.js";
import { ERROR_HEADER } from "./protocol.js";

export interface ServeOptions {
  queue?: string;
  /** Called for failures that are the server's fault, not the caller's, and for replies that could not be sent. */
  onInternalError?: (err: unknown) => void;
}

function decodeRequest(msg: Msg): unknown {
  if (msg.data.length === 0) return {};
  try {
    return decode(msg.data);
  } catch {
    throw new DfsError(ErrorCodes.BAD_REQUEST, "request is not CBOR");
  }
}

/**
 * Answer every request on `subject` with `ok(result)` or, whatever went wrong (garbage in,
 * a refused request, a bug), with `failed(code and message)`: nothing goes unanswered that
 * can be answered. A reply that cannot be sent is reported, never thrown.
 */
function answer<T>(
  nc: NatsConnection,
  subject: string,
  handler: (request: unknown, msg: Msg) => Promise<T> | T,
  reply: Replies<T>,
  opts: ServeOptions,
): Subscription {
  const report = (err: unknown) => opts.onInternalError?.(err);
  // Publishing throws on a reply over max_payload or a closing connection.
  const sent = (send: () => void): boolean => {
    try {
      send();
      return true;
    } catch (err) {
      report(err);
      return false;
    }
  };
  const respond = async (msg: Msg) => {
    let result: T;
    try {
      result = await handler(decodeRequest(msg), msg);
    } catch (err) {
      const coded = asDfsError(err);
      if (coded.code === ErrorCodes.INTERNAL) report(err);
      if (msg.reply) sent(() => reply.failed(coded, msg));
      return;
    }
    if (!msg.reply || sent(() => reply.ok(result, msg))) return;
    // Most likely a reply larger than max_payload: say so rather than leave the caller waiting.
    sent(() => reply.failed(new DfsError(ErrorCodes.INTERNAL, "cannot send the reply (larger than max_payload, or the connection is closing)"), msg));
  };
  return nc.subscribe(subject, {
    queue: opts.queue,
    callback: (err, msg) => {
      // A subscription the server refused (these credentials may not serve `subject`) brings
      // nothing more: its callers' requests go unanswered, which is how they learn it.
      if (err) return report(err);
      // Only requests from a connection's own inbox are served. A JetStream consumer made to
      // push logged messages here (its replies go to $JS.ACK...) cannot act as a caller.
      if (!msg.reply?.startsWith(INBOX_PREFIX)) return;
      void respond(msg).catch(report);
    },
  });
}

/** Every reply subject a NATS client makes starts so: `_INBOX.` by default, `_INBOX_<PREFIX>_<user>.` with credentials. */
const INBOX_PREFIX = "_INBOX";

type Replies<T> = { ok: (result: T, msg: Msg) => void; failed: (err: DfsError, msg: Msg) => void };

/** CBOR replies: `{ ok: true, result }` or `{ ok: false, code, message }` (the message clipped, so it always fits). */
const cborReplies: Replies<unknown> = {
  ok: (result, msg) => msg.respond(encode({ ok: true, result })),
  failed: (err, msg) => msg.respond(encode({ ok: false, ...codedFailure(err) })),
};

/** Raw-byte replies (piece frames); an error is the message, marked by a header carrying the code. */
const byteReplies: Replies<Uint8Array> = {
  ok: (bytes, msg) => msg.respond(bytes),
  failed: (err, msg) => {
    const h = headers();
    h.set(ERROR_HEADER, err.code);
    msg.respond(new TextEncoder().encode(clipText(err.message)), { headers: h });
  },
};

export function serve(nc: NatsConnection, subject: string, handler: (request: unknown, msg: Msg) => unknown, opts: ServeOptions = {}): Subscription {
  return answer(nc, subject, handler, cborReplies, opts);
}

export function serveBytes(nc: NatsConnection, subject: string, handler: (request: unknown, msg: Msg) => Promise<Uint8Array>, opts: ServeOptions = {}): Subscription {
  return answer(nc, subject, handler, byteReplies, opts);
}

function transportError(err: unknown, subject: string): DfsError {
  const text = err instanceof Error ? err.message : String(err);
  if (err instanceof PermissionViolationError || (err instanceof Error && err.cause instanceof PermissionViolationError)) return new DfsError(ErrorCodes.FORBIDDEN, `these credentials may not publish to ${subject}`, { cause: err });
  if (/no responders|503/i.test(text)) return new DfsError(ErrorCodes.UNAVAILABLE, `nobody answers on ${subject}`, { cause: err });
  if (/timeout/i.test(text)) return new DfsError(ErrorCodes.TIMEOUT, `no answer on ${subject} in time`, { cause: err });
  return new DfsError(ErrorCodes.UNAVAILABLE, `request on ${subject} failed: ${text}`, { cause: err });
}

export async function call<T>(nc: NatsConnection, subject: string, request: unknown, timeoutMs = 10_000): Promise<T> {
  let msg: Msg;
  try {
    msg = await nc.request(subject, encode(request), { timeout: timeoutMs });
  } catch (err) {
    throw transportError(err, subject);
  }
  let reply: { ok?: unknown; result?: unknown; code?: unknown; message?: unknown };
  try {
    reply = decode(msg.data) as typeof reply;
  } catch (err) {
    throw new DfsError(ErrorCodes.INTERNAL, `undecodable reply on ${subject}`, { cause: err });
  }
  if (reply?.ok === true) return reply.result as T;
  throw reportedFailure(reply?.code, typeof reply?.message === "string" ? reply.message : `request on ${subject} failed`);
}

export async function callBytes(nc: NatsConnection, subject: string, request: unknown, timeoutMs = 10_000): Promise<Uint8Array> {
  let msg: Msg;
  try {
    msg = await nc.request(subject, encode(request), { timeout: timeoutMs });
  } catch (err) {
    throw transportError(err, subject);
  }
  const code = msg.headers?.get(ERROR_HEADER);
  if (code) throw reportedFailure(code, new TextDecoder().decode(msg.data));
  return msg.data;
}

/**
 * `call`, asked again while the answer is one of `retryOn` (for instance UNAVAILABLE while a
 * new leader takes over: nobody was there to receive the request), for up to `forMs`.
 */
export async function callRetrying<T>(
  nc: NatsConnection,
  subject: string,
  request: unknown,
  opts: { retryOn: readonly ErrorCode[]; forMs: number; timeoutMs?: number },
): Promise<T> {
  const deadline = Date.now() + opts.forMs;
  for (let wait = 100; ; wait = Math.min(1_000, wait * 2)) {
    try {
      return await call<T>(nc, subject, request, opts.timeoutMs);
    } catch (err) {
      const code = asDfsError(err).code;
      if (!opts.retryOn.includes(code) || Date.now() + wait > deadline) throw err;
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}
