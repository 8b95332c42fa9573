// The TLS protocol inside the connection tracker with the agent's registry:
// a server whose TLS the agent cannot probe is claimed at its ServerHello,
// handed to nobody (muted) and counted, with no record; a server whose
// library is probed (it read a ClientHello, then its plaintext came) is
// neither claimed nor muted nor counted; plain HTTP still makes records.

import test from 'ava';
import * as path from 'node:path';
import { decodeBatch, newDecodeStats } from '../../../src/capture/decode';
import type { CaptureEvent } from '../../../src/capture/events';
import { Direction, Role } from '../../../src/capture/layout';
import { ConnectionTracker } from '../../../src/correlate/connection-tracker';
import { PROTOCOLS } from '../../../src/protocols/registry';
import { silentLogger } from '../../../src/util/log';
import { loadCase } from '../../helpers/protocol-replay';
import { batch, connRecord, dataRecord } from '../../helpers/records';

const FIXTURES = path.resolve(__dirname, '../../../../test/fixtures/tls');

function feed(tracker: ConnectionTracker, records: Buffer[]): void {
  const events: CaptureEvent[] = [];
  decodeBatch(batch(records), (e) => events.push(e), newDecodeStats());
  for (const e of events) tracker.onEvent(e);
}

/** The recorded server side of a handshake as kernel records of connection `connId`. */
function serverHandshake(connId: number): Buffer[] {
  const { input } = loadCase(path.join(FIXTURES, 'openssl-server-tls13'));
  const out = [connRecord({ type: 'open', connId, role: Role.Server, reason: 2 })];
  for (const e of input.events) {
    if (e.kind !== 'chunk') continue;
    const c = e.chunk;
    out.push(dataRecord({ connId, role: Role.Server, dir: c.side === 'egress' ? Direction.Egress : Direction.Ingress, pos: c.pos, payload: c.data, tsEnter: c.startNs, tsExit: c.endNs }));
  }
  return out;
}

test('an unprobed TLS server: claimed, handed to nobody (muted once), counted once, no record', (t) => {
  const tracker = new ConnectionTracker({ protocols: PROTOCOLS }, silentLogger);
  feed(tracker, serverHandshake(7));
  t.deepEqual(tracker.take(), []);
  const signals = tracker.takeSignals();
  t.deepEqual(signals.ignored, [7]);
  t.deepEqual(signals.starts, []);
  t.deepEqual(tracker.protocolOf(7), { decided: true, protocol: 'tls' });
  const s = tracker.stats();
  t.is(s.detected['tls'], 1);
  t.is(s.protocol['tls']!['unprobedConnections'], 1);
  t.is(s.protocol['tls']!.records, 0);
  t.is(s.switched['none'], 1);
  t.is(s.undetected, 0);
  feed(tracker, [connRecord({ type: 'close', connId: 7, role: Role.Server })]);
  t.deepEqual(tracker.takeSignals().ignored, []);
  t.is(tracker.stats().protocol['tls']!['unprobedConnections'], 1);
});

test('a probed TLS server (it read a ClientHello, then plaintext came): not claimed, not muted, its HTTP makes a record', (t) => {
  const tracker = new ConnectionTracker({ protocols: PROTOCOLS }, silentLogger);
  const clientHello = serverHandshake(8).slice(0, 2);
  feed(tracker, clientHello);
  t.deepEqual(tracker.takeSignals().ignored, []);
  t.deepEqual(tracker.protocolOf(8), { decided: false });
  t.true(tracker.restartDetection(8, 5_000_000));
  const req = Buffer.from('GET /items HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 'latin1');
  const res = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}', 'latin1');
  feed(tracker, [
    dataRecord({ connId: 8, role: Role.Server, dir: Direction.Ingress, pos: 0, payload: req, tsEnter: 6_000_000, tsExit: 6_000_100 }),
    dataRecord({ connId: 8, role: Role.Server, dir: Direction.Egress, pos: 0, payload: res, tsEnter: 6_001_000, tsExit: 6_001_100 }),
  ]);
  const records = tracker.take();
  t.deepEqual(records.map((r) => [r.protocol, r.name]), [['http1', 'GET /items']]);
  t.deepEqual(tracker.takeSignals().ignored, []);
  const s = tracker.stats();
  t.is(s.detected['tls'], undefined);
  t.is(s.protocol['tls'], undefined);
});

test('plain HTTP/1 with TLS first in the registry: detected as before', (t) => {
  const tracker = new ConnectionTracker({ protocols: PROTOCOLS }, silentLogger);
  feed(tracker, [
    connRecord({ type: 'open', connId: 9, role: Role.Server, reason: 2 }),
    dataRecord({ connId: 9, role: Role.Server, dir: Direction.Ingress, pos: 0, payload: Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n'), tsEnter: 1000, tsExit: 1100 }),
    dataRecord({ connId: 9, role: Role.Server, dir: Direction.Egress, pos: 0, payload: Buffer.from('HTTP/1.1 204 No Content\r\n\r\n'), tsEnter: 2000, tsExit: 2100 }),
  ]);
  t.deepEqual(tracker.take().map((r) => [r.protocol, r.attributes['http.response.status_code']]), [['http1', 204]]);
  t.is(tracker.stats().detected['tls'], undefined);
});
