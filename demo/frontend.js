// Demo frontend: a Node http server that calls the backend for each request.
'use strict';
const http = require('node:http');

const port = Number(process.env.PORT || 18080);
const backend = new URL(process.env.BACKEND_URL || 'http://127.0.0.1:18081');
const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

const server = http.createServer((req, res) => {
  const m = /^\/items\/(\d+)$/.exec(req.url || '');
  if (!m) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    return;
  }
  const upstream = http.get(
    { host: backend.hostname, port: backend.port, path: `/api/items/${m[1]}`, agent },
    (up) => {
      const chunks = [];
      up.on('data', (c) => chunks.push(c));
      up.on('end', () => {
        res.writeHead(up.statusCode || 502, { 'content-type': 'application/json' });
        res.end(Buffer.concat(chunks));
      });
    },
  );
  upstream.on('error', () => res.writeHead(502).end());
});

server.listen(port, '127.0.0.1', () => {
  console.log(`frontend listening on 127.0.0.1:${server.address().port}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
