// A slow syscall (EV_SLOW_SYSCALL) as an OTLP log record: an event named
// `ebpf_otel.syscall.slow` under the process's resource.
//
// Log records rather than span events: most slow calls happen outside any
// request the agent saw (a stalled fsync in a background thread, a slow
// DNS lookup at start), or after the request's span was already exported;
// a span event needs a span that is still open. A record stands on its own
// and a backend can still join it to traces by process and time.

import type { SlowSyscallEvent } from '../capture/events';
import { syscallName, type SyscallArch } from '../capture/syscall-names';
import type { LogRecord, LogValue } from './log-record';
import { syscallErrorName } from './syscall-duration';

export const SLOW_SYSCALL_EVENT = 'ebpf_otel.syscall.slow';

export function slowSyscallLog(e: SlowSyscallEvent, arch: SyscallArch | undefined): LogRecord {
  const name = syscallName(e.nr, arch);
  const seconds = e.durationNs / 1e9;
  const attributes: Record<string, LogValue> = {
    'syscall.name': name,
    'thread.id': e.tid,
    'thread.name': e.comm,
    'ebpf_otel.syscall.duration': seconds,
  };
  if (e.err !== 0) attributes['error.type'] = syscallErrorName(e.err);
  if (e.fd !== undefined) attributes['ebpf_otel.fd'] = e.fd;
  const t = e.target;
  if (t?.kind === 'file') {
    attributes['file.path'] = t.path;
    // A path whose leading components did not fit is a suffix: say so rather than pass it off as whole.
    if (t.truncated) attributes['ebpf_otel.file.path_truncated'] = true;
    if (t.deleted) attributes['ebpf_otel.file.deleted'] = true;
  } else if (t?.kind === 'socket' && t.tuple !== undefined) {
    attributes['network.transport'] = t.tuple.transport;
    attributes['network.type'] = t.tuple.family === 'inet6' ? 'ipv6' : 'ipv4';
    attributes['network.local.address'] = t.tuple.localAddr;
    attributes['network.local.port'] = t.tuple.localPort;
    attributes['network.peer.address'] = t.tuple.remoteAddr;
    attributes['network.peer.port'] = t.tuple.remotePort;
  } else if (t?.kind === 'pseudo') {
    attributes['ebpf_otel.fd.name'] = t.name;
  }
  const what = t?.kind === 'file' ? ` on ${t.path}` : t?.kind === 'pseudo' ? ` on ${t.name}` : '';
  return {
    tgid: e.tgid,
    timeNs: e.tsEnterNs,
    severity: 'WARN',
    eventName: SLOW_SYSCALL_EVENT,
    body: `${name} took ${(seconds * 1000).toFixed(1)} ms${e.err !== 0 ? ` and failed with ${syscallErrorName(e.err)}` : ''}${what}`,
    attributes,
  };
}
