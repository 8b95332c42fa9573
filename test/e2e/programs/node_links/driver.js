// Driver (not traced): COUNT requests GET /r/<PREFIX><nnnnnn> to the
// frontend with CONCURRENCY in flight over keep-alive connections, each
// carrying its id in the path and in X-Test-Id. Prints {"ok","failed","count"}.
'use strict';
const http = require('node:http');

const [port, prefix, count, concurrency] = [Number(process.argv[2]), process.argv[3], Number(process.argv[4]), Number(process.argv[5])];
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
let next = 0;
let ok = 0;
let failed = 0;

function one() {
  if (next >= count) return Promise.resolve();
  const id = `${prefix}${String(next++).padStart(6, '0')}`;
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: `/r/${id}`, agent, headers: { 'x-test-id': id } }, (res) => {
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
