import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import test from 'ava';
import type { Http1Options } from '../../src/protocols/http1/config';
import { parse as parseYaml } from 'yaml';
import { UsageError } from '../../src/config/flags';
import { configCommand, effectiveConfig } from '../../src/cli/config-command';

test('config print: environment first, flags over it, defaults filled in, header values redacted', (t) => {
  const c = effectiveConfig(['--exe', 'python3', '--otlp-protocol', 'grpc', '--capture-bytes', '4096', '--route', '/users/:id', '--health-listen', '127.0.0.1:9464'], {
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4317',
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
    OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer secret-token,x-tenant=a',
    OTEL_TRACES_SAMPLER: 'traceidratio',
    OTEL_TRACES_SAMPLER_ARG: '0.25',
  });
  t.deepEqual(c.selectors, [{ kind: 'exe', pattern: 'python3' }]);
  t.like(c.capture, { captureBytes: 4096, ringBufferBytes: 4 * 1024 * 1024 });
  t.deepEqual((c['protocolOptions'] as Record<string, Http1Options>)['http1']!.routes, ['/users/:id']);
  t.is(c.healthListen, '127.0.0.1:9464');
  t.deepEqual(c.traces, {
    exporter: 'otlp',
    otlp: { protocol: 'grpc', url: 'http://collector:4317', headers: { authorization: '<redacted>', 'x-tenant': '<redacted>' }, compression: 'none', timeoutMillis: 10000, insecure: false },
  });
  t.like(c.sampler, { kind: 'traceidratio', ratio: 0.25, parentBased: false });
  t.like(c.batch, { maxQueueSize: 16384, maxExportBatchSize: 1024 });
  t.false(JSON.stringify(c).includes('secret-token'), 'no header value anywhere');
  t.deepEqual(c.warnings, []);
});

test('config print: no selector is fine here; bad flags fail as they would for run; unknown subcommands are refused', (t) => {
  t.deepEqual(effectiveConfig([], {}).selectors, []);
  t.is((effectiveConfig([], {}).traces as { exporter: string }).exporter, 'console');
  t.throws(() => effectiveConfig(['--otlp-protocol', 'smoke'], {}), { instanceOf: UsageError });
  t.throws(() => configCommand(['frob']), { instanceOf: UsageError, message: /unknown config subcommand/ });
  let out = '';
  t.is(configCommand(['print', '--pid', '1'], (s) => (out += s)), 0);
  t.deepEqual((JSON.parse(out) as { selectors: unknown }).selectors, [{ kind: 'pid', pid: 1 }]);
});

test('config print with a small file: exact output, sources per layer, header values redacted', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ebpf-otel-print-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'agent.yaml');
  fs.writeFileSync(
    file,
    [
      'selectors:',
      '  exe: [python3]',
      'export:',
      '  endpoint: http://collector:4317',
      '  protocol: grpc',
      '  headers:',
      '    authorization: Bearer ${OTLP_TOKEN}',
      'sampling:',
      '  sampler: parentbased_traceidratio',
      '  arg: 0.1',
      'log:',
      '  level: warn',
      '',
    ].join('\n'),
  );
  let out = '';
  const env = { OTLP_TOKEN: 'secret-token', OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip' };
  t.is(configCommand(['print', '--config', file, '--route', '/users/:id'], (s) => (out += s), undefined, env), 0);
  const otlp = {
    protocol: 'grpc',
    url: 'http://collector:4317',
    headers: { authorization: '<redacted>' },
    compression: 'gzip',
    timeoutMillis: 10000,
    insecure: false,
  };
  const layers = {
    selectors: 'file',
    'protocols.enabled': 'default',
    'capture.bytes': 'default',
    'capture.ring_buffer_mib': 'default',
    'capture.request_timeout': 'default',
    'http.routes': 'flag',
    'http.capture_query': 'default',
    'http.capture_headers.request': 'default',
    'http.capture_headers.response': 'default',
    'postgres.query_text': 'default',
    'mysql.query_text': 'default',
    'redis.query_text': 'default',
    'redaction.headers': 'default',
    'sampling.sampler': 'file',
    'sampling.arg': 'file',
    'export.endpoint': 'file',
    'export.traces_endpoint': 'default',
    'export.metrics_endpoint': 'default',
    'export.logs_endpoint': 'default',
    'export.protocol': 'file',
    'export.headers': 'file',
    'export.compression': 'env',
    'export.timeout': 'default',
    'export.insecure': 'default',
    'export.tls.ca_file': 'default',
    'export.tls.cert_file': 'default',
    'export.tls.key_file': 'default',
    'export.metric_interval': 'default',
    'export.batch.max_queue_size': 'default',
    'export.batch.max_export_batch_size': 'default',
    'export.batch.schedule_delay': 'default',
    'export.batch.export_timeout': 'default',
    'resource.attributes': 'default',
    'resource.capture_command_args': 'default',
    'syscalls.metrics': 'default',
    'syscalls.max_series': 'default',
    'syscalls.slow': 'default',
    'syscalls.slow_rate': 'default',
    'network.tcp': 'default',
    'network.flows': 'default',
    'network.max_peers': 'default',
    'network.tcp_table_size': 'default',
    'tls.enabled': 'default',
    'tls.max_files': 'default',
    'linking.enabled': 'default',
    'linking.nginx': 'default',
    'linking.go': 'default',
    'log.level': 'file',
    'health.listen': 'default',
    duration: 'default',
    shutdown_timeout: 'default',
  };
  const expected = {
    configFile: file,
    logLevel: 'warn',
    selectors: [{ kind: 'exe', pattern: 'python3' }],
    capture: {
      captureBytes: 16384,
      ringBufferBytes: 4194304,
      wakeupBytes: 65536,
      batchBytes: 262144,
      maxPendingBatches: 64,
      pollTimeoutMs: 20,
      batchDelayMs: 50,
      rescanMs: 1000,
      followForks: true,
      captureUdp: false,
      byteCountsOnly: false,
    },
    features: {
      syscalls: { metrics: false, maxSeries: 1000, capture: { slowNs: 0, slowPerSecond: 100 } },
      network: { tcp: true, flows: true, maxPeersPerProcess: 100, tcpPeerEntries: 8192 },
      tls: { enabled: true, maxFiles: 64 },
      linking: { enabled: true, nginx: true, go: true },
    },
    protocols: 'all',
    protocolOptions: {
      http1: {
        redactHeaders: ['authorization', 'proxy-authorization', 'cookie', 'set-cookie'],
        routes: ['/users/:id'],
        captureQuery: false,
        captureHeaders: { request: [], response: [] },
      },
      postgres: {
        redactHeaders: ['authorization', 'proxy-authorization', 'cookie', 'set-cookie'],
        queryText: 'sanitized',
      },
      mysql: {
        redactHeaders: ['authorization', 'proxy-authorization', 'cookie', 'set-cookie'],
        queryText: 'sanitized',
      },
      redis: {
        redactHeaders: ['authorization', 'proxy-authorization', 'cookie', 'set-cookie'],
        queryText: 'sanitized',
      },
    },
    redactHeaders: ['authorization', 'proxy-authorization', 'cookie', 'set-cookie'],
    requestTimeoutSeconds: 30,
    traces: { exporter: 'otlp', otlp },
    metrics: { exporter: 'otlp', exportIntervalMillis: 60000, exportTimeoutMillis: 30000, temporality: 'cumulative', maxSeriesPerInstrument: 2000, otlp },
    sampler: { kind: 'parentbased_traceidratio', ratio: 0.1, parentBased: true },
    batch: { maxQueueSize: 16384, maxExportBatchSize: 1024, scheduleDelayMillis: 5000, exportTimeoutMillis: 30000 },
    retry: { maxAttempts: 5, initialBackoffMillis: 1000, maxBackoffMillis: 2000, backoffMultiplier: 1.5, jitter: 0.2 },
    shutdownTimeoutMillis: 5000,
    resource: { attributes: {}, captureCommandArgs: false, maxProcesses: 4096 },
    sources: layers,
    warnings: [],
  };
  t.is(out, JSON.stringify(expected, null, 2) + '\n', 'exact text, key order included');
  t.false(out.includes('secret-token'));

  let yamlOut = '';
  configCommand(['print', '--config', file, '--route', '/users/:id', '--format', 'yaml'], (s) => (yamlOut += s), 'debug', env);
  t.deepEqual(parseYaml(yamlOut), { ...expected, logLevel: 'debug', sources: { ...layers, 'log.level': 'flag' } });
  t.throws(() => configCommand(['print', '--format', 'toml'], () => {}, undefined, {}), { instanceOf: UsageError, message: '--format takes json or yaml, got "toml"' });
});
