import test from 'ava';
import { WallClock, type Clock } from '../../src/capture/clock';

test('monotonic timestamps convert with the sampled offset and follow a clock step', (t) => {
  let mono = 1_000_000_000n;
  let wall = 1_700_000_000_000_000_000n;
  const clock: Clock = { monotonicNs: () => mono, wallNs: () => wall };
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
