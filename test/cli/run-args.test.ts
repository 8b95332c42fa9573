import test from 'ava';
import type { Http1Options } from '../../src/protocols/http1/config';
import { UsageError } from '../../src/config/flags';
import { parseRunArgs } from '../../src/cli/run-command';

test('run flags map onto selectors, OTLP options and protocol options', (t) => {
  const o = parseRunArgs([
    '--exe', 'python3', '--port', '8080',
    '--otlp-endpoint', 'http://c:4317', '--otlp-protocol', 'grpc',
    '--otlp-traces-endpoint', 'http://t:4318/v1/traces', '--otlp-metrics-endpoint', 'http://m:4318/v1/metrics',
    '--otlp-headers', 'api-key=s%20ecret,x=1', '--otlp-compression', 'gzip', '--otlp-timeout', '5s', '--otlp-insecure',
    '--sampler', 'parentbased_traceidratio', '--sampler-arg', '0.25', '--metric-interval', '15s',
    '--route', '/users/:id', '--route', '/files/*', '--capture-query', '--request-timeout', '2m', '--capture-bytes', '4096', '--ring-buffer-mib', '16',
    '--protocols', 'http1', '--duration', '30s',
  ]);
  if (o === 'help') return t.fail();
  t.deepEqual(o.capture, {
    selectors: [{ kind: 'exe', pattern: 'python3' }, { kind: 'port', port: 8080 }],
    captureBytes: 4096,
    ringBufferBytes: 16 * 1024 * 1024,
  });
  // Syscall metrics are off by default (their cost reaches every process on the host).
  t.deepEqual(o.features, {
    syscalls: { metrics: false, maxSeries: 1000, capture: { slowNs: 0, slowPerSecond: 100 } },
    network: { tcp: true, flows: true, maxPeersPerProcess: 100, tcpPeerEntries: 8192 },
    tls: { enabled: true, maxFiles: 64 },
    linking: { enabled: true, nginx: true, go: true },
  });
  t.deepEqual(o.otel, {
    endpoint: 'http://c:4317',
    tracesEndpoint: 'http://t:4318/v1/traces',
    metricsEndpoint: 'http://m:4318/v1/metrics',
    headers: { 'api-key': 's ecret', x: '1' },
    compression: 'gzip',
    timeoutMillis: 5000,
    insecure: true,
    protocol: 'grpc',
    sampler: 'parentbased_traceidratio',
    samplerArg: '0.25',
    metricExportIntervalMillis: 15000,
  });
  t.deepEqual((o.protocolOptions['http1'] as Http1Options).routes, ['/users/:id', '/files/*']);
  t.true((o.protocolOptions['http1'] as Http1Options).captureQuery);
  t.is(o.requestTimeoutNs, 120e9);
  t.deepEqual(o.protocols, ['http1']);
  t.is(o.duration, 30);
});

test('run syscall flags: metrics off by default, --syscall-metrics, --slow, --slow-rate, --syscall-max-series', (t) => {
  const off = parseRunArgs(['--pid', '1']);
  if (off === 'help') return t.fail();
  // Which kernel groups these load is the agent's decision (test/agent/agent.test.ts).
  t.deepEqual(off.features['syscalls'], { metrics: false, maxSeries: 1000, capture: { slowNs: 0, slowPerSecond: 100 } }, 'no metrics, no slow calls');
  const on = parseRunArgs(['--pid', '1', '--syscall-metrics']);
  if (on === 'help') return t.fail();
  t.deepEqual(on.features['syscalls'], { metrics: true, maxSeries: 1000, capture: { slowNs: 0, slowPerSecond: 100 } });
  const slowOnly = parseRunArgs(['--pid', '1', '--slow', '40ms', '--slow-rate', '5', '--syscall-max-series', '50']);
  if (slowOnly === 'help') return t.fail();
  t.deepEqual(slowOnly.features['syscalls'], { metrics: false, maxSeries: 50, capture: { slowNs: 40e6, slowPerSecond: 5 } });
  t.throws(() => parseRunArgs(['--pid', '1', '--slow', '0ms']), { instanceOf: UsageError, message: /--slow must be longer than 0/ });
  t.throws(() => parseRunArgs(['--pid', '1', '--slow', 'fast']), { instanceOf: UsageError, message: /--slow takes a duration/ });
  t.throws(() => parseRunArgs(['--pid', '1', '--slow-rate', '0']), { instanceOf: UsageError });
});

test('run flags are validated with one clear sentence', (t) => {
  t.throws(() => parseRunArgs([]), { instanceOf: UsageError, message: /run needs a selector/ });
  t.throws(() => parseRunArgs(['--all', '--otlp-protocol', 'udp']), { message: /grpc or http\/protobuf/ });
  t.throws(() => parseRunArgs(['--all', '--otlp-compression', 'zstd']), { message: /gzip or none/ });
  t.throws(() => parseRunArgs(['--all', '--route', 'users/:id']), { message: /starting with \// });
  t.throws(() => parseRunArgs(['--all', '--otlp-headers', '=oops']), { message: /entry without key=value/ });
  t.throws(() => parseRunArgs(['--all', '--bogus']), { instanceOf: UsageError });
  t.throws(() => parseRunArgs(['--all', '--ring-buffer-mib', '3']), { message: '--ring-buffer-mib takes a power of two (1, 2, 4, ...), got 3' });
  t.throws(() => parseRunArgs(['--all', '--ring-buffer-mib', '0']), { message: '--ring-buffer-mib must be between 1 and 1024, got 0' });
  t.throws(() => parseRunArgs(['--all', '--ring-buffer-mib', '2048']), { message: '--ring-buffer-mib must be between 1 and 1024, got 2048' });
});

test('TCP health and flow flags: each family can be turned off, bounds are validated', (t) => {
  const o = parseRunArgs(['--all', '--no-tcp-metrics', '--network-max-peers', '5', '--tcp-table-size', '512']);
  if (o === 'help') return t.fail();
  // No TCP metrics: the kernel's TCP programs are not loaded either (test/agent/agent.test.ts).
  t.deepEqual(o.features['network'], { tcp: false, flows: true, maxPeersPerProcess: 5, tcpPeerEntries: 512 });
  const f = parseRunArgs(['--all', '--no-flow-metrics']);
  if (f === 'help') return t.fail();
  t.deepEqual(f.features['network'], { tcp: true, flows: false, maxPeersPerProcess: 100, tcpPeerEntries: 8192 });
  t.throws(() => parseRunArgs(['--all', '--network-max-peers', 'many']), { instanceOf: UsageError, message: /--network-max-peers/ });
  t.throws(() => parseRunArgs(['--all', '--tcp-table-size', '0']), { instanceOf: UsageError, message: /--tcp-table-size/ });
});

test('TLS flags: --no-tls turns the probes off, --tls-max-files bounds the files probed', (t) => {
  const o = parseRunArgs(['--all', '--no-tls', '--tls-max-files', '8']);
  if (o === 'help') return t.fail();
  t.deepEqual(o.features['tls'], { enabled: false, maxFiles: 8 });
  t.throws(() => parseRunArgs(['--all', '--tls-max-files', '0']), { instanceOf: UsageError, message: /--tls-max-files/ });
  t.throws(() => parseRunArgs(['--all', '--tls-max-files', '5000']), { instanceOf: UsageError, message: /--tls-max-files/ });
});
