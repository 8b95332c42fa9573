// MySQL detection: the recorded handshakes match (with the right request
// side); nothing of HTTP/1, HTTP/2, TLS, PostgreSQL or Redis does, seen from
// a connection's start or mid-stream; random bytes never do.

import test from 'ava';
import fc from 'fast-check';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { mysqlProtocol } from '../../../src/protocols/mysql';
import type { ConnectionInfo, Detection } from '../../../src/protocols/types';
import { listCases, loadCase, parseCase } from '../../helpers/protocol-replay';

const FIXTURES = path.resolve(__dirname, '../../../../test/fixtures');

function conn(sawStart: boolean, encrypted = false): ConnectionInfo {
  return { connId: 1, tgid: 1, role: 'client', sawStart, encrypted, transport: 'tcp', localAddr: '127.0.0.1', localPort: 40000, remoteAddr: '127.0.0.1', remotePort: 3307 };
}

const detect = (side: 'egress' | 'ingress', b: Buffer, c: ConnectionInfo): Detection => mysqlProtocol.detect(side, b.subarray(0, mysqlProtocol.maxDetectBytes), c);

test('the initial handshake a client reads, or a server writes, is MySQL; the request side is the other', (t) => {
  const client = loadCase(path.join(FIXTURES, 'mysql/mysql2-query')).input;
  const first = client.events.find((e) => e.kind === 'chunk')!;
  if (first.kind !== 'chunk') return t.fail();
  t.is(first.chunk.side, 'ingress');
  t.deepEqual(detect('ingress', first.chunk.data, conn(true)), { result: 'match', requestSide: 'egress' });
  t.deepEqual(detect('egress', first.chunk.data, conn(true)), { result: 'match', requestSide: 'ingress' });
  // A prefix asks for more; the same bytes mid-stream prove nothing (sequence 0 but no command).
  t.deepEqual(detect('ingress', first.chunk.data.subarray(0, 20), conn(true)), { result: 'more' });
  t.deepEqual(detect('ingress', first.chunk.data, conn(false)), { result: 'no' });
});

test('mid-stream: a command tiling its syscall exactly is MySQL; a longer or shorter syscall is not', (t) => {
  const query = Buffer.from('SELECT 1', 'latin1');
  const packet = Buffer.concat([Buffer.from([query.length + 1, 0, 0, 0, 0x03]), query]);
  t.deepEqual(detect('egress', packet, conn(false)), { result: 'match', requestSide: 'egress' });
  t.deepEqual(detect('ingress', packet, conn(false)), { result: 'match', requestSide: 'ingress' });
  t.deepEqual(detect('egress', Buffer.concat([packet, Buffer.from([1, 0, 0, 1, 0x0e])]), conn(false)), { result: 'no' });
  // Sequence id 1: not a command.
  t.deepEqual(detect('egress', Buffer.from([query.length + 1, 0, 0, 1, 0x03, ...query]), conn(false)), { result: 'no' });
  // COM_QUIT and binary after COM_QUERY prove nothing.
  t.deepEqual(detect('egress', Buffer.from([1, 0, 0, 0, 0x01]), conn(false)), { result: 'no' });
  t.deepEqual(detect('egress', Buffer.from([3, 0, 0, 0, 0x03, 0x00, 0x01]), conn(false)), { result: 'no' });
  t.deepEqual(detect('egress', Buffer.from([1, 0, 0, 0, 0x0e]), conn(false)), { result: 'match', requestSide: 'egress' });
});

/** Every syscall-start chunk of every other protocol's fixtures, with its connection. */
function otherProtocolChunks(): { name: string; data: Buffer }[] {
  const out: { name: string; data: Buffer }[] = [];
  for (const proto of ['http1', 'http2-sessions', 'tls']) {
    for (const dir of listCases(path.join(FIXTURES, proto))) {
      const input = parseCase(path.basename(dir), fs.readFileSync(path.join(dir, 'events.jsonl'), 'utf8'));
      for (const e of input.events) if (e.kind === 'chunk' && e.chunk.syscallStart) out.push({ name: `${proto}/${path.basename(dir)}`, data: e.chunk.data });
    }
  }
  // test/fixtures/http2: one read a line ({side, pos, atUs, data}).
  for (const dir of listCases(path.join(FIXTURES, 'http2'))) {
    for (const line of fs.readFileSync(path.join(dir, 'events.jsonl'), 'utf8').split('\n')) {
      if (line.trim() === '') continue;
      const o = JSON.parse(line) as { data?: string };
      if (o.data !== undefined) out.push({ name: `http2/${path.basename(dir)}`, data: Buffer.from(o.data, 'base64') });
    }
  }
  return out;
}

test('no HTTP/1, HTTP/2 or TLS fixture chunk matches, from the start or mid-stream, on either side', (t) => {
  const chunks = otherProtocolChunks();
  t.true(chunks.length > 500);
  for (const { name, data } of chunks) {
    for (const c of [conn(true), conn(false), conn(true, true)]) {
      for (const side of ['egress', 'ingress'] as const) {
        if (detect(side, data, c).result === 'match') t.fail(`${name} matched (${side}, sawStart ${c.sawStart})`);
      }
    }
  }
  t.pass();
});

test('PostgreSQL and Redis bytes never match', (t) => {
  const pg = [
    // StartupMessage (protocol 3.0, user, database), SSLRequest, a simple query, ReadyForQuery, an extended-query batch.
    Buffer.concat([Buffer.from([0, 0, 0, 37, 0, 3, 0, 0]), Buffer.from('user\0shopapp\0database\0shop\0\0', 'latin1')]),
    Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]),
    Buffer.concat([Buffer.from([0x51, 0, 0, 0, 13]), Buffer.from('SELECT 1\0', 'latin1')]),
    Buffer.from([0x5a, 0, 0, 0, 5, 0x49]),
    Buffer.concat([Buffer.from([0x50, 0, 0, 0, 16, 0]), Buffer.from('SELECT $1\0\0\0', 'latin1'), Buffer.from([0x53, 0, 0, 0, 4])]),
  ];
  const redis = ['*1\r\n$4\r\nPING\r\n', '+OK\r\n', '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n', '$-1\r\n', ':1\r\n', '-ERR unknown\r\n', 'PING\r\n'].map((s) => Buffer.from(s, 'latin1'));
  for (const b of [...pg, ...redis]) {
    for (const c of [conn(true), conn(false)]) for (const side of ['egress', 'ingress'] as const) t.not(detect(side, b, c).result, 'match', b.toString('hex'));
  }
});

test('random bytes never match mid-stream unless they are a command tiling the syscall; from the start, never without a valid handshake', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 300 }), fc.boolean(), (bytes, sawStart) => {
      const b = Buffer.from(bytes);
      const d = detect('egress', b, conn(sawStart));
      if (d.result !== 'match') return true;
      // A match is only ever a whole packet of sequence 0 (handshake or command) tiling the bytes.
      const len = b[0]! | (b[1]! << 8) | (b[2]! << 16);
      return b[3] === 0 && (sawStart ? b[4] === 10 : b.length === 4 + len);
    }),
    { numRuns: 20000 },
  );
  t.pass();
});
