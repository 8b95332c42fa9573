// A connection handed from one protocol to another: an HTTP/1.1 Upgrade
// answered 101 (h2c to a protocol that claims the token; websocket to
// nobody), a CONNECT tunnel (re-detected), and a connection whose bytes start
// to come from another source (restartDetection).

import test from 'ava';
import { decodeBatch, newDecodeStats } from '../../src/capture/decode';
import type { CaptureEvent } from '../../src/capture/events';
import { DATA_F_TLS, DataSource } from '../../src/capture/layout';
import { ConnectionTracker } from '../../src/correlate/connection-tracker';
import { http1Protocol } from '../../src/protocols/http1';
import { newProtocolStats, type ProtocolDefinition, type Side } from '../../src/protocols/types';
import { silentLogger } from '../../src/util/log';
import { lineProtocol } from '../helpers/line-protocol';
import { batch, connRecord, dataRecord } from '../helpers/records';

/** Claims h2c and keeps every byte it is given, by side, with its position: what a next protocol would see. */
function recorder(): { proto: ProtocolDefinition; seen: Record<Side, Array<[number, string]>> } {
  const seen: Record<Side, Array<[number, string]>> = { egress: [], ingress: [] };
  const proto: ProtocolDefinition = {
    id: 'h2rec',
    networkProtocolName: 'http',
    maxDetectBytes: 1,
    instruments: [],
    upgradeTokens: ['h2c'],
    detect: () => ({ result: 'no' }),
    createSession: () => ({
      stats: newProtocolStats(),
      onChunk: (c) => void seen[c.side].push([c.pos, c.data.toString('latin1')]),
      onGap: () => {},
      expire: () => {},
      close: () => {},
      dispose: () => {},
      bufferedBytes: () => 0,
    }),
  };
  return { proto, seen };
}

function feed(tracker: ConnectionTracker, records: Buffer[]): void {
  const events: CaptureEvent[] = [];
  decodeBatch(batch(records), (e) => events.push(e), newDecodeStats());
  for (const e of events) tracker.onEvent(e);
}

/** Client side of one connection (egress: requests), positions and times counted per side. */
function client(connId: number) {
  const pos = { 1: 0, 2: 0 };
  let t = 1000;
  return (dir: 1 | 2, text: string) => {
    const p = pos[dir];
    pos[dir] += text.length;
    t += 100;
    return dataRecord({ connId, dir, pos: p, payload: Buffer.from(text, 'latin1'), tsEnter: t, tsExit: t + 10 });
  };
}

const UPGRADE = 'GET / HTTP/1.1\r\nHost: svc\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n';
const PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';
const SWITCHED = 'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n';

test('h2c: the 101 exchange is an HTTP/1 record; every byte after the switch points reaches the protocol that claims h2c, held bytes first', (t) => {
  const { proto, seen } = recorder();
  const tracker = new ConnectionTracker({ protocols: [http1Protocol, proto] }, silentLogger);
  const d = client(1);
  feed(tracker, [
    connRecord({ type: 'open', connId: 1, role: 1, reason: 1 }),
    // The client sends its preface right after the upgrade request, before the answer (RFC 7540 §3.2).
    d(1, UPGRADE + PREFACE),
    d(1, 'frames-1'),
    d(2, SWITCHED + 'server-settings'),
    d(2, 'frames-2'),
    d(1, 'frames-3'),
  ]);
  const records = tracker.take();
  t.deepEqual(records.map((r) => [r.protocol, r.name, r.attributes['http.response.status_code']]), [['http1', 'GET', 101]]);
  t.deepEqual(seen.egress, [
    [UPGRADE.length, PREFACE],
    [UPGRADE.length + PREFACE.length, 'frames-1'],
    [UPGRADE.length + PREFACE.length + 8, 'frames-3'],
  ]);
  t.deepEqual(seen.ingress, [
    [SWITCHED.length, 'server-settings'],
    [SWITCHED.length + 15, 'frames-2'],
  ]);
  const s = tracker.stats();
  t.deepEqual(s.switched, { h2rec: 1 });
  t.deepEqual(tracker.protocolOf(1), { decided: true, protocol: 'http' });
  t.deepEqual(tracker.takeSignals().ignored, []);
});

test('an upgrade to a protocol nobody parses (websocket): the connection is ignored (muted), keeping its protocol for flows', (t) => {
  const tracker = new ConnectionTracker({ protocols: [http1Protocol] }, silentLogger);
  const d = client(2);
  feed(tracker, [
    connRecord({ type: 'open', connId: 2, role: 1, reason: 1 }),
    d(1, 'GET /ws HTTP/1.1\r\nHost: svc\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'),
    d(2, 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x81\x05hello'),
    d(1, '\x81\x85abcd\x00\x00\x00\x00\x00'),
  ]);
  t.deepEqual(tracker.take().map((r) => [r.name, r.attributes['http.response.status_code']]), [['GET', 101]]);
  t.deepEqual(tracker.takeSignals().ignored, [2]);
  t.deepEqual(tracker.stats().switched, { none: 1 });
  t.deepEqual(tracker.protocolOf(2), { decided: true, protocol: 'http' });
  t.is(tracker.stats().undetected, 0, 'not counted as a connection no protocol recognised');
});

test('a CONNECT tunnel: the wire names no protocol, so what flows through it is detected again from the switch points', (t) => {
  const tracker = new ConnectionTracker({ protocols: [http1Protocol, lineProtocol] }, silentLogger);
  const d = client(3);
  const connect = 'CONNECT db:7000 HTTP/1.1\r\nHost: db:7000\r\n\r\n';
  const ok = 'HTTP/1.1 200 Connection Established\r\n\r\n';
  feed(tracker, [
    connRecord({ type: 'open', connId: 3, role: 1, reason: 1 }),
    d(1, connect),
    d(2, ok),
    d(1, 'REQ through\n'),
    d(2, 'RES ok\n'),
  ]);
  t.deepEqual(
    tracker.take().map((r) => [r.protocol, r.name]),
    [
      ['http1', 'CONNECT'],
      ['line', 'through'],
    ],
  );
  t.deepEqual(tracker.stats().switched, { detect: 1 });
});

test('restartDetection: bytes that begin to come from another source are detected again, at their own positions', (t) => {
  const tracker = new ConnectionTracker({ protocols: [http1Protocol, lineProtocol] }, silentLogger);
  const d = client(4);
  feed(tracker, [connRecord({ type: 'open', connId: 4, role: 1, reason: 1 }), d(1, '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03')]);
  t.deepEqual(tracker.takeSignals().ignored, [4], 'the ciphertext is nobody\'s: ignored, muted');
  t.true(tracker.restartDetection(4, 2000));
  t.false(tracker.restartDetection(99, 2000), 'a connection it does not follow');
  // The plaintext source counts its own positions from 0.
  feed(tracker, [
    dataRecord({ connId: 4, dir: 1, pos: 0, payload: Buffer.from('REQ plain\n'), tsEnter: 3000, tsExit: 3010 }),
    dataRecord({ connId: 4, dir: 2, pos: 0, payload: Buffer.from('RES ok\n'), tsEnter: 3100, tsExit: 3110 }),
  ]);
  t.deepEqual(tracker.take().map((r) => [r.protocol, r.name, r.status]), [['line', 'plain', 'unset']]);
  t.is(tracker.stats().redetected, 1);
  t.deepEqual(tracker.protocolOf(4), { decided: true, protocol: 'line' });
});

test('the first TLS plaintext event restarts a connection: the ciphertext claimed before is dropped, detection starts over, the connection is encrypted (https)', (t) => {
  const tracker = new ConnectionTracker({ protocols: [http1Protocol, lineProtocol] }, silentLogger);
  const d = client(6);
  const tls = (dir: 1 | 2, pos: number, text: string, ts: number) =>
    dataRecord({ connId: 6, dir, pos, payload: Buffer.from(text, 'latin1'), tsEnter: ts, tsExit: ts + 10, source: DataSource.Tls, flags: DATA_F_TLS });
  feed(tracker, [connRecord({ type: 'open', connId: 6, role: 1, reason: 1 }), d(1, '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03')]);
  t.deepEqual(tracker.takeSignals().ignored, [6], 'the ciphertext is nobody\'s');
  const request = 'GET /a HTTP/1.1\r\nHost: svc\r\n\r\n';
  feed(tracker, [
    tls(1, 0, request, 3000),
    // Ciphertext the kernel shipped before the tie, arriving late: its stream is gone, its positions are not the plaintext's.
    d(2, '\x16\x03\x03\x00\x7a\x02\x00\x00\x76'),
    tls(2, 0, 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', 3100),
  ]);
  const records = tracker.take();
  t.deepEqual(records.map((r) => [r.protocol, r.name, r.attributes['url.scheme'], r.attributes['url.full'], r.attributes['http.response.status_code']]), [
    ['http1', 'GET', 'https', 'https://svc/a', 200],
  ]);
  const metric = records[0]!.measurements[0]!.attributes;
  t.is(metric['url.scheme'], 'https', 'the metric attribute set too');
  t.is(tracker.stats().redetected, 1);
  t.is(tracker.stats().ciphertextDropped, 1, 'the late ciphertext');
  t.deepEqual(tracker.takeSignals().unignored, [6], 'muted from its ciphertext: its plaintext is wanted');
  t.deepEqual(tracker.takeSignals().unignored, []);
  t.deepEqual(tracker.protocolOf(6), { decided: true, protocol: 'http' });
  // A second TLS event does not restart again.
  feed(tracker, [tls(1, request.length, request, 4000), tls(2, 38, 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', 4100)]);
  t.is(tracker.take().length, 1);
  t.is(tracker.stats().redetected, 1);
});

test('plain and TLS connections of the same shape get their own metric attribute sets (the shared cache keys on the scheme)', (t) => {
  const tracker = new ConnectionTracker({ protocols: [http1Protocol] }, silentLogger);
  const exchange = (connId: number, source: number, flags: number) => [
    connRecord({ type: 'open', connId, role: 1, reason: 1 }),
    dataRecord({ connId, dir: 1, pos: 0, payload: Buffer.from('GET / HTTP/1.1\r\nHost: svc:8443\r\n\r\n'), tsEnter: 1000, tsExit: 1010, source, flags }),
    dataRecord({ connId, dir: 2, pos: 0, payload: Buffer.from('HTTP/1.1 204 No Content\r\n\r\n'), tsEnter: 1100, tsExit: 1110, source, flags }),
  ];
  feed(tracker, [...exchange(1, 2, 0), ...exchange(2, DataSource.Tls, DATA_F_TLS), ...exchange(3, 2, 0)]);
  const schemes = tracker.take().map((r) => [r.connId, r.attributes['url.scheme'], r.measurements[0]!.attributes['url.scheme']]);
  t.deepEqual(schemes, [
    [1, 'http', 'http'],
    [2, 'https', 'https'],
    [3, 'http', 'http'],
  ]);
});
