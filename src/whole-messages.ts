// nats.js (3.4) gathers a message that spans several socket reads in a buffer that starts as
// a copy of the first read's tail and doubles as the rest comes: a frame of 960 KiB that comes
// in 64 KiB reads is copied about three times over and allocates about 3 MB of zeroed memory
// before it is whole, once on every frame a get's client or a put's worker receives (README,
// "What the profiles showed"). Its parser knows the message's size from the line before the
// payload, so here it is given, as soon as it starts gathering, a buffer of exactly that
// size: one allocation, not zeroed, and each read copied once.
import { DenoBuffer, Parser } from "@nats-io/nats-core/internal";

let installed = false;

/** Make every NATS connection of this process gather a long message in one buffer of its size. Idempotent. */
export function gatherWholeMessages(): void {
  if (installed) return;
  installed = true;
  const parse = Parser.prototype.parse;
  Parser.prototype.parse = function (this: Parser, buf: Uint8Array): void {
    parse.call(this, buf);
    // After a read that ended inside a payload, the parser holds its start in `msgBuf`.
    const started = this.msgBuf;
    const size = this.ma?.size;
    if (started === undefined || typeof size !== "number" || started.capacity >= size) return;
    const held = started.bytes({ copy: false });
    // Not zeroed: every byte of it is written by the parser before the message is handed on.
    const whole = Buffer.allocUnsafeSlow(size).buffer;
    new Uint8Array(whole).set(held);
    const gathering = new DenoBuffer(whole);
    gathering.truncate(held.length);
    this.msgBuf = gathering;
  };
}
