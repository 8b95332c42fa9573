import test from 'ava';
import { addOffset64, uint64Parts, WallClock, type Clock } from '../../src/capture/clock';

test('monotonic timestamps convert with the sampled offset and follow a clock step', (t) => {
  let mono = 1_000_000_000n;
  let wall = 1_700_000_000_000_000_000n;
  const clock: Clock = { monotonicNs: () => mono, wallNs: () => wall, monotonicMs: () => Number(mono) / 1e6 };
  const wc = new WallClock(clock, 10_000_000_000n);
  t.is(wc.toWallNs(1_000_000_500), 1_700_000_000_000_000_500n);
  // Wall clock stepped by +1 s (NTP): seen after the refresh period only.
  mono += 5_000_000_000n;
  wall += 5_000_000_000n + 1_000_000_000n;
  t.is(wc.toWallNs(Number(mono)), 1_700_000_005_000_000_000n);
  mono += 6_000_000_000n;
  wall += 6_000_000_000n;
  t.is(wc.toWallNs(Number(mono)), 1_700_000_012_000_000_000n);
});

test('toHrTime equals toWallNs split into seconds and nanoseconds, with the carry', (t) => {
  const clock: Clock = { monotonicNs: () => 5_000_000_000n, wallNs: () => 1_700_000_000_999_999_000n, monotonicMs: () => 5000 };
  const wc = new WallClock(clock);
  for (const mono of [0, 999, 1000, 4_999_999_999, 5_000_000_001, 123_456_789_012_345, 2 ** 53 - 1]) {
    const ns = wc.toWallNs(mono);
    t.deepEqual(wc.toHrTime(mono), [Number(ns / 1_000_000_000n), Number(ns % 1_000_000_000n)], String(mono));
  }
});

const halves = (ns: bigint) => ({ hi: Number(ns >> 32n), lo: Number(ns & 0xffffffffn) });

test('toWallNs64 equals toWallNs as uint64 halves, exactly, across the low-half carry', (t) => {
  // Offsets whose low half is near 2^32 make mono's low half carry into the high one.
  for (const wall of [1_700_000_000_999_999_000n, 1_764_000_004_294_967_295n, (1n << 62n) + 0xfffffff0n]) {
    const clock: Clock = { monotonicNs: () => 5_000_000_000n, wallNs: () => wall, monotonicMs: () => 5000 };
    const wc = new WallClock(clock);
    const out = { hi: -1, lo: -1 };
    for (const mono of [0, 1, 15, 16, 999, 4_294_967_295, 4_294_967_296, 5_000_000_001, 123_456_789_012_345, 2 ** 53 - 1, 2 ** 53, 2 ** 60]) {
      wc.toWallNs64(mono, out);
      t.deepEqual(out, halves(wc.toWallNs(mono)), `${wall} + ${mono}`);
    }
  }
});

test('addOffset64 wraps a negative offset in two\'s complement', (t) => {
  const out = { hi: 0, lo: 0 };
  addOffset64(10_000_000_000, uint64Parts(-1n), out);
  t.deepEqual(out, halves(9_999_999_999n));
  addOffset64(4_294_967_296, uint64Parts(-1n), out);
  t.deepEqual(out, halves(4_294_967_295n));
});
