// Captured TLS handshakes (test/fixtures/tls/<case>/, recorded by
// record-tls.py with `ebpf-otel capture --json`) replayed whole, with the
// sides interleaved both ways, byte by byte and split at every position: the
// connection is claimed by the side the process wrote, the session emits
// nothing and counts one unprobed connection, every time.

import test from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tlsProtocol } from '../../../src/protocols/tls';
import type { Side } from '../../../src/protocols/types';
import { canonical, listCases, loadCase, variants } from '../../helpers/protocol-replay';

const FIXTURES = path.resolve(__dirname, '../../../../test/fixtures/tls');

test('the recorded cases are there: TLS 1.3 and 1.2, server and client side', (t) => {
  t.deepEqual(
    listCases(FIXTURES).map((d) => path.basename(d)),
    ['curl-client-tls12', 'curl-client-tls13', 'openssl-server-tls12', 'openssl-server-tls13'],
  );
});

for (const dir of listCases(FIXTURES)) {
  const name = path.basename(dir);
  test(`${name}: every variant is claimed the same way, no record, one unprobed connection`, (t) => {
    const { input, expected } = loadCase(dir);
    const { requestSide } = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8')) as { requestSide: Side };
    let n = 0;
    for (const v of variants(tlsProtocol, input)) {
      const { records, stats, starts, abandons } = v.result;
      t.deepEqual(canonical({ records, stats, starts, abandons }), canonical({ records: expected.records, stats: expected.stats, starts: expected.starts, abandons: expected.abandons }), v.label);
      t.is(v.result.requestSide, requestSide, v.label);
      t.is(v.result.maxBuffered, 0, v.label);
      n++;
    }
    t.true(n > 10);
  });
}
