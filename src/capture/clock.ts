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
  /** A cheap monotonic reading in milliseconds, for deciding when to resample. */
  monotonicMs(): number;
}

export const systemClock: Clock = {
  monotonicNs: () => process.hrtime.bigint(),
  monotonicMs: () => performance.now(),
  // timeOrigin + now() keeps sub-millisecond precision, unlike Date.now().
  wallNs: () => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6)),
};

/** Converts monotonic kernel timestamps to wall-clock time. */
export class WallClock {
  private offsetNs = 0n;
  /** The offset as whole seconds and the nanoseconds left, for number-only conversion. */
  private offsetSec = 0;
  private offsetRemNs = 0;
  private sampledAtMs = 0;
  private readonly refreshMs: number;

  constructor(
    private readonly clock: Clock = systemClock,
    refreshNs = 10_000_000_000n,
  ) {
    this.refreshMs = Number(refreshNs) / 1e6;
    this.resample();
  }

  /** Wall-clock nanoseconds for a monotonic timestamp. */
  toWallNs(monotonicNs: number): bigint {
    this.maybeResample();
    return BigInt(monotonicNs) + this.offsetNs;
  }

  /**
   * Wall-clock time as [seconds, nanoseconds] (OpenTelemetry's HrTime),
   * exactly, with number arithmetic only: the hot path of span building.
   */
  toHrTime(monotonicNs: number): [number, number] {
    this.maybeResample();
    // Exact: every intermediate is an integer below 2^53.
    const sec = Math.floor(monotonicNs / 1e9);
    let ns = monotonicNs - sec * 1e9 + this.offsetRemNs;
    let s = sec + this.offsetSec;
    if (ns >= 1e9) {
      ns -= 1e9;
      s++;
    }
    return [s, ns];
  }

  private maybeResample(): void {
    // A number read per call; the bigint clocks only when the period is over.
    if (this.clock.monotonicMs() - this.sampledAtMs >= this.refreshMs) this.resample();
  }

  private resample(): void {
    const before = this.clock.monotonicNs();
    const wall = this.clock.wallNs();
    const after = this.clock.monotonicNs();
    // The wall sample sits between the two monotonic reads: take the midpoint.
    const mid = (before + after) / 2n;
    this.offsetNs = wall - mid;
    this.offsetSec = Number(this.offsetNs / 1_000_000_000n);
    this.offsetRemNs = Number(this.offsetNs % 1_000_000_000n);
    this.sampledAtMs = this.clock.monotonicMs();
  }
}
