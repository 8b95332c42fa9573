// Node https (OpenSSL linked into the node binary) for the TLS tests, two
// roles, each its own process:
//   node https_node.js server CERT KEY
//     answers GET /items with a fixed JSON body (404 otherwise); prints
//     {"pid","port"} once listening and serves until killed.
//   node https_node.js client URL N CAFILE
//     prints {"pid"}, waits for a line on stdin (the agent is attached by
//     then), makes N keep-alive GET requests to URL over one connection
//     trusting CAFILE, prints {"statuses","bodies"} and exits.
'use strict';
const fs = require('node:fs');
const https = require('node:https');

const ITEMS = '{"items":["a","b","c"]}';
const [role, ...args] = process.argv.slice(2);

if (role === 'server') {
  const [cert, key] = args;
  const server = https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key), keepAliveTimeout: 30000 }, (req, res) => {
    if (req.method === 'GET' && req.url === '/items') res.writeHead(200, { 'content-type': 'application/json' }).end(ITEMS);
    else res.writeHead(404).end('not found');
  });
  server.listen(0, '127.0.0.1', () => {
    console.log(JSON.stringify({ pid: process.pid, port: server.address().port }));
  });
} else if (role === 'client') {
  const [url, n, caFile] = args;
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: fs.readFileSync(caFile) });
  const get = () =>
    new Promise((resolve, reject) => {
      const req = https.get(url, { agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode, body }));
      });
      req.on('error', reject);
    });
  console.log(JSON.stringify({ pid: process.pid }));
  process.stdin.once('data', async () => {
    const statuses = [];
    const bodies = [];
    for (let i = 0; i < Number(n); i++) {
      const r = await get();
      statuses.push(r.status);
      bodies.push(r.body);
    }
    agent.destroy();
    console.log(JSON.stringify({ statuses, bodies }));
    process.stdin.destroy();
  });
} else {
  console.error('usage: https_node.js server CERT KEY | client URL N CAFILE');
  process.exit(2);
}
