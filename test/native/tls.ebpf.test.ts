// eBPF: TLS plaintext at the OpenSSL API (group "tls", bpf/uprobes/openssl.bpf.h)
// against the real socket_trace object, the probes attached by the test
// itself to the library file. curl -> a Python ssl server, both on the
// system libssl.so.3: the exact request and response arrive as SRC_TLS data
// events of the right connection (ids, tuple, role, plaintext positions),
// no ciphertext is shipped once an SSL object is tied, and the counters say
// which evidence tied each side (curl's SSL_connect is not probed: its first
// SSL_write ties by the nested syscall; Python's SSL_do_handshake ties by the
// next write). Then a Node https client and server, whose OpenSSL is linked
// into /usr/bin/node and fed through memory BIOs: the next-write tie.

import { execFileSync, spawn } from 'node:child_process';
import * as readline from 'node:readline';

import { decodeBatch, newDecodeStats } from '../../src/capture/decode';
import type { CaptureEvent, DataEvent, OpenEvent } from '../../src/capture/events';
import { KERNEL_STATS } from '../../src/capture/layout';
import { OPENSSL_PROBES } from '../../src/capture/tls/library';
import { loadNativeBinding, type SocketTraceSession } from '../../src/capture/native-binding';
import type { ExecutionContext } from 'ava';
import { ebpfTest } from '../helpers/ebpf';
import { testCertificates } from '../helpers/tls';
import { openSession, waitFor } from './support';

const LIBSSL = '/usr/lib/x86_64-linux-gnu/libssl.so.3';
const NODE = '/usr/bin/node';

function attachTls(session: SocketTraceSession, binary: string): void {
  for (const p of OPENSSL_PROBES) session.attachUprobe(p.program, binary, p.symbol, { retprobe: p.retprobe });
}

/** BPF run time per call of the TLS programs, when kernel.bpf_stats_enabled is on (for the notes; asserts nothing). */
function tlsProgramCost(session: SocketTraceSession): string {
  const parts: string[] = [];
  for (const p of session.programs()) {
    if (!/^(uprobe|uretprobe)_ssl_/.test(p.name) && !/^tp_sys_exit_(write|read|sendto|recvfrom)$/.test(p.name)) continue;
    const info = JSON.parse(execFileSync('bpftool', ['prog', 'show', 'id', String(p.id), '-j'], { encoding: 'utf8' })) as { run_time_ns?: number; run_cnt?: number };
    if (info.run_cnt) parts.push(`${p.name} ${info.run_cnt} calls ${Math.round((info.run_time_ns ?? 0) / info.run_cnt)} ns/call`);
  }
  return parts.join('; ') || 'kernel.bpf_stats_enabled is off';
}

const stat = (kernel: bigint[], name: (typeof KERNEL_STATS)[number]) => kernel[KERNEL_STATS.indexOf(name)]!;

const isData = (e: CaptureEvent): e is DataEvent => e.type === 'data';

/** The bytes of one direction of a connection's plaintext stream, checked contiguous from 0. */
function plaintext(events: DataEvent[], connId: number, dir: 'egress' | 'ingress'): string {
  const mine = events.filter((e) => e.connId === connId && e.source === 'tls' && e.dir === dir).sort((a, b) => a.pos - b.pos);
  let pos = 0;
  const parts: Buffer[] = [];
  for (const e of mine) {
    if (e.pos !== pos || e.truncated) return `<gap or truncation at ${pos}: event at ${e.pos}>`;
    parts.push(e.data);
    pos += e.size;
  }
  return Buffer.concat(parts).toString('latin1');
}

/**
 * The client's and the server's end of the one connection to `port`, once
 * both closed, and the data events of the two processes; undefined (the
 * failed assertion says which is missing) when an end was not seen.
 */
async function bothEnds(
  t: ExecutionContext,
  events: readonly CaptureEvent[],
  serverPid: number,
  clientPid: number,
  port: number,
): Promise<{ data: DataEvent[]; clientConn: OpenEvent; serverConn: OpenEvent } | undefined> {
  const tgids = new Set([serverPid, clientPid]);
  const mine = () => events.filter((e) => (e.type === 'open' || e.type === 'close' || e.type === 'data') && tgids.has(e.tgid));
  t.true(await waitFor(() => mine().filter((e) => e.type === 'close').length >= 2, 5000), 'both connections closed');
  const opens = mine().filter((e): e is OpenEvent => e.type === 'open');
  const clientConn = opens.find((e) => e.tgid === clientPid && e.tuple.remotePort === port);
  const serverConn = opens.find((e) => e.tgid === serverPid && e.tuple.localPort === port);
  t.truthy(clientConn, 'client connect seen');
  t.truthy(serverConn, 'server accept seen');
  if (!clientConn || !serverConn) return undefined;
  return { data: mine().filter(isData), clientConn, serverConn };
}

const RESPONSE = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello';

// Serves one request over TLS, then exits; waits for a line on stdin first (the test selects it meanwhile).
const PY_SERVER = `
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(1)
print(ls.getsockname()[1], flush=True)
sys.stdin.readline()
conn, _ = ls.accept()
s = ctx.wrap_socket(conn, server_side=True)
req = b""
while b"\\r\\n\\r\\n" not in req:
    req += s.recv(4096)
s.sendall(${JSON.stringify(RESPONSE)}.encode())
s.close()
del s
print("done", flush=True)
`;

// Sends the request over TLS without calling do_handshake first: SSL_write_ex makes the handshake, so
// its ClientHello write is a syscall nested in a TLS call. Waits for the port on stdin.
const PY_CLIENT = `
import socket, ssl, sys
port = int(sys.stdin.readline())
ctx = ssl.create_default_context(cafile=sys.argv[1])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="127.0.0.1", do_handshake_on_connect=False)
s.sendall(("GET /hello HTTP/1.1\\r\\nHost: 127.0.0.1:%d\\r\\n\\r\\n" % port).encode())
got = b""
while True:
    d = s.recv(4096)
    if not d: break
    got += d
print(got.split(b"\\r\\n\\r\\n", 1)[1].decode(), end="", flush=True)
`;

/** curl or a Python client (their pid selected before they connect) against the Python server. */
async function pythonServerExchange(
  t: ExecutionContext,
  clientArgs: (caCert: string) => readonly [string, string[]],
  ties: { nested: bigint; write: bigint },
): Promise<void> {
  const certs = await testCertificates();
  const events: CaptureEvent[] = [];
  const decodeStats = newDecodeStats();
  const session = openSession(loadNativeBinding(), {
    groups: { sockets: true, syscalls: false, tcp: false, tls: true },
    onBatch: (batch) => decodeBatch(batch, (e) => events.push(isData(e) ? { ...e, data: Buffer.from(e.data), tuple: e.tuple } : e), decodeStats),
  });
  const server = spawn('/usr/bin/python3', ['-c', PY_SERVER, certs.serverCert, certs.serverKey], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: string[] = [];
  readline.createInterface({ input: server.stdout! }).on('line', (l) => lines.push(l));
  const [cmd, args] = clientArgs(certs.caCert);
  const client = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    session.attachAll();
    attachTls(session, LIBSSL);
    session.start();
    t.true(await waitFor(() => lines.length >= 1, 10000), 'server port');
    const port = Number(lines[0]);
    session.selectTgid(server.pid!, true);
    session.selectTgid(client.pid!, true);
    server.stdin!.write('\n');
    let out = '';
    client.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const clientExit = new Promise<number | null>((resolve) => client.once('exit', resolve));
    client.stdin!.end(`${port}\n`);
    t.is(await clientExit, 0, 'client succeeded');
    t.is(out, 'hello');
    t.true(await waitFor(() => lines.length >= 2, 10000), 'server done');

    const ends = await bothEnds(t, events, server.pid!, client.pid!, port);
    if (!ends) return;
    const { data, clientConn, serverConn } = ends;

    const kernel = session.stats().kernel;
    t.log(`stats: ${KERNEL_STATS.filter((n) => n.startsWith('tls_')).map((n) => `${n}=${stat(kernel, n)}`).join(' ')}`);
    const shipped = (c: OpenEvent) => data.filter((e) => e.connId === c.connId).map((e) => `${e.source} ${e.dir} ${e.pos}+${e.size}`);
    t.log(`client: ${shipped(clientConn).join(', ')}`);
    t.log(`server: ${shipped(serverConn).join(', ')}`);

    const request = `GET /hello HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`;
    t.is(plaintext(data, clientConn.connId, 'egress'), request);
    t.is(plaintext(data, clientConn.connId, 'ingress'), RESPONSE);
    t.is(plaintext(data, serverConn.connId, 'ingress'), request);
    t.is(plaintext(data, serverConn.connId, 'egress'), RESPONSE);
    for (const e of data.filter((x) => x.source === 'tls')) {
      const conn: OpenEvent | undefined = e.connId === clientConn.connId ? clientConn : e.connId === serverConn.connId ? serverConn : undefined;
      t.truthy(conn, `TLS event of a known connection (${e.connId})`);
      if (!conn) continue;
      t.is(e.role, conn === clientConn ? 'client' : 'server');
      t.is(e.tgid, conn.tgid);
      t.is(e.fd, conn.fd);
      t.deepEqual(e.tuple, conn.tuple);
    }
    // After the first TLS event of a connection, no socket data event of it.
    for (const conn of [clientConn, serverConn]) {
      const seq = data.filter((e) => e.connId === conn.connId);
      const firstTls = seq.findIndex((e) => e.source === 'tls');
      t.true(firstTls >= 0);
      t.deepEqual(seq.slice(firstTls).filter((e) => e.source !== 'tls').map((e) => `${e.source} ${e.dir} ${e.size}`), [], 'no ciphertext after the tie');
    }
    // Both tied by their first write (the ClientHello, the ServerHello): the
    // client shipped nothing, the server only the ClientHello it read first
    // (OpenSSL reads a record's 5-byte header, then its body).
    t.deepEqual(shipped(clientConn).filter((e) => !e.startsWith('tls')), []);
    const serverCiphertext = data.filter((e) => e.connId === serverConn.connId && e.source !== 'tls');
    t.deepEqual(serverCiphertext.filter((e) => e.dir !== 'ingress').map((e) => `${e.source} ${e.dir} ${e.size}`), []);
    t.deepEqual([...Buffer.concat(serverCiphertext.map((e) => e.data)).subarray(0, 3)], [0x16, 0x03, 0x01], 'a TLS handshake record');

    t.is(stat(kernel, 'tls_ties_nested'), ties.nested, 'ties by a syscall nested in SSL_write');
    t.is(stat(kernel, 'tls_ties_write'), ties.write, 'ties by the write after SSL_do_handshake');
    t.is(stat(kernel, 'tls_ties_replaced'), 0n);
    t.is(stat(kernel, 'tls_untied_calls'), 0n);
    t.is(stat(kernel, 'tls_untied_bytes'), 0n);
    t.is(stat(kernel, 'tls_ssl_conns_full'), 0n);
    t.true(stat(kernel, 'tls_ciphertext_syscalls') > 0n);
    t.true(stat(kernel, 'tls_ciphertext_bytes') > BigInt(request.length + RESPONSE.length), 'ciphertext is larger than the plaintext');
    t.true(stat(kernel, 'tls_untied_at_free') >= 1n, 'SSL_free removes ties');
    t.is(decodeStats.malformed, 0);
    t.log(`bpf cost: ${tlsProgramCost(session)}`);
  } finally {
    client.kill();
    server.kill();
    session.close();
  }
}

ebpfTest.serial('curl -> Python ssl server: exact plaintext as SRC_TLS events, no ciphertext after the tie; both tied by their handshake write (SSL_connect calls SSL_do_handshake)', (t) =>
  pythonServerExchange(
    t,
    (caCert) => ['/bin/sh', ['-c', `read port; exec curl -sS --http1.1 --cacert ${caCert} -H 'User-Agent:' -H 'Accept:' "https://127.0.0.1:$port/hello"`]],
    { nested: 0n, write: 2n },
  ),
);

ebpfTest.serial('Python client without do_handshake -> Python ssl server: the client tied by the ClientHello nested in SSL_write_ex', (t) =>
  pythonServerExchange(t, (caCert) => ['/usr/bin/python3', ['-c', PY_CLIENT, caCert]], { nested: 1n, write: 1n }),
);

// Node: serves one request, then exits. The client waits for a line (the port) on stdin.
const NODE_SERVER = `
const https = require('https'), fs = require('fs');
const server = https.createServer({ key: fs.readFileSync(process.argv[2]), cert: fs.readFileSync(process.argv[1]) }, (req, res) => {
  req.resume();
  req.on('end', () => { res.setHeader('Connection', 'close'); res.end('hello'); server.close(); });
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
`;
const NODE_CLIENT = `
const https = require('https'), fs = require('fs');
process.stdin.once('data', (line) => {
  const port = Number(String(line).trim());
  https.get({ host: '127.0.0.1', port, path: '/hello', ca: fs.readFileSync(process.argv[1]), agent: false }, (res) => {
    let body = '';
    res.on('data', (d) => (body += d));
    res.on('end', () => { console.log(body); process.stdin.destroy(); });
  });
});
`;

ebpfTest.serial('Node https client -> Node https server (OpenSSL in /usr/bin/node, memory BIOs): plaintext both ways, tied by the next write', async (t) => {
  const certs = await testCertificates();
  const events: CaptureEvent[] = [];
  const decodeStats = newDecodeStats();
  const session = openSession(loadNativeBinding(), {
    groups: { sockets: true, syscalls: false, tcp: false, tls: true },
    onBatch: (batch) => decodeBatch(batch, (e) => events.push(isData(e) ? { ...e, data: Buffer.from(e.data), tuple: e.tuple } : e), decodeStats),
  });
  const server = spawn(NODE, ['-e', NODE_SERVER, certs.serverCert, certs.serverKey], { stdio: ['ignore', 'pipe', 'inherit'] });
  const client = spawn(NODE, ['-e', NODE_CLIENT, certs.caCert], { stdio: ['pipe', 'pipe', 'inherit'] });
  const serverLines: string[] = [];
  readline.createInterface({ input: server.stdout! }).on('line', (l) => serverLines.push(l));
  let out = '';
  client.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  try {
    session.attachAll();
    attachTls(session, NODE);
    session.start();
    t.true(await waitFor(() => serverLines.length >= 1, 10000), 'server port');
    const port = Number(serverLines[0]);
    session.selectTgid(server.pid!, true);
    session.selectTgid(client.pid!, true);
    const clientExit = new Promise<number | null>((resolve) => client.once('exit', resolve));
    client.stdin!.write(`${port}\n`);
    t.is(await clientExit, 0, 'client succeeded');
    t.is(out, 'hello\n');

    const ends = await bothEnds(t, events, server.pid!, client.pid!, port);
    if (!ends) return;
    const { data, clientConn, serverConn } = ends;

    const request = plaintext(data, clientConn.connId, 'egress');
    const response = plaintext(data, serverConn.connId, 'egress');
    t.true(request.startsWith(`GET /hello HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`) && request.endsWith('\r\n\r\n'), JSON.stringify(request));
    t.true(response.startsWith('HTTP/1.1 200 OK\r\n') && response.endsWith('hello'), JSON.stringify(response));
    t.is(plaintext(data, serverConn.connId, 'ingress'), request, 'what the client wrote is what the server read');
    t.is(plaintext(data, clientConn.connId, 'ingress'), response);
    for (const e of data.filter((x) => x.source === 'tls')) {
      const conn: OpenEvent | undefined = e.connId === clientConn.connId ? clientConn : serverConn;
      t.is(e.role, conn === clientConn ? 'client' : 'server');
      t.is(e.fd, conn.fd);
      t.deepEqual(e.tuple, conn.tuple);
    }
    for (const conn of [clientConn, serverConn]) {
      const seq = data.filter((e) => e.connId === conn.connId);
      const firstTls = seq.findIndex((e) => e.source === 'tls');
      t.deepEqual(seq.slice(firstTls).filter((e) => e.source !== 'tls').map((e) => `${e.source} ${e.dir} ${e.size}`), [], 'no ciphertext after the tie');
    }
    // The client's ClientHello write ties it: nothing of it ships; the server ships its ClientHello read.
    t.deepEqual(data.filter((e) => e.connId === clientConn.connId && e.source !== 'tls').map((e) => e.source), []);

    const kernel = session.stats().kernel;
    t.is(stat(kernel, 'tls_ties_write'), 2n, 'the ClientHello and the ServerHello writes');
    t.is(stat(kernel, 'tls_ties_nested'), 0n, 'memory BIOs make no syscall inside a TLS call');
    t.is(stat(kernel, 'tls_untied_calls'), 0n);
    t.true(stat(kernel, 'tls_ciphertext_syscalls') > 0n);
    t.is(decodeStats.malformed, 0);
    t.log(`bpf cost: ${tlsProgramCost(session)}`);
    t.log(`stats: ${KERNEL_STATS.filter((n) => n.startsWith('tls_')).map((n) => `${n}=${stat(kernel, n)}`).join(' ')}`);
  } finally {
    client.kill();
    server.kill();
    session.close();
  }
});
