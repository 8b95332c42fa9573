import test, { type ExecutionContext } from 'ava';
import { AGENT_METRICS } from '../../src/agent/agent';
import type { RecordMeasurement } from '../../src/protocols/types';
import { SERVER_DURATION, sleep, traceRecord } from './fixtures';
import { harness } from './harness';

const m = (value: number, route: string, code: number): RecordMeasurement => ({
  instrument: SERVER_DURATION,
  value,
  attributes: { 'http.request.method': 'GET', 'http.route': route, 'http.response.status_code': code },
});

async function exactBuckets(t: ExecutionContext, transport: 'grpc' | 'http') {
  const { receiver, telemetry } = await harness(t, transport, { metricExportIntervalMillis: 60_000 });
  // Upper bounds are inclusive: 0.005 falls in the first bucket.
  const a = [0.003, 0.005, 0.02, 0.2, 3, 11].map((v) => m(v, '/a', 200));
  telemetry.record([
    traceRecord({}, { measurements: a.slice(0, 3) }),
    traceRecord({ sampled: false }, { measurements: a.slice(3) }), // unsampled records still count
    traceRecord({}, { measurements: [m(0.05, '/b', 500)] }),
    traceRecord({ process: { tgid: 4343 } }, { tgid: 4343, measurements: [m(0.5, '/a', 200)] }),
  ]);
  await telemetry.forceFlush(5000);
  await receiver.waitFor(() => receiver.points.some((p) => p.metric.name === SERVER_DURATION.name && p.resource['service.name'] === 'billing'), 5000);
  const points = receiver.points.filter((p) => p.metric.name === SERVER_DURATION.name);
  const shop = points.filter((p) => p.resource['service.name'] === 'shop');
  t.is(shop.length, 2);
  const pa = shop.find((p) => p.attributes['http.route'] === '/a')!;
  const pb = shop.find((p) => p.attributes['http.route'] === '/b')!;
  t.deepEqual(pa.metric, { name: 'http.server.request.duration', unit: 's', description: 'Duration of HTTP server requests.', type: 'histogram' });
  t.is(pa.temporality, 2, 'cumulative');
  t.deepEqual(pa.attributes, { 'http.request.method': 'GET', 'http.route': '/a', 'http.response.status_code': 200 });
  t.deepEqual(pa.histogram!.explicitBounds, [...SERVER_DURATION.boundaries]);
  t.deepEqual(pa.histogram!.bucketCounts, [2, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 1]);
  t.is(pa.histogram!.count, 6);
  t.is(Math.round(pa.histogram!.sum! * 1e9), Math.round((0.003 + 0.005 + 0.02 + 0.2 + 3 + 11) * 1e9));
  t.is(pa.histogram!.min, 0.003);
  t.is(pa.histogram!.max, 11);
  t.deepEqual(pb.histogram!.bucketCounts, [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  t.is(pb.attributes['http.response.status_code'], 500);
  t.deepEqual(pa.scope, { name: 'ebpf-otel-sidecar', version: '0.1.0' });
  const billing = points.filter((p) => p.resource['service.name'] === 'billing');
  t.is(billing.length, 1, 'the other process under its own resource');
  t.is(billing[0]!.histogram!.count, 1);
  t.is(billing[0]!.resource['process.pid'], 4343);
  t.is(telemetry.health().metrics.recorded, 8);
}
test('histograms over gRPC: exact buckets per route and status, one resource per process', exactBuckets, 'grpc');
test('histograms over HTTP protobuf: the same', exactBuckets, 'http');

test('the periodic export runs on its own', async (t) => {
  const { receiver, telemetry } = await harness(t, 'grpc', { metricExportIntervalMillis: 100 });
  telemetry.record([traceRecord({}, { measurements: [m(0.01, '/p', 200)] })]);
  await receiver.waitFor(() => receiver.latestPoints(SERVER_DURATION.name).length === 1, 5000, 'a periodic export');
  t.pass();
});

test('cardinality guard: extra attribute sets fold into otel.metric.overflow, counted and logged once', async (t) => {
  const { receiver, telemetry, logger } = await harness(t, 'grpc', { maxSeriesPerInstrument: 3, metricExportIntervalMillis: 60_000 });
  const routes = ['/1', '/2', '/3', '/4', '/5', '/4', '/1'];
  telemetry.record([traceRecord({}, { measurements: routes.map((r) => m(0.01, r, 200)) })]);
  await telemetry.forceFlush(5000);
  await receiver.waitFor(() => receiver.latestPoints(SERVER_DURATION.name).length > 0, 5000);
  const points = receiver.latestPoints(SERVER_DURATION.name);
  t.is(points.length, 4);
  const overflow = points.find((p) => p.attributes['otel.metric.overflow'] === true)!;
  t.deepEqual(overflow.attributes, { 'otel.metric.overflow': true });
  t.is(overflow.histogram!.count, 3, '/4, /5 and /4 again');
  t.is(points.find((p) => p.attributes['http.route'] === '/1')!.histogram!.count, 2);
  t.is(telemetry.health().metrics.overflowed, 3);
  t.is(logger.lines.filter((l) => l.includes('otel.metric.overflow')).length, 1);
});

test('agent health metrics under the agent resource', async (t) => {
  const { receiver, telemetry } = await harness(t, 'grpc', { metricExportIntervalMillis: 60_000 });
  telemetry.registerAgentHealth(AGENT_METRICS, () => ({
    eventsCaptured: 10,
    eventsLost: 1,
    bytesTruncated: 4096,
    recordsByProtocol: { http1: 5 },
    parseErrorsByProtocol: { http1: 2 },
    connectionsOpen: 3,
  }));
  telemetry.record([traceRecord(), traceRecord()]);
  await telemetry.forceFlush(5000);
  await receiver.waitFor(() => receiver.points.some((p) => p.metric.name === 'ebpf_otel.span.exported'), 5000);
  const by = (name: string) => receiver.latestPoints(name);
  const events = by('ebpf_otel.capture.events')[0]!;
  t.is(events.value, 10);
  t.is(events.metric.type, 'sum');
  t.true(events.monotonic);
  t.is(events.metric.unit, '{event}');
  t.is(events.resource['service.name'], 'ebpf-otel-sidecar');
  t.is(events.resource['telemetry.distro.name'], 'ebpf-otel-sidecar');
  t.is(by('ebpf_otel.capture.lost_events')[0]!.value, 1);
  t.is(by('ebpf_otel.capture.truncated_payload')[0]!.metric.unit, 'By');
  t.deepEqual(by('ebpf_otel.protocol.records').map((p) => [p.attributes, p.value]), [[{ 'ebpf_otel.protocol': 'http1' }, 5]]);
  t.is(by('ebpf_otel.protocol.parse_errors')[0]!.value, 2);
  const conns = by('ebpf_otel.connection.count')[0]!;
  t.is(conns.metric.type, 'gauge');
  t.is(conns.value, 3);
  t.is(by('ebpf_otel.span.exported')[0]!.value, 2, 'the pipeline adds its own counters');
  t.deepEqual(
    by('ebpf_otel.span.dropped').map((p) => p.attributes['ebpf_otel.reason']).sort(),
    ['queue_full', 'shutdown'],
  );
});

test('delta temporality when preferred', async (t) => {
  const { receiver, telemetry } = await harness(t, 'grpc', { metricExportIntervalMillis: 60_000 }, { OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: 'delta' });
  telemetry.record([traceRecord({}, { measurements: [m(0.01, '/d', 200), m(0.01, '/d', 200)] })]);
  await telemetry.forceFlush(5000);
  telemetry.record([traceRecord({}, { measurements: [m(0.01, '/d', 200)] })]);
  await telemetry.forceFlush(5000);
  await receiver.waitFor(() => receiver.points.filter((p) => p.metric.name === SERVER_DURATION.name).length === 2, 5000);
  const pts = receiver.points.filter((p) => p.metric.name === SERVER_DURATION.name);
  t.deepEqual(pts.map((p) => [p.temporality, p.histogram!.count]), [[1, 2], [1, 1]]);
});

test('an exited process gets a final export, then no more', async (t) => {
  const { receiver, telemetry } = await harness(t, 'grpc', { metricExportIntervalMillis: 60_000 });
  telemetry.record([traceRecord({}, { measurements: [m(0.01, '/x', 200)] })]);
  telemetry.processExited({ tgid: 4242 });
  await telemetry.forceFlush(5000);
  await receiver.waitFor(() => receiver.latestPoints(SERVER_DURATION.name).length === 1, 5000);
  t.is(telemetry.metrics.processCount, 0);
  const before = receiver.points.length;
  await telemetry.forceFlush(5000);
  await sleep(100);
  t.is(receiver.points.length, before);
});

test('exited processes: final metrics go out within seconds, not at the next interval, together in one request', async (t) => {
  const { receiver, telemetry } = await harness(t, 'grpc', { metricExportIntervalMillis: 60_000 });
  const pids = [4242, 4343, 4444];
  telemetry.record(pids.map((tgid) => traceRecord({ process: { tgid } }, { tgid, measurements: [m(0.01, `/p${tgid}`, 200)] })));
  for (const tgid of pids) telemetry.processExited({ tgid });
  t.is(telemetry.metrics.processCount, 0);
  // RETIRED_FLUSH_MS (5 s), not the 60 s interval.
  await receiver.waitFor(() => receiver.latestPoints(SERVER_DURATION.name).length === 3, 8000, 'the final metrics of three exited processes');
  const points = receiver.points.filter((p) => p.metric.name === SERVER_DURATION.name);
  t.deepEqual(points.map((p) => p.resource['process.pid']).sort(), pids);
  t.deepEqual(points.map((p) => p.attributes['http.route']).sort(), pids.map((p) => `/p${p}`));
  t.is(new Set(points.map((p) => p.call)).size, 1, 'one request for the three resources');
});
