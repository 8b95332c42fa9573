#!/usr/bin/env node
// Records the HTTP/2 and gRPC traffic the pipeline benchmark replays
// (bench/pipeline.ts, scenarios `http2` and `grpc`): real peers on loopback
// with a recording TCP proxy between them, so the bytes are what those peers
// send, HPACK dynamic tables included (Node's http2 and grpc-js both index
// header fields as nghttp2 does: a request's second use of a field is one
// byte, a new x-request-id evicts old entries).
//
//   http2  a Node `http2` h2c server answering small JSON, a Node `http2`
//          client: 8 streams in flight per connection, GETs over four paths
//          (some 404), POSTs of a small JSON body, a fresh x-request-id each.
//   grpc   a @grpc/grpc-js server (test.echo.Echo, test/e2e/programs/grpc/echo.proto)
//          and a grpc-js client: unary calls with a deadline, 8 in flight
//          per channel, one channel (one connection) at a time.
//   http2-serial, grpc-serial  the same, one stream in flight: every request
//          and every answer its own syscalls (the most events per record).
//
// Each case writes bench/fixtures/http2/<case>/events.jsonl, one line per read
// the proxy made: {"conn": i, "side": "ingress"|"egress", "data": base64}
// (ingress: client to server), and case.json: {"connections": [{"streams": n}]},
// the client-initiated streams (requests) each connection carried, i.e. the
// records one replay of it must yield.
// Run by hand, review, commit:  node bench/record-h2-traffic.mjs [case...]
import fs from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const OUT = path.join(HERE, 'fixtures', 'http2');
const require = createRequire(import.meta.url);

const CONNECTIONS = 4;
const STREAMS_PER_CONNECTION = 250;
const IN_FLIGHT = 8;
const SERIAL = 1;

/** Forwards connections to `target`, recording both directions of each. */
function startProxy(target) {
  const events = [];
  let next = 0;
  const proxy = net.createServer((c) => {
    const conn = next++;
    c.setNoDelay(true);
    const s = net.connect(target, '127.0.0.1');
    s.setNoDelay(true);
    const rec = (side, d) => events.push({ conn, side, data: d.toString('base64') });
    c.on('data', (d) => { rec('ingress', d); s.write(d); });
    s.on('data', (d) => { rec('egress', d); c.write(d); });
    c.on('end', () => s.end());
    s.on('end', () => c.end());
    c.on('error', () => s.destroy());
    s.on('error', () => c.destroy());
  });
  return new Promise((resolve) => proxy.listen(0, '127.0.0.1', () => resolve({ proxy, events })));
}

/** Runs `call(i)` for i in 0..n-1, `inFlight` at a time. */
async function pool(n, inFlight, call) {
  let i = 0;
  const worker = async () => {
    while (i < n) await call(i++);
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
}

const PATHS = ['/api/users/1842', '/api/orders?limit=20&page=3', '/api/cart/items', '/health', '/api/products/sku-77312/reviews'];

function jsonBody(i) {
  return JSON.stringify({ id: i, name: `item-${i}`, price: 19.99, tags: ['a', 'b'], ok: true });
}

async function http2Case(inFlight) {
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    const chunks = [];
    stream.on('data', (d) => chunks.push(d));
    stream.on('end', () => {
      const p = headers[':path'];
      const post = headers[':method'] === 'POST';
      const status = post ? 201 : p === '/api/cart/items' ? 404 : 200;
      const body = post ? '{"created":true}' : status === 404 ? '{"error":"not found"}' : jsonBody(Buffer.concat(chunks).length + p.length);
      stream.respond({ ':status': status, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      stream.end(body);
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { proxy, events } = await startProxy(server.address().port);
  const connections = [];
  for (let c = 0; c < CONNECTIONS; c++) {
    const session = http2.connect(`http://127.0.0.1:${proxy.address().port}`);
    let streams = 0;
    await pool(STREAMS_PER_CONNECTION, inFlight, (i) => new Promise((resolve, reject) => {
      const post = i % 5 === 4;
      const headers = {
        ':method': post ? 'POST' : 'GET',
        ':path': post ? '/api/cart/items' : PATHS[i % PATHS.length],
        'user-agent': 'bench-h2-client/1.0',
        accept: 'application/json',
        'accept-encoding': 'gzip',
        'x-request-id': randomUUID(),
      };
      const body = post ? JSON.stringify({ sku: `sku-${i}`, quantity: 2, note: 'deliver after 6pm' }) : undefined;
      if (post) headers['content-type'] = 'application/json';
      const req = session.request(headers, { endStream: !post });
      streams++;
      req.on('error', reject);
      req.on('data', () => {});
      req.on('close', resolve);
      if (post) req.end(body);
    }));
    await new Promise((r) => session.close(r));
    connections.push({ streams });
  }
  await new Promise((r) => setTimeout(r, 200));
  proxy.close();
  server.close();
  return { events, connections };
}

async function grpcCase(inFlight) {
  const grpc = require('@grpc/grpc-js');
  const protoLoader = require('@grpc/proto-loader');
  const def = protoLoader.loadSync(path.join(HERE, '../test/e2e/programs/grpc/echo.proto'), { keepCase: true, defaults: true });
  const Echo = grpc.loadPackageDefinition(def).test.echo.Echo;
  const server = new grpc.Server();
  server.addService(Echo.service, {
    Unary: (call, callback) => callback(null, { text: call.request.text, count: call.request.count }),
  });
  const port = await new Promise((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  const { proxy, events } = await startProxy(port);
  const connections = [];
  for (let c = 0; c < CONNECTIONS; c++) {
    // A pool of its own: each client is one channel, one connection.
    const client = new Echo(`127.0.0.1:${proxy.address().port}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
    let streams = 0;
    await pool(STREAMS_PER_CONNECTION, inFlight, (i) => new Promise((resolve, reject) => {
      streams++;
      const msg = { text: `order-${c}-${i} deliver after 6pm`, count: i };
      client.Unary(msg, { deadline: Date.now() + 5000 }, (err) => (err ? reject(err) : resolve()));
    }));
    client.close();
    connections.push({ streams });
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 200));
  proxy.close();
  server.forceShutdown();
  return { events, connections };
}

const CASES = {
  http2: () => http2Case(IN_FLIGHT),
  grpc: () => grpcCase(IN_FLIGHT),
  'http2-serial': () => http2Case(SERIAL),
  'grpc-serial': () => grpcCase(SERIAL),
};

const wanted = process.argv.slice(2);
for (const [name, runCase] of Object.entries(CASES)) {
  if (wanted.length > 0 && !wanted.includes(name)) continue;
  const { events, connections } = await runCase();
  const seen = new Set(events.map((e) => e.conn));
  if (seen.size !== connections.length) throw new Error(`${name}: ${seen.size} connections recorded, ${connections.length} made`);
  const dir = path.join(OUT, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'events.jsonl'), events.map((e) => JSON.stringify(e)).join('\n') + '\n');
  fs.writeFileSync(path.join(dir, 'case.json'), JSON.stringify({ connections }, null, 2) + '\n');
  console.log(`${name}: ${events.length} reads over ${connections.length} connections, ${connections.reduce((a, c) => a + c.streams, 0)} streams`);
}
process.exit(0);
