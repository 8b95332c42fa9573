// HTTP/1.1 workload for the end-to-end span tests: a Node http server and a
// keep-alive client in one process. Prints {"pid","port"} once listening,
// waits for a line on stdin (the agent is attached by then), runs the client
// script, prints what it did as JSON and exits.
'use strict';
const http = require('node:http');

const BIG = Buffer.alloc(5 * 1000 * 1000, 0x78);

const server = http.createServer((req, res) => {
  const url = req.url || '';
  let m;
  if ((m = /^\/items\/(\d+)$/.exec(url))) {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: Number(m[1]) }));
  } else if (url === '/chunked') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('first,');
    setTimeout(() => {
      res.write('second,');
      res.end('third');
    }, 5);
  } else if (url === '/big') {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BIG.length }).end(BIG);
  } else if (url === '/upload') {
    let n = 0;
    req.on('data', (d) => (n += d.length));
    req.on('end', () => res.writeHead(201).end(String(n)));
  } else if (url === '/fail') {
    res.writeHead(500).end('boom');
  } else {
    res.writeHead(404).end('nope');
  }
});

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function request(method, path, headers = {}, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: server.address().port, method, path, headers, agent }, (res) => {
      let n = 0;
      res.on('data', (d) => (n += d.length));
      res.on('end', () => resolve({ status: res.statusCode, bytes: n }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

server.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ pid: process.pid, port: server.address().port }));
  process.stdin.once('data', async () => {
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const steps = [];
    steps.push(['GET', '/items/1', await request('GET', '/items/1')]);
    steps.push(['GET', '/items/2', await request('GET', '/items/2', { traceparent, tracestate: 'vendor=1' })]);
    steps.push(['GET', '/items/3', await request('GET', '/items/3')]);
    steps.push(['GET', '/chunked', await request('GET', '/chunked')]);
    steps.push(['GET', '/big', await request('GET', '/big')]);
    steps.push(['POST', '/upload', await request('POST', '/upload', { 'content-type': 'text/plain' }, Buffer.alloc(100000, 0x61))]);
    steps.push(['GET', '/fail', await request('GET', '/fail')]);
    steps.push(['GET', '/missing', await request('GET', '/missing')]);
    agent.destroy();
    server.close(() => {
      console.log(JSON.stringify({ steps, traceparent }));
      process.stdin.destroy();
    });
  });
});
