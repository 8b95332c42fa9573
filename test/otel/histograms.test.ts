import test from 'ava';
import { ExportResultCode } from '@opentelemetry/core';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import { AggregationTemporality, MeterProvider, MetricReader, type HistogramMetricData, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { Histogram } from '@opentelemetry/api';
import { canonicalKey, ProcessHistograms, FROZEN_OBJECTS_LIMIT } from '../../src/otel/histograms';
import { MetricsPipeline } from '../../src/otel/metrics';
import type { MetricExporter } from '../../src/otel/export';
import type { Timers } from '../../src/util/timers';
import type { Attributes, InstrumentSpec, RecordMeasurement } from '../../src/protocols/types';
import { memoryLogger, SERVER_DURATION } from './fixtures';

const BODY_SIZE: InstrumentSpec = {
  name: 'http.server.request.body.size',
  unit: 'By',
  description: 'Size of HTTP server request bodies.',
  boundaries: [0, 64, 256, 1024],
};
const SCOPE = { name: 'ebpf-otel-sidecar', version: '0.1.0' };
const RESOURCE = resourceFromAttributes({ 'service.name': 'shop' });

class PullReader extends MetricReader {
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

const attrs = (route: string, code = 200): Attributes => ({ 'http.request.method': 'GET', 'http.response.status_code': code, 'http.route': route, 'url.scheme': 'http' });

function histograms(temporality: AggregationTemporality, maxSeries = 100, overflows: string[] = [], resource: Resource = RESOURCE): ProcessHistograms {
  return new ProcessHistograms({ resource, scope: SCOPE, temporality, maxSeriesPerInstrument: maxSeries, onOverflow: (i) => overflows.push(i) });
}

/** What an SDK MeterProvider makes of the same records, with Date.now() pinned to each step's time. */
class SdkReference {
  private readonly reader: PullReader;
  private readonly histograms = new Map<string, Histogram>();
  private readonly provider: MeterProvider;
  constructor(temporality: AggregationTemporality) {
    this.reader = new PullReader({ aggregationTemporalitySelector: () => temporality });
    this.provider = new MeterProvider({ resource: RESOURCE, readers: [this.reader] });
  }
  record(measurements: readonly RecordMeasurement[]): void {
    const meter = this.provider.getMeter(SCOPE.name, SCOPE.version);
    for (const m of measurements) {
      let h = this.histograms.get(m.instrument.name);
      if (!h) {
        h = meter.createHistogram(m.instrument.name, {
          unit: m.instrument.unit,
          description: m.instrument.description,
          advice: { explicitBucketBoundaries: [...m.instrument.boundaries] },
        });
        this.histograms.set(m.instrument.name, h);
      }
      h.record(m.value, m.attributes);
    }
  }
  async collect(): Promise<ResourceMetrics> {
    return (await this.reader.collect()).resourceMetrics;
  }
}

type Step = { at: number; records: RecordMeasurement[][] } | { at: number; collect: true };

/** Runs `steps` through ours and the SDK's, comparing every collection whole. */
async function compareWithSdk(t: import('ava').ExecutionContext, temporality: AggregationTemporality, steps: Step[]): Promise<ResourceMetrics[]> {
  const ours = histograms(temporality);
  const sdk = new SdkReference(temporality);
  const realNow = Date.now;
  const collected: ResourceMetrics[] = [];
  try {
    for (const step of steps) {
      Date.now = () => step.at;
      if ('collect' in step) {
        const expected = await sdk.collect();
        const actual = ours.collect(step.at);
        t.deepEqual(actual, expected, `collection at ${step.at}`);
        collected.push(actual);
      } else {
        for (const r of step.records) {
          ours.record(r, step.at);
          sdk.record(r);
        }
      }
    }
  } finally {
    Date.now = realNow;
  }
  return collected;
}

/** Records of one HTTP exchange: a duration and a body size sharing one attributes object. */
function exchange(a: Attributes, duration: number, body?: number): RecordMeasurement[] {
  const ms: RecordMeasurement[] = [{ instrument: SERVER_DURATION, value: duration, attributes: a }];
  if (body !== undefined) ms.push({ instrument: BODY_SIZE, value: body, attributes: a });
  return ms;
}

const T0 = 1_700_000_000_123; // Date.now() is whole milliseconds

function script(): Step[] {
  const a = attrs('/a');
  const b = attrs('/b', 500);
  // The same set as `a` built in another key order: must land in a's series.
  const aReordered: Attributes = { 'url.scheme': 'http', 'http.route': '/a', 'http.response.status_code': 200, 'http.request.method': 'GET' };
  return [
    // Boundaries are inclusive upper bounds: 0.005 falls in the first bucket, 10 in the last bounded one.
    { at: T0, records: [exchange(a, 0.005, 0), exchange(a, 0.1, 64), exchange(attrs('/a'), 0.30000000000000004, 65)] },
    { at: T0 + 2, records: [exchange(b, 10, 1025), exchange(aReordered, 11), exchange(a, 0.1 + 0.2)] },
    { at: T0 + 1000, collect: true },
    // /b idle for one interval; /a goes on; a new set appears.
    { at: T0 + 1500, records: [exchange(a, 0.7, 300), exchange(attrs('/c'), 0.2), exchange(a, 0.1)] },
    { at: T0 + 2000, collect: true },
    { at: T0 + 2500, records: [exchange(b, 0.01, 10), exchange(a, 0.3)] },
    { at: T0 + 3000, collect: true },
    // A quiet interval.
    { at: T0 + 4000, collect: true },
  ];
}

test.serial('cumulative: exactly the SDK ResourceMetrics (points, times, sums to the last bit, order)', async (t) => {
  const out = await compareWithSdk(t, AggregationTemporality.CUMULATIVE, script());
  // Spot checks that the comparison compared something.
  const duration = (rm: ResourceMetrics) => rm.scopeMetrics[0]!.metrics[0] as HistogramMetricData;
  t.is(out.length, 4);
  const last = duration(out[3]!);
  t.deepEqual(
    last.dataPoints.map((p) => [p.attributes['http.route'], p.value.count]),
    [['/a', 8], ['/b', 2], ['/c', 1]],
  );
  const a = last.dataPoints[0]!;
  t.deepEqual(a.startTime, [1_700_000_000, 123_000_000]);
  t.deepEqual(a.endTime, [1_700_000_004, 123_000_000]);
  t.is(a.value.min, 0.005);
  t.is(a.value.max, 11);
  t.deepEqual(a.value.buckets.counts, [1, 0, 0, 0, 0, 2, 0, 3, 1, 0, 0, 0, 0, 0, 1]);
  // Summed per interval, then added up, as the SDK merges: not 12.805, the plain running sum.
  t.is(a.value.sum, 12.805000000000001);
});

test.serial('delta: exactly the SDK ResourceMetrics (start at the last collection only for series exported then)', async (t) => {
  const out = await compareWithSdk(t, AggregationTemporality.DELTA, script());
  const duration = (rm: ResourceMetrics) => rm.scopeMetrics[0]!.metrics[0] as HistogramMetricData;
  t.deepEqual(
    out.map((rm) => (rm.scopeMetrics.length === 0 ? [] : duration(rm).dataPoints.map((p) => [p.attributes['http.route'], p.value.count]))),
    [[['/a', 5], ['/b', 1]], [['/a', 2], ['/c', 1]], [['/b', 1], ['/a', 1]], []],
  );
  const third = duration(out[2]!).dataPoints;
  t.deepEqual(third[0]!.startTime, [1_700_000_002, 623_000_000], '/b was idle last interval: its first measurement');
  t.deepEqual(third[1]!.startTime, [1_700_000_002, 123_000_000], '/a was exported last time: that collection');
  t.is(third[1]!.value.sum, 0.3);
  t.is(third[1]!.value.min, 0.3);
});

test('min, max, sum, count and buckets are exact', (t) => {
  const h = histograms(AggregationTemporality.CUMULATIVE);
  const a = attrs('/x');
  h.record([0.003, 0.005, 0.0050001, 0.02, 0.2, 3, 11, 10].map((value) => ({ instrument: SERVER_DURATION, value, attributes: a })), 1000);
  const p = (h.collect(2000).scopeMetrics[0]!.metrics[0] as HistogramMetricData).dataPoints[0]!;
  t.deepEqual(p.value, {
    min: 0.003,
    max: 11,
    sum: 0.003 + 0.005 + 0.0050001 + 0.02 + 0.2 + 3 + 11 + 10,
    buckets: { boundaries: [...SERVER_DURATION.boundaries], counts: [2, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 1, 1] },
    count: 8,
  });
  t.deepEqual(p.startTime, [1, 0]);
  t.deepEqual(p.endTime, [2, 0]);
});

test('negative and NaN values are not recorded', (t) => {
  const h = histograms(AggregationTemporality.CUMULATIVE);
  const a = attrs('/x');
  const n = h.record([-1, NaN, 0.5].map((value) => ({ instrument: SERVER_DURATION, value, attributes: a })), 1000);
  t.is(n, 1);
  const p = (h.collect(2000).scopeMetrics[0]!.metrics[0] as HistogramMetricData).dataPoints;
  t.deepEqual(p.map((x) => [x.value.count, x.value.sum]), [[1, 0.5]]);
});

test('a collected cumulative point is a snapshot: later measurements do not change it', (t) => {
  const h = histograms(AggregationTemporality.CUMULATIVE);
  const a = attrs('/x');
  h.record([{ instrument: SERVER_DURATION, value: 0.5, attributes: a }], 1000);
  const p = (h.collect(2000).scopeMetrics[0]!.metrics[0] as HistogramMetricData).dataPoints[0]!;
  h.record([{ instrument: SERVER_DURATION, value: 0.5, attributes: a }], 2500);
  t.is(p.value.count, 1);
  t.is(p.value.sum, 0.5);
  t.is(p.value.buckets.counts[7], 1);
  const q = (h.collect(3000).scopeMetrics[0]!.metrics[0] as HistogramMetricData).dataPoints[0]!;
  t.deepEqual([q.value.count, q.value.sum, q.value.buckets.counts[7]], [2, 1, 2]);
});

test('the one-entry key cache never confuses two attribute objects', (t) => {
  const h = histograms(AggregationTemporality.CUMULATIVE);
  const a = attrs('/a');
  const b = attrs('/b');
  // Alternating objects in one record, then the same object changed between two records.
  h.record(
    [
      { instrument: SERVER_DURATION, value: 1, attributes: a },
      { instrument: SERVER_DURATION, value: 2, attributes: b },
      { instrument: BODY_SIZE, value: 3, attributes: a },
      { instrument: BODY_SIZE, value: 4, attributes: b },
    ],
    1000,
  );
  const mutable = attrs('/m');
  h.record([{ instrument: SERVER_DURATION, value: 5, attributes: mutable }], 1000);
  mutable['http.route'] = '/n';
  h.record([{ instrument: SERVER_DURATION, value: 6, attributes: mutable }], 1000);
  const metrics = h.collect(2000).scopeMetrics[0]!.metrics as HistogramMetricData[];
  const sums = metrics.map((m) => [m.descriptor.name, m.dataPoints.map((p) => [p.attributes['http.route'], p.value.sum])]);
  t.deepEqual(sums, [
    ['http.server.request.duration', [['/a', 1], ['/b', 2], ['/m', 5], ['/n', 6]]],
    ['http.server.request.body.size', [['/a', 3], ['/b', 4]]],
  ]);
});

test('canonical keys: order-independent, typed, unambiguous', (t) => {
  t.is(canonicalKey({ a: 1, b: 'x' }), canonicalKey({ b: 'x', a: 1 }));
  t.not(canonicalKey({ a: 1 }), canonicalKey({ a: '1' }));
  t.not(canonicalKey({ a: true }), canonicalKey({ a: 'true' }));
  t.not(canonicalKey({ a: 'b1:c' }), canonicalKey({ a: 'b', '1:c': '' }), 'length prefixes keep keys and values apart');
  t.is(canonicalKey({}), '');
});

test('attribute sets: typed values, other key orders to the same series', (t) => {
  const h = histograms(AggregationTemporality.CUMULATIVE);
  const rec = (a: Attributes, value: number) => h.record([{ instrument: SERVER_DURATION, value, attributes: a }], 1000);
  rec({ code: 200, ok: true }, 1);
  rec({ code: '200', ok: true }, 2);
  rec({ code: 200, ok: 'true' }, 3);
  rec({ ok: true, code: 200 }, 4);
  rec({ code: 200, ok: true }, 5);
  rec({ code: 200, ok: true, tag: 'a' }, 6);
  rec({ code: 200, ok: true, tag: 'a' }, 7);
  rec({ code: 200, ok: true, tag: 'a,b' }, 8);
  rec({}, 9);
  const points = (h.collect(2000).scopeMetrics[0]!.metrics[0] as HistogramMetricData).dataPoints;
  t.deepEqual(
    points.map((p) => [p.attributes, p.value.sum]),
    [
      [{ code: 200, ok: true }, 10],
      [{ code: '200', ok: true }, 2],
      [{ code: 200, ok: 'true' }, 3],
      [{ code: 200, ok: true, tag: 'a' }, 13],
      [{ code: 200, ok: true, tag: 'a,b' }, 8],
      [{}, 9],
    ],
  );
  t.deepEqual(h.remembered, { sets: 6, paths: 7 }, 'the second key order is one more path');
});

test('cardinality guard: sets past the limit fold into otel.metric.overflow; admitted sets stay, in any key order', (t) => {
  const overflows: string[] = [];
  const h = histograms(AggregationTemporality.CUMULATIVE, 2, overflows);
  const rec = (a: Attributes, value: number) => h.record([{ instrument: SERVER_DURATION, value, attributes: a }], 1000);
  rec(attrs('/1'), 1);
  rec(attrs('/2'), 2);
  rec(attrs('/3'), 3);
  rec(attrs('/4'), 4);
  rec(attrs('/3'), 5); // a folded key again: counted again
  rec({ 'http.route': '/1', 'url.scheme': 'http', 'http.request.method': 'GET', 'http.response.status_code': 200 }, 6);
  rec(attrs('/2'), 7);
  h.record([{ instrument: BODY_SIZE, value: 8, attributes: attrs('/3') }], 1000); // another instrument has its own limit
  t.deepEqual(overflows, [SERVER_DURATION.name, SERVER_DURATION.name, SERVER_DURATION.name]);
  const metrics = h.collect(2000).scopeMetrics[0]!.metrics as HistogramMetricData[];
  t.deepEqual(
    metrics[0]!.dataPoints.map((p) => [p.attributes, p.value.count, p.value.sum]),
    [
      [attrs('/1'), 2, 7],
      [attrs('/2'), 2, 9],
      [{ 'otel.metric.overflow': true }, 3, 12],
    ],
  );
  t.deepEqual(metrics[1]!.dataPoints.map((p) => [p.attributes['http.route'], p.value.count]), [['/3', 1]]);
});

test('cardinality guard holds against a flood of distinct sets, in bounded memory', (t) => {
  const overflows: string[] = [];
  const h = histograms(AggregationTemporality.DELTA, 10, overflows);
  for (let i = 0; i < 10_000; i++) h.record([{ instrument: SERVER_DURATION, value: 0.01, attributes: attrs(`/${i}`) }], 1000);
  t.is(overflows.length, 9990);
  const points = (h.collect(2000).scopeMetrics[0]!.metrics[0] as HistogramMetricData).dataPoints;
  t.is(points.length, 11);
  t.deepEqual(points[10]!.attributes, { 'otel.metric.overflow': true });
  t.is(points[10]!.value.count, 9990);
  t.deepEqual(h.remembered, { sets: 10, paths: 10 }, 'folded sets are not remembered');
});

// ------------------------------------------------------------ MetricsPipeline around it

function fakeTimers(): Timers & { t: number } {
  return {
    t: 1_000_000,
    setTimeout: () => ({}),
    clearTimeout: () => {},
    now() {
      return this.t;
    },
  };
}

function pipeline(maxProcesses: number, temporality = AggregationTemporality.CUMULATIVE) {
  const exported: ResourceMetrics[] = [];
  const exporter: MetricExporter = {
    export: (rm, done) => {
      exported.push(rm);
      done({ code: ExportResultCode.SUCCESS });
    },
    selectAggregationTemporality: () => temporality,
    shutdown: async () => {},
  };
  const timers = fakeTimers();
  const log = memoryLogger();
  const p = new MetricsPipeline({
    exporter,
    resources: {
      resourceFor: (proc) => resourceFromAttributes({ 'process.pid': proc.tgid }),
      agentResource: () => resourceFromAttributes({ 'service.name': 'ebpf-otel-sidecar' }),
    },
    scope: SCOPE,
    exportIntervalMillis: 60_000,
    exportTimeoutMillis: 1000,
    maxSeriesPerInstrument: 100,
    maxProcesses,
    log,
    destination: 'test',
    timers,
  });
  const summary = () =>
    exported
      .filter((rm) => rm.scopeMetrics.length > 0)
      .map((rm) => [rm.resource.attributes['process.pid'], (rm.scopeMetrics[0]!.metrics[0] as HistogramMetricData).dataPoints.map((d) => [d.attributes['http.route'], d.value.count])]);
  return { p, exported, timers, log, summary };
}

const one = (route: string): RecordMeasurement[] => [{ instrument: SERVER_DURATION, value: 0.01, attributes: attrs(route) }];

test('process LRU: the least recently active process is evicted and its final points exported', async (t) => {
  const { p, timers, log, summary } = pipeline(2);
  p.record({ tgid: 1 }, one('/p1'));
  p.record({ tgid: 2 }, one('/p2'));
  p.record({ tgid: 1 }, one('/p1')); // 1 is now the most recent: 2 goes first
  timers.t += 10;
  p.record({ tgid: 3 }, one('/p3'));
  t.is(p.processCount, 2);
  t.is(p.stats.processesEvicted, 1);
  t.is(log.lines.filter((l) => l.includes('least recently active')).length, 1);
  // The evicted process's points were collected at eviction; a new record for it starts afresh.
  p.record({ tgid: 2 }, one('/p2')); // evicts 1
  await p.collectAndExport();
  t.deepEqual(summary(), [
    [2, [['/p2', 1]]],
    [1, [['/p1', 2]]],
    [3, [['/p3', 1]]],
    [2, [['/p2', 1]]],
  ]);
  t.is(p.stats.processesEvicted, 2);
  t.is(p.stats.recorded, 5);
  t.is(p.stats.dataPointsExported, 4);
});

test('a retired process starts afresh; its identity by pid and start time', async (t) => {
  const { p, exported, summary } = pipeline(8, AggregationTemporality.DELTA);
  p.record({ tgid: 7, startTimeTicks: 100 }, one('/old'));
  p.record({ tgid: 7, startTimeTicks: 200 }, one('/reused-pid'));
  t.is(p.processCount, 2);
  p.retire({ tgid: 7 });
  t.is(p.processCount, 0);
  p.record({ tgid: 7, startTimeTicks: 200 }, one('/again'));
  t.is(p.processCount, 1);
  await p.collectAndExport();
  t.deepEqual(summary(), [
    [7, [['/old', 1]]],
    [7, [['/reused-pid', 1]]],
    [7, [['/again', 1]]],
  ]);
  t.is(exported.length, 3);
});

test('frozen attribute objects: known by identity, same series as equal unfrozen ones, bounded, folded sets never remembered', (t) => {
  const overflows: string[] = [];
  const h = histograms(AggregationTemporality.CUMULATIVE, 3, overflows);
  const rec = (a: Attributes, value: number) => h.record([{ instrument: SERVER_DURATION, value, attributes: a }], 1000);
  const a = Object.freeze({ code: 200, route: '/a' });
  const b = Object.freeze({ code: 500, route: '/a' });
  rec(a, 1);
  rec(a, 2);
  rec({ code: 200, route: '/a' }, 4);
  rec(b, 8);
  rec(Object.freeze({ route: '/a', code: 500 }), 16);
  rec({ code: 404 }, 32);
  const folded = Object.freeze({ code: 999 });
  rec(folded, 64);
  rec(folded, 128);
  const points = (h.collect(2000).scopeMetrics[0]!.metrics[0] as HistogramMetricData).dataPoints;
  t.deepEqual(
    points.map((p) => [p.attributes, p.value.sum]),
    [
      [{ code: 200, route: '/a' }, 7],
      [{ code: 500, route: '/a' }, 24],
      [{ code: 404 }, 32],
      [{ 'otel.metric.overflow': true }, 192],
    ],
  );
  t.is(overflows.length, 2);
  t.deepEqual(h.frozenObjects, { size: 1, resets: 0 }, 'a, met again once registered; b and its other order were each new when met; never the folded one');
  for (let i = 0; i < FROZEN_OBJECTS_LIMIT; i++) rec(Object.freeze({ code: 200, route: '/a' }), 0);
  t.deepEqual(h.frozenObjects, { size: 1, resets: 1 });
});
