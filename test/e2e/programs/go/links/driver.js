// Go links driver (not traced): COUNT GET /r/<id> to the frontend with
// CONCURRENCY keep-alive workers; ids tFIRST.. Prints {"ok","failed","count"}.
// With WARM ("warm"), it first opens its connections with CONCURRENCY
// requests /r/w<n> at once, prints {"warm":true} and waits for a line on
// stdin: the connections then predate whatever starts meanwhile. With
// DRIVER_TLS=1, over HTTPS (the test's own certificate accepted).
'use strict';
const http = process.env.DRIVER_TLS === '1' ? require('node:https') : require('node:http');

const port = Number(process.argv[2]);
const count = Number(process.argv[3]);
const concurrency = Number(process.argv[4]);
const first = Number(process.argv[5] || 0);
const warm = process.argv[6] === 'warm';
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency, rejectUnauthorized: false });
let next = 0;
let ok = 0;
let failed = 0;

function one() {
  if (next >= count) return Promise.resolve();
  const id = `t${String(first + next++).padStart(6, '0')}`;
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: `/r/${id}`, agent }, (res) => {
      res.resume();
      res.on('end', () => {
        if (res.statusCode === 200) ok++;
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

function get(path) {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
      res.resume();
      res.on('end', resolve);
    }).on('error', reject);
  });
}

async function warmUp() {
  if (!warm) return;
  await Promise.all(Array.from({ length: concurrency }, (_, i) => get(`/r/w${String(i).padStart(6, '0')}`)));
  console.log(JSON.stringify({ warm: true }));
  await new Promise((resolve) => process.stdin.once('data', resolve));
}

warmUp().then(() => Promise.all(Array.from({ length: concurrency }, one))).then(() => {
  agent.destroy();
  console.log(JSON.stringify({ ok, failed, count }));
});
