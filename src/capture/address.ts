// Socket address formatting. IPv4-mapped IPv6 addresses (what an AF_INET6
// socket shows for an IPv4 peer) are written as plain IPv4, so both ends of a
// loopback connection name the same address whatever family each socket has.

/** Formats 16 address bytes at `off` for the given family (2 or 10). */
export function formatAddress(buf: Buffer, off: number, family: number): string {
  if (family === 2) return ipv4(buf, off);
  if (isV4Mapped(buf, off)) return ipv4(buf, off + 12);
  return ipv6(buf, off);
}

export function formatEndpoint(addr: string, port: number): string {
  return addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
}

function ipv4(buf: Buffer, off: number): string {
  return `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`;
}

function isV4Mapped(buf: Buffer, off: number): boolean {
  for (let i = 0; i < 10; i++) if (buf[off + i] !== 0) return false;
  return buf[off + 10] === 0xff && buf[off + 11] === 0xff;
}

/** RFC 5952: lowercase hex, the longest run (first on ties) of two or more zero groups as "::". */
function ipv6(buf: Buffer, off: number): string {
  const groups: number[] = new Array<number>(8);
  for (let i = 0; i < 8; i++) groups[i] = buf.readUInt16BE(off + i * 2);
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (g: number | undefined) => (g ?? 0).toString(16);
  if (bestStart < 0) return groups.map(hex).join(':');
  const head = groups.slice(0, bestStart).map(hex).join(':');
  const tail = groups.slice(bestStart + bestLen).map(hex).join(':');
  return `${head}::${tail}`;
}
