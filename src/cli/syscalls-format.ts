// What `ebpf-otel syscalls` prints: one interval's deltas as a table per
// process (text) or one JSON object, and slow calls as lines. Pure: the
// clock, the names and the terminal width come in as arguments.

import type { FdTarget, SlowSyscallEvent } from '../capture/events';
import { percentileUpperBoundNs, SYSLAT_BOUNDS_NS, type SyscallDelta } from '../capture/syscall-histograms';
import { syscallName, type SyscallArch } from '../capture/syscall-names';
import { SYSLAT_BUCKETS } from '../capture/layout';
import { syscallErrorName } from '../otel/syscall-duration';

/** One syscall of one process over an interval, successes and failures together. */
export interface SyscallRow {
  readonly name: string;
  readonly count: number;
  readonly errors: number;
  /** Failed calls per errno name, most frequent first. */
  readonly errnos: readonly (readonly [string, number])[];
  /** Upper bound of the bucket holding the median / 99th percentile call (ns); undefined past the last bound. */
  readonly p50UpperNs: number | undefined;
  readonly p99UpperNs: number | undefined;
  /** The interval's longest call when known (see SyscallDelta.maxNs). */
  readonly maxNs: number | undefined;
  /** What the longest call is known to be at most (== maxNs when that is known). */
  readonly maxAtMostNs: number;
  readonly totalNs: number;
  /** Bucket counts of the interval (upper bounds: SYSLAT_BOUNDS_NS, then the overflow bucket). */
  readonly buckets: readonly number[];
}

export interface ProcessSyscalls {
  readonly pid: number;
  readonly comm: string | undefined;
  readonly count: number;
  readonly totalNs: number;
  /** By total time, longest first. */
  readonly rows: readonly SyscallRow[];
}

/** Groups an interval's deltas by process and syscall; processes and rows by total time, longest first. */
export function summarize(deltas: readonly SyscallDelta[], arch: SyscallArch | undefined, comm: (pid: number) => string | undefined): ProcessSyscalls[] {
  const byPid = new Map<number, Map<number, SyscallDelta[]>>();
  for (const d of deltas) {
    let byNr = byPid.get(d.tgid);
    if (!byNr) byPid.set(d.tgid, (byNr = new Map()));
    let parts = byNr.get(d.nr);
    if (!parts) byNr.set(d.nr, (parts = []));
    parts.push(d);
  }
  const out: ProcessSyscalls[] = [];
  for (const [pid, byNr] of byPid) {
    const rows = [...byNr].map(([nr, parts]) => row(syscallName(nr, arch), parts));
    rows.sort((a, b) => b.totalNs - a.totalNs || b.count - a.count || a.name.localeCompare(b.name));
    out.push({
      pid,
      comm: comm(pid),
      count: rows.reduce((n, r) => n + r.count, 0),
      totalNs: rows.reduce((n, r) => n + r.totalNs, 0),
      rows,
    });
  }
  return out.sort((a, b) => b.totalNs - a.totalNs || a.pid - b.pid);
}

function row(name: string, parts: readonly SyscallDelta[]): SyscallRow {
  const buckets = new Array<number>(SYSLAT_BUCKETS).fill(0);
  let count = 0;
  let errors = 0;
  let totalNs = 0;
  let known = -1;
  let atMost = 0;
  const errnos = new Map<string, number>();
  for (const d of parts) {
    count += d.count;
    totalNs += d.sumNs;
    d.buckets.forEach((c, i) => (buckets[i]! += c));
    if (d.err !== 0) {
      errors += d.count;
      const e = syscallErrorName(d.err);
      errnos.set(e, (errnos.get(e) ?? 0) + d.count);
    }
    if (d.maxNs !== undefined) known = Math.max(known, d.maxNs);
    atMost = Math.max(atMost, d.maxNs ?? d.maxSinceStartNs);
  }
  return {
    name,
    count,
    errors,
    errnos: [...errnos].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])),
    p50UpperNs: percentileUpperBoundNs(buckets, 0.5),
    p99UpperNs: percentileUpperBoundNs(buckets, 0.99),
    // Known only if no part whose maximum is unknown could exceed the known ones.
    maxNs: known >= atMost ? known : undefined,
    maxAtMostNs: atMost,
    totalNs,
    buckets,
  };
}

/** 850ns, 12.3us, 4.56ms, 1.23s */
export function formatNs(ns: number): string {
  if (ns < 1e3) return `${Math.round(ns)}ns`;
  if (ns < 1e6) return `${trim(ns / 1e3)}us`;
  if (ns < 1e9) return `${trim(ns / 1e6)}ms`;
  return `${trim(ns / 1e9)}s`;
}

function trim(v: number): string {
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

const OVER_LAST = `>${formatNs(SYSLAT_BOUNDS_NS[SYSLAT_BOUNDS_NS.length - 1]!)}`;

function upper(ns: number | undefined): string {
  return ns === undefined ? OVER_LAST : formatNs(ns);
}

export interface TextOptions {
  /** Rows per process. */
  readonly top: number;
  /** Wall time of the interval's end. */
  readonly at: Date;
  readonly intervalMs: number;
}

export const TABLE_NOTE = 'p50/p99: upper bound of the log2 bucket holding that call; max: longest call this interval (<=X: only a bound is known)';

/** The interval as text lines: a header, then per process a line and its table. */
export function intervalText(processes: readonly ProcessSyscalls[], opts: TextOptions): string[] {
  const lines: string[] = [];
  lines.push(`${opts.at.toISOString()}  interval ${formatNs(opts.intervalMs * 1e6)}  ${processes.length} process${processes.length === 1 ? '' : 'es'} with syscalls`);
  lines.push(TABLE_NOTE);
  for (const p of processes) {
    lines.push('');
    lines.push(`pid ${p.pid}${p.comm ? ` (${p.comm})` : ''}  ${p.count} calls  ${formatNs(p.totalNs)} in syscalls`);
    const header = ['SYSCALL', 'COUNT', 'ERRORS', 'P50<=', 'P99<=', 'MAX', 'TOTAL', 'ERRNO'];
    const cells = p.rows.slice(0, opts.top).map((r) => [
      r.name,
      String(r.count),
      String(r.errors),
      upper(r.p50UpperNs),
      upper(r.p99UpperNs),
      r.maxNs !== undefined ? formatNs(r.maxNs) : `<=${formatNs(r.maxAtMostNs)}`,
      formatNs(r.totalNs),
      r.errnos.slice(0, 3).map(([e, n]) => `${e} ${n}`).join(', '),
    ]);
    lines.push(...table(header, cells));
    if (p.rows.length > opts.top) lines.push(`  ... ${p.rows.length - opts.top} more syscalls`);
  }
  return lines;
}

/** Home, clear screen: a terminal shows the latest interval in place. */
export const REDRAW = '\x1b[H\x1b[2J';

/**
 * What to write for one interval: on a terminal, redrawn in place; piped,
 * blocks appended, a blank line between them.
 */
export function renderInterval(lines: readonly string[], tty: boolean): string {
  return tty ? REDRAW + lines.join('\n') : lines.join('\n') + '\n';
}

/** Columns: the first left-aligned, numbers right-aligned, the last left-aligned and unpadded. */
function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) =>
    '  ' +
    r
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : i === r.length - 1 ? c : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [fmt(header), ...rows.map(fmt)];
}

/** One interval as one JSON object (one line). */
export function intervalJson(processes: readonly ProcessSyscalls[], opts: { at: Date; intervalMs: number }): Record<string, unknown> {
  return {
    type: 'interval',
    time: opts.at.toISOString(),
    intervalMs: opts.intervalMs,
    bucketUpperBoundsNs: SYSLAT_BOUNDS_NS,
    processes: processes.map((p) => ({
      pid: p.pid,
      comm: p.comm ?? null,
      count: p.count,
      totalNs: p.totalNs,
      syscalls: p.rows.map((r) => ({
        name: r.name,
        count: r.count,
        errors: r.errors,
        errnos: Object.fromEntries(r.errnos),
        p50UpperNs: r.p50UpperNs ?? null,
        p99UpperNs: r.p99UpperNs ?? null,
        maxNs: r.maxNs ?? null,
        maxAtMostNs: r.maxAtMostNs,
        totalNs: r.totalNs,
        buckets: r.buckets,
      })),
    })),
  };
}

/** What an fd named, as /proc/PID/fd would show it (a socket: its tuple). */
export function describeFdTarget(t: FdTarget): string {
  switch (t.kind) {
    case 'file':
      return `${t.truncated ? '...' : ''}${t.path}${t.deleted ? ' (deleted)' : ''}`;
    case 'socket':
      return t.tuple
        ? `${t.tuple.transport} ${endpoint(t.tuple.localAddr, t.tuple.localPort)} -> ${endpoint(t.tuple.remoteAddr, t.tuple.remotePort)}`
        : `socket:[${t.inode}] (family ${t.family})`;
    case 'pseudo':
      return t.name;
  }
}

function endpoint(addr: string, port: number): string {
  return addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
}

/** A slow call as one line: time pid tid comm syscall duration errno fd target. */
export function slowSyscallText(e: SlowSyscallEvent, wallNs: bigint, arch: SyscallArch | undefined): string {
  const at = new Date(Number(wallNs / 1_000_000n)).toISOString();
  const parts = [
    at,
    'SLOW',
    `pid ${e.tgid}`,
    `tid ${e.tid}`,
    e.comm,
    syscallName(e.nr, arch),
    formatNs(e.durationNs),
    e.err !== 0 ? syscallErrorName(e.err) : 'ok',
  ];
  if (e.fd !== undefined) parts.push(`fd ${e.fd}${e.target ? ` ${describeFdTarget(e.target)}` : ' (closed)'}`);
  return parts.join('  ');
}

export function slowSyscallJson(e: SlowSyscallEvent, wallNs: bigint, arch: SyscallArch | undefined): Record<string, unknown> {
  return {
    type: 'slow_syscall',
    time: wallNs.toString(),
    pid: e.tgid,
    tid: e.tid,
    comm: e.comm,
    syscall: syscallName(e.nr, arch),
    durationNs: e.durationNs,
    ret: e.ret,
    errno: e.err !== 0 ? syscallErrorName(e.err) : null,
    fd: e.fd ?? null,
    target: e.target ? { ...e.target, description: describeFdTarget(e.target) } : null,
  };
}
