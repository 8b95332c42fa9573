// Cases made from recorded ones (test/fixtures/mysql/README.md): the same
// real bytes, seen as an agent that joined the connection late would see them.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseCase, serializeCase, type ReplayCase, type ReplayEvent } from '../../helpers/protocol-replay';

/** `name` <- `from`, joined mid-stream just before the `cutAtEgress`-th chunk the client wrote (0: the login). */
export const DERIVED: Readonly<Record<string, { readonly from: string; readonly cutAtEgress: number }>> = {
  // Joins before `SELECT id, name FROM accounts WHERE name = ...` (the login, CREATE and INSERT unseen).
  'mysql2-query-midstream': { from: 'mysql2-query', cutAtEgress: 3 },
  // Joins after the prepares of the first statement: its executions have no text.
  'mysql2-prepared-midstream': { from: 'mysql2-prepared', cutAtEgress: 3 },
};

export function buildDerived(fixtures: string, name: string): string {
  const d = DERIVED[name]!;
  const src: ReplayCase = parseCase(d.from, fs.readFileSync(path.join(fixtures, d.from, 'events.jsonl'), 'utf8'));
  let egress = 0;
  let cut = -1;
  src.events.forEach((e, i) => {
    if (cut >= 0 || e.kind !== 'chunk' || e.chunk.side !== 'egress') return;
    if (egress++ === d.cutAtEgress) cut = i;
  });
  if (cut < 0) throw new Error(`${name}: ${d.from} has fewer than ${d.cutAtEgress + 1} client writes`);
  const events: ReplayEvent[] = src.events.slice(cut);
  return serializeCase({ session: { ...src.session, conn: { ...src.session.conn, sawStart: false } }, events });
}
