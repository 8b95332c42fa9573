// An HTTP service (one event loop) that calls Redis while serving each
// request: GET /item/<id> does GET item:<id>, then INCR hits:<id>, then answers.
//   node redis_http_node.js REDIS_PORT
// Prints {"pid", "port"} once it listens and its Redis connection is up.
'use strict';
const http = require('node:http');
const { createClient } = require('redis');

async function main() {
  const redis = createClient({ socket: { host: '127.0.0.1', port: Number(process.argv[2]) }, RESP: 2 });
  redis.on('error', () => {});
  await redis.connect();
  const server = http.createServer(async (req, res) => {
    const id = (req.url || '').split('/').pop();
    try {
      const v = await redis.get(`item:${id}`);
      const n = await redis.incr(`hits:${id}`);
      res.writeHead(200, { 'content-type': 'text/plain' }).end(`${id} ${v} ${n}`);
    } catch {
      res.writeHead(502).end();
    }
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ pid: process.pid, port: server.address().port })));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
