// Kernel timestamps are CLOCK_MONOTONIC (bpf_ktime_get_ns); exports need wall
// time. process.hrtime reads the same clock, so the offset between the two is
// sampled side by side and refreshed, following NTP slews without a syscall
// per event.

import { performance } from 'node:perf_hooks';

export interface Clock {
  /** CLOCK_MONOTONIC nanoseconds, the kernel's bpf_ktime_get_ns clock. */
  monotonicNs(): bigint;
  /** Wall-clock nanoseconds since the Unix epoch. */
  wallNs(): bigint;
}

export const systemClock: Clock = {
  monotonicNs: () => process.hrtime.bigint(),
  // timeOrigin + now() keeps sub-millisecond precision, unlike Date.now().
  wallNs: () => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6)),
};

/** Converts monotonic kernel timestamps to wall-clock time. */
export class WallClock {
  private offsetNs = 0n;
  private sampledAtNs = -1n;

  constructor(
    private readonly clock: Clock = systemClock,
    private readonly refreshNs = 10_000_000_000n,
  ) {
    this.resample();
  }

  /** Wall-clock nanoseconds for a monotonic timestamp. */
  toWallNs(monotonicNs: number): bigint {
    this.maybeResample();
    return BigInt(monotonicNs) + this.offsetNs;
  }

  private maybeResample(): void {
    // Checking hrtime per call is cheap next to decoding; refresh at most every refreshNs.
    if (this.clock.monotonicNs() - this.sampledAtNs >= this.refreshNs) this.resample();
  }

  private resample(): void {
    const before = this.clock.monotonicNs();
    const wall = this.clock.wallNs();
    const after = this.clock.monotonicNs();
    // The wall sample sits between the two monotonic reads: take the midpoint.
    const mid = (before + after) / 2n;
    this.offsetNs = wall - mid;
    this.sampledAtNs = after;
  }
}
