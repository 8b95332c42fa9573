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
