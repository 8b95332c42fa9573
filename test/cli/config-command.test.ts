import test from 'ava';
import { UsageError } from '../../src/cli/args';
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
  t.like(c.capture, { captureBytes: 4096, ringBufferBytes: 8 * 1024 * 1024 });
  t.deepEqual(c.routes, ['/users/:id']);
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
