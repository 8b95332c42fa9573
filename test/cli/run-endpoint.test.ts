// `ebpf-otel run` with a bad OTLP endpoint stops before starting anything:
// exit 2 and one line on stderr naming the setting, where its value came
// from and the value (no root needed: nothing is loaded).

import { spawnSync } from 'node:child_process';
import test from 'ava';
import { BIN } from '../helpers/agent';

function run(args: string[], extraEnv: Record<string, string> = {}) {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extraEnv };
  for (const k of Object.keys(env)) if (k.startsWith('OTEL_') && !(k in extraEnv)) delete env[k];
  delete env['EBPF_OTEL_CONFIG'];
  return spawnSync(BIN, ['run', '--all', ...args], { encoding: 'utf8', env, timeout: 20000 });
}

test('--otlp-endpoint ht!tp://::bad: one line, exit 2', (t) => {
  const r = run(['--otlp-endpoint', 'ht!tp://::bad']);
  t.is(r.status, 2);
  t.is(r.stdout, '');
  t.is(r.stderr, 'ebpf-otel: export.endpoint (flag --otlp-endpoint): expected a URL such as http://collector:4318, got "ht!tp://::bad"\n');
});

test('--otlp-endpoint with port 99999: one line naming the flag and the value, exit 2', (t) => {
  const r = run(['--otlp-endpoint', 'http://127.0.0.1:99999']);
  t.is(r.status, 2);
  t.is(r.stderr, 'ebpf-otel: export.endpoint (flag --otlp-endpoint): port 99999 is out of range (at most 65535) in "http://127.0.0.1:99999"\n');
});

test('OTEL_EXPORTER_OTLP_LOGS_ENDPOINT without a scheme under http/protobuf: one line naming the variable, exit 2', (t) => {
  const r = run([], { OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: 'collector:4317' });
  t.is(r.status, 2);
  t.is(
    r.stderr,
    'ebpf-otel: export.logs_endpoint (environment variable OTEL_EXPORTER_OTLP_LOGS_ENDPOINT): expected an http:// or https:// URL with http/protobuf (HOST:PORT is for grpc), got "collector:4317"\n',
  );
});
