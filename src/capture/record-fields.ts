// Fields that kernel records of every feature share: u64 counters and
// timestamps, C strings, socket tuples (struct sock_tuple).

import { formatAddress } from './address';
import type { SocketTuple } from './events';
import { AF_INET, IPPROTO_TCP, IPPROTO_UDP, SockTupleLayout as T } from './layout';

/** Whether decodeTuple would decode the struct sock_tuple at `off` (TCP or UDP over IPv4 or IPv6), without decoding it. */
export function validTuple(buf: Buffer, off: number): boolean {
  const family = buf.readUInt16LE(off + T.family);
  const proto = buf.readUInt16LE(off + T.l4_proto);
  return (family === 2 || family === 10) && (proto === IPPROTO_TCP || proto === IPPROTO_UDP);
}

/** A struct sock_tuple; undefined unless TCP or UDP over IPv4 or IPv6. */
export function decodeTuple(buf: Buffer, off: number): SocketTuple | undefined {
  if (!validTuple(buf, off)) return undefined;
  const family = buf.readUInt16LE(off + T.family);
  const proto = buf.readUInt16LE(off + T.l4_proto);
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

/** A NUL-terminated string of at most `max` bytes (C char[max]). */
export function readCString(buf: Buffer, off: number, max: number): string {
  let end = off;
  const limit = off + max;
  while (end < limit && buf[end] !== 0) end++;
  return buf.toString('utf8', off, end);
}
