// node-postgres (`pg`) client for the PostgreSQL end-to-end test. Prints
// {"pid"} once started, waits for a stdin line, then runs its calls on one
// connection to $PGHOST:$PGPORT (TLS when PG_TLS=1, the certificate not
// checked: a throwaway one) and prints what each returned, then exits.
'use strict';
const { Client } = require('pg');

const SECRET = process.env.PG_SECRET || 'sk_live_4242';

async function main() {
  const client = new Client({
    host: process.env.PGHOST,
    port: Number(process.env.PGPORT),
    user: process.env.PGUSER,
    password: process.env.PGPASSWORD,
    database: process.env.PGDATABASE,
    ...(process.env.PG_TLS === '1' ? { ssl: { rejectUnauthorized: false } } : {}),
  });
  await client.connect();
  const out = { clientPort: client.connection.stream.localPort, results: [] };
  const note = (label, r) => out.results.push({ label, command: r.command, rowCount: r.rowCount, rows: r.rows.length });
  note('select', await client.query(`SELECT id, owner, balance FROM accounts WHERE balance > 100 AND owner <> '${SECRET}' ORDER BY id`));
  for (const id of [1, 2, 3]) {
    note(`prepared-${id}`, await client.query({ name: 'account-by-id', text: 'SELECT id, owner FROM accounts WHERE id = $1', values: [id] }));
  }
  try {
    await client.query('SELECT * FROM missing_table');
    out.results.push({ label: 'error', code: null });
  } catch (e) {
    out.results.push({ label: 'error', code: e.code });
  }
  note('begin', await client.query('BEGIN'));
  note('update', await client.query('UPDATE accounts SET balance = balance - 1 WHERE id = $1', [1]));
  note('commit', await client.query('COMMIT'));
  note('big', await client.query('SELECT g FROM generate_series(1, 10000) g'));
  await client.end();
  console.log(JSON.stringify(out));
}

console.log(JSON.stringify({ pid: process.pid }));
process.stdin.once('data', () => {
  process.stdin.destroy();
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
});
