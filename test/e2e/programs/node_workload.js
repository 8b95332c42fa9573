// TCP workload for the capture end-to-end tests, in Node (libuv: read/write/writev).
// Prints {"pid","port"} once listening, waits for a stdin line, then the client
// sends "ping-from-node" and the server answers "pong-from-node" and both close.
'use strict';
const net = require('node:net');

const server = net.createServer((sock) => {
  let got = '';
  sock.on('data', (d) => {
    got += d;
    if (got === 'ping-from-node') {
      sock.cork();
      sock.write('pong-');
      sock.write('from-node');
      sock.uncork();
    }
  });
  sock.on('end', () => sock.end());
});

server.listen(0, '127.0.0.1', () => {
  const port = server.address().port;
  console.log(JSON.stringify({ pid: process.pid, port }));
  process.stdin.once('data', () => {
    let clientPort;
    const client = net.connect(port, '127.0.0.1', () => {
      clientPort = client.localPort;
      client.write('ping-from-node');
    });
    let reply = '';
    client.on('data', (d) => {
      reply += d;
      if (reply === 'pong-from-node') client.end();
    });
    client.on('close', () => {
      server.close();
      console.log(JSON.stringify({ clientPort, reply }));
      process.stdin.destroy();
    });
  });
});
