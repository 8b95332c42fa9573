// sqlFacts: the scrubbed text, operation, collection and summary of SQL texts
// as real clients send them (node-postgres, mysql2, psql, the mysql CLI, ORMs),
// exactly; then properties over generated statements: every literal of every
// kind, with hostile contents, is replaced by `?` and nothing of it is left.

import test from 'ava';
import fc from 'fast-check';
import {
  computeSqlFacts, sqlCacheStats, sqlFacts, SQL_CACHE_ENTRIES, SQL_CACHE_MAX_TEXT, SUMMARY_MAX_CHARS,
} from '../../../src/protocols/db/sql';
import type { SqlDialect, SqlFacts } from '../../../src/protocols/db/sql';

type Case = readonly [SqlDialect, string, SqlFacts];
const pg = (sql: string, facts: SqlFacts): Case => ['postgresql', sql, facts];
const my = (sql: string, facts: SqlFacts): Case => ['mysql', sql, facts];

const CASES: readonly Case[] = [
  // -- semconv examples ---------------------------------------------------------
  pg('SELECT * FROM accounts WHERE id = $1',
    { sanitized: 'SELECT * FROM accounts WHERE id = $1', operation: 'SELECT', collection: 'accounts', summary: 'SELECT accounts' }),
  pg('SELECT *\nFROM   wuser_table\nWHERE  username = ?',
    { sanitized: 'SELECT *\nFROM   wuser_table\nWHERE  username = ?', operation: 'SELECT', collection: 'wuser_table', summary: 'SELECT wuser_table' }),
  pg('INSERT INTO shipping_details\n            (order_id,\n            address)\nSELECT order_id,\n       address\nFROM   orders\nWHERE  order_id = 42',
    { sanitized: 'INSERT INTO shipping_details\n            (order_id,\n            address)\nSELECT order_id,\n       address\nFROM   orders\nWHERE  order_id = ?',
      operation: 'INSERT', summary: 'INSERT shipping_details SELECT orders' }),
  pg('SELECT *\nFROM   songs,\n       artists\nWHERE  songs.artist_id = artists.id',
    { sanitized: 'SELECT *\nFROM   songs,\n       artists\nWHERE  songs.artist_id = artists.id', operation: 'SELECT', summary: 'SELECT songs artists' }),
  pg('SELECT order_date\nFROM   (SELECT *\n        FROM   orders o\n               JOIN customers c\n                 ON o.customer_id = c.customer_id)',
    { sanitized: 'SELECT order_date\nFROM   (SELECT *\n        FROM   orders o\n               JOIN customers c\n                 ON o.customer_id = c.customer_id)',
      operation: 'SELECT', summary: 'SELECT SELECT orders customers' }),
  pg('SELECT * FROM "song list", artists',
    { sanitized: 'SELECT * FROM "song list", artists', operation: 'SELECT', summary: 'SELECT "song list" artists' }),
  // -- node-postgres, ORMs -------------------------------------------------------------
  pg('SELECT "public"."User"."id", "public"."User"."email" FROM "public"."User" WHERE ("public"."User"."email" = $1 AND 1=1) LIMIT $2 OFFSET $3',
    { sanitized: 'SELECT "public"."User"."id", "public"."User"."email" FROM "public"."User" WHERE ("public"."User"."email" = $1 AND ?=?) LIMIT $2 OFFSET $3',
      operation: 'SELECT', collection: '"public"."User"', summary: 'SELECT "public"."User"' }),
  pg('insert into "users" ("email", "name") values ($1, $2) returning "id"',
    { sanitized: 'insert into "users" ("email", "name") values ($1, $2) returning "id"', operation: 'insert', collection: '"users"', summary: 'insert "users"' }),
  pg('SELECT "User"."id" AS "User_id" FROM "user" "User" WHERE "User"."id" IN (1, 2, 3)',
    { sanitized: 'SELECT "User"."id" AS "User_id" FROM "user" "User" WHERE "User"."id" IN (?)', operation: 'SELECT', collection: '"user"', summary: 'SELECT "user"' }),
  pg('SELECT "users".* FROM "users" WHERE "users"."id" = $1 LIMIT $2 /*application:Blog,controller:users,action:show*/',
    { sanitized: 'SELECT "users".* FROM "users" WHERE "users"."id" = $1 LIMIT $2', operation: 'SELECT', collection: '"users"', summary: 'SELECT "users"' }),
  pg("SELECT * FROM songs /*traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',tracestate='congo%3Dt61rcWkgMzE'*/",
    { sanitized: 'SELECT * FROM songs', operation: 'SELECT', collection: 'songs', summary: 'SELECT songs' }),
  pg("UPDATE accounts SET balance = balance - 100.25, note = E'it\\'s paid', updated = now() WHERE id = -7 AND tags @> ARRAY['a','b']",
    { sanitized: 'UPDATE accounts SET balance = balance - ?, note = ?, updated = now() WHERE id = ? AND tags @> ARRAY[?,?]',
      operation: 'UPDATE', collection: 'accounts', summary: 'UPDATE accounts' }),
  pg('INSERT INTO events (id, payload) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET payload = EXCLUDED.payload',
    { sanitized: 'INSERT INTO events (id, payload) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET payload = EXCLUDED.payload',
      operation: 'INSERT', collection: 'events', summary: 'INSERT events' }),
  pg("SELECT id FROM jobs WHERE state = 'ready' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED",
    { sanitized: 'SELECT id FROM jobs WHERE state = ? ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED', operation: 'SELECT', collection: 'jobs', summary: 'SELECT jobs' }),
  pg("CREATE FUNCTION add(a int, b int) RETURNS int AS $$ SELECT a + b; $$ LANGUAGE sql; SELECT add(1, 2)",
    { sanitized: 'CREATE FUNCTION add(a int, b int) RETURNS int AS ? LANGUAGE sql; SELECT add(?, ?)',
      operation: 'BATCH', summary: 'BATCH', batchSize: 2 }),
  pg("CREATE FUNCTION one() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END",
    { sanitized: 'CREATE FUNCTION one() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT ?; END', operation: 'CREATE FUNCTION', summary: 'CREATE FUNCTION one' }),
  pg("SELECT $tag$ it's $1 -- not a comment $tag$, $1, U&'d\\0061t', B'1010', X'1F', 0x1F, 1_000, .5, 6.02e23, TRUE, false, NULL",
    { sanitized: 'SELECT ?, $1, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL', operation: 'SELECT', summary: 'SELECT' }),
  pg("SELECT a FROM t WHERE b = 'x' /* outer /* nested 'secret' */ still comment */ AND c = 2",
    { sanitized: 'SELECT a FROM t WHERE b = ?  AND c = ?', operation: 'SELECT', collection: 't', summary: 'SELECT t' }),
  pg("SELECT x FROM t -- where pw = 'hunter2'\nWHERE y = 1",
    { sanitized: 'SELECT x FROM t \nWHERE y = ?', operation: 'SELECT', collection: 't', summary: 'SELECT t' }),
  pg("SELECT a-1, a - -2, (-3), a*-4.5e-1 FROM t",
    { sanitized: 'SELECT a-?, a - ?, (?), a*? FROM t', operation: 'SELECT', collection: 't', summary: 'SELECT t' }),
  pg("SELECT 'abc' 'def', '{\"a\": 1}'::jsonb, interval '1 day', DATE '2024-01-02'",
    { sanitized: 'SELECT ? ?, ?::jsonb, interval ?, DATE ?', operation: 'SELECT', summary: 'SELECT' }),
  // -- psql --------------------------------------------------------------------------
  pg("SELECT c.oid,\n  n.nspname,\n  c.relname\nFROM pg_catalog.pg_class c\n     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace\nWHERE c.relname OPERATOR(pg_catalog.~) '^(users)$' COLLATE pg_catalog.default\n  AND pg_catalog.pg_table_is_visible(c.oid)\nORDER BY 2, 3;",
    { sanitized: "SELECT c.oid,\n  n.nspname,\n  c.relname\nFROM pg_catalog.pg_class c\n     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace\nWHERE c.relname OPERATOR(pg_catalog.~) ? COLLATE pg_catalog.default\n  AND pg_catalog.pg_table_is_visible(c.oid)\nORDER BY ?, ?;",
      operation: 'SELECT', summary: 'SELECT pg_catalog.pg_class pg_catalog.pg_namespace' }),
  pg('BEGIN; UPDATE accounts SET balance = balance - 100 WHERE id = 1; UPDATE accounts SET balance = balance + 100 WHERE id = 2; COMMIT;',
    { sanitized: 'BEGIN; UPDATE accounts SET balance = balance - ? WHERE id = ?; UPDATE accounts SET balance = balance + ? WHERE id = ?; COMMIT;',
      operation: 'BATCH', summary: 'BATCH', batchSize: 4 }),
  pg('INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)',
    { sanitized: 'INSERT INTO t VALUES (?); INSERT INTO t VALUES (?)', operation: 'BATCH INSERT', collection: 't', summary: 'BATCH INSERT t', batchSize: 2 }),
  pg('SET search_path TO app, public', { sanitized: 'SET search_path TO app, public', operation: 'SET', summary: 'SET' }),
  pg("SET application_name = 'psql'", { sanitized: 'SET application_name = ?', operation: 'SET', summary: 'SET' }),
  pg('SHOW server_version', { sanitized: 'SHOW server_version', operation: 'SHOW', summary: 'SHOW' }),
  pg('begin', { sanitized: 'begin', operation: 'begin', summary: 'begin' }),
  pg('COMMIT', { sanitized: 'COMMIT', operation: 'COMMIT', summary: 'COMMIT' }),
  pg('ROLLBACK TO SAVEPOINT sp1', { sanitized: 'ROLLBACK TO SAVEPOINT sp1', operation: 'ROLLBACK', summary: 'ROLLBACK' }),
  pg('START TRANSACTION ISOLATION LEVEL SERIALIZABLE',
    { sanitized: 'START TRANSACTION ISOLATION LEVEL SERIALIZABLE', operation: 'START TRANSACTION', summary: 'START TRANSACTION' }),
  pg("CALL transfer(1, 2, 100.00)", { sanitized: 'CALL transfer(?, ?, ?)', operation: 'CALL', summary: 'CALL transfer', storedProcedure: 'transfer' }),
  pg('CALL billing.close_month()', { sanitized: 'CALL billing.close_month()', operation: 'CALL', summary: 'CALL billing.close_month', storedProcedure: 'billing.close_month' }),
  // psycopg2 (the demo's backend) inlines its parameters and opens a transaction first
  pg('SELECT id, name FROM items WHERE id = 7', { sanitized: 'SELECT id, name FROM items WHERE id = ?', operation: 'SELECT', collection: 'items', summary: 'SELECT items' }),
  pg("INSERT INTO items (name, price) VALUES ('O''Reilly', 12.5), (E'C:\\\\tmp', -0.5) RETURNING id",
    { sanitized: 'INSERT INTO items (name, price) VALUES (?, ?), (?, ?) RETURNING id', operation: 'INSERT', collection: 'items', summary: 'INSERT items' }),
  pg("CREATE TABLE IF NOT EXISTS public.users (id serial PRIMARY KEY, name text DEFAULT 'anon')",
    { sanitized: 'CREATE TABLE IF NOT EXISTS public.users (id serial PRIMARY KEY, name text DEFAULT ?)',
      operation: 'CREATE TABLE', collection: 'public.users', summary: 'CREATE TABLE public.users' }),
  pg('CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS users_email ON users (email)',
    { sanitized: 'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS users_email ON users (email)', operation: 'CREATE INDEX', summary: 'CREATE INDEX users_email' }),
  pg('CREATE INDEX ON users (email)', { sanitized: 'CREATE INDEX ON users (email)', operation: 'CREATE INDEX', summary: 'CREATE INDEX' }),
  pg('CREATE MATERIALIZED VIEW  daily AS SELECT 1',
    { sanitized: 'CREATE MATERIALIZED VIEW  daily AS SELECT ?', operation: 'CREATE MATERIALIZED VIEW', summary: 'CREATE MATERIALIZED VIEW daily' }),
  pg('ALTER TABLE users ADD COLUMN age int, ADD COLUMN city text',
    { sanitized: 'ALTER TABLE users ADD COLUMN age int, ADD COLUMN city text', operation: 'ALTER TABLE', collection: 'users', summary: 'ALTER TABLE users' }),
  pg('DROP TABLE IF EXISTS a, b CASCADE', { sanitized: 'DROP TABLE IF EXISTS a, b CASCADE', operation: 'DROP TABLE', summary: 'DROP TABLE a b' }),
  pg('TRUNCATE TABLE ONLY logs', { sanitized: 'TRUNCATE TABLE ONLY logs', operation: 'TRUNCATE TABLE', collection: 'logs', summary: 'TRUNCATE TABLE logs' }),
  pg('COPY users (id, name) FROM STDIN', { sanitized: 'COPY users (id, name) FROM STDIN', operation: 'COPY', collection: 'users', summary: 'COPY users' }),
  pg('EXPLAIN ANALYZE SELECT * FROM t', { sanitized: 'EXPLAIN ANALYZE SELECT * FROM t', operation: 'EXPLAIN', summary: 'EXPLAIN SELECT t' }),
  pg('WITH recent AS (SELECT * FROM orders WHERE created > now() - interval \'1 day\') SELECT * FROM recent JOIN customers USING (customer_id)',
    { sanitized: 'WITH recent AS (SELECT * FROM orders WHERE created > now() - interval ?) SELECT * FROM recent JOIN customers USING (customer_id)',
      operation: 'SELECT', summary: 'SELECT orders SELECT customers' }),
  pg('WITH moved AS (DELETE FROM queue WHERE id = $1 RETURNING *) INSERT INTO done SELECT * FROM moved',
    { sanitized: 'WITH moved AS (DELETE FROM queue WHERE id = $1 RETURNING *) INSERT INTO done SELECT * FROM moved',
      operation: 'INSERT', summary: 'DELETE queue INSERT done SELECT' }),
  pg('SELECT * FROM (WITH x AS (SELECT * FROM a) SELECT * FROM x) s, b',
    { sanitized: 'SELECT * FROM (WITH x AS (SELECT * FROM a) SELECT * FROM x) s, b', operation: 'SELECT', summary: 'SELECT SELECT a SELECT b' }),
  pg('SELECT now()::timestamp with time zone, b FROM t1, t2 GROUP BY a, b WITH ROLLUP',
    { sanitized: 'SELECT now()::timestamp with time zone, b FROM t1, t2 GROUP BY a, b WITH ROLLUP', operation: 'SELECT', summary: 'SELECT t1 t2' }),
  pg('DELETE FROM ONLY sessions s USING users u WHERE s.user_id = u.id AND u.banned',
    { sanitized: 'DELETE FROM ONLY sessions s USING users u WHERE s.user_id = u.id AND u.banned', operation: 'DELETE', summary: 'DELETE sessions users' }),
  pg('UPDATE t SET a = s.a FROM src s WHERE t.id = s.id',
    { sanitized: 'UPDATE t SET a = s.a FROM src s WHERE t.id = s.id', operation: 'UPDATE', summary: 'UPDATE t src' }),
  pg('SELECT * FROM generate_series(1, 10) g, LATERAL unnest(ARRAY[1]) u, t',
    { sanitized: 'SELECT * FROM generate_series(?, ?) g, LATERAL unnest(ARRAY[?]) u, t', operation: 'SELECT', collection: 't', summary: 'SELECT t' }),
  pg('SELECT a FROM x UNION ALL SELECT a FROM y', { sanitized: 'SELECT a FROM x UNION ALL SELECT a FROM y', operation: 'SELECT', summary: 'SELECT x SELECT y' }),
  pg('SELECT extract(year FROM d), substring(s FROM 2 FOR 3), a IS DISTINCT FROM b FROM t',
    { sanitized: 'SELECT extract(year FROM d), substring(s FROM ? FOR ?), a IS DISTINCT FROM b FROM t', operation: 'SELECT', collection: 't', summary: 'SELECT t' }),
  pg('SELECT * FROM a JOIN a b ON a.p = b.id', { sanitized: 'SELECT * FROM a JOIN a b ON a.p = b.id', operation: 'SELECT', collection: 'a', summary: 'SELECT a' }),
  pg('MERGE INTO stock s USING deliveries d ON s.item = d.item WHEN MATCHED THEN UPDATE SET qty = s.qty + d.qty WHEN NOT MATCHED THEN INSERT VALUES (d.item, d.qty)',
    { sanitized: 'MERGE INTO stock s USING deliveries d ON s.item = d.item WHEN MATCHED THEN UPDATE SET qty = s.qty + d.qty WHEN NOT MATCHED THEN INSERT VALUES (d.item, d.qty)',
      operation: 'MERGE', summary: 'MERGE stock deliveries' }),
  pg('VACUUM ANALYZE users', { sanitized: 'VACUUM ANALYZE users', operation: 'VACUUM', summary: 'VACUUM' }),
  pg('LISTEN jobs', { sanitized: 'LISTEN jobs', operation: 'LISTEN', summary: 'LISTEN' }),
  // -- never leak: unterminated literals and comments swallow the rest -------------------------
  pg("SELECT * FROM t WHERE pw = 'hunter2 AND x = 1", { sanitized: 'SELECT * FROM t WHERE pw = ?', operation: 'SELECT', collection: 't', summary: 'SELECT t' }),
  pg("SELECT * FROM t WHERE pw = E'a\\' OR 1=1", { sanitized: 'SELECT * FROM t WHERE pw = ?', operation: 'SELECT', collection: 't', summary: 'SELECT t' }),
  pg('SELECT $a$ secret', { sanitized: 'SELECT ?', operation: 'SELECT', summary: 'SELECT' }),
  pg('SELECT 1 /* secret', { sanitized: 'SELECT ? ?', operation: 'SELECT', summary: 'SELECT' }),
  pg('SELECT "unterminated secret', { sanitized: 'SELECT ?', operation: 'SELECT', summary: 'SELECT' }),
  // -- unknown or empty ----------------------------------------------------------------
  pg('', { sanitized: '' }),
  pg(' ; ', { sanitized: ' ; ' }),
  pg('-- only a comment', { sanitized: '' }),
  pg("FOO 'bar'", { sanitized: 'FOO ?' }),
  pg('CREATE DEFINER x', { sanitized: 'CREATE DEFINER x', operation: 'CREATE' }),
  // -- mysql2, the mysql CLI, ORMs --------------------------------------------------------
  my("SELECT * FROM `users` WHERE `email` = 'o\\'reilly@example.com' AND `name` = \"bob \\\"the\\\" \"\"builder\"\"\" LIMIT 1",
    { sanitized: 'SELECT * FROM `users` WHERE `email` = ? AND `name` = ? LIMIT ?', operation: 'SELECT', collection: '`users`', summary: 'SELECT `users`' }),
  my('SELECT `auth_user`.`id`, `auth_user`.`username` FROM `auth_user` WHERE `auth_user`.`username` = \'admin\' LIMIT 21',
    { sanitized: 'SELECT `auth_user`.`id`, `auth_user`.`username` FROM `auth_user` WHERE `auth_user`.`username` = ? LIMIT ?',
      operation: 'SELECT', collection: '`auth_user`', summary: 'SELECT `auth_user`' }),
  my('select u1_0.id,u1_0.name from users u1_0 where u1_0.id=?',
    { sanitized: 'select u1_0.id,u1_0.name from users u1_0 where u1_0.id=?', operation: 'select', collection: 'users', summary: 'select users' }),
  my("INSERT INTO `t` (`a`,`b`) VALUES (1,'x'),(2,'y') ON DUPLICATE KEY UPDATE `b` = VALUES(`b`)",
    { sanitized: 'INSERT INTO `t` (`a`,`b`) VALUES (?,?),(?,?) ON DUPLICATE KEY UPDATE `b` = VALUES(`b`)', operation: 'INSERT', collection: '`t`', summary: 'INSERT `t`' }),
  my("INSERT IGNORE INTO t SET a = X'0aff', b = 0xDEAD, c = b'0101', d = 0b11, e = _utf8mb4'caf\\xc3' COLLATE utf8mb4_bin, f = N'x'",
    { sanitized: 'INSERT IGNORE INTO t SET a = ?, b = ?, c = ?, d = ?, e = ? COLLATE utf8mb4_bin, f = ?', operation: 'INSERT', collection: 't', summary: 'INSERT t' }),
  my("SELECT * FROM t WHERE a = 1 # secret 'x'\nAND b = 2 -- secret\nAND c = 3--4",
    { sanitized: 'SELECT * FROM t WHERE a = ? \nAND b = ? \nAND c = ?-?', operation: 'SELECT', collection: 't', summary: 'SELECT t' }),
  my('SELECT /*+ MAX_EXECUTION_TIME(1000) */ id FROM t /*!40001 SQL_NO_CACHE */',
    { sanitized: 'SELECT  id FROM t', operation: 'SELECT', collection: 't', summary: 'SELECT t' }),
  my('SELECT INSERT(\'abc\', 1, 2, \'x\'), REPLACE(a, \'b\', \'c\') FROM t',
    { sanitized: 'SELECT INSERT(?, ?, ?, ?), REPLACE(a, ?, ?) FROM t', operation: 'SELECT', collection: 't', summary: 'SELECT t' }),
  my('REPLACE INTO kv (k, v) VALUES (\'a\', 1)', { sanitized: 'REPLACE INTO kv (k, v) VALUES (?, ?)', operation: 'REPLACE', collection: 'kv', summary: 'REPLACE kv' }),
  my('UPDATE t1 JOIN t2 ON t1.id = t2.id SET t1.a = 5 WHERE t2.b IN (\'x\', "y")',
    { sanitized: 'UPDATE t1 JOIN t2 ON t1.id = t2.id SET t1.a = ? WHERE t2.b IN (?)', operation: 'UPDATE', summary: 'UPDATE t1 t2' }),
  my('DELETE t1 FROM t1 JOIN t2 ON t1.id = t2.id', { sanitized: 'DELETE t1 FROM t1 JOIN t2 ON t1.id = t2.id', operation: 'DELETE' }),
  my('DELETE LOW_PRIORITY FROM logs WHERE id < 100', { sanitized: 'DELETE LOW_PRIORITY FROM logs WHERE id < ?', operation: 'DELETE', collection: 'logs', summary: 'DELETE logs' }),
  my('SELECT 1 FROM DUAL', { sanitized: 'SELECT ? FROM DUAL', operation: 'SELECT', summary: 'SELECT' }),
  my('SELECT * FROM 1st_table, db2.2nd', { sanitized: 'SELECT * FROM 1st_table, db2.2nd', operation: 'SELECT', summary: 'SELECT 1st_table db2.2nd' }),
  my('SELECT @@version_comment LIMIT 1', { sanitized: 'SELECT @@version_comment LIMIT ?', operation: 'SELECT', summary: 'SELECT' }),
  my('SET NAMES utf8mb4', { sanitized: 'SET NAMES utf8mb4', operation: 'SET', summary: 'SET' }),
  my('select @@version_comment limit 1', { sanitized: 'select @@version_comment limit ?', operation: 'select', summary: 'select' }),
  my('SELECT DATABASE()', { sanitized: 'SELECT DATABASE()', operation: 'SELECT', summary: 'SELECT' }),
  my('CALL `shop`.`restock`(?, 10)', { sanitized: 'CALL `shop`.`restock`(?, ?)', operation: 'CALL', summary: 'CALL `shop`.`restock`', storedProcedure: '`shop`.`restock`' }),
  my('SET autocommit=1', { sanitized: 'SET autocommit=?', operation: 'SET', summary: 'SET' }),
  my('USE shop', { sanitized: 'USE shop', operation: 'USE', summary: 'USE shop' }),
  my('SHOW WARNINGS', { sanitized: 'SHOW WARNINGS', operation: 'SHOW', summary: 'SHOW' }),
  my('START TRANSACTION', { sanitized: 'START TRANSACTION', operation: 'START TRANSACTION', summary: 'START TRANSACTION' }),
  my('CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END',
    { sanitized: 'CREATE PROCEDURE p() BEGIN SELECT ?; SELECT ?; END', operation: 'CREATE PROCEDURE', summary: 'CREATE PROCEDURE p' }),
  my('DROP TEMPORARY TABLE IF EXISTS tmp', { sanitized: 'DROP TEMPORARY TABLE IF EXISTS tmp', operation: 'DROP TABLE', collection: 'tmp', summary: 'DROP TABLE tmp' }),
  my("SELECT 'a\\\\' , 'b'", { sanitized: 'SELECT ? , ?', operation: 'SELECT', summary: 'SELECT' }),
  my("SELECT * FROM t WHERE pw = 'it\\'s secret", { sanitized: 'SELECT * FROM t WHERE pw = ?', operation: 'SELECT', collection: 't', summary: 'SELECT t' }),
  my('SELECT $1, a$b FROM t', { sanitized: 'SELECT $1, a$b FROM t', operation: 'SELECT', collection: 't', summary: 'SELECT t' }),
  my('END', { sanitized: 'END' }),
];

test('sqlFacts: exact facts of statements from real clients', (t) => {
  for (const [dialect, sql, expected] of CASES) {
    t.deepEqual(computeSqlFacts(sql, dialect), expected, `${dialect}: ${sql}`);
  }
});

test('sqlFacts: the sanitized text of every case is stable under a second scrub', (t) => {
  for (const [dialect, sql] of CASES) {
    const once = computeSqlFacts(sql, dialect).sanitized;
    t.is(computeSqlFacts(once, dialect).sanitized, once, `${dialect}: ${sql}`);
  }
});

test('sqlFacts: the summary stops at 255 characters, between parts', (t) => {
  const tables = Array.from({ length: 40 }, (_, i) => `table_number_${i}`);
  const facts = computeSqlFacts(`SELECT * FROM ${tables.join(', ')}`, 'postgresql');
  const expected = ['SELECT'];
  let chars = 'SELECT'.length;
  for (const table of tables) {
    if (chars + 1 + table.length > SUMMARY_MAX_CHARS) break;
    expected.push(table);
    chars += 1 + table.length;
  }
  t.is(facts.summary, expected.join(' '));
  t.true(facts.summary!.length <= SUMMARY_MAX_CHARS);
  t.is(facts.collection, undefined);
});

test('sqlFacts: nesting and CTE lists past their bounds give no summary rather than a guess', (t) => {
  const deep = `SELECT * FROM ${'('.repeat(70)}SELECT * FROM t${')'.repeat(70)} x`;
  t.deepEqual(computeSqlFacts(deep, 'postgresql'), { sanitized: deep, operation: 'SELECT' });
  const ctes = Array.from({ length: 33 }, (_, i) => `c${i} AS (SELECT ${i})`).join(', ');
  const many = computeSqlFacts(`WITH ${ctes} SELECT * FROM c32`, 'postgresql');
  t.is(many.operation, 'SELECT');
  t.is(many.summary, undefined);
  const ctes32 = Array.from({ length: 32 }, (_, i) => `c${i} AS (SELECT ${i})`).join(', ');
  t.is(computeSqlFacts(`WITH ${ctes32} SELECT * FROM c31`, 'postgresql').summary, `${Array(33).fill('SELECT').join(' ')}`);
});

test('sqlFacts: a text seen twice is cached; the cache empties at its bound and counts it', (t) => {
  const sql = 'SELECT * FROM cached_table WHERE id = 1';
  const first = sqlFacts(sql, 'postgresql');
  const second = sqlFacts(sql, 'postgresql');
  t.not(second, first); // seen once: not cached
  t.deepEqual(second, first);
  t.is(sqlFacts(sql, 'postgresql'), second); // seen twice: cached
  sqlFacts(sql, 'mysql');
  const mysql = sqlFacts(sql, 'mysql');
  t.not(mysql, second); // one cache per dialect
  t.is(sqlFacts(sql, 'mysql'), mysql);
  const texts = Array.from({ length: SQL_CACHE_ENTRIES + 1 }, (_, i) => `SELECT ${i} FROM filler`);
  const entries = sqlCacheStats().entries;
  for (const text of texts) sqlFacts(text, 'postgresql');
  t.is(sqlCacheStats().entries, entries); // each seen once: none cached, no reset
  const before = sqlCacheStats().resets;
  for (const text of texts) {
    // Twice in a row: cached for sure (the doorkeeper slot of a text seen long ago may hold another's hash by now).
    sqlFacts(text, 'postgresql');
    t.is(sqlFacts(text, 'postgresql'), sqlFacts(text, 'postgresql'));
  }
  t.is(sqlCacheStats().resets, before + 1);
  t.true(sqlCacheStats().entries <= 2 * SQL_CACHE_ENTRIES);
  const long = `SELECT '${'x'.repeat(SQL_CACHE_MAX_TEXT)}'`;
  const a = sqlFacts(long, 'postgresql');
  const b = sqlFacts(long, 'postgresql');
  t.not(sqlFacts(long, 'postgresql'), b); // too long to cache
  t.deepEqual(b, a);
});

// ---------------------------------------------------------------------------
// Properties: statements built from SQL skeletons and literal / comment pieces.

/** Characters that break naive scrubbers. */
const HOSTILE = fc.constantFrom(
  "'", '"', '\\', '$', '$$', '-', '--', '/', '*', '/*', '*/', '#', '`', ' ', '\n', '\r', '\t', ';', '(', ')', ',', '?',
  'a', 'Z', 'e', '0', '7', '.', 'x', 'é', '日本', '🙂', '\u0000', 'SELECT', 'FROM', 'IN',
);
const content = fc.string({ unit: HOSTILE, maxLength: 12 });
const hex = fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF'), minLength: 1, maxLength: 8 });
const bits = fc.string({ unit: fc.constantFrom('0', '1'), minLength: 1, maxLength: 8 });

const number = fc.oneof(
  fc.nat().map(String),
  fc.integer({ min: -100000, max: -1 }).map(String),
  fc.tuple(fc.nat(), fc.nat({ max: 99999 })).map(([a, b]) => `${a}.${b}`),
  fc.nat({ max: 9999 }).map((b) => `.${b}`),
  fc.tuple(fc.nat(99), fc.constantFrom('e', 'E', 'e-', 'E+'), fc.nat(99)).map(([a, e, b]) => `${a}${e}${b}`),
  fc.tuple(fc.boolean(), fc.nat({ max: 999 }), fc.nat({ max: 99 })).map(([neg, a, b]) => `${neg ? '-' : ''}${a}.${b}e-${b}`),
  hex.map((h) => `0x${h}`),
  fc.constantFrom('TRUE', 'FALSE', 'true', 'False'),
);

/** A literal and the contents it carries (which must not survive scrubbing). */
interface Piece { readonly text: string; readonly secret: string }

const pgLiteral: fc.Arbitrary<Piece> = fc.oneof(
  content.map((s) => ({ text: `'${s.replaceAll("'", "''")}'`, secret: s })),
  fc.tuple(content, fc.boolean()).map(([s, doubled]) => ({
    text: `E'${s.replaceAll('\\', '\\\\').replaceAll("'", doubled ? "''" : "\\'")}'`, secret: s,
  })),
  content.map((s) => ({ text: `U&'${s.replaceAll("'", "''")}'`, secret: s })),
  fc.tuple(content, fc.constantFrom('', 'x', 'tag_1', 'T')).filter(([s, tag]) => (s + `$${tag}$`).indexOf(`$${tag}$`) === s.length)
    .map(([s, tag]) => ({ text: `$${tag}$${s}$${tag}$`, secret: s })),
  bits.map((b) => ({ text: `B'${b}'`, secret: b })),
  hex.map((h) => ({ text: `X'${h}'`, secret: h })),
  number.map((n) => ({ text: n, secret: n })),
  fc.tuple(fc.integer({ min: 1, max: 999 }), fc.integer({ min: 0, max: 999 })).map(([a, b]) => ({ text: `${a}_${String(b).padStart(3, '0')}`, secret: `${a}_` })),
);

const mysqlEscaped = (s: string, quote: string, doubled: boolean): string =>
  s.replaceAll('\\', '\\\\').replaceAll(quote, doubled ? quote + quote : '\\' + quote);

const mysqlLiteral: fc.Arbitrary<Piece> = fc.oneof(
  fc.tuple(content, fc.boolean()).map(([s, d]) => ({ text: `'${mysqlEscaped(s, "'", d)}'`, secret: s })),
  fc.tuple(content, fc.boolean()).map(([s, d]) => ({ text: `"${mysqlEscaped(s, '"', d)}"`, secret: s })),
  fc.tuple(content, fc.constantFrom('_utf8mb4', '_binary', '_latin1', 'N', 'n')).map(([s, p]) => ({ text: `${p}'${mysqlEscaped(s, "'", false)}'`, secret: s })),
  hex.map((h) => ({ text: `x'${h}'`, secret: h })),
  hex.map((h) => ({ text: `X'${h}'`, secret: h })),
  bits.map((b) => ({ text: `b'${b}'`, secret: b })),
  bits.map((b) => ({ text: `0b${b}`, secret: b })),
  number.map((n) => ({ text: n, secret: n })),
);

/** A comment and what it becomes: nothing, or the newline ending a line comment. */
interface CommentPiece { readonly text: string; readonly leaves: string; readonly secret: string }
const line = fc.string({ unit: HOSTILE, maxLength: 12 }).map((s) => s.replaceAll('\n', ' ').replaceAll('\r', ' '));
const block = (nested: boolean): fc.Arbitrary<string> =>
  content.filter((s) => !s.includes('*/') && !(nested && (s.includes('/*') || s.endsWith('/'))));
const pgComment: fc.Arbitrary<CommentPiece> = fc.oneof(
  block(true).map((s) => ({ text: `/*${s}*/`, leaves: '', secret: s })),
  fc.tuple(block(true), block(true)).map(([a, b]) => ({ text: `/* ${a} /* ${b} */ ${a} */`, leaves: '', secret: a + b })),
  line.map((s) => ({ text: `--${s}\n`, leaves: '\n', secret: s })),
);
const mysqlComment: fc.Arbitrary<CommentPiece> = fc.oneof(
  block(false).map((s) => ({ text: `/*${s}*/`, leaves: '', secret: s })),
  block(false).map((s) => ({ text: `/*!40001 ${s}*/`, leaves: '', secret: s })),
  line.map((s) => ({ text: `-- ${s}\n`, leaves: '\n', secret: s })),
  line.map((s) => ({ text: `#${s}\n`, leaves: '\n', secret: s })),
);

/** Skeletons: `{L}` a literal, `{C}` a comment (always between spaces), `{IN}` a list of literals; and the summary. */
const PG_SKELETONS: readonly (readonly [string, string])[] = [
  ['SELECT * FROM accounts WHERE id = {L} {C} AND name = {L}', 'SELECT accounts'],
  ['INSERT INTO orders (a, b, c) VALUES ({L}, {L}, {L}) RETURNING id', 'INSERT orders'],
  ['UPDATE "Users" SET note = {L}, n = n + {L} WHERE id IN {IN} {C} AND flag = {L}', 'UPDATE "Users"'],
  ['SELECT {L}::text AS x, $1 FROM public.t1 t JOIN t2 ON t.id = t2.id WHERE a > {L}', 'SELECT public.t1 t2'],
  ['SELECT COALESCE({L}, {L}) FROM (SELECT * FROM inner_t WHERE x = {L}) s {C} WHERE y IN {IN}', 'SELECT SELECT inner_t'],
  ['DELETE FROM q WHERE a = {L} OR b = ARRAY[{L}, {L}] {C}', 'DELETE q'],
];
const MYSQL_SKELETONS: readonly (readonly [string, string])[] = [
  ['SELECT * FROM `users` WHERE name = {L} {C} AND id = {L} LIMIT {L}', 'SELECT `users`'],
  ['INSERT INTO t (a, b) VALUES ({L}, {L}), ({L}, {L}) ON DUPLICATE KEY UPDATE b = VALUES(b)', 'INSERT t'],
  ['UPDATE t1 JOIN t2 ON t1.id = t2.id SET t1.a = {L} WHERE t2.b IN {IN} {C}', 'UPDATE t1 t2'],
  ['DELETE FROM logs WHERE created < {L} {C} AND level = {L}', 'DELETE logs'],
  ['SELECT {L} AS x, @@version, ? FROM dual WHERE {L} = {L}', 'SELECT'],
];

interface Generated { readonly sql: string; readonly expected: string; readonly secrets: readonly string[] }

function statement(skeletons: readonly (readonly [string, string])[], literal: fc.Arbitrary<Piece>,
  comment: fc.Arbitrary<CommentPiece>): fc.Arbitrary<readonly [Generated, string]> {
  return fc.integer({ min: 0, max: skeletons.length - 1 }).chain((k) => {
    const [skeleton, summary] = skeletons[k]!;
    const slots = skeleton.split(/(\{L\}|\{C\}|\{IN\})/);
    const pieces = slots.map((s) => {
      if (s === '{L}') return literal.map((p) => ({ sql: p.text, expected: '?', secrets: [p.secret] }));
      if (s === '{C}') return comment.map((c) => ({ sql: c.text, expected: c.leaves, secrets: [c.secret] }));
      if (s === '{IN}') {
        return fc.array(literal, { minLength: 1, maxLength: 4 }).map((ps) => ({
          sql: `(${ps.map((p) => p.text).join(', ')})`, expected: '(?)', secrets: ps.map((p) => p.secret),
        }));
      }
      return fc.constant({ sql: s, expected: s, secrets: [] as string[] });
    });
    return fc.tuple(...pieces).map((parts) => {
      let expected = parts.map((p) => p.expected).join('');
      // A block comment ending the text takes the blank before it along (trailing sqlcommenter comments).
      if (skeleton.endsWith('{C}') && parts[parts.length - 2]?.expected === '') expected = expected.trimEnd();
      return [{ sql: parts.map((p) => p.sql).join(''), expected, secrets: parts.flatMap((p) => p.secrets) }, summary] as const;
    });
  });
}

for (const [dialect, literal, comment, skeletons] of [
  ['postgresql', pgLiteral, pgComment, PG_SKELETONS],
  ['mysql', mysqlLiteral, mysqlComment, MYSQL_SKELETONS],
] as const) {
  test(`sqlFacts (${dialect}): every generated literal and comment is scrubbed, exactly, and stably`, (t) => {
    fc.assert(fc.property(statement(skeletons, literal, comment), ([g, summary]) => {
      const facts = computeSqlFacts(g.sql, dialect);
      // Exactly the skeleton with `?` for each literal: nothing of any literal is left, nothing else changed.
      if (facts.sanitized !== g.expected) return false;
      for (const secret of g.secrets) {
        if (secret.length >= 2 && !g.expected.includes(secret) && facts.sanitized.includes(secret)) return false;
      }
      if (facts.summary !== summary) return false;
      return computeSqlFacts(facts.sanitized, dialect).sanitized === facts.sanitized;
    }), { numRuns: Number(process.env.SQL_FUZZ_RUNS ?? 3000) });
    t.pass();
  });

  test(`sqlFacts (${dialect}): arbitrary text never throws and scrubs to a fixed point`, (t) => {
    const sqlish = fc.string({ unit: fc.oneof(HOSTILE, fc.constantFrom('E\'', 'U&\'', 'x\'', '_utf8\'', '$1', '$t$', '0x', '1.5', '-1', 'IN (', 'select ', ' from t', 'e5')), maxLength: 40 });
    fc.assert(fc.property(fc.oneof(sqlish, fc.string({ unit: 'grapheme', maxLength: 40 })), (sql) => {
      const once = computeSqlFacts(sql, dialect).sanitized;
      return computeSqlFacts(once, dialect).sanitized === once;
    }), { numRuns: Number(process.env.SQL_FUZZ_RUNS ?? 5000) });
    t.pass();
  });
}
