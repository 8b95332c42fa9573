// Writes the derived cases' events.jsonl (derived-cases.ts) and expected.draft.json beside each case of test/fixtures/mysql/ (what
// the session says now, never committed): a starting point that is then
// checked by reading against the wire (README.md), and saved as expected.json.
//
//   make ts && node dist/test/protocols/mysql/generate-expected.js [case...]

import * as fs from 'node:fs';
import * as path from 'node:path';
import { mysqlProtocol } from '../../../src/protocols/mysql';
import { listCases, parseCase, replay } from '../../helpers/protocol-replay';
import { DERIVED, buildDerived } from './derived-cases';

const ROOT = path.resolve(__dirname, '../../../..');
const FIXTURES = path.join(ROOT, 'test/fixtures/mysql');

const only = process.argv.slice(2);
for (const name of Object.keys(DERIVED)) {
  fs.mkdirSync(path.join(FIXTURES, name), { recursive: true });
  fs.writeFileSync(path.join(FIXTURES, name, 'events.jsonl'), buildDerived(FIXTURES, name));
}
for (const dir of listCases(FIXTURES)) {
  const name = path.basename(dir);
  if (only.length > 0 && !only.includes(name)) continue;
  const input = parseCase(name, fs.readFileSync(path.join(dir, 'events.jsonl'), 'utf8'));
  const r = replay(mysqlProtocol, input.session, input.events);
  const draft = { records: r.records, stats: r.stats, starts: r.starts, abandons: r.abandons };
  fs.writeFileSync(path.join(dir, 'expected.draft.json'), `${JSON.stringify(draft, null, 2)}\n`);
  process.stdout.write(`${name}: ${r.records.length} records, violations ${JSON.stringify(r.contractViolations)}, maxBuffered ${r.maxBuffered}\n`);
}
