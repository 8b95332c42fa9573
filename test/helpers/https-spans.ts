// What the HTTPS tests assert of the spans of GET /items (test/e2e/programs'
// HTTPS servers, and the clients calling them on 127.0.0.1): exactly these
// keys, whatever the TLS library the agent read the plaintext from.

import type { ExecutionContext } from 'ava';
import { sleep, startAgent, type Workload } from './agent';
import type { ReceivedSpan } from './otlp-receiver';
import type { OtlpTestReceiver } from './use-otlp-receiver';
import { ITEMS_BODY } from './tls';

const SERVER_KIND = 2;
const CLIENT_KIND = 3;

/** A SERVER span of GET /items answered 200 on `port`, over TLS. */
export function assertItemsServerSpan(t: ExecutionContext, s: ReceivedSpan, port: number, label: string): void {
  t.is(s.kind, SERVER_KIND, label);
  t.is(s.name, 'GET /items', label);
  t.like(
    s.attributes,
    {
      'url.scheme': 'https',
      'http.request.method': 'GET',
      'url.path': '/items',
      'http.response.status_code': 200,
      'server.port': port,
      'http.response.body.size': ITEMS_BODY.length,
    },
    label,
  );
  t.is(s.status.code, 0, label);
}

/** The CLIENT span `c` of GET https://127.0.0.1:`port`/items, and the server's span `s` of the same request: `c` is its parent, `s` inside it. */
export function assertItemsClientParent(t: ExecutionContext, c: ReceivedSpan, s: ReceivedSpan, port: number, label: string): void {
  t.is(c.kind, CLIENT_KIND, label);
  t.is(c.name, 'GET', label);
  t.like(c.attributes, { 'url.scheme': 'https', 'http.request.method': 'GET', 'http.response.status_code': 200, 'server.address': '127.0.0.1', 'server.port': port }, label);
  t.is(s.traceId, c.traceId, `${label}: one trace`);
  t.is(s.parentSpanId, c.spanId, `${label}: the CLIENT span is the SERVER span's parent`);
  t.true(c.startTimeUnixNano <= s.startTimeUnixNano && s.endTimeUnixNano <= c.endTimeUnixNano, `${label}: the server's span inside the client's`);
}

/**
 * `requests` GET /items calls from process `clientPid` to `serverPid` on
 * `port`, each seen at both ends: one SERVER and one CLIENT span per call,
 * in start order, each CLIENT span the parent of its SERVER span; no TLS
 * connection counted as unprobed, no parse error.
 */
export function assertItemsCalls(t: ExecutionContext, otlp: OtlpTestReceiver, serverPid: number, clientPid: number, requests: number, port: number): void {
  const serverSpans = otlp.spansOf(serverPid);
  const clientSpans = otlp.spansOf(clientPid);
  t.is(serverSpans.length, requests, 'one SERVER span per request');
  t.is(clientSpans.length, requests, 'one CLIENT span per request');
  serverSpans.forEach((s, i) => assertItemsServerSpan(t, s, port, `server ${i}`));
  clientSpans.forEach((c, i) => assertItemsClientParent(t, c, serverSpans[i]!, port, `request ${i}`));
  t.is(otlp.counter('ebpf_otel.protocol.unprobed_connections', 'tls'), 0, 'probed: never claimed as unprobed TLS');
  t.is(otlp.counter('ebpf_otel.protocol.parse_errors'), 0, 'no parser saw ciphertext');
}

/**
 * `ebpf-otel run --pid` on `server` and `client` (exporting to `otlp`), then
 * the client's `requests` GET /items calls, each answered 200 with
 * ITEMS_BODY; the agent stops cleanly. Its exit summary goes to the test log.
 */
export async function traceItemsCalls(t: ExecutionContext, otlp: OtlpTestReceiver, server: Workload, client: Workload, requests: number): Promise<void> {
  const agent = await startAgent(['run', '--pid', String(server.pid), '--pid', String(client.pid)], { env: otlp.env() });
  client.go();
  t.deepEqual(await client.result(), { statuses: Array(requests).fill(200), bodies: Array(requests).fill(ITEMS_BODY) });
  await sleep(300);
  const { code, stderr } = await agent.stop();
  t.is(code, 0, stderr);
  t.log(stderr.split('\n').filter((l) => !l.includes('ready')).join('\n'));
}
