// PgSession rules the recorded captures do not reach: the TLS hand-over
// (in the session and through the connection tracker with the agent's
// registry), GSSAPI encryption, bounds and their counters, timeouts, close,
// unexpected responses, refused logins.

import test from 'ava';
import { decodeBatch, newDecodeStats } from '../../../src/capture/decode';
import type { CaptureEvent } from '../../../src/capture/events';
import { DATA_F_TLS, DataSource, Direction, Role } from '../../../src/capture/layout';
import { ConnectionTracker } from '../../../src/correlate/connection-tracker';
import { postgresProtocol } from '../../../src/protocols/postgres';
import { PG_MAX_STATEMENTS, PgSession } from '../../../src/protocols/postgres/session';
import { PROTOCOLS } from '../../../src/protocols/registry';
import type { ConnectionInfo, L7Record, ProtocolSwitch, Side } from '../../../src/protocols/types';
import { silentLogger } from '../../../src/util/log';
import { batch, connRecord, dataRecord } from '../../helpers/records';
import { back, front } from './messages';

const conn: ConnectionInfo = {
  connId: 1,
  tgid: 100,
  role: 'client',
  sawStart: true,
  encrypted: false,
  transport: 'tcp',
  localAddr: '127.0.0.1',
  localPort: 40000,
  remoteAddr: '127.0.0.1',
  remotePort: 5432,
};

/** A client session and a clock: `send` writes (egress), `recv` reads (ingress), each 1 µs later. */
function client(options: object = {}, info: ConnectionInfo = conn) {
  const switches: ProtocolSwitch[] = [];
  const abandons: number[] = [];
  const starts: number[] = [];
  const session = new PgSession(info, 'egress', { queryText: 'sanitized', ...options }, {
    requestStarted: (r) => starts.push(r.sequence),
    requestAbandoned: (seq) => abandons.push(seq),
    protocolSwitched: (s) => switches.push(s),
  });
  const out: L7Record[] = [];
  const pos: Record<Side, number> = { egress: 0, ingress: 0 };
  let now = 1000;
  const feed = (side: Side, ...parts: Buffer[]) => {
    const data = Buffer.concat(parts);
    now += 1000;
    session.onChunk({ side, data, pos: pos[side], startNs: now, endNs: now + 10, syscallStart: true }, out);
    pos[side] += data.length;
  };
  const ready = () => {
    feed('egress', front.startup({ user: 'app', database: 'shop' }));
    feed('ingress', back.authOk(), back.parameterStatus('server_version', '15.18'), back.backendKeyData(7, 9), back.ready());
  };
  return { session, out, switches, abandons, starts, feed, ready, send: (...p: Buffer[]) => feed('egress', ...p), recv: (...p: Buffer[]) => feed('ingress', ...p), now: () => now };
}

test('SSLRequest answered S: the session hands the connection on from both positions, nothing held, no record', (t) => {
  const c = client();
  c.send(front.sslRequest());
  c.recv(back.answer('S'));
  t.deepEqual(c.switches, [{ upgrade: undefined, from: { egress: 8, ingress: 1 }, held: [] }]);
  // What follows is TLS: not read.
  c.send(Buffer.from('160301020001', 'hex'));
  t.deepEqual(c.out, []);
  t.is(c.session.stats.sslRequests, 1);
  t.is(c.session.stats.parseErrors, 0);
});

test('SSLRequest answered N: startup goes on in clear and queries are recorded with the database and user', (t) => {
  const c = client();
  c.send(front.sslRequest());
  c.recv(back.answer('N'));
  c.ready();
  c.send(front.query('SELECT 1'));
  c.recv(back.rowDescription(['?column?']), back.dataRow(['1']), back.commandComplete('SELECT 1'), back.ready());
  t.deepEqual(c.switches, []);
  t.is(c.out.length, 1);
  t.is(c.out[0]!.attributes['db.namespace'], 'shop');
  t.is(c.out[0]!.attributes['ebpf_otel.db.user'], 'app');
  t.is(c.out[0]!.attributes['db.response.returned_rows'], 1);
});

test('GSSENCRequest answered G: handed to nobody (both positions unknown)', (t) => {
  const c = client();
  c.send(front.gssencRequest());
  c.recv(back.answer('G'));
  t.deepEqual(c.switches, [{ upgrade: undefined, from: { egress: undefined, ingress: undefined }, held: [] }]);
});

test('the tracker with the agent\'s registry: SSLRequest, S, the ClientHello goes to detection, the probed plaintext restarts it: records from the plaintext', (t) => {
  const tracker = new ConnectionTracker({ protocols: PROTOCOLS }, silentLogger);
  const events: CaptureEvent[] = [];
  const rec = (dir: number, pos: number, payload: Buffer, ts: number, tls = false) =>
    dataRecord({ connId: 5, role: Role.Client, dir, pos, payload, tsEnter: ts, tsExit: ts + 100, ...(tls ? { source: DataSource.Tls, flags: DATA_F_TLS } : {}) });
  const clientHello = Buffer.concat([Buffer.from('1603010200010001fc0303', 'hex'), Buffer.alloc(0x200 - 6, 1)]);
  const records = [
    connRecord({ type: 'open', connId: 5, role: Role.Client, reason: 1 }),
    rec(Direction.Egress, 0, front.sslRequest(), 1000),
    rec(Direction.Ingress, 0, back.answer('S'), 2000),
    rec(Direction.Egress, 8, clientHello, 3000),
  ];
  decodeBatch(batch(records), (e) => events.push(e), newDecodeStats());
  for (const e of events) tracker.onEvent(e);
  t.deepEqual(tracker.take(), []);
  t.is(tracker.stats().switched['detect'], 1);
  // The TLS library's plaintext from position 0: the StartupMessage.
  const plain: CaptureEvent[] = [];
  const startup = front.startup({ user: 'app', database: 'shop' });
  const query = front.query('SELECT id FROM accounts WHERE id = 7');
  const answer = Buffer.concat([back.rowDescription(['id']), back.dataRow(['7']), back.commandComplete('SELECT 1'), back.ready()]);
  const welcome = Buffer.concat([back.authOk(), back.ready()]);
  decodeBatch(batch([
    rec(Direction.Egress, 0, startup, 10_000, true),
    rec(Direction.Ingress, 0, welcome, 11_000, true),
    rec(Direction.Egress, startup.length, query, 12_000, true),
    rec(Direction.Ingress, welcome.length, answer, 13_000, true),
  ]), (e) => plain.push(e), newDecodeStats());
  for (const e of plain) tracker.onEvent(e);
  const out = tracker.take();
  t.deepEqual(out.map((r) => [r.protocol, r.name, r.attributes['db.query.text'], r.attributes['db.namespace']]), [['postgres', 'SELECT accounts', 'SELECT id FROM accounts WHERE id = ?', 'shop']]);
  // The ciphertext was claimed by tls (and muted), then unmuted when the plaintext came.
  t.is(tracker.stats().detected['tls'], 1);
  t.is(tracker.stats().detected['postgres'], 2);
  t.deepEqual(tracker.takeSignals().unignored, [5]);
});

test('named statements over the bound are not kept (counted); their executions have no text (counted)', (t) => {
  const c = client();
  c.ready();
  const parses: Buffer[] = [];
  for (let i = 0; i <= PG_MAX_STATEMENTS; i++) parses.push(front.parse(`s${i}`, `SELECT ${i}`));
  c.send(...parses, front.sync());
  c.recv(...parses.map(() => back.parseComplete()), back.ready());
  t.is(c.session.stats.statementsOverBound, 1);
  c.send(front.bind('', `s${PG_MAX_STATEMENTS}`, []), front.execute(''), front.bind('', 's0', []), front.execute(''), front.sync());
  c.recv(back.bindComplete(), back.dataRow(['1']), back.commandComplete('SELECT 1'), back.bindComplete(), back.dataRow(['0']), back.commandComplete('SELECT 1'), back.ready());
  t.deepEqual(c.out.map((r) => [r.name, r.attributes['db.query.text']]), [['SELECT', undefined], ['SELECT', 'SELECT ?']]);
  t.is(c.session.stats.unknownStatements, 1);
});

test('a Query longer than maxBufferedBytes: recorded without text, counted, nothing of it buffered', (t) => {
  const c = client({ maxBufferedBytes: 1024 });
  c.ready();
  const sql = `SELECT '${'x'.repeat(5000)}'`;
  c.send(front.query(sql));
  t.true(c.session.bufferedBytes() < 1024);
  c.recv(back.rowDescription(['?column?']), back.dataRow(['x']), back.commandComplete('SELECT 1'), back.ready());
  t.is(c.out.length, 1);
  t.is(c.out[0]!.attributes['db.query.text'], undefined);
  t.is(c.out[0]!.attributes['db.operation.name'], 'SELECT');
  t.is(c.session.stats.queryTextsLost, 1);
});

test('no answer within the timeout: an error record (timeout), and pairing waits for a ReadyForQuery again', (t) => {
  const c = client();
  c.ready();
  c.send(front.query('SELECT pg_sleep(100)'));
  c.session.expire(c.now() + 5_000, 10_000, c.out);
  t.is(c.out.length, 0);
  c.session.expire(c.now() + 20_000, 10_000, c.out);
  t.deepEqual(c.out.map((r) => [r.name, r.status, r.errorType]), [['SELECT', 'error', 'timeout']]);
  t.is(c.session.stats.requestsWithoutResponse, 1);
  // The late answer pairs nothing; its ReadyForQuery proves the boundary: the next query is followed.
  c.recv(back.commandComplete('SELECT 1'), back.ready());
  c.send(front.query('SELECT 2'));
  c.recv(back.commandComplete('SELECT 1'), back.ready());
  t.is(c.out.length, 2);
  t.is(c.out[1]!.attributes['db.query.text'], 'SELECT ?');
});

test('closed with calls in flight: connection_closed records; a response that fits no request drops the calls in flight', (t) => {
  const c = client();
  c.ready();
  c.send(front.query('SELECT 1'));
  c.recv(back.bindComplete());
  t.is(c.session.stats.unpairedResponses, 1);
  t.deepEqual(c.abandons, [0]);
  c.recv(back.ready());
  c.send(front.query('SELECT 2'));
  c.session.close(c.now() + 100, c.out);
  t.deepEqual(c.out.map((r) => [r.sequence, r.errorType]), [[1, 'connection_closed']]);
  t.deepEqual(c.starts, [0, 1]);
});

test('notices and notifications between messages never move the pairing; a refused login is counted, not recorded', (t) => {
  const c = client();
  c.ready();
  c.send(front.query('LISTEN x'));
  c.recv(back.notice('hello'), back.commandComplete('LISTEN'), back.notice('again'), back.ready());
  t.is(c.out.length, 1);
  t.is(c.out[0]!.status, 'unset');
  t.is(c.session.stats.notices, 2);

  const refused = client();
  refused.send(front.startup({ user: 'app', database: 'shop' }));
  refused.recv(back.authCleartext());
  refused.send(front.password('hunter2-secret'));
  refused.recv(back.error('28P01', 'password authentication failed for user "app"'));
  t.deepEqual(refused.out, []);
  t.is(refused.session.stats.startupErrors, 1);
  t.false(JSON.stringify(refused.session.stats).includes('hunter2'));
});

test('the protocol definition: id, network protocol name, the postgres section and its flag', (t) => {
  t.is(postgresProtocol.id, 'postgres');
  t.is(postgresProtocol.networkProtocolName, 'postgresql');
  t.is(postgresProtocol.config?.section, 'postgres');
  t.deepEqual(Object.keys(postgresProtocol.config?.flags ?? {}), ['postgres-query-text']);
  t.deepEqual(postgresProtocol.config!.resolve(undefined, { 'postgres-query-text': 'off' }, {}, {}), { queryText: 'off' });
  t.deepEqual(postgresProtocol.config!.resolve({ query_text: 'raw' }, {}, {}, {}), { queryText: 'raw' });
  t.deepEqual(postgresProtocol.config!.resolve(undefined, {}, {}, { EBPF_OTEL_POSTGRES_QUERY_TEXT: 'raw' }), { queryText: 'raw' });
});
