// Least privilege, proven: the agent runs as uid 0 with its capability
// bounding set cut to CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE and
// CAP_DAC_READ_SEARCH (no CAP_SYS_ADMIN), traces an application running as
// another user, and exports exact spans with the application's own
// OTEL_SERVICE_NAME. Without CAP_DAC_READ_SEARCH spans stay exact but that
// environment is unreadable (said once in a warning); without CAP_SYS_PTRACE
// the agent refuses to start with one sentence. tracefs is mounted here, as
// the deployment does it (an init step), not by a privilege of the agent.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import anyTest from 'ava';
import { ebpfTest } from '../helpers/ebpf';
import { BIN, ROOT, sleep, startAgent, startWorkload, type Workload } from '../helpers/agent';
import { useOtlpReceiver } from '../helpers/use-otlp-receiver';

const test = ebpfTest.serial;
const PY = '/usr/bin/python3';
const SERVER = path.join(ROOT, 'test', 'e2e', 'programs', 'http_server.py');
const SERVER_KIND = 2;
const ERROR = 2;
const NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups'];
const LEAST = ['bpf', 'perfmon', 'sys_ptrace', 'dac_read_search'];
/** CapEff bits of LEAST: 39, 38, 19, 2. */
const LEAST_BITS = (1n << 39n) | (1n << 38n) | (1n << 19n) | (1n << 2n);

const capped = (caps: string[]) => ['setpriv', `--bounding-set=-all,${caps.map((c) => '+' + c).join(',')}`, '--inh-caps=-all'];

const otlp = useOtlpReceiver(anyTest);
anyTest.before(() => {
  if (!fs.existsSync('/sys/kernel/tracing/events')) spawnSync('mount', ['-t', 'tracefs', 'nodev', '/sys/kernel/tracing']);
});

async function appAsNobody(): Promise<Workload> {
  return startWorkload('setpriv', [...NOBODY, PY, SERVER], { OTEL_SERVICE_NAME: 'least-privilege-app' });
}

function curl(port: number, p: string): string {
  return spawnSync('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${port}${p}`], { encoding: 'utf8' }).stdout;
}

function capEff(pid: number): bigint {
  const m = /^CapEff:\s+([0-9a-f]+)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return BigInt('0x' + m![1]);
}

async function healthGet(port: number, p: string): Promise<{ status: number; body: string }> {
  const r = await fetch(`http://127.0.0.1:${port}${p}`);
  return { status: r.status, body: await r.text() };
}

async function traced(caps: string[]) {
  const app = await appAsNobody();
  try {
    const uid = /^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${app.pid}/status`, 'utf8'))![1];
    if (uid !== '65534') throw new Error(`the application runs as uid ${uid}, not 65534`);
    const agent = await startAgent(['run', '--pid', String(app.pid), '--health-listen', '127.0.0.1:0'], { env: otlp.env(), prefix: capped(caps) });
    const eff = capEff(agent.pid);
    const healthPort = Number(/health and metrics on http:\/\/127\.0\.0\.1:(\d+)/.exec(agent.stderr())![1]);
    const healthz = await healthGet(healthPort, '/healthz');
    const port = app.hello.port as number;
    const codes = [curl(port, '/items/7'), curl(port, '/fail')];
    // The agent's own counters, live on /metrics, once both records are made.
    let metrics = '';
    for (let i = 0; i < 50 && !metrics.includes('ebpf_otel_protocol_records_total{ebpf_otel_protocol="http1"} 2\n'); i++) {
      await sleep(100);
      metrics = (await healthGet(healthPort, '/metrics')).body;
    }
    await sleep(300);
    const { code, stderr } = await agent.stop();
    const spans = otlp.spansOf(app.pid);
    return { eff, codes, code, stderr, spans, healthz, metrics };
  } finally {
    app.child.kill();
  }
}

test('CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH and nothing else: exact spans of another user\'s process, its service name', async (t) => {
  const r = await traced(LEAST);
  t.is(r.eff, LEAST_BITS, 'the agent ran with exactly the four capabilities');
  t.deepEqual(r.codes, ['200', '503']);
  t.is(r.code, 0, r.stderr);
  t.false(r.stderr.includes('CAP_DAC_READ_SEARCH'), 'no advisory with the full set');
  t.deepEqual(r.spans.map((s) => [s.kind, s.name, s.attributes['http.response.status_code'], s.status.code]), [
    [SERVER_KIND, 'GET /items/{id}', 200, 0],
    [SERVER_KIND, 'GET /fail', 503, ERROR],
  ]);
  t.is(r.spans[0]!.resource['service.name'], 'least-privilege-app', "read from the application's environment");
  t.deepEqual(r.healthz, { status: 200, body: 'ok\n' }, '/healthz once attached');
  t.regex(r.metrics, /^ebpf_otel_protocol_records_total\{ebpf_otel_protocol="http1"\} 2$/m);
  t.regex(r.metrics, /^ebpf_otel_process_count 1$/m);
  t.regex(r.metrics, /^ebpf_otel_capture_lost_events_total 0$/m);
});

test('without CAP_DAC_READ_SEARCH: spans exact, the environment unread and said so once', async (t) => {
  const r = await traced(['bpf', 'perfmon', 'sys_ptrace']);
  t.is(r.eff, (1n << 39n) | (1n << 38n) | (1n << 19n));
  t.is(r.code, 0, r.stderr);
  t.deepEqual(r.spans.map((s) => [s.name, s.attributes['http.response.status_code']]), [
    ['GET /items/{id}', 200],
    ['GET /fail', 503],
  ]);
  t.is(r.spans[0]!.resource['service.name'], 'http_server', "the script's name: its environment could not be read");
  t.is(r.stderr.split('\n').filter((l) => l.includes('without CAP_DAC_READ_SEARCH')).length, 1, r.stderr);
});

test('without CAP_SYS_PTRACE the agent does not start, and says which capability is missing', (t) => {
  const [setpriv, ...limits] = capped(['bpf', 'perfmon', 'dac_read_search']) as [string, ...string[]];
  const r = spawnSync(setpriv, [...limits, BIN, 'run', '--pid', String(process.pid), '--duration', '1s'], {
    encoding: 'utf8',
    timeout: 20000,
  });
  t.not(r.status, 0);
  t.regex(r.stderr, /missing privileges: run as root or grant CAP_SYS_PTRACE/);
});
