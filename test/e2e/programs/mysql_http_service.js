// An HTTP service that queries MariaDB per request (mysql2, one pooled
// connection opened after the agent started), for the trace-graph check of
// test/e2e/mysql.ebpf.test.ts. Args: port user password database. Prints
// {"pid","port"} once listening; GET /accounts/<id> answers the row as JSON.
'use strict';
const http = require('node:http');
const mysql = require('mysql2/promise');

const [dbPort, user, password, database] = process.argv.slice(2);
let pool;

const server = http.createServer(async (req, res) => {
  pool ??= mysql.createPool({ host: '127.0.0.1', port: Number(dbPort), user, password, database, connectionLimit: 1 });
  const id = Number(req.url.split('/').pop());
  const [rows] = await pool.query('SELECT id, name FROM accounts WHERE id = ?', [id]);
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(rows));
});
server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ pid: process.pid, port: server.address().port })));
process.stdin.on('data', () => {});
process.stdin.on('end', () => process.exit(0));
