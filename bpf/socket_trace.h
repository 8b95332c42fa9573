/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one definition of everything that crosses the kernel/user boundary for
 * socket capture: ring-buffer records, the load-time configuration, counters.
 *
 * Included by the BPF program (types from vmlinux.h) and by the native addon
 * (types from <linux/types.h>). Only fixed-width types, natural alignment, no
 * packing: the TypeScript decoder (src/capture/layout.ts) is checked against
 * this file by test/capture/layout.test.ts, which compiles it with the host
 * compiler and compares every offset and size.
 *
 * Every record starts with a __u32 type tag; user space switches on it.
 */
#ifndef EBPF_OTEL_SOCKET_TRACE_H
#define EBPF_OTEL_SOCKET_TRACE_H

/* Largest payload one data event carries. A power of two: the BPF side masks
 * lengths with (MAX_PAYLOAD - 1) so the verifier can bound copies. */
#define MAX_PAYLOAD 16384
#define TASK_COMM_LEN 16
/* Vectored I/O: iovecs copied per syscall, in order, until the cap is reached. */
#define MAX_IOVECS 16
/* recvmmsg/sendmmsg: messages looked at per syscall (each becomes one event). */
#define MAX_MMSG 8
/* Path passed to execve, as far as it fits. */
#define EXEC_PATH_LEN 128

enum event_type {
	EV_DATA = 1,  /* struct data_event, followed by `captured` payload bytes */
	EV_OPEN = 2,  /* struct conn_event: a connection the agent starts to follow */
	EV_CLOSE = 3, /* struct conn_event: the connection ended, with byte totals */
	EV_EXEC = 4,  /* struct proc_event */
	EV_FORK = 5,  /* struct proc_event: a selected process forked a new process */
	EV_EXIT = 6,  /* struct proc_event: the whole thread group exited */
	/* -- syscall latency (group "syscalls") -- */
	EV_SLOW_SYSCALL = 7, /* struct slow_syscall_event: one call over syscall_config.slow_ns */
	/* -- end syscall latency -- */
};

enum direction {
	DIR_EGRESS = 1,  /* the traced process sent these bytes */
	DIR_INGRESS = 2, /* the traced process received these bytes */
};

enum conn_role {
	ROLE_UNKNOWN = 0, /* the connection predates the agent: nobody saw connect/accept */
	ROLE_CLIENT = 1,  /* the process called connect() */
	ROLE_SERVER = 2,  /* the process got it from accept()/accept4() */
};

/* Which syscall produced a data event. */
enum data_source {
	SRC_READ = 1,
	SRC_WRITE = 2,
	SRC_READV = 3,
	SRC_WRITEV = 4,
	SRC_RECVFROM = 5,
	SRC_SENDTO = 6,
	SRC_RECVMSG = 7,
	SRC_SENDMSG = 8,
	SRC_RECVMMSG = 9,
	SRC_SENDMMSG = 10,
};

/*
 * How much of a connection's traffic the kernel ships to user space. User
 * space asks for a mode by connection id: it stores a request in the
 * `mode_requests` map (key __u64 conn_id, value __u32 enum capture_mode),
 * then bumps `mode_requests_seq` (an array of one __u32). The kernel applies
 * the request at that connection's next I/O, or drops it when the connection
 * closes. Connection ids are never reused within a load, so a request can
 * only ever reach the connection it names, whatever became of its fd.
 */
enum capture_mode {
	MODE_FULL = 0,  /* one data event per syscall, up to capture_bytes of payload */
	MODE_MUTED = 1, /* no data events; stream positions and byte totals still advance */
};

/* data_event.flags */
#define DATA_F_TRUNCATED 0x1 /* captured < size: the payload is a prefix */

/* conn_event.reason */
enum conn_reason {
	OPEN_CONNECT = 1,  /* connect() returned 0 or EINPROGRESS */
	OPEN_ACCEPT = 2,   /* accept()/accept4() returned a new fd */
	OPEN_EXISTING = 3, /* first seen in I/O: opened before the agent or before selection */
	CLOSE_SYSCALL = 16, /* close() on the fd */
	CLOSE_REPLACED = 17, /* the fd now names another socket (dup2, missed close) */
	CLOSE_EXIT = 18,    /* reported by user space when the process exits */
};

/* proc_event.flags */
#define PROC_F_SELECTED 0x1 /* the kernel selected this process on its own (exec name or fork) */

struct sock_tuple {
	__u8 local_addr[16];  /* IPv4: first 4 bytes, network order */
	__u8 remote_addr[16];
	__u16 local_port;     /* host order */
	__u16 remote_port;    /* host order */
	__u16 family;         /* AF_INET (2) or AF_INET6 (10) */
	__u16 l4_proto;       /* IPPROTO_TCP (6) or IPPROTO_UDP (17) */
};

struct data_event {
	__u32 type;        /* EV_DATA */
	__u32 tgid;
	__u32 tid;
	__s32 fd;
	__u64 conn_id;     /* unique per agent run; a reused fd gets a new one */
	__u64 ts_enter_ns; /* CLOCK_MONOTONIC, syscall entry */
	__u64 ts_exit_ns;  /* CLOCK_MONOTONIC, syscall exit */
	__u64 pos;         /* offset of the first byte in this direction's stream */
	__u64 cgroup_id;
	__u32 netns;       /* network namespace inode number of the socket */
	__u32 size;        /* bytes the syscall moved */
	__u32 captured;    /* payload bytes that follow this header */
	__u8 dir;          /* enum direction */
	__u8 role;         /* enum conn_role */
	__u8 source;       /* enum data_source */
	__u8 flags;        /* DATA_F_* */
	struct sock_tuple tuple;
	char comm[TASK_COMM_LEN];
	__u8 payload[];
};

struct conn_event {
	__u32 type;        /* EV_OPEN or EV_CLOSE */
	__u32 tgid;
	__u32 tid;
	__s32 fd;
	__u64 conn_id;
	__u64 ts_ns;       /* CLOCK_MONOTONIC */
	__u64 cgroup_id;
	__u64 bytes_sent;  /* EV_CLOSE: totals seen while followed */
	__u64 bytes_recv;
	__u32 netns;
	__u8 role;         /* enum conn_role */
	__u8 reason;       /* enum conn_reason */
	__u16 _pad;
	struct sock_tuple tuple;
	char comm[TASK_COMM_LEN];
};

struct proc_event {
	__u32 type;        /* EV_EXEC, EV_FORK or EV_EXIT */
	__u32 tgid;
	__u32 ppid;        /* EV_FORK: the parent's tgid; else the real parent's tgid;
			    * 0 when the parent is outside the agent's pid namespace */
	__u32 flags;       /* PROC_F_* */
	__u64 ts_ns;       /* CLOCK_MONOTONIC */
	__u64 cgroup_id;
	__s32 exit_code;   /* EV_EXIT */
	__u32 _pad;
	char comm[TASK_COMM_LEN];
	char filename[EXEC_PATH_LEN]; /* EV_EXEC: path given to execve, NUL-terminated */
};

/* Per-CPU counters in the `stats` map, summed by user space. */
enum stat_index {
	STAT_EVENTS_SENT = 0,     /* records written to the ring buffer */
	STAT_EVENTS_LOST = 1,     /* records lost because the ring buffer was full */
	STAT_BYTES_TRUNCATED = 2, /* bytes moved by syscalls but not captured */
	STAT_DATA_EVENTS = 3,
	STAT_CONN_OPENED = 4,
	STAT_CONN_CLOSED = 5,
	STAT_CONN_TABLE_FULL = 6, /* conn_info insert failed: connection not followed */
	STAT_IOV_SKIPPED = 7,     /* iovecs past MAX_IOVECS (their bytes counted as truncated) */
	STAT_MMSG_SKIPPED = 8,    /* mmsg messages past MAX_MMSG (not captured) */
	STAT_ARGS_MISSING = 9,    /* a sys_exit without its sys_enter (attach in mid-call) */
	STAT_MUTED_SYSCALLS = 10, /* data syscalls on MODE_MUTED connections: no event sent */
	STAT_MUTED_BYTES = 11,    /* bytes those syscalls moved (not in bytes_truncated) */
	STAT_CONN_MUTED = 12,     /* MODE_MUTED requests applied (user space asks once per connection) */
	/* ---- TCP health (tcph_*) ---- */
	STAT_TCP_UNOWNED = 13,      /* TCP events on sockets with no known owner (not selected, opened before the agent, not yet accepted): ignored */
	STAT_TCP_PEER_FOLDED = 14,  /* TCP events folded into their process's overflow key: tcp_peers was full */
	STAT_TCP_PEER_LOST = 15,    /* TCP events lost: tcp_peer_overflow was full too */
	STAT_TCP_OWNER_FAILED = 16, /* a socket's owner could not be stored: its events will be unowned */
	/* ---- end TCP health ---- */
	/* -- syscall latency (group "syscalls") -- */
	STAT_SYSLAT_NO_START = 17,  /* a sys_exit without its recorded sys_enter: in flight at attach,
				     * a new task's first return (fork/clone), selection changed */
	STAT_SYSLAT_MAP_FULL = 18,  /* syscall_hists had no room for a new key: call not counted */
	STAT_SYSLAT_COMPAT = 19,    /* 32-bit compat syscalls: not measured (numbers of another table) */
	STAT_SLOW_DROPPED = 20,     /* slow calls over the rate limit: not reported */
	/* -- end syscall latency -- */
	STAT__COUNT = 21,
};

/* ---- syscall latency (group "syscalls": bpf/syscall_latency.bpf.h) ------ */
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
/* ---- end syscall latency ------------------------------------------------ */

/*
 * Program groups. The loader loads the programs of the groups it is asked
 * for and leaves the others out of the kernel (an unloaded program costs
 * nothing). A program's group is in its name:
 *   syslat_*  syscall latency histograms and slow calls (group "syscalls")
 *   tcph_*    TCP health (group "tcp"; its maps, named tcp_* and tcph_*, are
 *             created only with it)
 *   *_sched_* process lifecycle: exec, fork, exit (always loaded: selection
 *             follows processes whatever else runs)
 *   others    socket capture (group "sockets")
 */

/* Load-time configuration: one `const volatile struct agent_config config` in
 * .rodata, set by the loader before load so the verifier prunes dead branches. */
struct agent_config {
	__u32 agent_tgid;    /* never traced (a pid of the agent's namespace, see pidns_ino) */
	__u32 capture_bytes; /* payload bytes captured per syscall, 0..MAX_PAYLOAD */
	__u32 wakeup_bytes;  /* wake the reader once this much data waits; 0: every record */
	__u8 select_all;     /* trace every process but the agent */
	__u8 capture_udp;    /* follow UDP sockets too (TCP always) */
	__u8 follow_forks;   /* a selected process's forked children are selected */
	__u8 report_execs;   /* report every exec, not only selected ones (glob
			      * selectors are matched in user space) */
	/* The agent's pid namespace (stat of /proc/self/ns/pid: the nsfs device
	 * as the kernel encodes a dev_t, and the inode) when it is not the
	 * initial one; both 0 in the initial namespace. When set, only tasks
	 * whose active pid namespace is this one are traced, and every pid in
	 * a record (tgid, tid, ppid) and in the selection maps is that
	 * namespace's, as the agent's /proc shows them. */
	__u64 pidns_dev;
	__u64 pidns_ino;
	/* ---- flows (ebpf-otel top) ---- */
	__u8 initial_mode;   /* enum capture_mode of every new connection: MODE_MUTED
			      * follows byte counts without shipping any data event */
	__u8 _pad[7];
	/* ---- end flows ---- */
};


/* ==== Connection table and TCP health: maps user space batch-reads ==== */

/*
 * A `conn_info` value (bpf/connections.bpf.h keeps the table). User space
 * reads the whole table each interval for flow byte counts: bytes_sent and
 * bytes_recv are the true sizes moved, also while the connection is muted.
 */
struct connection {
	__u64 conn_id;
	__u64 bytes_sent; /* advanced atomically: also the egress stream position */
	__u64 bytes_recv; /* likewise for ingress */
	__u64 sk;         /* the struct sock * this id was issued for */
	struct sock_tuple tuple;
	__u32 netns;
	__u32 mode;     /* enum capture_mode */
	__u32 mode_seq; /* mode_requests_seq when this entry last looked for a request */
	__u8 role;
	__u8 _pad[3];
};

/* One record of a conn_info read: the key (tgid << 32 | fd), then the value. */
struct conn_record {
	__u64 key;
	struct connection conn;
};

/*
 * TCP health is aggregated in the kernel per (process, role, peer): the
 * tcph_* programs learn which process owns a socket in process context
 * (connect() for clients, accept() for servers) and count what the socket
 * tracepoints report, often in softirq context, under that owner's key.
 * Counters are cumulative: user space reads them each interval and diffs.
 */

/*
 * Connection lifetimes (ESTABLISHED, or accept() for servers, until CLOSE)
 * in log2 buckets of nanoseconds with inclusive upper bounds:
 * bucket 0: <= 2^MIN_SHIFT; bucket i: (2^(MIN_SHIFT+i-1), 2^(MIN_SHIFT+i)];
 * the last: > 2^MAX_SHIFT. Exactly OpenTelemetry explicit buckets with
 * boundaries 2^MIN_SHIFT .. 2^MAX_SHIFT ns.
 */
#define TCP_LIFETIME_MIN_SHIFT 14 /* 16.4 us */
#define TCP_LIFETIME_MAX_SHIFT 44 /* 4.9 h */
#define TCP_LIFETIME_BUCKETS (TCP_LIFETIME_MAX_SHIFT - TCP_LIFETIME_MIN_SHIFT + 2)

/* tcp_peer_key.flags */
#define TCP_PEER_F_OVERFLOW 0x1 /* one per process: what did not fit in tcp_peers */
#define TCP_PEER_F_FAILURE 0x2  /* connect failures with socket error `err`: only `failed` counts */

struct tcp_peer_key {
	__u32 tgid;
	__u8 role;    /* enum conn_role; 0 for an overflow key */
	__u8 flags;   /* TCP_PEER_F_* */
	__u16 family; /* AF_INET or AF_INET6 (an AF_INET6 socket may hold v4-mapped addresses) */
	__u16 port;   /* client: the peer's port; server: the local (listening) port */
	__u16 _pad;
	__u32 err;    /* TCP_PEER_F_FAILURE: sk_err at SYN_SENT -> CLOSE (ECONNREFUSED, ETIMEDOUT, ...;
		       * 0: the owner closed the socket before the handshake ended) */
	__u8 addr[16]; /* the peer's address; IPv4: first 4 bytes */
};

struct tcp_peer_stats {
	__u64 attempts;    /* client: CLOSE -> SYN_SENT (connect() started a handshake) */
	__u64 established; /* client: SYN_SENT -> ESTABLISHED; server: returned by accept() */
	__u64 failed;      /* client: SYN_SENT -> CLOSE (failure keys, and overflow keys) */
	__u64 resets_sent; /* on a connection past SYN_SENT */
	__u64 resets_recv;
	__u64 retransmits; /* segments retransmitted (SYNs included) */
	__u64 closed;      /* established connections that reached CLOSE */
	__u64 lifetime_sum_ns;
	__u64 lifetime_buckets[TCP_LIFETIME_BUCKETS];
};

/* One record of a TCP health read. */
struct tcp_peer_record {
	struct tcp_peer_key key;
	struct tcp_peer_stats stats;
};

#endif /* EBPF_OTEL_SOCKET_TRACE_H */
