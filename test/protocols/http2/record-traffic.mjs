#!/usr/bin/env node
// Records real HTTP/2 traffic for the frame reader's golden captures: a Node
// `http2` h2c server on loopback, a recording TCP proxy in front of it, and a
// real client per case (nghttp, curl --http2-prior-knowledge, Node's http2
// client). Each case writes test/fixtures/http2/<case>/events.jsonl, one line
// per socket read the proxy made, as the server would see it:
//   {"side": "ingress"|"egress", "pos": n, "atUs": n, "data": base64}
// (ingress: client to server). nghttp cases also keep `nghttp -v` output in
// nghttp-v.txt: its frame lines are an oracle independent of our reader.
// Run by hand, review, commit:  node test/protocols/http2/record-traffic.mjs [case...]
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const OUT = path.join(HERE, '../../fixtures/http2');

function startServer() {
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    const p = headers[':path'];
    let body = 0;
    stream.on('data', (d) => { body += d.length; });
    stream.on('end', () => {
      if (p === '/grpc') {
        // A gRPC-shaped unary answer: a length-prefixed message, then trailers.
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'OK' }));
        stream.end(Buffer.from([0, 0, 0, 0, 3, 0x08, 0x96, 0x01]));
      } else if (p === '/big') {
        stream.respond({ ':status': 200, 'content-type': 'application/octet-stream' });
        stream.end(Buffer.alloc(40000, 0x61));
      } else if (p === '/reset') {
        stream.close(http2.constants.NGHTTP2_CANCEL);
      } else {
        stream.respond({ ':status': p === '/missing' ? 404 : 200, 'content-type': 'text/plain', 'x-body-bytes': String(body) });
        stream.end(`hello ${p}\n`);
      }
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** A proxy that forwards one connection at a time and records both directions. */
function startProxy(target) {
  const events = [];
  const t0 = process.hrtime.bigint();
  const pos = { ingress: 0, egress: 0 };
  const rec = (side, d) => {
    events.push({ side, pos: pos[side], atUs: Number((process.hrtime.bigint() - t0) / 1000n), data: d.toString('base64') });
    pos[side] += d.length;
  };
  const proxy = net.createServer((c) => {
    c.setNoDelay(true);
    const s = net.connect(target, '127.0.0.1');
    s.setNoDelay(true);
    c.on('data', (d) => { rec('ingress', d); s.write(d); });
    s.on('data', (d) => { rec('egress', d); c.write(d); });
    c.on('end', () => s.end());
    s.on('end', () => c.end());
    c.on('error', () => s.destroy());
    s.on('error', () => c.destroy());
  });
  return new Promise((resolve) => proxy.listen(0, '127.0.0.1', () => resolve({ proxy, events })));
}

function run(cmd, args) {
  return new Promise((resolve, reject) => execFile(cmd, args, { timeout: 10000 }, (err, stdout, stderr) => (err ? reject(new Error(`${cmd}: ${err.message} ${stderr}`)) : resolve(stdout))));
}

async function nodeClient(port, paths, post, extra = {}) {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  await Promise.all(paths.map((p) => new Promise((resolve, reject) => {
    const headers = { ':path': p, ':method': post ? 'POST' : 'GET', ...extra };
    if (p === '/grpc') Object.assign(headers, { ':method': 'POST', 'content-type': 'application/grpc', te: 'trailers' });
    const req = session.request(headers);
    req.on('error', (e) => (p === '/reset' ? resolve() : reject(e)));
    req.on('close', resolve);
    req.on('data', () => {});
    if (p === '/grpc') req.end(Buffer.from([0, 0, 0, 0, 2, 0x08, 0x01]));
    else req.end(post ? Buffer.alloc(20000, 0x62) : undefined);
  })));
  await new Promise((resolve) => session.close(resolve));
}

const CASES = {
  'nghttp-get': async (port) => run('nghttp', ['-nv', `http://127.0.0.1:${port}/`, `http://127.0.0.1:${port}/missing`]),
  'nghttp-post': async (port) => {
    const f = path.join(OUT, '.nghttp-body');
    fs.writeFileSync(f, Buffer.alloc(30000, 0x63));
    try {
      return await run('nghttp', ['-nv', '-d', f, `http://127.0.0.1:${port}/upload`]);
    } finally {
      fs.unlinkSync(f);
    }
  },
  'curl-prior-knowledge': async (port) => {
    // One URL a run: curl 7.88 fails reusing a prior-knowledge connection for a second URL.
    await run('curl', ['-sS', '--http2-prior-knowledge', '-o', '/dev/null', `http://127.0.0.1:${port}/big`]);
  },
  'curl-post': async (port) => {
    await run('curl', ['-sS', '--http2-prior-knowledge', '-o', '/dev/null', '--data-binary', 'a=' + 'b'.repeat(20000), `http://127.0.0.1:${port}/form`]);
  },
  'node-client': async (port) => {
    await nodeClient(port, ['/grpc', '/x', '/big', '/reset'], false);
  },
  'node-client-post': async (port) => {
    await nodeClient(port, ['/p1', '/p2'], true);
  },
  // A header block over one frame: Node's client sends HEADERS and CONTINUATION.
  'node-client-big-headers': async (port) => {
    await nodeClient(port, ['/h'], false, { 'x-big': 'abcdefghij0123456789'.repeat(1500) });
  },
};

const wanted = process.argv.slice(2);
for (const [name, runCase] of Object.entries(CASES)) {
  if (wanted.length > 0 && !wanted.includes(name)) continue;
  const server = await startServer();
  const { proxy, events } = await startProxy(server.address().port);
  const log = await runCase(proxy.address().port);
  await new Promise((r) => setTimeout(r, 200));
  proxy.close();
  server.close();
  const dir = path.join(OUT, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'events.jsonl'), events.map((e) => JSON.stringify(e)).join('\n') + '\n');
  if (typeof log === 'string') fs.writeFileSync(path.join(dir, 'nghttp-v.txt'), log);
  console.log(`${name}: ${events.length} events`);
}
process.exit(0);
