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

const TWO_32 = 4294967296;

/** An unsigned 64-bit integer as its two 32-bit halves, each an exact number. */
export interface Uint64Parts {
  hi: number;
  lo: number;
}

/** The halves of `v` mod 2^64 (a negative offset in two's complement, so adding it wraps right). */
export function uint64Parts(v: bigint): Uint64Parts {
  const u = BigInt.asUintN(64, v);
  return { hi: Number(u >> 32n), lo: Number(u & 0xffffffffn) };
}

/**
 * `monoNs` + an offset given as uint64 halves, into `out` as uint64 halves,
 * exactly: no intermediate exceeds 2^53 (wall-clock ns do, by far). `monoNs`
 * is a non-negative integer.
 */
export function addOffset64(monoNs: number, offset: Uint64Parts, out: Uint64Parts): void {
  const hi = Math.floor(monoNs / TWO_32);
  const lo = monoNs - hi * TWO_32 + offset.lo;
  if (lo >= TWO_32) {
    out.lo = lo - TWO_32;
    out.hi = (hi + offset.hi + 1) >>> 0;
  } else {
    out.lo = lo;
    out.hi = (hi + offset.hi) >>> 0;
  }
}

/** Converts monotonic kernel timestamps to wall-clock time. */
export class WallClock {
  private offsetNs = 0n;
  /** The offset as whole seconds and the nanoseconds left, for number-only conversion. */
  private offsetSec = 0;
  private offsetRemNs = 0;
  /** The offset as uint64 halves, for OTLP's fixed64 times. */
  private offset64: Uint64Parts = { hi: 0, lo: 0 };
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

  /**
   * Wall-clock ns as the halves of a uint64, into `out`, exactly, with number
   * arithmetic only and no allocation: the span encoder's hot path.
   */
  toWallNs64(monotonicNs: number, out: Uint64Parts): void {
    this.maybeResample();
    addOffset64(monotonicNs, this.offset64, out);
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
    this.offset64 = uint64Parts(this.offsetNs);
    this.sampledAtMs = this.clock.monotonicMs();
  }
}
