// Points in the log as users write them: a sequence, an ISO 8601 time, or how long ago.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { describePoint, isFrom, isPast, parseLogPoint } from "../src/log-point.js";
import { errorCode } from "./harness.js";

const test = suite("log points");
const NOW = Date.parse("2026-11-27T12:00:00Z");

test("a positive whole number is a sequence", () => {
  assert.equal(parseLogPoint("42", NOW), { seq: 42 });
  assert.equal(parseLogPoint(" 7 ", NOW), { seq: 7 });
});

test("90s, 10m, 2h and 3d are that long before now", () => {
  assert.equal(parseLogPoint("90s", NOW), { time: NOW - 90_000 });
  assert.equal(parseLogPoint("10m", NOW), { time: NOW - 600_000 });
  assert.equal(parseLogPoint("2h", NOW), { time: NOW - 7_200_000 });
  assert.equal(parseLogPoint("3d", NOW), { time: NOW - 3 * 86_400_000 });
  assert.equal(parseLogPoint("0s", NOW), { time: NOW });
});

test("ISO 8601 times, with a T or a space, with or without seconds and offsets", () => {
  assert.equal(parseLogPoint("2026-11-27T10:00:00Z", NOW), { time: Date.parse("2026-11-27T10:00:00Z") });
  assert.equal(parseLogPoint("2026-11-27 10:00:05.250Z", NOW), { time: Date.parse("2026-11-27T10:00:05.250Z") });
  assert.equal(parseLogPoint("2026-11-27T11:00+01:00", NOW), { time: Date.parse("2026-11-27T10:00:00Z") });
  assert.equal(parseLogPoint("2026-11-27", NOW), { time: Date.parse("2026-11-27T00:00:00Z") }, "a date alone is UTC midnight");
  assert.equal(parseLogPoint("2026-11-27T10:00", NOW), { time: new Date(2026, 10, 27, 10, 0).getTime() }, "no offset: local time");
});

test("anything else is BAD_REQUEST", async () => {
  for (const text of ["", "0", "-3", "1.5", "10x", "m", "yesterday", "2026-02-30", "2026-13-01", "2026-11-27T25:00Z", "2026-11-27T10:60Z", "November 27, 2026", "99999999999999999999", "9999999999999999d"]) {
    assert.is(await errorCode(async () => parseLogPoint(text, NOW)), "BAD_REQUEST", JSON.stringify(text));
  }
});

test("a message is past a point after it, and from a point at or after it", () => {
  const message = { seq: 5, time: new Date(NOW) };
  assert.is(isPast({ seq: 4 }, message), true);
  assert.is(isPast({ seq: 5 }, message), false);
  assert.is(isPast({ time: NOW }, message), false);
  assert.is(isPast({ time: NOW - 1 }, message), true);
  assert.is(isFrom({ seq: 5 }, message), true);
  assert.is(isFrom({ seq: 6 }, message), false);
  assert.is(isFrom({ time: NOW }, message), true);
  assert.is(isFrom({ time: NOW + 1 }, message), false);
  assert.is(describePoint({ seq: 5 }), "sequence 5");
  assert.is(describePoint({ time: NOW }), "2026-11-27T12:00:00.000Z");
});

test.run();
