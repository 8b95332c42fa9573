import test from 'ava';
import { decodeBatch, decodeSlowSyscall, newDecodeStats } from '../../src/capture/decode';
import type { CaptureEvent, SlowSyscallEvent } from '../../src/capture/events';
import { EventType, FdTarget, SLOW_F_DELETED, SLOW_F_PATH_TRUNCATED, SlowSyscallEventLayout as S, SockTupleLayout as T } from '../../src/capture/layout';
import { batch } from '../helpers/records';

interface SlowSpec {
  target?: number;
  flags?: number;
  fd?: number;
  path?: string;
  mode?: number;
  ino?: number;
  family?: number;
  err?: number;
  ret?: bigint;
}

function slowRecord(s: SlowSpec = {}): Buffer {
  const b = Buffer.alloc(S.size);
  b.writeUInt32LE(EventType.SlowSyscall, S.type);
  b.writeUInt32LE(100, S.tgid);
  b.writeUInt32LE(101, S.tid);
  b.writeUInt32LE(0, S.nr);
  b.writeBigInt64LE(s.ret ?? 1n, S.ret);
  b.writeBigUInt64LE(5_000_000_000n, S.ts_enter_ns);
  b.writeBigUInt64LE(120_000_000n, S.duration_ns);
  b.writeBigUInt64LE(42n, S.cgroup_id);
  b.writeBigUInt64LE(BigInt(s.ino ?? 777), S.ino);
  b.writeInt32LE(s.fd ?? -1, S.fd);
  b.writeUInt32LE(s.err ?? 0, S.err);
  b.writeUInt32LE(4026531840, S.netns);
  b.writeUInt16LE(s.mode ?? 0, S.mode);
  b.writeUInt16LE(s.family ?? 0, S.socket_family);
  b[S.target] = s.target ?? FdTarget.None;
  b[S.flags] = s.flags ?? 0;
  b.write('python3', S.comm);
  if (s.path !== undefined) b.write(s.path, S.path);
  return b;
}

function decode(s: SlowSpec): SlowSyscallEvent | undefined {
  const r = slowRecord(s);
  return decodeSlowSyscall(r, 0, r.length);
}

test('a slow call without an fd', (t) => {
  t.deepEqual(decode({}), {
    type: 'slow_syscall',
    tgid: 100,
    tid: 101,
    comm: 'python3',
    cgroupId: 42n,
    nr: 0,
    ret: 1,
    err: 0,
    tsEnterNs: 5e9,
    durationNs: 120e6,
    fd: undefined,
    target: undefined,
  });
  t.like(decode({ err: 4, ret: -4n }), { err: 4, ret: -4 });
});

test('fd targets: file (flags), pipe, anon inode, other pseudo files, sockets', (t) => {
  t.deepEqual(decode({ fd: 3, target: FdTarget.File, path: '/var/log/app.log' })?.target, { kind: 'file', path: '/var/log/app.log', truncated: false, deleted: false });
  t.like(decode({ fd: 3, target: FdTarget.File, path: '/a/b', flags: SLOW_F_PATH_TRUNCATED | SLOW_F_DELETED })?.target, { truncated: true, deleted: true });
  t.like(decode({ fd: 7, target: FdTarget.Pseudo, mode: 0o010000, ino: 1936121 })?.target, { kind: 'pseudo', name: 'pipe:[1936121]' });
  t.like(decode({ fd: 7, target: FdTarget.Pseudo, mode: 0, path: '[eventfd]' })?.target, { kind: 'pseudo', name: 'anon_inode:[eventfd]' });
  t.like(decode({ fd: 7, target: FdTarget.Pseudo, mode: 0, path: 'net', ino: 5 })?.target, { kind: 'pseudo', name: 'net (inode 5)' });
  t.like(decode({ fd: 9, target: FdTarget.Socket, family: 1, ino: 88 })?.target, { kind: 'socket', tuple: undefined, family: 1, inode: 88 });

  const r = slowRecord({ fd: 5, target: FdTarget.SocketInet, family: 2 });
  r.writeUInt8(127, S.tuple + T.local_addr);
  r.writeUInt8(1, S.tuple + T.local_addr + 3);
  r.writeUInt8(10, S.tuple + T.remote_addr);
  r.writeUInt8(2, S.tuple + T.remote_addr + 3);
  r.writeUInt16LE(40000, S.tuple + T.local_port);
  r.writeUInt16LE(5432, S.tuple + T.remote_port);
  r.writeUInt16LE(2, S.tuple + T.family);
  r.writeUInt16LE(6, S.tuple + T.l4_proto);
  t.deepEqual(decodeSlowSyscall(r, 0, r.length)?.target, {
    kind: 'socket',
    tuple: { family: 'inet', transport: 'tcp', localAddr: '127.0.0.1', localPort: 40000, remoteAddr: '10.0.0.2', remotePort: 5432 },
    family: 2,
    inode: 777,
    netns: 4026531840,
  });
});

test('malformed slow records are counted, never thrown; they reach only their own handler', (t) => {
  const short = slowRecord().subarray(0, S.size - 8);
  t.is(decodeSlowSyscall(short, 0, short.length), undefined);
  t.is(decode({ target: 9 }), undefined, 'unknown target kind');

  const stats = newDecodeStats();
  const events: CaptureEvent[] = [];
  const slow: SlowSyscallEvent[] = [];
  decodeBatch(batch([slowRecord(), short, slowRecord({ fd: 1 })]), (e) => events.push(e), stats, (e) => slow.push(e));
  t.is(events.length, 0);
  t.is(slow.length, 2);
  t.like(stats, { records: 3, malformed: 1 });
  // Without a handler (a consumer that did not load the syscalls group), skipped.
  decodeBatch(batch([slowRecord()]), (e) => events.push(e), newDecodeStats());
  t.is(events.length, 0);
});
