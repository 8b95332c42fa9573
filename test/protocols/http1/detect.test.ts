import test from 'ava';
import { http1Protocol, HTTP1_MAX_DETECT_BYTES } from '../../../src/protocols/http1';
import { classifyRequestLine, classifyStatusLine } from '../../../src/protocols/http1/detect';
import type { ConnectionInfo } from '../../../src/protocols/types';

const conn: ConnectionInfo = {
  connId: 1, tgid: 1, role: 'server', sawStart: true, encrypted: false, transport: 'tcp',
  localAddr: '127.0.0.1', localPort: 80, remoteAddr: '127.0.0.1', remotePort: 5000,
};
const detect = (side: 'egress' | 'ingress', s: string | Buffer) =>
  http1Protocol.detect(side, typeof s === 'string' ? Buffer.from(s, 'latin1') : s, conn);

test('a request line matches with the requests on that side', (t) => {
  t.deepEqual(detect('ingress', 'GET / HTTP/1.1\r\nHost: a\r\n\r\n'), { result: 'match', requestSide: 'ingress' });
  t.deepEqual(detect('egress', 'POST /api/v1/x?y=1 HTTP/1.0\r\n'), { result: 'match', requestSide: 'egress' });
  t.deepEqual(detect('egress', 'OPTIONS * HTTP/1.1\r\n'), { result: 'match', requestSide: 'egress' });
  t.deepEqual(detect('egress', 'CONNECT example.com:443 HTTP/1.1\r\n'), { result: 'match', requestSide: 'egress' });
  t.deepEqual(detect('egress', 'GET http://example.com/ HTTP/1.1\r\n'), { result: 'match', requestSide: 'egress' });
  t.deepEqual(detect('ingress', 'PROPFIND /dav HTTP/1.1\r\n'), { result: 'match', requestSide: 'ingress' });
});

test('a status line matches with the requests on the other side', (t) => {
  t.deepEqual(detect('ingress', 'HTTP/1.1 200 OK\r\n'), { result: 'match', requestSide: 'egress' });
  t.deepEqual(detect('egress', 'HTTP/1.0 404 Not Found\r\n'), { result: 'match', requestSide: 'ingress' });
  t.deepEqual(detect('egress', 'HTTP/1.1 204\r\n'), { result: 'match', requestSide: 'ingress' });
});

test('prefixes of what could still match say more', (t) => {
  for (const s of ['G', 'GE', 'GET', 'GET ', 'GET /a', 'GET /a HTTP/1.', 'GET /a HTTP/1.1', 'H', 'HTTP/1', 'HTTP/1.1 20', 'HTTP/1.1 200', 'M-SEA']) {
    t.deepEqual(detect('egress', s), { result: 'more' }, s);
  }
});

test('other protocols and binary say no', (t) => {
  const no = { result: 'no' };
  t.deepEqual(detect('egress', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), no, 'HTTP/2 preface');
  t.deepEqual(detect('egress', Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00])), no, 'TLS ClientHello');
  t.deepEqual(detect('egress', Buffer.from([0, 0, 0, 8, 4, 210, 22, 47])), no, 'PostgreSQL SSLRequest');
  t.deepEqual(detect('egress', Buffer.from('\x00\x00\x00\x29\x00\x03\x00\x00user\x00bob\x00', 'latin1')), no, 'PostgreSQL startup');
  t.deepEqual(detect('egress', '*1\r\n$4\r\nPING\r\n'), no, 'Redis RESP');
  t.deepEqual(detect('egress', 'GET key\r\n'), no, 'Redis inline GET');
  t.deepEqual(detect('egress', 'PING\r\n'), no, 'Redis inline PING');
  t.deepEqual(detect('egress', 'SSH-2.0-OpenSSH_9.6\r\n'), no);
  t.deepEqual(detect('egress', 'get / HTTP/1.1\r\n'), no, 'methods are case-sensitive');
  t.deepEqual(detect('egress', 'GET / HTTP/2\r\n'), no);
  t.deepEqual(detect('egress', 'GET  / HTTP/1.1\r\n'), no);
  t.deepEqual(detect('egress', 'GET / HTTP/1.1\n'), no, 'bare LF');
  t.deepEqual(detect('ingress', 'HTTP/1.1 20x OK\r\n'), no);
  t.deepEqual(detect('ingress', 'HTTP/1.1 099 OK\r\n'), no);
  t.deepEqual(detect('ingress', 'HTTP/2 200\r\n'), no);
});

test('a request line longer than the detection window matches on its origin-form start', (t) => {
  const long = `GET /${'a'.repeat(2000)} HTTP/1.1\r\n`;
  const head = Buffer.from(long).subarray(0, HTTP1_MAX_DETECT_BYTES);
  t.deepEqual(http1Protocol.detect('ingress', head, conn), { result: 'match', requestSide: 'ingress' });
  t.is(classifyRequestLine(Buffer.from(long).subarray(0, 100)), 'more');
});

test('random bytes never match', (t) => {
  let seed = 12345;
  const next = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xff;
  for (let i = 0; i < 2000; i++) {
    const b = Buffer.from(Array.from({ length: 64 }, next));
    t.not(classifyRequestLine(b), 'match');
    t.not(classifyStatusLine(b), 'match');
  }
});
