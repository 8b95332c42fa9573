// Decodes the syscalls group's ring-buffer record (EV_SLOW_SYSCALL,
// bpf/syscall_latency.h). decodeBatch hands these records here; they go to
// their own handler, not to the socket pipeline.

import type { FdTarget, SlowSyscallEvent } from './slow-syscall-event';
import {
  EventType,
  FdTarget as FDT,
  SLOW_F_DELETED,
  SLOW_F_PATH_TRUNCATED,
  SLOW_PATH_LEN,
  SlowSyscallEventLayout as S,
  TASK_COMM_LEN,
} from './layout';
import { decodeTuple, readCString, readU64 } from './record-fields';

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
