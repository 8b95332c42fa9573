// Decoders for the kernel tables user space reads whole each interval
// (native readConnections() / readTcpPeers()): fixed-size records laid out
// as struct conn_record and struct tcp_peer_record in bpf/socket_trace.h
// (checked by test/capture/layout.test.ts). Malformed records are counted,
// never thrown.

import { formatAddress } from './address';
import { decodeTuple, readU64 } from './decode';
import type { ConnRole, SocketTuple } from './events';
import {
  AF_INET,
  AF_INET6,
  ConnRecordLayout as C,
  IPPROTO_TCP,
  IPPROTO_UDP,
  SockTupleLayout as S,
  TCP_LIFETIME_BUCKETS,
  TCP_PEER_F_FAILURE,
  TCP_PEER_F_OVERFLOW,
  TcpPeerRecordLayout as T,
} from './layout';

const ROLES: readonly ConnRole[] = ['unknown', 'client', 'server'];

/** A conn_info entry: a connection the socket capture follows now, with its true byte totals. */
export interface ConnectionEntry {
  readonly tgid: number;
  readonly fd: number;
  readonly connId: number;
  /** Bytes moved so far while followed (muted or not). */
  readonly bytesSent: number;
  readonly bytesRecv: number;
  readonly role: ConnRole;
  readonly netns: number;
  readonly tuple: SocketTuple;
}

/**
 * One record of a readConnections() buffer. The tuple, whose addresses take
 * the most work to decode, is decoded on first use: a table read every
 * interval is mostly connections already known, for which only the id and
 * the byte totals are looked at.
 */
class ConnectionRecord implements ConnectionEntry {
  readonly tgid: number;
  readonly fd: number;
  readonly connId: number;
  readonly bytesSent: number;
  readonly bytesRecv: number;
  readonly role: ConnRole;
  readonly netns: number;
  private decoded: SocketTuple | undefined;

  constructor(
    private readonly buf: Buffer,
    private readonly off: number,
  ) {
    this.tgid = buf.readUInt32LE(off + C.key + 4);
    this.fd = buf.readInt32LE(off + C.key);
    this.connId = readU64(buf, off + C.conn_id);
    this.bytesSent = readU64(buf, off + C.bytes_sent);
    this.bytesRecv = readU64(buf, off + C.bytes_recv);
    this.role = ROLES[buf[off + C.role]!] ?? 'unknown';
    this.netns = buf.readUInt32LE(off + C.netns);
  }

  get tuple(): SocketTuple {
    // Checked decodable when the record was taken.
    return (this.decoded ??= decodeTuple(this.buf, this.off + C.tuple)!);
  }
}

/** Every well-formed record of a readConnections() buffer; `malformed` counts the others. */
export function decodeConnections(buf: Buffer, stats: { malformed: number }): ConnectionEntry[] {
  const out: ConnectionEntry[] = [];
  if (buf.length % C.size !== 0) {
    stats.malformed++;
    return out;
  }
  for (let off = 0; off < buf.length; off += C.size) {
    const family = buf.readUInt16LE(off + C.tuple + S.family);
    const proto = buf.readUInt16LE(off + C.tuple + S.l4_proto);
    if ((family !== AF_INET && family !== AF_INET6) || (proto !== IPPROTO_TCP && proto !== IPPROTO_UDP)) {
      stats.malformed++;
      continue;
    }
    out.push(new ConnectionRecord(buf, off));
  }
  return out;
}

/**
 * A tcp_peers (or tcp_peer_overflow) key with its cumulative counters.
 * Three kinds: a peer of the process; a failure key (the connect failures to
 * that peer with socket error `err`, only `failed` counts); the process's
 * overflow key (peers that did not fit the kernel table, folded).
 */
export interface TcpPeerEntry {
  readonly tgid: number;
  readonly kind: 'peer' | 'failure' | 'overflow';
  /** Client: the process connected; server: it accepted. Undefined for the overflow key. */
  readonly role: 'client' | 'server' | undefined;
  /** Undefined for the overflow key. IPv4-mapped addresses are written as IPv4. */
  readonly peerAddress: string | undefined;
  /** Client: the peer's port; server: the local (listening) port. */
  readonly port: number | undefined;
  /** Failure keys: the socket error (0: the owner closed it before the handshake ended). */
  readonly err: number;
  /** A string that names the kernel key: equal keys, equal strings. */
  readonly id: string;
  readonly attempts: number;
  readonly established: number;
  readonly failed: number;
  readonly resetsSent: number;
  readonly resetsRecv: number;
  readonly retransmits: number;
  readonly closed: number;
  readonly lifetimeSumNs: number;
  /** TCP_LIFETIME_BUCKETS counts; boundaries in tcpLifetimeBoundsNs(). */
  readonly lifetimeBuckets: readonly number[];
}

/** Upper bounds (inclusive) of the lifetime buckets, in ns: 2^14 .. 2^44; the last bucket is above. */
export function tcpLifetimeBoundsNs(): number[] {
  const bounds: number[] = [];
  for (let i = 0; i < TCP_LIFETIME_BUCKETS - 1; i++) bounds.push(2 ** (14 + i));
  return bounds;
}

export function decodeTcpPeers(buf: Buffer, stats: { malformed: number }): TcpPeerEntry[] {
  const out: TcpPeerEntry[] = [];
  if (buf.length % T.size !== 0) {
    stats.malformed++;
    return out;
  }
  for (let off = 0; off < buf.length; off += T.size) {
    const tgid = buf.readUInt32LE(off + T.tgid);
    const flags = buf[off + T.flags]!;
    const roleByte = buf[off + T.role]!;
    const family = buf.readUInt16LE(off + T.family);
    const overflow = (flags & TCP_PEER_F_OVERFLOW) !== 0;
    const kind = overflow ? 'overflow' : (flags & TCP_PEER_F_FAILURE) !== 0 ? 'failure' : 'peer';
    const role = roleByte === 1 ? 'client' : roleByte === 2 ? 'server' : undefined;
    if (!overflow && (role === undefined || (family !== AF_INET && family !== AF_INET6))) {
      stats.malformed++;
      continue;
    }
    const buckets: number[] = new Array<number>(TCP_LIFETIME_BUCKETS);
    for (let i = 0; i < TCP_LIFETIME_BUCKETS; i++) buckets[i] = readU64(buf, off + T.lifetime_buckets + 8 * i);
    const err = buf.readUInt32LE(off + T.err);
    const peerAddress = overflow ? undefined : formatAddress(buf, off + T.addr, family);
    const port = overflow ? undefined : buf.readUInt16LE(off + T.port);
    out.push({
      tgid,
      kind,
      role: overflow ? undefined : role,
      peerAddress,
      port,
      err,
      id: buf.toString('hex', off, off + T.attempts),
      attempts: readU64(buf, off + T.attempts),
      established: readU64(buf, off + T.established),
      failed: readU64(buf, off + T.failed),
      resetsSent: readU64(buf, off + T.resets_sent),
      resetsRecv: readU64(buf, off + T.resets_recv),
      retransmits: readU64(buf, off + T.retransmits),
      closed: readU64(buf, off + T.closed),
      lifetimeSumNs: readU64(buf, off + T.lifetime_sum_ns),
      lifetimeBuckets: buckets,
    });
  }
  return out;
}
