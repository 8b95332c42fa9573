import test from 'ava';
import { ExportResultCode } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AggregationTemporality, type HistogramMetricData, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { SYSLAT_BUCKETS } from '../../src/capture/layout';
import { bucketOf, SYSLAT_BOUNDS_SECONDS, type SyscallDelta } from '../../src/capture/syscall-histograms';
import { syscallNumber } from '../../src/capture/syscall-names';
import type { MetricExporter } from '../../src/otel/export';
import type { Timers } from '../../src/util/timers';
import { ProcessHistograms } from '../../src/otel/histograms';
import { MetricsPipeline } from '../../src/otel/metrics';
import { syscallDurationInstrument, syscallErrorName, SyscallMetricsRecorder, toAggregate, type SyscallMetricsSink } from '../../src/otel/syscall-duration';
import { memoryLogger } from './fixtures';

const SCOPE = { name: 'ebpf-otel-sidecar', version: '0.1.0' };
const READ = syscallNumber('read', 'x86_64')!;
const OPENAT = syscallNumber('openat', 'x86_64')!;

function delta(tgid: number, nr: number, err: number, durations: number[], maxKnown = true): SyscallDelta {
  const buckets = new Array<number>(SYSLAT_BUCKETS).fill(0);
  for (const d of durations) buckets[bucketOf(d)]!++;
  const max = Math.max(...durations);
  return { tgid, nr, err, count: durations.length, sumNs: durations.reduce((a, b) => a + b, 0), maxNs: maxKnown ? max : undefined, maxSinceStartNs: max, buckets };
}

test('errno names: the uapi table, then the kernel-internal restart codes, else a number', (t) => {
  t.is(syscallErrorName(2), 'ENOENT');
  t.is(syscallErrorName(111), 'ECONNREFUSED');
  t.is(syscallErrorName(512), 'ERESTARTSYS');
  t.is(syscallErrorName(513), 'ERESTARTNOINTR');
  t.is(syscallErrorName(514), 'ERESTARTNOHAND');
  t.is(syscallErrorName(516), 'ERESTART_RESTARTBLOCK');
  t.is(syscallErrorName(4000), 'errno_4000');
});

test('the instrument: name, unit s, the kernel bounds in seconds, its own series bound', (t) => {
  const i = syscallDurationInstrument(7);
  t.like(i, { name: 'ebpf_otel.syscall.duration', unit: 's', maxSeries: 7 });
  t.deepEqual(i.boundaries, SYSLAT_BOUNDS_SECONDS);
});

test('a delta becomes an aggregate in seconds on the same buckets; an unknown max stays unknown', (t) => {
  const d = delta(1, READ, 0, [2000, 3_000_000]);
  t.deepEqual(toAggregate(d), { counts: d.buckets, count: 2, sum: 0.003002, max: 0.003 });
  t.is(toAggregate(delta(1, READ, 0, [2000], false)).max, undefined);
});

test('the recorder: syscall.name always, error.type on failures only, the process as the resource', (t) => {
  const calls: [number, string, Record<string, unknown>, number][] = [];
  const sink: SyscallMetricsSink = { recordAggregated: (p, i, a, agg) => calls.push([p.tgid, i.name, a, agg.count]) };
  const r = new SyscallMetricsRecorder(sink, 'x86_64');
  r.record([delta(10, READ, 0, [1000, 1000]), delta(10, OPENAT, 2, [5000]), delta(11, 9999, 512, [1])]);
  t.deepEqual(calls, [
    [10, 'ebpf_otel.syscall.duration', { 'syscall.name': 'read' }, 2],
    [10, 'ebpf_otel.syscall.duration', { 'syscall.name': 'openat', 'error.type': 'ENOENT' }, 1],
    [11, 'ebpf_otel.syscall.duration', { 'syscall.name': 'syscall_9999', 'error.type': 'ERESTARTSYS' }, 1],
  ]);
});

function histograms(temporality: AggregationTemporality, overflows: [string, number | undefined, number | undefined][] = []) {
  return new ProcessHistograms({
    resource: resourceFromAttributes({ 'process.pid': 1 }),
    scope: SCOPE,
    temporality,
    maxSeriesPerInstrument: 100,
    onOverflow: (i, n, bound) => overflows.push([i, n, bound]),
  });
}

function points(rm: ResourceMetrics) {
  return rm.scopeMetrics.flatMap((s) => s.metrics.flatMap((m) => (m as HistogramMetricData).dataPoints));
}

test('aggregates in cumulative histograms: counts add up, min is left out, max only once known', (t) => {
  const h = histograms(AggregationTemporality.CUMULATIVE);
  const inst = syscallDurationInstrument();
  const a = { 'syscall.name': 'read' };
  h.recordAggregated(inst, a, toAggregate(delta(1, READ, 0, [2000, 3000], false)), 1000);
  let [p] = points(h.collect(2000));
  t.is(p!.value.count, 2);
  t.false('min' in p!.value, 'min is never known');
  t.false('max' in p!.value, 'max not known yet');
  t.deepEqual(p!.value.buckets.boundaries, SYSLAT_BOUNDS_SECONDS);
  t.is(p!.value.buckets.counts[bucketOf(2000)], 1);
  h.recordAggregated(inst, a, toAggregate(delta(1, READ, 0, [9000])), 3000);
  [p] = points(h.collect(4000));
  t.like(p!.value, { count: 3, max: 9e-6 });
  t.is(p!.value.sum, (2000 + 3000) / 1e9 + 9000 / 1e9);
  t.is(p!.value.buckets.counts.reduce((x, y) => x + y, 0), 3);
});

test('aggregates in delta histograms: each interval alone, its max only when known', (t) => {
  const h = histograms(AggregationTemporality.DELTA);
  const inst = syscallDurationInstrument();
  h.recordAggregated(inst, { 'syscall.name': 'read' }, toAggregate(delta(1, READ, 0, [5000])), 1000);
  t.like(points(h.collect(2000))[0]!.value, { count: 1, max: 5e-6 });
  h.recordAggregated(inst, { 'syscall.name': 'read' }, toAggregate(delta(1, READ, 0, [1000], false)), 3000);
  const v = points(h.collect(4000))[0]!.value;
  t.is(v.count, 1);
  t.false('max' in v);
  t.deepEqual(points(h.collect(5000)), [], 'nothing since: no point');
});

test('the per-instrument series bound folds further (syscall, errno) sets into the overflow series, counting calls', (t) => {
  const overflows: [string, number | undefined, number | undefined][] = [];
  const h = histograms(AggregationTemporality.CUMULATIVE, overflows);
  const inst = syscallDurationInstrument(2);
  for (const name of ['read', 'write', 'openat', 'close']) h.recordAggregated(inst, { 'syscall.name': name }, toAggregate(delta(1, 0, 0, [1000, 1000, 1000])), 1000);
  const ps = points(h.collect(2000));
  t.deepEqual(ps.map((p) => [p.attributes, p.value.count]), [
    [{ 'syscall.name': 'read' }, 3],
    [{ 'syscall.name': 'write' }, 3],
    [{ 'otel.metric.overflow': true }, 6],
  ]);
  t.deepEqual(overflows, [
    ['ebpf_otel.syscall.duration', 3, 2],
    ['ebpf_otel.syscall.duration', 3, 2],
  ]);
});

test('counts that do not fit the instrument are refused', (t) => {
  const h = histograms(AggregationTemporality.CUMULATIVE);
  t.throws(() => h.recordAggregated(syscallDurationInstrument(), {}, { counts: [1], count: 1, sum: 1, max: undefined }, 1), { message: /1 bucket counts for 28 buckets/ });
});

test('the metrics pipeline runs collect hooks first: what they record is in the same export', async (t) => {
  const exported: ResourceMetrics[] = [];
  const exporter: MetricExporter = {
    export: (rm, done) => {
      exported.push(rm);
      done({ code: ExportResultCode.SUCCESS });
    },
    selectAggregationTemporality: () => AggregationTemporality.CUMULATIVE,
    shutdown: async () => {},
  };
  const timers: Timers = { setTimeout: () => ({}), clearTimeout: () => {}, now: () => 1_000_000 };
  const log = memoryLogger();
  const p = new MetricsPipeline({
    exporter,
    resources: { resourceFor: (proc) => resourceFromAttributes({ 'process.pid': proc.tgid }), agentResource: () => resourceFromAttributes({}) },
    scope: SCOPE,
    exportIntervalMillis: 60_000,
    exportTimeoutMillis: 1000,
    maxSeriesPerInstrument: 100,
    log,
    destination: 'test',
    timers,
  });
  const recorder = new SyscallMetricsRecorder(p, 'x86_64');
  p.addCollectHook(() => recorder.record([delta(42, READ, 0, [1000])]));
  p.addCollectHook(() => {
    throw new Error('kernel gone');
  });
  await p.collectAndExport();
  const pts = exported.filter((rm) => rm.resource.attributes['process.pid'] === 42).flatMap(points);
  t.deepEqual(pts.map((x) => [x.attributes, x.value.count]), [[{ 'syscall.name': 'read' }, 1]]);
  t.true(log.lines.some((l) => l.includes('kernel gone')), 'a failing hook is logged, the export goes on');
  await p.shutdown(100);
});
