// The TypeScript mirror of bpf/socket_trace.h (and the feature headers it
// includes), checked against what the C compiler says: every offset, size
// and constant.

import test from 'ava';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as L from '../../src/capture/layout';

const ROOT = path.resolve(__dirname, '../../..');

type StructLayout = { c: string; layout: Record<string, number>; rename?: Record<string, string> };

// One table per header: bpf/socket_trace.h, then the feature headers it includes.
const SOCKET_TRACE_STRUCTS: Record<string, StructLayout> = {
  sock_tuple: { c: 'struct sock_tuple', layout: L.SockTupleLayout },
  data_event: { c: 'struct data_event', layout: L.DataEventLayout, rename: { size_field: 'size' } },
  conn_event: { c: 'struct conn_event', layout: L.ConnEventLayout },
  proc_event: { c: 'struct proc_event', layout: L.ProcEventLayout },
  link_event: { c: 'struct link_event', layout: L.LinkEventLayout },
  agent_config: { c: 'struct agent_config', layout: L.AgentConfigLayout },
};

const TCP_HEALTH_STRUCTS: Record<string, StructLayout> = {
  conn_record: {
    c: 'struct conn_record',
    layout: L.ConnRecordLayout,
    rename: Object.fromEntries(
      ['conn_id', 'bytes_sent', 'bytes_recv', 'sk', 'tuple', 'netns', 'mode', 'mode_seq', 'role', 'flags', 'tls_sent', 'tls_recv', 'tls_cipher_sent_ns'].map((f) => [f, `conn.${f}`]),
    ),
  },
  tcp_peer_record: {
    c: 'struct tcp_peer_record',
    layout: L.TcpPeerRecordLayout,
    rename: Object.fromEntries([
      ...['tgid', 'role', 'flags', 'family', 'port', 'err', 'addr'].map((f) => [f, `key.${f}`]),
      ...['attempts', 'established', 'failed', 'resets_sent', 'resets_recv', 'retransmits', 'closed', 'lifetime_sum_ns', 'lifetime_buckets'].map((f) => [
        f,
        `stats.${f}`,
      ]),
    ]),
  },
};

const SYSCALL_LATENCY_STRUCTS: Record<string, StructLayout> = {
  syscall_hist_key: { c: 'struct syscall_hist_key', layout: L.SyscallHistKeyLayout },
  syscall_hist: { c: 'struct syscall_hist', layout: L.SyscallHistLayout },
  syscall_hist_record: { c: 'struct syscall_hist_record', layout: L.SyscallHistRecordLayout },
  slow_syscall_event: { c: 'struct slow_syscall_event', layout: L.SlowSyscallEventLayout },
  syscall_config: { c: 'struct syscall_config', layout: L.SyscallConfigLayout },
};

const STRUCTS: Record<string, StructLayout> = { ...SOCKET_TRACE_STRUCTS, ...TCP_HEALTH_STRUCTS, ...SYSCALL_LATENCY_STRUCTS };

const SOCKET_TRACE_CONSTANTS: Record<string, number> = {
  MAX_PAYLOAD: L.MAX_PAYLOAD,
  TASK_COMM_LEN: L.TASK_COMM_LEN,
  MAX_IOVECS: L.MAX_IOVECS,
  MAX_MMSG: L.MAX_MMSG,
  EXEC_PATH_LEN: L.EXEC_PATH_LEN,
  EV_DATA: L.EventType.Data,
  EV_OPEN: L.EventType.Open,
  EV_CLOSE: L.EventType.Close,
  EV_EXEC: L.EventType.Exec,
  EV_FORK: L.EventType.Fork,
  EV_EXIT: L.EventType.Exit,
  DIR_EGRESS: L.Direction.Egress,
  DIR_INGRESS: L.Direction.Ingress,
  ROLE_UNKNOWN: L.Role.Unknown,
  ROLE_CLIENT: L.Role.Client,
  ROLE_SERVER: L.Role.Server,
  SRC_READ: L.DataSource.Read,
  SRC_WRITE: L.DataSource.Write,
  SRC_READV: L.DataSource.Readv,
  SRC_WRITEV: L.DataSource.Writev,
  SRC_RECVFROM: L.DataSource.Recvfrom,
  SRC_SENDTO: L.DataSource.Sendto,
  SRC_RECVMSG: L.DataSource.Recvmsg,
  SRC_SENDMSG: L.DataSource.Sendmsg,
  SRC_RECVMMSG: L.DataSource.Recvmmsg,
  SRC_SENDMMSG: L.DataSource.Sendmmsg,
  SRC_TLS: L.DataSource.Tls,
  OPEN_CONNECT: L.ConnReason.Connect,
  OPEN_ACCEPT: L.ConnReason.Accept,
  OPEN_EXISTING: L.ConnReason.Existing,
  CLOSE_SYSCALL: L.ConnReason.CloseSyscall,
  CLOSE_REPLACED: L.ConnReason.CloseReplaced,
  CLOSE_EXIT: L.ConnReason.CloseExit,
  MODE_FULL: L.CaptureMode.Full,
  MODE_MUTED: L.CaptureMode.Muted,
  DATA_F_TRUNCATED: L.DATA_F_TRUNCATED,
  DATA_F_TLS: L.DATA_F_TLS,
  CONN_F_TLS: L.CONN_F_TLS,
  PROC_F_SELECTED: L.PROC_F_SELECTED,
  STAT__COUNT: L.KERNEL_STATS.length,
  EV_SLOW_SYSCALL: L.EventType.SlowSyscall,
  EV_LINK: L.EventType.Link,
  LINK_NGINX: L.LinkRule.Nginx,
  LINK_GO: L.LinkRule.Go,
  LINK_NODE: L.LinkRule.Node,
  LINK_OP_SET: L.LinkOp.Set,
  LINK_OP_CLEAR: L.LinkOp.Clear,
};

const TCP_HEALTH_CONSTANTS: Record<string, number> = {
  TCP_PEER_F_OVERFLOW: L.TCP_PEER_F_OVERFLOW,
  TCP_PEER_F_FAILURE: L.TCP_PEER_F_FAILURE,
  TCP_LIFETIME_MIN_SHIFT: L.TCP_LIFETIME_MIN_SHIFT,
  TCP_LIFETIME_MAX_SHIFT: L.TCP_LIFETIME_MAX_SHIFT,
  TCP_LIFETIME_BUCKETS: L.TCP_LIFETIME_BUCKETS,
};

const SYSCALL_LATENCY_CONSTANTS: Record<string, number> = {
  SYSLAT_BUCKETS: L.SYSLAT_BUCKETS,
  SYSLAT_FIRST_LOG2: L.SYSLAT_FIRST_LOG2,
  SYSLAT_MAX_NR: L.SYSLAT_MAX_NR,
  SLOW_PATH_LEN: L.SLOW_PATH_LEN,
  FDT_NONE: L.FdTarget.None,
  FDT_FILE: L.FdTarget.File,
  FDT_SOCKET_INET: L.FdTarget.SocketInet,
  FDT_SOCKET: L.FdTarget.Socket,
  FDT_PSEUDO: L.FdTarget.Pseudo,
  SLOW_F_PATH_TRUNCATED: L.SLOW_F_PATH_TRUNCATED,
  SLOW_F_DELETED: L.SLOW_F_DELETED,
};

const CONSTANTS: Record<string, number> = { ...SOCKET_TRACE_CONSTANTS, ...TCP_HEALTH_CONSTANTS, ...SYSCALL_LATENCY_CONSTANTS };

function cProgram(): string {
  const lines: string[] = [];
  for (const [name, s] of Object.entries(STRUCTS)) {
    lines.push(`printf("%s.size %zu\\n", "${name}", sizeof(${s.c}));`);
    for (const field of Object.keys(s.layout)) {
      if (field === 'size') continue;
      const cField = s.rename?.[field] ?? field;
      lines.push(`printf("%s.${field} %zu\\n", "${name}", offsetof(${s.c}, ${cField}));`);
    }
  }
  for (const c of Object.keys(CONSTANTS)) lines.push(`printf("const.${c} %lld\\n", (long long)(${c}));`);
  L.KERNEL_STATS.forEach((n, i) => lines.push(`printf("stat.${i} %d\\n", (int)STAT_${n.toUpperCase()});`));
  return `#include <stddef.h>\n#include <stdio.h>\n#include <linux/types.h>\n#include "socket_trace.h"\nint main(void) {\n${lines.join('\n')}\nreturn 0;\n}\n`;
}

test('layout.ts matches bpf/socket_trace.h as compiled by the host C compiler', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'layout-'));
  try {
    fs.writeFileSync(path.join(dir, 'layout.c'), cProgram());
    execFileSync('cc', ['-Wall', '-Werror', '-I', path.join(ROOT, 'bpf'), '-o', path.join(dir, 'layout'), path.join(dir, 'layout.c')]);
    const out = execFileSync(path.join(dir, 'layout'), { encoding: 'utf8' });
    const c = new Map(out.trim().split('\n').map((l) => l.split(' ') as [string, string]));
    for (const [name, s] of Object.entries(STRUCTS)) {
      for (const [field, offset] of Object.entries(s.layout)) {
        t.is(Number(c.get(`${name}.${field}`)), offset, `${name}.${field}`);
      }
    }
    for (const [name, value] of Object.entries(CONSTANTS)) t.is(Number(c.get(`const.${name}`)), value, name);
    L.KERNEL_STATS.forEach((n, i) => t.is(Number(c.get(`stat.${i}`)), i, `STAT_${n.toUpperCase()}`));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
