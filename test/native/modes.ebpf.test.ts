// eBPF: capture modes set from JS (setConnectionModes) against the real
// socket_trace object: a muted connection sends no data events while its
// positions, close totals and the muted counters stay exact; a request names
// a connection id, so the connection that reuses the fd is never touched.

import { spawn } from 'node:child_process';
import * as net from 'node:net';
import * as readline from 'node:readline';

import { decodeBatch, newDecodeStats } from '../../src/capture/decode';
import type { CaptureEvent } from '../../src/capture/events';
import { CaptureMode, KERNEL_STATS } from '../../src/capture/layout';
import { isNativeError, loadNativeBinding } from '../../src/capture/native-binding';
import { ebpfTest } from '../helpers/ebpf';
import { openSession, waitFor } from './support';

// Each step waits for a line on stdin, so the test decides when the mute lands.
const CHILD = `
import ctypes, json, os, socket, sys
port = int(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
class msghdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32), ("iov", ctypes.POINTER(iovec)),
                ("iovlen", ctypes.c_size_t), ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t), ("flags", ctypes.c_int)]
class mmsghdr(ctypes.Structure):
    _fields_ = [("hdr", msghdr), ("len", ctypes.c_uint)]
def sendmmsg(sock, count, size):
    bufs = [ctypes.create_string_buffer(b"m" * size, size) for _ in range(count)]
    iovs = (iovec * count)(*[iovec(ctypes.cast(b, ctypes.c_void_p), size) for b in bufs])
    msgs = (mmsghdr * count)()
    for i in range(count):
        msgs[i].hdr.iov = ctypes.pointer(iovs[i]); msgs[i].hdr.iovlen = 1
    assert libc.sendmmsg(sock.fileno(), msgs, count, 0) == count
def say(**kw): print(json.dumps(kw), flush=True)
def step(): sys.stdin.readline()
say(pid=os.getpid())
step()
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"first")
say(fd=s.fileno())
step()
for _ in range(3):
    s.sendall(b"x" * 1000)
sendmmsg(s, 10, 100)  # more messages than the kernel captures one by one (MAX_MMSG)
got = recvs = 0
while got < 777:
    got += len(s.recv(4096)); recvs += 1
s.close()
say(recvs=recvs)
step()
t = socket.create_connection(("127.0.0.1", port))
say(fd=t.fileno())
step()
t.sendall(b"again")
t.recv(1)
t.close()
say(done=True)
`;

const stat = (kernel: bigint[], name: (typeof KERNEL_STATS)[number]) => kernel[KERNEL_STATS.indexOf(name)];

ebpfTest.serial('a muted connection: no data events, exact positions, close totals and counters; the fd reuser is untouched', async (t) => {
  // Answers 777 bytes once a connection sent 4005 (the first one), 1 byte after "again" (the second).
  const server = net.createServer((sock) => {
    let got = 0;
    sock.on('data', (d) => {
      got += d.length;
      if (got === 4005) sock.write('r'.repeat(777));
      if (d.toString() === 'again') sock.write('!');
    });
    sock.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;

  const events: CaptureEvent[] = [];
  const decodeStats = newDecodeStats();
  const session = openSession(loadNativeBinding(), {
    // Copy the payload: it is a view into the batch.
    onBatch: (batch) => decodeBatch(batch, (e) => events.push(e.type === 'data' ? { ...e, data: Buffer.from(e.data) } : e), decodeStats),
  });
  const child = spawn('/usr/bin/python3', ['-c', CHILD, String(port)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: Record<string, unknown>[] = [];
  readline.createInterface({ input: child.stdout! }).on('line', (l) => lines.push(JSON.parse(l) as Record<string, unknown>));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const next = async (n: number) => t.true(await waitFor(() => lines.length >= n, 5000), `child line ${n}`);
  const step = () => child.stdin!.write('\n');
  const mine = () => events.filter((e) => (e.type === 'open' || e.type === 'data' || e.type === 'close') && e.tgid === child.pid);
  try {
    session.attachAll();
    session.start();
    await next(1);
    session.selectTgid(child.pid!, true);

    step();
    await next(2);
    t.true(await waitFor(() => mine().some((e) => e.type === 'data'), 5000));
    const first = mine().find((e) => e.type === 'data')!;
    t.is(first.type === 'data' && first.data.toString(), 'first');
    const muted = first.type === 'data' ? first.connId : 0;
    t.is(session.setConnectionModes([muted], CaptureMode.Muted), 1);

    step();
    await next(3);
    const recvs = lines[2]!.recvs as number;
    t.true(await waitFor(() => mine().some((e) => e.type === 'close' && e.connId === muted), 5000));
    step();
    await next(4);
    t.is(lines[3]!.fd, lines[1]!.fd, 'the kernel handed the fd number out again');
    t.true(await waitFor(() => mine().some((e) => e.type === 'open' && e.connId !== muted), 5000));
    // Too late for the closed connection; its fd now names another one.
    t.is(session.setConnectionModes([muted], CaptureMode.Muted), 1);
    step();
    await next(5);
    t.is(await exited, 0);
    t.true(await waitFor(() => mine().filter((e) => e.type === 'close').length === 2, 5000));

    const summary = mine().map((e) =>
      e.type === 'data'
        ? `data ${e.connId === muted ? 'muted' : 'reuser'} ${e.dir} pos=${e.pos} ${e.data.toString()}`
        : e.type === 'close'
          ? `close ${e.connId === muted ? 'muted' : 'reuser'} sent=${e.bytesSent} recv=${e.bytesRecv}`
          : `${e.type} ${'connId' in e && e.connId === muted ? 'muted' : 'reuser'}`,
    );
    t.deepEqual(summary, [
      'open muted',
      'data muted egress pos=0 first',
      'close muted sent=4005 recv=777',
      'open reuser',
      'data reuser egress pos=0 again',
      'data reuser ingress pos=0 !',
      'close reuser sent=5 recv=1',
    ]);
    const kernel = session.stats().kernel;
    t.is(stat(kernel, 'conn_muted'), 1n, 'the late request applied to nothing');
    t.is(stat(kernel, 'muted_syscalls'), BigInt(3 + 1 + recvs), 'three sends, one sendmmsg, the reads');
    t.is(stat(kernel, 'muted_bytes'), 4777n);
    t.is(stat(kernel, 'bytes_truncated'), 0n);
  } finally {
    child.kill();
    session.close();
    server.close();
  }
});

ebpfTest('setConnectionModes checks its arguments and the session', (t) => {
  const session = openSession(loadNativeBinding());
  const code = (f: () => unknown) => {
    const e = t.throws(f);
    return isNativeError(e) ? `${e.code} ${e.op}` : String(e);
  };
  t.is(session.setConnectionModes([], CaptureMode.Muted), 0);
  t.is(session.setConnectionModes([1, 2, 2 ** 53 - 1], CaptureMode.Full), 3);
  t.is(code(() => session.setConnectionModes('1' as unknown as number[], 1)), 'ERR_INVALID_ARG_TYPE setConnectionModes');
  t.is(code(() => session.setConnectionModes([0], 1)), 'ERR_INVALID_ARG_VALUE setConnectionModes');
  t.is(code(() => session.setConnectionModes([1.5], 1)), 'ERR_INVALID_ARG_VALUE setConnectionModes');
  t.is(code(() => session.setConnectionModes([1], 2)), 'ERR_INVALID_ARG_VALUE setConnectionModes');
  session.close();
  t.is(code(() => session.setConnectionModes([1], 1)), 'ERR_SESSION_CLOSED setConnectionModes');
});
