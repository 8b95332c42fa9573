// RedisSession rules the recorded goldens do not reach: timeouts and close,
// malformed bytes, the pending bound, a 100 MB value never buffered,
// MONITOR, RESP3 attributes and client-side caching pushes, RESET, a SELECT
// inside MULTI, a reply before the first command after a mid-stream join.

import test from 'ava';
import fc from 'fast-check';
import { redisProtocol } from '../../../src/protocols/redis';
import { REDIS_MAX_PENDING, RedisSession } from '../../../src/protocols/redis/session';
import type { QueryTextMode } from '../../../src/protocols/db/semantics';
import type { ConnectionInfo, L7Record, RequestStarted, Side } from '../../../src/protocols/types';

const conn = (sawStart = true): ConnectionInfo => ({
  connId: 7, tgid: 9, role: 'client', sawStart, encrypted: false, transport: 'tcp',
  localAddr: '127.0.0.1', localPort: 40000, remoteAddr: '127.0.0.1', remotePort: 6380,
});

/** RESP array of bulk strings. */
function cmd(...args: string[]): Buffer {
  return Buffer.from(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
}

class Harness {
  readonly records: L7Record[] = [];
  readonly starts: RequestStarted[] = [];
  readonly abandons: [number, number][] = [];
  readonly session: RedisSession;
  private pos: Record<Side, number> = { egress: 0, ingress: 0 };
  private t = 1000;

  constructor(mode: QueryTextMode = 'sanitized', sawStart = true, maxBufferedBytes?: number) {
    this.session = redisProtocol.createSession(conn(sawStart), 'egress', { queryText: mode, ...(maxBufferedBytes ? { maxBufferedBytes } : {}) }, {
      requestStarted: (r) => this.starts.push(r),
      requestAbandoned: (s, at) => this.abandons.push([s, at]),
    }) as RedisSession;
  }

  send(data: Buffer | string, syscallStart = true): this {
    return this.chunk('egress', data, syscallStart);
  }

  reply(data: Buffer | string, syscallStart = true): this {
    return this.chunk('ingress', data, syscallStart);
  }

  gap(side: Side, bytes: number): this {
    this.t += 1000;
    this.session.onGap(side, this.pos[side], bytes, this.t, this.records);
    this.pos[side] += bytes;
    return this;
  }

  now(): number {
    return this.t;
  }

  private chunk(side: Side, data: Buffer | string, syscallStart: boolean): this {
    const b = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
    this.t += 1000;
    this.session.onChunk({ side, data: b, pos: this.pos[side], startNs: this.t, endNs: this.t, syscallStart, tid: 3 }, this.records);
    this.pos[side] += b.length;
    return this;
  }

  summary(): string[] {
    return this.records.map((r) => {
      const a = r.attributes;
      return [r.name, a['db.query.text'] ?? '-', a['db.namespace'] ?? '-', r.status, r.errorType ?? '-', a['db.response.returned_rows'] ?? '-'].join(' | ');
    });
  }
}

test('pipelined commands pair with replies in order; attributes before a reply and nested arrays are walked', (t) => {
  const h = new Harness();
  h.send(Buffer.concat([cmd('GET', 'a'), cmd('LRANGE', 'l', '0', '-1'), cmd('HGETALL', 'h')]));
  h.reply('|1\r\n+key-popularity\r\n*2\r\n$1\r\na\r\n,0.19\r\n$1\r\nx\r\n*2\r\n*1\r\n:1\r\n*0\r\n%1\r\n+f\r\n=7\r\ntxt:abc\r\n');
  t.deepEqual(h.summary(), ['GET | GET a | 0 | unset | - | -', 'LRANGE | LRANGE l ? ? | 0 | unset | - | 2', 'HGETALL | HGETALL h | 0 | unset | - | 1']);
  t.deepEqual(h.starts.map((s) => [s.sequence, s.pos, s.startNs, s.tid]), [[0, 0, 2000, 3], [1, 20, 2000, 3], [2, 58, 2000, 3]]);
  t.is(h.session.stats.records, 3);
});

test('an unanswered command times out as an error, and its late reply is consumed without shifting the next', (t) => {
  const h = new Harness();
  h.send(cmd('BLPOP', 'q', '0'));
  h.session.expire(h.now() + 31e9, 30e9, h.records);
  t.deepEqual(h.summary(), ['BLPOP | BLPOP q ? | 0 | error | timeout | -']);
  h.send(cmd('GET', 'k'));
  h.reply('*2\r\n$1\r\nq\r\n$1\r\nv\r\n$2\r\nok\r\n');
  t.deepEqual(h.summary().slice(1), ['GET | GET k | 0 | unset | - | -']);
  t.is(h.session.stats.requestsWithoutResponse, 1);
  t.is(h.session.stats.unpairedResponses, 0);
});

test('commands waiting at close end as connection_closed errors', (t) => {
  const h = new Harness();
  h.send(Buffer.concat([cmd('SET', 'k', 'v'), cmd('GET', 'k')]));
  h.reply('+OK\r\n');
  h.session.close(h.now() + 5, h.records);
  t.deepEqual(h.summary(), ['SET | SET k ? | 0 | unset | - | -', 'GET | GET k | 0 | error | connection_closed | -']);
  t.is(h.session.stats.requestsWithoutResponse, 1);
});

test('malformed replies drop the waiting commands (abandoned, never guessed) and the session resyncs at the next command', (t) => {
  const h = new Harness();
  h.send(Buffer.concat([cmd('GET', 'a'), cmd('GET', 'b')]));
  h.reply('$1\r\nA\r\n');
  h.reply('?garbage\r\n');
  t.deepEqual(h.abandons.map(([s]) => s), [1]);
  t.is(h.session.stats.parseErrors, 1);
  t.is(h.session.stats.commandsDropped, 1);
  h.send(cmd('GET', 'c'));
  h.reply('$1\r\nC\r\n');
  t.deepEqual(h.summary(), ['GET | GET a | 0 | unset | - | -', 'GET | GET c | 0 | unset | - | -']);
});

test('a gap outside a value body loses the place; one inside a body is skipped exactly', (t) => {
  const h = new Harness();
  const set = cmd('SET', 'k', 'x'.repeat(1000));
  h.send(set.subarray(0, 100));
  h.gap('egress', set.length - 100);
  h.reply('+OK\r\n');
  h.send(cmd('GET', 'k'));
  h.reply('$1000\r\n' + 'x'.repeat(10));
  h.gap('ingress', 992);
  t.deepEqual(h.summary(), ['SET | SET k ? | 0 | unset | - | -', 'GET | GET k | 0 | unset | - | -']);
  h.send(cmd('GET', 'k'));
  h.gap('ingress', 10); // a reply's header lost: the place is lost
  t.deepEqual(h.abandons.map(([s]) => s), [2]);
  t.is(h.session.stats.commandsDropped, 1);
});

test('a 100 MB value is walked, not buffered', (t) => {
  const h = new Harness();
  const size = 100 * 1024 * 1024;
  h.send(`*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$${size}\r\n`);
  const block = Buffer.alloc(64 * 1024, 0x61);
  let max = 0;
  for (let sent = 0; sent < size; sent += block.length) {
    h.send(block, false);
    max = Math.max(max, h.session.bufferedBytes());
  }
  h.send('\r\n', false);
  h.reply('+OK\r\n');
  t.deepEqual(h.summary(), ['SET | SET big ? | 0 | unset | - | -']);
  t.true(max < 1024, `buffered ${max}`);
});

test('past the pending bound commands are given up, their replies consumed in order', (t) => {
  const h = new Harness();
  const n = REDIS_MAX_PENDING + 6;
  const cmds: Buffer[] = [];
  for (let i = 0; i < n; i++) cmds.push(cmd('INCR', `c${i}`));
  h.send(Buffer.concat(cmds));
  h.reply(Array.from({ length: n }, (_, i) => `:${i}\r\n`).join(''));
  h.send(cmd('PING'));
  h.reply('+PONG\r\n');
  t.is(h.records.length, REDIS_MAX_PENDING + 1);
  t.is(h.session.stats.pipelinedGivenUp, 6);
  t.is(h.records.at(-1)!.name, 'PING');
  t.is(h.records.at(-1)!.sequence, n);
  t.is(h.session.stats.unpairedResponses, 0);
});

test('the byte bound gives commands up too', (t) => {
  const h = new Harness('raw', true, 4096);
  h.send(Buffer.concat(Array.from({ length: 40 }, (_, i) => cmd('SET', `k${i}`, 'v'.repeat(200)))));
  h.reply('+OK\r\n'.repeat(40));
  t.true(h.session.stats.pipelinedGivenUp > 0);
  t.is(h.records.length + h.session.stats.pipelinedGivenUp, 40);
});

test('MONITOR lines, client-side caching invalidations and RESP2 messages outside subscribe mode', (t) => {
  const h = new Harness();
  h.send(cmd('MONITOR'));
  h.reply('+OK\r\n');
  h.reply('+1700000000.123456 [0 127.0.0.1:5000] "get" "k"\r\n');
  h.send(cmd('CLIENT', 'TRACKING', 'on'));
  h.reply('>2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n+OK\r\n');
  t.deepEqual(h.summary(), ['MONITOR | MONITOR | 0 | unset | - | -', 'CLIENT TRACKING | CLIENT TRACKING ? | 0 | unset | - | -']);
  t.is(h.session.stats.pushMessages, 2);
  // Not subscribed: an array that starts with "message" is an ordinary reply.
  const g = new Harness();
  g.send(cmd('LRANGE', 'l', '0', '-1'));
  g.reply('*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nb\r\n');
  t.deepEqual(g.summary(), ['LRANGE | LRANGE l ? ? | 0 | unset | - | 3']);
  t.is(g.session.stats.pushMessages, 0);
});

test('SELECT changes db.namespace only when answered OK; a SELECT inside MULTI makes it unknown after EXEC; RESET makes it 0', (t) => {
  const h = new Harness();
  h.send(cmd('SELECT', '3')).reply('-ERR DB index is out of range\r\n');
  h.send(cmd('SELECT', '4')).reply('+OK\r\n');
  h.send(cmd('GET', 'k')).reply('$-1\r\n');
  h.send(Buffer.concat([cmd('MULTI'), cmd('SELECT', '5'), cmd('EXEC')]));
  h.reply('+OK\r\n+QUEUED\r\n*1\r\n+OK\r\n');
  h.send(cmd('GET', 'k')).reply('_\r\n');
  h.send(cmd('RESET')).reply('+RESET\r\n');
  h.send(cmd('GET', 'k')).reply('$-1\r\n');
  t.deepEqual(h.summary(), [
    'SELECT | SELECT ? | 0 | error | ERR | -',
    'SELECT | SELECT ? | 4 | unset | - | -',
    'GET | GET k | 4 | unset | - | -',
    'MULTI | MULTI | 4 | unset | - | -',
    'SELECT | SELECT ? | 4 | unset | - | -',
    'EXEC | EXEC | - | unset | - | -',
    'GET | GET k | - | unset | - | -',
    // The record shows the connection as the reply left it (as SELECT's does).
    'RESET | RESET | 0 | unset | - | -',
    'GET | GET k | 0 | unset | - | -',
  ]);
});

test('joined mid-stream: no namespace, replies before the first command dropped, inline commands read once synced', (t) => {
  const h = new Harness('sanitized', false);
  h.reply('+OK\r\n');
  h.send('et k\r\n'); // the tail of an earlier command
  h.send(cmd('GET', 'k'));
  h.send('INCR n\r\n');
  h.reply('$1\r\nv\r\n:2\r\n');
  t.deepEqual(h.summary(), ['GET | GET k | - | unset | - | -', 'INCR | INCR n | - | unset | - | -']);
  t.is(h.session.stats.bytesSkipped, 5 + 6);
});

test('credentials never reach the text: AUTH and HELLO AUTH are sanitized even in raw mode', (t) => {
  const h = new Harness('raw');
  h.send(cmd('AUTH', 'hunter2')).reply('+OK\r\n');
  h.send(cmd('HELLO', '3', 'AUTH', 'user', 'hunter2')).reply('%0\r\n');
  h.send(cmd('CONFIG', 'SET', 'requirepass', 'hunter2')).reply('+OK\r\n');
  h.send(cmd('EVALSHA', 'abc123', '0')).reply('_\r\n');
  h.send(cmd('EVAL', 'return redis.call("GET", KEYS[1]) .. ARGV[1]', '1', 'k', 'hunter2')).reply('$1\r\nx\r\n');
  t.deepEqual(h.summary(), ['AUTH | AUTH ? | 0 | unset | - | -', 'HELLO | HELLO ? ? ? ? | 0 | unset | - | -', 'CONFIG SET | CONFIG SET ? ? | 0 | unset | - | -', 'EVALSHA | EVALSHA abc123 0 | 0 | unset | - | -', 'EVAL | EVAL return redis.call("GET", KEYS[1]) .. ARGV[1] 1 k hunter2 | 0 | unset | - | -']);
  t.false(JSON.stringify(h.records.slice(0, 3)).includes('hunter2'));
  t.is(h.records[3]!.attributes['db.stored_procedure.name'], 'abc123');
});

test('scripts and functions: the digest or function name, the key count and the keys shown; the script text and other arguments not', (t) => {
  const h = new Harness();
  h.send(cmd('EVAL', 'return redis.call("SET", KEYS[1], ARGV[1])', '2', 'k1', 'k2', 'secret')).reply('+OK\r\n');
  h.send(cmd('FCALL', 'myfn', '1', 'k', 'secret')).reply(':1\r\n');
  h.send(cmd('EVALSHA_RO', 'abc', '0', 'secret')).reply(':1\r\n');
  h.send(cmd('EVAL', 'x', 'many', 'k')).reply('-ERR value is not an integer or out of range\r\n');
  t.deepEqual(h.records.map((r) => r.attributes['db.query.text']), ['EVAL ? 2 k1 k2 ?', 'FCALL myfn 1 k ?', 'EVALSHA_RO abc 0 ?', 'EVAL ? many ?']);
  t.deepEqual(h.records.map((r) => r.attributes['db.stored_procedure.name']), [undefined, 'myfn', 'abc', undefined]);
});

test('an error reply: prefix as status code and error.type, quoted arguments left out of the message unless raw', (t) => {
  const h = new Harness();
  h.send(cmd('FOO', 'secret')).reply("-ERR unknown command 'FOO', with args beginning with: 'secret' \r\n");
  h.send(cmd('GET', 'k')).reply('!21\r\nSYNTAX invalid syntax\r\n');
  h.send(cmd('GET', 'k')).reply('-bad thing\r\n');
  const r = h.records;
  t.is(r[0]!.attributes['db.response.status_code'], 'ERR');
  t.is(r[0]!.statusMessage, "ERR unknown command '?', with args beginning with: '?' ");
  t.is(r[1]!.errorType, 'SYNTAX');
  t.is(r[1]!.statusMessage, 'SYNTAX invalid syntax');
  t.is(r[2]!.errorType, '_OTHER');
  t.false('db.response.status_code' in r[2]!.attributes);
});

test('arbitrary chunks and gaps on both sides: no throw, bounded buffering, every started command ends once (fixed seed)', (t) => {
  const piece = fc.oneof(
    fc.constantFrom('*2\r\n$3\r\nGET\r\n$1\r\nk\r\n', '+OK\r\n', ':1\r\n', '$3\r\nabc\r\n', '*1\r\n$5\r\nMULTI\r\n', '>2\r\n$7\r\nmessage\r\n$1\r\nx\r\n', 'PING\r\n', '-ERR x\r\n', '%1\r\n+a\r\n_\r\n'),
    fc.uint8Array({ maxLength: 40 }).map((u) => Buffer.from(u).toString('latin1')),
  );
  const step = fc.record({ side: fc.constantFrom<Side>('egress', 'ingress'), data: fc.array(piece, { maxLength: 6 }).map((a) => a.join('')), gap: fc.nat(30), start: fc.boolean() });
  fc.assert(
    fc.property(fc.boolean(), fc.array(step, { maxLength: 40 }), (sawStart, steps) => {
      const h = new Harness('raw', sawStart, 2048);
      for (const s of steps) {
        if (s.data.length > 0) (s.side === 'egress' ? h.send(s.data, s.start) : h.reply(s.data, s.start));
        if (s.gap > 25) h.gap(s.side, s.gap);
        if (h.session.bufferedBytes() > 2048 + 4096) return false;
      }
      h.session.close(h.now() + 1, h.records);
      const ended = new Map<number, number>();
      for (const r of h.records) ended.set(r.sequence, (ended.get(r.sequence) ?? 0) + 1);
      for (const [seq] of h.abandons) ended.set(seq, (ended.get(seq) ?? 0) + 1);
      return h.starts.every((s) => ended.get(s.sequence) === 1) && ended.size === h.starts.length;
    }),
    { seed: 19, numRuns: 3000 },
  );
  t.pass();
});
