// eBPF: vectored I/O with many iovecs against the real socket_trace object.
// Node's http2 (so gRPC) writes one iovec per frame: 100 concurrent calls are
// ~200 iovecs in one writev. Every iovec the kernel accepts (UIO_MAXIOV) is
// gathered, in order, up to the capture cap; only the cap truncates.

import { spawn } from 'node:child_process';
import * as readline from 'node:readline';

import { decodeBatch, newDecodeStats } from '../../src/capture/decode';
import type { CaptureEvent, DataEvent } from '../../src/capture/events';
import { KERNEL_STATS, MAX_IOVECS, MAX_PAYLOAD } from '../../src/capture/layout';
import { loadNativeBinding } from '../../src/capture/native-binding';
import { ebpfTest } from '../helpers/ebpf';
import { openSession, sessionOptions, waitFor } from './support';

// Both ends in one process on loopback. Each iovec holds its own index, so a
// lost, repeated or reordered iovec shows in the bytes.
const CHILD = `
import errno, fcntl, json, os, select, socket, struct, sys, termios
def say(**kw): print(json.dumps(kw), flush=True)
say(pid=os.getpid())
sys.stdin.readline()
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
a = socket.create_connection(srv.getsockname()); b, _ = srv.accept()
def parts(count, width): return [b"%0*d," % (width - 1, i) for i in range(count)]
def wait_readable(n):
    while struct.unpack("i", fcntl.ioctl(b.fileno(), termios.FIONREAD, b"\\0" * 4))[0] < n:
        select.select([b], [], [], 1)
# 300 iovecs each way: writev, then readv into 300 buffers.
small = parts(300, 5)
assert os.writev(a.fileno(), small) == 1500
wait_readable(1500)
bufs = [bytearray(5) for _ in range(300)]
assert os.readv(b.fileno(), bufs) == 1500
assert b"".join(bufs) == b"".join(small)
# UIO_MAXIOV iovecs, more bytes than the capture cap; read back in 8 KiB
# pieces so only the writev is truncated.
full = parts(1024, 20)
assert os.writev(a.fileno(), full) == 20480
got = 0
while got < 20480:
    got += len(b.recv(8192))
# More iovecs than the kernel accepts: refused, nothing moved.
try:
    os.writev(a.fileno(), parts(1100, 5)); refused = 0
except OSError as e:
    refused = e.errno
a.close(); b.close()
say(refused=errno.errorcode.get(refused, refused))
`;

const stat = (kernel: bigint[], name: (typeof KERNEL_STATS)[number]) => kernel[KERNEL_STATS.indexOf(name)];
const parts = (count: number, width: number) =>
  Buffer.from(Array.from({ length: count }, (_, i) => `${String(i).padStart(width - 1, '0')},`).join(''));

ebpfTest.serial('writev/readv of 300 iovecs captured whole; 1024 iovecs up to the cap; 1100 refused by the kernel', async (t) => {
  t.is(MAX_IOVECS, 1024, 'the bound is the kernel\'s UIO_MAXIOV');
  const events: CaptureEvent[] = [];
  const session = openSession(loadNativeBinding(), {
    // The whole payload: 1500 bytes go straight into the event (at most half
    // of it), 16 KiB through the per-CPU stage; both gathers are covered.
    config: { ...sessionOptions().config, captureBytes: MAX_PAYLOAD },
    onBatch: (batch) => decodeBatch(batch, (e) => events.push(e.type === 'data' ? { ...e, data: Buffer.from(e.data) } : e), newDecodeStats()),
  });
  const child = spawn('/usr/bin/python3', ['-c', CHILD], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: Record<string, unknown>[] = [];
  readline.createInterface({ input: child.stdout! }).on('line', (l) => lines.push(JSON.parse(l) as Record<string, unknown>));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const data = () => events.filter((e): e is DataEvent => e.type === 'data' && e.tgid === child.pid);
  try {
    session.attachAll();
    session.start();
    t.true(await waitFor(() => lines.length >= 1, 5000), 'child started');
    const before = session.stats().kernel;
    session.selectTgid(child.pid!, true);
    child.stdin!.write('\n');
    t.is(await exited, 0);
    t.deepEqual(lines[1], { refused: 'EINVAL' });
    t.true(await waitFor(() => events.filter((e) => e.type === 'close' && e.tgid === child.pid).length === 2, 5000));

    const vectored = data().filter((e) => e.source === 'writev' || e.source === 'readv');
    t.deepEqual(
      vectored.map((e) => `${e.source} ${e.dir} size=${e.size} captured=${e.data.length} truncated=${e.truncated}`),
      ['writev egress size=1500 captured=1500 truncated=false', 'readv ingress size=1500 captured=1500 truncated=false', `writev egress size=20480 captured=${MAX_PAYLOAD} truncated=true`],
    );
    t.true(vectored[0]!.data.equals(parts(300, 5)), 'writev: every iovec, in order');
    t.true(vectored[1]!.data.equals(parts(300, 5)), 'readv: every iovec, in order');
    t.true(vectored[2]!.data.equals(parts(1024, 20).subarray(0, MAX_PAYLOAD)), 'the first 16 KiB of 1024 iovecs');
    const kernel = session.stats().kernel;
    t.is(stat(kernel, 'bytes_truncated')! - stat(before, 'bytes_truncated')!, 20480n - BigInt(MAX_PAYLOAD), 'the cap, not the iovec count');
    t.is(stat(kernel, 'iov_skipped')! - stat(before, 'iov_skipped')!, 0n);
  } finally {
    child.kill();
    session.close();
  }
});
