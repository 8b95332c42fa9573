// Smoke test of the pipeline benchmark: each scenario replays through the real
// agent path for about a second and yields exactly the records it was built
// with (one per request), every one serialized as an OTLP span. Not a speed test.

import test from 'ava';
import { SCENARIOS, runScenario } from '../../bench/pipeline';
import { decodeBatch, newDecodeStats } from '../../src/capture/decode';
import { ConnectionTracker } from '../../src/correlate/connection-tracker';
import { PROTOCOLS } from '../../src/protocols/registry';
import type { L7Record } from '../../src/protocols/types';
import { silentLogger } from '../../src/util/log';

for (const [name, build] of Object.entries(SCENARIOS)) {
  test.serial(`bench scenario ${name}: every request becomes one record and one serialized span`, async (t) => {
    const stream = build();
    t.true(stream.batches.length > 1, 'several native batches');
    t.true(stream.batches.every((b) => b.length <= 256 * 1024), 'batches of at most 256 KiB');
    const r = await runScenario(stream, 1);
    t.true(r.replays >= 1);
    t.is(r.expectedRecords, stream.records * r.replays);
    t.is(r.records, r.expectedRecords);
    t.is(r.spansSerialized, r.expectedRecords);
    t.is(r.spansDropped, 0);
    t.true(r.spanBytes > 0);
    t.true(r.metricRequests > 0, 'metrics were serialized at shutdown');
  });
}

/** The records one replay of a scenario's stream yields through the tracker and the registry's protocols. */
function records(name: string): L7Record[] {
  const stream = SCENARIOS[name]!();
  const tracker = new ConnectionTracker({ protocols: PROTOCOLS, protocolOptions: {}, requestTimeoutNs: 30e9 }, silentLogger);
  const stats = newDecodeStats();
  const out: L7Record[] = [];
  for (const b of stream.batches) {
    decodeBatch(b, (e) => tracker.onEvent(e), stats);
    out.push(...tracker.take());
  }
  tracker.closeAll(Number.MAX_SAFE_INTEGER);
  out.push(...tracker.take());
  return out;
}

const tally = (rs: readonly L7Record[], key: (r: L7Record) => string) => {
  const m: Record<string, number> = {};
  for (const r of rs) m[key(r)] = (m[key(r)] ?? 0) + 1;
  return m;
};

// The HTTP/2 scenarios measure the whole path only if their records are whole:
// every field decoded (no HPACK reference lost), every status known.
for (const name of ['grpc', 'grpc-serial']) {
  test(`bench scenario ${name}: 16 server and 8 client connections of 250 unary calls, each an OK gRPC record`, (t) => {
    const rs = records(name);
    t.deepEqual(tally(rs, (r) => `${r.protocol} ${r.kind} ${r.name} ${String(r.attributes['rpc.response.status_code'])} ${r.status}`), {
      'http2 server test.echo.Echo/Unary OK unset': 16 * 250,
      'http2 client test.echo.Echo/Unary OK unset': 8 * 250,
    });
  });
}
for (const name of ['http2', 'http2-serial']) {
  test(`bench scenario ${name}: 16 server and 8 client connections of 250 streams, the recorded methods and statuses`, (t) => {
    const rs = records(name);
    // Per connection: 50 GETs of each of four paths (/api/cart/items answered 404), 50 POSTs answered 201.
    t.deepEqual(tally(rs, (r) => `${r.protocol} ${r.kind} ${r.name} ${String(r.attributes['http.response.status_code'])} ${r.status}`), {
      'http2 server GET /api/users/{id} 200 unset': 16 * 50,
      'http2 server GET /api/orders 200 unset': 16 * 50,
      'http2 server GET /health 200 unset': 16 * 50,
      'http2 server GET /api/cart/items 404 unset': 16 * 50,
      'http2 server POST /api/cart/items 201 unset': 16 * 50,
      'http2 client GET 200 unset': 8 * 150,
      'http2 client GET 404 error': 8 * 50,
      'http2 client POST 201 unset': 8 * 50,
    });
  });
}

// The Redis scenario measures the whole path only if every command is paired with its own reply.
test('bench scenario redis: 16 server and 8 client connections of 250 commands, each its own record', (t) => {
  const rs = records('redis');
  const want: Record<string, number> = {};
  for (const kind of ['server', 'client'] as const) {
    const conns = kind === 'server' ? 16 : 8;
    want[`redis ${kind} CLIENT SETINFO error ERR`] = conns * 2;
    for (const op of ['SET', 'GET', 'HSET', 'HGETALL', 'INCR', 'LPUSH', 'LRANGE', 'MGET', 'EXPIRE', 'EXISTS']) want[`redis ${kind} ${op} unset -`] = conns * 25;
  }
  t.deepEqual(tally(rs, (r) => `${r.protocol} ${r.kind} ${r.name} ${r.status} ${r.errorType ?? '-'}`), want);
});
