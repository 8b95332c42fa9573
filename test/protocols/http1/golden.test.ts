// Golden captures of HTTP/1 traffic (test/fixtures/http1/<case>/), each
// replayed whole, split at every byte position, fed byte by byte and with the
// two directions interleaved differently: records and stats must equal
// expected.json every time.

import test from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { http1Protocol } from '../../../src/protocols/http1';
import { canonical, listCases, loadCase, respectsTime, serializeCase, variants } from '../../helpers/protocol-replay';
import { CASES } from './cases';

const FIXTURES = path.resolve(__dirname, '../../../../test/fixtures/http1');

test('every case in cases.ts has a checked-in capture equal to what it builds', (t) => {
  const dirs = listCases(FIXTURES).map((d) => path.basename(d));
  t.deepEqual(dirs, Object.keys(CASES).sort());
  for (const [name, build] of Object.entries(CASES)) {
    const file = fs.readFileSync(path.join(FIXTURES, name, 'events.jsonl'), 'utf8');
    t.is(file, serializeCase(build()), `${name}: events.jsonl is stale (run generate-fixtures)`);
  }
});

for (const dir of listCases(FIXTURES)) {
  const { input, expected } = loadCase(dir);
  test(`golden ${input.name}`, (t) => {
    t.true(respectsTime(input.events), 'the capture is in time order');
    const want = canonical(expected);
    let runs = 0;
    for (const v of variants(http1Protocol, input)) {
      runs++;
      const { records, stats, starts, abandons } = v.result;
      const got = canonical({ records, stats, starts, abandons });
      if (v.result.contractViolations.length > 0) {
        t.deepEqual(v.result.contractViolations, [], `${input.name} (${v.label})`);
        return;
      }
      if (JSON.stringify(got) !== JSON.stringify(want)) {
        t.deepEqual(got, want, `${input.name} (${v.label})`);
        return;
      }
    }
    t.pass(`${runs} variants`);
  });
}
