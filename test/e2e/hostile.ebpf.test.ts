// Hostile traffic against a traced HTTP/1 server, end to end with real eBPF:
// noise, TLS, RESP and HTTP/2 on the HTTP port, a slowloris, a 1 MiB request
// line, a header past every limit, 1000-deep pipelining, a client that resets
// in the middle of a response, then a normal request. The agent stays up,
// exports no wrong span, the normal request is exact, and its own metrics say
// what it gave up.

import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import anyTest from 'ava';
import { ebpfTest } from '../helpers/ebpf';
import { ROOT, sleep, startAgent, startWorkload } from '../helpers/agent';
import type { ReceivedSpan } from '../helpers/otlp-receiver';
import { useOtlpReceiver } from '../helpers/use-otlp-receiver';

const test = ebpfTest.serial;
const PY = '/usr/bin/python3';
const PROGRAMS = path.join(ROOT, 'test', 'e2e', 'programs');
const run = promisify(execFile);

const otlp = useOtlpReceiver(anyTest);

test('hostile traffic: the agent stays up, no wrong span, the normal request exact, what was given up counted', async (t) => {
  t.timeout(120_000);
  const server = await startWorkload(PY, [path.join(PROGRAMS, 'http_server.py')], { OTEL_SERVICE_NAME: 'hostile' });
  const port = server.hello.port as number;
  let client: Record<string, unknown>;
  try {
    const agent = await startAgent(['run', '--pid', String(server.pid)], { env: otlp.env() });
    const { stdout } = await run(PY, [path.join(PROGRAMS, 'hostile_client.py'), String(port)], { timeout: 60_000 });
    client = JSON.parse(stdout) as Record<string, unknown>;
    await sleep(500);
    const stopped = await agent.stop();
    t.is(stopped.code, 0, 'the agent stayed up and stopped cleanly');
    t.notRegex(stopped.stderr, /TypeError|RangeError|at .*\.js:\d+/, 'no crash or stack in its log');
    t.log(stopped.stderr.split('\n').filter((l) => /records|parents|captured/.test(l)).join('\n'));
  } finally {
    server.child.kill();
  }
  t.deepEqual(client, {
    random: 385,
    tls: 0,
    resp: 357,
    h2: 340,
    slowloris: 200,
    long_target: 414,
    long_header: 431,
    pipelined: [1000, [200]],
    reset_after: true,
    normal: 200,
  }, 'the server answered as the test expects');

  const spans = otlp.receiver.spans.filter((s) => s.resource['process.pid'] === server.pid);
  const paths = (s: ReceivedSpan) => s.attributes['url.path'] as string | undefined;
  // No wrong span: every path is one a client sent, every status the one the server gave it.
  const expectedStatus = (p: string | undefined): number | undefined =>
    p === undefined ? undefined : p.startsWith('/p/') || p === '/items/slow' || p === '/items/7' || p === '/big' ? 200 : p === '/items/h' ? 431 : undefined;
  for (const s of spans) {
    const p = paths(s);
    if (p !== undefined) t.is(s.attributes['http.response.status_code'], expectedStatus(p), `${s.name} ${p}`);
  }
  const normal = spans.filter((s) => paths(s) === '/items/7');
  t.is(normal.length, 1);
  t.like(normal[0]!, { name: 'GET /items/{id}', kind: 2, status: { code: 0, message: '' } });
  t.like(normal[0]!.attributes, { 'http.request.method': 'GET', 'http.response.status_code': 200, 'http.response.body.size': 11, 'url.scheme': 'http' });
  t.is(spans.filter((s) => paths(s) === '/items/slow').length, 1, 'the slowloris request: one span once its head completed');
  // 1000-deep pipelining: a span per request, each paired with its own response.
  const piped = spans.filter((s) => paths(s)?.startsWith('/p/'));
  t.is(piped.length, 1000);
  t.deepEqual([...new Set(piped.map(paths))].length, 1000);
  // Rejected requests: a span each, status as the server answered.
  const rejected = spans.filter((s) => s.attributes['http.response.status_code'] === 414 || s.attributes['http.response.status_code'] === 431);
  t.deepEqual(rejected.map((s) => s.attributes['http.response.status_code']).sort(), [414, 431]);
  const long = rejected.find((s) => s.attributes['http.response.status_code'] === 414)!;
  t.is(long.attributes['url.path'], undefined, 'a target cut at the capture cap is never guessed');
  t.is(spans.filter((s) => paths(s) === '/big').length, 1, 'the reset response: one span');

  // What was given up, counted: the two requests cut short (the 1 MiB
  // target, the 200 KB header) became spans marked truncated; the TLS hello,
  // which gets no answer, is nobody's protocol and is muted; the bytes the
  // parser stepped over while hunting for a message start are counted.
  t.is(otlp.counter('ebpf_otel.protocol.truncated_requests'), 2);
  t.is(otlp.counter('ebpf_otel.connection.muted'), 1, 'the TLS connection: ignored and muted');
  t.true(otlp.counter('ebpf_otel.protocol.skipped_bytes') >= 4096, 'at least the noise was stepped over, counted');
  t.is(otlp.counter('ebpf_otel.protocol.pipelined_requests_given_up'), 0, '1000 deep fits the bounds');
});
