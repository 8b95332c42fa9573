import test from 'ava';
import { ValueType } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AggregationTemporality, MeterProvider, MetricReader, type HistogramMetricData, type MetricData, type SumMetricData } from '@opentelemetry/sdk-metrics';
import { ProcessAggregates, type SumInstrument } from '../../src/otel/aggregates';
import { ProcessHistograms, type AggregatedHistogram } from '../../src/otel/histograms';
import type { Attributes, InstrumentSpec } from '../../src/protocols/types';

const BYTES: SumInstrument = { kind: 'sum', name: 'test.io', unit: 'By', description: 'Bytes.' };
const CONNS: SumInstrument = { kind: 'sum', name: 'test.connections', unit: '{connection}', description: 'Connections.' };
const LIFETIME: InstrumentSpec = { name: 'test.duration', unit: 's', description: 'Lifetimes.', boundaries: [1, 2, 4] };
const SCOPE = { name: 'ebpf-otel-sidecar', version: '0.1.0' };
const T0 = 1_700_000_000_123;

class PullReader extends MetricReader {
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

function aggregates(temporality: AggregationTemporality, maxSeries = 100, overflows: string[] = []): ProcessAggregates {
  return new ProcessAggregates({ counterTemporality: temporality, maxSeriesPerInstrument: maxSeries, onOverflow: (i) => overflows.push(i) });
}

/** Kernel bucket counts go to the process's histograms (ProcessHistograms.recordAggregated), not to the counters here. */
function bucketHistograms(temporality: AggregationTemporality) {
  const h = new ProcessHistograms({ resource: resourceFromAttributes({}), scope: SCOPE, temporality, maxSeriesPerInstrument: 100, onOverflow: () => {} });
  const add = (attributes: Attributes, v: { counts: number[]; sum: number }, at: number) =>
    h.recordAggregated(LIFETIME, attributes, { ...v, count: v.counts.reduce((a, b) => a + b, 0), max: undefined } satisfies AggregatedHistogram, at);
  const collect = (at: number) => h.collect(at).scopeMetrics.flatMap((sm) => sm.metrics) as HistogramMetricData[];
  return { add, collect };
}

const tx: Attributes = { 'network.peer.address': '10.0.0.2', 'network.io.direction': 'transmit' };
const rx: Attributes = { 'network.peer.address': '10.0.0.2', 'network.io.direction': 'receive' };

type Step = { at: number; add: [SumInstrument, Attributes, number][] } | { at: number; collect: true };

/** Counters: exactly what an SDK MeterProvider's counters give for the same adds at the same times. */
async function compareCounters(t: import('ava').ExecutionContext, temporality: AggregationTemporality, steps: Step[]): Promise<MetricData[][]> {
  const ours = aggregates(temporality);
  const reader = new PullReader({ aggregationTemporalitySelector: () => temporality });
  const provider = new MeterProvider({ resource: resourceFromAttributes({}), readers: [reader] });
  const meter = provider.getMeter(SCOPE.name, SCOPE.version);
  const counters = new Map([BYTES, CONNS].map((s) => [s.name, meter.createCounter(s.name, { unit: s.unit, description: s.description, valueType: ValueType.INT })]));
  const realNow = Date.now;
  const out: MetricData[][] = [];
  try {
    for (const step of steps) {
      Date.now = () => step.at;
      if ('collect' in step) {
        const expected = (await reader.collect()).resourceMetrics.scopeMetrics[0]?.metrics ?? [];
        const actual = ours.collect(step.at);
        t.deepEqual(actual, expected, `collection at ${step.at}`);
        out.push(actual);
      } else {
        for (const [spec, attrs, v] of step.add) {
          ours.add(spec, attrs, v, step.at);
          counters.get(spec.name)!.add(v, attrs);
        }
      }
    }
  } finally {
    Date.now = realNow;
  }
  return out;
}

const script = (): Step[] => [
  { at: T0, add: [[BYTES, tx, 100], [BYTES, rx, 2000], [CONNS, { 'network.peer.address': '10.0.0.2' }, 1]] },
  { at: T0 + 5, add: [[BYTES, tx, 50]] },
  { at: T0 + 1000, collect: true },
  // Only receive moves; a new peer appears.
  { at: T0 + 1500, add: [[BYTES, rx, 7], [BYTES, { 'network.peer.address': '10.0.0.3', 'network.io.direction': 'transmit' }, 1]] },
  { at: T0 + 2000, collect: true },
  { at: T0 + 3000, collect: true },
];

test.serial('counters, cumulative: exactly the SDK counters (values, start and end times, order)', async (t) => {
  const out = await compareCounters(t, AggregationTemporality.CUMULATIVE, script());
  const io = out[1]![0] as SumMetricData;
  t.true(io.isMonotonic);
  t.deepEqual(io.dataPoints.map((p) => p.value), [150, 2007, 1]);
});

test.serial('counters, delta: exactly the SDK counters (only what moved, start at the last collection)', async (t) => {
  const out = await compareCounters(t, AggregationTemporality.DELTA, script());
  const io = out[1]![0] as SumMetricData;
  t.deepEqual(io.dataPoints.map((p) => p.value), [7, 1]);
  t.deepEqual(out[2], []);
});

test('zero increments make no series', (t) => {
  const a = aggregates(AggregationTemporality.CUMULATIVE);
  a.add(BYTES, tx, 0, T0);
  t.deepEqual(a.collect(T0 + 1), []);
  const h = bucketHistograms(AggregationTemporality.CUMULATIVE);
  h.add({}, { counts: [0, 0, 0, 0], sum: 0 }, T0);
  t.deepEqual(h.collect(T0 + 1), []);
});

test('bucket histograms: counts added per bucket, count and sum carried, no min or max', (t) => {
  const a = bucketHistograms(AggregationTemporality.CUMULATIVE);
  a.add(tx, { counts: [1, 0, 2, 1], sum: 13.5 }, T0);
  a.add(tx, { counts: [0, 1, 0, 0], sum: 1.5 }, T0 + 10);
  const [m] = a.collect(T0 + 1000) as [HistogramMetricData];
  t.is(m.descriptor.name, 'test.duration');
  t.is(m.descriptor.unit, 's');
  t.is(m.aggregationTemporality, AggregationTemporality.CUMULATIVE);
  t.deepEqual(m.dataPoints.map((p) => p.value), [{ buckets: { boundaries: [1, 2, 4], counts: [1, 1, 2, 1] }, count: 5, sum: 15 }]);
  t.deepEqual(m.dataPoints[0]!.startTime, [1_700_000_000, 123_000_000]);
  a.add(tx, { counts: [0, 0, 0, 1], sum: 9 }, T0 + 1500);
  const [again] = a.collect(T0 + 2000) as [HistogramMetricData];
  t.deepEqual(again.dataPoints[0]!.value, { buckets: { boundaries: [1, 2, 4], counts: [1, 1, 2, 2] }, count: 6, sum: 24 });
  t.throws(() => a.add(tx, { counts: [1], sum: 1 }, T0), { instanceOf: RangeError });
});

test('bucket histograms, delta: each collection has only its interval', (t) => {
  const a = bucketHistograms(AggregationTemporality.DELTA);
  a.add(tx, { counts: [1, 0, 0, 0], sum: 0.5 }, T0);
  t.deepEqual(a.collect(T0 + 1000)[0]!.dataPoints[0]!.value.buckets.counts, [1, 0, 0, 0]);
  t.deepEqual(a.collect(T0 + 2000), []);
  a.add(tx, { counts: [0, 0, 3, 0], sum: 9 }, T0 + 2500);
  const p = a.collect(T0 + 3000)[0]!.dataPoints[0]!;
  t.deepEqual(p.value, { buckets: { boundaries: [1, 2, 4], counts: [0, 0, 3, 0] }, count: 3, sum: 9 });
  // Not exported at the previous collection: starts at its first measurement.
  t.deepEqual(p.startTime, [1_700_000_002, 623_000_000]);
});

test('the guard folds sets past the limit into otel.metric.overflow=true, counted; the producer\'s own overflow sets stay apart', (t) => {
  const overflows: string[] = [];
  const a = aggregates(AggregationTemporality.CUMULATIVE, 2, overflows);
  a.add(BYTES, { peer: 'a' }, 1, T0);
  a.add(BYTES, { peer: 'b' }, 2, T0);
  a.add(BYTES, { peer: 'c' }, 4, T0);
  a.add(BYTES, { peer: 'd' }, 8, T0);
  a.add(BYTES, { peer: 'a' }, 16, T0);
  // The producer's own fold, with a direction kept: its own series, outside the limit.
  a.add(BYTES, { 'otel.metric.overflow': true, 'network.io.direction': 'transmit' }, 32, T0);
  // The producer's plain overflow set is the guard's series: one series per set.
  a.add(BYTES, { 'otel.metric.overflow': true }, 64, T0);
  const [m] = a.collect(T0 + 1) as [SumMetricData];
  t.deepEqual(
    m.dataPoints.map((p) => [p.attributes, p.value]),
    [
      [{ peer: 'a' }, 17],
      [{ peer: 'b' }, 2],
      [{ 'otel.metric.overflow': true }, 76],
      [{ 'otel.metric.overflow': true, 'network.io.direction': 'transmit' }, 32],
    ],
  );
  t.deepEqual(overflows, ['test.io', 'test.io']);
});

test('one name, one unit', (t) => {
  const a = aggregates(AggregationTemporality.CUMULATIVE);
  a.add(BYTES, tx, 1, T0);
  t.throws(() => a.add({ ...BYTES, unit: '{packet}' }, tx, 1, T0), { message: /test.io used with unit \{packet\} and with By/ });
});
