// Byte layout of bpf/syscall_latency.h: the histogram records of native
// readSyscallHistograms(), the EV_SLOW_SYSCALL record and the syscalls
// group's load-time config. Re-exported by layout.ts; checked by
// test/capture/layout.test.ts like the rest.

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
