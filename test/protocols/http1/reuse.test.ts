// Values never leak from one message into the next: the parser's per-message
// state (shared empty header lists, the cached view of wasm memory, span
// addresses kept across callbacks) is reused, so a request without a header
// must not show the previous request's value for it.

import test from 'ava';
import { http1Protocol } from '../../../src/protocols/http1';
import type { ConnectionInfo, L7Record } from '../../../src/protocols/types';

const conn: ConnectionInfo = {
  connId: 1, tgid: 1, role: 'server', sawStart: true, encrypted: false, transport: 'tcp',
  localAddr: '10.0.0.2', localPort: 80, remoteAddr: '10.0.0.1', remotePort: 40000,
};

test('a header one request carried is absent from the next request that lacks it', (t) => {
  const s = http1Protocol.createSession(conn, 'ingress', {});
  const out: L7Record[] = [];
  const req = [
    'GET /a HTTP/1.1\r\nHost: first.example:81\r\nUser-Agent: agent-one\r\nUpgrade-Insecure-Requests: 1\r\n' +
      'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\ntracestate: k=v\r\n\r\n',
    'GET /b HTTP/1.1\r\nAccept: */*\r\n\r\n',
  ];
  const res = ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', 'HTTP/1.0 204 No Content\r\n\r\n'];
  let rq = 0;
  let rs = 0;
  let ns = 1000;
  for (let i = 0; i < 2; i++) {
    s.onChunk({ side: 'ingress', data: Buffer.from(req[i]!, 'latin1'), pos: rq, startNs: ns, endNs: ns + 1, syscallStart: true, tid: 1 }, out);
    rq += req[i]!.length;
    ns += 10;
    s.onChunk({ side: 'egress', data: Buffer.from(res[i]!, 'latin1'), pos: rs, startNs: ns, endNs: ns + 1, syscallStart: true, tid: 1 }, out);
    rs += res[i]!.length;
    ns += 10;
  }
  t.is(out.length, 2);
  const [a, b] = out as [L7Record, L7Record];
  t.is(a.attributes['user_agent.original'], 'agent-one');
  t.is(a.attributes['server.address'], 'first.example');
  t.is(a.traceContext?.traceState, 'k=v');
  t.is(b.attributes['user_agent.original'], undefined);
  t.is(b.attributes['server.address'], undefined);
  t.is(b.traceContext, undefined);
  t.is(a.attributes['network.protocol.version'], '1.1');
  t.is(b.attributes['network.protocol.version'], '1.0');
});
