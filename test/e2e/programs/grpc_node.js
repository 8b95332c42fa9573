// gRPC over HTTP/2 (@grpc/grpc-js) for the HTTP/2 and gRPC tests, service
// test.echo.Echo from grpc/echo.proto, two roles, each its own process:
//   node grpc_node.js server [CERT KEY]
//     listens on 127.0.0.1:0 (over TLS with CERT and KEY when given: grpc-js
//     uses Node's OpenSSL); prints {"pid","port"} and serves until killed.
//     Unary: sleeps delay_ms, then fails with fail_code (status message
//     `details`, else "failed on purpose") when non-zero, else waits until
//     `count` unary calls are in flight (when count > 0) and echoes.
//     ServerStream sends `count` messages; ClientStream answers the number of
//     messages received; Bidi echoes each message. Any other method is
//     answered UNIMPLEMENTED by grpc-js. Every answer carries trailing
//     metadata x-peer (the client's address as the server saw it) so a client
//     can tell how many connections it used.
//   node grpc_node.js client HOST:PORT SCENARIO [N] [--ca CAFILE]
//     (TLS trusting CAFILE with --ca) prints {"pid"}, waits for a line on
//     stdin (the agent is attached by then), runs SCENARIO on one channel,
//     prints {"results","connections"} and exits. Scenarios: unary N, mix,
//     errors, concurrent N, big, preattach N (see SCENARIOS); preattach makes
//     its first calls before printing {"pid","before"}.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const MAX_MESSAGE = 8 * 1024 * 1024; // the big scenario sends 4 MB each way
const CHANNEL_OPTIONS = { 'grpc.max_receive_message_length': MAX_MESSAGE, 'grpc.max_send_message_length': MAX_MESSAGE };
const definition = protoLoader.loadSync(path.join(__dirname, 'grpc', 'echo.proto'), { keepCase: true, defaults: true });
const Echo = grpc.loadPackageDefinition(definition).test.echo.Echo;

// 300 characters: longer than the 256 a span status message keeps.
const LONG_DETAILS = 'internal failure '.padEnd(300, 'x');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function serve(cert, key) {
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
      if (req.fail_code !== 0) return callback({ code: req.fail_code, details: req.details || 'failed on purpose', metadata: peer(call) });
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
  const credentials = cert ? grpc.ServerCredentials.createSsl(null, [{ cert_chain: fs.readFileSync(cert), private_key: fs.readFileSync(key) }]) : grpc.ServerCredentials.createInsecure();
  server.bindAsync('127.0.0.1:0', credentials, (err, port) => {
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
    // A method the server does not have: grpc-js answers UNIMPLEMENTED.
    missing() {
      return new Promise((resolve) => {
        const c = client.makeUnaryRequest('/test.echo.Echo/Missing', (b) => b, (b) => b, Buffer.alloc(0), { deadline: Date.now() + 10000 }, settle(resolve, 'missing', () => ({})));
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

// A unary call the server answers after 500 ms, with a 100 ms deadline.
async function deadlineExceeded(rpc) {
  const r = await rpc.unary({ text: 'slow', delay_ms: 500 }, 100);
  // The deadline's message carries the measured time; keep only its start.
  r.details = r.details.split(' after ')[0];
  return r;
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
    return [
      await rpc.unary({ text: 'ok' }),
      await rpc.unary({ text: 'missing', fail_code: grpc.status.NOT_FOUND }),
      await deadlineExceeded(rpc),
      await rpc.serverStream('s', 3),
      await rpc.clientStream(4),
      await rpc.bidi(2),
    ];
  },
  // The failure statuses: three answered by the handler (the INTERNAL one
  // with a 300-character message), an unknown method, a deadline exceeded.
  async errors(rpc) {
    return [
      await rpc.unary({ text: 'bad', fail_code: grpc.status.INVALID_ARGUMENT }),
      await rpc.unary({ text: 'missing', fail_code: grpc.status.NOT_FOUND }),
      await rpc.unary({ text: 'broken', fail_code: grpc.status.INTERNAL, details: LONG_DETAILS }),
      await rpc.missing(),
      await deadlineExceeded(rpc),
    ];
  },
  // N unary calls in flight at once: the server answers none until all N
  // have arrived, so they cannot have run one after the other.
  async concurrent(rpc, n) {
    return Promise.all(Array.from({ length: n }, (_, i) => rpc.unary({ text: `c${i}`, count: n })));
  },
  // After the calls made before the agent was attached, N more on the same channel.
  async preattach(rpc, n) {
    const results = [];
    for (let i = 0; i < n; i++) results.push(await rpc.unary({ text: `late${i}` }));
    return results;
  },
  // One unary call with a 4 MB payload each way.
  async big(rpc) {
    const blob = Buffer.alloc(4 * 1024 * 1024);
    for (let i = 0; i < blob.length; i++) blob[i] = i % 251;
    return [await rpc.unary({ text: 'big', blob })];
  },
};

// Calls made before the agent is attached (preattach): they leave the
// channel's HPACK tables holding entries the agent never saw. Another method
// than the calls after the attach (Unary), so a method guessed from a stale
// table entry would show.
const BEFORE = {
  async preattach(rpc, n) {
    const results = [];
    for (let i = 0; i < n; i++) results.push(await rpc.serverStream(`early${i}`, 1));
    return results;
  },
};

function runClient(target, scenario, ...rest) {
  if (!SCENARIOS[scenario]) throw new Error(`unknown scenario ${scenario}`);
  const ca = rest.indexOf('--ca');
  const credentials = ca >= 0 ? grpc.credentials.createSsl(fs.readFileSync(rest[ca + 1])) : grpc.credentials.createInsecure();
  const n = Number(ca === 0 ? undefined : rest[0]);
  const client = new Echo(target, credentials, CHANNEL_OPTIONS);
  const peers = new Set();
  const rpc = calls(client, peers);
  (async () => {
    const before = BEFORE[scenario] ? await BEFORE[scenario](rpc, n) : undefined;
    console.log(JSON.stringify(before ? { pid: process.pid, before } : { pid: process.pid }));
    process.stdin.once('data', async () => {
      const results = await SCENARIOS[scenario](rpc, n);
      client.close();
      console.log(JSON.stringify({ results, connections: peers.size }));
      process.stdin.destroy();
    });
  })();
}

const [role, ...args] = process.argv.slice(2);
if (role === 'server') serve(...args);
else if (role === 'client') runClient(...args);
else {
  console.error('usage: grpc_node.js server [CERT KEY] | client HOST:PORT unary N|mix|errors|concurrent N|big|preattach N [--ca CAFILE]');
  process.exit(2);
}
