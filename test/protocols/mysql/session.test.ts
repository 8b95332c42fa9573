// MysqlSession rules the recordings do not reach: sequence-id mismatches,
// the prepared-statement bound, raw query text, the SSL request's hand-off,
// timeouts, LOCAL INFILE. Packets are built here by the wire rules
// (src/protocols/mysql/README.md); the recorded goldens cover the rest.

import test from 'ava';
import fc from 'fast-check';
import * as path from 'node:path';
import { mysqlProtocol } from '../../../src/protocols/mysql';
import { MYSQL_MAX_STATEMENTS } from '../../../src/protocols/mysql/session';
import type { DbOptions } from '../../../src/protocols/db/semantics';
import type { Chunk, ConnectionInfo, L7Record, ProtocolSwitch, Side } from '../../../src/protocols/types';
import { loadCase } from '../../helpers/protocol-replay';

function conn(sawStart: boolean): ConnectionInfo {
  return { connId: 7, tgid: 1, role: 'client', sawStart, encrypted: false, transport: 'tcp', localAddr: '127.0.0.1', localPort: 40000, remoteAddr: '127.0.0.1', remotePort: 3307 };
}

function packet(seq: number, payload: Buffer | number[]): Buffer {
  const p = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  return Buffer.concat([Buffer.from([p.length & 0xff, (p.length >> 8) & 0xff, p.length >> 16, seq]), p]);
}

const query = (sql: string) => packet(0, Buffer.concat([Buffer.from([0x03]), Buffer.from(sql, 'utf8')]));
const prepare = (sql: string) => packet(0, Buffer.concat([Buffer.from([0x16]), Buffer.from(sql, 'utf8')]));
const execute = (id: number) => packet(0, [0x17, id & 0xff, (id >> 8) & 0xff, 0, 0, 0, 1, 0, 0, 0]);
/** OK: affected rows, insert id, status (autocommit), warnings. */
const ok = (seq: number, affected = 0) => packet(seq, [0x00, affected, 0, 0x02, 0x00, 0, 0]);
const prepareOk = (seq: number, id: number) => packet(seq, [0x00, id & 0xff, (id >> 8) & 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
const err = (seq: number, code: number, state: string, message: string) =>
  packet(seq, Buffer.concat([Buffer.from([0xff, code & 0xff, code >> 8]), Buffer.from(`#${state}${message}`, 'utf8')]));

class Driver {
  readonly records: L7Record[] = [];
  readonly starts: number[] = [];
  readonly abandons: number[] = [];
  readonly switches: ProtocolSwitch[] = [];
  private readonly pos: Record<Side, number> = { egress: 0, ingress: 0 };
  private now = 1_000_000;
  readonly session;

  constructor(sawStart: boolean, options: Partial<DbOptions> = {}) {
    this.session = mysqlProtocol.createSession(conn(sawStart), 'egress', { queryText: 'sanitized', ...options } as DbOptions, {
      requestStarted: (r) => this.starts.push(r.sequence),
      requestAbandoned: (s) => this.abandons.push(s),
      protocolSwitched: (s) => this.switches.push(s),
    });
  }

  send(side: Side, data: Buffer): void {
    this.now += 1000;
    const c: Chunk = { side, data, pos: this.pos[side], startNs: this.now, endNs: this.now, syscallStart: true, tid: 9 };
    this.pos[side] += data.length;
    this.session.onChunk(c, this.records);
  }
}

test('a server packet with the wrong sequence id pairs nothing: the command is given up, counted, and the next one pairs', (t) => {
  const d = new Driver(false);
  d.send('egress', query('SELECT 1'));
  // A column count (sequence 1), then a packet with sequence 5 where 2 was due.
  d.send('ingress', Buffer.concat([packet(1, [1]), packet(5, Buffer.alloc(20, 1))]));
  t.deepEqual(d.records, []);
  t.deepEqual(d.abandons, [0]);
  t.is(d.session.stats['sequenceMismatches'], 1);
  d.send('egress', query('UPDATE t SET a = 5'));
  d.send('ingress', ok(1, 3));
  t.is(d.records.length, 1);
  t.is(d.records[0]!.attributes['db.query.text'], 'UPDATE t SET a = ?');
  t.is(d.records[0]!.attributes['ebpf_otel.db.affected_rows'], 3);
  t.is(d.records[0]!.attributes['db.system.name'], 'other_sql', 'joined mid-stream: the greeting naming the server was not seen');
  t.deepEqual(d.starts, [0, 1]);
});

test('prepared statements: at most MYSQL_MAX_STATEMENTS per connection, the oldest forgotten; an execution of a forgotten one has no text and is counted', (t) => {
  const d = new Driver(false);
  for (let id = 1; id <= MYSQL_MAX_STATEMENTS + 1; id++) {
    d.send('egress', prepare(`SELECT ${id} FROM t WHERE id = ?`));
    d.send('ingress', prepareOk(1, id));
  }
  t.is(d.session.stats['statementsEvicted'], 1);
  t.is(d.records.length, 0, 'a prepare that works makes no record');
  t.is(d.abandons.length, MYSQL_MAX_STATEMENTS + 1);
  d.send('egress', execute(1));
  d.send('ingress', ok(1));
  d.send('egress', execute(2));
  d.send('ingress', ok(1));
  t.is(d.records.length, 2);
  t.is(d.records[0]!.name, 'other_sql');
  t.is(d.records[0]!.attributes['db.query.text'], undefined);
  t.is(d.records[1]!.attributes['db.query.text'], 'SELECT ? FROM t WHERE id = ?');
  t.is(d.session.stats['statementsUnknown'], 1);
});

test('a failed prepare is an error record with its SQL', (t) => {
  const d = new Driver(false);
  d.send('egress', prepare('SELECT * FROM nosuch WHERE id = ?'));
  d.send('ingress', err(1, 1146, '42S02', "Table 'shop.nosuch' doesn't exist"));
  t.is(d.records.length, 1);
  const r = d.records[0]!;
  t.is(r.name, 'SELECT nosuch');
  t.is(r.status, 'error');
  t.is(r.errorType, '1146');
  t.is(r.statusMessage, "Table '?' doesn't exist");
});

test('raw query text: the statement and the server message as sent', (t) => {
  const d = new Driver(false, { queryText: 'raw' });
  d.send('egress', query("INSERT INTO t (id, name) VALUES (1, 'x-secret')"));
  d.send('ingress', err(1, 1062, '23000', "Duplicate entry '1' for key 'PRIMARY'"));
  t.is(d.records[0]!.attributes['db.query.text'], "INSERT INTO t (id, name) VALUES (1, 'x-secret')");
  t.is(d.records[0]!.statusMessage, "Duplicate entry '1' for key 'PRIMARY'");
  const off = new Driver(false, { queryText: 'off' });
  off.send('egress', query("INSERT INTO t (id, name) VALUES (1, 'x-secret')"));
  off.send('ingress', err(1, 1062, '23000', "Duplicate entry '1' for key 'PRIMARY'"));
  t.is(off.records[0]!.attributes['db.query.text'], undefined);
  t.is(off.records[0]!.statusMessage, "Duplicate entry '?' for key '?'");
});

test('an SSL request hands the connection back to detection at the positions after it and after the greeting', (t) => {
  const FIXTURE = path.resolve(__dirname, '../../../../test/fixtures/mysql/mysql2-query');
  const first = loadCase(FIXTURE).input.events.find((e) => e.kind === 'chunk');
  if (first?.kind !== 'chunk') return t.fail();
  const greeting = first.chunk.data;
  const d = new Driver(true);
  d.send('ingress', greeting);
  // Capabilities PROTOCOL_41 | SSL | SECURE_CONNECTION, max packet, charset, 23 zero bytes.
  const caps = 0x200 | 0x800 | 0x8000;
  const ssl = packet(1, Buffer.concat([Buffer.from([caps & 0xff, caps >> 8, 0, 0, 0, 0, 0, 1, 33]), Buffer.alloc(23)]));
  d.send('egress', ssl);
  t.deepEqual(d.switches, [{ upgrade: undefined, from: { egress: ssl.length, ingress: greeting.length }, held: [] }]);
  t.is(d.session.stats['tlsUpgrades'], 1);
  // TLS bytes after it are not parsed.
  d.send('egress', Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]));
  t.is(d.session.stats['parseErrors'], 0);
  t.deepEqual(d.records, []);
});

test('a command without an answer: an error record at the timeout; the late answer is not paired with the next command', (t) => {
  const d = new Driver(false);
  d.send('egress', query('SELECT SLEEP(100)'));
  d.session.expire(50_000_000_000, 30_000_000_000, d.records);
  t.is(d.records.length, 1);
  t.is(d.records[0]!.errorType, 'timeout');
  t.is(d.session.stats.requestsWithoutResponse, 1);
  // The late answer comes before the next command: unpaired, then the next command pairs by resync.
  d.send('ingress', Buffer.concat([packet(1, [1]), packet(2, Buffer.alloc(20, 1)), packet(3, [0xfe, 0, 0, 2, 0]), packet(4, [1, 0x31]), packet(5, [0xfe, 0, 0, 2, 0])]));
  d.send('egress', query('SELECT 2'));
  d.send('ingress', ok(1));
  t.is(d.records.length, 2);
  t.is(d.records[1]!.attributes['db.query.text'], 'SELECT ?');
  t.is(d.records[1]!.status, 'unset');
});

test('LOAD DATA LOCAL INFILE: the file packets are skipped, the OK after them ends the record', (t) => {
  const d = new Driver(false);
  d.send('egress', query("LOAD DATA LOCAL INFILE '/tmp/x.csv' INTO TABLE t"));
  d.send('ingress', packet(1, Buffer.concat([Buffer.from([0xfb]), Buffer.from('/tmp/x.csv')])));
  d.send('egress', packet(2, Buffer.from('1,a\n2,b\n')));
  d.send('egress', packet(3, Buffer.alloc(0)));
  d.send('ingress', ok(4, 2));
  t.is(d.records.length, 1);
  t.is(d.records[0]!.attributes['ebpf_otel.db.affected_rows'], 2);
  t.is(d.session.stats['localInfile'], 1);
  t.is(d.session.stats.parseErrors, 0);
});

test('arbitrary bytes on either side, from the start or mid-stream, never throw and never buffer past the bounds', (t) => {
  fc.assert(
    fc.property(
      fc.boolean(),
      fc.array(fc.tuple(fc.boolean(), fc.uint8Array({ minLength: 1, maxLength: 200 }), fc.boolean()), { maxLength: 30 }),
      (sawStart, chunks) => {
        const d = new Driver(sawStart);
        for (const [egress, bytes, gap] of chunks) {
          d.send(egress ? 'egress' : 'ingress', Buffer.from(bytes));
          if (gap) d.session.onGap(egress ? 'egress' : 'ingress', 0, 100, 1, d.records);
          if (d.session.bufferedBytes() > 64 * 1024 + 64 * 256) return false;
        }
        d.session.close(Number.MAX_SAFE_INTEGER, d.records);
        return true;
      },
    ),
    { numRuns: 3000 },
  );
  t.pass();
});
