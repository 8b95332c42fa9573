// HTTP/1 to OTLP, end to end with real eBPF: real servers and clients, the
// real CLI (`ebpf-otel run`), and a real OTLP gRPC receiver decoding with the
// official protobuf schema. Asserts exact spans and metric points.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import anyTest, { type ExecutionContext } from 'ava';
import { ebpfTest } from '../helpers/ebpf';
import { ROOT, sleep, startAgent, startWorkload } from '../helpers/agent';
import { OtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver';
import { useOtlpReceiver } from '../helpers/use-otlp-receiver';

const test = ebpfTest.serial;
const PY = '/usr/bin/python3';
const PROGRAMS = path.join(ROOT, 'test', 'e2e', 'programs');
const SERVER_KIND = 2;
const CLIENT_KIND = 3;
const ERROR = 2;

const otlp = useOtlpReceiver(anyTest);

function curl(port: number, urlPath: string, headers: string[] = []): { status: string; before: bigint; after: bigint } {
  const before = BigInt(Date.now()) * 1_000_000n;
  const r = spawnSync('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', ...headers.flatMap((h) => ['-H', h]), `http://127.0.0.1:${port}${urlPath}`], {
    encoding: 'utf8',
  });
  const after = BigInt(Date.now() + 1) * 1_000_000n;
  return { status: r.stdout, before, after };
}

const CURL_VERSION = /^curl (\S+)/.exec(spawnSync('curl', ['--version'], { encoding: 'utf8' }).stdout)?.[1] ?? '?';

function assertTiming(t: ExecutionContext, s: ReceivedSpan, before: bigint, after: bigint) {
  t.true(s.endTimeUnixNano > s.startTimeUnixNano, 'duration > 0');
  t.true(s.startTimeUnixNano >= before, `span starts after the client started (${s.startTimeUnixNano} >= ${before})`);
  t.true(s.endTimeUnixNano <= after, `span ends before the client saw the end (${s.endTimeUnixNano} <= ${after})`);
}

test('Python threaded server hit by curl, `run --exe python3`: one SERVER span per request, exact attributes, metrics', async (t) => {
  const server = await startWorkload(PY, [path.join(PROGRAMS, 'http_server.py')], { OTEL_SERVICE_NAME: 'e2e-python' });
  const port = server.hello.port as number;
  try {
    const agent = await startAgent(['run', '--exe', 'python3'], { env: otlp.env() });
    const calls = [
      ['/items/1', []],
      ['/items/22', ['traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', 'tracestate: congo=t61rcWkgMzE']],
      ['/slow', []],
      ['/fail', []],
      ['/missing?secret=1', []],
    ] as const;
    const results = calls.map(([p, h]) => curl(port, p, [...h]));
    t.deepEqual(results.map((r) => r.status), ['200', '200', '200', '503', '404']);
    await sleep(300);
    const { code, stderr } = await agent.stop();
    t.is(code, 0);
    t.log(stderr.split('\n').filter((l) => !l.includes('ready')).join('\n'));

    const spans = otlp.spansOf(server.pid);
    t.is(spans.length, 5, 'exactly one span per request');
    t.true(spans.every((s) => s.kind === SERVER_KIND));
    t.deepEqual(spans.map((s) => s.name), ['GET /items/{id}', 'GET /items/{id}', 'GET /slow', 'GET /fail', 'GET /missing']);
    const [a, b, slow, fail, missing] = spans as [ReceivedSpan, ReceivedSpan, ReceivedSpan, ReceivedSpan, ReceivedSpan];
    const peerPort = a.attributes['client.port'] as number;
    t.true(peerPort > 0);
    t.deepEqual(a.attributes, {
      'http.request.method': 'GET',
      'url.path': '/items/1',
      'url.scheme': 'http',
      'http.route': '/items/{id}',
      'http.response.status_code': 200,
      'network.protocol.version': '1.1',
      'server.address': '127.0.0.1',
      'server.port': port,
      'client.address': '127.0.0.1',
      'client.port': peerPort,
      'network.peer.address': '127.0.0.1',
      'network.peer.port': peerPort,
      'user_agent.original': `curl/${CURL_VERSION}`,
      'http.request.body.size': 0,
      'http.response.body.size': 11,
    });
    t.is(a.status.code, 0);
    t.is(a.parentSpanId, '');
    results.forEach((r, i) => assertTiming(t, spans[i]!, r.before, r.after));
    t.true(slow.endTimeUnixNano - slow.startTimeUnixNano >= 50_000_000n, 'the 50 ms handler is inside the span');

    // The carried traceparent puts the span into that trace, under that parent.
    t.is(b.traceId, '0af7651916cd43dd8448eb211c80319c');
    t.is(b.parentSpanId, 'b7ad6b7169203331');
    t.is(b.traceState, 'congo=t61rcWkgMzE');
    t.not(a.traceId, b.traceId);
    // Later requests do not inherit it.
    t.not(slow.traceId, b.traceId);

    t.is(fail.status.code, ERROR);
    t.is(fail.attributes['error.type'], '503');
    t.is(missing.status.code, 0, '4xx is not a server error');
    t.is(missing.attributes['url.path'], '/missing');
    t.false('url.query' in missing.attributes, 'query strings are off by default');

    t.like(a.resource, { 'service.name': 'e2e-python', 'process.pid': server.pid, 'telemetry.distro.name': 'ebpf-otel-sidecar' });

    // Duration histograms: counts per route and status, exported at shutdown.
    const points = otlp.receiver.latestPoints('http.server.request.duration', (p) => p.resource['process.pid'] === server.pid);
    const counts = Object.fromEntries(points.map((p) => [`${p.attributes['http.route']} ${p.attributes['http.response.status_code']}`, p.histogram!.count]));
    t.deepEqual(counts, { '/items/{id} 200': 2, '/slow 200': 1, '/fail 503': 1, '/missing 404': 1 });
    const slowPoint = points.find((p) => p.attributes['http.route'] === '/slow')!;
    t.is(slowPoint.metric.unit, 's');
    t.true(slowPoint.histogram!.sum! >= 0.05);
    t.deepEqual(slowPoint.histogram!.explicitBounds, [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]);
  } finally {
    server.child.kill();
  }
});

test('a configuration file: selectors, header capture with redaction, resource attributes, through `run --config`', async (t) => {
  const server = await startWorkload(PY, [path.join(PROGRAMS, 'http_server.py')], { OTEL_SERVICE_NAME: 'e2e-config' });
  const port = server.hello.port as number;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ebpf-otel-e2e-config-'));
  const file = path.join(dir, 'agent.yaml');
  fs.writeFileSync(
    file,
    [
      `selectors: {pid: [${server.pid}]}`,
      'http:',
      '  capture_headers: {request: [X-Request-Id, x-tenant], response: [content-type]}',
      'resource:',
      '  attributes: {deployment.environment.name: e2e, service.name: overridden-by-the-process}',
      'export:',
      '  endpoint: ${RECEIVER}',
      '  protocol: grpc',
      '',
    ].join('\n'),
  );
  try {
    const agent = await startAgent(['run', '--config', file], { env: { RECEIVER: otlp.receiver.grpcUrl, OTEL_METRIC_EXPORT_INTERVAL: '60000' } });
    const r = curl(port, '/items/7', ['X-Request-Id: req-1', 'X-Request-Id: req-2', 'Authorization: Bearer s3cr3t', 'Cookie: session=abc']);
    t.is(r.status, '200');
    await sleep(300);
    const { code } = await agent.stop();
    t.is(code, 0);
    const spans = otlp.spansOf(server.pid);
    t.is(spans.length, 1);
    const s = spans[0]!;
    t.deepEqual(s.attributes['http.request.header.x-request-id'], ['req-1', 'req-2']);
    t.false('http.request.header.x-tenant' in s.attributes, 'a header the request did not carry');
    t.deepEqual(s.attributes['http.response.header.content-type'], ['application/json']);
    t.deepEqual(
      Object.keys(s.attributes).filter((k) => k.startsWith('http.request.header.') || k.startsWith('http.response.header.')).sort(),
      ['http.request.header.x-request-id', 'http.response.header.content-type'],
    );
    t.false(JSON.stringify(s.attributes).includes('s3cr3t'), 'no credential anywhere');
    t.false(JSON.stringify(s.attributes).includes('session=abc'));
    t.is(s.resource['deployment.environment.name'], 'e2e');
    t.is(s.resource['service.name'], 'e2e-config', "the process's own OTEL_SERVICE_NAME wins over the file");
  } finally {
    server.child.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('Node http server and keep-alive client in one process: SERVER and CLIENT spans, chunked, 5 MB, upload, traceparent', async (t) => {
  const w = await startWorkload(process.execPath, [path.join(PROGRAMS, 'http_node.js')]);
  const agent = await startAgent(['run', '--pid', String(w.pid)], { env: otlp.env() });
  w.go();
  const result = await w.result();
  await sleep(300);
  const { code, stderr } = await agent.stop();
  t.is(code, 0);
  t.log(stderr.split('\n').filter((l) => /captured|parents:/.test(l)).join('\n'));
  const spans = otlp.spansOf(w.pid);
  const servers = spans.filter((s) => s.kind === SERVER_KIND);
  const clients = spans.filter((s) => s.kind === CLIENT_KIND);
  t.is(servers.length, 8);
  t.is(clients.length, 8);
  t.deepEqual(servers.map((s) => s.name), [
    'GET /items/{id}', 'GET /items/{id}', 'GET /items/{id}', 'GET /chunked', 'GET /big', 'POST /upload', 'GET /fail', 'GET /missing',
  ]);
  t.deepEqual(clients.map((s) => s.name), ['GET', 'GET', 'GET', 'GET', 'GET', 'POST', 'GET', 'GET']);
  t.deepEqual(servers.map((s) => s.attributes['http.response.status_code']), [200, 200, 200, 200, 200, 201, 500, 404]);
  t.deepEqual(clients.map((s) => s.status.code), [0, 0, 0, 0, 0, 0, ERROR, ERROR], 'clients: 4xx and 5xx are errors');
  t.deepEqual(servers.map((s) => s.status.code), [0, 0, 0, 0, 0, 0, ERROR, 0], 'servers: only 5xx');
  t.is(clients[7]!.attributes['error.type'], '404');
  t.is(servers[3]!.attributes['http.response.body.size'], 18, 'chunked body size');
  t.is(servers[4]!.attributes['http.response.body.size'], 5_000_000, 'true size of a 5 MB body captured 16 KiB at a time');
  t.is(clients[4]!.attributes['http.response.body.size'], 5_000_000);
  t.is(servers[5]!.attributes['http.request.body.size'], 100_000);
  const port = w.hello.port as number;
  t.is(clients[0]!.attributes['url.full'], `http://127.0.0.1:${port}/items/1`);
  t.is(clients[0]!.attributes['server.port'], port);

  // The client request carried a traceparent: the client span takes its ids,
  // and the server span of the same request is its child.
  const [, traceId, spanId] = (result.traceparent as string).split('-') as [string, string, string];
  t.is(clients[1]!.traceId, traceId);
  t.is(clients[1]!.spanId, spanId);
  t.is(servers[1]!.traceId, traceId);
  t.is(servers[1]!.parentSpanId, spanId);
  t.not(servers[2]!.traceId, traceId, 'the next request on the keep-alive connection does not inherit it');
  t.not(clients[2]!.traceId, traceId);
  // Both ends are in view: every server span is the child of the client span of
  // the same request, in its trace; each request is its own trace.
  servers.forEach((s, i) => {
    t.is(s.parentSpanId, clients[i]!.spanId, `request ${i}`);
    t.is(s.traceId, clients[i]!.traceId, `request ${i}`);
  });
  t.is(new Set(clients.map((c) => c.traceId)).size, 8, 'keep-alive never glues requests into one trace');
  for (const s of spans) t.true(s.endTimeUnixNano > s.startTimeUnixNano);
});

test('pipelined requests over one socket: one span each, in order', async (t) => {
  const server = await startWorkload(PY, [path.join(PROGRAMS, 'http_server.py')]);
  const port = server.hello.port as number;
  try {
    const agent = await startAgent(['run', '--pid', String(server.pid)], { env: otlp.env() });
    const r = spawnSync(PY, [path.join(PROGRAMS, 'http_pipeline.py'), String(port), '/items/7', '/fail', '/items/8'], { encoding: 'utf8' });
    t.is(r.stdout.trim(), '[200, 503, 200]');
    await sleep(300);
    await agent.stop();
    const spans = otlp.spansOf(server.pid);
    t.deepEqual(spans.map((s) => [s.name, s.attributes['url.path'], s.attributes['http.response.status_code']]), [
      ['GET /items/{id}', '/items/7', 200],
      ['GET /fail', '/fail', 503],
      ['GET /items/{id}', '/items/8', 200],
    ]);
  } finally {
    server.child.kill();
  }
});

test('attach in mid-stream: a keep-alive connection opened before the agent yields only the requests it saw whole', async (t) => {
  const server = await startWorkload(PY, [path.join(PROGRAMS, 'http_server.py')]);
  const port = server.hello.port as number;
  try {
    const client = await startWorkload(PY, [path.join(PROGRAMS, 'http_midstream.py'), String(port)]);
    const agent = await startAgent(['run', '--pid', String(server.pid)], { env: otlp.env() });
    client.go();
    t.deepEqual(await client.result(), { status: 200 });
    await sleep(300);
    await agent.stop();
    const spans = otlp.spansOf(server.pid);
    t.deepEqual(spans.map((s) => [s.name, s.attributes['url.path'], s.attributes['http.response.status_code']]), [
      ['GET /items/{id}', '/items/1002', 200],
    ]);
  } finally {
    server.child.kill();
  }
});

test('a collector that is down: one clear log line, spans counted as dropped, exit 0 after a bounded flush', async (t) => {
  const server = await startWorkload(PY, [path.join(PROGRAMS, 'http_server.py')]);
  const port = server.hello.port as number;
  try {
    // A port nobody listens on: take one, then close it.
    const closed = await OtlpReceiver.start();
    const deadUrl = closed.grpcUrl;
    await closed.close();
    const agent = await startAgent(['run', '--pid', String(server.pid)], {
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: deadUrl, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_BSP_SCHEDULE_DELAY: '200' },
    });
    for (const id of [1, 2, 3]) t.is(curl(port, `/items/${id}`).status, '200');
    await sleep(300);
    const started = Date.now();
    const { code, stderr } = await agent.stop();
    t.is(code, 0);
    t.true(Date.now() - started < 15_000, 'the final flush is bounded');
    const warnings = stderr.split('\n').filter((l) => l.includes('cannot export spans'));
    t.is(warnings.length, 1, stderr);
    t.regex(warnings[0]!, /UNAVAILABLE/);
    t.regex(stderr, /records: http1 3/);
  } finally {
    server.child.kill();
  }
});

test('the demo prints its traces on the console as trees: frontend SERVER, its CLIENT call, the backend SERVER beneath', async (t) => {
  const r = spawnSync(path.join(ROOT, 'bin', 'ebpf-otel'), ['demo', '--duration', '4s'], { encoding: 'utf8', timeout: 30_000 });
  t.is(r.status, 0, r.stderr);
  t.regex(r.stderr, /ebpf-otel: ready/);
  t.regex(r.stdout, /demo-frontend\s+SERVER\s+GET \/items\/\{id\}/);
  t.regex(
    r.stdout,
    /└─ SERVER demo-frontend GET \/items\/\{id\} .*\n\s+└─ CLIENT demo-frontend GET .*\n\s+└─ SERVER demo-backend GET \/api\/items\/\{id\} /,
    r.stdout.slice(-3000),
  );
});
