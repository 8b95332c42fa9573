import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import type { Http1Options } from '../../src/protocols/http1/config';
import { UsageError } from '../../src/config/flags';
import { ConfigFileError } from '../../src/config/file';
import { parseRunFlags, resolveRunConfig, type ResolveOptions } from '../../src/config/run-config';
import { loadOtelConfig, type Env } from '../../src/otel/config';

function writeConfig(t: ExecutionContext, text: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ebpf-otel-config-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'agent.yaml');
  fs.writeFileSync(file, text);
  return file;
}

function resolve(argv: string[], env: Env = {}, o: ResolveOptions = {}) {
  const run = resolveRunConfig(parseRunFlags(argv), env, o);
  return { run, otel: loadOtelConfig(env, run.options.otel, run.options.otelFile) };
}

const FILE = `
selectors:
  exe: [python3, "node*"]
sampling:
  sampler: traceidratio
  arg: 0.5
export:
  endpoint: http://file:4318
log:
  level: warn
`;

test('export endpoint: default < file < environment < flag', (t) => {
  const file = writeConfig(t, FILE);
  const none = resolve([], {}, { requireSelector: false });
  t.is(none.otel.traces.exporter, 'console');
  t.is(none.run.sources['export.endpoint'], 'default');

  const fromFile = resolve(['--config', file]);
  t.is(fromFile.otel.traces.otlp?.url, 'http://file:4318/v1/traces');
  t.is(fromFile.run.sources['export.endpoint'], 'file');

  const env = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://env:4318' };
  const fromEnv = resolve(['--config', file], env);
  t.is(fromEnv.otel.traces.otlp?.url, 'http://env:4318/v1/traces');
  t.is(fromEnv.run.sources['export.endpoint'], 'env');

  const fromFlag = resolve(['--config', file, '--otlp-endpoint', 'http://flag:4318'], env);
  t.is(fromFlag.otel.traces.otlp?.url, 'http://flag:4318/v1/traces');
  t.is(fromFlag.otel.metrics.otlp?.url, 'http://flag:4318/v1/metrics');
  t.is(fromFlag.run.sources['export.endpoint'], 'flag');
});

test('sampler: default < file < environment < flag', (t) => {
  const file = writeConfig(t, FILE);
  t.like(resolve([], {}, { requireSelector: false }).otel.sampler, { kind: 'parentbased_always_on' });
  const fromFile = resolve(['--config', file]);
  t.deepEqual(fromFile.otel.sampler, { kind: 'traceidratio', ratio: 0.5, parentBased: false });
  t.is(fromFile.run.sources['sampling.sampler'], 'file');
  t.is(fromFile.run.sources['sampling.arg'], 'file');

  const env = { OTEL_TRACES_SAMPLER: 'parentbased_traceidratio' };
  const fromEnv = resolve(['--config', file], env);
  t.deepEqual(fromEnv.otel.sampler, { kind: 'parentbased_traceidratio', ratio: 0.5, parentBased: true }, 'the ratio still from the file');
  t.is(fromEnv.run.sources['sampling.sampler'], 'env');
  t.is(fromEnv.run.sources['sampling.arg'], 'file');

  const fromFlag = resolve(['--config', file, '--sampler', 'always_off'], env);
  t.is(fromFlag.otel.sampler.kind, 'always_off');
  t.is(fromFlag.run.sources['sampling.sampler'], 'flag');
});

test('selectors: the file counts, any selector flag replaces all of them', (t) => {
  const file = writeConfig(t, FILE);
  t.throws(() => resolve([]), { instanceOf: UsageError, message: /^run needs a selector \(a flag, or selectors in the configuration file\)/ });
  const fromFile = resolve(['--config', file]);
  t.deepEqual(fromFile.run.options.capture.selectors, [
    { kind: 'exe', pattern: 'python3' },
    { kind: 'exe', pattern: 'node*' },
  ]);
  t.is(fromFile.run.sources['selectors'], 'file');
  t.is(fromFile.run.sources['selectors.exe'], undefined, 'one setting');
  const fromFlag = resolve(['--config', file, '--port', '8080']);
  t.deepEqual(fromFlag.run.options.capture.selectors, [{ kind: 'port', port: 8080 }]);
  t.is(fromFlag.run.sources['selectors'], 'flag');
  const all = writeConfig(t, 'selectors:\n  all: true\n  pid: [1]\n');
  t.deepEqual(resolve(['--config', all]).run.options.capture.selectors, [{ kind: 'pid', pid: 1 }, { kind: 'all' }]);
});

test('log level: default < file < EBPF_OTEL_LOG_LEVEL < --log-level', (t) => {
  const file = writeConfig(t, FILE);
  t.is(resolve([], {}, { requireSelector: false }).run.logLevel, 'info');
  const fromFile = resolve(['--config', file]);
  t.is(fromFile.run.logLevel, 'warn');
  t.is(fromFile.run.sources['log.level'], 'file');
  const fromEnv = resolve(['--config', file], { EBPF_OTEL_LOG_LEVEL: 'error' });
  t.is(fromEnv.run.logLevel, 'error');
  t.is(fromEnv.run.sources['log.level'], 'env');
  const fromFlag = resolve(['--config', file], { EBPF_OTEL_LOG_LEVEL: 'error' }, { logLevelFlag: 'debug' });
  t.is(fromFlag.run.logLevel, 'debug');
  t.is(fromFlag.run.sources['log.level'], 'flag');
  const badEnv = resolve(['--config', file], { EBPF_OTEL_LOG_LEVEL: 'loud' });
  t.is(badEnv.run.logLevel, 'warn');
  t.deepEqual(badEnv.run.warnings, ['EBPF_OTEL_LOG_LEVEL=loud is not debug, info, warn or error; ignored']);
});

test('EBPF_OTEL_CONFIG names the file; --config wins over it', (t) => {
  const a = writeConfig(t, 'log:\n  level: warn\n');
  const b = writeConfig(t, 'log:\n  level: error\n');
  const viaEnv = resolve([], { EBPF_OTEL_CONFIG: a }, { requireSelector: false });
  t.is(viaEnv.run.configFile, a);
  t.is(viaEnv.run.logLevel, 'warn');
  const viaFlag = resolve(['--config', b], { EBPF_OTEL_CONFIG: a }, { requireSelector: false });
  t.is(viaFlag.run.configFile, b);
  t.is(viaFlag.run.logLevel, 'error');
  t.throws(() => resolve(['--config', path.join(path.dirname(a), 'missing.yaml')], {}, { requireSelector: false }), {
    instanceOf: UsageError,
    message: /^cannot read the configuration file .*missing\.yaml: no such file$/,
  });
  const bad = writeConfig(t, 'log:\n  level: loud\n');
  const err = t.throws(() => resolve(['--config', bad], {}, { requireSelector: false }), { instanceOf: ConfigFileError });
  t.is(err.message, `${bad}:2:10: log.level: expected one of debug, info, warn, error, got "loud"`);
  const notPower = writeConfig(t, 'capture:\n  ring_buffer_mib: 6\n');
  const err2 = t.throws(() => resolve(['--config', notPower], {}, { requireSelector: false }), { instanceOf: ConfigFileError });
  t.is(err2.message, `${notPower}:2:20: capture.ring_buffer_mib: expected a power of two from 1 to 1024, got the number 6`);
});

test('every file setting reaches the run options; list flags replace, header flags merge by name', (t) => {
  const file = writeConfig(
    t,
    `
selectors: {pid: [7]}
protocols: {enabled: [http1]}
capture: {bytes: 512, request_timeout: 5s, ring_buffer_mib: 2}
http:
  routes: [/users/:id]
  capture_query: true
  capture_headers: {request: [X-Request-Id], response: [content-type]}
redaction: {headers: [authorization, proxy-authorization, cookie, set-cookie, x-api-key]}
network: {tcp: false, flows: true, max_peers: 7, tcp_table_size: 64}
export:
  protocol: grpc
  endpoint: collector:4317
  headers: {x-tenant: file, x-file: f}
  compression: gzip
  timeout: 2s
  insecure: true
  tls: {ca_file: ca.pem, cert_file: /tls/cert.pem, key_file: /tls/key.pem}
  metric_interval: 15s
  batch: {max_queue_size: 4096, max_export_batch_size: 256, schedule_delay: 1s, export_timeout: 10s}
resource:
  attributes: {deployment.environment.name: prod}
  capture_command_args: true
health: {listen: "127.0.0.1:9464"}
duration: 1m
`,
  );
  const { run, otel } = resolve(['--config', file]);
  const o = run.options;
  t.deepEqual(o.capture, {
    selectors: [{ kind: 'pid', pid: 7 }],
    captureBytes: 512,
    ringBufferBytes: 2 * 1024 * 1024,
  });
  t.deepEqual(o.features['network'], { tcp: false, flows: true, maxPeersPerProcess: 7, tcpPeerEntries: 64 });
  t.deepEqual(o.protocols, ['http1']);
  t.deepEqual((o.protocolOptions['http1'] as Http1Options).routes, ['/users/:id']);
  t.true((o.protocolOptions['http1'] as Http1Options).captureQuery);
  t.deepEqual((o.protocolOptions['http1'] as Http1Options).captureHeaders, { request: ['x-request-id'], response: ['content-type'] });
  t.deepEqual(o.redactHeaders, ['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key']);
  t.is(o.requestTimeoutNs, 5e9);
  t.deepEqual(o.health, { host: '127.0.0.1', port: 9464 });
  t.is(o.duration, 60);
  t.deepEqual(o.otel, {});
  t.deepEqual(otel.traces.otlp, {
    protocol: 'grpc',
    url: 'collector:4317',
    headers: { 'x-tenant': 'file', 'x-file': 'f' },
    compression: 'gzip',
    timeoutMillis: 2000,
    insecure: true,
    certificate: path.join(path.dirname(file), 'ca.pem'),
    clientKey: '/tls/key.pem',
    clientCertificate: '/tls/cert.pem',
  });
  t.is(otel.metrics.exportIntervalMillis, 15000);
  t.deepEqual(otel.batch, { maxQueueSize: 4096, maxExportBatchSize: 256, scheduleDelayMillis: 1000, exportTimeoutMillis: 10000 });
  t.deepEqual(otel.resource, { attributes: { 'deployment.environment.name': 'prod' }, captureCommandArgs: true, maxProcesses: 4096 });
  t.deepEqual(otel.warnings, []);

  const over = resolve(['--config', file, '--route', '/orders/:id', '--otlp-headers', 'x-tenant=flag', '--capture-bytes', '64', '--protocols', 'http1']);
  t.deepEqual((over.run.options.protocolOptions['http1'] as Http1Options).routes, ['/orders/:id']);
  t.is(over.run.options.capture.captureBytes, 64);
  t.deepEqual(over.otel.traces.otlp?.headers, { 'x-tenant': 'flag', 'x-file': 'f' });
  t.is(over.run.sources['export.headers'], 'flag');
  t.is(over.run.sources['http.routes'], 'flag');
  t.is(over.run.sources['http.capture_headers.request'], 'file');
});

test('TLS flags, and unknown protocols refused as a usage error', (t) => {
  const { run, otel } = resolve(
    ['--all', '--otlp-endpoint', 'https://c:4318', '--otlp-certificate', '/ca.pem', '--otlp-client-key', '/k.pem', '--otlp-client-certificate', '/c.pem'],
    { OTEL_EXPORTER_OTLP_CERTIFICATE: '/env-ca.pem' },
  );
  t.like(run.options.otel, { certificate: '/ca.pem', clientKey: '/k.pem', clientCertificate: '/c.pem' });
  t.like(otel.traces.otlp, { certificate: '/ca.pem', clientKey: '/k.pem', clientCertificate: '/c.pem' });
  t.is(run.sources['export.tls.ca_file'], 'flag');
  t.throws(() => resolve(['--all', '--protocols', 'http1,smtp']), { instanceOf: UsageError, message: '--protocols: unknown protocol smtp (known: tls, http2, http1, redis)' });
});
