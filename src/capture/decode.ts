// Decodes native batches (native/batch_format.h) into typed capture events.
// One pass over the batch, no copies: payloads are views into the batch.
// Malformed records are counted and skipped; decoding never throws on input.

import type { CaptureEvent, CloseReason, ConnRole, DataEvent, DataSourceName, FlowDirection, LinkRule, OpenReason, SocketTuple } from './events';
import {
  BATCH_ALIGN,
  BATCH_RECORD_HEADER,
  ConnEventLayout as C,
  DATA_F_TLS,
  DATA_F_TRUNCATED,
  DataEventLayout as D,
  EventType,
  MAX_PAYLOAD,
  PROC_F_SELECTED,
  LinkEventLayout as K,
  LinkOp,
  ProcEventLayout as P,
  TASK_COMM_LEN,
  EXEC_PATH_LEN,
} from './layout';
import { decodeTuple, readCString, readU64, validTuple } from './record-fields';
import { decodeSlowSyscall } from './slow-syscall-decode';
import type { SlowSyscallEvent } from './slow-syscall-event';

// Re-exported: their importers predate the files they moved to.
export { decodeTuple, readU64 } from './record-fields';
export { decodeSlowSyscall } from './slow-syscall-decode';

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
  'tls',
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
    case EventType.Link:
      return decodeLink(buf, off, len);
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
  // The flag and the source say the same thing: plaintext positions.
  const tls = (buf[off + D.flags]! & DATA_F_TLS) !== 0;
  if (
    tls !== (source === 'tls') ||
    captured > MAX_PAYLOAD ||
    captured > size ||
    D.size + captured > len ||
    source === undefined ||
    (dir !== 1 && dir !== 2) ||
    !validTuple(buf, off + D.tuple)
  ) {
    return undefined;
  }
  return new DecodedDataEvent(buf, off, size, captured, source, dir === 1 ? 'egress' : 'ingress');
}

/**
 * A data event whose per-connection fields (tuple, comm, cgroupId) are decoded
 * from the batch only when asked for: the tracker needs them once per
 * connection, not per syscall, and decoding them (two address strings, a
 * string, a BigInt, a tuple object) was most of the garbage each event made.
 * Read them while the batch is current (in the sink): the batch is reused.
 */
class DecodedDataEvent implements DataEvent {
  readonly type = 'data' as const;
  readonly tgid: number;
  readonly tid: number;
  readonly fd: number;
  readonly connId: number;
  readonly tsEnterNs: number;
  readonly tsExitNs: number;
  readonly pos: number;
  readonly netns: number;
  readonly role: ConnRole;
  readonly truncated: boolean;
  readonly data: Buffer;
  private decodedTuple: SocketTuple | undefined;

  constructor(
    private readonly buf: Buffer,
    private readonly off: number,
    readonly size: number,
    captured: number,
    readonly source: DataSourceName,
    readonly dir: FlowDirection,
  ) {
    this.tgid = buf.readUInt32LE(off + D.tgid);
    this.tid = buf.readUInt32LE(off + D.tid);
    this.fd = buf.readInt32LE(off + D.fd);
    this.connId = readU64(buf, off + D.conn_id);
    this.tsEnterNs = readU64(buf, off + D.ts_enter_ns);
    this.tsExitNs = readU64(buf, off + D.ts_exit_ns);
    this.pos = readU64(buf, off + D.pos);
    this.netns = buf.readUInt32LE(off + D.netns);
    this.role = ROLES[buf[off + D.role]!] ?? 'unknown';
    this.truncated = (buf[off + D.flags]! & DATA_F_TRUNCATED) !== 0 || captured < size;
    const payload = off + D.payload;
    this.decodedTuple = undefined;
    this.data = buf.subarray(payload, payload + captured);
  }

  get tuple(): SocketTuple {
    // Checked by validTuple before the event was made, so never undefined here.
    return (this.decodedTuple ??= decodeTuple(this.buf, this.off + D.tuple)!);
  }

  get comm(): string {
    return readCString(this.buf, this.off + D.comm, TASK_COMM_LEN);
  }

  get cgroupId(): bigint {
    return this.buf.readBigUInt64LE(this.off + D.cgroup_id);
  }
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

const LINK_RULES: readonly (LinkRule | undefined)[] = [undefined, 'nginx', 'go', 'node'];

function decodeLink(buf: Buffer, off: number, len: number): CaptureEvent | undefined {
  if (len < K.size) return undefined;
  const rule = LINK_RULES[buf[off + K.rule]!];
  const op = buf[off + K.op];
  const serverRole = ROLES[buf[off + K.server_role]!];
  const clientRole = ROLES[buf[off + K.client_role]!];
  if (rule === undefined || (op !== LinkOp.Set && op !== LinkOp.Clear) || serverRole === undefined || clientRole === undefined) return undefined;
  return {
    type: 'link',
    tgid: buf.readUInt32LE(off + K.tgid),
    tid: buf.readUInt32LE(off + K.tid),
    tsNs: readU64(buf, off + K.ts_ns),
    rule,
    op: op === LinkOp.Set ? 'set' : 'clear',
    serverConnId: readU64(buf, off + K.server_conn),
    clientConnId: readU64(buf, off + K.client_conn),
    serverRole,
    clientRole,
    serverFd: buf.readInt32LE(off + K.server_fd),
    clientFd: buf.readInt32LE(off + K.client_fd),
    token: buf.readBigUInt64LE(off + K.token),
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
