// Byte layout of the ring-buffer records defined in bpf/socket_trace.h.
// Mirrored by hand but never trusted by hand: test/capture/layout.test.ts
// compiles the C header with the host compiler and compares every offset,
// size and constant below with what C says.

export const MAX_PAYLOAD = 16384;
export const TASK_COMM_LEN = 16;
export const MAX_IOVECS = 16;
export const MAX_MMSG = 8;
export const EXEC_PATH_LEN = 128;

export const EventType = {
  Data: 1,
  Open: 2,
  Close: 3,
  Exec: 4,
  Fork: 5,
  Exit: 6,
  // -- syscall latency --
  SlowSyscall: 7,
  // -- end syscall latency --
} as const;

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
  // ---- TCP health ----
  'tcp_unowned',
  'tcp_peer_folded',
  'tcp_peer_lost',
  'tcp_owner_failed',
  // ---- end TCP health ----
  // -- syscall latency --
  'syslat_no_start',
  'syslat_map_full',
  'syslat_compat',
  'slow_dropped',
  // -- end syscall latency --
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
} as const;

// ---- TCP health and flows: records of the maps user space reads ----

/** struct conn_record: a conn_info key (tgid << 32 | fd) and its struct connection, flattened. */
export const ConnRecordLayout = {
  size: 96,
  key: 0,
  conn_id: 8,
  bytes_sent: 16,
  bytes_recv: 24,
  sk: 32,
  tuple: 40,
  netns: 80,
  mode: 84,
  mode_seq: 88,
  role: 92,
} as const;

/** struct tcp_peer_record: struct tcp_peer_key then struct tcp_peer_stats, flattened. */
export const TcpPeerRecordLayout = {
  size: 352,
  tgid: 0,
  role: 4,
  flags: 5,
  family: 6,
  port: 8,
  err: 12,
  addr: 16,
  attempts: 32,
  established: 40,
  failed: 48,
  resets_sent: 56,
  resets_recv: 64,
  retransmits: 72,
  closed: 80,
  lifetime_sum_ns: 88,
  lifetime_buckets: 96,
} as const;

export const TCP_PEER_F_OVERFLOW = 0x1;
export const TCP_PEER_F_FAILURE = 0x2;
export const TCP_LIFETIME_MIN_SHIFT = 14;
export const TCP_LIFETIME_MAX_SHIFT = 44;
export const TCP_LIFETIME_BUCKETS = TCP_LIFETIME_MAX_SHIFT - TCP_LIFETIME_MIN_SHIFT + 2;
// ---- end TCP health and flows ----

// ---- syscall latency (bpf/syscall_latency.bpf.h) ----

export const SYSLAT_BUCKETS = 28;
export const SYSLAT_FIRST_LOG2 = 10;
export const SYSLAT_MAX_NR = 1024;
export const SLOW_PATH_LEN = 256;

/** enum fd_target: what a slow call's fd named when the call returned. */
export const FdTarget = { None: 0, File: 1, SocketInet: 2, Socket: 3, Pseudo: 4 } as const;
export const SLOW_F_PATH_TRUNCATED = 0x1;
export const SLOW_F_DELETED = 0x2;

export const SyscallHistKeyLayout = {
  size: 12,
  tgid: 0,
  nr: 4,
  err: 8,
} as const;

/** No count field: the count is the sum of the buckets. */
export const SyscallHistLayout = {
  size: 240,
  sum_ns: 0,
  max_ns: 8,
  buckets: 16,
} as const;

/** One record of readSyscallHistograms(): key, padding, histogram. */
export const SyscallHistRecordLayout = {
  size: 256,
  key: 0,
  hist: 16,
} as const;

export const SlowSyscallEventLayout = {
  size: 392,
  type: 0,
  tgid: 4,
  tid: 8,
  nr: 12,
  ret: 16,
  ts_enter_ns: 24,
  duration_ns: 32,
  cgroup_id: 40,
  ino: 48,
  fd: 56,
  err: 60,
  netns: 64,
  mode: 68,
  socket_family: 70,
  target: 72,
  flags: 73,
  tuple: 80,
  comm: 120,
  path: 136,
} as const;

export const SyscallConfigLayout = {
  size: 24,
  slow_ns: 0,
  slow_cost_ns: 8,
  sigreturn_nr: 16,
} as const;

// ---- end syscall latency ----

/** Framing of a native batch (native/batch_format.h): [u32 len][u32 0][record][pad to 8]. */
export const BATCH_RECORD_HEADER = 8;
export const BATCH_ALIGN = 8;
