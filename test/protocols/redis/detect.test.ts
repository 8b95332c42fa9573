// Redis detection: a command array where a syscall begins, never HTTP/1,
// HTTP/2, TLS, PostgreSQL or MySQL bytes, never random bytes; and the
// reader on arbitrary bytes (never throws, never keeps more than its bounds).

import test from 'ava';
import fc from 'fast-check';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { classifyCommand, detectRedis, REDIS_MAX_DETECT_BYTES } from '../../../src/protocols/redis/detect';
import { RespReader, type RespListener } from '../../../src/protocols/redis/resp';
import type { ConnectionInfo } from '../../../src/protocols/types';
import { ROOT } from '../../helpers/agent';
import { PROTOCOLS } from '../../../src/protocols/registry';
import { listCases, loadCase, parseCase } from '../../helpers/protocol-replay';

const conn: ConnectionInfo = {
  connId: 1, tgid: 1, role: 'client', sawStart: true, encrypted: false, transport: 'tcp',
  localAddr: '127.0.0.1', localPort: 40000, remoteAddr: '127.0.0.1', remotePort: 6380,
};

const b = (s: string) => Buffer.from(s, 'latin1');

test('a command array is detected on either side, that side carrying requests', (t) => {
  const cmd = b('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n');
  t.deepEqual(detectRedis('egress', cmd, conn), { result: 'match', requestSide: 'egress' });
  t.deepEqual(detectRedis('ingress', cmd, conn), { result: 'match', requestSide: 'ingress' });
  t.is(classifyCommand(b('*1\r\n$4\r\nPING\r\n')), 'whole');
  t.is(classifyCommand(b('*2\r\n$8\r\nJSON.GET\r\n$0\r\n\r\n')), 'whole');
});

test('prefixes ask for more; a command longer than the window is recognised by its name', (t) => {
  const cmd = b('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n');
  for (let n = 1; n < cmd.length; n++) {
    t.deepEqual(detectRedis('egress', cmd.subarray(0, n), conn), { result: 'more' }, `prefix ${n}`);
  }
  const big = Buffer.concat([b('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000\r\n'), Buffer.alloc(REDIS_MAX_DETECT_BYTES, 0x61)]).subarray(0, REDIS_MAX_DETECT_BYTES);
  t.deepEqual(detectRedis('egress', big, conn), { result: 'match', requestSide: 'egress' });
});

test('what is not a command array is refused', (t) => {
  const no = [
    'PING\r\n', // inline: also what text protocols (memcached `get k`) send
    'GET / HTTP/1.1\r\nHost: x\r\n\r\n',
    '+OK\r\n', // replies alone prove nothing
    ':1\r\n',
    '$5\r\nhello\r\n',
    '*2\r\n$3\r\nGET\r\n$1\r\nk\r\n'.replace('$3', '$4'), // length disagrees with the bytes
    '*0\r\n',
    '*01\r\n$4\r\nPING\r\n',
    '*1\r\n$4\r\n1NG2\r\n', // a name starts with a letter
    '*1\r\n$4\r\nPI G\r\n',
    '*1\r\n$40\r\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n', // longer than any command name
    '*1\n$4\nPING\n',
    '*2\r\n:1\r\n$1\r\nk\r\n', // elements are bulk strings
    '*2\r\n$4\r\nPING\r\nxx',
  ];
  for (const s of no) t.deepEqual(detectRedis('egress', b(s), conn), { result: 'no' }, JSON.stringify(s));
});

test('PostgreSQL, MySQL and TLS first messages are refused', (t) => {
  // PostgreSQL StartupMessage (protocol 3.0, user) and SSLRequest.
  const startup = Buffer.from('0000002100030000757365720070006461746162617365007000000000', 'hex');
  const ssl = Buffer.from('0000000804d2162f', 'hex');
  // MySQL server greeting (length 0x4a, sequence 0, protocol 10) and a client handshake response header.
  const greeting = Buffer.concat([Buffer.from('4a0000000a', 'hex'), b('5.5.5-10.11.6-MariaDB\0'), Buffer.alloc(40, 1)]);
  const login = Buffer.concat([Buffer.from('2a000001', 'hex'), Buffer.alloc(42, 0)]); // 0x2a = '*' as a packet length
  const tlsHello = Buffer.from('160301020001', 'hex');
  for (const [name, buf] of Object.entries({ startup, ssl, greeting, login, tlsHello })) {
    for (const side of ['egress', 'ingress'] as const) t.deepEqual(detectRedis(side, buf, conn), { result: 'no' }, name);
  }
});

test('no first chunk of any HTTP/1, HTTP/2 or TLS golden is taken for Redis', (t) => {
  let chunks = 0;
  for (const fixtures of ['http1', 'http2-sessions', 'tls']) {
    for (const dir of listCases(path.join(ROOT, 'test/fixtures', fixtures))) {
      const input = parseCase(path.basename(dir), fs.readFileSync(path.join(dir, 'events.jsonl'), 'utf8'));
      for (const e of input.events) {
        if (e.kind !== 'chunk' || !e.chunk.syscallStart) continue;
        chunks++;
        const d = detectRedis(e.chunk.side, e.chunk.data.subarray(0, REDIS_MAX_DETECT_BYTES), conn);
        if (d.result === 'match') t.fail(`${fixtures}/${path.basename(dir)}: ${e.chunk.side} at ${e.chunk.pos}`);
      }
    }
  }
  t.true(chunks > 1000, `${chunks} chunks`);
});

test('random bytes are never a command (fixed seed)', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 1, maxLength: 256 }), (bytes) => detectRedis('egress', Buffer.from(bytes), conn).result !== 'match'),
    { seed: 16, numRuns: 20000 },
  );
  // Random bytes after a valid array header and name: the rest must be whole elements.
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), (bytes) => {
      const buf = Buffer.concat([b('*2\r\n$3\r\nGET\r\n'), Buffer.from(bytes)]);
      const c = classifyCommand(buf);
      return c !== 'whole' || /^\$\d+\r\n/.test(Buffer.from(bytes).toString('latin1'));
    }),
    { seed: 17, numRuns: 20000 },
  );
  t.pass();
});

test('the reader takes arbitrary bytes cut anywhere without throwing, and keeps within its bounds', (t) => {
  const listener: RespListener = { valueBegin() {}, valueEnd() {}, keep: (_i, n) => n, malformed() {} };
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 512 }), fc.integer({ min: 1, max: 64 }), fc.boolean(), (bytes, step, inline) => {
      const r = new RespReader(listener, inline);
      for (let i = 0; i < bytes.length; i += step) {
        if (r.stopped) r.resume();
        r.feed(bytes.subarray(i, i + step), 0, i);
      }
      return r.top.used <= r.top.bytes.length;
    }),
    { seed: 18, numRuns: 5000 },
  );
  t.pass();
});

test('the goldens are what real clients send: every command chunk from a start is detected', (t) => {
  for (const dir of listCases(path.join(ROOT, 'test/fixtures/redis'))) {
    const { input } = loadCase(dir);
    if (!input.session.conn.sawStart) continue;
    const first = input.events.find((e) => e.kind === 'chunk');
    t.true(first !== undefined && first.kind === 'chunk' && detectRedis(first.chunk.side, first.chunk.data, conn).result === 'match', path.basename(dir));
  }
  t.true(fs.existsSync(path.join(ROOT, 'test/fixtures/redis/commands/events.jsonl')));
});

test('the protocols before Redis in the registry never claim a Redis golden\'s syscalls, from the start or mid-stream', (t) => {
  const before = PROTOCOLS.slice(0, PROTOCOLS.findIndex((p) => p.id === 'redis'));
  t.deepEqual(before.map((p) => p.id), ['tls', 'http2', 'http1', 'postgres', 'mysql']);
  let chunks = 0;
  for (const dir of listCases(path.join(ROOT, 'test/fixtures/redis'))) {
    const { input } = loadCase(dir);
    for (const e of input.events) {
      if (e.kind !== 'chunk' || !e.chunk.syscallStart) continue;
      chunks++;
      for (const sawStart of [true, false]) {
        for (const p of before) {
          const d = p.detect(e.chunk.side, e.chunk.data.subarray(0, p.maxDetectBytes), { ...conn, sawStart });
          if (d.result === 'match') t.fail(`${p.id} claims ${path.basename(dir)} ${e.chunk.side} at ${e.chunk.pos}`);
        }
      }
    }
  }
  t.true(chunks > 200, `${chunks} chunks`);
});
