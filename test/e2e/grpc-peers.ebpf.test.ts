// gRPC peers whose HTTP/2 and HPACK are not grpc-js's (nghttp2), end to end
// with real eBPF (issue 15): Debian's python3-grpcio (gRPC C-core, its own
// HPACK encoder) as a client of the grpc-js server and as a server of the
// grpc-js client, and a grpc-go client and server (golang.org/x/net/http2's
// HPACK; content-type application/grpc+proto). Each pair traced by one
// `ebpf-otel run --pid` exporting to a real OTLP receiver. The records of
// /tmp/h2-spec.md: one SERVER and one CLIENT span per call with the exact
// name, rpc.* attributes, status and message counts, the CLIENT span the
// SERVER span's parent (the peer link by stream id), and the
// rpc.*.call.duration counts. What the calls are on the wire comes from
// test/helpers/grpc-peers.ts, checked against what the raw-bytes peer saw.

import anyTest, { type ExecutionContext } from 'ava';
import { ebpfTest } from '../helpers/ebpf';
import { sleep, startAgent, type Workload } from '../helpers/agent';
import { rpcCallCounts, startGrpcClient, startGrpcServer } from '../helpers/grpc';
import {
  expectedReport,
  NODE_MIX_CALLS,
  PEER_CALLS,
  peerCalls,
  startGoGrpcClient,
  startGoGrpcServer,
  startPythonGrpcClient,
  startPythonGrpcServer,
  type PeerCall,
  type PeerReport,
} from '../helpers/grpc-peers';
import type { Attrs, ReceivedSpan } from '../helpers/otlp-receiver';
import { useOtlpReceiver } from '../helpers/use-otlp-receiver';

const test = ebpfTest.serial;
const otlp = useOtlpReceiver(anyTest);

const SERVER_KIND = 2;
const CLIENT_KIND = 3;
const UNSET = 0;
const ERROR = 2;
/** The statuses that make a SERVER span an error (RPC conventions); a CLIENT span is one for any but OK. */
const SERVER_ERRORS = new Set(['UNKNOWN', 'DEADLINE_EXCEEDED', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS']);

type Side = 'server' | 'client';

/**
 * `ebpf-otel run --pid` on both processes, then the client's calls; the
 * agent stops cleanly (its exit summary goes to the test log). Returns the
 * client's result line.
 */
async function tracePair(t: ExecutionContext, server: Workload, client: Workload): Promise<Record<string, unknown>> {
  try {
    const agent = await startAgent(['run', '--pid', String(server.pid), '--pid', String(client.pid)], { env: otlp.env() });
    client.go();
    const result = await client.result();
    await sleep(300);
    const { code, stderr } = await agent.stop();
    t.is(code, 0, stderr);
    t.log(stderr.split('\n').filter((l) => !l.includes('ready')).join('\n'));
    return result;
  } catch (e) {
    server.child.kill();
    client.child.kill();
    throw e;
  }
}

/**
 * The deadline-exceeded call ends one of two ways on the wire, by a race
 * between the client's RST_STREAM(CANCEL) at its deadline and the server's
 * trailers at its own: the span shows which.
 */
function endedByReset(call: PeerCall, span: ReceivedSpan): boolean {
  return call.status === 'DEADLINE_EXCEEDED' && span.attributes['rpc.response.status_code'] === undefined;
}

/** The span the spec makes of `call` seen from `side`, exactly (the client's port and the grpc-timeout, unknown in advance, are range-checked and copied). */
function assertCallSpan(t: ExecutionContext, span: ReceivedSpan, call: PeerCall, side: Side, port: number, label: string): void {
  const reset = endedByReset(call, span);
  const status = reset ? undefined : call.status;
  const isError = reset || (side === 'client' ? status !== 'OK' : SERVER_ERRORS.has(status!));
  const a = span.attributes;
  const method = call.path.slice(1);
  const want: Attrs = {
    'rpc.system.name': 'grpc',
    'rpc.method': method,
    'server.address': '127.0.0.1',
    'server.port': port,
    'network.peer.address': '127.0.0.1',
    'network.peer.port': side === 'client' ? port : a['client.port']!,
    'network.protocol.name': 'http',
    'network.protocol.version': '2',
    'ebpf_otel.grpc.timeout': a['ebpf_otel.grpc.timeout']!,
    'ebpf_otel.grpc.request.messages': call.requests.length,
    'ebpf_otel.grpc.request.bytes': call.requests.reduce((n, m) => n + m, 0),
  };
  // A reset stream's response was never whole: not counted.
  if (!reset) {
    want['ebpf_otel.grpc.response.messages'] = call.responses.length;
    want['ebpf_otel.grpc.response.bytes'] = call.responses.reduce((n, m) => n + m, 0);
  }
  if (status !== undefined) want['rpc.response.status_code'] = status;
  if (side === 'server') {
    want['client.address'] = '127.0.0.1';
    want['client.port'] = a['client.port']!;
    t.true(typeof a['client.port'] === 'number' && a['client.port'] > 0 && a['client.port'] !== port, `${label}: client.port ${a['client.port']}`);
  }
  if (isError) want['error.type'] = reset ? 'CANCEL' : status!;
  // grpc-timeout: what was left of the deadline when the call was sent, in
  // the unit the peer chose (grpc-js ms, Go µs); C-core rounds it up to its
  // unit, 100 ms between 10 and 100 s (it sent '10100m' for a 10 s deadline).
  const timeout = a['ebpf_otel.grpc.timeout'];
  t.true(typeof timeout === 'number' && timeout > 0 && timeout <= call.timeoutS * 1.01, `${label}: ebpf_otel.grpc.timeout ${timeout} for a ${call.timeoutS} s deadline`);
  t.is(span.kind, side === 'client' ? CLIENT_KIND : SERVER_KIND, label);
  t.is(span.name, method, label);
  t.deepEqual(a, want, label);
  // grpc-message percent-decoded (every peer sends 'failed%20on%20purpose').
  t.deepEqual(span.status, { code: isError ? ERROR : UNSET, message: isError && !reset ? call.message : '' }, `${label}: span status`);
}

/**
 * One CLIENT span per call in the client's process and one SERVER span per
 * call in the server's, each CLIENT span its SERVER span's
 * parent, over one connection; then the duration histograms' counts, by
 * method, status and error.type, equal to the spans'.
 */
function assertCalls(t: ExecutionContext, serverPid: number, clientPid: number, port: number, inOrder: readonly PeerCall[]): void {
  // Calls and spans in one canonical order, by method and request bytes
  // (unique among the calls of a test): grpc_node.js's mix makes its deadline
  // call first on one branch, third on another.
  const key = (path: unknown, bytes: unknown) => `${String(path)} ${String(bytes)}`;
  const calls = [...inOrder].sort((x, y) => key(x.path, x.requests.reduce((n, m) => n + m, 0)).localeCompare(key(y.path, y.requests.reduce((n, m) => n + m, 0))));
  const clientSpans = otlp.spansOf(clientPid).sort((x, y) => key(`/${x.attributes['rpc.method']}`, x.attributes['ebpf_otel.grpc.request.bytes']).localeCompare(key(`/${y.attributes['rpc.method']}`, y.attributes['ebpf_otel.grpc.request.bytes'])));
  const serverSpans = otlp.spansOf(serverPid);
  // What the agent made, before the assertions: the first failure is all ava reports.
  const t0 = [...clientSpans, ...serverSpans].reduce((m, s) => (s.startTimeUnixNano < m ? s.startTimeUnixNano : m), BigInt(Number.MAX_SAFE_INTEGER) * 1000n);
  for (const s of [...clientSpans, ...serverSpans]) {
    const ms = (n: bigint) => (Number(n - t0) / 1e6).toFixed(3);
    t.log(`${s.kind === CLIENT_KIND ? 'CLIENT' : 'SERVER'} ${s.name} ${ms(s.startTimeUnixNano)}..${ms(s.endTimeUnixNano)} ms ${s.spanId} parent ${s.parentSpanId} ${JSON.stringify(s.status)} ${JSON.stringify(s.attributes)}`);
  }
  t.is(clientSpans.length, calls.length, 'one CLIENT span per call');
  t.is(serverSpans.length, calls.length, 'one SERVER span per call');
  const byParent = new Map(serverSpans.map((s) => [s.parentSpanId, s]));
  const clientPorts = new Set<unknown>();
  const counts = { client: {} as Record<string, number>, server: {} as Record<string, number> };
  const count = (side: Side, s: ReceivedSpan) => {
    const k = `${s.attributes['rpc.method']} ${s.attributes['rpc.response.status_code'] ?? '-'} ${s.attributes['error.type'] ?? '-'}`;
    counts[side][k] = (counts[side][k] ?? 0) + 1;
  };
  clientSpans.forEach((c, i) => {
    const call = calls[i]!;
    const label = `call ${i} (${call.path} ${call.status})`;
    assertCallSpan(t, c, call, 'client', port, `${label} CLIENT`);
    count('client', c);
    const s = byParent.get(c.spanId);
    if (!s) {
      t.fail(`${label}: no SERVER span has the CLIENT span ${c.spanId} as parent`);
      return;
    }
    t.is(s.traceId, c.traceId, `${label}: one trace`);
    // (Not for the deadline: the server learns of it after the client gave up.)
    if (call.status !== 'DEADLINE_EXCEEDED') t.true(c.startTimeUnixNano <= s.startTimeUnixNano && s.endTimeUnixNano <= c.endTimeUnixNano, `${label}: the server's span inside the client's`);
    else t.true(c.startTimeUnixNano <= s.startTimeUnixNano, `${label}: the server's span starts after the client's`);
    assertCallSpan(t, s, call, 'server', port, `${label} SERVER`);
    count('server', s);
    clientPorts.add(s.attributes['client.port']);
  });
  t.is(clientPorts.size, 1, 'the server saw one connection');
  t.deepEqual(rpcCallCounts(t, otlp, 'rpc.client.call.duration', clientPid, port), counts.client, 'rpc.client.call.duration counts');
  t.deepEqual(rpcCallCounts(t, otlp, 'rpc.server.call.duration', serverPid, port), counts.server, 'rpc.server.call.duration counts');
  t.is(otlp.counter('ebpf_otel.protocol.parse_errors'), 0, 'no parse error');
}

/** The per-call lines a raw-bytes server printed after its hello, waiting up to 2 s for `n` of them. */
async function serverReports(server: Workload, n: number): Promise<PeerReport[]> {
  for (let i = 0; i < 20 && server.lines.length < n + 1; i++) await sleep(100);
  // (The Go server prints an empty `details`, never set: a client's field.)
  return server.lines.slice(1).map((l) => {
    const { details: _, ...r } = JSON.parse(l) as PeerReport;
    return r;
  });
}

test('Python grpcio client -> grpc-js server: unary OK, NOT_FOUND, a 3-message server stream, each a SERVER and a CLIENT span, linked', async (t) => {
  const server = await startGrpcServer();
  const port = server.hello['port'] as number;
  const client = await startPythonGrpcClient(port);
  try {
    const result = await tracePair(t, server, client);
    const calls = peerCalls('grpc-js');
    t.deepEqual(result, { results: calls.map((c) => expectedReport(c, true)) }, 'the calls as the python client made them');
    assertCalls(t, server.pid, client.pid, port, calls);
  } finally {
    server.child.kill();
  }
});

test('grpc-js client (mix) -> Python grpcio server: every call shape, NOT_FOUND, a deadline, each a SERVER and a CLIENT span, linked', async (t) => {
  const server = await startPythonGrpcServer();
  const port = server.hello['port'] as number;
  const client = await startGrpcClient(port, ['mix']);
  try {
    const result = await tracePair(t, server, client);
    t.deepEqual(
      (result['results'] as Array<{ code: number }>).map((r) => r.code),
      [0, 5, 4, 0, 0, 0],
    );
    t.is(result['connections'], 1, 'one connection');
    // The server's lines, as its handlers returned: the deadline call's
    // (which does not know its client gave up) after its 500 ms sleep.
    const deadline = NODE_MIX_CALLS[2]!;
    const want = NODE_MIX_CALLS.filter((c) => c !== deadline).map((c) => expectedReport(c, false));
    want.push({ path: deadline.path, code: 0, requests: [...deadline.requests], responses: [...deadline.requests] });
    const byPath = (a: PeerReport, b: PeerReport) => JSON.stringify(a).localeCompare(JSON.stringify(b));
    t.deepEqual((await serverReports(server, NODE_MIX_CALLS.length)).sort(byPath), want.sort(byPath), 'the calls as the python server saw them');
    assertCalls(t, server.pid, client.pid, port, NODE_MIX_CALLS);
  } finally {
    server.child.kill();
  }
});

test('grpc-go client -> grpc-go server: unary OK, NOT_FOUND, a 3-message server stream, each a SERVER and a CLIENT span, linked', async (t) => {
  const server = await startGoGrpcServer();
  const port = server.hello['port'] as number;
  const client = await startGoGrpcClient(port);
  try {
    const result = await tracePair(t, server, client);
    t.deepEqual(result, { results: PEER_CALLS.map((c) => expectedReport(c, true)) }, 'the calls as the Go client made them');
    t.deepEqual(await serverReports(server, PEER_CALLS.length), PEER_CALLS.map((c) => expectedReport(c, false)), 'the calls as the Go server saw them');
    assertCalls(t, server.pid, client.pid, port, PEER_CALLS);
  } finally {
    server.child.kill();
  }
});
