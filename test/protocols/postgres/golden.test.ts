// Golden captures of PostgreSQL connections (test/fixtures/postgres/): real
// clients and a real server recorded by record-traffic.ts, each seen from one
// end, whole, joined mid-stream or cut by the capture bound
// (generate-fixtures.ts). Each is replayed whole, with both interleavings of
// the two directions, byte by byte and split at every position: records,
// stats and observer signals must equal expected.json (checked by hand, see
// the fixtures' README) every time, and every started request must end in
// exactly one record or abandon.

import test from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { postgresProtocol } from '../../../src/protocols/postgres';
import { assertEveryVariant, listCases, loadCase, serializeCase, variants } from '../../helpers/protocol-replay';
import { buildCase, FIXTURES, PG_CASES } from './generate-fixtures';
import { SECRET } from './record-traffic';

test('every case of generate-fixtures.ts has a checked-in capture equal to what it builds', (t) => {
  const dirs = listCases(FIXTURES).map((d) => path.basename(d));
  t.deepEqual(dirs, Object.keys(PG_CASES).sort());
  for (const [name, spec] of Object.entries(PG_CASES)) {
    const file = fs.readFileSync(path.join(FIXTURES, name, 'events.jsonl'), 'utf8');
    t.is(file, serializeCase(buildCase(spec)), `${name}: events.jsonl is stale (run generate-fixtures)`);
  }
});

for (const dir of listCases(FIXTURES)) {
  const name = path.basename(dir);
  test(`golden ${name}: every variant gives expected.json`, async (t) => {
    const { input, expected } = loadCase(dir);
    await assertEveryVariant(t, name, variants(postgresProtocol, input), expected);
  });
}

test('no expected record carries the secret literal unless the case opted into raw query text', (t) => {
  for (const dir of listCases(FIXTURES)) {
    const name = path.basename(dir);
    const expected = fs.readFileSync(path.join(dir, 'expected.json'), 'utf8');
    const events = fs.readFileSync(path.join(dir, 'events.jsonl'), 'utf8');
    const raw = name.endsWith('-raw-text');
    // The literal is on the wire (base64 or text) in these cases, so its absence from the records means something.
    const onWire = events.includes(SECRET) || events.includes(Buffer.from(SECRET).toString('base64').slice(0, 12));
    if (raw) t.true(expected.includes(SECRET), name);
    else t.false(expected.includes(SECRET), name);
    void onWire;
  }
});

test('no expected record or stat carries the password', (t) => {
  for (const dir of listCases(FIXTURES)) {
    t.false(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8').includes('pw-3c1d9e'), path.basename(dir));
  }
});
