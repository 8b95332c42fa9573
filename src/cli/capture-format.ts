// Output of `ebpf-otel capture`: one JSON object per line (--json), or one
// readable line per event.

import { formatEndpoint } from '../capture/address';
import type { WallClock } from '../capture/clock';
import type { CaptureEvent, CloseEvent, DataEvent, OpenEvent } from '../capture/events';

/** The fields of `capture --json`, exactly. */
export interface CaptureJson {
  type: 'open' | 'data' | 'close';
  ts: string;
  pid: number;
  tid: number;
  comm: string;
  fd: number;
  conn: string;
  role: 'client' | 'server' | 'unknown';
  dir?: 'egress' | 'ingress';
  /** open: connect, accept, existing; close: close, replaced (the fd named another socket), exit. */
  reason?: string;
  local: string;
  remote: string;
  size: number;
  data: string;
  truncated: boolean;
}

type SocketEvent = DataEvent | OpenEvent | CloseEvent;

export function toCaptureJson(e: SocketEvent, clock: WallClock): CaptureJson {
  const t = e.tuple;
  const base = {
    type: e.type,
    ts: clock.toWallNs(e.type === 'data' ? e.tsExitNs : e.tsNs).toString(),
    pid: e.tgid,
    tid: e.tid,
    comm: e.comm,
    fd: e.fd,
    conn: String(e.connId),
    role: e.role,
  };
  const local = formatEndpoint(t.localAddr, t.localPort);
  const remote = formatEndpoint(t.remoteAddr, t.remotePort);
  if (e.type === 'data') {
    return { ...base, dir: e.dir, local, remote, size: e.size, data: e.data.toString('base64'), truncated: e.truncated };
  }
  return { ...base, reason: e.reason, local, remote, size: 0, data: '', truncated: false };
}

const PREVIEW_BYTES = 64;

/** A readable line: time pid/comm conn role dir tuple bytes preview. */
export function toCaptureText(e: CaptureEvent, clock: WallClock): string {
  switch (e.type) {
    case 'data': {
      const arrow = e.dir === 'egress' ? '->' : '<-';
      const trunc = e.truncated ? ` (captured ${e.data.length})` : '';
      return (
        `${time(clock, e.tsExitNs)} ${e.tgid}/${e.comm} conn=${e.connId} ${e.role} ${e.dir} ` +
        `${endpoint(e, 'local')} ${arrow} ${endpoint(e, 'remote')} ${e.size}B${trunc} ${preview(e.data)}`
      );
    }
    case 'open':
      return (
        `${time(clock, e.tsNs)} ${e.tgid}/${e.comm} conn=${e.connId} ${e.role} open (${e.reason}) fd=${e.fd} ` +
        `${endpoint(e, 'local')} <-> ${endpoint(e, 'remote')}`
      );
    case 'close':
      return (
        `${time(clock, e.tsNs)} ${e.tgid}/${e.comm} conn=${e.connId} ${e.role} close (${e.reason}) fd=${e.fd} ` +
        `${endpoint(e, 'local')} <-> ${endpoint(e, 'remote')} sent=${e.bytesSent}B recv=${e.bytesRecv}B`
      );
    case 'exec':
      return `${time(clock, e.tsNs)} ${e.tgid}/${e.comm} exec ${e.filename}`;
    case 'fork':
      return `${time(clock, e.tsNs)} ${e.tgid}/${e.comm} fork of ${e.ppid}`;
    case 'exit':
      return `${time(clock, e.tsNs)} ${e.tgid}/${e.comm} exit ${e.signal !== undefined ? `signal=${e.signal}` : `code=${e.exitCode}`}`;
    case 'link':
      return (
        `${time(clock, e.tsNs)} ${e.tgid} link ${e.rule} ${e.op} client conn=${e.clientConnId} fd=${e.clientFd}` +
        (e.op === 'set' ? ` <- server conn=${e.serverConnId} fd=${e.serverFd}` : '')
      );
  }
}

function time(clock: WallClock, monoNs: number): string {
  const ns = clock.toWallNs(monoNs);
  const d = new Date(Number(ns / 1_000_000n));
  const micros = String(ns % 1_000_000_000n / 1000n).padStart(6, '0');
  return `${d.toISOString().slice(11, 19)}.${micros}`;
}

function endpoint(e: SocketEvent, side: 'local' | 'remote'): string {
  const t = e.tuple;
  return side === 'local' ? formatEndpoint(t.localAddr, t.localPort) : formatEndpoint(t.remoteAddr, t.remotePort);
}

/** Printable ASCII as is, everything else as '.', at most PREVIEW_BYTES. */
function preview(data: Buffer): string {
  const n = Math.min(data.length, PREVIEW_BYTES);
  let s = '';
  for (let i = 0; i < n; i++) {
    const c = data[i]!;
    s += c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : '.';
  }
  return JSON.stringify(s + (data.length > n ? '…' : ''));
}
