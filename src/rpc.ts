// Request-reply over core NATS with coded errors. Replies are CBOR `{ ok: true, result }` or
// `{ ok: false, code, message }`; binary replies (piece bytes) mark errors with a header.
import { headers, type Msg, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { decode, encode } from "./codec.js";
import { DfsError, ErrorCodes, asDfsError, isErrorCode } from "./errors.js";
import { ERROR_HEADER } from "./protocol.js";

export interface ServeOptions {
  queue?: string;
  /** Called for failures that are the server's fault, not the caller's. */
  onInternalError?: (err: unknown) => void;
}

function errorReply(err: DfsError): Uint8Array {
  return encode({ ok: false, code: err.code, message: err.message });
}

function decodeRequest(msg: Msg): unknown {
  if (msg.data.length === 0) return {};
  try {
    return decode(msg.data);
  } catch {
    throw new DfsError(ErrorCodes.BAD_REQUEST, "request is not CBOR");
  }
}

/** Answer CBOR requests on `subject`; every request gets a reply, whatever it held. */
export function serve(
  nc: NatsConnection,
  subject: string,
  handler: (request: unknown, msg: Msg) => Promise<unknown> | unknown,
  opts: ServeOptions = {},
): Subscription {
  return nc.subscribe(subject, {
    queue: opts.queue,
    callback: (_err, msg) => {
      void (async () => {
        let reply: Uint8Array;
        try {
          reply = encode({ ok: true, result: await handler(decodeRequest(msg), msg) });
        } catch (err) {
          const coded = asDfsError(err);
          if (coded.code === ErrorCodes.INTERNAL) opts.onInternalError?.(err);
          reply = errorReply(coded);
        }
        if (msg.reply) msg.respond(reply);
      })();
    },
  });
}

/** Answer requests whose reply is raw bytes (piece frames). */
export function serveBytes(
  nc: NatsConnection,
  subject: string,
  handler: (request: unknown, msg: Msg) => Promise<Uint8Array>,
  opts: ServeOptions = {},
): Subscription {
  return nc.subscribe(subject, {
    queue: opts.queue,
    callback: (_err, msg) => {
      void (async () => {
        try {
          const bytes = await handler(decodeRequest(msg), msg);
          if (msg.reply) msg.respond(bytes);
        } catch (err) {
          const coded = asDfsError(err);
          if (coded.code === ErrorCodes.INTERNAL) opts.onInternalError?.(err);
          const h = headers();
          h.set(ERROR_HEADER, coded.code);
          if (msg.reply) msg.respond(new TextEncoder().encode(coded.message), { headers: h });
        }
      })();
    },
  });
}

function transportError(err: unknown, subject: string): DfsError {
  const text = err instanceof Error ? err.message : String(err);
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
  const code = isErrorCode(reply?.code) ? reply.code : ErrorCodes.INTERNAL;
  throw new DfsError(code, typeof reply?.message === "string" ? reply.message : `request on ${subject} failed`);
}

export async function callBytes(nc: NatsConnection, subject: string, request: unknown, timeoutMs = 10_000): Promise<Uint8Array> {
  let msg: Msg;
  try {
    msg = await nc.request(subject, encode(request), { timeout: timeoutMs });
  } catch (err) {
    throw transportError(err, subject);
  }
  const code = msg.headers?.get(ERROR_HEADER);
  if (code) throw new DfsError(isErrorCode(code) ? code : ErrorCodes.INTERNAL, new TextDecoder().decode(msg.data));
  return msg.data;
}
