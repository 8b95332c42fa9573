// HTTP/2 (not gRPC), end to end with real eBPF (issue 15): a Node `http2`
// server (test/e2e/programs/http2_node.js), cleartext with prior knowledge
// hit by `curl --http2-prior-knowledge` and `nghttp`, and
// `http2.createSecureServer` hit by `curl --http2` over TLS (the server's
// OpenSSL, inside node, probed), traced by `ebpf-otel run --pid`, exporting
// to a real OTLP receiver; and a Node http2 client, traced too. Each stream
// is one SERVER span (and CLIENT span) by the HTTP/1 rules with
// network.protocol.version '2' (src/protocols/http2/README.md), exact
// statuses and body sizes; the duration histogram counts per route.

import { spawnSync } from 'node:child_process';
import anyTest, { type ExecutionContext } from 'ava';
import { ebpfTest } from '../helpers/ebpf';
import { sleep, startAgent, type Workload } from '../helpers/agent';
import { HTTP2_BODIES, HTTP2_CLIENT_UA, startHttp2Client, startHttp2Server } from '../helpers/grpc';
import type { Attrs, ReceivedSpan } from '../helpers/otlp-receiver';
import { useOtlpReceiver } from '../helpers/use-otlp-receiver';
import { testCertificates } from '../helpers/tls';

const test = ebpfTest.serial;
const otlp = useOtlpReceiver(anyTest);

const SERVER_KIND = 2;
const CLIENT_KIND = 3;
const UNSET = 0;
const ERROR = 2;
const CURL_UA = `curl/${/^curl (\S+)/.exec(spawnSync('curl', ['--version'], { encoding: 'utf8' }).stdout)?.[1] ?? '?'}`;
const NGHTTP_UA = `nghttp2/${/nghttp2\/(\S+)/.exec(spawnSync('nghttp', ['--version'], { encoding: 'utf8' }).stdout)?.[1] ?? '?'}`;
const ECHO_BODY = 'e'.repeat(1000);

/** A request a client makes and what the server's span of it must say. */
interface Http2Call {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly route: string;
  readonly status: number;
  readonly requestBytes: number;
  readonly responseBytes: number;
}

const get = (path: string, route: string, status: number, responseBytes: number): Http2Call => ({ method: 'GET', path, route, status, requestBytes: 0, responseBytes });
const ITEMS = get('/items', '/items', 200, HTTP2_BODIES.items.length);
const ITEM_42 = get('/items/42', '/items/{id}', 200, HTTP2_BODIES.item42.length);
const ECHO: Http2Call = { method: 'POST', path: '/echo', route: '/echo', status: 200, requestBytes: ECHO_BODY.length, responseBytes: ECHO_BODY.length };
const FAIL = get('/fail', '/fail', 503, HTTP2_BODIES.fail.length);
const MISSING = get('/missing', '/missing', 404, HTTP2_BODIES.missing.length);
const BIG = get('/big', '/big', 200, HTTP2_BODIES.bigBytes);

/** One curl run (a connection of its own), HTTP/2 checked from curl's side: status, version, body bytes. */
function curl(t: ExecutionContext, flags: string[], base: string, call: Http2Call): void {
  const body = call.method === 'POST' ? ['--data-binary', ECHO_BODY] : [];
  const r = spawnSync('curl', ['-sS', ...flags, ...body, '-o', '/dev/null', '-w', '%{http_code} %{http_version} %{size_download}', `${base}${call.path}`], { encoding: 'utf8' });
  t.is(r.stdout, `${call.status} 2 ${call.responseBytes}`, `curl ${call.method} ${call.path}: ${r.stderr}`);
}

/** The SERVER span the spec makes of `call`, exact (the client's port is checked, then taken from the span). */
function assertServerSpan(t: ExecutionContext, s: ReceivedSpan, call: Http2Call, scheme: 'http' | 'https', port: number, userAgent: string, label: string): void {
  const a = s.attributes;
  const clientPort = a['client.port'];
  t.true(typeof clientPort === 'number' && clientPort > 0 && clientPort !== port, `${label}: client.port ${clientPort}`);
  const want: Attrs = {
    'http.request.method': call.method,
    'url.path': call.path,
    'url.scheme': scheme,
    'http.route': call.route,
    'http.response.status_code': call.status,
    'network.protocol.version': '2',
    'server.address': '127.0.0.1',
    'server.port': port,
    'client.address': '127.0.0.1',
    'client.port': clientPort!,
    'network.peer.address': '127.0.0.1',
    'network.peer.port': clientPort!,
    'user_agent.original': userAgent,
    'http.request.body.size': call.requestBytes,
    'http.response.body.size': call.responseBytes,
  };
  if (call.status >= 500) want['error.type'] = String(call.status);
  t.is(s.kind, SERVER_KIND, label);
  t.is(s.name, `${call.method} ${call.route}`, label);
  t.deepEqual(a, want, label);
  t.is(s.status.code, call.status >= 500 ? ERROR : UNSET, `${label}: status`);
}

/** The CLIENT span the spec makes of `call` to 127.0.0.1:`port` (HTTP/1's client rules, version 2). */
function assertClientSpan(t: ExecutionContext, c: ReceivedSpan, call: Http2Call, port: number, label: string): void {
  const want: Attrs = {
    'http.request.method': call.method,
    'url.scheme': 'http',
    'url.full': `http://127.0.0.1:${port}${call.path}`,
    'http.response.status_code': call.status,
    'network.protocol.version': '2',
    'server.address': '127.0.0.1',
    'server.port': port,
    'network.peer.address': '127.0.0.1',
    'network.peer.port': port,
    'user_agent.original': HTTP2_CLIENT_UA,
    'http.request.body.size': call.requestBytes,
    'http.response.body.size': call.responseBytes,
  };
  if (call.status >= 400) want['error.type'] = String(call.status);
  t.is(c.kind, CLIENT_KIND, label);
  t.is(c.name, call.method, label);
  t.deepEqual(c.attributes, want, label);
  t.is(c.status.code, call.status >= 400 ? ERROR : UNSET, `${label}: status`);
}

/** http.server.request.duration for `pid`: "route status" -> count; every point says HTTP/2. */
function durationCounts(t: ExecutionContext, pid: number): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const p of otlp.receiver.latestPoints('http.server.request.duration', (x) => x.resource['process.pid'] === pid)) {
    t.is(p.attributes['network.protocol.version'], '2', JSON.stringify(p.attributes));
    const k = `${p.attributes['http.route']} ${p.attributes['http.response.status_code']}`;
    counts[k] = (counts[k] ?? 0) + p.histogram!.count;
  }
  return counts;
}

function expectedCounts(calls: Http2Call[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const c of calls) counts[`${c.route} ${c.status}`] = (counts[`${c.route} ${c.status}`] ?? 0) + 1;
  return counts;
}

/** `ebpf-otel run --pid` on the server while `drive` runs the clients; the agent stops cleanly. */
async function traced(t: ExecutionContext, server: Workload, drive: () => void): Promise<void> {
  const agent = await startAgent(['run', '--pid', String(server.pid)], { env: otlp.env() });
  drive();
  await sleep(300);
  const { code, stderr } = await agent.stop();
  t.is(code, 0, stderr);
  t.log(stderr.split('\n').filter((l) => !l.includes('ready')).join('\n'));
}

test('Node http2.createServer (h2c, prior knowledge) hit by curl --http2-prior-knowledge and nghttp: one SERVER span per stream, HTTP rules, version 2, exact statuses and body sizes', async (t) => {
  const server = await startHttp2Server();
  const port = server.hello['port'] as number;
  const base = `http://127.0.0.1:${port}`;
  // curl 7.88 does not reuse a prior-knowledge connection for a second URL: one run each.
  const curlCalls = [ITEMS, ITEM_42, ECHO, FAIL];
  // nghttp: three concurrent streams on one connection (after its PRIORITY-only streams 3..11).
  const nghttpCalls = [ITEMS, MISSING, BIG];
  try {
    await traced(t, server, () => {
      for (const c of curlCalls) curl(t, ['--http2-prior-knowledge'], base, c);
      const r = spawnSync('nghttp', ['-n', '-s', ...nghttpCalls.map((c) => `${base}${c.path}`)], { encoding: 'utf8' });
      t.is(r.status, 0, r.stderr);
      for (const c of nghttpCalls) t.regex(r.stdout, new RegExp(` ${c.status} +\\S+ ${c.path}\\n`), `nghttp ${c.path}`);
    });
    const spans = otlp.spansOf(server.pid);
    t.is(spans.length, curlCalls.length + nghttpCalls.length, 'one SERVER span per request stream, none for PRIORITY-only streams');
    const byClient = (ua: string) => spans.filter((s) => s.attributes['user_agent.original'] === ua);
    // curl's runs one after the other: in start order.
    const curlSpans = byClient(CURL_UA);
    t.is(curlSpans.length, curlCalls.length);
    curlSpans.forEach((s, i) => assertServerSpan(t, s, curlCalls[i]!, 'http', port, CURL_UA, `curl ${curlCalls[i]!.path}`));
    t.is(new Set(curlSpans.map((s) => s.attributes['client.port'])).size, curlCalls.length, 'a connection per curl run');
    // nghttp's streams start together: by path.
    const nghttpSpans = byClient(NGHTTP_UA);
    t.is(nghttpSpans.length, nghttpCalls.length);
    for (const c of nghttpCalls) {
      const s = nghttpSpans.filter((x) => x.attributes['url.path'] === c.path);
      t.is(s.length, 1, `nghttp ${c.path}`);
      if (s[0]) assertServerSpan(t, s[0], c, 'http', port, NGHTTP_UA, `nghttp ${c.path}`);
    }
    t.is(new Set(nghttpSpans.map((s) => s.attributes['client.port'])).size, 1, "nghttp's streams on one connection");
    t.deepEqual(spans.map((s) => s.parentSpanId), Array(spans.length).fill(''), 'roots: no traceparent sent, the clients not traced');
    t.deepEqual(durationCounts(t, server.pid), expectedCounts([...curlCalls, ...nghttpCalls]));
    t.is(otlp.counter('ebpf_otel.protocol.parse_errors'), 0);
    t.is(otlp.counter('ebpf_otel.protocol.hpack_unknown_fields', 'http2'), 0, 'every connection seen from its preface');
  } finally {
    server.child.kill();
  }
});

test('Node http2.createSecureServer hit by curl --http2 over TLS (the server OpenSSL probed): SERVER spans with url.scheme https, version 2, exact statuses and body sizes', async (t) => {
  const certs = await testCertificates();
  const server = await startHttp2Server(certs);
  const port = server.hello['port'] as number;
  const calls = [ITEMS, ECHO, FAIL];
  try {
    await traced(t, server, () => {
      for (const c of calls) curl(t, ['--http2', '-k'], `https://127.0.0.1:${port}`, c);
    });
    const spans = otlp.spansOf(server.pid);
    t.is(spans.length, calls.length, 'one SERVER span per request');
    spans.forEach((s, i) => assertServerSpan(t, s, calls[i]!, 'https', port, CURL_UA, `curl ${calls[i]!.path}`));
    t.deepEqual(spans.map((s) => s.parentSpanId), Array(spans.length).fill(''), 'roots: no traceparent sent, curl not traced');
    t.deepEqual(durationCounts(t, server.pid), expectedCounts(calls));
    t.is(otlp.counter('ebpf_otel.protocol.unprobed_connections', 'tls'), 0, 'probed: never claimed as unprobed TLS');
    t.is(otlp.counter('ebpf_otel.protocol.parse_errors'), 0, 'no parser saw ciphertext');
  } finally {
    server.child.kill();
  }
});

test('Node http2 client -> Node http2 server (h2c, one session): a SERVER and a CLIENT span per stream, the CLIENT span the parent (peer link by connection and stream id)', async (t) => {
  const server = await startHttp2Server();
  const port = server.hello['port'] as number;
  const client = await startHttp2Client(`http://127.0.0.1:${port}`);
  // http2_node.js CLIENT_CALLS, in order.
  const calls = [ITEMS, ECHO, FAIL, MISSING];
  try {
    const agent = await startAgent(['run', '--pid', String(server.pid), '--pid', String(client.pid)], { env: otlp.env() });
    client.go();
    t.deepEqual(await client.result(), { statuses: [200, 200, 503, 404], bodies: [HTTP2_BODIES.items, ECHO_BODY, HTTP2_BODIES.fail, HTTP2_BODIES.missing] });
    await sleep(300);
    const { code, stderr } = await agent.stop();
    t.is(code, 0, stderr);
    t.log(stderr.split('\n').filter((l) => !l.includes('ready')).join('\n'));
    const servers = otlp.spansOf(server.pid);
    const clients = otlp.spansOf(client.pid);
    t.is(servers.length, calls.length, 'one SERVER span per stream');
    t.is(clients.length, calls.length, 'one CLIENT span per stream');
    calls.forEach((call, i) => {
      const label = `${call.method} ${call.path}`;
      const s = servers[i];
      const c = clients[i];
      if (!s || !c) return;
      assertClientSpan(t, c, call, port, `${label} CLIENT`);
      // No traceparent sent: the parent comes from the peer link alone.
      assertServerSpan(t, s, call, 'http', port, HTTP2_CLIENT_UA, `${label} SERVER`);
      t.is(s.traceId, c.traceId, `${label}: one trace`);
      t.is(s.parentSpanId, c.spanId, `${label}: the CLIENT span is the SERVER span's parent`);
      t.true(c.startTimeUnixNano <= s.startTimeUnixNano && s.endTimeUnixNano <= c.endTimeUnixNano, `${label}: the server's span inside the client's`);
    });
    t.is(new Set(servers.map((s) => s.attributes['client.port'])).size, 1, 'one connection');
    t.is(new Set(clients.map((c) => c.traceId)).size, calls.length, 'each stream its own trace');
  } finally {
    server.child.kill();
    client.child.kill();
  }
});
