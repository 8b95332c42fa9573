// When the agent gives memory back after a burst of connections (issue 12,
// item 6): the decision only, on an injected clock. What a release gives back
// is measured by bench/capacity.ts (idle phase), not asserted here.

import test from 'ava';
import { BurstEnd, StartupSettle, type MemoryReleasePolicy, type StartupSettlePolicy } from '../../src/agent/memory-release';

const policy: MemoryReleasePolicy = { fraction: 0.25, minDrop: 1000, minIntervalMs: 60_000, followUpMs: 5000 };

/** Feeds counts one a second from `startMs`; returns the times a release was asked for. */
function run(burst: BurstEnd, counts: readonly number[], startMs = 0): number[] {
  return counts.flatMap((n, i) => (burst.observe(n, startMs + i * 1000) ? [startMs + i * 1000] : []));
}

test('a drop to a quarter of the peak releases at once, and once more followUpMs later', (t) => {
  const burst = new BurstEnd(policy);
  const counts = [0, 5000, 10_000, 10_000, 6000, 2600, 2500, ...Array(20).fill(0)];
  t.deepEqual(run(burst, counts), [6000, 11_000]);
  t.is(burst.releases, 2);
});

test('no release while the count stays above a quarter of its peak', (t) => {
  const burst = new BurstEnd(policy);
  t.deepEqual(run(burst, [10_000, 8000, 5000, 2501, 2600, 3000, 2501]), []);
});

test('a small table never releases, however far it falls', (t) => {
  const burst = new BurstEnd(policy);
  t.deepEqual(run(burst, [0, 999, 0, 999, 0]), []);
  t.deepEqual(run(new BurstEnd(policy), [1000, 0]), [1000]);
});

test('at most one release (with its follow-up) a minute, however many bursts', (t) => {
  const burst = new BurstEnd(policy);
  const bursts = Array.from({ length: 120 }, (_, i) => (i % 2 === 0 ? 4000 : 0));
  t.deepEqual(run(burst, bursts), [1000, 6000, 61_000, 66_000]);
});

test('the peak counts from the last release: a burst that ends slowly releases again a minute later', (t) => {
  const burst = new BurstEnd(policy);
  // 10 000 -> 2000 (release), then 2000 -> 0 (a quarter of 2000, 2000 fewer): again after the minute.
  const counts = [10_000, 2000, ...Array(30).fill(2000), ...Array(40).fill(0)];
  t.deepEqual(run(burst, counts), [1000, 6000, 61_000, 66_000]);
});

test('the clock is monotonic time in ms: the first release may come at once, whenever the agent started', (t) => {
  const burst = new BurstEnd(policy);
  t.deepEqual(run(burst, [5000, 0], 10), [1010]);
});

const settle: StartupSettlePolicy = { settleMs: 3000, quietBatches: 10, maxWaitMs: 60_000 };

/** Feeds batch counters (cumulative) one a second from `startMs`; returns the times a release was asked for. */
function runSettle(s: StartupSettle, batches: readonly number[], startMs = 0): number[] {
  return batches.flatMap((n, i) => (s.observe(n, startMs + i * 1000) ? [startMs + i * 1000] : []));
}

test('start-up: one release settleMs after the first tick when the agent is quiet, then never again', (t) => {
  const s = new StartupSettle(settle);
  t.deepEqual(runSettle(s, [0, 2, 4, 5, 5, 6, 6, 7], 500), [3500]);
  t.false(s.pending);
});

test('start-up: a busy agent waits for a quiet tick, and stops waiting after maxWaitMs', (t) => {
  // 50 batches a second until 6 s, then quiet: released at the first quiet tick.
  const busyThenQuiet = [0, 50, 100, 150, 200, 250, 300, 301, 302];
  t.deepEqual(runSettle(new StartupSettle(settle), busyThenQuiet), [7000]);
  // Busy past maxWaitMs: never (what it holds, it uses).
  const busy = Array.from({ length: 70 }, (_, i) => (i < 62 ? i * 50 : 3050));
  const s = new StartupSettle(settle);
  t.deepEqual(runSettle(s, busy), []);
  t.false(s.pending);
});

test('start-up: a release for a burst before it stands for it', (t) => {
  const s = new StartupSettle(settle);
  t.deepEqual(runSettle(s, [0, 0]), []);
  s.released();
  t.deepEqual(runSettle(s, [0, 0, 0, 0, 0], 2000), []);
});
