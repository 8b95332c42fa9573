// Node frontend for the preload's e2e test (one event loop): GET /r/<id>
// calls the backend's /b/<id> (keep-alive agent, 16 sockets, so calls queue
// for sockets other requests free), passing X-Test-Id along, then answers.
// Ids 1 and 2 modulo 3 reach the call through a timer or a promise chain
// first. A call that fails (500, or the connection reset) is retried once
// as /b/<id>/retry. Prints {"pid","port","preload"} once listening.
'use strict';
const http = require('node:http');

const backendPort = Number(process.argv[2]);
const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function call(path, testId) {
  return new Promise((resolve, reject) => {
    const out = http.request({ host: '127.0.0.1', port: backendPort, path, agent, headers: { 'x-test-id': testId } }, (up) => {
      up.resume();
      up.on('end', () => resolve(up.statusCode));
    });
    out.on('error', reject);
    out.end();
  });
}

const server = http.createServer(async (req, res) => {
  const id = (req.url || '').split('/').pop();
  const n = Number(id.slice(1));
  try {
    if (n % 3 === 1) await sleep(1);
    else if (n % 3 === 2) await Promise.resolve().then(() => new Promise((r) => setImmediate(r)));
    const testId = req.headers['x-test-id'] || '';
    let status = await call(`/b/${id}`, testId).catch(() => 0);
    if (status !== 200) status = await call(`/b/${id}/retry`, testId);
    res.writeHead(status === 200 ? 200 : 502, { 'content-type': 'text/plain' }).end(`front ${id}`);
  } catch {
    res.writeHead(502).end();
  }
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const preload = globalThis[Symbol.for('ebpf-otel.node-preload')] === true;
  console.log(JSON.stringify({ pid: process.pid, port: server.address().port, preload }));
});
