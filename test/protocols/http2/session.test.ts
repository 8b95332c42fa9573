// The HTTP/2 session on real captures (test/fixtures/http2/, recorded by
// record-traffic.mjs between real clients and a Node http2 server), as the
// tracker feeds it: detected from the first bytes, then every variant of the
// replay helper (whole, both interleavings, byte by byte, split at every
// position): records, stats and observer signals must be identical each
// time, and each case's records exact.

import test from 'ava';
import fs from 'node:fs';
import { http2Protocol } from '../../../src/protocols/http2';
import type { ConnectionInfo } from '../../../src/protocols/types';
import { canonical, replay, variants, type ReplayCase, type ReplayEvent } from '../../helpers/protocol-replay';
import { FIXTURES, loadCapture } from './frame-log';

const CASES = fs.readdirSync(FIXTURES).filter((d) => fs.existsSync(`${FIXTURES}/${d}/events.jsonl`)).sort();

export const SERVER_CONN: ConnectionInfo = {
  connId: 7,
  tgid: 100,
  role: 'server',
  sawStart: true,
  encrypted: false,
  transport: 'tcp',
  localAddr: '127.0.0.1',
  localPort: 8080,
  remoteAddr: '127.0.0.1',
  remotePort: 50000,
};

/** A recorded capture as the server's chunks (one per proxy read), then the close. */
export function captureCase(name: string, conn: ConnectionInfo = SERVER_CONN): ReplayCase {
  const c = loadCapture(name);
  const events: ReplayEvent[] = c.events.map((e) => ({
    kind: 'chunk',
    chunk: { side: e.side, pos: e.pos, startNs: e.atUs * 1000, endNs: e.atUs * 1000 + 500, syscallStart: true, data: e.data, tid: 1 } as never,
  }));
  const last = c.events[c.events.length - 1]!.atUs * 1000 + 1000;
  return { name, session: { conn }, events: [...events, { kind: 'close', atNs: last }] };
}

for (const name of CASES) {
  test(`${name}: every variant gives the same records, stats and signals`, (t) => {
    const c = captureCase(name);
    const whole = replay(http2Protocol, c.session, c.events);
    t.deepEqual(whole.contractViolations, []);
    t.is(whole.requestSide, 'ingress');
    const want = canonical({ records: whole.records, stats: whole.stats, starts: whole.starts, abandons: whole.abandons });
    let n = 0;
    for (const v of variants(http2Protocol, c)) {
      n++;
      const got = canonical({ records: v.result.records, stats: v.result.stats, starts: v.result.starts, abandons: v.result.abandons });
      if (JSON.stringify(got) !== JSON.stringify(want)) {
        t.deepEqual(got, want, v.label);
        return;
      }
      t.deepEqual(v.result.contractViolations, [], v.label);
    }
    t.true(n > 3);
  });
}

/** What each recorded exchange was (test/fixtures/http2/README.md), as [name, sequence, status, error.type, request body, response body]. */
const EXPECTED: Record<string, [string, number, number | undefined, string | undefined, number | undefined, number | undefined][]> = {
  'curl-post': [['POST /form', 0, 200, undefined, 20002, 12]],
  'curl-prior-knowledge': [['GET /big', 0, 200, undefined, 0, 40000]],
  // nghttp opens streams 3 to 11 with PRIORITY only (its dependency tree): its requests are streams 13 and 15.
  'nghttp-get': [
    ['GET /', 6, 200, undefined, 0, 8],
    ['GET /missing', 7, 404, undefined, 0, 15],
  ],
  'nghttp-post': [['POST /upload', 6, 200, undefined, 30000, 14]],
  // Completion order: the reset stream first, the big response last but one, the gRPC-shaped call (path /grpc: not a method) last.
  'node-client': [
    ['GET /reset', 3, undefined, 'CANCEL', 0, undefined],
    ['GET /x', 1, 200, undefined, 0, 9],
    ['GET /big', 2, 200, undefined, 0, 40000],
    ['grpc', 0, undefined, undefined, undefined, undefined],
  ],
  'node-client-big-headers': [['GET /h', 0, 200, undefined, 0, 9]],
  'node-client-post': [
    ['POST /p1', 0, 200, undefined, 20000, 10],
    ['POST /p2', 1, 200, undefined, 20000, 10],
  ],
};

for (const name of CASES) {
  test(`${name}: the records of the recorded exchange`, (t) => {
    const c = captureCase(name);
    const r = replay(http2Protocol, c.session, c.events);
    const got = r.records.map((x) => [
      x.name,
      x.sequence,
      x.attributes['http.response.status_code'],
      x.attributes['error.type'],
      x.attributes['http.request.body.size'],
      x.attributes['http.response.body.size'],
    ]);
    t.deepEqual(got, EXPECTED[name]);
    t.deepEqual(r.starts.map((s) => s.peerId), r.records.map((x) => x.sequence * 2 + 1).sort((a, b) => a - b));
    for (const x of r.records) {
      t.is(x.kind, 'server');
      t.is(x.status, x.attributes['error.type'] === undefined ? 'unset' : 'error');
      if (x.name !== 'grpc') {
        t.is(x.attributes['network.protocol.version'], '2');
        t.is(x.attributes['client.port'], 50000);
      }
    }
    t.is(r.stats.parseErrors, 0);
    t.is(r.stats.hpackUnknownFields, 0);
  });
}

test('node-client: the gRPC-shaped call (path /grpc) is gRPC by content-type, _OTHER by its path', (t) => {
  const c = captureCase('node-client');
  const r = replay(http2Protocol, c.session, c.events);
  const g = r.records.find((x) => x.sequence === 0)!;
  t.deepEqual(
    Object.fromEntries(Object.entries(g.attributes).filter(([k]) => k.startsWith('rpc.') || k.startsWith('ebpf_otel.'))),
    {
      'rpc.system.name': 'grpc',
      'rpc.method': '_OTHER',
      'rpc.method_original': 'grpc',
      'rpc.response.status_code': 'OK',
      'ebpf_otel.grpc.request.messages': 1,
      'ebpf_otel.grpc.request.bytes': 2,
      'ebpf_otel.grpc.response.messages': 1,
      'ebpf_otel.grpc.response.bytes': 3,
    },
  );
  t.is(g.status, 'unset');
  t.deepEqual(g.measurements.map((m) => [m.instrument.name, m.attributes]), [['rpc.server.call.duration', { 'rpc.system.name': 'grpc', 'rpc.method': '_OTHER', 'rpc.response.status_code': 'OK' }]]);
});
