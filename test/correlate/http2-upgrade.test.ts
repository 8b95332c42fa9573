// An HTTP/1.1 connection upgraded to cleartext HTTP/2 (RFC 7540 §3.2), from
// a real capture (test/fixtures/http2-sessions/h2c-upgrade: nghttp -u against
// the python3-h2 server of h2-peer.py), through the connection tracker with
// the registry's protocols: the Upgrade exchange is an HTTP/1 record (101),
// then the tracker hands the connection to http2, which claims h2c; its
// session starts at the client preface and at the server's SETTINGS that
// follow the 101 head. The upgraded request is stream 1: its request was the
// HTTP/1.1 one (no HEADERS on the wire), its answer comes as HTTP/2.

import test from 'ava';
import { decodeBatch, newDecodeStats } from '../../src/capture/decode';
import type { CaptureEvent } from '../../src/capture/events';
import { ConnectionTracker } from '../../src/correlate/connection-tracker';
import { http1Protocol } from '../../src/protocols/http1';
import { http2Protocol } from '../../src/protocols/http2';
import type { L7Record } from '../../src/protocols/types';
import { silentLogger } from '../../src/util/log';
import { loadRecorded, type End } from '../protocols/http2/session-cases';
import { batch, connRecord, dataRecord } from '../helpers/records';

function trace(end: End): { records: L7Record[]; tracker: ConnectionTracker } {
  const c = loadRecorded('h2c-upgrade');
  const tracker = new ConnectionTracker({ protocols: [http2Protocol, http1Protocol] }, silentLogger);
  const events: CaptureEvent[] = [];
  // dir 1: the traced process wrote (egress), 2: it read. The capture's ingress goes client to server.
  const dirOf = (side: string): 1 | 2 => ((side === 'ingress') === (end === 'server') ? 2 : 1);
  const records = [connRecord({ type: 'open', connId: 1, role: end === 'client' ? 1 : 2, reason: 1 })];
  for (const r of c.reads) records.push(dataRecord({ connId: 1, dir: dirOf(r.side), pos: r.pos, payload: r.data, tsEnter: r.atNs - 1000, tsExit: r.atNs }));
  decodeBatch(batch(records), (e) => events.push(e), newDecodeStats());
  for (const e of events) tracker.onEvent(e);
  return { records: tracker.take(), tracker };
}

const PROXY_PORT = 35975; // the server's port in the capture (:authority, Host)
const TUPLE_PORT = 40000; // the peer port the test helpers' open record gives
const view = (r: L7Record) => ({ protocol: r.protocol, kind: r.kind, sequence: r.sequence, name: r.name, startNs: r.startNs, endNs: r.endNs, status: r.status, attributes: r.attributes });

// Reads of the capture: 1 ingress the Upgrade request (GET /, at 1787990239);
// 2 egress the 101 head, then SETTINGS and stream 1's answer (HEADERS 200,
// DATA "hello /\n"), at 1789468998; 3 ingress the preface, SETTINGS, nghttp's
// PRIORITY tree (idle streams 3-11) and GET /two.txt on stream 13, at
// 1790056771; 4 egress its answer (15 bytes), at 1792114096; 5 ingress GOAWAY.
test('h2c Upgrade seen by the server: the 101 exchange is an HTTP/1 record, the next stream an HTTP/2 one', (t) => {
  const { records, tracker } = trace('server');
  const peer = { 'client.address': '127.0.0.1', 'client.port': TUPLE_PORT, 'network.peer.address': '127.0.0.1', 'network.peer.port': TUPLE_PORT };
  t.deepEqual(records.map(view), [
    {
      protocol: 'http1', kind: 'server', sequence: 0, name: 'GET /', startNs: 1787990239, endNs: 1789468998, status: 'unset',
      attributes: { 'http.request.method': 'GET', 'url.path': '/', 'url.scheme': 'http', 'http.response.status_code': 101, 'http.route': '/', 'network.protocol.version': '1.1', 'server.address': '127.0.0.1', 'server.port': PROXY_PORT, ...peer, 'user_agent.original': 'nghttp2/1.52.0', 'http.request.body.size': 0 },
    },
    {
      // Stream 13: sequence (13 - 1) / 2.
      protocol: 'http2', kind: 'server', sequence: 6, name: 'GET /two.txt', startNs: 1790056771, endNs: 1792114096, status: 'unset',
      attributes: { 'http.request.method': 'GET', 'url.path': '/two.txt', 'url.scheme': 'http', 'http.response.status_code': 200, 'http.route': '/two.txt', 'network.protocol.version': '2', 'server.address': '127.0.0.1', 'server.port': PROXY_PORT, ...peer, 'user_agent.original': 'nghttp2/1.52.0', 'http.request.body.size': 0, 'http.response.body.size': 15 },
    },
  ]);
  // Stream 1 (the upgraded request, answered over HTTP/2) makes no record yet
  // (notes-h2golden #8), nor is it counted as a stream opened before the agent came.
  t.deepEqual(tracker.stats().switched, { http2: 1 });
  const http2 = tracker.stats().protocol.http2 as unknown as Record<string, number>;
  t.deepEqual([http2.records, http2.streamsBeforeAttach, http2.bytesSkipped, http2.parseErrors], [1, 0, 0, 0]);
});

test('h2c Upgrade seen by the client: the same two records as CLIENT spans', (t) => {
  const { records, tracker } = trace('client');
  const peer = { 'network.peer.address': '127.0.0.1', 'network.peer.port': TUPLE_PORT };
  t.deepEqual(records.map(view), [
    {
      protocol: 'http1', kind: 'client', sequence: 0, name: 'GET', startNs: 1787989239, endNs: 1789468998, status: 'unset',
      attributes: { 'http.request.method': 'GET', 'url.scheme': 'http', 'url.full': `http://127.0.0.1:${PROXY_PORT}/`, 'http.response.status_code': 101, 'network.protocol.version': '1.1', 'server.address': '127.0.0.1', 'server.port': PROXY_PORT, ...peer, 'user_agent.original': 'nghttp2/1.52.0', 'http.request.body.size': 0 },
    },
    {
      protocol: 'http2', kind: 'client', sequence: 6, name: 'GET', startNs: 1790055771, endNs: 1792114096, status: 'unset',
      attributes: { 'http.request.method': 'GET', 'url.scheme': 'http', 'url.full': `http://127.0.0.1:${PROXY_PORT}/two.txt`, 'http.response.status_code': 200, 'network.protocol.version': '2', 'server.address': '127.0.0.1', 'server.port': PROXY_PORT, ...peer, 'user_agent.original': 'nghttp2/1.52.0', 'http.request.body.size': 0, 'http.response.body.size': 15 },
    },
  ]);
  t.deepEqual(tracker.stats().switched, { http2: 1 });
});
