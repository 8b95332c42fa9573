// Demo load: a few requests per second to the frontend, forever or N times.
'use strict';
const http = require('node:http');

const target = new URL(process.env.TARGET_URL || 'http://127.0.0.1:18080');
const rate = Number(process.env.RATE || 2);
const total = Number(process.env.COUNT || 0);
const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
let sent = 0;

function once() {
  const id = 1 + (sent % 5);
  sent++;
  const req = http.get({ host: target.hostname, port: target.port, path: `/items/${id}`, agent }, (res) => {
    res.resume();
  });
  req.on('error', (err) => console.error(`load: ${err.message}`));
  if (total > 0 && sent >= total) {
    clearInterval(timer);
    setTimeout(() => process.exit(0), 500);
  }
}
const timer = setInterval(once, 1000 / rate);
process.on('SIGTERM', () => process.exit(0));
