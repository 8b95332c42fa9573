// Every OTLP endpoint, from every layer (flags, OTEL_EXPORTER_OTLP_*ENDPOINT,
// the file), is checked with the rest of the configuration: a bad one is a
// UsageError of one line naming the setting, where the value came from and
// the value (issue 12, 7a: a bad endpoint used to warn and run, or fail with
// a bare "Invalid URL").

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { UsageError } from '../../src/config/flags';
import { parseRunFlags, resolveRunConfig } from '../../src/config/run-config';
import { endpointProblem, loadOtelConfig, type Env } from '../../src/otel/config';

function usageError(t: ExecutionContext, argv: string[], env: Env = {}): string {
  const e = t.throws(() => resolveRunConfig(parseRunFlags(argv), env), { instanceOf: UsageError });
  return e?.message ?? '';
}

function writeConfig(t: ExecutionContext, text: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ebpf-otel-endpoints-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'agent.yaml');
  fs.writeFileSync(file, text);
  return file;
}

test('endpointProblem: URLs, HOST:PORT and unix:// for grpc only, ports in range', (t) => {
  for (const ok of ['http://collector:4318', 'https://c:4318/base/', 'http://[::1]:4318', 'HTTP://C:1']) {
    t.is(endpointProblem(ok), undefined, ok);
    t.is(endpointProblem(ok, 'http/protobuf'), undefined, ok);
    t.is(endpointProblem(ok, 'grpc'), undefined, ok);
  }
  for (const grpcOnly of ['collector:4317', '[::1]:4317', 'unix:///run/otel.sock']) {
    t.is(endpointProblem(grpcOnly), undefined, grpcOnly);
    t.is(endpointProblem(grpcOnly, 'grpc'), undefined, grpcOnly);
    t.regex(endpointProblem(grpcOnly, 'http/protobuf') ?? '', /expected an http:\/\/ or https:\/\/ URL with http\/protobuf \((HOST:PORT|unix:\/\/) is for grpc\)/);
  }
  t.is(endpointProblem('ht!tp://::bad'), 'expected a URL such as http://collector:4318 (or HOST:PORT for grpc), got "ht!tp://::bad"');
  t.is(endpointProblem('ht!tp://::bad', 'http/protobuf'), 'expected a URL such as http://collector:4318, got "ht!tp://::bad"');
  t.is(endpointProblem('http://127.0.0.1:99999'), 'port 99999 is out of range (at most 65535) in "http://127.0.0.1:99999"');
  t.is(endpointProblem('collector:70000', 'grpc'), 'port 70000 is out of range (at most 65535) in "collector:70000"');
  t.is(endpointProblem('ftp://c:21'), 'expected an http:// or https:// URL, got "ftp://c:21"');
  t.is(endpointProblem('http://[::1'), 'expected a URL such as http://collector:4318, got "http://[::1"');
  t.is(endpointProblem('http://'), 'expected a URL such as http://collector:4318, got "http://"');
  t.is(endpointProblem('collector'), 'expected a URL such as http://collector:4318 (or HOST:PORT for grpc), got "collector"');
  t.is(endpointProblem('unix://'), 'expected unix:///PATH, got "unix://"');
});

test('a bad flag endpoint: one line naming the flag and the value', (t) => {
  t.is(usageError(t, ['--all', '--otlp-endpoint', 'ht!tp://::bad']), 'export.endpoint (flag --otlp-endpoint): expected a URL such as http://collector:4318, got "ht!tp://::bad"');
  t.is(
    usageError(t, ['--all', '--otlp-endpoint', 'http://127.0.0.1:99999']),
    'export.endpoint (flag --otlp-endpoint): port 99999 is out of range (at most 65535) in "http://127.0.0.1:99999"',
  );
  t.is(
    usageError(t, ['--all', '--otlp-logs-endpoint', 'collector:4317']),
    'export.logs_endpoint (flag --otlp-logs-endpoint): expected an http:// or https:// URL with http/protobuf (HOST:PORT is for grpc), got "collector:4317"',
  );
  // HOST:PORT is fine for grpc, from any layer that sets the protocol.
  t.notThrows(() => resolveRunConfig(parseRunFlags(['--all', '--otlp-endpoint', 'collector:4317', '--otlp-protocol', 'grpc']), {}));
  t.notThrows(() => resolveRunConfig(parseRunFlags(['--all', '--otlp-endpoint', 'collector:4317']), { OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }));
});

test('a bad endpoint variable: one line naming the variable, even when a flag hides it', (t) => {
  t.is(
    usageError(t, ['--all'], { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:123456/v1/traces' }),
    'export.traces_endpoint (environment variable OTEL_EXPORTER_OTLP_TRACES_ENDPOINT): port 123456 is out of range (at most 65535) in "http://c:123456/v1/traces"',
  );
  t.is(
    usageError(t, ['--all', '--otlp-endpoint', 'http://flag:4318'], { OTEL_EXPORTER_OTLP_ENDPOINT: 'ht!tp://::bad' }),
    'export.endpoint (environment variable OTEL_EXPORTER_OTLP_ENDPOINT): expected a URL such as http://collector:4318 (or HOST:PORT for grpc), got "ht!tp://::bad"',
  );
  // A good variable below a flag is fine.
  t.notThrows(() => resolveRunConfig(parseRunFlags(['--all', '--otlp-endpoint', 'http://flag:4318']), { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://env:4318' }));
});

test("a file's endpoint wrong for the protocol in effect: FILE:LINE:COL, the setting and the value", (t) => {
  const file = writeConfig(t, 'selectors: {all: true}\nexport:\n  endpoint: collector:4317\n');
  t.is(
    usageError(t, ['--config', file]),
    `export.endpoint (${file}:3:13): expected an http:// or https:// URL with http/protobuf (HOST:PORT is for grpc), got "collector:4317"`,
  );
  // The same file under grpc from the environment is fine.
  t.notThrows(() => resolveRunConfig(parseRunFlags(['--config', file]), { OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }));
});

test('several bad endpoints: one line each', (t) => {
  const message = usageError(t, ['--all', '--otlp-traces-endpoint', 'ftp://t:1'], { OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://m:99999' });
  t.deepEqual(message.split('\n'), [
    'export.traces_endpoint (flag --otlp-traces-endpoint): expected an http:// or https:// URL, got "ftp://t:1"',
    'ebpf-otel: export.metrics_endpoint (environment variable OTEL_EXPORTER_OTLP_METRICS_ENDPOINT): port 99999 is out of range (at most 65535) in "http://m:99999"',
  ]);
});

test('loadOtelConfig: a signal with a bad endpoint is not exported, the problem named once with its source', (t) => {
  const c = loadOtelConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'ht!tp://::bad' });
  t.is(c.traces.exporter, 'console');
  t.is(c.metrics.exporter, 'none');
  t.deepEqual(c.endpointProblems, [
    {
      setting: 'endpoint',
      source: { layer: 'env', variable: 'OTEL_EXPORTER_OTLP_ENDPOINT' },
      value: 'ht!tp://::bad',
      message: 'expected a URL such as http://collector:4318, got "ht!tp://::bad"',
    },
  ]);
  t.deepEqual(loadOtelConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }).endpointProblems, []);
});
