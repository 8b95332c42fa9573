/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Syscall latency (program group "syscalls", bpf/syscall_latency.bpf.h): the
 * histogram records user space reads, the slow-call ring-buffer record
 * (EV_SLOW_SYSCALL) and the group's load-time configuration.
 *
 * Part of socket_trace.h, which includes it after the types it uses (struct
 * sock_tuple, TASK_COMM_LEN): include socket_trace.h, not this file.
 */
#ifndef EBPF_OTEL_SYSCALL_LATENCY_H
#define EBPF_OTEL_SYSCALL_LATENCY_H

#ifndef EBPF_OTEL_SOCKET_TRACE_H
#error "include socket_trace.h, not syscall_latency.h"
#endif

/*
 * Per (tgid, syscall number, errno) the kernel keeps a cumulative log2
 * latency histogram in `syscall_hists`; user space reads it with a batch
 * lookup each interval and diffs (nothing is reset, so nothing is lost
 * between read and reset). Bucket i holds durations in (2^(i-1), 2^i] times
 * SYSLAT_UNIT_NS: bucket 0 everything up to 2^SYSLAT_FIRST_LOG2 ns (1.024 us),
 * bucket SYSLAT_BUCKETS-2 up to 2^36 ns (68.7 s), the last one the rest.
 * Upper bounds are inclusive, as OpenTelemetry's explicit bucket boundaries.
 */
#define SYSLAT_BUCKETS 28
#define SYSLAT_FIRST_LOG2 10
/* fd_syscalls covers syscall numbers below this (both tables stay under 500). */
#define SYSLAT_MAX_NR 1024
/* Path of a slow call's file, as far as it fits (the tail is kept). */
#define SLOW_PATH_LEN 256

struct syscall_hist_key {
	__u32 tgid;
	__u32 nr;  /* syscall number of the host's native table */
	__u32 err; /* errno of a failed call (-ret); 0: success */
};

/* No count: it is the sum of the buckets (never torn from them). */
struct syscall_hist {
	__u64 sum_ns;
	__u64 max_ns;
	__u64 buckets[SYSLAT_BUCKETS];
};

/* One record of the native readSyscallHistograms() buffer: a map entry. */
struct syscall_hist_record {
	struct syscall_hist_key key;
	__u32 _pad;
	struct syscall_hist hist;
};

/* What a slow call's fd named when the call returned (slow_syscall_event.target). */
enum fd_target {
	FDT_NONE = 0,        /* not an fd-based syscall, or the fd was not open at exit */
	FDT_FILE = 1,        /* path: the file's path in its mount namespace */
	FDT_SOCKET_INET = 2, /* tuple: an AF_INET/AF_INET6 socket */
	FDT_SOCKET = 3,      /* another family (socket_family); see ino */
	FDT_PSEUDO = 4,      /* pipe, anon inode...: path holds the dentry name, see ino, mode */
};

/* slow_syscall_event.flags */
#define SLOW_F_PATH_TRUNCATED 0x1 /* leading path components did not fit */
#define SLOW_F_DELETED 0x2        /* the file was unlinked (path as it was) */

struct slow_syscall_event {
	__u32 type;        /* EV_SLOW_SYSCALL */
	__u32 tgid;
	__u32 tid;
	__u32 nr;
	__s64 ret;         /* the return value as the kernel gave it */
	__u64 ts_enter_ns; /* CLOCK_MONOTONIC */
	__u64 duration_ns;
	__u64 cgroup_id;
	__u64 ino;         /* inode number of the fd's file */
	__s32 fd;          /* first argument of an fd-based syscall; -1: none */
	__u32 err;         /* errno (-ret) of a failed call; 0: success */
	__u32 netns;       /* FDT_SOCKET_INET */
	__u16 mode;        /* i_mode & S_IFMT of the fd's file */
	__u16 socket_family;
	__u8 target;       /* enum fd_target */
	__u8 flags;        /* SLOW_F_* */
	__u16 _pad;
	__u32 _pad2;
	struct sock_tuple tuple;
	char comm[TASK_COMM_LEN];
	char path[SLOW_PATH_LEN]; /* NUL-terminated */
};

/* Load-time configuration of the syscalls group: `const volatile struct
 * syscall_config syslat_config` in .rodata. */
struct syscall_config {
	__u64 slow_ns;      /* report calls at least this long; 0: no slow-call events */
	__u64 slow_cost_ns; /* rate limit, per CPU: a report costs this much credit; credit
			     * grows 1 per ns up to 1 s worth (1e9 / reports per second) */
	__u32 sigreturn_nr; /* rt_sigreturn: its return value is a register, not an error */
	__u32 _pad;
};

#endif /* EBPF_OTEL_SYSCALL_LATENCY_H */
