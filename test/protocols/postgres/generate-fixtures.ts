// Turns the recorded captures (test/fixtures/postgres/captures/, made by
// record-traffic.ts) into golden cases: test/fixtures/postgres/<case>/events.jsonl
// in the protocol-replay format. `--draft` also writes expected.draft.json
// (what the session says now: a starting point to check by hand, never
// committed). The golden test checks that events.jsonl equals what this
// builds from the captures.
//   make ts && node dist/test/protocols/postgres/generate-fixtures.js [--draft] [case...]

import * as fs from 'node:fs';
import * as path from 'node:path';
import { postgresProtocol } from '../../../src/protocols/postgres';
import type { ConnectionInfo } from '../../../src/protocols/types';
import { canonical, replay, serializeCase, type ReplayEvent, type SessionSpec } from '../../helpers/protocol-replay';
import { CAPTURES } from './record-traffic';

export const FIXTURES = path.join(__dirname, '../../../../test/fixtures/postgres');

export interface PgCaseSpec {
  readonly capture: string;
  /** Whose view: the client's (its writes are egress) or the server's (sides swapped). */
  readonly end: 'client' | 'server';
  /** Join at this mark: what came before is not seen (sawStart false; the request side is given, as the tracker's detection would find it). */
  readonly attachAt?: string;
  /** The `n`-th read of `side` (0-based) keeps its first `keep` bytes; the rest becomes a gap (the capture bound). */
  readonly cut?: { readonly side: 'egress' | 'ingress'; readonly n: number; readonly keep: number };
  readonly options?: SessionSpec['options'];
}

export const PG_CASES: Record<string, PgCaseSpec> = {
  'pg-simple': { capture: 'pg-simple', end: 'client' },
  'pg-simple-server': { capture: 'pg-simple', end: 'server' },
  'pg-simple-raw-text': { capture: 'pg-simple', end: 'client', options: { queryText: 'raw' } },
  'pg-prepared': { capture: 'pg-prepared', end: 'client' },
  'pg-prepared-attach': { capture: 'pg-prepared', end: 'client', attachAt: 'parsed' },
  'pg-errors': { capture: 'pg-errors', end: 'client' },
  'pg-transaction': { capture: 'pg-transaction', end: 'client' },
  'pg-big-result': { capture: 'pg-big-result', end: 'client' },
  'pg-big-result-gap': { capture: 'pg-big-result', end: 'client', cut: { side: 'ingress', n: 3, keep: 1000 } },
  // The read holding the CommandComplete and ReadyForQuery cut by the capture bound: the client's Terminate proves the end.
  'pg-big-result-end-cut': { capture: 'pg-big-result', end: 'client', cut: { side: 'ingress', n: 4, keep: 16384 } },
  'raw-pipelined': { capture: 'raw-pipelined', end: 'client' },
  'raw-cancel': { capture: 'raw-cancel', end: 'client' },
  'psql-copy': { capture: 'psql-copy', end: 'client' },
  'pg-ssl': { capture: 'pg-ssl', end: 'client' },
};

interface CaptureLine {
  conn?: { serverPort: number; clientPort: number };
  side?: 'egress' | 'ingress';
  pos?: number;
  atNs?: number;
  data?: string;
  mark?: string;
}

/** The replay input of a case, built from its capture. */
export function buildCase(spec: PgCaseSpec): { session: SessionSpec; events: ReplayEvent[] } {
  const lines = fs.readFileSync(path.join(CAPTURES, `${spec.capture}.jsonl`), 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as CaptureLine);
  const { serverPort, clientPort } = lines[0]!.conn!;
  const server = spec.end === 'server';
  const attach = spec.attachAt !== undefined;
  const conn: ConnectionInfo = {
    connId: 1,
    tgid: 100,
    role: server ? 'server' : 'client',
    sawStart: !attach,
    encrypted: false,
    transport: 'tcp',
    localAddr: '127.0.0.1',
    localPort: server ? serverPort : clientPort,
    remoteAddr: '127.0.0.1',
    remotePort: server ? clientPort : serverPort,
  };
  const events: ReplayEvent[] = [];
  let seen = !attach;
  const reads = { egress: 0, ingress: 0 };
  let last = 0;
  for (const l of lines.slice(1)) {
    if (l.mark !== undefined) {
      if (l.mark === spec.attachAt) seen = true;
      continue;
    }
    const recorded = l.side!;
    const n = reads[recorded]++;
    last = l.atNs!;
    if (!seen) continue;
    // Client view: what the client wrote is egress. Server view: swapped.
    const side = server ? (recorded === 'egress' ? 'ingress' : 'egress') : recorded;
    const data = Buffer.from(l.data!, 'base64');
    // A write spans [atNs - 1000, atNs]; a read is [atNs, atNs].
    const startNs = side === 'egress' ? l.atNs! - 1000 : l.atNs!;
    const cut = spec.cut !== undefined && spec.cut.side === recorded && spec.cut.n === n ? spec.cut.keep : undefined;
    const kept = cut !== undefined ? data.subarray(0, cut) : data;
    events.push({ kind: 'chunk', chunk: { side, pos: l.pos!, startNs, endNs: l.atNs!, syscallStart: true, data: kept } });
    if (cut !== undefined) events.push({ kind: 'gap', side, pos: l.pos! + cut, bytes: data.length - cut, atNs: l.atNs! });
  }
  events.push({ kind: 'close', atNs: last + 1_000_000 });
  const session: SessionSpec = {
    conn,
    ...(attach ? { requestSide: server ? 'ingress' : 'egress' } : {}),
    ...(spec.options !== undefined ? { options: spec.options } : {}),
  } as SessionSpec;
  return { session, events };
}

function main(): void {
  const args = process.argv.slice(2);
  const draft = args.includes('--draft');
  const names = args.filter((a) => !a.startsWith('--'));
  for (const name of names.length > 0 ? names : Object.keys(PG_CASES)) {
    const spec = PG_CASES[name];
    if (spec === undefined) throw new Error(`unknown case ${name}`);
    const c = buildCase(spec);
    const dir = path.join(FIXTURES, name);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'events.jsonl'), serializeCase(c));
    if (draft) {
      const r = replay(postgresProtocol, c.session, c.events);
      const out = canonical({ records: r.records, stats: r.stats, starts: r.starts, abandons: r.abandons });
      fs.writeFileSync(path.join(dir, 'expected.draft.json'), `${JSON.stringify(out, null, 2)}\n`);
    }
    console.log(`wrote ${name}`);
  }
}

if (require.main === module) main();
