// The parse caches sessions share (routes by path, parsed Host headers): a
// cached value is only ever what parsing the same text gives, never another
// request's, and at its bound a cache empties itself and is counted.

import test from 'ava';
import { http1Protocol } from '../../../src/protocols/http1';
import type { Http1Options } from '../../../src/protocols/http1/config';
import type { Http1Stats } from '../../../src/protocols/http1/counters';
import { HTTP_CACHE_ENTRIES } from '../../../src/protocols/http/semantics';
import type { ConnectionInfo, L7Record, ProtocolSession } from '../../../src/protocols/types';

const conn = (role: 'server' | 'client'): ConnectionInfo => ({
  connId: 1, tgid: 1, role, sawStart: true, encrypted: false, transport: 'tcp',
  localAddr: '10.0.0.2', localPort: 80, remoteAddr: '10.0.0.1', remotePort: 40000,
});

/** One exchange per call on `session`, returning its record. */
function exchange(session: ProtocolSession, request: string, now: number): L7Record {
  const out: L7Record[] = [];
  const chunk = (side: 'ingress' | 'egress', s: string, pos: number, at: number) =>
    session.onChunk({ side, data: Buffer.from(s, 'latin1'), pos, startNs: at, endNs: at, syscallStart: true, tid: 0 }, out);
  chunk('ingress', request, pos.ingress, now);
  pos.ingress += request.length;
  const response = 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n';
  chunk('egress', response, pos.egress, now + 10);
  pos.egress += response.length;
  if (out.length !== 1) throw new Error(`expected one record, got ${out.length}`);
  return out[0]!;
}
const pos = { ingress: 0, egress: 0 };

test('sessions of one options object share the caches; each record gets its own request\'s route and host', (t) => {
  const options: Http1Options = {};
  pos.ingress = pos.egress = 0;
  const a = http1Protocol.createSession(conn('server'), 'ingress', options);
  // Same texts twice (second from the cache), then texts that differ by one field only.
  const cases: [string, string, string | undefined, number | undefined][] = [
    ['GET /users/42 HTTP/1.1\r\nHost: Shop.Internal:8080\r\n\r\n', '/users/{id}', 'shop.internal', 8080],
    ['GET /users/42 HTTP/1.1\r\nHost: Shop.Internal:8080\r\n\r\n', '/users/{id}', 'shop.internal', 8080],
    ['GET /users/me HTTP/1.1\r\nHost: shop.internal\r\n\r\n', '/users/me', 'shop.internal', 80],
    ['GET /users/42?x=1 HTTP/1.1\r\nHost: [::1]:81\r\n\r\n', '/users/{id}', '::1', 81],
    ['GET /users/42 HTTP/1.1\r\nHost: bad host\r\n\r\n', '/users/{id}', undefined, undefined],
    ['GET /users/42 HTTP/1.1\r\nHost: bad host\r\n\r\n', '/users/{id}', undefined, undefined],
  ];
  let now = 1_000_000;
  for (const [request, route, host, port] of cases) {
    const r = exchange(a, request, (now += 1_000_000));
    t.is(r.attributes['http.route'], route);
    t.is(r.attributes['server.address'], host);
    t.is(r.attributes['server.port'], port);
  }
  // A second session with the same options hits what the first cached and gets the same values.
  pos.ingress = pos.egress = 0;
  const b = http1Protocol.createSession(conn('server'), 'ingress', options);
  const r = exchange(b, cases[0]![0], (now += 1_000_000));
  t.is(r.attributes['http.route'], '/users/{id}');
  t.is(r.attributes['server.port'], 8080);
  t.is((a.stats as Http1Stats).parseCacheResets, 0);
});

test('routes depend on the options: another route list is another cache', (t) => {
  pos.ingress = pos.egress = 0;
  const plain = http1Protocol.createSession(conn('server'), 'ingress', {});
  t.is(exchange(plain, 'GET /users/42 HTTP/1.1\r\n\r\n', 1e6).attributes['http.route'], '/users/{id}');
  pos.ingress = pos.egress = 0;
  const patterned = http1Protocol.createSession(conn('server'), 'ingress', { routes: ['/users/:user'] });
  t.is(exchange(patterned, 'GET /users/42 HTTP/1.1\r\n\r\n', 2e6).attributes['http.route'], '/users/:user');
});

test('past the bound a cache empties itself, counted, and routes stay right', (t) => {
  pos.ingress = pos.egress = 0;
  const s = http1Protocol.createSession(conn('server'), 'ingress', {});
  let now = 1e6;
  for (let i = 0; i <= HTTP_CACHE_ENTRIES; i++) {
    // Distinct literal words (base-26 letters), so each path is a new key.
    const word = [...i.toString(26).padStart(3, '0')].map((d) => String.fromCharCode(97 + parseInt(d, 26))).join('');
    const r = exchange(s, `GET /w${word}/7 HTTP/1.1\r\n\r\n`, (now += 1e6));
    t.regex(String(r.attributes['http.route']), /^\/w[a-z]+\/\{id\}$/);
  }
  t.is((s.stats as Http1Stats).parseCacheResets, 1);
});

test('shared metric attributes: equal values share one frozen object; any other value never gets it, across slot collisions', (t) => {
  pos.ingress = pos.egress = 0;
  const s = http1Protocol.createSession(conn('server'), 'ingress', {});
  const out: L7Record[] = [];
  let now = 1_000_000;
  const run = (method: string, path: string, status: number, version: string): L7Record => {
    const request = `${method} ${path} HTTP/${version}\r\nHost: shop\r\n\r\n`;
    const response = `HTTP/${version} ${status} X\r\nContent-Length: 0\r\n\r\n`;
    now += 1_000_000;
    s.onChunk({ side: 'ingress', data: Buffer.from(request, 'latin1'), pos: pos.ingress, startNs: now, endNs: now, syscallStart: true, tid: 0 }, out);
    pos.ingress += request.length;
    s.onChunk({ side: 'egress', data: Buffer.from(response, 'latin1'), pos: pos.egress, startNs: now + 10, endNs: now + 10, syscallStart: true, tid: 0 }, out);
    pos.egress += response.length;
    return out.pop()!;
  };
  // More distinct sets than the table has slots, twice over: every slot is overwritten by others in between.
  const cases: [string, string, number, string][] = [];
  for (const method of ['GET', 'POST', 'DELETE']) for (const path of ['/a', '/bb', '/users/42']) for (let status = 200; status < 520; status += 23) cases.push([method, path, status, '1.1']);
  t.true(cases.length > 64);
  const seen = new Map<string, object>();
  for (const round of [0, 1]) {
    for (const c of round ? [...cases].reverse() : cases) {
      const r = run(...c);
      if (r === undefined) throw new Error(`no record for ${c.join(' ')} round ${round}`);
      const m = r.measurements[0]!.attributes;
      t.true(Object.isFrozen(m));
      for (const k of Object.keys(m)) t.is<unknown, unknown>(m[k], r.attributes[k], `${c.join(' ')}: ${k}`);
      t.is(m['http.response.status_code'], c[2]);
      t.is(m['error.type'], c[2] >= 500 ? String(c[2]) : undefined);
      t.is(m['network.protocol.version'], c[3]);
      t.is(r.name, `${c[0]} ${String(r.attributes['http.route'])}`);
      for (const x of r.measurements) t.is(x.attributes, m);
      const key = c.join(' ');
      if (round === 0) seen.set(key, m);
      else if (seen.get(key) !== m) t.deepEqual({ ...m }, { ...(seen.get(key) as Record<string, unknown>) }, 'a set made again has the same values');
    }
  }
  // Consecutive records with the same values share the object.
  t.is(run('GET', '/a', 200, '1.1').measurements[0]!.attributes, run('GET', '/a', 200, '1.1').measurements[0]!.attributes);
});
