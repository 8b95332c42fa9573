#!/usr/bin/env node
// Records real HTTP/2 connections for the session goldens
// (test/fixtures/http2-sessions/): real peers (@grpc/grpc-js client and
// server, Node's http2 client and server, nghttp, python3-h2 in h2-peer.py) on loopback with a
// recording TCP proxy between them. Each case writes
// test/fixtures/http2-sessions/<case>/capture.jsonl: a first line
//   {"conn": {"serverPort": n, "clientPort": n}}   (the proxy's port, the client's port as the proxy saw it)
// then one line per read the proxy made, as the server would see it:
//   {"side": "ingress"|"egress", "pos": n, "atNs": n, "data": base64}
// and {"mark": "name", "atNs": n} lines where the client reached a named point
// (the generator cuts there for a mid-stream attach). generate-session-fixtures
// turns captures into events.jsonl. Run by hand, review, commit:
//   node test/protocols/http2/record-sessions.mjs [case...]
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import http2 from 'node:http2';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.join(HERE, '../../..');
const OUT = path.join(ROOT, 'test/fixtures/http2-sessions');
const require = createRequire(path.join(ROOT, 'package.json'));
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const definition = protoLoader.loadSync(path.join(ROOT, 'test/e2e/programs/grpc/echo.proto'), { keepCase: true, defaults: true });
const Echo = grpc.loadPackageDefinition(definition).test.echo.Echo;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const t0 = process.hrtime.bigint();
const now = () => Number(process.hrtime.bigint() - t0);

/** A proxy that forwards connections and records both directions of the first one. */
function startProxy(target) {
  const lines = [];
  const pos = { ingress: 0, egress: 0 };
  let conn;
  const rec = (side, d) => {
    lines.push({ side, pos: pos[side], atNs: now(), data: d.toString('base64') });
    pos[side] += d.length;
  };
  const proxy = net.createServer((c) => {
    const first = conn === undefined;
    if (first) conn = { clientPort: c.remotePort };
    c.setNoDelay(true);
    const s = net.connect(target, '127.0.0.1');
    s.setNoDelay(true);
    c.on('data', (d) => { if (first) rec('ingress', d); s.write(d); });
    s.on('data', (d) => { if (first) rec('egress', d); c.write(d); });
    c.on('end', () => s.end());
    s.on('end', () => c.end());
    c.on('error', () => s.destroy());
    s.on('error', () => c.destroy());
  });
  const mark = (name) => lines.push({ mark: name, atNs: now() });
  return new Promise((resolve) => proxy.listen(0, '127.0.0.1', () => resolve({ proxy, lines, mark, conn: () => conn })));
}

// --- gRPC -----------------------------------------------------------------------

function grpcServer() {
  const server = new grpc.Server({ 'grpc.max_metadata_size': 256 * 1024 });
  server.addService(Echo.service, {
    async Unary(call, callback) {
      const req = call.request;
      if (req.delay_ms > 0) await sleep(req.delay_ms);
      if (req.fail_code !== 0) return callback({ code: req.fail_code, details: `failed on purpose: ${req.text}` });
      if (req.count > 0) {
        // Hold until `count` calls are in flight (they interleave on the wire).
        grpcServer.waiting.push(() => callback(null, req));
        if (grpcServer.waiting.length >= req.count) for (const w of grpcServer.waiting.splice(0)) w();
        return undefined;
      }
      return callback(null, req);
    },
    async ServerStream(call) {
      const req = call.request;
      for (let i = 0; i < req.count; i++) {
        call.write({ text: `${req.text}-${i}` });
        if (req.delay_ms > 0) await sleep(req.delay_ms);
      }
      call.end();
    },
    ClientStream(call, callback) {
      let count = 0;
      call.on('data', () => count++);
      call.on('end', () => callback(null, { count }));
    },
    Bidi(call) {
      call.on('data', (m) => call.write(m));
      call.on('end', () => call.end());
    },
  });
  return new Promise((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve({ port, close: () => server.forceShutdown() }))));
}
grpcServer.waiting = [];

/** Promise of a call's outcome: {code, details?, n?} (never rejects). */
function unary(client, msg, options = {}, metadata = new grpc.Metadata()) {
  return new Promise((resolve) => client.Unary(msg, metadata, { deadline: Date.now() + 10000, ...options }, (err, res) => resolve(err ? { code: err.code, details: err.details } : { code: 0, text: res.text })));
}
function serverStream(client, msg) {
  return new Promise((resolve) => {
    const c = client.ServerStream(msg, { deadline: Date.now() + 10000 });
    let n = 0;
    c.on('data', () => n++);
    c.on('error', (e) => resolve({ code: e.code, n }));
    c.on('status', (s) => s.code === 0 && resolve({ code: 0, n }));
  });
}
function clientStream(client, count) {
  return new Promise((resolve) => {
    const c = client.ClientStream({ deadline: Date.now() + 10000 }, (err, res) => resolve(err ? { code: err.code } : { code: 0, count: res.count }));
    for (let i = 0; i < count; i++) c.write({ text: `c${i}` });
    c.end();
  });
}
function bidi(client, count) {
  return new Promise((resolve) => {
    const c = client.Bidi({ deadline: Date.now() + 10000 });
    let n = 0;
    c.on('data', () => n++);
    c.on('error', (e) => resolve({ code: e.code, n }));
    c.on('status', (s) => s.code === 0 && resolve({ code: 0, n }));
    for (let i = 0; i < count; i++) c.write({ text: `b${i}` });
    c.end();
  });
}

async function grpcCase(body) {
  const server = await grpcServer();
  const proxy = await startProxy(server.port);
  const client = new Echo(`127.0.0.1:${proxy.proxy.address().port}`, grpc.credentials.createInsecure(), { 'grpc.max_metadata_size': 256 * 1024 });
  const results = await body(client, proxy.mark);
  client.close();
  await sleep(200);
  server.close();
  return { proxy, results };
}

// --- Node http2 -----------------------------------------------------------------

async function nodeCase(serverOptions, onStream, clientBody) {
  const server = http2.createServer(serverOptions);
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    onStream(stream, headers);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const proxy = await startProxy(server.address().port);
  const session = http2.connect(`http://127.0.0.1:${proxy.proxy.address().port}`, serverOptions.clientOptions ?? {});
  session.on('error', () => {});
  const results = await clientBody(session, proxy.mark);
  await new Promise((r) => { if (session.closed || session.destroyed) r(); else session.close(r); });
  await sleep(200);
  server.close();
  return { proxy, results };
}

/** One request on a Node client session: resolves to {status, body, error?}. */
function request(session, headers, body, opts = {}) {
  return new Promise((resolve) => {
    const req = session.request(headers, opts);
    let status;
    let bytes = 0;
    const interim = [];
    req.on('headers', (h) => interim.push(h[':status']));
    req.on('response', (h) => { status = h[':status']; });
    req.on('push', () => {});
    req.on('data', (d) => { bytes += d.length; });
    req.on('error', (e) => resolve({ status, bytes, error: e.code, interim }));
    req.on('close', () => resolve({ status, bytes, interim, rst: req.rstCode }));
    if (opts.waitForTrailers) req.on('wantTrailers', () => req.sendTrailers(opts.trailers));
    if (opts.onRequest) opts.onRequest(req);
    else req.end(body);
  });
}

function run(cmd, args, timeout = 10000) {
  return new Promise((resolve, reject) => execFile(cmd, args, { timeout }, (err, stdout, stderr) => (err ? reject(new Error(`${cmd}: ${err.message} ${stderr}`)) : resolve(stdout))));
}

// --- the cases ------------------------------------------------------------------

const CASES = {
  // Two unary calls (the second's header fields mostly dynamic-table hits).
  'grpc-unary': () => grpcCase(async (c) => [await unary(c, { text: 'one' }), await unary(c, { text: 'two', blob: Buffer.alloc(300, 7) })]),
  // Error statuses: NOT_FOUND and INTERNAL from the handler, a method the server does not have.
  'grpc-errors': () => grpcCase(async (c) => {
    const nope = await new Promise((resolve) => c.makeUnaryRequest('/test.echo.Echo/Nope', (x) => x, (x) => x, Buffer.from([]), (err) => resolve({ code: err?.code })));
    return [await unary(c, { text: 'missing', fail_code: 5 }), await unary(c, { text: 'broken', fail_code: 13 }), nope];
  }),
  // A deadline passing while the server sleeps: the client resets the stream.
  'grpc-deadline': () => grpcCase(async (c) => {
    const r = await unary(c, { text: 'slow', delay_ms: 300 }, { deadline: Date.now() + 100 });
    await sleep(400);
    return [r, await unary(c, { text: 'after' })];
  }),
  // The three streaming shapes, one after the other.
  'grpc-streaming': () => grpcCase(async (c) => [await serverStream(c, { text: 's', count: 3 }), await clientStream(c, 4), await bidi(c, 2)]),
  // Six unary calls in flight at once (the server answers when all six arrived): interleaved streams.
  'grpc-concurrent': () => grpcCase(async (c) => Promise.all(Array.from({ length: 6 }, (_, i) => unary(c, { text: `c${i}`, count: 6, blob: Buffer.alloc(2000 * (i + 1), i) })))),
  // Metadata of 40000 characters: a header block over HEADERS + CONTINUATION frames.
  'grpc-big-metadata': () => grpcCase(async (c) => {
    const m = new grpc.Metadata();
    m.set('x-big', 'abcdefghij0123456789'.repeat(2000));
    return [await unary(c, { text: 'big' }, {}, m), await unary(c, { text: 'small' })];
  }),
  // A long-lived connection: calls before the mark "attach", then a server
  // stream that runs across it and more unary calls after (same :path).
  'grpc-long-lived': () => grpcCase(async (c, mark) => {
    const before = [await unary(c, { text: 'b0' }), await unary(c, { text: 'b1' })];
    const across = serverStream(c, { text: 'slow', count: 4, delay_ms: 150 });
    await sleep(250);
    mark('attach');
    await sleep(100);
    const after = [await unary(c, { text: 'a0' }), await unary(c, { text: 'a1' }), await bidi(c, 1)];
    return [...before, await across, ...after];
  }),
  // nghttp padding its frames (-b 255) to a Node server that pads its own (PADDING_STRATEGY_MAX).
  'nghttp-padding': async () => {
    const server = http2.createServer({ paddingStrategy: http2.constants.PADDING_STRATEGY_MAX });
    server.on('stream', (stream, headers) => {
      let n = 0;
      stream.on('data', (d) => { n += d.length; });
      stream.on('end', () => {
        stream.respond({ ':status': 200, 'content-type': 'text/plain' });
        stream.end(`got ${n} bytes for ${headers[':path']}\n`);
      });
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    const proxy = await startProxy(server.address().port);
    const f = path.join(OUT, '.nghttp-body');
    fs.writeFileSync(f, Buffer.alloc(3000, 0x64));
    try {
      await run('nghttp', ['-n', '-b', '255', '-d', f, `http://127.0.0.1:${proxy.proxy.address().port}/a`]);
    } finally {
      fs.unlinkSync(f);
    }
    await sleep(200);
    server.close();
    return { proxy, results: [] };
  },
  // A table of 300 octets for the client's requests (the server's SETTINGS),
  // the default 4096 for responses, both overflowed by distinct values.
  'node-eviction': () => nodeCase(
    { settings: { headerTableSize: 300 } },
    (stream, headers) => {
      stream.respond({ ':status': 200, 'x-echo': String(headers['x-n']).repeat(12) });
      stream.end('ok');
    },
    async (s) => {
      const out = [];
      for (let i = 0; i < 6; i++) out.push(await request(s, { ':path': `/e/${i % 2}`, 'x-n': `value-${i}-`.padEnd(120, String(i)) }));
      return out;
    },
  ),
  // A header block of 63032 octets (HEADERS and three CONTINUATIONs, under the reader's 64 KiB bound), then an ordinary request.
  'node-huge-headers': () => nodeCase(
    { settings: { maxHeaderListSize: 1 << 20 }, maxHeaderListPairs: 4096, maxSessionMemory: 100, clientOptions: { maxSendHeaderBlockLength: 1 << 20, settings: { maxHeaderListSize: 1 << 20 } } },
    (stream) => {
      stream.respond({ ':status': 200 });
      stream.end('ok');
    },
    async (s, mark) => {
      const a = await request(s, { ':path': '/huge', 'x-huge': 'ABCDEFGHIJ0123456789'.repeat(4000) });
      mark('after-huge');
      await sleep(50);
      const b = await request(s, { ':path': '/after', ':method': 'POST' }, 'body');
      return [a, b];
    },
  ),
  // A header block of 94 KB, over the reader's 64 KiB bound (Node's server closes the connection).
  'node-header-block-over-bound': () => nodeCase(
    { settings: { maxHeaderListSize: 1 << 20 }, maxHeaderListPairs: 4096, maxSessionMemory: 100, clientOptions: { maxSendHeaderBlockLength: 1 << 20, settings: { maxHeaderListSize: 1 << 20 } } },
    (stream) => {
      stream.respond({ ':status': 200 });
      stream.end('ok');
    },
    async (s) => {
      // Node's server answers the block with GOAWAY and closes: there is no second request.
      return [await request(s, { ':path': '/huge', 'x-huge': 'ABCDEFGHIJ0123456789'.repeat(6000) })];
    },
  ),
  // RST_STREAM from either end: the server resets /reset (CANCEL) before answering; the client cancels /slow mid-body.
  'node-resets': () => nodeCase(
    {},
    (stream, headers) => {
      if (headers[':path'] === '/reset') return stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      stream.respond({ ':status': 200 });
      stream.write('first part\n');
      const t = setTimeout(() => stream.end('rest\n'), 2000);
      stream.on('close', () => clearTimeout(t));
    },
    async (s) => [
      await request(s, { ':path': '/reset' }),
      await request(s, { ':path': '/slow' }, undefined, { onRequest: (req) => { req.end(); req.once('data', () => setTimeout(() => req.close(http2.constants.NGHTTP2_CANCEL), 50)); } }),
    ],
  ),
  // Three requests in flight; when the third arrives the server sends GOAWAY(last stream 1), answers 1 and leaves 3 and 5.
  'node-goaway': () => nodeCase(
    {},
    (stream, headers) => {
      nodeGoaway.streams.push(stream);
      if (nodeGoaway.streams.length === 3) {
        stream.session.goaway(http2.constants.NGHTTP2_NO_ERROR, 1);
        const first = nodeGoaway.streams[0];
        first.respond({ ':status': 200 });
        first.end('only this one');
      }
      void headers;
    },
    async (s) => Promise.all(['/g1', '/g2', '/g3'].map((p) => request(s, { ':path': p }))),
  ),
  // A server push on GET / (PUSH_PROMISE, pushed HEADERS and DATA on stream 2), then the response.
  'node-push': () => nodeCase(
    {},
    (stream, headers) => {
      if (headers[':path'] !== '/') return;
      stream.pushStream({ ':path': '/style.css' }, (err, push) => {
        if (err) throw err;
        push.respond({ ':status': 200, 'content-type': 'text/css' });
        push.end('body{}');
      });
      stream.respond({ ':status': 200, 'content-type': 'text/html' });
      stream.end('<link rel=stylesheet href=/style.css>');
    },
    async (s) => {
      const pushed = new Promise((resolve) => s.once('stream', (p) => { p.on('data', () => {}); p.on('close', resolve); }));
      const r = await request(s, { ':path': '/' });
      await pushed;
      return [r];
    },
  ),
  // Interim heads (100, 103) before the final one; a request with trailers.
  'node-interim-trailers': () => nodeCase(
    {},
    (stream, headers) => {
      let n = 0;
      stream.on('data', (d) => { n += d.length; });
      if (headers[':path'] === '/hints') {
        stream.additionalHeaders({ ':status': 100 });
        stream.additionalHeaders({ ':status': 103, link: '</a.css>; rel=preload' });
      }
      stream.on('end', () => {
        stream.respond({ ':status': 201 });
        stream.end(`read ${n}`);
      });
    },
    async (s) => [
      await request(s, { ':path': '/hints', ':method': 'POST' }, 'abc'),
      await request(s, { ':path': '/trailers', ':method': 'POST' }, undefined, { waitForTrailers: true, trailers: { 'x-checksum': 'f00d' }, onRequest: (req) => req.end('0123456789') }),
    ],
  ),
  // 1030 requests in flight on one connection (over the agent's 1024), answered once all have arrived.
  'node-over-limit': () => nodeCase(
    { settings: { maxConcurrentStreams: 4000 }, clientOptions: { peerMaxConcurrentStreams: 4000 } },
    (stream) => {
      nodeOverLimit.streams.push(stream);
      if (nodeOverLimit.streams.length === 1030) {
        for (const st of nodeOverLimit.streams) {
          st.respond({ ':status': 204 }, { endStream: true });
        }
      }
    },
    async (s) => {
      const all = await Promise.all(Array.from({ length: 1030 }, (_, i) => request(s, { ':path': `/n/${i}` })));
      return [all.filter((r) => r.status === 204).length];
    },
  ),
  // A python3-h2 client (its HPACK indexes :method and :path) on one connection to a Node server; the generator joins at "attach".
  'h2-attach': async () => {
    const server = http2.createServer();
    server.on('stream', (stream, headers) => {
      stream.on('error', () => {});
      stream.on('data', () => {});
      stream.on('end', () => {
        if (headers['content-type'] === 'application/grpc') {
          stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
          stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '5', 'grpc-message': 'no such item' }));
          stream.end();
        } else {
          stream.respond({ ':status': headers[':method'] === 'DELETE' ? 204 : 200 });
          stream.end(headers[':method'] === 'DELETE' ? undefined : `${headers[':method']} ${headers[':path']}`);
        }
      });
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    const proxy = await startProxy(server.address().port);
    await peer(['client', String(proxy.proxy.address().port)], proxy.mark);
    await sleep(200);
    server.close();
    return { proxy, results: [] };
  },
  // HTTP/1.1 Upgrade to h2c: nghttp -u (two URLs: the upgraded request is stream 1) against a python3-h2 server.
  'h2c-upgrade': async () => {
    const port = 20000 + (process.pid % 20000);
    const server = spawn('/usr/bin/python3', [path.join(HERE, 'h2-peer.py'), 'upgrade-server', String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((r) => server.stdout.once('data', r));
    const proxy = await startProxy(port);
    try {
      await run('nghttp', ['-nu', `http://127.0.0.1:${proxy.proxy.address().port}/`, `http://127.0.0.1:${proxy.proxy.address().port}/two.txt`]);
    } finally {
      await sleep(200);
      server.kill();
    }
    return { proxy, results: [] };
  },
};
/** Runs h2-peer.py to its end, turning its "MARK name" lines into marks. */
function peer(args, mark) {
  return new Promise((resolve, reject) => {
    const p = spawn('/usr/bin/python3', [path.join(HERE, 'h2-peer.py'), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    p.stdout.on('data', (d) => { for (const l of String(d).split('\n')) if (l.startsWith('MARK ')) mark(l.slice(5).trim()); });
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`h2-peer.py ${args[0]}: exit ${code}`))));
  });
}
const nodeGoaway = { streams: [] };
const nodeOverLimit = { streams: [] };

const wanted = process.argv.slice(2);
for (const [name, runCase] of Object.entries(CASES)) {
  if (wanted.length > 0 && !wanted.includes(name)) continue;
  const { proxy, results } = await runCase();
  const serverPort = proxy.proxy.address().port;
  proxy.proxy.close();
  const dir = path.join(OUT, name);
  fs.mkdirSync(dir, { recursive: true });
  const lines = [{ conn: { serverPort, clientPort: proxy.conn().clientPort } }, ...proxy.lines];
  fs.writeFileSync(path.join(dir, 'capture.jsonl'), lines.map((e) => JSON.stringify(e)).join('\n') + '\n');
  console.log(`${name}: ${proxy.lines.length} reads`, JSON.stringify(results).slice(0, 300));
}
process.exit(0);
