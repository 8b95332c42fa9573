// sqlFacts against a real PostgreSQL: where the scrubber thinks a literal
// ends must be where the server thinks it ends, or a piece of a literal
// would be copied out as SQL text. Each generated literal (every kind, hostile
// contents) goes to the server as `SELECT <literal> AS a, 7 AS b`: the server
// must answer two columns a and b (so the literal was one token, ending where
// the generator put its end), string literals must come back as the content
// they were built from (so the generator's escaping is PostgreSQL's), and the
// scrubbed text must be `SELECT ? AS a, ? AS b`.
//
// The server is the demo's throwaway PostgreSQL (src/cli/demo-database.ts:
// a mkdtemp folder, a loopback port, run as nobody under root), stopped and
// removed at the end.

import test from 'ava';
import fc from 'fast-check';
import * as fs from 'node:fs';
import { startDemoDatabase } from '../../../src/cli/demo-database';
import { computeSqlFacts } from '../../../src/protocols/db/sql';
import { freePort } from '../../helpers/ports';

// node-postgres has no bundled types (and @types/pg is not installed): the little used here.
interface PgResult { readonly fields: readonly { readonly name: string }[]; readonly rows: readonly unknown[][] }
interface PgClient {
  connect(): Promise<void>;
  query(q: { text: string; rowMode: 'array' }): Promise<PgResult>;
  end(): Promise<void>;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Client } = require('pg') as { Client: new (config: { connectionString: string }) => PgClient };

const installed = fs.existsSync('/usr/lib/postgresql') &&
  fs.readdirSync('/usr/lib/postgresql').some((v) => fs.existsSync(`/usr/lib/postgresql/${v}/bin/initdb`));

// The wire carries C strings: no NUL. Everything else that breaks naive scrubbers is in.
const HOSTILE = fc.constantFrom(
  "'", '"', '\\', '$', '$$', '-', '--', '/', '*', '/*', '*/', '#', '`', ' ', '\n', '\t', ';', '(', ')', ',', '?',
  'a', 'Z', 'e', '0', '7', '.', 'x', 'u', 'é', '日本', '🙂', 'SELECT', 'AS', 'b',
);
const content = fc.string({ unit: HOSTILE, maxLength: 12 });

/** A literal, the value PostgreSQL must read from it (when it is a string), and how to compare. */
interface Piece { readonly text: string; readonly value?: string }

/** Numbers PostgreSQL 16 reads and 15 rejects as trailing junk: 0x / 0o / 0b integers, `_` between digits. */
const pg16Numbers = fc.oneof(
  fc.nat(0xffff).map((n) => `0x${n.toString(16)}`),
  fc.nat(0o777).map((n) => `0o${n.toString(8)}`),
  fc.nat(255).map((n) => `0b${n.toString(2)}`),
  fc.tuple(fc.integer({ min: 1, max: 999 }), fc.nat(999)).map(([a, b]) => `${a}_${String(b).padStart(3, '0')}`),
);

const literals = (pg16: boolean): fc.Arbitrary<Piece> => fc.oneof(
  content.map((s) => ({ text: `'${s.replaceAll("'", "''")}'`, value: s })),
  fc.tuple(content, fc.boolean()).map(([s, doubled]) => ({
    text: `E'${s.replaceAll('\\', '\\\\').replaceAll("'", doubled ? "''" : "\\'")}'`, value: s,
  })),
  // U&'' reads backslash as its escape character: contents without one.
  content.filter((s) => !s.includes('\\')).map((s) => ({ text: `U&'${s.replaceAll("'", "''")}'`, value: s })),
  fc.tuple(content, fc.constantFrom('', 'x', 'tag_1', 'T')).filter(([s, tag]) => (s + `$${tag}$`).indexOf(`$${tag}$`) === s.length)
    .map(([s, tag]) => ({ text: `$${tag}$${s}$${tag}$`, value: s })),
  fc.string({ unit: fc.constantFrom('0', '1'), minLength: 1, maxLength: 8 }).map((b) => ({ text: `B'${b}'` })),
  fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF'), minLength: 1, maxLength: 8 }).map((h) => ({ text: `X'${h}'` })),
  fc.oneof(
    fc.integer({ min: -1_000_000, max: 1_000_000 }).map(String),
    fc.tuple(fc.nat(99999), fc.nat(99999)).map(([a, b]) => `${a}.${b}`),
    fc.nat(9999).map((b) => `.${b}`),
    fc.tuple(fc.boolean(), fc.nat(99), fc.constantFrom('e', 'E', 'e-', 'E+'), fc.nat(99)).map(([neg, a, e, b]) => `${neg ? '-' : ''}${a}${e}${b}`),
    fc.constantFrom('TRUE', 'false', 'True'),
    ...(pg16 ? [pg16Numbers] : []),
  ).map((n) => ({ text: n })),
);

const title = 'sqlFacts: every generated literal ends where PostgreSQL ends it, and is scrubbed to one ?';
if (!installed) {
  test.skip(`${title} (PostgreSQL is not installed: bash scripts/setup.sh)`, () => undefined);
} else {
  test(title, async (t) => {
    const db = await startDemoDatabase(await freePort(), (reason) => t.log(reason));
    if (db === undefined) {
      t.fail('PostgreSQL is installed but did not start');
      return;
    }
    t.teardown(() => db.stop());
    const client = new Client({ connectionString: db.dsn.replace(/^host=(\S+) port=(\d+) user=(\S+) dbname=(\S+)$/, 'postgresql://$3@$1:$2/$4') });
    await client.connect();
    t.teardown(() => client.end());
    const version = Number((await client.query({ text: 'SHOW server_version_num', rowMode: 'array' })).rows[0]![0]);
    t.log(`PostgreSQL ${version}`);
    const literal = literals(version >= 160000);
    let answered = 0;
    let rejected = 0;
    await fc.assert(fc.asyncProperty(literal, async (piece) => {
      const sql = `SELECT ${piece.text} AS a, 7 AS b`;
      // The scrubber's reading first: one literal, then the rest as written.
      if (computeSqlFacts(sql, 'postgresql').sanitized !== 'SELECT ? AS a, ? AS b') return false;
      let result;
      try {
        result = await client.query({ text: sql, rowMode: 'array' }); // simple query protocol: the text as sent
      } catch (err) {
        // A data exception (class 22: an invalid escape, a number out of range) is raised after lexing; a
        // syntax error (42601) would mean the server read the text differently from the generator.
        const code = (err as { code?: string }).code ?? '';
        if (!code.startsWith('22')) throw new Error(`${sql}: ${code} ${(err as Error).message}`);
        rejected++;
        return true;
      }
      answered++;
      if (result.fields.map((f) => f.name).join(',') !== 'a,b') return false;
      const row = result.rows[0] as unknown[];
      if (row[1] !== 7) return false;
      return piece.value === undefined || row[0] === piece.value;
    }), { numRuns: 400 });
    t.log(`answered ${answered}, rejected after lexing ${rejected}`);
    t.true(answered > 300, `only ${answered} of 400 literals were answered`);
  });
}
