// gRPC over cleartext HTTP/2 (@grpc/grpc-js) for the HTTP/2 and gRPC tests,
// service test.echo.Echo from grpc/echo.proto, two roles, each its own process:
//   node grpc_node.js server
//     listens on 127.0.0.1:0; prints {"pid","port"} and serves until killed.
//     Unary: sleeps delay_ms, then fails with fail_code ("failed on purpose")
//     when non-zero, else waits until `count` unary calls are in flight (when
//     count > 0) and echoes. ServerStream sends `count` messages; ClientStream
//     answers the number of messages received; Bidi echoes each message.
//     Every answer carries trailing metadata x-peer (the client's address as
//     the server saw it) so a client can tell how many connections it used.
//   node grpc_node.js client HOST:PORT SCENARIO [N]
//     prints {"pid"}, waits for a line on stdin (the agent is attached by
//     then), runs SCENARIO on one channel, prints {"results","connections"}
//     and exits. Scenarios: unary N, mix, concurrent N, big (see SCENARIOS).
'use strict';
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const MAX_MESSAGE = 8 * 1024 * 1024; // the big scenario sends 4 MB each way
const CHANNEL_OPTIONS = { 'grpc.max_receive_message_length': MAX_MESSAGE, 'grpc.max_send_message_length': MAX_MESSAGE };
const definition = protoLoader.loadSync(path.join(__dirname, 'grpc', 'echo.proto'), { keepCase: true, defaults: true });
const Echo = grpc.loadPackageDefinition(definition).test.echo.Echo;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function serve() {
  const server = new grpc.Server(CHANNEL_OPTIONS);
  const peer = (call) => {
    const m = new grpc.Metadata();
    m.set('x-peer', call.getPeer());
    return m;
  };
  // Unary calls waiting for `count` calls in flight, released all at once.
  let waiting = [];
  server.addService(Echo.service, {
    async Unary(call, callback) {
      const req = call.request;
      if (req.delay_ms > 0) await sleep(req.delay_ms);
      if (req.fail_code !== 0) return callback({ code: req.fail_code, details: 'failed on purpose', metadata: peer(call) });
      if (req.count > 0) {
        const released = await new Promise((resolve) => {
          waiting.push(resolve);
          // A call cancelled while waiting (its deadline passed) leaves the
          // barrier, so it cannot release a later group early.
          call.once('cancelled', () => {
            waiting = waiting.filter((w) => w !== resolve);
            resolve(false);
          });
          if (waiting.length >= req.count) {
            for (const w of waiting) w(true);
            waiting = [];
          }
        });
        if (!released) return undefined;
      }
      return callback(null, req, peer(call));
    },
    ServerStream(call) {
      const req = call.request;
      for (let i = 0; i < req.count; i++) call.write({ text: `${req.text}-${i}` });
      call.end(peer(call));
    },
    ClientStream(call, callback) {
      let count = 0;
      call.on('data', () => count++);
      call.on('end', () => callback(null, { count }, peer(call)));
    },
    Bidi(call) {
      call.on('data', (m) => call.write(m));
      call.on('end', () => call.end(peer(call)));
    },
  });
  server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
    if (err) throw err;
    console.log(JSON.stringify({ pid: process.pid, port }));
  });
}

// Each call resolves to {call, code, ...}: code is the gRPC status code, never
// a rejection, so a scenario's results list every call in order.
function calls(client, peers) {
  const notePeer = (metadata) => {
    const p = metadata && metadata.get('x-peer')[0];
    if (p) peers.add(String(p));
  };
  const settle = (resolve, call, extra) => (err, res) =>
    resolve(err ? { call, code: err.code, details: err.details } : { call, code: 0, ...extra(res) });
  return {
    unary(msg, deadlineMs = 10000) {
      return new Promise((resolve) => {
        const c = client.Unary(msg, { deadline: Date.now() + deadlineMs }, settle(resolve, 'unary', (r) => ({ text: r.text, bytes: r.blob.length, intact: r.blob.equals(msg.blob || Buffer.alloc(0)) })));
        c.on('status', (s) => notePeer(s.metadata));
      });
    },
    serverStream(text, count) {
      return new Promise((resolve) => {
        const c = client.ServerStream({ text, count }, { deadline: Date.now() + 10000 });
        const texts = [];
        c.on('data', (m) => texts.push(m.text));
        c.on('error', (err) => resolve({ call: 'server_stream', code: err.code, details: err.details, count: texts.length }));
        c.on('status', (s) => {
          notePeer(s.metadata);
          if (s.code === 0) resolve({ call: 'server_stream', code: 0, count: texts.length, texts });
        });
      });
    },
    clientStream(count) {
      return new Promise((resolve) => {
        const c = client.ClientStream({ deadline: Date.now() + 10000 }, settle(resolve, 'client_stream', (r) => ({ sent: count, count: r.count })));
        c.on('status', (s) => notePeer(s.metadata));
        for (let i = 0; i < count; i++) c.write({ text: `c${i}` });
        c.end();
      });
    },
    bidi(count) {
      return new Promise((resolve) => {
        const c = client.Bidi({ deadline: Date.now() + 10000 });
        const texts = [];
        c.on('data', (m) => texts.push(m.text));
        c.on('error', (err) => resolve({ call: 'bidi', code: err.code, details: err.details, count: texts.length }));
        c.on('status', (s) => {
          notePeer(s.metadata);
          if (s.code === 0) resolve({ call: 'bidi', code: 0, count: texts.length, texts });
        });
        for (let i = 0; i < count; i++) c.write({ text: `b${i}` });
        c.end();
      });
    },
  };
}

const SCENARIOS = {
  // N unary calls, one after the other.
  async unary(rpc, n) {
    const results = [];
    for (let i = 0; i < n; i++) results.push(await rpc.unary({ text: `u${i}` }));
    return results;
  },
  // Every call shape and two error statuses, one after the other.
  async mix(rpc) {
    const deadline = await rpc.unary({ text: 'slow', delay_ms: 500 }, 100);
    // The deadline's message carries the measured time; keep only its start.
    deadline.details = deadline.details.split(' after ')[0];
    return [
      await rpc.unary({ text: 'ok' }),
      await rpc.unary({ text: 'missing', fail_code: grpc.status.NOT_FOUND }),
      deadline,
      await rpc.serverStream('s', 3),
      await rpc.clientStream(4),
      await rpc.bidi(2),
    ];
  },
  // N unary calls in flight at once: the server answers none until all N
  // have arrived, so they cannot have run one after the other.
  async concurrent(rpc, n) {
    return Promise.all(Array.from({ length: n }, (_, i) => rpc.unary({ text: `c${i}`, count: n })));
  },
  // One unary call with a 4 MB payload each way.
  async big(rpc) {
    const blob = Buffer.alloc(4 * 1024 * 1024);
    for (let i = 0; i < blob.length; i++) blob[i] = i % 251;
    return [await rpc.unary({ text: 'big', blob })];
  },
};

function runClient(target, scenario, n) {
  if (!SCENARIOS[scenario]) throw new Error(`unknown scenario ${scenario}`);
  console.log(JSON.stringify({ pid: process.pid }));
  process.stdin.once('data', async () => {
    const client = new Echo(target, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
    const peers = new Set();
    const results = await SCENARIOS[scenario](calls(client, peers), Number(n));
    client.close();
    console.log(JSON.stringify({ results, connections: peers.size }));
    process.stdin.destroy();
  });
}

const [role, ...args] = process.argv.slice(2);
if (role === 'server') serve();
else if (role === 'client') runClient(...args);
else {
  console.error('usage: grpc_node.js server | client HOST:PORT unary N|mix|concurrent N|big');
  process.exit(2);
}
