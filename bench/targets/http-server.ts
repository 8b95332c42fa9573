// The Node target of the benchmarks: an `http` server with a ~100 B response
// on /small and a 16 KiB one on /large (Content-Length, keep-alive); with
// --cert and --key (PEM files), the same routes over `https` (OpenSSL, linked
// into the node binary: what the tls feature probes). Prints one JSON line
// {"port": N} once it listens; exits on SIGTERM/SIGINT (after the
// OpenTelemetry SDK, when preloaded, has flushed: see otel-sdk.ts).
//
//   node [--require dist/bench/targets/otel-sdk.js] dist/bench/targets/http-server.js [--port N] [--cert F --key F]

import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';

const SMALL = Buffer.from(JSON.stringify({ ok: true, service: 'bench', items: [1, 2, 3], note: 'a small response of about 100 bytes' }));
const LARGE = Buffer.alloc(16 * 1024, 'x');

const arg = (name: string) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const port = Number(arg('--port') ?? 0);
const cert = arg('--cert');
const key = arg('--key');
if ((cert === undefined) !== (key === undefined)) throw new Error('--cert and --key go together');

const handler: http.RequestListener = (req, res) => {
  const body = req.url === '/large' ? LARGE : req.url === '/small' ? SMALL : undefined;
  if (!body) {
    res.writeHead(404, { 'content-length': '0' }).end();
    return;
  }
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(body.length) });
  res.end(body);
};
const server = cert !== undefined && key !== undefined
  ? https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, handler)
  : http.createServer(handler);
server.keepAliveTimeout = 60_000;

server.listen(port, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: (server.address() as { port: number }).port, pid: process.pid }) + '\n');
});

// otel-sdk.ts installs its own handlers (flush, then exit); without it, exit now.
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  if (process.listenerCount(sig) === 0) process.on(sig, () => process.exit(0));
}
