// Writes what the session says now for Redis goldens, as a draft to check
// by hand against the wire before it becomes expected.json:
//   node dist/test/protocols/redis/generate-expected.js [case...]
// writes test/fixtures/redis/<case>/expected.draft.json (never committed).
// Also derives the option variants of recorded captures (VARIANTS below).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { redisProtocol } from '../../../src/protocols/redis';
import { canonical, listCases, parseCase, replay, serializeCase } from '../../helpers/protocol-replay';
import { ROOT } from '../../helpers/agent';
import type { QueryTextMode } from '../../../src/protocols/db/semantics';

const FIXTURES = path.join(ROOT, 'test/fixtures/redis');

/** Cases that replay another case's capture with other options. */
const VARIANTS: Record<string, { from: string; queryText: QueryTextMode }> = {
  'commands-raw': { from: 'commands', queryText: 'raw' },
  'cli-lines-raw': { from: 'cli-lines', queryText: 'raw' },
  'pipeline-off': { from: 'pipeline', queryText: 'off' },
};

for (const [name, v] of Object.entries(VARIANTS)) {
  const src = parseCase(v.from, fs.readFileSync(path.join(FIXTURES, v.from, 'events.jsonl'), 'utf8'));
  fs.mkdirSync(path.join(FIXTURES, name), { recursive: true });
  fs.writeFileSync(path.join(FIXTURES, name, 'events.jsonl'), serializeCase({ session: { ...src.session, options: { queryText: v.queryText } }, events: src.events }));
}

const only = process.argv.slice(2);
for (const dir of listCases(FIXTURES)) {
  const name = path.basename(dir);
  if (only.length > 0 && !only.includes(name)) continue;
  const c = parseCase(name, fs.readFileSync(path.join(dir, 'events.jsonl'), 'utf8'));
  const r = replay(redisProtocol, c.session, c.events);
  if (r.contractViolations.length > 0) console.error(`${name}: ${r.contractViolations.join('; ')}`);
  const draft = canonical({ records: r.records, stats: r.stats, starts: r.starts, abandons: r.abandons });
  fs.writeFileSync(path.join(dir, 'expected.draft.json'), `${JSON.stringify(draft, null, 1)}\n`);
  console.error(`${name}: ${r.records.length} records, requestSide ${r.requestSide}`);
}
