// CBOR on the wire and in the log. Events are plain maps, checked against their schema when
// decoded, so a foreign or forged message on an event subject is reported, never folded.
import { Encoder, addExtension } from "cbor-x";
import { parseEvent, type DfsEvent } from "./events.js";

// Big integers (tags 2 and 3) cost time that grows with the square of their length to turn
// into BigInts: one 128 KB message froze a process for seconds. Nothing dfs sends uses them,
// so they are refused before any conversion.
class RefusedBigInteger {}
for (const tag of [2, 3]) {
  addExtension({
    Class: RefusedBigInteger,
    tag,
    encode: () => {
      throw new Error("dfs does not send CBOR big integers");
    },
    decode: () => {
      throw new Error("CBOR big integers are refused");
    },
  });
}

// Plain maps in, plain objects out: no records extension, so other languages can read the log.
const cbor = new Encoder({ useRecords: false, mapsAsObjects: true });

export function encode(value: unknown): Uint8Array {
  return cbor.encode(value);
}

export function decode(bytes: Uint8Array): unknown {
  return cbor.decode(bytes);
}

/** What a logged message holds: the CBOR value (if any), and the event or why it is not one. */
export type DecodedEvent = { value: unknown; event: DfsEvent; rejected?: undefined } | { value: unknown; event?: undefined; rejected: string };

/** Decode and check an event against its schema. Never throws: a failure is a reason. */
export function decodeEvent(bytes: Uint8Array): DecodedEvent {
  let value: unknown;
  try {
    value = cbor.decode(bytes);
  } catch {
    return { value: undefined, rejected: "event is not CBOR" };
  }
  const parsed = parseEvent(value);
  return "event" in parsed ? { value, event: parsed.event } : { value, rejected: parsed.rejected };
}
