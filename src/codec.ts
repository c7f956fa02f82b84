// CBOR on the wire and in the log. Events are plain maps; decoding checks the shape enough
// that a foreign message on an event subject is reported, not folded.
import { Encoder } from "cbor-x";
import { EVENT_TYPES, type DfsEvent } from "./events.js";

// Plain maps in, plain objects out: no records extension, so other languages can read the log.
const cbor = new Encoder({ useRecords: false, mapsAsObjects: true });

export function encode(value: unknown): Uint8Array {
  return cbor.encode(value);
}

export function decode(bytes: Uint8Array): unknown {
  return cbor.decode(bytes);
}

export class UndecodableEvent extends Error {}

export function decodeEvent(bytes: Uint8Array): DfsEvent {
  let value: unknown;
  try {
    value = cbor.decode(bytes);
  } catch (err) {
    throw new UndecodableEvent("event is not CBOR", { cause: err });
  }
  if (typeof value !== "object" || value === null) throw new UndecodableEvent("event is not a map");
  const { type, at } = value as { type?: unknown; at?: unknown };
  if (typeof type !== "string" || !(EVENT_TYPES as readonly string[]).includes(type)) {
    throw new UndecodableEvent(`unknown event type ${JSON.stringify(type)}`);
  }
  if (typeof at !== "number") throw new UndecodableEvent(`${type} has no "at"`);
  return value as DfsEvent;
}
