// Byte layout of the records defined in bpf/socket_trace.h, and (re-exported
// at the end) of each feature's header: tcp-health-layout.ts mirrors
// bpf/tcp_health.h, syscall-latency-layout.ts bpf/syscall_latency.h.
// Mirrored by hand but never trusted by hand: test/capture/layout.test.ts
// compiles the C headers with the host compiler and compares every offset,
// size and constant with what C says.

export const MAX_PAYLOAD = 16384;
export const TASK_COMM_LEN = 16;
export const MAX_IOVECS = 1024;
export const MAX_MMSG = 8;
export const EXEC_PATH_LEN = 128;

export const EventType = {
  Data: 1,
  Open: 2,
  Close: 3,
  Exec: 4,
  Fork: 5,
  Exit: 6,
  /** syscall latency: SlowSyscallEventLayout (syscall-latency-layout.ts) */
  SlowSyscall: 7,
  /** runtime links: LinkEventLayout */
  Link: 8,
} as const;

/** enum link_rule and enum link_op. */
export const LinkRule = { Nginx: 1, Go: 2, Node: 3 } as const;
export const LinkOp = { Set: 1, Clear: 2 } as const;

export const Direction = { Egress: 1, Ingress: 2 } as const;
export const Role = { Unknown: 0, Client: 1, Server: 2 } as const;

export const DataSource = {
  Read: 1,
  Write: 2,
  Readv: 3,
  Writev: 4,
  Recvfrom: 5,
  Sendto: 6,
  Recvmsg: 7,
  Sendmsg: 8,
  Recvmmsg: 9,
  Sendmmsg: 10,
  /** Plaintext at a TLS library call (DATA_F_TLS). */
  Tls: 11,
} as const;

export const ConnReason = {
  Connect: 1,
  Accept: 2,
  Existing: 3,
  CloseSyscall: 16,
  CloseReplaced: 17,
  CloseExit: 18,
} as const;

/** enum capture_mode: what the kernel ships of a connection (set through mode_requests). */
export const CaptureMode = { Full: 0, Muted: 1 } as const;

export const DATA_F_TRUNCATED = 0x1;
/** Plaintext of a TLS call: pos is in the connection's plaintext stream. */
export const DATA_F_TLS = 0x2;
/** struct connection.flags: an SSL object is tied to the connection. */
export const CONN_F_TLS = 0x1;
export const PROC_F_SELECTED = 0x1;

export const AF_INET = 2;
export const AF_INET6 = 10;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

/** enum stat_index, in order. */
export const KERNEL_STATS = [
  'events_sent',
  'events_lost',
  'bytes_truncated',
  'data_events',
  'conn_opened',
  'conn_closed',
  'conn_table_full',
  'iov_skipped',
  'mmsg_skipped',
  'args_missing',
  'muted_syscalls',
  'muted_bytes',
  'conn_muted',
  // TCP health (group "tcp")
  'tcp_unowned',
  'tcp_peer_folded',
  'tcp_peer_lost',
  'tcp_owner_failed',
  // syscall latency (group "syscalls")
  'syslat_no_start',
  'syslat_map_full',
  'syslat_compat',
  'slow_dropped',
  // TLS plaintext (group "tls")
  'tls_ciphertext_syscalls',
  'tls_ciphertext_bytes',
  'tls_untied_calls',
  'tls_untied_bytes',
  'tls_ties_nested',
  'tls_ties_write',
  'tls_ties_replaced',
  'tls_ties_stale',
  'tls_ssl_conns_full',
  'tls_ssl_conns_evicted',
  'tls_untied_at_free',
  // Go crypto/tls
  'tls_go_marked',
  'tls_go_layout',
  'tls_go_return_missed',
  // runtime links (group "links")
  'link_events',
] as const;
export type KernelStatName = (typeof KERNEL_STATS)[number];

export const SockTupleLayout = {
  size: 40,
  local_addr: 0,
  remote_addr: 16,
  local_port: 32,
  remote_port: 34,
  family: 36,
  l4_proto: 38,
} as const;

export const DataEventLayout = {
  size: 128,
  type: 0,
  tgid: 4,
  tid: 8,
  fd: 12,
  conn_id: 16,
  ts_enter_ns: 24,
  ts_exit_ns: 32,
  pos: 40,
  cgroup_id: 48,
  netns: 56,
  size_field: 60,
  captured: 64,
  dir: 68,
  role: 69,
  source: 70,
  flags: 71,
  tuple: 72,
  comm: 112,
  payload: 128,
} as const;

export const ConnEventLayout = {
  size: 120,
  type: 0,
  tgid: 4,
  tid: 8,
  fd: 12,
  conn_id: 16,
  ts_ns: 24,
  cgroup_id: 32,
  bytes_sent: 40,
  bytes_recv: 48,
  netns: 56,
  role: 60,
  reason: 61,
  tuple: 64,
  comm: 104,
} as const;

export const ProcEventLayout = {
  size: 184,
  type: 0,
  tgid: 4,
  ppid: 8,
  flags: 12,
  ts_ns: 16,
  cgroup_id: 24,
  exit_code: 32,
  comm: 40,
  filename: 56,
} as const;

export const LinkEventLayout = {
  size: 56,
  type: 0,
  tgid: 4,
  tid: 8,
  rule: 12,
  op: 13,
  server_role: 14,
  client_role: 15,
  ts_ns: 16,
  server_conn: 24,
  client_conn: 32,
  server_fd: 40,
  client_fd: 44,
  token: 48,
} as const;

export const AgentConfigLayout = {
  size: 40,
  agent_tgid: 0,
  capture_bytes: 4,
  wakeup_bytes: 8,
  select_all: 12,
  capture_udp: 13,
  follow_forks: 14,
  report_execs: 15,
  pidns_dev: 16,
  pidns_ino: 24,
  initial_mode: 32,
  tls: 33,
} as const;

/** Framing of a native batch (native/batch_format.h): [u32 len][u32 0][record][pad to 8]. */
export const BATCH_RECORD_HEADER = 8;
export const BATCH_ALIGN = 8;

export * from './tcp-health-layout';
export * from './syscall-latency-layout';
