import test from 'ava';
import { randomBytes } from 'node:crypto';
import { DEFAULT_SAMPLER, parseSampler, rejectionThreshold, sampleTraceId, shouldSample, traceRandomness } from '../../src/otel/sampler';

const id = (low56: bigint, high = '0af7651916cd43dd84'): string => high + low56.toString(16).padStart(14, '0');

test('parses every sampler the specification names', (t) => {
  t.deepEqual(parseSampler(undefined, undefined), DEFAULT_SAMPLER);
  t.deepEqual(parseSampler('always_on', undefined), { kind: 'always_on', ratio: 1, parentBased: false });
  t.deepEqual(parseSampler('always_off', '0.5'), { kind: 'always_off', ratio: 0, parentBased: false });
  t.deepEqual(parseSampler('traceidratio', '0.25'), { kind: 'traceidratio', ratio: 0.25, parentBased: false });
  t.deepEqual(parseSampler('parentbased_traceidratio', '0.1'), { kind: 'parentbased_traceidratio', ratio: 0.1, parentBased: true });
  t.deepEqual(parseSampler('parentbased_always_off', undefined), { kind: 'parentbased_always_off', ratio: 0, parentBased: true });
  t.deepEqual(parseSampler(' ParentBased_Always_On ', undefined), { kind: 'parentbased_always_on', ratio: 1, parentBased: true });
  t.deepEqual(parseSampler('traceidratio', undefined), { kind: 'traceidratio', ratio: 1, parentBased: false }, 'ratio defaults to 1');
});

test('invalid sampler or ratio falls back with a warning', (t) => {
  const w: string[] = [];
  t.deepEqual(parseSampler('jaeger_remote', undefined, w), DEFAULT_SAMPLER);
  t.deepEqual(parseSampler('traceidratio', '1.5', w), { kind: 'traceidratio', ratio: 1, parentBased: false });
  t.deepEqual(parseSampler('traceidratio', 'half', w), { kind: 'traceidratio', ratio: 1, parentBased: false });
  t.is(w.length, 3);
  t.regex(w[0]!, /jaeger_remote/);
});

test('threshold and randomness follow the 56-bit consistent-probability rule', (t) => {
  t.is(rejectionThreshold(1), 0n);
  t.is(rejectionThreshold(0), 2n ** 56n);
  t.is(rejectionThreshold(0.5), 2n ** 55n);
  t.is(rejectionThreshold(0.25), 3n * 2n ** 54n);
  t.is(traceRandomness('ffffffffffffffffff00000000000001'), 1n, 'only the rightmost 7 bytes count');
  // Exactly at the threshold is sampled (R >= T), one below is not.
  t.true(sampleTraceId(id(2n ** 55n), 0.5));
  t.false(sampleTraceId(id(2n ** 55n - 1n), 0.5));
  t.true(sampleTraceId(id(2n ** 56n - 1n), 2 ** -56), 'the smallest valid ratio samples only the largest R');
  t.false(sampleTraceId(id(2n ** 56n - 2n), 2 ** -56));
});

test('the leading 9 bytes never change the decision', (t) => {
  for (const low of [0n, 2n ** 55n - 1n, 2n ** 55n, 2n ** 56n - 1n]) {
    t.is(sampleTraceId(id(low, '000000000000000000'), 0.5), sampleTraceId(id(low, 'ffffffffffffffffff'), 0.5));
  }
});

test('always and never, and invalid trace ids', (t) => {
  const any = randomBytes(16).toString('hex');
  t.true(sampleTraceId(any, 1));
  t.false(sampleTraceId(any, 0));
  t.false(sampleTraceId('xyz', 0.5));
  t.false(sampleTraceId('', 0.9));
});

test('ratio decisions are monotonic and close to the ratio', (t) => {
  const ids = Array.from({ length: 20_000 }, () => randomBytes(16).toString('hex'));
  const ratios = [0.01, 0.1, 0.25, 0.5, 0.9];
  for (const r of ratios) {
    const n = ids.filter((i) => sampleTraceId(i, r)).length;
    t.true(Math.abs(n / ids.length - r) < 0.02, `ratio ${r}: sampled ${n / ids.length}`);
  }
  for (const i of ids) {
    let before = false;
    for (const r of ratios) {
      const now = sampleTraceId(i, r);
      if (before && !now) t.fail(`${i} sampled at a lower ratio but not at ${r}`);
      before = now;
    }
  }
  t.pass();
});

test('parent-based samplers follow the caller, root traces use the ratio', (t) => {
  const s = parseSampler('parentbased_traceidratio', '0');
  const tid = id(2n ** 56n - 1n);
  t.true(shouldSample(s, tid, true));
  t.false(shouldSample(s, tid, false));
  t.false(shouldSample(s, tid, undefined));
  const plain = parseSampler('traceidratio', '1');
  t.true(shouldSample(plain, tid, false), 'a non-parent-based sampler ignores the caller');
  t.false(shouldSample(parseSampler('parentbased_always_off', undefined), tid, undefined));
  t.true(shouldSample(parseSampler('parentbased_always_off', undefined), tid, true));
});
