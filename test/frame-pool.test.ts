// The worker's pool of frame buffers: copies of big frames in buffers used over and over.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { FramePool } from "../workers/frame-pool.js";

const test = suite("frame pool");

test("frame pool - a copy holds the frame's bytes, and a buffer given back is the next copy's", () => {
  const pool = new FramePool(8, 2);
  const first = pool.copy(Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]));
  assert.equal([...first], [1, 2, 3, 4, 5, 6, 7, 8]);
  pool.give(first);
  const second = pool.copy(Uint8Array.from([9, 9, 9, 9, 9]));
  assert.equal([...second], [9, 9, 9, 9, 9]);
  assert.is(second.buffer, first.buffer);
  // Not given back: the next copy has a buffer of its own.
  assert.is.not(pool.copy(Uint8Array.from([1, 1, 1, 1])).buffer, second.buffer);
});

test("frame pool - takes frames of half a frame or more; keeps at most its count; never a buffer it did not make, nor one twice", () => {
  const pool = new FramePool(8, 1);
  assert.equal([3, 4, 8, 9].map((length) => pool.takes(length)), [false, true, true, false]);
  const a = pool.copy(new Uint8Array(8));
  const b = pool.copy(new Uint8Array(8));
  pool.give(a);
  pool.give(a);
  pool.give(b); // beyond the one kept: left to the collector
  pool.give(new Uint8Array(8)); // not the pool's
  assert.is(pool.copy(new Uint8Array(4)).buffer, a.buffer);
  const next = pool.copy(new Uint8Array(4));
  assert.is.not(next.buffer, a.buffer);
  assert.is.not(next.buffer, b.buffer);
});

test.run();
