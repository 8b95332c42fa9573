// The Node.js preload (preload/node/ebpf-otel-preload.js), without eBPF: the
// preload is loaded into this test process, and its marks are read from the
// calls it makes to fs.writeSync, which this file wraps. Each scenario runs a
// frontend HTTP server whose handlers call a backend server (both in this
// process) and compares the marks with the fds the sockets really had.
// A driver (this file's top level, outside any request) sends the frontend
// its requests; its own requests are marked CLEAR.

import test from 'ava';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import fs = require('node:fs');
import { spawnSync } from 'node:child_process';
import { ROOT } from '../helpers/agent';
import { makeTestPki, type TestPki } from '../helpers/tls-certs';

const PRELOAD = path.join(ROOT, 'preload', 'node', 'ebpf-otel-preload.js');
const preload = require(PRELOAD) as { MAGIC: number; FD_BITS: number; NO_SERVER: number };

/** A decoded mark: server is the server fd, or 'clear'. */
interface Mark {
  readonly server: number | 'clear';
  readonly client: number;
}

const marks: Mark[] = [];
let markCalls = 0;
const writeSync = fs.writeSync;
(fs as { writeSync: (...args: unknown[]) => number }).writeSync = function recordMark(...args: unknown[]): number {
  const [, , , length, position] = args;
  if (length === 0 && typeof position === 'number' && Math.floor(position / 2 ** (2 * preload.FD_BITS)) === preload.MAGIC) {
    markCalls++;
    const fds = position % 2 ** (2 * preload.FD_BITS);
    const server = Math.floor(fds / 2 ** preload.FD_BITS);
    marks.push({ server: server === preload.NO_SERVER ? 'clear' : server, client: fds % 2 ** preload.FD_BITS });
  }
  return (writeSync as (...a: unknown[]) => number).apply(fs, args);
};

const set = (server: number, client: number): Mark => ({ server, client });
const clear = (client: number): Mark => ({ server: 'clear', client });
const key = (m: Mark) => `${m.server}>${m.client}`;
const sorted = (ms: readonly Mark[]) => ms.map(key).sort();

function fdOf(socket: net.Socket | null | undefined): number {
  const handle = (socket as unknown as { _handle?: { fd?: number } } | null | undefined)?._handle;
  if (typeof handle?.fd !== 'number') throw new Error('socket without an fd');
  return handle.fd;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function listen(server: net.Server, at: string | number = 0): Promise<number> {
  return new Promise((resolve) => {
    if (typeof at === 'string') server.listen(at, () => resolve(0));
    else server.listen(at, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
  });
}

const close = (server: net.Server) => new Promise<void>((r) => server.close(() => r()));

/** GET through `mod`; resolves with the client socket's fd, once the response ended. */
function get(mod: typeof http | typeof https, options: https.RequestOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    const out = mod.get({ host: '127.0.0.1', ...options }, (res) => {
      const fd = fdOf(out.socket);
      res.resume();
      res.on('end', () => resolve(fd));
    });
    out.on('error', reject);
  });
}

/** A backend answering after `delayMs`. */
async function backend(delayMs: number): Promise<{ port: number; server: http.Server }> {
  const server = http.createServer((_req, res) => {
    setTimeout(() => res.end('ok'), delayMs);
  });
  server.keepAliveTimeout = 10_000;
  return { server, port: await listen(server) };
}

interface Frontend {
  readonly port: number;
  /** The marks this frontend's handlers expect, pushed as they learn their fds. */
  readonly expected: Mark[];
  close(): Promise<void>;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, expected: Mark[]) => void;

async function frontend(handler: Handler): Promise<Frontend> {
  const expected: Mark[] = [];
  const server = http.createServer((req, res) => handler(req, res, expected));
  const port = await listen(server);
  return { port, expected, close: () => close(server) };
}

/**
 * Requests to the frontend from the driver, at once or `spacingMs` apart;
 * their CLEAR marks. Its keep-alive connections stay open until `done()`,
 * so the frontend's server sockets do too.
 */
async function drive(port: number, paths: readonly string[], spacingMs = 0): Promise<{ marks: Mark[]; done(): void }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: paths.length });
  const fds = await Promise.all(
    paths.map(async (p, i) => {
      if (spacingMs > 0) await sleep(i * spacingMs);
      return get(http, { port, path: p, agent });
    }),
  );
  return { marks: fds.map(clear), done: () => agent.destroy() };
}

test.beforeEach(() => {
  marks.length = 0;
  markCalls = 0;
});

test.serial('one request in flight: its call is SET to its server fd, the driver call CLEAR', async (t) => {
  const be = await backend(0);
  const agent = new http.Agent({ keepAlive: true });
  const fe = await frontend((req, res, expected) => {
    const serverFd = fdOf(req.socket);
    get(http, { port: be.port, path: '/b/1', agent }).then((clientFd) => {
      expected.push(set(serverFd, clientFd));
      res.end('done');
    });
  });
  const { marks: driver, done } = await drive(fe.port, ['/r/1']);
  t.deepEqual(marks, [...driver, ...fe.expected], 'the driver request is written first, then the call');
  t.is(markCalls, 2);
  done();
  agent.destroy();
  await fe.close();
  await close(be.server);
});

test.serial('16 requests in flight over 4 keep-alive sockets: each call is SET to its own server fd', async (t) => {
  const be = await backend(50);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const fe = await frontend((req, res, expected) => {
    const serverFd = fdOf(req.socket);
    void sleep(5)
      .then(() => get(http, { port: be.port, path: req.url!.replace('/r/', '/b/'), agent }))
      .then((clientFd) => {
        expected.push(set(serverFd, clientFd));
        res.end('done');
      });
  });
  const paths = Array.from({ length: 16 }, (_, i) => `/r/${i}`);
  const { marks: driver, done } = await drive(fe.port, paths);
  t.is(fe.expected.length, 16);
  t.is(new Set(fe.expected.map((m) => m.server)).size, 16, '16 server connections');
  t.is(new Set(fe.expected.map((m) => m.client)).size, 4, 'the calls shared 4 client sockets');
  t.deepEqual(sorted(marks), sorted([...driver, ...fe.expected]));
  done();
  agent.destroy();
  await fe.close();
  await close(be.server);
});

// Node's Agent itself runs a queued request in the async scope it was added
// from; the next test is the case where only the context taken at creation
// is right.
test.serial('a keep-alive socket freed by request A and handed to queued request B is marked for B', async (t) => {
  const be = await backend(30);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const fe = await frontend((req, res, expected) => {
    const serverFd = fdOf(req.socket);
    const a = req.url === '/r/a';
    void get(http, { port: be.port, path: a ? '/b/a' : '/b/b', agent }).then(async (clientFd) => {
      expected.push(set(serverFd, clientFd));
      // A's response stays open while B's call is written from A's callbacks.
      if (a) await sleep(60);
      res.end('done');
    });
  });
  const { marks: driver, done } = await drive(fe.port, ['/r/a', '/r/b'], 10);
  const [a, b] = fe.expected as [Mark, Mark];
  t.is(a.client, b.client, 'B got the socket A freed');
  t.not(a.server, b.server);
  t.deepEqual(sorted(marks), sorted([...driver, ...fe.expected]));
  done();
  agent.destroy();
  await fe.close();
  await close(be.server);
});

test.serial("a request whose first bytes are written from another request's callbacks is marked for the request that created it", async (t) => {
  // B creates a POST and writes its body when A's handler hands it data:
  // the bytes go out in A's async context, the request is B's.
  const be = await backend(0);
  const agent = new http.Agent({ keepAlive: true });
  let handOver: ((body: string) => void) | undefined;
  const fe = await frontend((req, res, expected) => {
    const serverFd = fdOf(req.socket);
    if (req.url === '/r/b') {
      const out = http.request({ host: '127.0.0.1', port: be.port, path: '/b/b', method: 'POST', agent }, (up) => {
        const clientFd = fdOf(out.socket);
        up.resume();
        up.on('end', () => {
          expected.push(set(serverFd, clientFd));
          res.end('done');
        });
      });
      handOver = (body) => out.end(body);
      return;
    }
    // A: waits for B's request to exist, then writes B's body from here.
    void (async () => {
      while (!handOver) await sleep(2);
      handOver('from a');
      await sleep(40);
      res.end('done');
    })();
  });
  const { marks: driver, done } = await drive(fe.port, ['/r/b', '/r/a'], 10);
  t.is(fe.expected.length, 1);
  t.deepEqual(sorted(marks), sorted([...driver, ...fe.expected]));
  done();
  agent.destroy();
  await fe.close();
  await close(be.server);
});

test.serial('a call made after the response ended is CLEAR', async (t) => {
  const be = await backend(0);
  const agent = new http.Agent({ keepAlive: true });
  let after: Promise<void> = Promise.resolve();
  const fe = await frontend((_req, res, expected) => {
    res.end('done');
    after = sleep(10)
      .then(() => get(http, { port: be.port, path: '/b/late', agent }))
      .then((clientFd) => void expected.push(clear(clientFd)));
  });
  const { marks: driver, done } = await drive(fe.port, ['/r/1']);
  await after;
  t.is(fe.expected.length, 1);
  t.deepEqual(marks, [...driver, ...fe.expected]);
  done();
  agent.destroy();
  await fe.close();
  await close(be.server);
});

test.serial('a call made after the client closed the server connection is CLEAR (its fd may name another connection by then)', async (t) => {
  const be = await backend(0);
  const agent = new http.Agent({ keepAlive: true });
  let call: Promise<number> | undefined;
  const closed = new Promise<void>((resolve) => {
    void frontend((req) => {
      // Awaited in the handler's context ('close' itself is emitted in the
      // connection's, which holds no request).
      void new Promise((r) => req.socket.once('close', r)).then(() => {
        call = get(http, { port: be.port, path: '/b/orphan', agent });
        resolve();
      });
    }).then((fe) => {
      const out = http.get({ host: '127.0.0.1', port: fe.port, path: '/r/1', agent: false });
      out.on('error', () => undefined);
      setTimeout(() => out.destroy(), 20);
      void closed.then(() => fe.close());
    });
  });
  await closed;
  const clientFd = await call!;
  t.is(marks.length, 2, 'the driver request (CLEAR) and the call');
  t.deepEqual(marks[1], clear(clientFd));
  agent.destroy();
  await close(be.server);
});

test.serial('a background timer started outside any request calls while a request is in flight: CLEAR', async (t) => {
  const be = await backend(0);
  const agent = new http.Agent({ keepAlive: true });
  let background: Promise<number> | undefined;
  const fe = await frontend((_req, res) => {
    setTimeout(() => res.end('done'), 60);
  });
  // Created here, in no request's context; fires while /r/1 is in flight.
  const timer = new Promise<void>((resolve) =>
    setTimeout(() => {
      background = get(http, { port: be.port, path: '/b/background', agent });
      resolve();
    }, 20),
  );
  const { marks: driver, done } = await drive(fe.port, ['/r/1']);
  await timer;
  const clientFd = await background!;
  t.deepEqual(sorted(marks), sorted([...driver, clear(clientFd)]));
  done();
  agent.destroy();
  await fe.close();
  await close(be.server);
});

test.serial('a call from a nested async chain (timer, promise, await) inside the handler is SET to its server fd', async (t) => {
  const be = await backend(0);
  const agent = new http.Agent({ keepAlive: true });
  const fe = await frontend((req, res, expected) => {
    const serverFd = fdOf(req.socket);
    setTimeout(() => {
      void Promise.resolve()
        .then(async () => {
          await sleep(2);
          await new Promise((r) => setImmediate(r));
          return get(http, { port: be.port, path: '/b/nested', agent });
        })
        .then((clientFd) => {
          expected.push(set(serverFd, clientFd));
          res.end('done');
        });
    }, 5);
  });
  const { marks: driver, done } = await drive(fe.port, ['/r/1', '/r/2']);
  t.is(fe.expected.length, 2);
  t.deepEqual(sorted(marks), sorted([...driver, ...fe.expected]));
  done();
  agent.destroy();
  await fe.close();
  await close(be.server);
});

test.serial('a request built with new http.ClientRequest inside a handler carries no context: CLEAR', async (t) => {
  const be = await backend(0);
  const fe = await frontend((_req, res, expected) => {
    const out = new http.ClientRequest({ host: '127.0.0.1', port: be.port, path: '/b/raw', agent: false }, (up) => {
      const clientFd = fdOf(out.socket);
      up.resume();
      up.on('end', () => {
        expected.push(clear(clientFd));
        res.end('done');
      });
    });
    out.end();
  });
  const { marks: driver, done } = await drive(fe.port, ['/r/1']);
  t.deepEqual(marks, [...driver, ...fe.expected]);
  done();
  await fe.close();
  await close(be.server);
});

test.serial('a request whose server socket is not TCP is CLEAR; a call over a unix socket is not marked', async (t) => {
  const be = await backend(0);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'preload-'));
  const unixBackend = http.createServer((_req, res) => res.end('ok'));
  await listen(unixBackend, path.join(dir, 'be.sock'));
  const agent = new http.Agent({ keepAlive: true });
  const expected: Mark[] = [];
  const fe = http.createServer((_req, res) => {
    void get(http, { socketPath: path.join(dir, 'be.sock'), path: '/b/unix' })
      .then(() => get(http, { port: be.port, path: '/b/tcp', agent }))
      .then((clientFd) => {
        expected.push(clear(clientFd));
        res.end('done');
      });
  });
  await listen(fe, path.join(dir, 'fe.sock'));
  await get(http, { socketPath: path.join(dir, 'fe.sock'), path: '/r/1' });
  t.deepEqual(marks, expected, 'one mark: the TCP call, CLEAR');
  agent.destroy();
  await close(fe);
  await close(unixBackend);
  await close(be.server);
  fs.rmSync(dir, { recursive: true, force: true });
});

test.serial('https: server and client over TLS are marked with their TCP fds', async (t) => {
  const pki: TestPki = await makeTestPki();
  const tlsBackend = https.createServer({ key: pki.read(pki.serverKey), cert: pki.read(pki.serverCert) }, (_req, res) => res.end('ok'));
  const bePort = await listen(tlsBackend);
  const agent = new https.Agent({ keepAlive: true, ca: pki.read(pki.caCert) });
  const expected: Mark[] = [];
  const fe = https.createServer({ key: pki.read(pki.serverKey), cert: pki.read(pki.serverCert) }, (req, res) => {
    const serverFd = fdOf(req.socket);
    void get(https, { port: bePort, path: '/b/tls', agent }).then((clientFd) => {
      expected.push(set(serverFd, clientFd));
      res.end('done');
    });
  });
  const fePort = await listen(fe);
  const driverAgent = new https.Agent({ keepAlive: true, ca: pki.read(pki.caCert) });
  const driverFd = await get(https, { port: fePort, path: '/r/tls', agent: driverAgent });
  t.deepEqual(marks, [clear(driverFd), ...expected]);
  t.is(expected.length, 1);
  agent.destroy();
  driverAgent.destroy();
  await close(fe);
  await close(tlsBackend);
  pki.cleanup();
});

test.serial('the preload loaded twice patches once', (t) => {
  const emit = http.Server.prototype.emit;
  delete require.cache[require.resolve(PRELOAD)];
  require(PRELOAD);
  t.is(http.Server.prototype.emit, emit);
});

test.serial('ESM importers of node:http and node:https get the wrapped request and get (NODE_OPTIONS=--require)', (t) => {
  const source = "import { request, get } from 'node:http'; import https, { get as tlsGet } from 'node:https'; " +
    'console.log(JSON.stringify([request.name, get.name, https.request.name, tlsGet.name]));';
  const out = spawnSync(process.execPath, ['--input-type=module', '-e', source], {
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: `--require ${PRELOAD}` },
  });
  t.is(out.status, 0, out.stderr);
  t.deepEqual(JSON.parse(out.stdout), ['requestInCallerContext', 'requestInCallerContext', 'requestInCallerContext', 'requestInCallerContext']);
});
