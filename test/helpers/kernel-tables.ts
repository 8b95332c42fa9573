// Builds the records the native readTcpPeers()/readConnections() return, from
// the layout mirror checked against bpf/socket_trace.h, for tests that run
// without a kernel.

import {
  AF_INET,
  AF_INET6,
  ConnRecordLayout as C,
  IPPROTO_TCP,
  SockTupleLayout as S,
  TCP_LIFETIME_BUCKETS,
  TCP_PEER_F_FAILURE,
  TCP_PEER_F_OVERFLOW,
  TcpPeerRecordLayout as T,
} from '../../src/capture/layout';

function writeU64(buf: Buffer, off: number, v: number): void {
  buf.writeBigUInt64LE(BigInt(v), off);
}

/** 'a.b.c.d' or an IPv6 address written out in full groups ('::' allowed) into 16 bytes. */
function writeAddr(buf: Buffer, off: number, addr: string): number {
  if (!addr.includes(':')) {
    addr.split('.').forEach((b, i) => (buf[off + i] = Number(b)));
    return AF_INET;
  }
  // An IPv4 tail (::ffff:10.0.0.1) is two groups.
  const v4 = /^(.*:)(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(addr);
  if (v4) {
    const [a, b, c, d] = v4.slice(2).map(Number) as [number, number, number, number];
    addr = `${v4[1]}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = addr.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const tl = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = [...h, ...new Array<string>(8 - h.length - tl.length).fill('0'), ...tl];
  groups.forEach((g, i) => buf.writeUInt16BE(parseInt(g, 16), off + 2 * i));
  return AF_INET6;
}

export interface TcpPeerFields {
  tgid: number;
  role?: 1 | 2 | 0;
  kind?: 'peer' | 'failure' | 'overflow';
  addr?: string;
  port?: number;
  err?: number;
  attempts?: number;
  established?: number;
  failed?: number;
  resetsSent?: number;
  resetsRecv?: number;
  retransmits?: number;
  closed?: number;
  lifetimeSumNs?: number;
  buckets?: Record<number, number>;
}

export function tcpPeerRecord(f: TcpPeerFields): Buffer {
  const b = Buffer.alloc(T.size);
  b.writeUInt32LE(f.tgid, T.tgid);
  const kind = f.kind ?? 'peer';
  b[T.flags] = kind === 'overflow' ? TCP_PEER_F_OVERFLOW : kind === 'failure' ? TCP_PEER_F_FAILURE : 0;
  if (kind !== 'overflow') {
    b[T.role] = f.role ?? 1;
    b.writeUInt16LE(writeAddr(b, T.addr, f.addr ?? '10.0.0.2'), T.family);
    b.writeUInt16LE(f.port ?? 5432, T.port);
  }
  b.writeUInt32LE(f.err ?? 0, T.err);
  writeU64(b, T.attempts, f.attempts ?? 0);
  writeU64(b, T.established, f.established ?? 0);
  writeU64(b, T.failed, f.failed ?? 0);
  writeU64(b, T.resets_sent, f.resetsSent ?? 0);
  writeU64(b, T.resets_recv, f.resetsRecv ?? 0);
  writeU64(b, T.retransmits, f.retransmits ?? 0);
  writeU64(b, T.closed, f.closed ?? 0);
  writeU64(b, T.lifetime_sum_ns, f.lifetimeSumNs ?? 0);
  for (let i = 0; i < TCP_LIFETIME_BUCKETS; i++) writeU64(b, T.lifetime_buckets + 8 * i, f.buckets?.[i] ?? 0);
  return b;
}

export interface ConnFields {
  tgid: number;
  fd?: number;
  connId: number;
  sent?: number;
  recv?: number;
  role?: 0 | 1 | 2;
  local?: [string, number];
  remote?: [string, number];
}

export function connRecord(f: ConnFields): Buffer {
  const b = Buffer.alloc(C.size);
  b.writeInt32LE(f.fd ?? 3, C.key);
  b.writeUInt32LE(f.tgid, C.key + 4);
  writeU64(b, C.conn_id, f.connId);
  writeU64(b, C.bytes_sent, f.sent ?? 0);
  writeU64(b, C.bytes_recv, f.recv ?? 0);
  const [la, lp] = f.local ?? ['10.0.0.1', 40000];
  const [ra, rp] = f.remote ?? ['10.0.0.2', 5432];
  const family = writeAddr(b, C.tuple + S.local_addr, la);
  writeAddr(b, C.tuple + S.remote_addr, ra);
  b.writeUInt16LE(lp, C.tuple + S.local_port);
  b.writeUInt16LE(rp, C.tuple + S.remote_port);
  b.writeUInt16LE(family, C.tuple + S.family);
  b.writeUInt16LE(IPPROTO_TCP, C.tuple + S.l4_proto);
  b[C.role] = f.role ?? 1;
  return b;
}
