import test from 'ava';
import { LLHTTP_ERROR, LlhttpParser, type LlhttpHandler } from '../../../src/protocols/http1/llhttp';

/** A handler logging its callbacks, and the parser it belongs to. */
function logged(kind: 'request' | 'response'): { log: string[]; parser: LlhttpParser } {
  const log: string[] = [];
  const text = (at: number, len: number) => parser.text(at, len);
  const handler: LlhttpHandler = {
    onMessageBegin: () => (log.push('begin'), 0),
    onUrl: (at, len) => (log.push(`url ${text(at, len)}`), 0),
    onStatus: (at, len) => (log.push(`status ${text(at, len)}`), 0),
    onHeaderField: (at, len) => (log.push(`field ${text(at, len)}`), 0),
    onHeaderValue: (at, len) => (log.push(`value ${text(at, len)}`), 0),
    onHeadersComplete: (status, upgrade) => (log.push(`headers ${status} ${upgrade}`), 0),
    onBody: (len) => (log.push(`body ${len}`), 0),
    onMessageComplete: () => (log.push('complete'), 0),
  };
  const parser = new LlhttpParser(kind, handler);
  return { log, parser };
}

test('parsers share one instance and are routed by pointer', (t) => {
  const a = logged('request');
  const b = logged('response');
  const pa = a.parser;
  const pb = b.parser;
  t.not(pa.ptr, pb.ptr);
  t.is(pa.execute(Buffer.from('GET /x HTTP/1.1\r\nHo')), LLHTTP_ERROR.OK);
  t.is(pb.execute(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nab')), LLHTTP_ERROR.OK);
  t.is(pa.execute(Buffer.from('st: a\r\n\r\n')), LLHTTP_ERROR.OK);
  t.is(pb.executeZeros(1), LLHTTP_ERROR.OK);
  t.deepEqual(a.log, ['begin', 'url /x', 'field Ho', 'field st', 'value a', 'headers 0 false', 'complete']);
  t.deepEqual(b.log, ['begin', 'status OK', 'field Content-Length', 'value 3', 'headers 200 false', 'body 2', 'body 1', 'complete']);
  t.is(pa.method(), 'GET');
  t.is(pb.version(), '1.1');
  pa.free();
  pb.free();
  pa.free();
});

test('errors report where parsing stopped; reset starts over', (t) => {
  const a = logged('request');
  const p = a.parser;
  t.not(p.execute(Buffer.from('GET / HTTP/1.1\r\nBad Header\r\n\r\n')), LLHTTP_ERROR.OK);
  t.true(p.consumed > 16 && p.consumed < 30);
  p.reset();
  t.is(p.execute(Buffer.from('GET /again HTTP/1.1\r\n\r\n')), LLHTTP_ERROR.OK);
  t.true(a.log.includes('url /again'));
  p.free();
});

test('an upgrade pauses after the request; input bigger than one slice is fed in pieces', (t) => {
  const a = logged('request');
  const p = a.parser;
  const head = 'GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n';
  t.is(p.execute(Buffer.from(`${head}\x81\x00`, 'latin1')), LLHTTP_ERROR.PAUSED_UPGRADE);
  t.is(p.consumed, head.length);
  p.free();

  const b = logged('response');
  const q = b.parser;
  const body = 200_000;
  const msg = Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body}\r\n\r\n`), Buffer.alloc(body, 0x61)]);
  t.is(q.execute(msg), LLHTTP_ERROR.OK);
  const bodies = b.log.filter((l) => l.startsWith('body ')).map((l) => Number(l.slice(5)));
  t.is(bodies.reduce((x, y) => x + y, 0), body);
  t.is(b.log.at(-1), 'complete');
  q.free();
});

test('spanIsToken folds letters only: any token character matches itself and nothing else', (t) => {
  const names = ['x_id', 'x~id', 'x-id'].map((n) => Buffer.from(n, 'latin1'));
  const results: boolean[][] = [];
  let parser: LlhttpParser | undefined;
  const handler: LlhttpHandler = {
    onMessageBegin: () => 0,
    onUrl: () => 0,
    onStatus: () => 0,
    onHeaderField: (at, len) => (results.push(names.map((n) => parser!.spanIsToken(at, len, n))), 0),
    onHeaderValue: () => 0,
    onHeadersComplete: () => 0,
    onBody: () => 0,
    onMessageComplete: () => 0,
  };
  parser = new LlhttpParser('request', handler);
  t.is(parser.execute(Buffer.from('GET / HTTP/1.1\r\nX_ID: 1\r\nX^ID: 2\r\nx~Id: 3\r\nX-iD: 4\r\n\r\n', 'latin1')), LLHTTP_ERROR.OK);
  t.deepEqual(results, [
    [true, false, false],
    [false, false, false],
    [false, true, false],
    [false, false, true],
  ]);
  parser.free();
});

test('spans read after wasm memory grew come from the grown memory', (t) => {
  const a = logged('request');
  t.is(a.parser.execute(Buffer.from('GET / HTTP/1.1\r\nX-A: 1\r\n')), LLHTTP_ERROR.OK);
  // Parsers live in wasm memory (llhttp_t is over 50 bytes): 40k of them are
  // megabytes, past any size the memory had, so it grows and its old buffer
  // is detached while the runtime holds a view of it.
  const many = Array.from({ length: 40_000 }, () => new LlhttpParser('request', a.parser.handler));
  for (const p of many) p.free();
  t.is(a.parser.execute(Buffer.from('X-B: 2\r\n\r\n')), LLHTTP_ERROR.OK);
  t.deepEqual(a.log.slice(-5), ['value 1', 'field X-B', 'value 2', 'headers 0 false', 'complete']);
  a.parser.free();
});
