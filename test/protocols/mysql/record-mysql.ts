// Records real MySQL-protocol connections for the goldens
// (test/fixtures/mysql/): a MariaDB server started by test/helpers/mariadb-server.ts,
// driven by mysql2 (in this process) and the `mariadb` CLI, captured by the
// agent's own `ebpf-otel capture --json` (real syscalls, real chunking, the
// 16 KiB capture bound and its gaps). Each scenario is one connection; its
// client end (this process or the CLI) and, for some, its server end
// (mariadbd) become cases: test/fixtures/mysql/<case>/events.jsonl. Run by
// hand (root, eBPF, the bench lock), review, commit:
//
//   make ts && flock /tmp/bench.lock node dist/test/protocols/mysql/record-mysql.js [scenario...]
//
// (mysql2-query always runs first: it creates the tables the others use).
//
// then `node dist/test/protocols/mysql/generate-expected.js` writes
// expected.draft.json beside each case, to be checked by reading (README.md).

import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { startMariaDb, type MariaDbServer } from '../../helpers/mariadb-server';
import { SECRET } from './secret';

const ROOT = path.resolve(__dirname, '../../../..');
const OUT = path.join(ROOT, 'test/fixtures/mysql');
const BIN = path.join(ROOT, 'bin/ebpf-otel');

// eslint-disable-next-line @typescript-eslint/no-require-imports
const mysql = require('mysql2/promise') as typeof import('mysql2/promise');


interface CaptureEvent {
  type: string;
  ts: string;
  pid: number;
  conn: number;
  dir: 'egress' | 'ingress';
  size: number;
  data: string;
  role: 'client' | 'server' | 'unknown';
  comm: string;
  local: string;
  remote: string;
}

interface Scenario {
  readonly name: string;
  /** Also write the server's (mariadbd's) view as `<name>-server`. */
  readonly server?: boolean;
  run(db: MariaDbServer): Promise<number | 'cli'>;
}

async function connect(db: MariaDbServer, extra: Record<string, unknown> = {}) {
  return mysql.createConnection({ host: '127.0.0.1', port: db.port, user: db.user, password: db.password, database: db.database, ...extra });
}

function localPort(c: unknown): number {
  return (c as { connection: { stream: { localPort: number } } }).connection.stream.localPort;
}

const scenarios: Scenario[] = [
  {
    name: 'mysql2-query',
    server: true,
    async run(db) {
      const c = await connect(db);
      const port = localPort(c);
      await c.query('CREATE TABLE accounts (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(64), balance INT)');
      await c.query(`INSERT INTO accounts (name, balance) VALUES ('alice', 10), ('bob', 20), ('${SECRET}', 30)`);
      await c.query(`SELECT id, name FROM accounts WHERE name = '${SECRET}'`);
      await c.query('SELECT * FROM accounts');
      await c.query('UPDATE accounts SET balance = balance + 1 WHERE id < 3');
      await c.query('SELECT * FROM nosuch').catch(() => undefined);
      await c.query(`SELEC '${SECRET}'`).catch(() => undefined);
      await c.query(`INSERT INTO accounts (id, name) VALUES (1, '${SECRET}')`).catch(() => undefined);
      await c.query('USE other');
      await c.query('SELECT DATABASE()');
      await c.end();
      return port;
    },
  },
  {
    name: 'mysql2-prepared',
    server: true,
    async run(db) {
      const c = await connect(db);
      const port = localPort(c);
      for (let i = 1; i <= 3; i++) await c.execute('SELECT id, name, balance FROM accounts WHERE id = ?', [i]);
      await c.execute('UPDATE accounts SET balance = ? WHERE name = ?', [5, SECRET]);
      await c.execute('SELECT * FROM nosuch WHERE id = ?', [1]).catch(() => undefined);
      await c.execute('INSERT INTO accounts (id, name) VALUES (?, ?)', [1, 'dup']).catch(() => undefined);
      await c.unprepare('SELECT id, name, balance FROM accounts WHERE id = ?');
      await c.ping();
      await c.end();
      return port;
    },
  },
  {
    name: 'mysql2-transaction',
    async run(db) {
      const c = await connect(db);
      const port = localPort(c);
      await c.beginTransaction();
      await c.query("INSERT INTO accounts (name, balance) VALUES ('carol', 1)");
      await c.query('UPDATE accounts SET balance = balance - 1 WHERE name = ?', ['carol']);
      await c.commit();
      await c.beginTransaction();
      await c.query('DELETE FROM accounts');
      await c.rollback();
      await c.end();
      return port;
    },
  },
  {
    name: 'mysql2-multi',
    async run(db) {
      const c = await connect(db, { multipleStatements: true });
      const port = localPort(c);
      await c.query('SELECT id FROM accounts; SELECT name FROM accounts WHERE id = 2; UPDATE accounts SET balance = 0 WHERE id = 3');
      await c.query('SELECT 1; SELECT * FROM nosuch; SELECT 2').catch(() => undefined);
      await c.end();
      return port;
    },
  },
  {
    name: 'mysql2-rows',
    server: true,
    async run(db) {
      const c = await connect(db);
      const port = localPort(c);
      await c.query('SELECT seq, CONCAT(\'row-\', seq) AS label FROM seq_1_to_10000');
      await c.query('SELECT COUNT(*) FROM accounts');
      await c.end();
      return port;
    },
  },
  {
    name: 'mysql2-large',
    server: true,
    async run(db) {
      const c = await connect(db);
      const port = localPort(c);
      // A 17 MB value: the row's payload is split into 0xffffff-byte packets.
      await c.query('SELECT REPEAT(\'x\', 17000000) AS big');
      await c.query('SELECT 1 AS one');
      await c.end();
      return port;
    },
  },
  {
    // Not a golden: the pipeline benchmark's traffic (bench/fixtures/mysql/mysql/), written by writeBench().
    name: 'bench',
    async run(db) {
      const ports: number[] = [];
      db.sql('CREATE TABLE shop.events (id INT PRIMARY KEY AUTO_INCREMENT, account INT, note VARCHAR(64))');
      for (let k = 0; k < BENCH_CONNECTIONS; k++) {
        const c = await connect(db);
        ports.push(localPort(c));
        for (let i = 0; i < BENCH_CALLS / 5; i++) {
          await c.query(`SELECT id, name, balance FROM accounts WHERE id = ${(i % 3) + 1}`);
          await c.query(`SELECT name FROM accounts WHERE name = 'user-${k}-${i}'`);
          await c.execute('SELECT id, name, balance FROM accounts WHERE id = ?', [(i % 3) + 1]);
          await c.query(`INSERT INTO events (account, note) VALUES (${(i % 3) + 1}, 'note ${k}-${i}')`);
          await c.query(`UPDATE accounts SET balance = balance + 1 WHERE id = ${(i % 3) + 1}`);
        }
        await c.end();
      }
      benchPorts.push(...ports);
      return ports[0]!;
    },
  },
  {
    name: 'mariadb-cli',
    async run(db) {
      const r = spawnSync(
        'mariadb',
        ['--no-defaults', '-h', '127.0.0.1', '-P', String(db.port), '-u', db.user, db.database, '-e', "SELECT name FROM accounts WHERE id = 2; SHOW TABLES; SELECT * FROM nosuch"],
        { env: { ...process.env, MYSQL_PWD: db.password }, encoding: 'utf8' },
      );
      if (r.status === 0) throw new Error('the CLI was expected to fail on the last statement');
      return 'cli';
    },
  },
];

const BENCH_CONNECTIONS = 4;
/** Calls per benchmark connection: each one record (the one prepare makes none). */
const BENCH_CALLS = 250;
const benchPorts: number[] = [];

/**
 * bench/fixtures/mysql/mysql/: the benchmark connections as the client read
 * and wrote them, in bench/pipeline.ts's recorded format (one line per
 * syscall, `side` ingress = client to server) and case.json (records per connection).
 */
function writeBench(byConn: Map<string, CaptureEvent[]>): void {
  const dir = path.join(ROOT, 'bench/fixtures/mysql/mysql');
  fs.mkdirSync(dir, { recursive: true });
  const lines: string[] = [];
  benchPorts.forEach((port, i) => {
    const evs = [...byConn.values()].find((e) => e[0]!.role === 'client' && endpointPort(e[0]!.local) === port);
    if (evs === undefined) throw new Error(`bench connection ${port} not captured`);
    for (const e of evs) {
      if (e.type !== 'data') continue;
      if (Buffer.from(e.data, 'base64').length !== e.size) throw new Error('a bench syscall passed the capture bound');
      lines.push(JSON.stringify({ conn: i, side: e.dir === 'egress' ? 'ingress' : 'egress', data: e.data }));
    }
  });
  fs.writeFileSync(path.join(dir, 'events.jsonl'), `${lines.join('\n')}\n`);
  fs.writeFileSync(path.join(dir, 'case.json'), `${JSON.stringify({ connections: benchPorts.map(() => ({ streams: BENCH_CALLS })) })}\n`);
}

function endpointPort(s: string): number {
  return Number(s.slice(s.lastIndexOf(':') + 1));
}

function toCase(events: CaptureEvent[], role: 'client' | 'server'): string[] {
  const first = events[0]!;
  const local = first.local.slice(0, first.local.lastIndexOf(':')).replace(/^\[|\]$/g, '');
  const remote = first.remote.slice(0, first.remote.lastIndexOf(':')).replace(/^\[|\]$/g, '');
  const t0 = BigInt(first.ts);
  const rel = (ts: string) => Number(BigInt(ts) - t0) + 1_000_000;
  const conn = {
    connId: 1,
    tgid: 100,
    role,
    sawStart: true,
    encrypted: false,
    transport: 'tcp',
    localAddr: local,
    localPort: endpointPort(first.local),
    remoteAddr: remote,
    remotePort: endpointPort(first.remote),
  };
  const lines = [JSON.stringify({ session: { conn } })];
  const pos = { egress: 0, ingress: 0 };
  for (const e of events) {
    if (e.type === 'close') {
      lines.push(JSON.stringify({ close: rel(e.ts) }));
      continue;
    }
    if (e.type !== 'data') continue;
    const data = Buffer.from(e.data, 'base64');
    const t = rel(e.ts);
    lines.push(JSON.stringify({ side: e.dir, pos: pos[e.dir], startNs: t, endNs: t, syscallStart: true, data: e.data }));
    if (data.length < e.size) lines.push(JSON.stringify({ gap: { side: e.dir, pos: pos[e.dir] + data.length, bytes: e.size - data.length, atNs: t } }));
    pos[e.dir] += e.size;
  }
  return lines;
}

async function main(): Promise<void> {
  const only = process.argv.slice(2);
  const db = await startMariaDb();
  try {
    // Setup over the Unix socket (not captured).
    const agent = spawn(BIN, ['capture', '--json', '--pid', String(process.pid), '--exe', 'mariadb', '--port', String(db.port), '--capture-bytes', '16384'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: string[] = [];
    readline.createInterface({ input: agent.stdout! }).on('line', (l) => lines.push(l));
    let stderr = '';
    await new Promise<void>((resolve, reject) => {
      agent.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (stderr.includes('ready')) resolve();
      });
      agent.once('exit', (code) => reject(new Error(`capture exited ${code}: ${stderr}`)));
    });
    const ports: Record<string, number | 'cli'> = {};
    for (const s of scenarios) {
      if (only.length > 0 && !only.includes(s.name) && s.name !== 'mysql2-query') continue;
      ports[s.name] = await s.run(db);
      await new Promise((r) => setTimeout(r, 300));
    }
    await new Promise((r) => setTimeout(r, 1000));
    agent.kill('SIGINT');
    await new Promise((r) => agent.once('exit', r));
    const events = lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as CaptureEvent);
    const byConn = new Map<string, CaptureEvent[]>();
    for (const e of events) {
      if (!['open', 'data', 'close'].includes(e.type)) continue;
      if (endpointPort(e.local) !== db.port && endpointPort(e.remote) !== db.port) continue;
      const k = `${e.pid}/${e.conn}`;
      (byConn.get(k) ?? byConn.set(k, []).get(k)!).push(e);
    }
    if (ports['bench'] !== undefined) writeBench(byConn);
    for (const s of scenarios) {
      const port = ports[s.name];
      if (port === undefined || s.name === 'bench') continue;
      for (const [, evs] of byConn) {
        const f = evs[0]!;
        const isClient = port === 'cli' ? f.comm === 'mariadb' && f.role === 'client' : f.role === 'client' && endpointPort(f.local) === port;
        const isServer = port !== 'cli' && s.server === true && f.role === 'server' && endpointPort(f.remote) === port;
        if (!isClient && !isServer) continue;
        if (!evs.some((e) => e.type === 'data')) continue;
        const name = isClient ? s.name : `${s.name}-server`;
        const dir = path.join(OUT, name);
        fs.mkdirSync(dir, { recursive: true });
        fs.writeFileSync(path.join(dir, 'events.jsonl'), `${toCase(evs, isClient ? 'client' : 'server').join('\n')}\n`);
        process.stderr.write(`${name}: ${f.comm} pid ${f.pid}, ${evs.length} events\n`);
      }
    }
  } finally {
    await db.stop();
  }
}

main().catch((e) => {
  process.stderr.write(`${String(e)}\n`);
  process.exitCode = 1;
});
