// Writes test/fixtures/http1/<case>/events.jsonl from cases.ts, and with
// --expected also expected.json from what the parser produces now (review the
// diff before committing: expected.json is the golden truth).
//
//   npx tsc -p tsconfig.json && node dist/test/protocols/http1/generate-fixtures.js [--expected] [case...]

import * as fs from 'node:fs';
import * as path from 'node:path';
import { http1Protocol } from '../../../src/protocols/http1';
import { canonical, replay, serializeCase } from '../../helpers/protocol-replay';
import { CASES } from './cases';

export const FIXTURES = path.resolve(__dirname, '../../../../test/fixtures/http1');

function main(argv: string[]): void {
  const expected = argv.includes('--expected');
  const only = argv.filter((a) => !a.startsWith('--'));
  for (const [name, build] of Object.entries(CASES)) {
    if (only.length > 0 && !only.includes(name)) continue;
    const c = build();
    const dir = path.join(FIXTURES, name);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'events.jsonl'), serializeCase(c));
    if (expected) {
      const r = replay(http1Protocol, c.session, c.events);
      if (r.contractViolations.length > 0) throw new Error(`${name}: ${r.contractViolations.join('; ')}`);
      const expected = { records: r.records, stats: r.stats, starts: r.starts, abandons: r.abandons };
      fs.writeFileSync(path.join(dir, 'expected.json'), `${JSON.stringify(canonical(expected), null, 2)}\n`);
    }
    console.log(`${name}: ${c.events.length} events${expected ? '' : ' (events only)'}`);
  }
}

if (require.main === module) main(process.argv.slice(2));
