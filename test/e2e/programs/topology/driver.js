// Topology driver (not traced): COUNT requests to the frontend with CONCURRENCY
// workers, each request carrying its test id in the path and in X-Test-Id.
// Prints {"ok","failed","ids"} when done.
'use strict';
const http = require('node:http');

const port = Number(process.argv[2]);
const count = Number(process.argv[3] || 2000);
const concurrency = Number(process.argv[4] || 32);
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
let next = 0;
let ok = 0;
let failed = 0;

function one() {
  if (next >= count) return Promise.resolve();
  const id = `t${String(next++).padStart(6, '0')}`;
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: `/order/${id}`, agent, headers: { 'x-test-id': id } }, (res) => {
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

Promise.all(Array.from({ length: concurrency }, one)).then(() => {
  agent.destroy();
  console.log(JSON.stringify({ ok, failed, count }));
});
