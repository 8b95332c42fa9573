// Decodes native batches (native/batch_format.h) into typed capture events.
// One pass over the batch, no copies: payloads are views into the batch.
// Malformed records are counted and skipped; decoding never throws on input.

import { formatAddress } from './address';
import type {
  CaptureEvent,
  CloseReason,
  ConnRole,
  DataSourceName,
  FdTarget,
  OpenReason,
  SlowSyscallEvent,
  SocketTuple,
} from './events';
import {
  AF_INET,
  BATCH_ALIGN,
  BATCH_RECORD_HEADER,
  ConnEventLayout as C,
  DATA_F_TRUNCATED,
  DataEventLayout as D,
  EventType,
  IPPROTO_TCP,
  IPPROTO_UDP,
  MAX_PAYLOAD,
  PROC_F_SELECTED,
  ProcEventLayout as P,
  SockTupleLayout as T,
  TASK_COMM_LEN,
  EXEC_PATH_LEN,
  FdTarget as FDT,
  SLOW_F_DELETED,
  SLOW_F_PATH_TRUNCATED,
  SLOW_PATH_LEN,
  SlowSyscallEventLayout as S,
} from './layout';

export interface DecodeStats {
  records: number;
  /** Records shorter than their type's layout, with an unknown type tag, or with impossible fields. */
  malformed: number;
  /** Framing broken: the rest of the batch was skipped. */
  badFraming: number;
}

export function newDecodeStats(): DecodeStats {
  return { records: 0, malformed: 0, badFraming: 0 };
}

const ROLES: readonly ConnRole[] = ['unknown', 'client', 'server'];
const SOURCES: readonly (DataSourceName | undefined)[] = [
  undefined,
  'read',
  'write',
  'readv',
  'writev',
  'recvfrom',
  'sendto',
  'recvmsg',
  'sendmsg',
  'recvmmsg',
  'sendmmsg',
];

/**
 * Walks a framed batch and calls `sink` once per well-formed record. Slow
 * syscall records (group "syscalls") go to `onSlowSyscall`; without it they
 * are skipped (only a consumer that loaded the group gets them).
 */
export function decodeBatch(
  batch: Buffer,
  sink: (event: CaptureEvent) => void,
  stats: DecodeStats,
  onSlowSyscall?: (event: SlowSyscallEvent) => void,
): void {
  let off = 0;
  const end = batch.length;
  while (off + BATCH_RECORD_HEADER <= end) {
    const len = batch.readUInt32LE(off);
    const start = off + BATCH_RECORD_HEADER;
    if (len < 4 || start + len > end) {
      stats.badFraming++;
      return;
    }
    stats.records++;
    if (batch.readUInt32LE(start) === EventType.SlowSyscall) {
      const slow = decodeSlowSyscall(batch, start, len);
      if (slow === undefined) stats.malformed++;
      else onSlowSyscall?.(slow);
    } else {
      const event = decodeRecord(batch, start, len);
      if (event === undefined) stats.malformed++;
      else sink(event);
    }
    off = start + ((len + BATCH_ALIGN - 1) & ~(BATCH_ALIGN - 1));
  }
  if (off !== end) stats.badFraming++;
}

/** Decodes one record of `len` bytes at `off`; undefined when malformed. */
export function decodeRecord(buf: Buffer, off: number, len: number): CaptureEvent | undefined {
  const type = buf.readUInt32LE(off);
  switch (type) {
    case EventType.Data:
      return decodeData(buf, off, len);
    case EventType.Open:
    case EventType.Close:
      return decodeConn(buf, off, len, type);
    case EventType.Exec:
    case EventType.Fork:
    case EventType.Exit:
      return decodeProc(buf, off, len, type);
    default:
      return undefined;
  }
}

function decodeData(buf: Buffer, off: number, len: number): CaptureEvent | undefined {
  if (len < D.size) return undefined;
  const size = buf.readUInt32LE(off + D.size_field);
  const captured = buf.readUInt32LE(off + D.captured);
  const source = SOURCES[buf[off + D.source]!];
  const dir = buf[off + D.dir];
  const tuple = decodeTuple(buf, off + D.tuple);
  if (
    captured > MAX_PAYLOAD ||
    captured > size ||
    D.size + captured > len ||
    source === undefined ||
    (dir !== 1 && dir !== 2) ||
    tuple === undefined
  ) {
    return undefined;
  }
  const payload = off + D.payload;
  return {
    type: 'data',
    tgid: buf.readUInt32LE(off + D.tgid),
    tid: buf.readUInt32LE(off + D.tid),
    fd: buf.readInt32LE(off + D.fd),
    connId: readU64(buf, off + D.conn_id),
    tsEnterNs: readU64(buf, off + D.ts_enter_ns),
    tsExitNs: readU64(buf, off + D.ts_exit_ns),
    pos: readU64(buf, off + D.pos),
    cgroupId: buf.readBigUInt64LE(off + D.cgroup_id),
    netns: buf.readUInt32LE(off + D.netns),
    size,
    dir: dir === 1 ? 'egress' : 'ingress',
    role: ROLES[buf[off + D.role]!] ?? 'unknown',
    source,
    truncated: (buf[off + D.flags]! & DATA_F_TRUNCATED) !== 0 || captured < size,
    tuple,
    comm: readCString(buf, off + D.comm, TASK_COMM_LEN),
    data: buf.subarray(payload, payload + captured),
  };
}

function decodeConn(buf: Buffer, off: number, len: number, type: number): CaptureEvent | undefined {
  if (len < C.size) return undefined;
  const tuple = decodeTuple(buf, off + C.tuple);
  if (tuple === undefined) return undefined;
  const common = {
    tgid: buf.readUInt32LE(off + C.tgid),
    tid: buf.readUInt32LE(off + C.tid),
    fd: buf.readInt32LE(off + C.fd),
    connId: readU64(buf, off + C.conn_id),
    tsNs: readU64(buf, off + C.ts_ns),
    cgroupId: buf.readBigUInt64LE(off + C.cgroup_id),
    netns: buf.readUInt32LE(off + C.netns),
    role: ROLES[buf[off + C.role]!] ?? 'unknown',
    tuple,
    comm: readCString(buf, off + C.comm, TASK_COMM_LEN),
  };
  const reason = buf[off + C.reason];
  if (type === EventType.Open) {
    const r: OpenReason | undefined =
      reason === 1 ? 'connect' : reason === 2 ? 'accept' : reason === 3 ? 'existing' : undefined;
    if (r === undefined) return undefined;
    return { type: 'open', ...common, reason: r };
  }
  const r: CloseReason | undefined =
    reason === 16 ? 'close' : reason === 17 ? 'replaced' : reason === 18 ? 'exit' : undefined;
  if (r === undefined) return undefined;
  return {
    type: 'close',
    ...common,
    reason: r,
    bytesSent: readU64(buf, off + C.bytes_sent),
    bytesRecv: readU64(buf, off + C.bytes_recv),
  };
}

function decodeProc(buf: Buffer, off: number, len: number, type: number): CaptureEvent | undefined {
  if (len < P.size) return undefined;
  const tgid = buf.readUInt32LE(off + P.tgid);
  const ppid = buf.readUInt32LE(off + P.ppid);
  const tsNs = readU64(buf, off + P.ts_ns);
  const cgroupId = buf.readBigUInt64LE(off + P.cgroup_id);
  const comm = readCString(buf, off + P.comm, TASK_COMM_LEN);
  const selectedByKernel = (buf.readUInt32LE(off + P.flags) & PROC_F_SELECTED) !== 0;
  if (type === EventType.Exec) {
    const filename = readCString(buf, off + P.filename, EXEC_PATH_LEN);
    return { type: 'exec', tgid, ppid, tsNs, cgroupId, comm, filename, selectedByKernel };
  }
  if (type === EventType.Fork) return { type: 'fork', tgid, ppid, tsNs, cgroupId, comm, selectedByKernel };
  // The kernel's wait status: exit code in bits 8-15, terminating signal in bits 0-6.
  const status = buf.readInt32LE(off + P.exit_code);
  const signal = status & 0x7f;
  return {
    type: 'exit',
    tgid,
    ppid,
    tsNs,
    cgroupId,
    comm,
    exitCode: signal === 0 ? (status >> 8) & 0xff : undefined,
    signal: signal === 0 ? undefined : signal,
  };
}

// -- syscall latency --

const S_IFMT = 0o170000;
const S_IFIFO = 0o010000;

/** An EV_SLOW_SYSCALL record; undefined when malformed. */
export function decodeSlowSyscall(buf: Buffer, off: number, len: number): SlowSyscallEvent | undefined {
  if (len < S.size || buf.readUInt32LE(off + S.type) !== EventType.SlowSyscall) return undefined;
  const fd = buf.readInt32LE(off + S.fd);
  const flags = buf[off + S.flags]!;
  const inode = readU64(buf, off + S.ino);
  const mode = buf.readUInt16LE(off + S.mode);
  const path = readCString(buf, off + S.path, SLOW_PATH_LEN);
  let target: FdTarget | undefined;
  switch (buf[off + S.target]) {
    case FDT.None:
      break;
    case FDT.File:
      target = { kind: 'file', path, truncated: (flags & SLOW_F_PATH_TRUNCATED) !== 0, deleted: (flags & SLOW_F_DELETED) !== 0 };
      break;
    case FDT.SocketInet:
    case FDT.Socket:
      target = {
        kind: 'socket',
        // Only TCP and UDP tuples are decoded; a raw or ICMP socket keeps its inode only.
        tuple: buf[off + S.target] === FDT.SocketInet ? decodeTuple(buf, off + S.tuple) : undefined,
        family: buf.readUInt16LE(off + S.socket_family),
        inode,
        netns: buf.readUInt32LE(off + S.netns),
      };
      break;
    case FDT.Pseudo:
      // As the filesystems' d_dname() name them in /proc/PID/fd (fs/pipe.c, fs/anon_inodes.c).
      target = {
        kind: 'pseudo',
                // Other pseudo files (nsfs, dma-buf...) make up names of their own: the dentry name and inode only.
        name: (mode & S_IFMT) === S_IFIFO ? `pipe:[${inode}]` : path.startsWith('[') ? `anon_inode:${path}` : `${path} (inode ${inode})`,
        inode,
      };
      break;
    default:
      return undefined;
  }
  return {
    type: 'slow_syscall',
    tgid: buf.readUInt32LE(off + S.tgid),
    tid: buf.readUInt32LE(off + S.tid),
    comm: readCString(buf, off + S.comm, TASK_COMM_LEN),
    cgroupId: buf.readBigUInt64LE(off + S.cgroup_id),
    nr: buf.readUInt32LE(off + S.nr),
    ret: Number(buf.readBigInt64LE(off + S.ret)),
    err: buf.readUInt32LE(off + S.err),
    tsEnterNs: readU64(buf, off + S.ts_enter_ns),
    durationNs: readU64(buf, off + S.duration_ns),
    fd: fd >= 0 ? fd : undefined,
    target,
  };
}
// -- end syscall latency --

export function decodeTuple(buf: Buffer, off: number): SocketTuple | undefined {
  const family = buf.readUInt16LE(off + T.family);
  const proto = buf.readUInt16LE(off + T.l4_proto);
  if ((family !== 2 && family !== 10) || (proto !== IPPROTO_TCP && proto !== IPPROTO_UDP)) return undefined;
  return {
    family: family === AF_INET ? 'inet' : 'inet6',
    transport: proto === IPPROTO_TCP ? 'tcp' : 'udp',
    localAddr: formatAddress(buf, off + T.local_addr, family),
    localPort: buf.readUInt16LE(off + T.local_port),
    remoteAddr: formatAddress(buf, off + T.remote_addr, family),
    remotePort: buf.readUInt16LE(off + T.remote_port),
  };
}

/** u64 as a JS number: exact below 2^53, which counters and uptimes stay under for ~104 days. */
export function readU64(buf: Buffer, off: number): number {
  return buf.readUInt32LE(off) + buf.readUInt32LE(off + 4) * 0x1_0000_0000;
}

function readCString(buf: Buffer, off: number, max: number): string {
  let end = off;
  const limit = off + max;
  while (end < limit && buf[end] !== 0) end++;
  return buf.toString('utf8', off, end);
}
