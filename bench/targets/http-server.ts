// The Node target of bench/overhead.ts: a plain `http` server with a ~100 B
// response on /small and a 16 KiB one on /large (Content-Length, keep-alive).
// Prints one JSON line {"port": N} once it listens; exits on SIGTERM/SIGINT
// (after the OpenTelemetry SDK, when preloaded, has flushed: see otel-sdk.ts).
//
//   node [--require dist/bench/targets/otel-sdk.js] dist/bench/targets/http-server.js [--port N]

import * as http from 'node:http';

const SMALL = Buffer.from(JSON.stringify({ ok: true, service: 'bench', items: [1, 2, 3], note: 'a small response of about 100 bytes' }));
const LARGE = Buffer.alloc(16 * 1024, 'x');

const portArg = process.argv.indexOf('--port');
const port = portArg > 0 ? Number(process.argv[portArg + 1]) : 0;

const server = http.createServer((req, res) => {
  const body = req.url === '/large' ? LARGE : req.url === '/small' ? SMALL : undefined;
  if (!body) {
    res.writeHead(404, { 'content-length': '0' }).end();
    return;
  }
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(body.length) });
  res.end(body);
});
server.keepAliveTimeout = 60_000;

server.listen(port, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: (server.address() as { port: number }).port, pid: process.pid }) + '\n');
});

// otel-sdk.ts installs its own handlers (flush, then exit); without it, exit now.
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  if (process.listenerCount(sig) === 0) process.on(sig, () => process.exit(0));
}
