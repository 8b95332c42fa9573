// Syscall latency histograms as the kernel keeps them (bpf/syscall_latency.bpf.h):
// cumulative per (tgid, syscall number, errno), read whole each interval and
// turned into interval deltas here, in one place. Pure: no I/O, no clock.
//
// Bucket i holds durations in (2^(i-1), 2^i] x 2^SYSLAT_FIRST_LOG2 ns, upper
// bounds inclusive as OpenTelemetry's explicit buckets: bucket 0 is
// everything up to 1.024 us, the last one everything over 2^36 ns (68.7 s).

import { SYSLAT_BUCKETS, SYSLAT_FIRST_LOG2, SyscallHistKeyLayout as K, SyscallHistLayout as H, SyscallHistRecordLayout as R } from './layout';

/** One kernel entry: totals since the entry was created. */
export interface SyscallHistogram {
  readonly tgid: number;
  readonly nr: number;
  /** errno of failed calls (positive); 0: successful calls. */
  readonly err: number;
  readonly count: bigint;
  readonly sumNs: bigint;
  readonly maxNs: bigint;
  /** SYSLAT_BUCKETS counts. */
  readonly buckets: readonly bigint[];
}

/** What one (tgid, syscall, errno) did during an interval. */
export interface SyscallDelta {
  readonly tgid: number;
  readonly nr: number;
  readonly err: number;
  readonly count: number;
  readonly sumNs: number;
  /**
   * The interval's longest call when the kernel's running maximum rose
   * during the interval (then it is this interval's); undefined when it did
   * not: the interval's maximum is then not known, only that it is at most
   * `maxSinceStartNs`.
   */
  readonly maxNs: number | undefined;
  /** The longest call since the entry was created. */
  readonly maxSinceStartNs: number;
  /** SYSLAT_BUCKETS counts, this interval only. */
  readonly buckets: readonly number[];
}

/** Upper bounds of the finite buckets, in ns: 2^10 .. 2^36. The last bucket has none. */
export const SYSLAT_BOUNDS_NS: readonly number[] = Array.from({ length: SYSLAT_BUCKETS - 1 }, (_, i) => 2 ** (SYSLAT_FIRST_LOG2 + i));

/**
 * The same bounds in seconds, as OpenTelemetry explicit bucket boundaries.
 * Exact in the sense that matters: for every whole number of ns d,
 * d <= 2^k  iff  d / 1e9 <= 2^k / 1e9  in doubles (division by 1e9 is
 * correctly rounded and monotonic, and a whole d > 2^(k-1) is too far from
 * 2^(k-1) to round onto it); test/capture/syscall-histograms.test.ts checks it.
 */
export const SYSLAT_BOUNDS_SECONDS: readonly number[] = SYSLAT_BOUNDS_NS.map((ns) => ns / 1e9);

/** The bucket the kernel puts a duration of `ns` in (for tests and fakes). */
export function bucketOf(ns: number): number {
  for (let i = 0; i < SYSLAT_BOUNDS_NS.length; i++) if (ns <= SYSLAT_BOUNDS_NS[i]!) return i;
  return SYSLAT_BUCKETS - 1;
}

/** Decodes a readSyscallHistograms() buffer. Throws on a length that is not whole records. */
export function decodeSyscallHistograms(buf: Buffer): SyscallHistogram[] {
  if (buf.length % R.size !== 0) throw new Error(`syscall histogram buffer of ${buf.length} bytes is not whole records of ${R.size}`);
  const out: SyscallHistogram[] = [];
  for (let off = 0; off < buf.length; off += R.size) {
    const k = off + R.key;
    const h = off + R.hist;
    const buckets: bigint[] = new Array<bigint>(SYSLAT_BUCKETS);
    let count = 0n;
    for (let i = 0; i < SYSLAT_BUCKETS; i++) count += buckets[i] = buf.readBigUInt64LE(h + H.buckets + 8 * i);
    out.push({
      tgid: buf.readUInt32LE(k + K.tgid),
      nr: buf.readUInt32LE(k + K.nr),
      err: buf.readUInt32LE(k + K.err),
      // The kernel keeps no count: it is the sum of the buckets.
      count,
      sumNs: buf.readBigUInt64LE(h + H.sum_ns),
      maxNs: buf.readBigUInt64LE(h + H.max_ns),
      buckets,
    });
  }
  return out;
}

/** Keys as the native deleteSyscallHistograms() takes them: struct syscall_hist_key, back to back. */
export function encodeSyscallHistKeys(keys: readonly { tgid: number; nr: number; err: number }[]): Buffer {
  const buf = Buffer.alloc(keys.length * K.size);
  keys.forEach((key, i) => {
    buf.writeUInt32LE(key.tgid, i * K.size + K.tgid);
    buf.writeUInt32LE(key.nr, i * K.size + K.nr);
    buf.writeUInt32LE(key.err, i * K.size + K.err);
  });
  return buf;
}

function keyOf(h: { tgid: number; nr: number; err: number }): string {
  return `${h.tgid}:${h.nr}:${h.err}`;
}

/**
 * Turns successive cumulative readings into interval deltas. Keeps the last
 * reading of each key; a key whose entry was deleted (forget) starts from
 * zero when it reappears. Totals are diffed as bigints (a busy key's ns sum
 * outgrows 2^53 within hours), deltas are numbers.
 */
export class SyscallHistogramDiffer {
  private readonly last = new Map<string, SyscallHistogram>();
  /** Readings that went backwards (an entry recreated behind our back): taken as new. */
  resets = 0;

  /** Deltas since the previous reading, for `current` entries that moved. */
  diff(current: readonly SyscallHistogram[]): SyscallDelta[] {
    const out: SyscallDelta[] = [];
    for (const h of current) {
      const key = keyOf(h);
      let prev = this.last.get(key);
      this.last.set(key, h);
      if (prev !== undefined && (h.count < prev.count || h.sumNs < prev.sumNs)) {
        this.resets++;
        prev = undefined;
      }
      const count = h.count - (prev?.count ?? 0n);
      if (count === 0n) continue;
      const buckets = h.buckets.map((b, i) => Number(b - (prev?.buckets[i] ?? 0n)));
      const rose = prev === undefined || h.maxNs > prev.maxNs;
      out.push({
        tgid: h.tgid,
        nr: h.nr,
        err: h.err,
        count: Number(count),
        sumNs: Number(h.sumNs - (prev?.sumNs ?? 0n)),
        maxNs: rose ? Number(h.maxNs) : undefined,
        maxSinceStartNs: Number(h.maxNs),
        buckets,
      });
    }
    return out;
  }

  /** Forgets one key (its kernel entry was deleted). */
  forget(key: { tgid: number; nr: number; err: number }): void {
    this.last.delete(keyOf(key));
  }

  get size(): number {
    return this.last.size;
  }
}

/**
 * A percentile from bucket counts, as the bucket's upper bound in ns: the
 * smallest bound with at least `p` of the calls at or under it. Undefined
 * with no calls, and for the last bucket (no upper bound): then only
 * "over 2^36 ns" is known.
 */
export function percentileUpperBoundNs(buckets: readonly number[], p: number): number | undefined {
  let total = 0;
  for (const c of buckets) total += c;
  if (total === 0) return undefined;
  const rank = Math.ceil(p * total);
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    seen += buckets[i]!;
    if (seen >= rank && seen > 0) return SYSLAT_BOUNDS_NS[i];
  }
  return undefined;
}
