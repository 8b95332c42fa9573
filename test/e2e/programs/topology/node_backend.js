// Topology Node backend (one event loop): GET /node/<id> calls the Python
// backend's /leaf/<id> (keep-alive), passing X-Test-Id along, then answers.
'use strict';
const http = require('node:http');

const leafPort = Number(process.argv[2]);
const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

const server = http.createServer((req, res) => {
  const id = (req.url || '').split('/').pop();
  const testId = req.headers['x-test-id'] || '';
  http
    .get({ host: '127.0.0.1', port: leafPort, path: `/leaf/${id}`, agent, headers: { 'x-test-id': testId } }, (up) => {
      up.resume();
      up.on('end', () => res.writeHead(up.statusCode === 200 ? 200 : 502, { 'content-type': 'text/plain' }).end(`node ${id}`));
    })
    .on('error', () => res.writeHead(502).end());
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ pid: process.pid, port: server.address().port }));
});
