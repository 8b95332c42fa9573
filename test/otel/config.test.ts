import test from 'ava';
import { loadOtelConfig, parseHeaders } from '../../src/otel/config';

test('no endpoint: spans to the console, metrics off, spec defaults', (t) => {
  const c = loadOtelConfig({});
  t.is(c.traces.exporter, 'console');
  t.is(c.metrics.exporter, 'none');
  t.deepEqual(c.batch, { maxQueueSize: 16384, maxExportBatchSize: 1024, scheduleDelayMillis: 5000, exportTimeoutMillis: 30000 });
  t.is(c.metrics.exportIntervalMillis, 60000);
  t.is(c.metrics.temporality, 'cumulative');
  t.deepEqual(c.sampler, { kind: 'parentbased_always_on', ratio: 1, parentBased: true });
  t.deepEqual(c.warnings, []);
});

test('generic endpoint with http/protobuf (the default) gets the signal paths', (t) => {
  const c = loadOtelConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' });
  t.is(c.traces.exporter, 'otlp');
  t.is(c.traces.otlp?.protocol, 'http/protobuf');
  t.is(c.traces.otlp?.url, 'http://collector:4318/v1/traces');
  t.is(c.metrics.otlp?.url, 'http://collector:4318/v1/metrics');
  const slash = loadOtelConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://c:4318/base/' });
  t.is(slash.traces.otlp?.url, 'https://c:4318/base/v1/traces');
});

test('signal endpoints are used as given and win over the generic one', (t) => {
  const c = loadOtelConfig({
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://generic:4318',
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://traces:9999/custom',
  });
  t.is(c.traces.otlp?.url, 'http://traces:9999/custom');
  t.is(c.metrics.otlp?.url, 'http://generic:4318/v1/metrics');
});

test('grpc keeps the endpoint as given, per signal protocol', (t) => {
  const c = loadOtelConfig({
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4317',
    OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
    OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http/protobuf',
    OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://collector:4318/v1/metrics',
  });
  t.is(c.traces.otlp?.protocol, 'grpc');
  t.is(c.traces.otlp?.url, 'http://collector:4317');
  t.is(c.metrics.otlp?.protocol, 'http/protobuf');
});

test('headers, compression, timeout, TLS files, insecure', (t) => {
  const c = loadOtelConfig({
    OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4317',
    OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
    OTEL_EXPORTER_OTLP_HEADERS: 'api-key=a%20b,x-tenant=one',
    OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-tenant=two',
    OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip',
    OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '2500',
    OTEL_EXPORTER_OTLP_INSECURE: 'true',
    OTEL_EXPORTER_OTLP_CERTIFICATE: '/ca.pem',
    OTEL_EXPORTER_OTLP_CLIENT_KEY: '/key.pem',
    OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: '/cert.pem',
  });
  const tr = c.traces.otlp!;
  t.deepEqual(tr.headers, { 'api-key': 'a b', 'x-tenant': 'two' });
  t.is(tr.compression, 'gzip');
  t.is(tr.timeoutMillis, 2500);
  t.is(c.metrics.otlp!.timeoutMillis, 10000);
  t.true(tr.insecure);
  t.is(tr.certificate, '/ca.pem');
  t.is(tr.clientKey, '/key.pem');
  t.is(tr.clientCertificate, '/cert.pem');
});

test('CLI options override the environment', (t) => {
  const c = loadOtelConfig(
    { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://env:4318', OTEL_TRACES_SAMPLER: 'always_off', OTEL_BSP_MAX_QUEUE_SIZE: '100' },
    { endpoint: 'http://cli:4317', protocol: 'grpc', sampler: 'traceidratio', samplerArg: '0.5', maxQueueSize: 10, metricExportIntervalMillis: 1000, headers: { a: 'b' } },
  );
  t.is(c.traces.otlp?.url, 'http://cli:4317');
  t.is(c.traces.otlp?.protocol, 'grpc');
  t.deepEqual(c.sampler, { kind: 'traceidratio', ratio: 0.5, parentBased: false });
  t.is(c.batch.maxQueueSize, 10);
  t.is(c.batch.maxExportBatchSize, 10, 'batch size bounded by the queue');
  t.is(c.metrics.exportIntervalMillis, 1000);
  t.deepEqual(c.traces.otlp?.headers, { a: 'b' });
  const forced = loadOtelConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://env:4318' }, { console: true });
  t.is(forced.traces.exporter, 'console');
  t.is(forced.metrics.exporter, 'none');
});

test('exporter selection variables and OTEL_SDK_DISABLED', (t) => {
  t.is(loadOtelConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'console' }).traces.exporter, 'console');
  t.is(loadOtelConfig({ OTEL_TRACES_EXPORTER: 'none' }).traces.exporter, 'none');
  t.is(loadOtelConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_METRICS_EXPORTER: 'none' }).metrics.exporter, 'none');
  const off = loadOtelConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' });
  t.is(off.traces.exporter, 'none');
  t.is(off.metrics.exporter, 'none');
  const missing = loadOtelConfig({ OTEL_TRACES_EXPORTER: 'otlp' });
  t.is(missing.traces.exporter, 'console');
  t.regex(missing.warnings.join('\n'), /no endpoint/);
});

test('bad values fall back to defaults with one warning each', (t) => {
  const c = loadOtelConfig({
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: 'soon',
    OTEL_METRIC_EXPORT_INTERVAL: '-5',
    OTEL_EXPORTER_OTLP_COMPRESSION: 'zstd',
    OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: 'weekly',
  });
  t.is(c.traces.otlp?.protocol, 'http/protobuf');
  t.is(c.batch.scheduleDelayMillis, 5000);
  t.is(c.metrics.exportIntervalMillis, 60000);
  t.is(c.traces.otlp?.compression, 'none');
  t.is(c.metrics.temporality, 'cumulative');
  t.true(c.warnings.length >= 5);
});

test('header lists are percent-decoded; malformed entries are skipped', (t) => {
  const w: string[] = [];
  t.deepEqual(parseHeaders('a=1, b = x%3Dy ,=nokey,c=%zz,d=', 'H', w), { a: '1', b: 'x=y', d: '' });
  t.is(w.length, 2);
});

test('three layers: flags over the environment over the file, per setting; headers and attributes merge by name', (t) => {
  const file = {
    endpoint: 'http://file:4318',
    protocol: 'grpc' as const,
    headers: { 'x-file': 'f', 'x-both': 'file' },
    compression: 'gzip' as const,
    timeoutMillis: 1111,
    certificate: '/file/ca.pem',
    sampler: 'traceidratio',
    samplerArg: '0.5',
    metricExportIntervalMillis: 2222,
    maxQueueSize: 300,
    scheduleDelayMillis: 0,
    resourceAttributes: { team: 'a', tier: 'file' },
    captureCommandArgs: true,
  };
  const onlyFile = loadOtelConfig({}, {}, file);
  t.like(onlyFile.traces.otlp, { url: 'http://file:4318', protocol: 'grpc', compression: 'gzip', timeoutMillis: 1111, certificate: '/file/ca.pem' });
  t.deepEqual(onlyFile.traces.otlp?.headers, { 'x-file': 'f', 'x-both': 'file' });
  t.like(onlyFile.sampler, { kind: 'traceidratio', ratio: 0.5 });
  t.is(onlyFile.metrics.exportIntervalMillis, 2222);
  t.like(onlyFile.batch, { maxQueueSize: 300, maxExportBatchSize: 300, scheduleDelayMillis: 0 });
  t.deepEqual(onlyFile.resource, { attributes: { team: 'a', tier: 'file' }, captureCommandArgs: true, maxProcesses: 4096 });

  const env = {
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://env:4318',
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
    OTEL_EXPORTER_OTLP_HEADERS: 'x-both=env,x-env=e',
    OTEL_TRACES_SAMPLER: 'always_off',
    OTEL_BSP_SCHEDULE_DELAY: '700',
  };
  const withEnv = loadOtelConfig(env, {}, file);
  t.like(withEnv.traces.otlp, { url: 'http://env:4318/v1/traces', protocol: 'http/protobuf', compression: 'gzip', timeoutMillis: 1111 });
  t.deepEqual(withEnv.traces.otlp?.headers, { 'x-file': 'f', 'x-both': 'env', 'x-env': 'e' });
  t.is(withEnv.sampler.kind, 'always_off');
  t.is(withEnv.batch.scheduleDelayMillis, 700);

  const withFlags = loadOtelConfig(env, { endpoint: 'http://flag:4318', headers: { 'x-both': 'flag' }, sampler: 'always_on', certificate: '/flag/ca.pem' }, file);
  t.like(withFlags.traces.otlp, { url: 'http://flag:4318/v1/traces', certificate: '/flag/ca.pem' });
  t.deepEqual(withFlags.traces.otlp?.headers, { 'x-file': 'f', 'x-both': 'flag', 'x-env': 'e' });
  t.is(withFlags.sampler.kind, 'always_on');
  t.deepEqual(withFlags.warnings, []);

  // A signal's own endpoint wins over the shared one, whichever layer each comes from.
  const specific = loadOtelConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://env:4318' }, {}, { tracesEndpoint: 'http://file:4318/t' });
  t.is(specific.traces.otlp?.url, 'http://file:4318/t');
  t.is(specific.metrics.otlp?.url, 'http://env:4318/v1/metrics');
  // A bad variable falls back to the file's value, and says so.
  const bad = loadOtelConfig({ OTEL_EXPORTER_OTLP_PROTOCOL: 'udp', OTEL_METRIC_EXPORT_INTERVAL: 'soon' }, {}, { endpoint: 'http://c:4317', protocol: 'grpc', metricExportIntervalMillis: 2222 });
  t.is(bad.traces.otlp?.protocol, 'grpc');
  t.is(bad.metrics.exportIntervalMillis, 2222);
  t.deepEqual(bad.warnings, [
    'OTLP protocol udp is not supported (grpc or http/protobuf); using grpc',
    'OTEL_METRIC_EXPORT_INTERVAL=soon is not a number >= 1; using 2222',
  ]);
});

test('a batch size above the queue size is clamped; a warning only when someone chose it', (t) => {
  t.deepEqual(loadOtelConfig({}, {}, { maxQueueSize: 300 }).warnings, []);
  const chosen = loadOtelConfig({ OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '500' }, {}, { maxQueueSize: 300 });
  t.is(chosen.batch.maxExportBatchSize, 300);
  t.deepEqual(chosen.warnings, ['the span batch size (500) exceeds the span queue size (300); using 300']);
});
