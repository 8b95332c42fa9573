// mysql2 client for test/e2e/mysql.ebpf.test.ts. Args: port user password
// database secret, and MYSQL_CA in the environment for TLS (verified against that CA). Prints {"pid"} and waits for a stdin line (the agent is
// then running), connects (so the agent sees the handshake), runs the calls
// the test expects in this order, prints {"localPort", ...results} and exits.
'use strict';
const mysql = require('mysql2/promise');

const [port, user, password, database, secret] = process.argv.slice(2);

console.log(JSON.stringify({ pid: process.pid }));
process.stdin.once('data', async () => {
  const ssl = process.env.MYSQL_CA ? { ca: require('node:fs').readFileSync(process.env.MYSQL_CA) } : undefined;
  const c = await mysql.createConnection({ host: '127.0.0.1', port: Number(port), user, password, database, ssl });
  const results = {};
  results.localPort = c.connection.stream.localPort;
  // 1. A text query with a secret literal: 1 row.
  const [secretRows] = await c.query(`SELECT id, name FROM accounts WHERE name = '${secret}'`);
  results.secretRows = secretRows.length;
  // 2-4. One prepared statement executed three times (mysql2 prepares once).
  results.prepared = [];
  for (const id of [1, 2, 3]) {
    const [rows] = await c.execute('SELECT id, name, balance FROM accounts WHERE id = ?', [id]);
    results.prepared.push(rows.length);
  }
  // 5. An error.
  results.error = await c.query('SELECT * FROM nosuch').then(() => 0, (e) => e.errno);
  // 6-8. A transaction.
  await c.beginTransaction();
  await c.query("INSERT INTO accounts (name, balance) VALUES ('dave', 4)");
  await c.commit();
  // 9. 10 000 rows, then 10. a small query (the reads of the big answer pass the capture bound: the next command ends its record).
  const [many] = await c.query('SELECT seq, CONCAT(\'row-\', seq) AS label FROM seq_1_to_10000');
  results.many = many.length;
  const [[count]] = await c.query('SELECT COUNT(*) AS n FROM accounts');
  results.count = count.n;
  await c.end();
  console.log(JSON.stringify(results));
  process.stdin.destroy();
});
