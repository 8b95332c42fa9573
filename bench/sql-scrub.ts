// What sqlFacts costs per query text (src/protocols/db/sql.ts): the scrub,
// the summary, and the cache in front of them.
//
//   node dist/bench/sql-scrub.js [--seconds 1] [--rounds 5]
//
// Arms, each over --seconds per round, medians over rounds, over one mix of
// real-looking texts (node-postgres and ORM queries with $n parameters, mysql2
// texts with inlined values, psql's catalog query, a transaction in one
// simple-query message, a sqlcommenter comment, DDL):
//   uncached:       computeSqlFacts, the full scan every call (a text seen for the first time);
//   cached:         sqlFacts on the same string objects (V8 keeps their hash: the Map lookup alone);
//   cached-fresh:   sqlFacts on a string decoded from bytes every call, as the protocol parsers hand them
//                   over (hashing the new string is part of the lookup), minus the decode-only arm;
//   decode-only:    the Buffer -> string decode of the cached-fresh arm, for the subtraction;
//   unique:         sqlFacts on a text never seen before (psycopg2's inlined id), which the cache's doorkeeper
//                   does not store, minus unique-build-only (making the text).
// Also the uncached cost of each text alone.

import { parseArgs } from 'node:util';
import { computeSqlFacts, sqlCacheStats, sqlFacts } from '../src/protocols/db/sql';
import type { SqlDialect } from '../src/protocols/db/sql';
import { positive, runMain } from './main';

const MIX: readonly (readonly [string, SqlDialect, string])[] = [
  ['pg-by-id', 'postgresql', 'SELECT * FROM accounts WHERE id = $1'],
  ['pg-prisma', 'postgresql', 'SELECT "public"."User"."id", "public"."User"."email", "public"."User"."name", "public"."User"."createdAt" FROM "public"."User" WHERE ("public"."User"."email" = $1 AND 1=1) LIMIT $2 OFFSET $3'],
  ['pg-insert', 'postgresql', 'insert into "orders" ("customer_id", "total", "status", "created_at") values ($1, $2, $3, $4) returning "id"'],
  ['pg-rails-comment', 'postgresql', 'SELECT "users".* FROM "users" WHERE "users"."id" = $1 LIMIT $2 /*application:Blog,controller:users,action:show,traceparent:00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01*/'],
  ['pg-tx-simple-query', 'postgresql', "BEGIN; UPDATE accounts SET balance = balance - 100.00 WHERE id = 17; UPDATE accounts SET balance = balance + 100.00 WHERE id = 42; INSERT INTO transfers (src, dst, amount, note) VALUES (17, 42, 100.00, 'rent'); COMMIT;"],
  ['psql-describe', 'postgresql', "SELECT c.oid,\n  n.nspname,\n  c.relname\nFROM pg_catalog.pg_class c\n     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace\nWHERE c.relname OPERATOR(pg_catalog.~) '^(users)$' COLLATE pg_catalog.default\n  AND pg_catalog.pg_table_is_visible(c.oid)\nORDER BY 2, 3;"],
  ['pg-report', 'postgresql', "WITH recent AS (SELECT customer_id, sum(total) AS spent FROM orders WHERE created_at > now() - interval '30 days' GROUP BY customer_id) SELECT c.name, r.spent FROM recent r JOIN customers c ON c.id = r.customer_id WHERE r.spent > 1000 AND c.region IN ('eu-west', 'eu-central', 'us-east') ORDER BY r.spent DESC LIMIT 50"],
  ['my-mysql2-inlined', 'mysql', "SELECT * FROM `users` WHERE `email` = 'o\\'reilly@example.com' AND `status` IN (1, 2, 3) LIMIT 1"],
  ['my-django', 'mysql', "SELECT `auth_user`.`id`, `auth_user`.`password`, `auth_user`.`last_login`, `auth_user`.`is_superuser`, `auth_user`.`username` FROM `auth_user` WHERE `auth_user`.`username` = 'admin' LIMIT 21"],
  ['my-bulk-insert', 'mysql', "INSERT INTO `events` (`id`, `kind`, `payload`, `at`) VALUES (1, 'click', '{\"x\": 10, \"y\": 20}', '2026-12-07 09:00:00'), (2, 'view', '{\"page\": \"/home\"}', '2026-12-07 09:00:01'), (3, 'click', '{\"x\": 11, \"y\": 21}', '2026-12-07 09:00:02') ON DUPLICATE KEY UPDATE `payload` = VALUES(`payload`)"],
  ['my-set-names', 'mysql', 'SET NAMES utf8mb4'],
  ['my-hibernate', 'mysql', 'select o1_0.id,o1_0.customer_id,o1_0.total from orders o1_0 join customers c1_0 on c1_0.id=o1_0.customer_id where c1_0.region=? and o1_0.total>?'],
];

interface Arm {
  readonly name: string;
  /** Runs `n` calls. */
  run(n: number): void;
}

function measure(run: (n: number) => void, seconds: number): number {
  const n = 1000;
  let calls = 0;
  const start = process.hrtime.bigint();
  const until = start + BigInt(Math.round(seconds * 1e9));
  let now = start;
  while (now < until) {
    run(n);
    calls += n;
    now = process.hrtime.bigint();
  }
  return Number(now - start) / calls; // ns per call
}

let sink = 0;
let unique = 1_000_000;

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '1' }, rounds: { type: 'string', default: '5' } } });
  const seconds = positive('--seconds', values.seconds!);
  const rounds = positive('--rounds', values.rounds!);
  const texts = MIX.map(([, , sql]) => sql);
  const dialects = MIX.map(([, d]) => d);
  const bytes = texts.map((s) => Buffer.from(s, 'utf8'));
  const m = MIX.length;

  // Check every text gives what it should before timing it: nothing of a literal in the scrubbed text.
  for (const [name, dialect, sql] of MIX) {
    const f = computeSqlFacts(sql, dialect);
    if (/'(?!\?)|\b(?:100\.00|17|42|rent|admin)\b/.test(f.sanitized)) throw new Error(`${name}: literal left in ${f.sanitized}`);
    if (f.summary === undefined) throw new Error(`${name}: no summary`);
  }

  const arms: Arm[] = [
    { name: 'uncached', run(n) { for (let i = 0; i < n; i++) sink += computeSqlFacts(texts[i % m]!, dialects[i % m]!).sanitized.length; } },
    { name: 'cached', run(n) { for (let i = 0; i < n; i++) sink += sqlFacts(texts[i % m]!, dialects[i % m]!).sanitized.length; } },
    { name: 'cached-fresh', run(n) { for (let i = 0; i < n; i++) sink += sqlFacts(bytes[i % m]!.toString('utf8'), dialects[i % m]!).sanitized.length; } },
    { name: 'decode-only', run(n) { for (let i = 0; i < n; i++) sink += bytes[i % m]!.toString('utf8').length; } },
    { name: 'unique', run(n) { for (let i = 0; i < n; i++) sink += sqlFacts(`SELECT id, name FROM items WHERE id = ${unique++}`, 'postgresql').sanitized.length; } },
    { name: 'unique-build-only', run(n) { for (let i = 0; i < n; i++) sink += `SELECT id, name FROM items WHERE id = ${unique++}`.length; } },
  ];
  const perText = MIX.map(([name, dialect, sql]) => ({
    name, run(n: number) { for (let i = 0; i < n; i++) sink += computeSqlFacts(sql, dialect).sanitized.length; },
  }));
  const results: Record<string, number[]> = {};
  for (let r = 0; r < rounds; r++) {
    for (const arm of arms) (results[arm.name] ??= []).push(measure(arm.run, seconds));
  }
  const textResults: Record<string, number[]> = {};
  for (let r = 0; r < rounds; r++) {
    for (const t of perText) (textResults[t.name] ??= []).push(measure(t.run, seconds / 4));
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const ns = (xs: number[]): number => Math.round(median(xs));
  const report = {
    texts: m,
    meanTextChars: Math.round(texts.reduce((a, s) => a + s.length, 0) / m),
    nsPerCall: {
      uncached: ns(results['uncached']!),
      cached: ns(results['cached']!),
      cachedFreshMinusDecode: ns(results['cached-fresh']!) - ns(results['decode-only']!),
      cachedFresh: ns(results['cached-fresh']!),
      decodeOnly: ns(results['decode-only']!),
      uniqueMinusBuild: ns(results['unique']!) - ns(results['unique-build-only']!),
      uniqueBuildOnly: ns(results['unique-build-only']!),
    },
    uncachedNsPerText: Object.fromEntries(MIX.map(([name, , sql]) => [`${name} (${sql.length} chars)`, ns(textResults[name]!)])),
    cacheResets: sqlCacheStats().resets,
    loadavg: (await import('node:fs')).readFileSync('/proc/loadavg', 'utf8').trim(),
    sink: sink > 0,
  };
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  return 0;
}

runMain(main);
