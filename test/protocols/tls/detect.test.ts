// TLS detection on captured handshakes (test/fixtures/tls/, recorded by
// record-tls.py): a ClientHello or ServerHello the process wrote matches,
// every prefix of one asks for more, what the process read waits; nothing
// that is not TLS matches: every HTTP/1 capture, seen from its start or
// joined mid-stream, and random bytes.

import test from 'ava';
import * as path from 'node:path';
import { tlsProtocol, TLS_HELLO_PREFIX } from '../../../src/protocols/tls';
import { classifyTlsStart } from '../../../src/protocols/tls/detect';
import type { ConnectionInfo, Side } from '../../../src/protocols/types';
import { listCases, loadCase, replay, type ChunkEvent } from '../../helpers/protocol-replay';

const FIXTURES = path.resolve(__dirname, '../../../../test/fixtures/tls');
const HTTP1_FIXTURES = path.resolve(__dirname, '../../../../test/fixtures/http1');

function firstChunk(caseName: string, side: Side): ChunkEvent {
  const { input } = loadCase(path.join(FIXTURES, caseName));
  for (const e of input.events) if (e.kind === 'chunk' && e.chunk.side === side) return e.chunk;
  throw new Error(`${caseName}: no ${side} chunk`);
}

// `encrypted` (plaintext from the TLS probes) is not what this protocol looks at; asserted so the
// literal fits ConnectionInfo with or without that field.
const conn = (role: ConnectionInfo['role'], sawStart = true): ConnectionInfo =>
  ({
    encrypted: false,
    connId: 1,
    tgid: 100,
    role,
    sawStart,
    transport: 'tcp',
    localAddr: '127.0.0.1',
    localPort: 443,
    remoteAddr: '127.0.0.1',
    remotePort: 50000,
  }) as ConnectionInfo;

for (const version of ['tls13', 'tls12']) {
  test(`${version}: a ClientHello the process wrote makes it the client, a ServerHello the server; each read waits`, (t) => {
    const clientHello = firstChunk(`curl-client-${version}`, 'egress').data;
    const serverHello = firstChunk(`openssl-server-${version}`, 'egress').data;
    t.is(classifyTlsStart(clientHello, true), 'client-hello');
    t.is(classifyTlsStart(serverHello, true), 'server-hello');
    t.deepEqual(tlsProtocol.detect('egress', clientHello, conn('client')), { result: 'match', requestSide: 'egress' });
    t.deepEqual(tlsProtocol.detect('egress', serverHello, conn('server')), { result: 'match', requestSide: 'ingress' });
    // The server read the ClientHello, the client the ServerHello: not theirs.
    t.deepEqual(tlsProtocol.detect('ingress', firstChunk(`openssl-server-${version}`, 'ingress').data, conn('server')), { result: 'more' });
    t.deepEqual(tlsProtocol.detect('ingress', firstChunk(`curl-client-${version}`, 'ingress').data, conn('client')), { result: 'more' });
  });

  test(`${version}: every prefix of a hello shorter than its fixed structure asks for more, never no`, (t) => {
    for (const hello of [firstChunk(`curl-client-${version}`, 'egress').data, firstChunk(`openssl-server-${version}`, 'egress').data]) {
      for (let n = 0; n < TLS_HELLO_PREFIX; n++) t.is(classifyTlsStart(hello.subarray(0, n), true), 'more', `${n} bytes`);
      t.not(classifyTlsStart(hello.subarray(0, TLS_HELLO_PREFIX), true), 'more');
    }
  });
}

test('the TLS a CONNECT tunnel carries (the HTTP/1 capture\'s bytes after its 200) is TLS once joined mid-stream', (t) => {
  const { input } = loadCase(path.join(HTTP1_FIXTURES, 'connect-tunnel'));
  const tunnelled = input.events.slice(2).flatMap((e) => (e.kind === 'chunk' ? [e.chunk] : []));
  t.is(tunnelled.length, 2);
  t.deepEqual(tlsProtocol.detect('egress', tunnelled[0]!.data, conn('client', false)), { result: 'match', requestSide: 'egress' });
});

test('joined mid-stream: application data records chained through the chunk match; a broken chain does not', (t) => {
  const record = (type: number, length: number) => Buffer.concat([Buffer.from([type, 3, 3, length >> 8, length & 0xff]), Buffer.alloc(length, 0xa5)]);
  const two = Buffer.concat([record(23, 40), record(23, 300)]);
  t.is(classifyTlsStart(two, false), 'records');
  t.is(classifyTlsStart(two.subarray(0, 50), false), 'records', 'the second header cut short');
  t.deepEqual(tlsProtocol.detect('egress', two, conn('server', false)), { result: 'match', requestSide: 'ingress' });
  t.deepEqual(tlsProtocol.detect('egress', two, conn('client', false)), { result: 'match', requestSide: 'egress' });
  const broken = Buffer.from(two);
  broken[45] = 0x47;
  t.is(classifyTlsStart(broken, false), 'no');
  // Seen from its start, application data first is not a TLS connection's start.
  t.is(classifyTlsStart(two, true), 'no');
});

test('headers out of range are not TLS: content type, version, length, handshake type, hello version and size', (t) => {
  const hello = Buffer.from(firstChunk('curl-client-tls13', 'egress').data);
  const bad = (at: number, value: number) => {
    const b = Buffer.from(hello);
    b[at] = value;
    return classifyTlsStart(b, true);
  };
  t.is(bad(0, 19), 'no');
  t.is(bad(0, 24), 'no');
  t.is(bad(0, 23), 'no', 'application data cannot start a stream');
  t.is(bad(1, 2), 'no');
  t.is(bad(2, 5), 'no');
  t.is(bad(3, 0xff), 'no', 'longer than 2^14 + 2048');
  t.is(bad(5, 3), 'no', 'handshake type other than a hello');
  t.is(bad(6, 0xff), 'no', 'hello longer than its record');
  t.is(bad(9, 2), 'no');
  t.is(bad(10, 4), 'no', 'a hello never says TLS 1.3 in legacy_version');
  for (const length of [0, 5, 41]) {
    const short = Buffer.from(hello);
    short.writeUInt16BE(length, 3);
    t.is(classifyTlsStart(short, true), 'no', `a first record of ${length} bytes cannot hold a hello`);
  }
});

test('no HTTP/1 capture is TLS: every case, seen from its start or joined mid-stream, each side, at every chunk start', (t) => {
  let checked = 0;
  for (const dir of listCases(HTTP1_FIXTURES)) {
    const { input } = loadCase(dir);
    // The CONNECT tunnel's bytes after the 200 are TLS records by construction: its HTTP part only.
    const events = path.basename(dir) === 'connect-tunnel' ? input.events.slice(0, 2) : input.events;
    for (const sawStart of [true, false]) {
      const c = { ...input.session.conn, sawStart };
      const outcome = replay(tlsProtocol, { conn: c }, events);
      t.is(outcome.requestSide, undefined, `${path.basename(dir)} sawStart=${sawStart}`);
      for (const e of events) {
        if (e.kind !== 'chunk') continue;
        // A TLS hello sent to a plain server (garbage-then-request) may ask for more on the side that read it; nothing matches.
        t.not(tlsProtocol.detect(e.chunk.side, e.chunk.data, c).result, 'match', path.basename(dir));
        checked++;
      }
    }
  }
  t.true(checked > 100);
});

test('random bytes are not TLS (a fixed seed, 200k buffers of 1 to 64 bytes)', (t) => {
  // xorshift32: the same buffers every run.
  let x = 0x9e3779b9;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  let matches = 0;
  const buf = Buffer.alloc(64);
  for (let i = 0; i < 200_000; i++) {
    const n = 1 + (next() % 64);
    for (let k = 0; k < n; k++) buf[k] = next() & 0xff;
    for (const sawStart of [true, false]) {
      const d = tlsProtocol.detect('egress', buf.subarray(0, n), conn('server', sawStart));
      if (d.result === 'match') matches++;
    }
  }
  t.is(matches, 0);
});
