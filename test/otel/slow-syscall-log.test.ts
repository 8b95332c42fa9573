import test from 'ava';
import type { SlowSyscallEvent } from '../../src/capture/events';
import { slowSyscallLog } from '../../src/otel/slow-syscall-log';

const base: SlowSyscallEvent = {
  type: 'slow_syscall',
  tgid: 42,
  tid: 43,
  comm: 'worker',
  cgroupId: 1n,
  nr: 74, // fsync on x86_64
  ret: 0,
  err: 0,
  tsEnterNs: 1_000,
  durationNs: 250_000_000,
  fd: 7,
  target: { kind: 'file', path: '/var/lib/db/wal', truncated: false, deleted: false },
};

test('a slow fsync on a file: event name, severity, the file path, duration in seconds, no error', (t) => {
  const r = slowSyscallLog(base, 'x86_64');
  t.like(r, { tgid: 42, timeNs: 1_000, severity: 'WARN', eventName: 'ebpf_otel.syscall.slow', body: 'fsync took 250.0 ms on /var/lib/db/wal' });
  t.deepEqual(r.attributes, {
    'syscall.name': 'fsync',
    'thread.id': 43,
    'thread.name': 'worker',
    'ebpf_otel.syscall.duration': 0.25,
    'ebpf_otel.fd': 7,
    'file.path': '/var/lib/db/wal',
  });
});

test('a failed connect on a socket: error.type, the tuple as network attributes; a truncated path says so', (t) => {
  const r = slowSyscallLog(
    {
      ...base,
      nr: 42, // connect
      ret: -110,
      err: 110,
      target: {
        kind: 'socket',
        family: 2,
        inode: 9,
        netns: 1,
        tuple: { family: 'inet', transport: 'tcp', localAddr: '10.0.0.1', localPort: 40000, remoteAddr: '10.0.0.2', remotePort: 5432 },
      },
    },
    'x86_64',
  );
  t.like(r.attributes, {
    'syscall.name': 'connect',
    'error.type': 'ETIMEDOUT',
    'network.transport': 'tcp',
    'network.type': 'ipv4',
    'network.peer.address': '10.0.0.2',
    'network.peer.port': 5432,
    'network.local.port': 40000,
  });
  t.is(r.body, 'connect took 250.0 ms and failed with ETIMEDOUT');
  const cut = slowSyscallLog({ ...base, target: { kind: 'file', path: 'deep/dir/file', truncated: true, deleted: false } }, 'x86_64');
  t.is(cut.attributes!['ebpf_otel.file.path_truncated'], true);
});
