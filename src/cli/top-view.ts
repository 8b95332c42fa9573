// `ebpf-otel top`: the table behind the view. Each interval's TCP health and
// flow increments (src/network/) go into one row per (process, peer), with
// the interval's values beside the totals since the view started; rows are
// sorted by the bytes they moved in the interval, then in total. Pure: no
// I/O, no clock; top-command.ts draws it.

import { formatEndpoint } from '../capture/address';
import { peerId, type NetworkInterval, type Peer } from '../network/types';

export interface TopCounters {
  bytesSent: number;
  bytesRecv: number;
  /** Connections accounted (their first bytes or their close). */
  connections: number;
  attempts: number;
  established: number;
  /** Failed connects by error.type (ECONNREFUSED, ETIMEDOUT, aborted, ...). */
  failures: Record<string, number>;
  resetsSent: number;
  resetsRecv: number;
  retransmits: number;
  closed: number;
}

export interface TopRow {
  readonly pid: number;
  comm: string;
  readonly peer: Peer;
  /** Protocols seen on its connections (flows carry one only when the tracker knew it; top captures no payload). */
  readonly protocols: Set<string>;
  readonly interval: TopCounters;
  readonly total: TopCounters;
}

function zero(): TopCounters {
  return { bytesSent: 0, bytesRecv: 0, connections: 0, attempts: 0, established: 0, failures: {}, resetsSent: 0, resetsRecv: 0, retransmits: 0, closed: 0 };
}

function add(a: TopCounters, b: Partial<TopCounters>): void {
  a.bytesSent += b.bytesSent ?? 0;
  a.bytesRecv += b.bytesRecv ?? 0;
  a.connections += b.connections ?? 0;
  a.attempts += b.attempts ?? 0;
  a.established += b.established ?? 0;
  for (const [k, v] of Object.entries(b.failures ?? {})) a.failures[k] = (a.failures[k] ?? 0) + v;
  a.resetsSent += b.resetsSent ?? 0;
  a.resetsRecv += b.resetsRecv ?? 0;
  a.retransmits += b.retransmits ?? 0;
  a.closed += b.closed ?? 0;
}

function failureCount(c: TopCounters): number {
  let n = 0;
  for (const v of Object.values(c.failures)) n += v;
  return n;
}

function active(c: TopCounters): boolean {
  return c.bytesSent + c.bytesRecv + c.connections + c.attempts + c.established + failureCount(c) + c.resetsSent + c.resetsRecv + c.retransmits + c.closed > 0;
}

export class TopTable {
  private readonly rows = new Map<string, TopRow>();
  /** Processes that exited in the last interval: their rows show it, then go. */
  private exited = new Set<number>();

  /** `commOf` names a process (its comm) when a row for it is made. */
  constructor(private readonly commOf: (pid: number) => string) {}

  /** Starts a new interval with these increments. Rows of a process that exited show its last interval, then go. */
  apply(interval: NetworkInterval): void {
    if (this.exited.size > 0) for (const [k, r] of this.rows) if (this.exited.has(r.pid)) this.rows.delete(k);
    this.exited = new Set(interval.exited);
    for (const r of this.rows.values()) Object.assign(r.interval, zero());
    for (const o of interval.flows) {
      const r = this.row(o.tgid, o.peer);
      if (o.protocol !== undefined) r.protocols.add(o.protocol);
      const inc = { bytesSent: o.bytesSent, bytesRecv: o.bytesRecv, connections: o.connections };
      add(r.interval, inc);
      add(r.total, inc);
    }
    for (const o of interval.tcp) {
      const r = this.row(o.tgid, o.peer);
      add(r.interval, o.counts);
      add(r.total, o.counts);
    }
  }

  /** Rows by interval bytes, then total bytes, then pid and peer (a stable order). */
  sorted(): TopRow[] {
    const bytes = (c: TopCounters) => c.bytesSent + c.bytesRecv;
    return [...this.rows.values()].sort(
      (a, b) =>
        bytes(b.interval) - bytes(a.interval) ||
        bytes(b.total) - bytes(a.total) ||
        a.pid - b.pid ||
        peerId(a.peer).localeCompare(peerId(b.peer)),
    );
  }

  /** Rows with something in the last interval. */
  activeRows(): TopRow[] {
    return this.sorted().filter((r) => active(r.interval));
  }

  get size(): number {
    return this.rows.size;
  }

  private row(pid: number, peer: Peer): TopRow {
    const key = `${pid}|${peerId(peer)}`;
    let r = this.rows.get(key);
    if (r === undefined) {
      r = { pid, comm: this.commOf(pid), peer, protocols: new Set(), interval: zero(), total: zero() };
      this.rows.set(key, r);
    }
    return r;
  }
}

// ---- formatting ----

/** "10.0.0.2:5432 (client)", "10.0.0.7 -> :8080 (server)", "10.0.0.9", "(other peers)". */
export function peerLabel(p: Peer): string {
  if (p.overflow) return '(other peers)';
  const addr = p.address ?? '?';
  if (p.role === 'client') return p.port !== undefined ? formatEndpoint(addr, p.port) : addr;
  if (p.role === 'server') return `${addr} -> :${p.port ?? '?'}`;
  return addr;
}

/** 1023 B, 1.5 KiB, 12 MiB: short, for a terminal. */
export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  if (u === 0) return `${v} B`;
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${units[u]}`;
}

const COLUMNS = [
  ['PID', 8],
  ['COMM', 15],
  ['ROLE', 6],
  ['PEER', 30],
  ['PROTO', 5],
  ['TX/s', 10],
  ['RX/s', 10],
  ['TX', 10],
  ['RX', 10],
  ['CONN', 6],
  ['FAIL', 5],
  ['RST-TX', 6],
  ['RST-RX', 6],
  ['RETR', 6],
] as const;

function cells(r: TopRow, seconds: number): string[] {
  const rate = (n: number) => humanBytes(Math.round(n / seconds));
  return [
    String(r.pid),
    r.comm,
    r.peer.role ?? '-',
    peerLabel(r.peer),
    [...r.protocols].join(',') || '-',
    rate(r.interval.bytesSent),
    rate(r.interval.bytesRecv),
    humanBytes(r.total.bytesSent),
    humanBytes(r.total.bytesRecv),
    String(r.total.connections),
    String(failureCount(r.total)),
    String(r.total.resetsSent),
    String(r.total.resetsRecv),
    String(r.total.retransmits),
  ];
}

function line(values: readonly string[]): string {
  return values
    .map((v, i) => {
      const [, width] = COLUMNS[i]!;
      const cut = v.length > width ? v.slice(0, width - 1) + '~' : v;
      // Text left, numbers right.
      return i <= 4 ? cut.padEnd(width) : cut.padStart(width);
    })
    .join(' ')
    .trimEnd();
}

/**
 * The table as lines: a header, then at most `maxRows` rows (the rest
 * summed up in one line), then the failure reasons of the rows shown.
 */
export function renderTable(rows: readonly TopRow[], seconds: number, maxRows: number): string[] {
  const out = [line(COLUMNS.map(([h]) => h))];
  const shown = rows.slice(0, Math.max(0, maxRows));
  for (const r of shown) out.push(line(cells(r, seconds)));
  if (rows.length > shown.length) out.push(`... ${rows.length - shown.length} more rows`);
  const reasons = new Map<string, number>();
  for (const r of shown) for (const [k, v] of Object.entries(r.total.failures)) reasons.set(k, (reasons.get(k) ?? 0) + v);
  if (reasons.size > 0) out.push(`failures: ${[...reasons].map(([k, v]) => `${k} ${v}`).join(', ')}`);
  return out;
}

/** One interval as the JSON object `top --json` prints (increments of the interval; exact numbers). */
export function intervalJson(rows: readonly TopRow[], at: Date, seconds: number): Record<string, unknown> {
  return {
    time: at.toISOString(),
    intervalSeconds: seconds,
    peers: rows.map((r) => ({
      pid: r.pid,
      comm: r.comm,
      role: r.peer.role ?? null,
      ...(r.peer.overflow ? { overflow: true } : { address: r.peer.address ?? null, port: r.peer.port ?? null }),
      protocols: [...r.protocols],
      bytesSent: r.interval.bytesSent,
      bytesReceived: r.interval.bytesRecv,
      connections: r.interval.connections,
      attempts: r.interval.attempts,
      established: r.interval.established,
      failures: { ...r.interval.failures },
      resetsSent: r.interval.resetsSent,
      resetsReceived: r.interval.resetsRecv,
      retransmits: r.interval.retransmits,
      closed: r.interval.closed,
    })),
  };
}
