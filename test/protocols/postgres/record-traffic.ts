// Records real PostgreSQL connections for the goldens (test/fixtures/postgres/):
// a real server (test/helpers/postgres-server.ts) and real clients (node-postgres
// `pg`, psql, and a raw client writing messages built by messages.ts, for
// what `pg` never sends: pipelined batches, a cancel request) with a recording TCP proxy between them. Each capture is written
// to test/fixtures/postgres/captures/<name>.jsonl: a first line
//   {"conn": {"serverPort": n, "clientPort": n}}
// then one line per read the proxy made, from the client's side of view:
//   {"side": "egress" (client to server) | "ingress", "pos": n, "atNs": n, "data": base64}
// and {"mark": name, "atNs": n} where the client reached a named point.
// Run by hand (as root or a user that can run initdb), review, commit:
//   make ts && node dist/test/protocols/postgres/record-traffic.js [capture...]

import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { startPostgres, type PostgresServer } from '../../helpers/postgres-server';
import { makeTestPki } from '../../helpers/tls-certs';
import { front } from './messages';

const ROOT = path.join(__dirname, '../../../..');
export const CAPTURES = path.join(ROOT, 'test/fixtures/postgres/captures');
const run = promisify(execFile);
const t0 = process.hrtime.bigint();
const now = (): number => Number(process.hrtime.bigint() - t0);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Calls the bench capture makes (each one record). */
export const BENCH_CALLS = 250;
/** Where the pipeline benchmark finds it (bench/pipeline.ts, scenario postgres). */
const BENCH_FIXTURE = path.join(ROOT, 'bench/fixtures/postgres/postgres');

/** The bench capture in the benchmark's format: one line per read, ingress = client to server, and the records it must yield. */
function writeBenchFixture(): void {
  const lines = fs.readFileSync(path.join(CAPTURES, 'bench-pg.jsonl'), 'utf8').split('\n').filter((l) => l !== '').slice(1);
  const out: string[] = [];
  for (const l of lines) {
    const e = JSON.parse(l) as { side?: string; data?: string };
    if (e.side === undefined) continue;
    out.push(JSON.stringify({ conn: 0, side: e.side === 'egress' ? 'ingress' : 'egress', data: e.data }));
  }
  fs.mkdirSync(BENCH_FIXTURE, { recursive: true });
  fs.writeFileSync(path.join(BENCH_FIXTURE, 'events.jsonl'), `${out.join('\n')}\n`);
  fs.writeFileSync(path.join(BENCH_FIXTURE, 'case.json'), `${JSON.stringify({ connections: [{ streams: BENCH_CALLS }] }, null, 2)}\n`);
  fs.unlinkSync(path.join(CAPTURES, 'bench-pg.jsonl'));
}

/** The secret literal every query that carries one uses: it must never reach a record. */
export const SECRET = 'sk_live_4242';

interface Recording {
  readonly port: number;
  mark(name: string): void;
  /** Waits for both ends to close, then writes the capture. */
  save(name: string): Promise<void>;
}

/** A proxy in front of `target` recording the one connection it gets. */
async function recordingProxy(target: number): Promise<Recording> {
  const lines: object[] = [];
  const pos = { egress: 0, ingress: 0 };
  let clientPort = 0;
  let closed: Promise<void> = Promise.resolve();
  const rec = (side: 'egress' | 'ingress', d: Buffer) => {
    lines.push({ side, pos: pos[side], atNs: now(), data: d.toString('base64') });
    pos[side] += d.length;
  };
  const server = net.createServer((c) => {
    clientPort = c.remotePort ?? 0;
    c.setNoDelay(true);
    const s = net.connect(target, '127.0.0.1');
    s.setNoDelay(true);
    c.on('data', (d) => { rec('egress', d); s.write(d); });
    s.on('data', (d) => { rec('ingress', d); c.write(d); });
    c.on('end', () => s.end());
    s.on('end', () => c.end());
    c.on('error', () => s.destroy());
    s.on('error', () => c.destroy());
    closed = Promise.all([new Promise((r) => c.on('close', r)), new Promise((r) => s.on('close', r))]).then(() => undefined);
    server.close();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    mark: (name) => lines.push({ mark: name, atNs: now() }),
    async save(name) {
      await closed;
      fs.mkdirSync(CAPTURES, { recursive: true });
      const head = JSON.stringify({ conn: { serverPort: target, clientPort } });
      fs.writeFileSync(path.join(CAPTURES, `${name}.jsonl`), `${[head, ...lines.map((l) => JSON.stringify(l))].join('\n')}\n`);
    },
  };
}

async function pgClient(pg: PostgresServer, port: number): Promise<Client> {
  const c = new Client({ host: '127.0.0.1', port, user: pg.user, password: pg.password, database: pg.database });
  await c.connect();
  return c;
}

async function swallow(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch {
    // The error is what the capture is for.
  }
}

type Capture = (pg: PostgresServer, r: Recording) => Promise<void>;

const CAPTURE_FNS: Record<string, Capture> = {
  async 'pg-simple'(pg, r) {
    const c = await pgClient(pg, r.port);
    r.mark('ready');
    await c.query(`SELECT id, owner, balance FROM accounts WHERE balance > 100 AND owner <> '${SECRET}' ORDER BY id`);
    await c.query("INSERT INTO accounts (owner, balance) VALUES ('carol', 50)");
    await c.query("UPDATE accounts SET balance = balance + 1 WHERE owner = 'carol'");
    await c.query('SELECT 1; SELECT 2');
    await c.query('');
    await c.query("DO $$ BEGIN RAISE NOTICE 'hello'; END $$");
    await c.query("LISTEN news; NOTIFY news, 'fresh'");
    await c.end();
  },
  async 'pg-prepared'(pg, r) {
    const c = await pgClient(pg, r.port);
    const named = { name: 'account-by-id', text: 'SELECT id, owner FROM accounts WHERE id = $1' };
    await c.query({ ...named, values: [1] });
    r.mark('parsed');
    await c.query({ ...named, values: [2] });
    await c.query({ ...named, values: [3] });
    await c.query('SELECT owner FROM accounts WHERE balance > $1 AND owner <> $2', [10, SECRET]);
    await swallow(c.query('SELEC id FROM accounts WHERE id = $1', [1]));
    await swallow(c.query('SELECT 10 / $1::int', [0]));
    await c.query({ ...named, values: [1] });
    await c.end();
  },
  async 'pg-errors'(pg, r) {
    const c = await pgClient(pg, r.port);
    await swallow(c.query('SELECT * FROM missing_table'));
    await swallow(c.query(`INSERT INTO accounts (id, owner, balance) VALUES (1, '${SECRET}', 0)`));
    await c.query('SELECT count(*) FROM accounts');
    await c.end();
  },
  async 'pg-transaction'(pg, r) {
    const c = await pgClient(pg, r.port);
    await c.query('BEGIN');
    await c.query("INSERT INTO accounts (owner, balance) VALUES ('dave', 70)");
    await c.query("SELECT balance FROM accounts WHERE owner = 'dave' FOR UPDATE");
    await c.query('COMMIT');
    await c.query('BEGIN');
    await c.query("DELETE FROM accounts WHERE owner = 'dave'");
    await c.query('ROLLBACK');
    await c.end();
  },
  async 'pg-big-result'(pg, r) {
    const c = await pgClient(pg, r.port);
    await c.query("SELECT g, 'row-' || g AS label FROM generate_series(1, 2000) g");
    await c.end();
  },
  async 'raw-pipelined'(pg, r) {
    const s = net.connect(r.port, '127.0.0.1');
    s.setNoDelay(true);
    let got = Buffer.alloc(0);
    s.on('data', (d) => { got = Buffer.concat([got, d]); });
    const readyCount = (): number => {
      let n = 0;
      for (let p = 0; p + 5 <= got.length; p += 1 + got.readInt32BE(p + 1)) if (got[p] === 0x5a) n++;
      return n;
    };
    const waitReady = async (n: number) => {
      while (readyCount() < n) await sleep(5);
    };
    await new Promise((res) => s.once('connect', res));
    s.write(front.startup({ user: 'raw', database: pg.database }));
    await waitReady(1);
    // One batch, one Sync: the second Bind fails (22P02), so the third Execute is skipped.
    s.write(Buffer.concat([
      front.parse('add-one', 'SELECT $1::int + 1 AS next'),
      front.bind('', 'add-one', ['1']),
      front.describe('P', ''),
      front.execute(''),
      front.bind('', 'add-one', ['x']),
      front.execute(''),
      front.bind('', 'add-one', ['3']),
      front.execute(''),
      front.sync(),
    ]));
    await waitReady(2);
    // A batch that succeeds whole: two executions of the statement, a portal read in two steps (PortalSuspended), Close.
    s.write(Buffer.concat([
      front.bind('', 'add-one', ['41']),
      front.execute(''),
      front.parse('', 'SELECT g FROM generate_series(1, 5) g'),
      front.bind('cursor-1', '', []),
      front.execute('cursor-1', 3),
      front.execute('cursor-1', 3),
      front.close('S', 'add-one'),
      front.sync(),
    ]));
    await waitReady(3);
    s.end(front.terminate());
    await new Promise((res) => s.on('close', res));
  },
  async 'raw-cancel'(pg, r) {
    // A cancel connection with a key no backend has: the server closes it without an answer.
    const s = net.connect(r.port, '127.0.0.1');
    await new Promise((res) => s.once('connect', res));
    s.write(front.cancel(4242, 31337));
    s.resume();
    await new Promise((res) => s.on('close', res));
    void pg;
  },
  async 'psql-copy'(pg, r) {
    const env = { ...process.env, PGPASSWORD: pg.password, PGHOST: '127.0.0.1', PGPORT: String(r.port), PGUSER: pg.user, PGDATABASE: pg.database };
    const child = execFile('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1',
      '-c', '\\copy accounts (owner, balance) FROM STDIN',
      '-c', "COPY (SELECT g, md5(g::text) FROM generate_series(1, 500) g) TO STDOUT",
    ], { env, maxBuffer: 16 * 1024 * 1024 });
    const done = new Promise<void>((res, rej) => child.on('exit', (code) => (code === 0 ? res() : rej(new Error(`psql exited ${code}`)))));
    child.stdin!.end('erin\t10\nfrank\t20\ngrace\t30\n');
    await done;
  },
  /** The pipeline benchmark's traffic (bench/fixtures/postgres/postgres): simple and prepared calls, one at a time. */
  async 'bench-pg'(pg, r) {
    const c = await pgClient(pg, r.port);
    for (let i = 0; i < BENCH_CALLS / 2; i++) {
      const id = 1 + (i % 3);
      if (i % 5 === 4) await c.query(`INSERT INTO audit (account, note) VALUES (${id}, 'bench ${i}')`);
      else await c.query(`SELECT id, owner, balance FROM accounts WHERE id = ${id}`);
      await c.query({ name: 'account-by-id', text: 'SELECT id, owner FROM accounts WHERE id = $1', values: [id] });
    }
    await c.end();
  },
  async 'pg-ssl'(pg, r) {
    const c = new Client({ host: '127.0.0.1', port: r.port, user: pg.user, password: pg.password, database: pg.database, ssl: { rejectUnauthorized: false } });
    await c.connect();
    await c.query('SELECT 1');
    await c.end();
  },
};

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  const names = wanted.length > 0 ? wanted : Object.keys(CAPTURE_FNS);
  const pki = await makeTestPki();
  const plain = await startPostgres({ trustUsers: ['raw'] });
  const tls = await startPostgres({ tls: { cert: pki.serverCert, key: pki.serverKey } });
  try {
    for (const pg of [plain, tls]) {
      await pg.psql("CREATE TABLE accounts (id serial PRIMARY KEY, owner text NOT NULL, balance int NOT NULL); INSERT INTO accounts (owner, balance) VALUES ('alice', 120), ('bob', 300), ('zoe', 5); CREATE TABLE audit (account int, note text)");
    }
    for (const name of names) {
      const fn = CAPTURE_FNS[name];
      if (fn === undefined) throw new Error(`unknown capture ${name}`);
      const pg = name === 'pg-ssl' ? tls : plain;
      const r = await recordingProxy(pg.port);
      await fn(pg, r);
      await r.save(name);
      if (name === 'bench-pg') writeBenchFixture();
      console.log(`recorded ${name}`);
    }
  } finally {
    await plain.stop();
    await tls.stop();
    pki.cleanup();
  }
  void run;
}

if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
