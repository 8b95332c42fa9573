// PostgreSQL detection on recorded connections (test/fixtures/postgres/):
// a client's first message matches from a connection's start, every prefix
// of it asks for more; joined mid-stream, a syscall of whole messages
// matches with the right request side or not at all. Nothing else matches:
// every HTTP/1, HTTP/2 and TLS capture (from the start and mid-stream),
// MySQL and Redis bytes, random bytes.

import test from 'ava';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { postgresProtocol } from '../../../src/protocols/postgres';
import { classifyStart } from '../../../src/protocols/postgres/detect';
import type { ConnectionInfo, Side } from '../../../src/protocols/types';
import { listCases, parseCase, type ChunkEvent } from '../../helpers/protocol-replay';

const ROOT = path.resolve(__dirname, '../../../../test/fixtures');

const conn = (role: ConnectionInfo['role'], sawStart: boolean): ConnectionInfo => ({
  connId: 1,
  tgid: 100,
  role,
  sawStart,
  encrypted: false,
  transport: 'tcp',
  localAddr: '127.0.0.1',
  localPort: 40000,
  remoteAddr: '127.0.0.1',
  remotePort: 5432,
});

function chunks(dir: string): ChunkEvent[] {
  const file = fs.readFileSync(path.join(dir, 'events.jsonl'), 'utf8');
  if (!file.startsWith('{"session"')) {
    // test/fixtures/http2: one read a line, without a session line.
    return file.split('\n').filter((l) => l !== '').map((l) => {
      const o = JSON.parse(l) as { side: Side; pos: number; data: string };
      return { side: o.side, pos: o.pos, startNs: 0, endNs: 0, syscallStart: true, data: Buffer.from(o.data, 'base64') };
    });
  }
  return parseCase(path.basename(dir), file).events.flatMap((e) => (e.kind === 'chunk' ? [e.chunk] : []));
}

const pg = (name: string) => path.join(ROOT, 'postgres', name);

test('a StartupMessage (pg, with its parameters), an SSLRequest (psql) and a CancelRequest match from the start; the side that sent it asks', (t) => {
  for (const [name, kind] of [['pg-simple', 'startup'], ['psql-copy', 'ssl'], ['raw-cancel', 'cancel'], ['pg-ssl', 'ssl']] as const) {
    const first = chunks(pg(name))[0]!;
    t.is(first.side, 'egress');
    t.is(classifyStart(first.data), kind, name);
    t.deepEqual(postgresProtocol.detect('egress', first.data, conn('client', true)), { result: 'match', requestSide: 'egress' }, name);
    // The server read it: requests are what it reads.
    t.deepEqual(postgresProtocol.detect('ingress', first.data, conn('server', true)), { result: 'match', requestSide: 'ingress' }, name);
    for (let n = 0; n < first.data.length; n++) {
      t.deepEqual(postgresProtocol.detect('egress', first.data.subarray(0, n), conn('client', true)), { result: 'more' }, `${name}: ${n} bytes`);
    }
  }
});

test('seen from the start, a server\'s first bytes and messages after startup are not a connection start', (t) => {
  for (const c of chunks(pg('pg-simple')).slice(1)) t.deepEqual(postgresProtocol.detect(c.side, c.data, conn('client', true)), { result: 'no' });
});

test('joined mid-stream: every syscall of every recorded connection matches with its true request side, or does not match', (t) => {
  let matched = 0;
  let total = 0;
  for (const dir of listCases(path.join(ROOT, 'postgres'))) {
    const name = path.basename(dir);
    // The ciphertext after an SSLRequest's `S` is TLS, not PostgreSQL; the server view swaps sides.
    if (name === 'pg-ssl' || name.endsWith('-server')) continue;
    for (const c of chunks(dir)) {
      for (const role of ['client', 'unknown'] as const) {
        total++;
        const d = postgresProtocol.detect(c.side, c.data, conn(role, false));
        if (d.result === 'no') continue;
        t.deepEqual(d, { result: 'match', requestSide: 'egress' }, `${name} ${c.side}@${c.pos}`);
        matched++;
      }
    }
  }
  // Most syscalls are whole messages (reads of big results are cut anywhere and do not match).
  t.true(matched > total / 2, `${matched} of ${total}`);
});

test('the server view of a connection joined mid-stream: requests are what it reads', (t) => {
  for (const c of chunks(pg('pg-simple-server'))) {
    const d = postgresProtocol.detect(c.side, c.data, conn('server', false));
    if (d.result !== 'no') t.deepEqual(d, { result: 'match', requestSide: 'ingress' });
  }
});

test('no HTTP/1, HTTP/2 or TLS capture matches, from its start or joined mid-stream, whatever the role', (t) => {
  let n = 0;
  for (const proto of ['http1', 'http2', 'http2-sessions', 'tls']) {
    for (const dir of listCases(path.join(ROOT, proto))) {
      for (const c of chunks(dir)) {
        for (const sawStart of [true, false]) {
          for (const role of ['client', 'server', 'unknown'] as const) {
            for (const side of ['egress', 'ingress'] as Side[]) {
              const d = postgresProtocol.detect(side, c.data.subarray(0, postgresProtocol.maxDetectBytes), conn(role, sawStart));
              if (d.result === 'match') t.fail(`${proto}/${path.basename(dir)} ${c.side}@${c.pos} matched`);
              n++;
            }
          }
        }
      }
    }
  }
  t.true(n > 1000, `${n} tries`);
});

test('MySQL and Redis bytes never match', (t) => {
  const mysqlPacket = (seq: number, payload: Buffer) => Buffer.concat([Buffer.from([payload.length & 0xff, (payload.length >> 8) & 0xff, payload.length >> 16, seq]), payload]);
  const samples = [
    // A MariaDB server greeting (protocol 10), a COM_QUERY, an OK packet, a COM_STMT_PREPARE.
    mysqlPacket(0, Buffer.concat([Buffer.from([10]), Buffer.from('5.5.5-10.11.6-MariaDB-0+deb12u1\0', 'latin1'), Buffer.from('0b000000', 'hex'), crypto.randomBytes(8), Buffer.from([0, 0xfe, 0xf7, 0x2d, 0x02, 0x00, 0xff, 0x81, 0x15]), Buffer.alloc(10), crypto.randomBytes(12), Buffer.from('\0mysql_native_password\0', 'latin1')])),
    mysqlPacket(0, Buffer.from('\x03SELECT id, owner FROM accounts WHERE id = 1', 'latin1')),
    mysqlPacket(1, Buffer.from([0, 1, 0, 2, 0, 0, 0])),
    mysqlPacket(0, Buffer.from('\x16SELECT * FROM accounts WHERE id = ?', 'latin1')),
    Buffer.from('*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n', 'latin1'),
    Buffer.from('*1\r\n$4\r\nPING\r\n', 'latin1'),
    Buffer.from('+OK\r\n', 'latin1'),
    Buffer.from('$5\r\nvalue\r\n', 'latin1'),
    Buffer.from(':1\r\n', 'latin1'),
    Buffer.from('-ERR unknown command\r\n', 'latin1'),
    Buffer.from('>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n', 'latin1'),
  ];
  for (const s of samples) {
    for (const sawStart of [true, false]) {
      for (const role of ['client', 'server', 'unknown'] as const) {
        for (const side of ['egress', 'ingress'] as Side[]) {
          t.not(postgresProtocol.detect(side, s, conn(role, sawStart)).result, 'match', s.toString('latin1'));
        }
      }
    }
  }
});

test('random bytes never match (10 000 buffers of 1 to 600 bytes, and with a message type first)', (t) => {
  const rnd = crypto.createHash('sha256');
  let seed = rnd.update('pg-detect').digest();
  const next = (n: number): Buffer => {
    const out: Buffer[] = [];
    let have = 0;
    while (have < n) {
      seed = crypto.createHash('sha256').update(seed).digest();
      out.push(seed);
      have += seed.length;
    }
    return Buffer.concat(out).subarray(0, n);
  };
  for (let i = 0; i < 10000; i++) {
    const b = next(1 + (i % 600));
    if (i % 2 === 0) b[0] = 'QPBESDCZTH'.charCodeAt(i % 10);
    for (const sawStart of [true, false]) {
      const d = postgresProtocol.detect(i % 4 < 2 ? 'egress' : 'ingress', b, conn('unknown', sawStart));
      if (d.result === 'match') t.fail(`random buffer ${i} matched: ${b.toString('hex')}`);
    }
  }
  t.pass();
});
