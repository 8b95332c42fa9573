// Builds kernel records and native batches byte by byte, for decoder tests and
// replay. Offsets come from layout.ts, which layout.test.ts checks against C.

import {
  BATCH_RECORD_HEADER,
  ConnEventLayout as C,
  DataEventLayout as D,
  EventType,
  ProcEventLayout as P,
  SockTupleLayout as T,
} from '../../src/capture/layout';

export interface TupleSpec {
  family?: 2 | 10;
  proto?: number;
  local?: number[];
  remote?: number[];
  localPort?: number;
  remotePort?: number;
}

function writeTuple(buf: Buffer, off: number, t: TupleSpec): void {
  const family = t.family ?? 2;
  Buffer.from(t.local ?? [127, 0, 0, 1]).copy(buf, off + T.local_addr);
  Buffer.from(t.remote ?? [127, 0, 0, 1]).copy(buf, off + T.remote_addr);
  buf.writeUInt16LE(t.localPort ?? 8080, off + T.local_port);
  buf.writeUInt16LE(t.remotePort ?? 40000, off + T.remote_port);
  buf.writeUInt16LE(family, off + T.family);
  buf.writeUInt16LE(t.proto ?? 6, off + T.l4_proto);
}

function writeU64(buf: Buffer, off: number, v: number | bigint): void {
  buf.writeBigUInt64LE(BigInt(v), off);
}

export interface DataSpec {
  tgid?: number;
  tid?: number;
  fd?: number;
  connId?: number;
  tsEnter?: number;
  tsExit?: number;
  pos?: number;
  cgroupId?: bigint;
  netns?: number;
  size?: number;
  dir?: number;
  role?: number;
  source?: number;
  flags?: number;
  tuple?: TupleSpec;
  comm?: string;
  payload?: Buffer;
  /** Overrides the captured field (to build malformed records). */
  captured?: number;
}

export function dataRecord(s: DataSpec = {}): Buffer {
  const payload = s.payload ?? Buffer.alloc(0);
  const buf = Buffer.alloc(D.size + payload.length);
  buf.writeUInt32LE(EventType.Data, D.type);
  buf.writeUInt32LE(s.tgid ?? 100, D.tgid);
  buf.writeUInt32LE(s.tid ?? s.tgid ?? 100, D.tid);
  buf.writeInt32LE(s.fd ?? 5, D.fd);
  writeU64(buf, D.conn_id, s.connId ?? 1);
  writeU64(buf, D.ts_enter_ns, s.tsEnter ?? 1_000);
  writeU64(buf, D.ts_exit_ns, s.tsExit ?? 2_000);
  writeU64(buf, D.pos, s.pos ?? 0);
  writeU64(buf, D.cgroup_id, s.cgroupId ?? 1n);
  buf.writeUInt32LE(s.netns ?? 4026531840, D.netns);
  buf.writeUInt32LE(s.size ?? payload.length, D.size_field);
  buf.writeUInt32LE(s.captured ?? payload.length, D.captured);
  buf[D.dir] = s.dir ?? 1;
  buf[D.role] = s.role ?? 2;
  buf[D.source] = s.source ?? 2;
  buf[D.flags] = s.flags ?? 0;
  writeTuple(buf, D.tuple, s.tuple ?? {});
  buf.write(s.comm ?? 'python3', D.comm, 15, 'utf8');
  payload.copy(buf, D.payload);
  return buf;
}

export interface ConnSpec {
  type?: 'open' | 'close';
  tgid?: number;
  fd?: number;
  connId?: number;
  ts?: number;
  role?: number;
  reason?: number;
  bytesSent?: number;
  bytesRecv?: number;
  tuple?: TupleSpec;
  comm?: string;
}

export function connRecord(s: ConnSpec = {}): Buffer {
  const buf = Buffer.alloc(C.size);
  const type = s.type ?? 'open';
  buf.writeUInt32LE(type === 'open' ? EventType.Open : EventType.Close, C.type);
  buf.writeUInt32LE(s.tgid ?? 100, C.tgid);
  buf.writeUInt32LE(s.tgid ?? 100, C.tid);
  buf.writeInt32LE(s.fd ?? 5, C.fd);
  writeU64(buf, C.conn_id, s.connId ?? 1);
  writeU64(buf, C.ts_ns, s.ts ?? 500);
  writeU64(buf, C.cgroup_id, 1n);
  writeU64(buf, C.bytes_sent, s.bytesSent ?? 0);
  writeU64(buf, C.bytes_recv, s.bytesRecv ?? 0);
  buf.writeUInt32LE(4026531840, C.netns);
  buf[C.role] = s.role ?? 1;
  buf[C.reason] = s.reason ?? (type === 'open' ? 1 : 16);
  writeTuple(buf, C.tuple, s.tuple ?? {});
  buf.write(s.comm ?? 'python3', C.comm, 15, 'utf8');
  return buf;
}

export interface ProcSpec {
  type?: 'exec' | 'fork' | 'exit';
  tgid?: number;
  ppid?: number;
  flags?: number;
  exitCode?: number;
  comm?: string;
  filename?: string;
  tsNs?: number;
}

export function procRecord(s: ProcSpec = {}): Buffer {
  const buf = Buffer.alloc(P.size);
  const type = s.type ?? 'exec';
  buf.writeUInt32LE(type === 'exec' ? EventType.Exec : type === 'fork' ? EventType.Fork : EventType.Exit, P.type);
  buf.writeUInt32LE(s.tgid ?? 200, P.tgid);
  buf.writeUInt32LE(s.ppid ?? 1, P.ppid);
  buf.writeUInt32LE(s.flags ?? 0, P.flags);
  writeU64(buf, P.ts_ns, s.tsNs ?? 700);
  writeU64(buf, P.cgroup_id, 1n);
  buf.writeInt32LE(s.exitCode ?? 0, P.exit_code);
  buf.write(s.comm ?? 'python3', P.comm, 15, 'utf8');
  buf.write(s.filename ?? '/usr/bin/python3', P.filename, 127, 'utf8');
  return buf;
}

/** Frames records as the native addon does: [u32 len][u32 0][record][pad to 8]. */
export function batch(records: Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (const r of records) {
    const head = Buffer.alloc(BATCH_RECORD_HEADER);
    head.writeUInt32LE(r.length, 0);
    const pad = (8 - (r.length % 8)) % 8;
    parts.push(head, r, Buffer.alloc(pad));
  }
  return Buffer.concat(parts);
}
