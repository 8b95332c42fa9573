// PostgreSQL end to end with real eBPF (issue 16): a real server started in a
// temporary folder (test/helpers/postgres-server.ts), a Node `pg` client
// (test/e2e/programs/pg_client.js) and psql traced by `ebpf-otel run`,
// exporting to a real OTLP receiver: one CLIENT span per query with exact
// attributes (operation, table, sanitized text, row counts, SQLSTATE), a
// prepared statement executed 3 times reporting its SQL each time, a
// 10 000-row result, a transaction, the duration histogram, a secret literal
// in no exported byte; the same over TLS (pg ssl, psql sslmode=require) when
// the TLS library's plaintext restarts detection; and a Python HTTP service
// (ThreadingHTTPServer, psycopg2) whose database spans are children of the
// SERVER span of the request that made them.

import { spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import anyTest, { type ExecutionContext } from 'ava';
import { ebpfTest } from '../helpers/ebpf';
import { ROOT, sleep, startAgent, startWorkload } from '../helpers/agent';
import type { Attrs, ReceivedSpan } from '../helpers/otlp-receiver';
import { startPostgres, type PostgresServer } from '../helpers/postgres-server';
import { makeTestPki } from '../helpers/tls-certs';
import { useOtlpReceiver } from '../helpers/use-otlp-receiver';

const test = ebpfTest.serial;
const otlp = useOtlpReceiver(anyTest);
const PROGRAMS = path.join(ROOT, 'test', 'e2e', 'programs');

const SERVER_KIND = 2;
const CLIENT_KIND = 3;
const UNSET = 0;
const ERROR = 2;
const SECRET = 'sk_live_4242';

const SETUP = "CREATE TABLE accounts (id serial PRIMARY KEY, owner text NOT NULL, balance int NOT NULL); INSERT INTO accounts (owner, balance) VALUES ('alice', 120), ('bob', 300), ('zoe', 5)";

function pgEnv(pg: PostgresServer, extra: Record<string, string> = {}): Record<string, string> {
  return { PGHOST: '127.0.0.1', PGPORT: String(pg.port), PGUSER: pg.user, PGPASSWORD: pg.password, PGDATABASE: pg.database, PG_SECRET: SECRET, ...extra };
}

/** The attributes every span of a call to `pg` carries. */
function common(pg: PostgresServer): Attrs {
  return {
    'db.system.name': 'postgresql',
    'db.namespace': pg.database,
    'ebpf_otel.db.user': pg.user,
    'server.address': '127.0.0.1',
    'server.port': pg.port,
    'network.peer.address': '127.0.0.1',
    'network.peer.port': pg.port,
  };
}

interface WantSpan {
  readonly name: string;
  readonly attributes: Attrs;
  readonly error?: string;
}

const select = (text: string, rows: number, collection = 'accounts'): Attrs => ({
  'db.operation.name': 'SELECT',
  ...(collection !== '' ? { 'db.collection.name': collection } : {}),
  'db.query.summary': collection !== '' ? `SELECT ${collection}` : 'SELECT',
  'db.query.text': text,
  'db.response.returned_rows': rows,
});

/** What pg_client.js makes, in order. */
function pgClientSpans(pg: PostgresServer): WantSpan[] {
  const c = common(pg);
  const prepared = { name: 'SELECT accounts', attributes: { ...c, ...select('SELECT id, owner FROM accounts WHERE id = $1', 1) } };
  return [
    { name: 'SELECT accounts', attributes: { ...c, ...select('SELECT id, owner, balance FROM accounts WHERE balance > ? AND owner <> ? ORDER BY id', 2) } },
    prepared,
    prepared,
    prepared,
    {
      name: 'SELECT missing_table',
      attributes: {
        ...c,
        'db.operation.name': 'SELECT',
        'db.collection.name': 'missing_table',
        'db.query.summary': 'SELECT missing_table',
        'db.query.text': 'SELECT * FROM missing_table',
        'db.response.status_code': '42P01',
        'error.type': '42P01',
      },
      error: 'relation "?" does not exist',
    },
    { name: 'BEGIN', attributes: { ...c, 'db.operation.name': 'BEGIN', 'db.query.summary': 'BEGIN', 'db.query.text': 'BEGIN' } },
    {
      name: 'UPDATE accounts',
      attributes: {
        ...c,
        'db.operation.name': 'UPDATE',
        'db.collection.name': 'accounts',
        'db.query.summary': 'UPDATE accounts',
        'db.query.text': 'UPDATE accounts SET balance = balance - ? WHERE id = $1',
        'ebpf_otel.db.affected_rows': 1,
      },
    },
    { name: 'COMMIT', attributes: { ...c, 'db.operation.name': 'COMMIT', 'db.query.summary': 'COMMIT', 'db.query.text': 'COMMIT' } },
    { name: 'SELECT', attributes: { ...c, ...select('SELECT g FROM generate_series(?, ?) g', 10000, '') } },
  ];
}

/**
 * The 10 000-row result is read in pieces larger than the capture bound
 * (libuv reads 64 KiB, 16 KiB of each are captured): when the read holding
 * its CommandComplete and ReadyForQuery is cut there too, the end is proven
 * by the client's next message and the span says its response was cut
 * (src/protocols/postgres/README.md "Gaps"). Either form, exactly.
 */
function bigResultForms(pg: PostgresServer): Attrs[] {
  const whole = { ...common(pg), ...select('SELECT g FROM generate_series(?, ?) g', 10000, '') };
  const { ['db.response.returned_rows']: _rows, ...cut } = whole;
  return [whole, { ...cut, 'ebpf_otel.db.response.incomplete': true }];
}

/** psql -c "SELECT count(*) FROM accounts". */
function psqlSpans(pg: PostgresServer): WantSpan[] {
  return [{ name: 'SELECT accounts', attributes: { ...common(pg), ...select('SELECT count(*) FROM accounts', 1) } }];
}

function assertSpans(t: ExecutionContext, got: ReceivedSpan[], want: WantSpan[], label: string): void {
  t.deepEqual(got.map((s) => s.name), want.map((w) => w.name), `${label}: span names in order`);
  for (let i = 0; i < Math.min(got.length, want.length); i++) {
    const s = got[i]!;
    const w = want[i]!;
    t.is(s.kind, CLIENT_KIND, `${label} #${i}`);
    t.deepEqual(s.attributes, w.attributes, `${label} #${i} ${w.name}`);
    t.deepEqual(s.status, { code: w.error !== undefined ? ERROR : UNSET, message: w.error ?? '' }, `${label} #${i} status`);
    t.true(s.endTimeUnixNano >= s.startTimeUnixNano, `${label} #${i} times`);
  }
}

/** pg_client.js's spans, the big result in either of its exact forms. */
function assertPgClient(t: ExecutionContext, pg: PostgresServer, got: ReceivedSpan[], label: string): void {
  const want = pgClientSpans(pg);
  const big = got[want.length - 1];
  const forms = bigResultForms(pg);
  const form = big === undefined ? -1 : forms.findIndex((f) => JSON.stringify(Object.entries(f).sort()) === JSON.stringify(Object.entries(big.attributes).sort()));
  t.not(form, -1, `${label}: the 10 000-row span ${JSON.stringify(big?.attributes)}`);
  t.log(`${label}: the 10 000-row result's end was ${form === 0 ? 'captured' : 'cut (proven by the next message)'}`);
  want[want.length - 1] = { name: 'SELECT', attributes: forms[Math.max(0, form)]! };
  assertSpans(t, got, want, label);
}

const dbSpansOf = (pid: number): ReceivedSpan[] => otlp.spansOf(pid).filter((s) => s.attributes['db.system.name'] === 'postgresql');

/** db.client.operation.duration of `pid`: "operation collection error" -> count. */
function durationCounts(pid: number): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const p of otlp.receiver.latestPoints('db.client.operation.duration', (x) => x.resource['process.pid'] === pid)) {
    const a = p.attributes;
    t0Check(a);
    const k = `${a['db.operation.name'] ?? '-'} ${a['db.collection.name'] ?? '-'} ${a['error.type'] ?? '-'}`;
    counts[k] = (counts[k] ?? 0) + p.histogram!.count;
  }
  return counts;
}

/** Metric attributes are low-cardinality: never the text, the user, rows or the peer port. */
function t0Check(a: Attrs): void {
  for (const k of ['db.query.text', 'ebpf_otel.db.user', 'db.response.returned_rows', 'network.peer.port']) {
    if (k in a) throw new Error(`metric attribute ${k} present: ${JSON.stringify(a)}`);
  }
}

function psql(pg: PostgresServer, sslmode: string, sql: string): string {
  const r = spawnSync('psql', ['-X', '-q', '-A', '-t', '-c', sql], { env: { ...process.env, ...pgEnv(pg), PGSSLMODE: sslmode }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`psql: ${r.stderr}`);
  return r.stdout.trim();
}

/** The pg client (and psql) against `pg`, traced; returns the client's result. */
async function tracedClients(t: ExecutionContext, pg: PostgresServer, tls: boolean): Promise<{ clientPid: number; psqlCount: string }> {
  const client = await startWorkload('node', [path.join(PROGRAMS, 'pg_client.js')], { ...pgEnv(pg, tls ? { PG_TLS: '1' } : {}), NODE_PATH: path.join(ROOT, 'node_modules') });
  const agent = await startAgent(['run', '--pid', String(client.pid), '--exe', 'psql'], { env: otlp.env() });
  client.go();
  const result = await client.result();
  const results = result['results'] as { label: string; rows?: number; code?: string }[];
  t.deepEqual(results.map((r) => [r.label, r.rows ?? r.code]), [
    ['select', 2], ['prepared-1', 1], ['prepared-2', 1], ['prepared-3', 1], ['error', '42P01'], ['begin', 0], ['update', 0], ['commit', 0], ['big', 10000],
  ]);
  let warm: ReturnType<typeof spawn> | undefined;
  if (tls) {
    // psql lives a few ms: long enough for the agent to see it, not to probe its libssl first. A psql
    // of its own (in clear) keeps the library mapped by a selected process, so it is probed when the
    // measured psql starts.
    warm = spawn('psql', ['-X', '-q', '-c', 'SELECT pg_sleep(3)'], { env: { ...process.env, ...pgEnv(pg), PGSSLMODE: 'disable' }, stdio: 'ignore' });
    await sleep(2000);
  }
  const psqlCount = psql(pg, tls ? 'require' : 'prefer', 'SELECT count(*) FROM accounts');
  if (warm !== undefined) await new Promise((r) => warm!.once('exit', r));
  await sleep(300);
  const { code, stderr } = await agent.stop();
  t.is(code, 0, stderr);
  return { clientPid: client.pid, psqlCount };
}

/** The psql that counted the accounts (not the one keeping libssl mapped). */
function psqlPid(): number | undefined {
  const pids = new Set(
    otlp.receiver.spans
      .filter((s) => s.resource['process.executable.name'] === 'psql' && s.attributes['db.query.text'] === 'SELECT count(*) FROM accounts')
      .map((s) => s.resource['process.pid'] as number),
  );
  return pids.size === 1 ? [...pids][0] : undefined;
}

async function withServer(t: ExecutionContext, tls: boolean, body: (pg: PostgresServer) => Promise<void>): Promise<void> {
  const pki = tls ? await makeTestPki() : undefined;
  const pg = await startPostgres(pki !== undefined ? { tls: { cert: pki.serverCert, key: pki.serverKey } } : {});
  t.teardown(async () => {
    await pg.stop();
    pki?.cleanup();
  });
  await pg.psql(SETUP);
  await body(pg);
}

test('pg and psql against PostgreSQL: one exact CLIENT span per query, prepared statements report their SQL each time, 10 000 rows, SQLSTATE, the duration histogram, no secret in any export', async (t) => {
  await withServer(t, false, async (pg) => {
    const { clientPid, psqlCount } = await tracedClients(t, pg, false);
    t.is(psqlCount, '3');
    assertPgClient(t, pg, dbSpansOf(clientPid), 'pg');
    const psqlOf = psqlPid();
    t.not(psqlOf, undefined, 'psql traced by --exe');
    assertSpans(t, dbSpansOf(psqlOf!), psqlSpans(pg), 'psql');
    t.deepEqual(durationCounts(clientPid), {
      'SELECT accounts -': 4,
      'SELECT missing_table 42P01': 1,
      'BEGIN - -': 1,
      'UPDATE accounts -': 1,
      'COMMIT - -': 1,
      'SELECT - -': 1,
    });
    for (const b of otlp.receiver.bodies) t.false(b.includes(SECRET), 'the secret literal in an export');
    t.is(otlp.counter('ebpf_otel.protocol.parse_errors', 'postgres'), 0);
    t.is(otlp.counter('ebpf_otel.protocol.unknown_statements', 'postgres'), 0);
  });
});

test('PostgreSQL over TLS (pg ssl, psql sslmode=require): the SSLRequest hands the connection on, the probed plaintext restarts detection: the same exact spans', async (t) => {
  await withServer(t, true, async (pg) => {
    const { clientPid, psqlCount } = await tracedClients(t, pg, true);
    t.is(psqlCount, '3');
    assertPgClient(t, pg, dbSpansOf(clientPid), 'pg over TLS');
    const psqlOf = psqlPid();
    t.not(psqlOf, undefined, 'psql traced by --exe');
    assertSpans(t, dbSpansOf(psqlOf!), psqlSpans(pg), 'psql over TLS');
    t.true(otlp.counter('ebpf_otel.protocol.ssl_requests', 'postgres') >= 2);
    for (const b of otlp.receiver.bodies) t.false(b.includes(SECRET), 'the secret literal in an export');
  });
});

test('a Python HTTP service (ThreadingHTTPServer, psycopg2) querying PostgreSQL per request: every database span is a child of the SERVER span of its request', async (t) => {
  await withServer(t, false, async (pg) => {
    const service = await startWorkload('/usr/bin/python3', [path.join(PROGRAMS, 'pg_http_service.py')], pgEnv(pg));
    const port = service.hello['port'] as number;
    const agent = await startAgent(['run', '--pid', String(service.pid)], { env: otlp.env() });
    const owners: string[] = [];
    for (const id of [1, 2, 3, 2, 1]) {
      const r = spawnSync('curl', ['-sS', `http://127.0.0.1:${port}/accounts/${id}`], { encoding: 'utf8' });
      owners.push((JSON.parse(r.stdout) as { owner: string }).owner);
    }
    t.deepEqual(owners, ['alice', 'bob', 'zoe', 'bob', 'alice']);
    service.go();
    await service.result();
    await sleep(300);
    const { code, stderr } = await agent.stop();
    t.is(code, 0, stderr);
    const spans = otlp.spansOf(service.pid);
    const servers = spans.filter((s) => s.kind === SERVER_KIND);
    t.deepEqual(servers.map((s) => `${s.name} ${s.attributes['url.path']}`), [1, 2, 3, 2, 1].map((id) => `GET /accounts/{id} /accounts/${id}`));
    const db = spans.filter((s) => s.attributes['db.system.name'] === 'postgresql');
    // psycopg2 opens a transaction before the query and the handler rolls it back.
    t.deepEqual(db.map((s) => s.name), [1, 2, 3, 2, 1].flatMap(() => ['BEGIN', 'SELECT accounts', 'ROLLBACK']));
    for (const [i, s] of db.entries()) {
      const parent = servers[Math.floor(i / 3)]!;
      t.is(s.kind, CLIENT_KIND);
      t.is(s.traceId, parent.traceId, `${s.name} #${i}: trace`);
      t.is(s.parentSpanId, parent.spanId, `${s.name} #${i}: parent is the SERVER span of its request`);
      t.true(s.startTimeUnixNano >= parent.startTimeUnixNano && s.endTimeUnixNano <= parent.endTimeUnixNano, `${s.name} #${i} within its request`);
    }
    const selects = db.filter((s) => s.name === 'SELECT accounts');
    for (const s of selects) {
      t.deepEqual(s.attributes, { ...common(pg), ...select('SELECT owner FROM accounts WHERE id = ?', 1) });
    }
  });
});

test('only the PostgreSQL server traced (its postmaster and the backends it forks): one SERVER span per query psql sends, the peer as client.*', async (t) => {
  await withServer(t, false, async (pg) => {
    const agent = await startAgent(['run', '--pid', String(pg.pid)], { env: otlp.env() });
    t.is(psql(pg, 'disable', 'SELECT count(*) FROM accounts'), '3');
    t.is(psql(pg, 'disable', "UPDATE accounts SET balance = balance + 1 WHERE owner = 'zoe'"), '');
    await sleep(300);
    const { code, stderr } = await agent.stop();
    t.is(code, 0, stderr);
    const spans = otlp.receiver.spans.filter((s) => s.attributes['db.system.name'] === 'postgresql').sort((a, b) => Number(a.startTimeUnixNano - b.startTimeUnixNano));
    t.deepEqual(spans.map((s) => [s.kind, s.name]), [[SERVER_KIND, 'SELECT accounts'], [SERVER_KIND, 'UPDATE accounts']]);
    for (const s of spans) {
      // The backends are children of the postmaster.
      t.not(s.resource['process.pid'], pg.pid);
      const clientPort = s.attributes['client.port'];
      t.true(typeof clientPort === 'number' && clientPort > 0 && clientPort !== pg.port);
    }
    const server = { 'db.system.name': 'postgresql', 'db.namespace': pg.database, 'ebpf_otel.db.user': pg.user, 'server.address': '127.0.0.1', 'server.port': pg.port, 'client.address': '127.0.0.1' };
    t.deepEqual(spans[0]!.attributes, { ...server, 'client.port': spans[0]!.attributes['client.port']!, ...select('SELECT count(*) FROM accounts', 1) });
    t.deepEqual(spans[1]!.attributes, {
      ...server,
      'client.port': spans[1]!.attributes['client.port']!,
      'db.operation.name': 'UPDATE',
      'db.collection.name': 'accounts',
      'db.query.summary': 'UPDATE accounts',
      'db.query.text': 'UPDATE accounts SET balance = balance + ? WHERE owner = ?',
      'ebpf_otel.db.affected_rows': 1,
    });
    t.is(otlp.receiver.latestPoints('ebpf_otel.db.server.operation.duration', () => true).reduce((a, p) => a + p.histogram!.count, 0), 2);
  });
});
