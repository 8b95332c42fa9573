import test from 'ava';
import { TCP_LIFETIME_BUCKETS } from '../../src/capture/layout';
import { FLOW_METRICS, NetworkMetrics, peerAttributes, TCP_METRICS } from '../../src/otel/network-metrics';
import { emptyTcpCounts, OVERFLOW_PEER, type NetworkInterval, type TcpCounts } from '../../src/network/types';
import { SERVER_DURATION, traceRecord } from './fixtures';
import { harness } from './harness';

const client = { role: 'client' as const, address: '10.0.0.2', port: 5432, overflow: false };
const server = { role: 'server' as const, address: 'fd00::7', port: 8080, overflow: false };

function counts(c: Partial<TcpCounts>): TcpCounts {
  return { ...emptyTcpCounts(TCP_LIFETIME_BUCKETS), ...c };
}

test('peer attributes: semantic-convention names; client by the peer port, server by server.port, unknown role by address only', (t) => {
  t.deepEqual(peerAttributes(client, 'tcp'), { 'network.transport': 'tcp', 'network.type': 'ipv4', 'network.peer.address': '10.0.0.2', 'network.peer.port': 5432 });
  t.deepEqual(peerAttributes(server, 'tcp'), { 'network.transport': 'tcp', 'network.type': 'ipv6', 'network.peer.address': 'fd00::7', 'server.port': 8080 });
  t.deepEqual(peerAttributes({ role: undefined, address: '10.0.0.9', port: undefined, overflow: false }, 'tcp'), {
    'network.transport': 'tcp',
    'network.type': 'ipv4',
    'network.peer.address': '10.0.0.9',
  });
  t.deepEqual(peerAttributes(OVERFLOW_PEER, 'tcp'), { 'otel.metric.overflow': true });
});

test('names and units follow the OpenTelemetry naming rules', (t) => {
  const all = [...Object.values(TCP_METRICS), ...Object.values(FLOW_METRICS)];
  for (const m of all) {
    t.regex(m.name, /^ebpf_otel\.(tcp\.connection|network\.flow)\.[a-z_]+$/, m.name);
    t.regex(m.unit, /^(\{[a-z]+\}|By|s)$/, `${m.name} unit`);
  }
  t.deepEqual(TCP_METRICS.duration.boundaries.slice(0, 2), [16384 / 1e9, 32768 / 1e9]);
  t.is(TCP_METRICS.duration.boundaries.length, TCP_LIFETIME_BUCKETS - 1);
});

test('TCP health and flows over OTLP: exact names, units, attributes and values, beside the process\'s HTTP histograms', async (t) => {
  const { receiver, telemetry } = await harness(t, 'grpc', { metricExportIntervalMillis: 60_000 });
  const nm = new NetworkMetrics(telemetry.metrics, { tcp: true, flows: true });
  const buckets = new Array<number>(TCP_LIFETIME_BUCKETS).fill(0);
  buckets[0] = 1; // <= 16.384 us
  buckets[20] = 2; // (2^33, 2^34] ns
  const interval: NetworkInterval = {
    tcp: [
      { tgid: 4242, peer: client, counts: counts({ attempts: 4, established: 3, failures: { ECONNREFUSED: 1 }, resetsRecv: 1, retransmits: 2, closed: 3, lifetimeSumNs: 25e9, lifetimeBuckets: buckets }) },
      { tgid: 4242, peer: server, counts: counts({ established: 1, resetsSent: 1 }) },
      { tgid: 4242, peer: OVERFLOW_PEER, counts: counts({ failures: { _OTHER: 2 } }) },
    ],
    flows: [
      { tgid: 4242, peer: client, transport: 'tcp', protocol: 'http', bytesSent: 300, bytesRecv: 7000, connections: 3 },
      { tgid: 4242, peer: server, transport: 'tcp', protocol: undefined, bytesSent: 5, bytesRecv: 0, connections: 1 },
      { tgid: 4242, peer: OVERFLOW_PEER, transport: 'tcp', protocol: 'http', bytesSent: 1, bytesRecv: 2, connections: 1 },
    ],
    exited: [],
  };
  nm.record(interval);
  nm.record({ tcp: [], flows: [{ tgid: 4242, peer: client, transport: 'tcp', protocol: 'http', bytesSent: 100, bytesRecv: 0, connections: 0 }], exited: [] });
  telemetry.record([traceRecord({}, { measurements: [{ instrument: SERVER_DURATION, value: 0.01, attributes: { 'http.route': '/a' } }] })]);
  await telemetry.forceFlush(5000);
  await receiver.waitFor(() => receiver.points.some((p) => p.metric.name === 'ebpf_otel.network.flow.io'), 5000);

  const of = (name: string) => receiver.latestPoints(name).map((p) => ({ attributes: p.attributes, value: p.value, unit: p.metric.unit, type: p.metric.type, mono: p.monotonic, temporality: p.temporality }));
  const clientAttrs = { 'network.transport': 'tcp', 'network.type': 'ipv4', 'network.peer.address': '10.0.0.2', 'network.peer.port': 5432 };
  const serverAttrs = { 'network.transport': 'tcp', 'network.type': 'ipv6', 'network.peer.address': 'fd00::7', 'server.port': 8080 };
  const sumOf = (attributes: Record<string, unknown>, value: number, unit: string) => ({ attributes, value, unit, type: 'sum', mono: true, temporality: 2 });
  t.deepEqual(of('ebpf_otel.tcp.connection.attempts'), [sumOf(clientAttrs, 4, '{connection}')]);
  t.deepEqual(of('ebpf_otel.tcp.connection.established'), [sumOf(clientAttrs, 3, '{connection}'), sumOf(serverAttrs, 1, '{connection}')]);
  t.deepEqual(of('ebpf_otel.tcp.connection.failures'), [
    sumOf({ ...clientAttrs, 'error.type': 'ECONNREFUSED' }, 1, '{connection}'),
    sumOf({ 'otel.metric.overflow': true, 'error.type': '_OTHER' }, 2, '{connection}'),
  ]);
  t.deepEqual(of('ebpf_otel.tcp.connection.resets'), [
    sumOf({ ...clientAttrs, 'network.io.direction': 'receive' }, 1, '{reset}'),
    sumOf({ ...serverAttrs, 'network.io.direction': 'transmit' }, 1, '{reset}'),
  ]);
  t.deepEqual(of('ebpf_otel.tcp.connection.retransmits'), [sumOf(clientAttrs, 2, '{segment}')]);
  const [duration] = receiver.latestPoints('ebpf_otel.tcp.connection.duration');
  t.is(duration!.metric.unit, 's');
  t.deepEqual(duration!.attributes, clientAttrs);
  t.is(duration!.histogram!.count, 3);
  t.is(duration!.histogram!.sum, 25);
  t.is(duration!.histogram!.min, undefined, 'the kernel keeps no minimum: none is made up');
  t.deepEqual(duration!.histogram!.explicitBounds, TCP_METRICS.duration.boundaries);
  t.deepEqual(duration!.histogram!.bucketCounts, buckets);

  const http = { ...clientAttrs, 'network.protocol.name': 'http' };
  t.deepEqual(of('ebpf_otel.network.flow.io'), [
    sumOf({ ...http, 'network.io.direction': 'transmit' }, 400, 'By'),
    sumOf({ ...http, 'network.io.direction': 'receive' }, 7000, 'By'),
    sumOf({ ...serverAttrs, 'network.io.direction': 'transmit' }, 5, 'By'),
    sumOf({ 'otel.metric.overflow': true, 'network.io.direction': 'transmit' }, 1, 'By'),
    sumOf({ 'otel.metric.overflow': true, 'network.io.direction': 'receive' }, 2, 'By'),
  ]);
  t.deepEqual(of('ebpf_otel.network.flow.connections'), [sumOf(http, 3, '{connection}'), sumOf(serverAttrs, 1, '{connection}'), sumOf({ 'otel.metric.overflow': true }, 1, '{connection}')]);

  // One resource, one request: the process's HTTP histograms and its network metrics together.
  const io = receiver.latestPoints('ebpf_otel.network.flow.io')[0]!;
  const httpPoint = receiver.latestPoints(SERVER_DURATION.name)[0]!;
  t.is(io.call, httpPoint.call);
  t.is(io.resource['process.pid'], 4242);
  t.is(io.resource['service.name'], 'shop');
});

test('a family turned off records nothing', (t) => {
  const touched: number[] = [];
  const nm = new NetworkMetrics(
    { aggregatesFor: (p) => (touched.push(p.tgid), undefined), recordAggregated: (p) => void touched.push(p.tgid) },
    { tcp: false, flows: false },
  );
  nm.record({ tcp: [{ tgid: 1, peer: client, counts: counts({ attempts: 1 }) }], flows: [{ tgid: 1, peer: client, transport: 'tcp', protocol: undefined, bytesSent: 1, bytesRecv: 1, connections: 1 }], exited: [] });
  t.deepEqual(touched, []);
});
