// What the vectored-I/O exit programs cost per call as the iovec count grows,
// from the kernel's own run accounting (bench/bpf-stats.ts): a selected
// Python process writes N iovecs of 5 bytes with writev and reads them back
// into N buffers with readv on loopback, --calls times per N.
//
//   node dist/bench/iovec-cost.js [--iovecs 2,300] [--calls N] [--capture-bytes N]
//
// Run it once per build to compare (EBPF_OTEL_NATIVE_ADDON names another
// addon, whose BPF object is in it). Reported per N: runs of each program and
// ns per run. Other processes' readv/writev reach the same programs (and
// return at once, unselected); the run count beyond --calls says how many.
// Needs root and the build (make build).

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as readline from 'node:readline';
import { parseArgs } from 'node:util';
import { loadNativeBinding } from '../src/capture/native-binding';
import { bpfProgramsHeldBy, openSession, sessionOptions } from '../test/native/support';
import { diff, enableBpfStats, snapshot } from './bpf-stats';
import { positive, runMain } from './main';

const CHILD = `
import fcntl, json, os, select, socket, struct, sys, termios
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
a = socket.create_connection(srv.getsockname()); b, _ = srv.accept()
print(json.dumps({"pid": os.getpid()}), flush=True)
calls = int(sys.argv[1])
for line in sys.stdin:
    n = int(line)
    parts = [b"%04d," % (i % 10000) for i in range(n)]
    bufs = [bytearray(5) for _ in range(n)]
    for _ in range(calls):
        assert os.writev(a.fileno(), parts) == 5 * n
        while struct.unpack("i", fcntl.ioctl(b.fileno(), termios.FIONREAD, b"\\0" * 4))[0] < 5 * n:
            select.select([b], [], [], 1)
        assert os.readv(b.fileno(), bufs) == 5 * n
    print(json.dumps({"done": n}), flush=True)
`;

const PROGRAMS = ['tp_sys_enter_writev', 'tp_sys_exit_writev', 'tp_sys_enter_readv', 'tp_sys_exit_readv'];

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { iovecs: { type: 'string', default: '2,300' }, calls: { type: 'string', default: '20000' }, 'capture-bytes': { type: 'string', default: '4096' } } });
  const counts = values.iovecs.split(',').map((s) => positive('--iovecs', s));
  const calls = positive('--calls', values.calls);
  const session = openSession(loadNativeBinding(), { config: { ...sessionOptions().config, captureBytes: positive('--capture-bytes', values['capture-bytes']) } });
  const child = spawn('/usr/bin/python3', ['-c', CHILD, String(calls)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const stats = enableBpfStats();
  try {
    session.attachAll();
    session.start();
    const ids = new Set(bpfProgramsHeldBy(process.pid));
    await lines.next();
    session.selectTgid(child.pid!, true);
    console.log(`addon ${process.env['EBPF_OTEL_NATIVE_ADDON'] ?? 'this build'}, ${calls} calls per count, load ${fs.readFileSync('/proc/loadavg', 'utf8').trim()}`);
    for (const n of counts) {
      const before = snapshot(ids);
      child.stdin!.write(`${n}\n`);
      await lines.next();
      const d = diff(before, snapshot(ids));
      const cells = PROGRAMS.map((p) => {
        const r = d.get(p) ?? { runs: 0, ns: 0 };
        return `${p} ${r.runs} runs ${r.runs ? (r.ns / r.runs).toFixed(0) : '-'} ns/run`;
      });
      console.log(`iovecs ${n}: ${cells.join('; ')}`);
    }
    return 0;
  } finally {
    child.stdin!.end();
    child.kill();
    session.close();
    stats.restore();
  }
}

runMain(main);
