// Golden captures of HTTP/1 traffic (test/fixtures/http1/<case>/), each
// replayed whole, split at every byte position, fed byte by byte and with the
// two directions interleaved differently: records and stats must equal
// expected.json every time.

import test from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { http1Protocol } from '../../../src/protocols/http1';
import {
  bytewise,
  assertEveryVariant,
  interleavings,
  listCases,
  loadCase,
  replay,
  respectsTime,
  serializeCase,
  splitAt,
  splitPositions,
  variants,
  type ReplayCase,
  type VariantRun,
} from '../../helpers/protocol-replay';
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

/** Captured bytes past which a case is split at fewer positions (see http1Variants). */
const LARGE_CASE_BYTES = 100_000;

/**
 * The helper's variants; a case past LARGE_CASE_BYTES (the deep pipelining
 * captures) is split at every byte of the first and last 512 of its longest
 * chunk and every 127th between, instead of 2048 and every 509th: each replay
 * of those makes a thousand records, and the full set would take minutes.
 */
function* http1Variants(c: ReplayCase): Generator<VariantRun> {
  let bytes = 0;
  for (const e of c.events) if (e.kind === 'chunk') bytes += e.chunk.data.length;
  if (bytes <= LARGE_CASE_BYTES) {
    yield* variants(http1Protocol, c);
    return;
  }
  yield { label: 'whole', result: replay(http1Protocol, c.session, c.events) };
  for (const [i, order] of interleavings(c.events).entries()) {
    yield { label: `interleaving ${i === 0 ? 'egress-first' : 'ingress-first'}`, result: replay(http1Protocol, c.session, order) };
  }
  yield { label: 'bytewise', result: replay(http1Protocol, c.session, bytewise(c.events)) };
  for (const k of splitPositions(c.events, 512, 127)) yield { label: `split at ${k}`, result: replay(http1Protocol, c.session, splitAt(c.events, k)) };
}

for (const dir of listCases(FIXTURES)) {
  const { input, expected } = loadCase(dir);
  // Async, yielding now and then: a large case takes a while, and the worker must stay responsive.
  test(`golden ${input.name}`, async (t) => {
    t.true(respectsTime(input.events), 'the capture is in time order');
    await assertEveryVariant(t, input.name, http1Variants(input), expected);
  });
}
