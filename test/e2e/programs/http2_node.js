// A Node `http2` server for the HTTP/2 tests, hit by curl and nghttp:
//   node http2_node.js server [CERT KEY]
//     http2.createServer (cleartext, prior knowledge) on 127.0.0.1:0, or
//     http2.createSecureServer (TLS, ALPN h2 only; Node's OpenSSL) with CERT
//     and KEY; prints {"pid","port"} and serves until killed. Routes (ROUTES
//     below, exact bodies):
//       GET /items        200 application/json ITEMS
//       GET /items/42     200 application/json {"id":42}
//       POST /echo        200, the request body back
//       GET /fail         503 "unavailable\n"
//       GET /big          200, BIG_BYTES bytes of "a" (one DATA frame)
//       anything else     404 "not found\n"
//   node http2_node.js client BASE_URL [CAFILE]
//     prints {"pid"}, waits for a line on stdin (the agent is attached by
//     then), makes CLIENT_CALLS one after the other on one http2 session
//     (user-agent CLIENT_UA), prints {"statuses","bodies"} and exits.
'use strict';
const fs = require('node:fs');
const http2 = require('node:http2');

const ITEMS = '{"items":["a","b","c"]}';
// Under the 16384-byte default frame size and the agent's 16 KiB capture per
// syscall: the body is one DATA frame, captured whole.
const BIG_BYTES = 12000;

const ROUTES = {
  'GET /items': () => [200, 'application/json', ITEMS],
  'GET /items/42': () => [200, 'application/json', '{"id":42}'],
  'POST /echo': (body) => [200, 'application/octet-stream', body],
  'GET /fail': () => [503, 'text/plain', 'unavailable\n'],
  'GET /big': () => [200, 'text/plain', Buffer.alloc(BIG_BYTES, 0x61)],
};

function serve(cert, key) {
  const server = cert ? http2.createSecureServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }) : http2.createServer();
  server.on('stream', (stream, headers) => {
    const chunks = [];
    stream.on('data', (d) => chunks.push(d));
    stream.on('end', () => {
      const route = ROUTES[`${headers[':method']} ${headers[':path']}`];
      const [status, type, body] = route ? route(Buffer.concat(chunks)) : [404, 'text/plain', 'not found\n'];
      stream.respond({ ':status': status, 'content-type': type });
      stream.end(body);
    });
  });
  server.listen(0, '127.0.0.1', () => {
    console.log(JSON.stringify({ pid: process.pid, port: server.address().port }));
  });
}

const CLIENT_UA = 'h2e2e-node-client';
// [method, path, request body]
const CLIENT_CALLS = [
  ['GET', '/items'],
  ['POST', '/echo', 'e'.repeat(1000)],
  ['GET', '/fail'],
  ['GET', '/missing'],
];

function runClient(base, caFile) {
  console.log(JSON.stringify({ pid: process.pid }));
  process.stdin.once('data', async () => {
    const session = http2.connect(base, caFile ? { ca: fs.readFileSync(caFile) } : {});
    const statuses = [];
    const bodies = [];
    for (const [method, path, body] of CLIENT_CALLS) {
      const r = await new Promise((resolve, reject) => {
        const req = session.request({ ':method': method, ':path': path, 'user-agent': CLIENT_UA });
        let status = 0;
        const chunks = [];
        req.on('response', (h) => (status = h[':status']));
        req.on('data', (d) => chunks.push(d));
        req.on('end', () => resolve({ status, body: Buffer.concat(chunks).toString() }));
        req.on('error', reject);
        req.end(body);
      });
      statuses.push(r.status);
      bodies.push(r.body);
    }
    await new Promise((resolve) => session.close(resolve));
    console.log(JSON.stringify({ statuses, bodies }));
    process.stdin.destroy();
  });
}

const [role, ...args] = process.argv.slice(2);
if (role === 'server') serve(...args);
else if (role === 'client') runClient(...args);
else {
  console.error('usage: http2_node.js server [CERT KEY] | client BASE_URL [CAFILE]');
  process.exit(2);
}
