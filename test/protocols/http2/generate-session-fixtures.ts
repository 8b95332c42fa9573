// Writes test/fixtures/http2-sessions/<case>/events.jsonl from
// session-cases.ts, and with --draft also expected.draft.json, what the
// session produces now: a starting point only. expected.json is written by
// hand from the wire (README.md there says how each value was checked).
//
//   npx tsc -p tsconfig.json && node dist/test/protocols/http2/generate-session-fixtures.js [--draft] [case...]

import * as fs from 'node:fs';
import * as path from 'node:path';
import { http2Protocol } from '../../../src/protocols/http2';
import { canonical, replay, serializeCase } from '../../helpers/protocol-replay';
import { buildCase, SESSION_CASES, SESSION_FIXTURES } from './session-cases';

function main(argv: string[]): void {
  const draft = argv.includes('--draft');
  const only = argv.filter((a) => !a.startsWith('--'));
  for (const [name, spec] of Object.entries(SESSION_CASES)) {
    if (only.length > 0 && !only.includes(name)) continue;
    const c = buildCase(name, spec);
    const dir = path.join(SESSION_FIXTURES, name);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'events.jsonl'), serializeCase(c));
    if (draft) {
      const r = replay(http2Protocol, c.session, c.events);
      const out = { records: r.records, stats: r.stats, starts: r.starts, abandons: r.abandons, contractViolations: r.contractViolations };
      fs.writeFileSync(path.join(dir, 'expected.draft.json'), `${JSON.stringify(canonical(out), null, 2)}\n`);
    }
    console.log(`${name}: ${c.events.length} events`);
  }
}

if (require.main === module) main(process.argv.slice(2));
