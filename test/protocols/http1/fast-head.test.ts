// The fast path (fast-head.ts) against llhttp: what scanHead() accepts and
// refuses, rule by rule, and sessions with and without it giving identical
// records, stats and observer signals, on every golden capture at every split
// point and on generated traffic that mixes accepted heads with near misses.

import test from 'ava';
import * as path from 'node:path';
import fc from 'fast-check';
import { http1Protocol, type Http1Options } from '../../../src/protocols/http1';
import { Http1HeadScan, MAX_FAST_KEPT, scanHead } from '../../../src/protocols/http1/fast-head';
import { headerTables, HTTP1_DEFAULT_HEADER_TABLES } from '../../../src/protocols/http1/header-names';
import { HTTP1_DEFAULT_LIMITS, Http1Session } from '../../../src/protocols/http1/session';
import type { ConnectionInfo, ProtocolDefinition, Side } from '../../../src/protocols/types';
import { bytewise, interleavings, listCases, loadCase, replay, splitAt, splitPositions, type ReplayCase, type ReplayEvent, type ReplayOutcome } from '../../helpers/protocol-replay';

/** HTTP/1 with every head parsed by llhttp: the reference. */
const LLHTTP_ONLY: ProtocolDefinition<Http1Options> = {
  ...http1Protocol,
  createSession: (conn, side, options, observer) => new Http1Session(conn, side, options, observer, 'llhttp'),
};

const L = HTTP1_DEFAULT_LIMITS;
const REQ = HTTP1_DEFAULT_HEADER_TABLES.request;
const RES = HTTP1_DEFAULT_HEADER_TABLES.response;

function scan(kind: 'request' | 'response', text: string, off = 0): { end: number; scan: Http1HeadScan } {
  const out = new Http1HeadScan();
  const end = scanHead(kind, Buffer.from(text, 'latin1'), off, kind === 'request' ? REQ : RES, L, out);
  return { end, scan: out };
}

function kept(s: Http1HeadScan, text: string): [string, string][] {
  const out: [string, string][] = [];
  for (let k = 0; k < s.kept; k++) out.push([s.keptNames[k]!, text.slice(s.keptSpans[2 * k]!, s.keptSpans[2 * k + 1]!)]);
  return out;
}

// --- scanHead ---------------------------------------------------------------

test('a request head: its end, method, target and kept values without OWS', (t) => {
  const head = 'xxGET /a/b?c=1&d=%20 HTTP/1.1\r\nHost:  shop:8080 \r\nAccept: */*\r\nUser-Agent: curl/8\t\r\nConnection: Keep-Alive\r\nContent-Length: 12\r\n\r\n';
  const text = `${head}body`;
  const { end, scan: s } = scan('request', text, 2);
  t.is(end, head.length);
  t.is(s.method, 'GET');
  t.is(text.slice(s.targetStart, s.targetEnd), '/a/b?c=1&d=%20');
  t.is(s.status, 0);
  t.deepEqual(kept(s, text), [
    ['host', 'shop:8080'],
    ['user-agent', 'curl/8'],
    ['content-length', '12'],
  ]);
});

test('a response head: status and kept values', (t) => {
  const text = 'HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\ncontent-length: 0\r\n\r\n';
  const { end, scan: s } = scan('response', text);
  t.is(end, text.length);
  t.is(s.status, 404);
  t.is(s.method, '');
  t.deepEqual(kept(s, text), [['content-length', '0']]);
  t.is(scan('response', 'HTTP/1.1 200 \r\n\r\n').end, 17, 'an empty reason phrase');
});

const REFUSED_REQUESTS: [string, string][] = [
  ['a head not whole in the bytes', 'GET / HTTP/1.1\r\nHost: a\r\n\r'],
  ['HTTP/1.0', 'GET / HTTP/1.0\r\n\r\n'],
  ['HTTP/2.0', 'GET / HTTP/2.0\r\n\r\n'],
  ['a method outside the list', 'PROPFIND / HTTP/1.1\r\n\r\n'],
  ['CONNECT', 'CONNECT a:443 HTTP/1.1\r\n\r\n'],
  ['a lower-case method', 'get / HTTP/1.1\r\n\r\n'],
  ['leading CRLF', '\r\nGET / HTTP/1.1\r\n\r\n'],
  ['two spaces after the method', 'GET  / HTTP/1.1\r\n\r\n'],
  ['absolute-form', 'GET http://a/ HTTP/1.1\r\n\r\n'],
  ['asterisk-form', 'OPTIONS * HTTP/1.1\r\n\r\n'],
  ['a fragment in the target', 'GET /a#b HTTP/1.1\r\n\r\n'],
  ['a quote in the target', 'GET /a"b HTTP/1.1\r\n\r\n'],
  ['a non-ASCII byte in the target', 'GET /\xe9 HTTP/1.1\r\n\r\n'],
  ['a target past maxTargetBytes', `GET /${'a'.repeat(L.maxTargetBytes)} HTTP/1.1\r\n\r\n`],
  ['a bare LF after the request line', 'GET / HTTP/1.1\nHost: a\r\n\r\n'],
  ['a bare CR in a value', 'GET / HTTP/1.1\r\nX: a\rb\r\n\r\n'],
  ['a bare LF ending the head', 'GET / HTTP/1.1\r\nHost: a\r\n\n'],
  ['whitespace before the colon', 'GET / HTTP/1.1\r\nHost : a\r\n\r\n'],
  ['an empty field name', 'GET / HTTP/1.1\r\n: a\r\n\r\n'],
  ['a non-token field name', 'GET / HTTP/1.1\r\nX(y): a\r\n\r\n'],
  ['obs-fold', 'GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n'],
  ['a control byte in a value', 'GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n'],
  ['DEL in a value', 'GET / HTTP/1.1\r\nX: a\x7fb\r\n\r\n'],
  ['obs-text in a value', 'GET / HTTP/1.1\r\nX: caf\xe9\r\n\r\n'],
  ['Transfer-Encoding', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n'],
  ['Upgrade', 'GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n'],
  ['Connection: close', 'GET / HTTP/1.1\r\nConnection: close\r\n\r\n'],
  ['Connection: keep-alive, Upgrade', 'GET / HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\n\r\n'],
  ['Proxy-Connection', 'GET / HTTP/1.1\r\nProxy-Connection: close\r\n\r\n'],
  ['Content-Length twice, equal', 'POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n'],
  ['Content-Length with a sign', 'POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n'],
  ['Content-Length empty', 'POST / HTTP/1.1\r\nContent-Length: \r\n\r\n'],
  ['Content-Length of two numbers', 'POST / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n'],
  ['Content-Length of 16 digits', 'POST / HTTP/1.1\r\nContent-Length: 1000000000000000\r\n\r\n'],
  ['a kept value past maxKeptValue', `GET / HTTP/1.1\r\nUser-Agent: ${'u'.repeat(L.maxKeptValue)}\r\n\r\n`],
  ['more kept lines than the scan holds', `GET / HTTP/1.1\r\n${'Host: a\r\n'.repeat(MAX_FAST_KEPT + 1)}\r\n`],
  ['more header lines than maxHeaderCount', `GET / HTTP/1.1\r\n${'X: a\r\n'.repeat(L.maxHeaderCount + 1)}\r\n`],
  ['a head past maxHeaderBytes', `GET / HTTP/1.1\r\nX: ${'a'.repeat(L.maxHeaderBytes)}\r\n\r\n`],
];

for (const [why, text] of REFUSED_REQUESTS) {
  test(`refused, left to llhttp: request with ${why}`, (t) => {
    t.is(scan('request', text).end, -1);
  });
}

const REFUSED_RESPONSES: [string, string][] = [
  ['a head not whole', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\n'],
  ['HTTP/1.0', 'HTTP/1.0 200 OK\r\n\r\n'],
  ['a 1xx status', 'HTTP/1.1 100 Continue\r\n\r\n'],
  ['101', 'HTTP/1.1 101 Switching Protocols\r\n\r\n'],
  ['a status of 600', 'HTTP/1.1 600 X\r\n\r\n'],
  ['a two-digit status', 'HTTP/1.1 20 OK\r\n\r\n'],
  ['no reason phrase', 'HTTP/1.1 200\r\n\r\n'],
  ['obs-text in the reason', 'HTTP/1.1 200 \xc0K\r\n\r\n'],
  ['chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'],
  ['Connection: close', 'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n'],
];

for (const [why, text] of REFUSED_RESPONSES) {
  test(`refused, left to llhttp: response with ${why}`, (t) => {
    t.is(scan('response', text).end, -1);
  });
}

test('with captured headers a matching name is refused (header capture has llhttp path rules)', (t) => {
  const tables = headerTables({ captureHeaders: { request: ['x-request-id'], response: [] } });
  const out = new Http1HeadScan();
  t.is(scanHead('request', Buffer.from('GET / HTTP/1.1\r\nX-Request-Id: 1\r\n\r\n'), 0, tables.request, L, out), -1);
});

// --- the two paths give the same output ---------------------------------------

const FIXTURES = path.resolve(__dirname, '../../../../test/fixtures/http1');

/** Every variant the golden test runs (fewer split points for the deep pipelining captures). */
function* variantEvents(c: ReplayCase): Generator<[string, readonly ReplayEvent[]]> {
  let bytes = 0;
  for (const e of c.events) if (e.kind === 'chunk') bytes += e.chunk.data.length;
  yield ['whole', c.events];
  for (const [i, order] of interleavings(c.events).entries()) yield [`interleaving ${i}`, order];
  yield ['bytewise', bytewise(c.events)];
  const positions = bytes > 100_000 ? splitPositions(c.events, 512, 127) : splitPositions(c.events);
  for (const k of positions) yield [`split at ${k}`, splitAt(c.events, k)];
}

const output = (r: ReplayOutcome): string =>
  JSON.stringify({ records: r.records, stats: r.stats, starts: r.starts, abandons: r.abandons, violations: r.contractViolations });

for (const dir of listCases(FIXTURES)) {
  const { input } = loadCase(dir);
  test(`same output with and without the fast path: ${input.name}`, async (t) => {
    let runs = 0;
    for (const [label, events] of variantEvents(input)) {
      if (++runs % 64 === 0) await new Promise((resolve) => setImmediate(resolve));
      const fast = output(replay(http1Protocol, input.session, events));
      const slow = output(replay(LLHTTP_ONLY, input.session, events));
      if (fast !== slow) {
        t.deepEqual(JSON.parse(fast), JSON.parse(slow), `${input.name} (${label})`);
        return;
      }
    }
    t.pass(`${runs} variants`);
  });
}

/** Each side's chunks (one syscall each), seen from the start, closed at the end: the outputs of the two paths. */
function bothPaths(requests: string[], responses: string[]): [string, string] {
  const events: ReplayEvent[] = [];
  for (const [side, list, t0] of [['ingress', requests, 1000], ['egress', responses, 2000]] as const) {
    let pos = 0;
    for (const [i, text] of list.entries()) {
      events.push({ kind: 'chunk', chunk: { side, pos, startNs: t0 + i, endNs: t0 + i, syscallStart: true, data: Buffer.from(text, 'latin1') } });
      pos += text.length;
    }
  }
  events.push({ kind: 'close', atNs: 3000 });
  const spec = { conn: conn(true), requestSide: 'ingress' as Side };
  return [output(replay(http1Protocol, spec, events)), output(replay(LLHTTP_ONLY, spec, events))];
}

test('after a message llhttp closed the connection on (Connection: close in a trailer), the next head is llhttp\'s', (t) => {
  const get = 'GET /a HTTP/1.1\r\nHost: h\r\n\r\n';
  const [fast, slow] = bothPaths([get, get], ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nConnection: close\r\n\r\n', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n']);
  t.is(fast, slow);
  // llhttp refuses data after that close: one record (the first exchange), one parse error.
  const out = JSON.parse(slow) as { records: unknown[]; stats: { parseErrors: number } };
  t.is(out.records.length, 1);
  t.is(out.stats.parseErrors, 1);
});

// Generated traffic: heads the fast path takes, and each way of missing it.
const conn = (sawStart: boolean): ConnectionInfo => ({
  connId: 3, tgid: 3, role: 'server', sawStart, encrypted: false, transport: 'tcp',
  localAddr: '10.0.0.2', localPort: 80, remoteAddr: '10.0.0.1', remotePort: 40000,
});

const pick = <T>(...xs: T[]) => fc.constantFrom(...xs);
const text = (chars: fc.Arbitrary<string>, maxLength: number) => fc.array(chars, { maxLength }).map((cs) => cs.join(''));
/** Mostly characters the fast path takes, now and then one it refuses. */
const mostly = (good: string[], bad: string[]) => fc.oneof({ weight: 30, arbitrary: pick(...good) }, { weight: 1, arbitrary: pick(...bad) });
const targetChars = text(mostly('abz09-._~!$&\'()*+,;=:@/%?'.split(''), ['#', '"', '\xe9', ' ']), 12);
const valueText = text(mostly(['a', 'Z', '0', ' ', '\t', ',', ';', '=', '/'], ['\x01', '\x7f', '\xe9', '\r', '\n']), 10);
const fieldLine = fc.oneof(
  { weight: 12, arbitrary: fc.tuple(pick('Host', 'host', 'User-Agent', 'X-Id', 'Accept', 'traceparent', 'tracestate'), valueText).map(([n, v]) => `${n}: ${v}\r\n`) },
  { weight: 2, arbitrary: fc.tuple(pick('Content-Length', 'content-length'), pick('0', '3', '10', '007', '+3', '', '3 4', '1000000000000000', ' 3 ')).map(([n, v]) => `${n}:${v}\r\n`) },
  { weight: 1, arbitrary: fc.tuple(pick('Connection', 'Proxy-Connection'), pick('keep-alive', 'Keep-Alive', 'close', 'upgrade', 'keep-alive, Upgrade')).map(([n, v]) => `${n}: ${v}\r\n`) },
  { weight: 1, arbitrary: pick('Transfer-Encoding: chunked\r\n', 'Upgrade: websocket\r\n', 'Host : a\r\n', 'X y: a\r\n', ' folded\r\n', 'Bare: lf\n', 'Expect: 100-continue\r\n') },
);
const requestHead = fc
  .tuple(mostly(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE'], ['CONNECT', 'PROPFIND', 'get']), targetChars, mostly(['HTTP/1.1'], ['HTTP/1.0']), fc.array(fieldLine, { maxLength: 5 }), mostly([''], ['\r\n']))
  .map(([m, t, v, lines, lead]) => `${lead}${m} /${t} ${v}\r\n${lines.join('')}\r\n`);
const responseHead = fc
  .tuple(mostly(['HTTP/1.1'], ['HTTP/1.0']), fc.oneof({ weight: 6, arbitrary: pick(200, 201, 204, 304, 404, 500) }, { weight: 1, arbitrary: pick(100, 101, 199, 600) }), mostly([' OK', ' '], ['', ' N\xe9']), fc.array(fieldLine, { maxLength: 5 }))
  .map(([v, s, reason, lines]) => `${v} ${s}${reason}\r\n${lines.join('')}\r\n`);
const body = fc.oneof(pick('', '', 'abc', '0123456789', '3\r\nabc\r\n0\r\n\r\n', '3\r\nabc\r\n0\r\nConnection: close\r\n\r\n'), fc.string({ maxLength: 12 }));

/** Chunks of `text` cut at `cuts`, the first of each message starting a syscall. */
function chunks(text: string, cuts: number[]): Buffer[] {
  const b = Buffer.from(text, 'latin1');
  const at = [...new Set(cuts.map((c) => c % (b.length + 1)))].filter((c) => c > 0 && c < b.length).sort((x, y) => x - y);
  const out: Buffer[] = [];
  let from = 0;
  for (const c of [...at, b.length]) {
    out.push(b.subarray(from, c));
    from = c;
  }
  return out;
}

test('generated exchanges, cut anywhere: the same output with and without the fast path, and the fast path used', (t) => {
  let scanned = 0;
  const probe = new Http1HeadScan();
  fc.assert(
    fc.property(
      fc.array(fc.tuple(requestHead, body, responseHead, body), { minLength: 1, maxLength: 4 }),
      fc.array(fc.nat(400), { maxLength: 4 }),
      fc.array(fc.nat(400), { maxLength: 4 }),
      fc.boolean(),
      fc.integer({ min: -4, max: 4 }),
      fc.boolean(),
      (exchanges, reqCuts, resCuts, close, gapAt, sawStart) => {
        for (const [rq, , rs] of exchanges) {
          if (scanHead('request', Buffer.from(rq, 'latin1'), 0, REQ, L, probe) >= 0) scanned++;
          if (scanHead('response', Buffer.from(rs, 'latin1'), 0, RES, L, probe) >= 0) scanned++;
        }
        const requests = exchanges.map(([rq, b]) => rq + b).join('');
        const responses = exchanges.map(([, , rs, b]) => rs + b).join('');
        const events: ReplayEvent[] = [];
        // One chunk (not the first) of one side may be lost: a gap of its length (gapAt > 0 responses, < 0 requests).
        const side = (s: Side, text: string, cuts: number[], t0: number, lost: number) => {
          let pos = 0;
          for (const [i, d] of chunks(text, cuts).entries()) {
            if (i > 0 && i === lost) events.push({ kind: 'gap', side: s, pos, bytes: d.length, atNs: t0 + i });
            else events.push({ kind: 'chunk', chunk: { side: s, pos, startNs: t0 + i, endNs: t0 + i, syscallStart: i === 0, data: d } });
            pos += d.length;
          }
        };
        side('ingress', requests, reqCuts, 1000, -gapAt);
        side('egress', responses, resCuts, 2000, gapAt);
        if (close) events.push({ kind: 'close', atNs: 3000 });
        // Not seen from its start: each side hunts for a message start first.
        const spec = { conn: conn(sawStart), requestSide: 'ingress' as Side };
        const fast = output(replay(http1Protocol, spec, events));
        const slow = output(replay(LLHTTP_ONLY, spec, events));
        if (fast !== slow) t.deepEqual(JSON.parse(fast), JSON.parse(slow), JSON.stringify({ requests, responses, reqCuts, resCuts, gapAt, sawStart }));
        return fast === slow;
      },
    ),
    { numRuns: 3000 },
  );
  // The generator must reach the fast path often, or the comparison proves little.
  t.true(scanned > 1000, `${scanned} heads scanned`);
});
