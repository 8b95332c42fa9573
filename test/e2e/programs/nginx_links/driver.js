// Driver of test/e2e/nginx-links.ebpf.test.ts (not traced): COUNT requests
// GET /r/<id> to nginx, CONCURRENCY in flight on keep-alive connections. The
// id is PREFIX, a 6-digit sequence number and a mode letter the backend acts
// on: f every 10th from the 4th (a 502 first), h every 25th from the 8th
// (a hang first), n the others. Prints {"ok","failed","count"}.
'use strict';
const http = require('node:http');

const [port, count, concurrency, prefix] = [Number(process.argv[2]), Number(process.argv[3]), Number(process.argv[4]), process.argv[5]];
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
let next = 0;
let ok = 0;
let failed = 0;

function mode(i) {
  if (i % 10 === 3) return 'f';
  if (i % 25 === 7) return 'h';
  return 'n';
}

function one() {
  if (next >= count) return Promise.resolve();
  const i = next++;
  const id = `${prefix}${String(i).padStart(6, '0')}${mode(i)}`;
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: `/r/${id}`, agent }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        if (res.statusCode === 200 && JSON.parse(body).id === id) ok++;
        else failed++;
        resolve();
      });
    });
    req.on('error', () => {
      failed++;
      resolve();
    });
  }).then(one);
}

Promise.all(Array.from({ length: concurrency }, one)).then(() => {
  agent.destroy();
  console.log(JSON.stringify({ ok, failed, count }));
});
