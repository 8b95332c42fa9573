// Golden captures of real MySQL-protocol traffic (test/fixtures/mysql/<case>/,
// recorded by record-mysql.ts from MariaDB, mysql2 and the mariadb CLI), each
// replayed whole, split at every byte position, fed byte by byte and with the
// two directions interleaved differently: records, stats and observer
// signals must equal expected.json every time.

import test from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { mysqlProtocol } from '../../../src/protocols/mysql';
import { assertEveryVariant, interleavings, listCases, loadCase, replay, variants, type ReplayCase, type VariantRun } from '../../helpers/protocol-replay';
import { DERIVED, buildDerived } from './derived-cases';
import { SECRET } from './secret';

const FIXTURES = path.resolve(__dirname, '../../../../test/fixtures/mysql');

test('the derived cases equal what derived-cases.ts builds from their recordings', (t) => {
  for (const name of Object.keys(DERIVED)) {
    t.is(fs.readFileSync(path.join(FIXTURES, name, 'events.jsonl'), 'utf8'), buildDerived(FIXTURES, name), `${name}: events.jsonl is stale (run generate-expected)`);
  }
});

test('no expected record carries the secret literal the recordings sent', (t) => {
  const cases = listCases(FIXTURES);
  t.true(cases.length >= 12);
  let sent = 0;
  for (const dir of cases) {
    const { input, expected } = loadCase(dir);
    for (const e of input.events) if (e.kind === 'chunk' && e.chunk.data.includes(SECRET)) sent++;
    t.false(JSON.stringify(expected.records).includes(SECRET), path.basename(dir));
  }
  // The literal is on the wire in the recordings: the check above means something.
  t.true(sent >= 6);
});

/**
 * Joined mid-stream, a command is proven only by a syscall's bytes whole in
 * one chunk (it tiles them exactly): cutting a syscall into pieces changes
 * what the session can prove, so these cases run whole and in both
 * interleavings only (as HTTP/2's hunting cases do).
 */
function* mysqlVariants(c: ReplayCase): Generator<VariantRun> {
  if (c.session.conn.sawStart) {
    yield* variants(mysqlProtocol, c);
    return;
  }
  yield { label: 'whole', result: replay(mysqlProtocol, c.session, c.events) };
  for (const [i, order] of interleavings(c.events).entries()) {
    yield { label: `interleaving ${i === 0 ? 'egress-first' : 'ingress-first'}`, result: replay(mysqlProtocol, c.session, order) };
  }
}

for (const dir of listCases(FIXTURES)) {
  const name = path.basename(dir);
  test(`golden ${name}`, async (t) => {
    const { input, expected } = loadCase(dir);
    await assertEveryVariant(t, name, mysqlVariants(input), expected);
  });
}
