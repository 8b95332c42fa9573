import test from 'ava';
import { SYSLAT_BUCKETS, SyscallHistKeyLayout as K, SyscallHistLayout as H, SyscallHistRecordLayout as R } from '../../src/capture/layout';
import {
  bucketOf,
  decodeSyscallHistograms,
  encodeSyscallHistKeys,
  percentileUpperBoundNs,
  SYSLAT_BOUNDS_NS,
  SYSLAT_BOUNDS_SECONDS,
  SyscallHistogramDiffer,
  type SyscallHistogram,
} from '../../src/capture/syscall-histograms';

/** A histogram as the kernel would hold it after calls of these durations (ns). */
function hist(tgid: number, nr: number, err: number, durations: number[]): SyscallHistogram {
  const buckets = new Array<bigint>(SYSLAT_BUCKETS).fill(0n);
  for (const d of durations) buckets[bucketOf(d)]!++;
  return {
    tgid,
    nr,
    err,
    count: BigInt(durations.length),
    sumNs: BigInt(durations.reduce((a, b) => a + b, 0)),
    maxNs: BigInt(Math.max(0, ...durations)),
    buckets,
  };
}

function record(h: SyscallHistogram): Buffer {
  const b = Buffer.alloc(R.size, 0xee); // padding is not read
  b.writeUInt32LE(h.tgid, R.key + K.tgid);
  b.writeUInt32LE(h.nr, R.key + K.nr);
  b.writeUInt32LE(h.err, R.key + K.err);
  b.writeBigUInt64LE(h.sumNs, R.hist + H.sum_ns);
  b.writeBigUInt64LE(h.maxNs, R.hist + H.max_ns);
  h.buckets.forEach((c, i) => b.writeBigUInt64LE(c, R.hist + H.buckets + 8 * i));
  return b;
}

test('bounds: 27 powers of two from 2^10 to 2^36 ns, and the same in seconds', (t) => {
  t.is(SYSLAT_BOUNDS_NS.length, SYSLAT_BUCKETS - 1);
  t.is(SYSLAT_BOUNDS_NS[0], 1024);
  t.is(SYSLAT_BOUNDS_NS[SYSLAT_BOUNDS_NS.length - 1], 2 ** 36);
  SYSLAT_BOUNDS_NS.forEach((b, i) => t.is(SYSLAT_BOUNDS_SECONDS[i], b / 1e9));
});

test('buckets are upper-inclusive, and map exactly onto the seconds boundaries', (t) => {
  // For every bound: the bound itself and the integer just above it, and a
  // spread of values in between, land in the same bucket whether compared in
  // ns (the kernel) or as seconds against the OTel boundaries (a backend).
  const secondsBucket = (s: number) => {
    const i = SYSLAT_BOUNDS_SECONDS.findIndex((b) => s <= b);
    return i === -1 ? SYSLAT_BUCKETS - 1 : i;
  };
  const samples: number[] = [0, 1, 1023, 1024, 1025];
  for (const b of SYSLAT_BOUNDS_NS) samples.push(b - 1, b, b + 1, Math.floor(b * 0.75), Math.floor(b * 1.5));
  for (let x = 1; x < 2 ** 37; x = Math.floor(x * 1.37) + 1) samples.push(x);
  for (const ns of samples) t.is(secondsBucket(ns / 1e9), bucketOf(ns), `${ns} ns`);
  t.is(bucketOf(1024), 0);
  t.is(bucketOf(1025), 1);
  t.is(bucketOf(50e6), 16, '50 ms is in (2^25, 2^26] ns');
  t.is(bucketOf(2 ** 36), SYSLAT_BUCKETS - 2);
  t.is(bucketOf(2 ** 36 + 1), SYSLAT_BUCKETS - 1, 'the overflow bucket');
});

/** syslat_bucket() of bpf/syscall_latency.bpf.h, step by step (floor log2 by halving). */
function kernelBucket(d: bigint): number {
  if (d <= 1n << 10n) return 0;
  let v = d - 1n;
  let r = 0;
  for (const shift of [32n, 16n, 8n, 4n, 2n]) {
    const s = v > (1n << shift) - 1n ? shift : 0n;
    v >>= s;
    r |= Number(s);
  }
  const ceil = (r | Number(v >> 1n)) + 1;
  return Math.min(ceil - 10, SYSLAT_BUCKETS - 1);
}

test('the kernel computation (branch-free log2) agrees with the bounds', (t) => {
  const samples: bigint[] = [1n, 1024n, 1025n, 2n ** 36n, 2n ** 36n + 1n, 2n ** 63n];
  for (let k = 10n; k < 64n; k++) samples.push(2n ** k - 1n, 2n ** k, 2n ** k + 1n);
  for (const d of samples) t.is(kernelBucket(d), d > 2n ** 40n ? SYSLAT_BUCKETS - 1 : bucketOf(Number(d)), `${d} ns`);
});

test('decode: records of the native buffer; the count is the sum of the buckets', (t) => {
  const a = hist(7, 0, 0, [500, 2000, 3000]);
  const b = hist(7, 257, 2, [70e6]);
  const decoded = decodeSyscallHistograms(Buffer.concat([record(a), record(b)]));
  t.deepEqual(decoded, [a, b]);
  t.deepEqual(decodeSyscallHistograms(Buffer.alloc(0)), []);
  t.throws(() => decodeSyscallHistograms(Buffer.alloc(R.size + 1)), { message: /not whole records/ });
});

test('keys encode as struct syscall_hist_key', (t) => {
  const buf = encodeSyscallHistKeys([{ tgid: 1, nr: 2, err: 3 }, { tgid: 4, nr: 5, err: 0 }]);
  t.is(buf.length, 2 * K.size);
  t.deepEqual([buf.readUInt32LE(0), buf.readUInt32LE(4), buf.readUInt32LE(8), buf.readUInt32LE(12), buf.readUInt32LE(16), buf.readUInt32LE(20)], [1, 2, 3, 4, 5, 0]);
});

test('diff: interval deltas; unchanged keys are skipped; the max only when it rose', (t) => {
  const d = new SyscallHistogramDiffer();
  const first = d.diff([hist(1, 0, 0, [1000, 5000]), hist(1, 3, 0, [800])]);
  t.deepEqual(
    first.map((x) => [x.nr, x.count, x.sumNs, x.maxNs, x.maxSinceStartNs]),
    [
      [0, 2, 6000, 5000, 5000],
      [3, 1, 800, 800, 800],
    ],
  );
  // read: two more calls, neither over the running max; close: none.
  const second = d.diff([hist(1, 0, 0, [1000, 5000, 1500, 4000]), hist(1, 3, 0, [800])]);
  t.is(second.length, 1);
  t.like(second[0], { nr: 0, count: 2, sumNs: 5500, maxNs: undefined, maxSinceStartNs: 5000 });
  t.is(second[0]!.buckets[bucketOf(1500)], 1);
  t.is(second[0]!.buckets[bucketOf(4000)], 1);
  t.is(second[0]!.buckets.reduce((a, b) => a + b, 0), 2);
  // a longer call: the max rose, so it is this interval's.
  const third = d.diff([hist(1, 0, 0, [1000, 5000, 1500, 4000, 9000])]);
  t.like(third[0], { count: 1, maxNs: 9000 });
});

test('diff: totals past 2^53 ns diff exactly; a reading that went backwards starts afresh', (t) => {
  const d = new SyscallHistogramDiffer();
  const big = (sum: bigint, count: number): SyscallHistogram => ({ ...hist(1, 7, 0, []), count: BigInt(count), sumNs: sum, maxNs: 10n, buckets: [BigInt(count), ...new Array<bigint>(SYSLAT_BUCKETS - 1).fill(0n)] });
  d.diff([big(2n ** 60n, 5)]);
  t.like(d.diff([big(2n ** 60n + 3n, 6)])[0], { count: 1, sumNs: 3 });
  t.like(d.diff([big(10n, 2)])[0], { count: 2, sumNs: 10 });
  t.is(d.resets, 1);
});

test('diff: a forgotten key counts from zero when it comes back', (t) => {
  const d = new SyscallHistogramDiffer();
  d.diff([hist(1, 0, 0, [1, 2, 3])]);
  d.forget({ tgid: 1, nr: 0, err: 0 });
  t.is(d.size, 0);
  t.like(d.diff([hist(1, 0, 0, [4])])[0], { count: 1, sumNs: 4 });
});

test('percentiles are bucket upper bounds; the overflow bucket has none', (t) => {
  const buckets = new Array<number>(SYSLAT_BUCKETS).fill(0);
  t.is(percentileUpperBoundNs(buckets, 0.5), undefined);
  buckets[0] = 98;
  buckets[5] = 1;
  buckets[SYSLAT_BUCKETS - 1] = 1;
  t.is(percentileUpperBoundNs(buckets, 0.5), 1024);
  t.is(percentileUpperBoundNs(buckets, 0.98), 1024);
  t.is(percentileUpperBoundNs(buckets, 0.99), SYSLAT_BOUNDS_NS[5]);
  t.is(percentileUpperBoundNs(buckets, 1), undefined, 'in the overflow bucket: only "over 2^36 ns" is known');
});
