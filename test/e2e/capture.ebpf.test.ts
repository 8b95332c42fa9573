// End-to-end capture with real eBPF: the CLI as users run it, against real
// programs (Python sockets, Node net, curl), asserting exact bytes, sizes,
// directions, roles, tuples, and connection lifecycles.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { CaptureJson } from '../../src/cli/capture-format';
import { ebpfTest } from '../helpers/ebpf';
import { bpfProgramsHeldBy, linkedProgramNames, loadedPrograms } from '../native/support';
import { ROOT, sleep, startAgent, startWorkload } from '../helpers/agent';

const PY = '/usr/bin/python3';
const PROGRAMS = path.join(ROOT, 'test', 'e2e', 'programs');
const PY_WORKLOAD = path.join(PROGRAMS, 'socket_workload.py');

const test = ebpfTest.serial;

function parse(lines: string[]): CaptureJson[] {
  return lines.map((l) => JSON.parse(l) as CaptureJson);
}

function stream(events: CaptureJson[], conn: string, dir: 'egress' | 'ingress'): Buffer {
  return Buffer.concat(events.filter((e) => e.type === 'data' && e.conn === conn && e.dir === dir).map((e) => Buffer.from(e.data, 'base64')));
}

function sizes(events: CaptureJson[], conn: string, dir: 'egress' | 'ingress'): number[] {
  return events.filter((e) => e.type === 'data' && e.conn === conn && e.dir === dir).map((e) => e.size);
}

/** Runs a Python scenario under `capture --json --pid`, returns its result and the capture. */
/**
 * Starts a workload, attaches `capture` with the given options (default: JSON,
 * selecting the workload's pid), lets the workload run, then stops the agent.
 */
async function captureWorkload(cmd: string, args: string[], options = (pid: number) => ['--json', '--pid', String(pid)]) {
  const w = await startWorkload(cmd, args);
  const agent = await startAgent(['capture', ...options(w.pid)]);
  w.go();
  const result = await w.result();
  await sleep(300);
  const { code, lines } = await agent.stop();
  return { w, result, code, lines, agent };
}

/** A Python scenario of socket_workload.py under `capture --json --pid`. */
async function capturePython(scenario: string, extra: string[] = []) {
  const r = await captureWorkload(PY, [PY_WORKLOAD, scenario, ...extra]);
  return { ...r, events: parse(r.lines) };
}

test('Python client and server: exact bytes, sizes per syscall, roles, tuples, open/close', async (t) => {
  // An unselected process doing the same traffic at the same time must not show up.
  const other = await startWorkload(PY, [PY_WORKLOAD, 'syscalls']);
  const w = await startWorkload(PY, [PY_WORKLOAD, 'syscalls']);
  const agent = await startAgent(['capture', '--json', '--pid', String(w.pid)]);
  const programs = bpfProgramsHeldBy(agent.pid);
  t.true(linkedProgramNames(programs).length >= 28, 'every tracepoint attached');
  other.go();
  w.go();
  const [result] = await Promise.all([w.result(), other.result()]);
  await sleep(300);
  const { code, lines } = await agent.stop();
  t.is(code, 0);
  t.deepEqual(linkedProgramNames(programs), [], 'SIGINT detached every link');
  t.deepEqual(loadedPrograms(programs), [], 'and unloaded every program');
  const events = parse(lines);
  const port = result.port as number;
  const clientPort = result.client_port as number;

  t.deepEqual([...new Set(events.map((e) => e.pid))], [w.pid], 'only the selected process, never the agent or the other');
  const opens = events.filter((e) => e.type === 'open');
  t.is(opens.length, 2);
  const client = opens.find((e) => e.role === 'client')!;
  const server = opens.find((e) => e.role === 'server')!;
  t.like(client, { fd: result.client_fd, local: `127.0.0.1:${clientPort}`, remote: `127.0.0.1:${port}`, comm: 'python3' });
  t.like(server, { fd: result.server_fd, local: `127.0.0.1:${port}`, remote: `127.0.0.1:${clientPort}` });
  t.not(client.conn, server.conn);
  t.not(client.tid, server.tid, 'the server end runs in its own thread');

  t.is(stream(events, client.conn, 'egress').toString(), result.request as string);
  t.is(stream(events, server.conn, 'ingress').toString(), result.request as string);
  t.is(stream(events, server.conn, 'egress').toString(), result.reply as string);
  t.is(stream(events, client.conn, 'ingress').toString(), result.reply as string);
  // One event per syscall, vectored ones whole: write, send, sendmsg(2 iovecs), writev(2 iovecs).
  t.deepEqual(sizes(events, client.conn, 'egress'), [15, 5, 20, 18]);
  t.deepEqual(sizes(events, server.conn, 'egress'), [12, 15, 10, 6]);

  for (const e of events.filter((x) => x.type === 'data')) {
    const open = e.conn === client.conn ? client : server;
    t.is(e.role, open.role);
    t.is(e.local, open.local);
    t.is(e.remote, open.remote);
    t.false(e.truncated);
    t.is(Buffer.from(e.data, 'base64').length, e.size);
    t.regex(e.ts, /^\d{19}$/);
  }
  const closes = events.filter((e) => e.type === 'close');
  t.deepEqual(closes.map((e) => e.conn).sort(), [client.conn, server.conn].sort());
});

test('IPv6: tuples in brackets, exact bytes', async (t) => {
  const { result, code, events } = await capturePython('syscalls', ['--ipv6']);
  t.is(code, 0);
  const client = events.find((e) => e.type === 'open' && e.role === 'client')!;
  t.is(client.local, `[::1]:${result.client_port}`);
  t.is(client.remote, `[::1]:${result.port}`);
  t.is(stream(events, client.conn, 'egress').toString(), result.request as string);
});

test('a reused fd number gets a new connection id', async (t) => {
  const { result, code, events } = await capturePython('fdreuse');
  t.is(code, 0);
  const fds = result.client_fds as number[];
  t.is(fds[0], fds[1], 'the kernel handed out the same fd twice');
  const clientOpens = events.filter((e) => e.type === 'open' && e.role === 'client');
  t.is(clientOpens.length, 2);
  t.is(clientOpens[0]!.fd, clientOpens[1]!.fd);
  t.not(clientOpens[0]!.conn, clientOpens[1]!.conn);
  const ports = result.client_ports as number[];
  t.deepEqual(clientOpens.map((e) => e.local), ports.map((p) => `127.0.0.1:${p}`));
  t.is(stream(events, clientOpens[0]!.conn, 'egress').toString(), 'first');
  t.is(stream(events, clientOpens[1]!.conn, 'egress').toString(), 'second');
  t.is(events.filter((e) => e.type === 'close' && e.role === 'client').length, 2);
});

// The socket cache (bpf/socket_trace.bpf.c) and the fd -> connection table
// compare kernel addresses, which a new file or socket may reuse: an fd that
// stops naming its socket without a close() must end its connection at once.
for (const scenario of ['dup2', 'closerange'] as const) {
  test(`an fd replaced without close() (${scenario}): the old connection ends, the new bytes are the new connection's`, async (t) => {
    const { result, code, events } = await capturePython(scenario);
    t.is(code, 0);
    const opens = events.filter((e) => e.type === 'open');
    const a = opens.find((e) => e.local === `127.0.0.1:${result.a_port}`);
    if (!a) return t.fail(`opens: ${JSON.stringify(opens)}`);
    t.is(stream(events, a.conn, 'egress').toString(), 'first');
    const second = events.filter((e) => e.type === 'data' && e.dir === 'egress' && Buffer.from(e.data, 'base64').toString() === 'second');
    t.is(second.length, 1);
    const b = opens.find((e) => e.conn === second[0]!.conn);
    t.like(b, { local: `127.0.0.1:${result.b_port}` });
    if (scenario === 'closerange') t.is(b!.fd, result.fd as number);
    t.not(b!.conn, a.conn);
    // A ended when its fd stopped naming it (not at exit, nor when the fd
    // number was next used), before B even opened; /dev/null's bytes are
    // nobody's.
    const closeA = events.find((e) => e.type === 'close' && e.conn === a.conn);
    t.like(closeA, { fd: result.fd, reason: scenario === 'dup2' ? 'replaced' : 'close' });
    t.false(events.some((e) => e.type === 'data' && Buffer.from(e.data, 'base64').toString() === 'gone'));
    const firstOfB = events.indexOf(b!);
    t.true(events.indexOf(closeA!) < firstOfB);
  });
}

test('a 1 MiB write keeps its true size; the capture is a prefix of the data', async (t) => {
  const { result, code, events } = await capturePython('big');
  t.is(code, 0);
  t.is(result.written, 1 << 20);
  const client = events.find((e) => e.type === 'open' && e.role === 'client')!;
  const writes = events.filter((e) => e.type === 'data' && e.conn === client.conn && e.dir === 'egress');
  t.is(writes.length, 1, 'one write syscall, one event');
  const w = writes[0]!;
  t.is(w.size, 1 << 20);
  t.true(w.truncated);
  const data = Buffer.from(w.data, 'base64');
  t.is(data.length, 16384);
  t.true(data.equals(Buffer.from(Array.from({ length: 16384 }, (_, i) => i % 251))));
  // The server's reads add up to the same megabyte.
  const server = events.find((e) => e.type === 'open' && e.role === 'server')!;
  t.is(sizes(events, server.conn, 'ingress').reduce((a, b) => a + b, 0), 1 << 20);
});

test('a connection opened before the agent: role unknown, bytes exact', async (t) => {
  const { result, code, events } = await capturePython('existing');
  t.is(code, 0);
  const data = events.filter((e) => e.type === 'data');
  t.true(data.length >= 4);
  t.true(data.every((e) => e.role === 'unknown'));
  const clientSide = data.find((e) => e.local === `127.0.0.1:${result.client_port}`)!;
  t.is(stream(events, clientSide.conn, 'egress').toString(), 'late-hello');
  t.is(stream(events, clientSide.conn, 'ingress').toString(), 'late-reply');
  const opens = events.filter((e) => e.type === 'open');
  t.true(opens.every((e) => e.role === 'unknown'), 'opens for pre-existing connections say unknown');
});

test('Node net client and server', async (t) => {
  const { w, result, code, lines } = await captureWorkload(process.execPath, [path.join(PROGRAMS, 'node_workload.js')]);
  t.is(code, 0);
  const events = parse(lines);
  const client = events.find((e) => e.type === 'open' && e.role === 'client')!;
  const server = events.find((e) => e.type === 'open' && e.role === 'server')!;
  t.is(client.local, `127.0.0.1:${result.clientPort}`);
  t.is(client.remote, `127.0.0.1:${w.hello.port}`);
  t.is(server.remote, client.local);
  t.is(stream(events, client.conn, 'egress').toString(), 'ping-from-node');
  t.is(stream(events, server.conn, 'ingress').toString(), 'ping-from-node');
  t.is(stream(events, server.conn, 'egress').toString(), 'pong-from-node');
  t.is(stream(events, client.conn, 'ingress').toString(), 'pong-from-node');
  t.is(events.filter((e) => e.type === 'close').length, 2);
});

for (const exe of ['curl', 'cur?']) {
  test(`--exe ${exe} picks up a process started after the agent (curl against a Python server)`, async (t) => {
    const server = await startWorkload(PY, ['-u', '-c', HTTP_SERVER]);
    const port = server.hello.port as number;
    try {
      const agent = await startAgent(['capture', '--json', '--exe', exe]);
      t.is(curlStatus(port, '/hello'), '200');
      await sleep(300);
      const { code, lines } = await agent.stop();
      t.is(code, 0);
      const events = parse(lines);
      t.true(events.length > 0);
      t.true(events.every((e) => e.comm === 'curl'), 'only curl, not the Python server');
      const open = events.find((e) => e.type === 'open')!;
      t.like(open, { role: 'client', remote: `127.0.0.1:${port}` });
      const request = stream(events, open.conn, 'egress').toString();
      t.true(request.startsWith(`GET /hello HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`), request);
      const response = stream(events, open.conn, 'ingress').toString();
      t.true(response.startsWith('HTTP/1.0 200 OK\r\n'), response);
      t.true(response.endsWith('hello from python\n'));
    } finally {
      server.child.kill();
    }
  });
}

test('--exe python3: a bash shim named python3 is not captured, the interpreter it execs is', async (t) => {
  const server = await startWorkload(PY, ['-u', '-c', SINK_SERVER]);
  const port = server.hello.port as number;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shim-'));
  try {
    // Like a pyenv shim: a bash script named python3. This one talks on its own
    // socket before it execs the real interpreter, which talks on another.
    const shim = path.join(dir, 'python3');
    fs.writeFileSync(
      shim,
      `#!/bin/bash\nexec 3<>/dev/tcp/127.0.0.1/${port}\nprintf 'from-bash-shim' >&3\nexec 3>&-\n` +
        `exec ${PY} -c 'import socket; s=socket.create_connection(("127.0.0.1", ${port})); s.sendall(b"from-real-python"); s.close()'\n`,
      { mode: 0o755 },
    );
    const agent = await startAgent(['capture', '--json', '--exe', 'python3']);
    const r = spawnSync('python3', [], { env: { ...process.env, PATH: `${dir}:${process.env.PATH}` }, encoding: 'utf8' });
    t.is(r.status, 0, r.stderr);
    await sleep(300);
    const { lines } = await agent.stop();
    // Other tests may run Python at the same time: look at this process only.
    const events = parse(lines).filter((e) => e.pid === r.pid);
    const sent = events.filter((e) => e.type === 'data' && e.dir === 'egress').map((e) => Buffer.from(e.data, 'base64').toString());
    t.deepEqual(sent, ['from-real-python']);
  } finally {
    server.child.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a forked child of a selected process is captured under its own pid', async (t) => {
  const { w, result, lines } = await captureWorkload(PY, ['-u', '-c', FORKING_CLIENT]);
  const events = parse(lines);
  const child = result.child as number;
  t.not(child, w.pid);
  const childOpen = events.find((e) => e.pid === child && e.type === 'open' && e.role === 'client')!;
  t.truthy(childOpen, 'the child was selected by the kernel at fork');
  t.is(stream(events, childOpen.conn, 'egress').toString(), 'from-the-child');
  const parentServer = events.find((e) => e.pid === w.pid && e.type === 'open' && e.role === 'server')!;
  t.is(stream(events, parentServer.conn, 'ingress').toString(), 'from-the-child');
});

test('--port selects the listening process, not its unselected client', async (t) => {
  const server = await startWorkload(PY, ['-u', '-c', HTTP_SERVER]);
  const port = server.hello.port as number;
  try {
    const agent = await startAgent(['capture', '--json', '--port', String(port)]);
    t.is(curlStatus(port, '/x'), '200');
    await sleep(300);
    const { lines } = await agent.stop();
    const events = parse(lines);
    t.deepEqual([...new Set(events.map((e) => e.pid))], [server.pid]);
    const open = events.find((e) => e.type === 'open')!;
    t.like(open, { role: 'server', local: `127.0.0.1:${port}` });
    t.true(stream(events, open.conn, 'ingress').toString().startsWith('GET /x HTTP/1.1\r\n'));
  } finally {
    server.child.kill();
  }
});

test('--all captures other processes but never the agent itself', async (t) => {
  const { w, result, code, lines, agent } = await captureWorkload(PY, [PY_WORKLOAD, 'syscalls'], () => ['--json', '--all']);
  t.is(code, 0);
  const events = parse(lines);
  t.false(events.some((e) => e.pid === agent.pid));
  const mine = events.filter((e) => e.pid === w.pid);
  const client = mine.find((e) => e.type === 'open' && e.role === 'client')!;
  t.is(stream(mine, client.conn, 'egress').toString(), result.request as string);
});

test('text output: one readable line per event', async (t) => {
  const { code, lines } = await captureWorkload(PY, [PY_WORKLOAD, 'fdreuse'], (pid) => ['--pid', String(pid)]);
  t.is(code, 0);
  t.true(lines.some((l) => / client open \(connect\) fd=\d+ 127\.0\.0\.1:\d+ <-> 127\.0\.0\.1:\d+$/.test(l)));
  t.true(lines.some((l) => / client egress 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+ 5B "first"$/.test(l)));
  t.true(lines.some((l) => / close \(close\) .* sent=6B recv=0B$/.test(l)));
});

test('without privileges: one clear sentence and a non-zero exit', (t) => {
  // setpriv drops every capability while staying root-uid-less: uid nobody.
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', path.join(ROOT, 'bin', 'ebpf-otel'), 'capture', '--all'], {
    encoding: 'utf8',
  });
  t.is(r.status, 1);
  t.regex(r.stderr, /^ebpf-otel: missing privileges: run as root or grant CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE/);
  t.is(r.stderr.trim().split('\n').length, 1, 'no stack trace');
});

/** GET http://127.0.0.1:port/path with curl; its HTTP status as curl prints it. */
function curlStatus(port: number, urlPath: string): string {
  return spawnSync('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${port}${urlPath}`], { encoding: 'utf8' }).stdout;
}

const FORKING_CLIENT = `
import json, os, socket, sys
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
port = srv.getsockname()[1]
print(json.dumps({"pid": os.getpid(), "port": port}), flush=True)
sys.stdin.readline()
pid = os.fork()
if pid == 0:
    c = socket.create_connection(("127.0.0.1", port)); c.sendall(b"from-the-child"); c.close(); os._exit(0)
conn, _ = srv.accept()
got = b""
while len(got) < 14:
    got += conn.recv(64)
conn.close(); os.waitpid(pid, 0)
print(json.dumps({"child": pid, "got": got.decode()}), flush=True)
`;

const SINK_SERVER = `
import json, os, socket, threading
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(16)
print(json.dumps({"pid": os.getpid(), "port": srv.getsockname()[1]}), flush=True)
def drain(c):
    while c.recv(4096): pass
    c.close()
while True:
    c, _ = srv.accept(); threading.Thread(target=drain, args=(c,), daemon=True).start()
`;

const HTTP_SERVER = `
import http.server, json, os, socketserver
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello from python\\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(json.dumps({"pid": os.getpid(), "port": s.server_address[1]}), flush=True)
s.serve_forever()
`;

