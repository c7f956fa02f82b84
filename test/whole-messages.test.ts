// nats.js's parser, as every connection of a dfs process runs it: a message spread over many
// socket reads (cut anywhere, headers or not) comes out byte for byte, gathered in one buffer
// of its size from the first read on instead of one that doubles.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { Kind, Parser, type ParserEvent } from "@nats-io/nats-core/internal";
import { gatherWholeMessages } from "../src/whole-messages.js";
import { seededRandom } from "./harness.js";

const test = suite("whole-messages");

gatherWholeMessages();

const encoder = new TextEncoder();

/** The protocol lines a server sends for a message, with headers (HMSG) or without (MSG). */
function wire(subject: string, payload: Uint8Array, headers: boolean): Uint8Array {
  const head = encoder.encode("NATS/1.0\r\nX-Frame: 1\r\n\r\n");
  const body = headers ? Buffer.concat([head, payload]) : Buffer.from(payload);
  const line = headers ? `HMSG ${subject} 1 _INBOX.r ${head.length} ${body.length}\r\n` : `MSG ${subject} 1 _INBOX.r ${body.length}\r\n`;
  return Buffer.concat([encoder.encode(line), body, encoder.encode("\r\n")]);
}

/** Feed `bytes` to a parser in reads of the given sizes; what it dispatched, and the capacity its gathering buffer had after each read. */
function parseInReads(bytes: Uint8Array, readSizes: () => number) {
  const events: ParserEvent[] = [];
  const parser = new Parser({ push: (e: ParserEvent) => events.push(e) });
  const capacities: number[] = [];
  for (let at = 0; at < bytes.length; ) {
    const n = Math.min(readSizes(), bytes.length - at);
    parser.parse(bytes.subarray(at, at + n));
    at += n;
    if (parser.msgBuf) capacities.push(parser.msgBuf.capacity);
  }
  return { events, capacities };
}

test("whole-messages - a long message cut into reads anywhere arrives whole, gathered in one buffer of its size", () => {
  const random = seededRandom(7);
  for (let round = 0; round < 40; round++) {
    const size = 1 + Math.floor(random() * 1_000_000);
    const payload = Buffer.alloc(size);
    for (let i = 0; i < size; i += 997) payload[i] = Math.floor(random() * 256);
    const headers = round % 2 === 1;
    const bytes = wire("dfs.pull.u.0", payload, headers);
    const readSize = 1 + Math.floor(random() * 70_000);
    const { events, capacities } = parseInReads(bytes, () => 1 + Math.floor(random() * readSize));
    const messages = events.filter((e) => e.kind === Kind.MSG);
    assert.is(messages.length, 1, `round ${round}: one message`);
    const data = messages[0]!.data!;
    const body = headers ? data.subarray(data.length - size) : data;
    assert.ok(Buffer.from(body).equals(payload), `round ${round}: ${size} bytes in reads of up to ${readSize}, the same bytes`);
    // Every read that ended inside the payload left it gathering in a buffer of the whole message.
    for (const capacity of capacities) assert.is(capacity, messages[0]!.msg!.size, `round ${round}: gathered in one buffer`);
  }
});

test("whole-messages - messages back to back in the same reads each arrive whole", () => {
  const random = seededRandom(11);
  const payloads = Array.from({ length: 30 }, (_, i) => Buffer.alloc(1 + Math.floor(random() * 200_000), i + 1));
  const bytes = Buffer.concat(payloads.map((p, i) => wire(`s.${i}`, p, i % 3 === 0)));
  const { events } = parseInReads(bytes, () => 1 + Math.floor(random() * 100_000));
  const messages = events.filter((e) => e.kind === Kind.MSG);
  assert.is(messages.length, payloads.length);
  messages.forEach((m, i) => {
    const data = m.data!;
    assert.ok(Buffer.from(data.subarray(data.length - payloads[i]!.length)).equals(payloads[i]!), `message ${i}`);
  });
});

test.run();
