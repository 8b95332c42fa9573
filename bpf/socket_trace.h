/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one definition of everything that crosses the kernel/user boundary:
 * ring-buffer records, the load-time configuration, counters. This file has
 * socket capture's and what all features share (event tags, counters, program
 * groups); each other feature's records are in its own header, included at
 * the end: tcp_health.h (TCP health and flows), syscall_latency.h (syscall
 * latency). Include this file, not those.
 *
 * Included by the BPF program (types from vmlinux.h) and by the native addon
 * (types from <linux/types.h>). Only fixed-width types, natural alignment, no
 * packing: the TypeScript decoder (src/capture/layout.ts and the feature
 * layouts it re-exports) is checked against these files by
 * test/capture/layout.test.ts, which compiles them with the host compiler and
 * compares every offset and size.
 *
 * Every record starts with a __u32 type tag; user space switches on it.
 */
#ifndef EBPF_OTEL_SOCKET_TRACE_H
#define EBPF_OTEL_SOCKET_TRACE_H

/* Largest payload one data event carries. A power of two: the BPF side masks
 * lengths with (MAX_PAYLOAD - 1) so the verifier can bound copies. */
#define MAX_PAYLOAD 16384
#define TASK_COMM_LEN 16
/* Vectored I/O: iovecs copied per syscall, in order, until the cap is reached:
 * all the kernel accepts (UIO_MAXIOV), walked with bpf_loop (kernel 5.17). */
#define MAX_IOVECS 1024
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
	EV_SLOW_SYSCALL = 7, /* struct slow_syscall_event (syscall_latency.h): one call over syscall_config.slow_ns */
	EV_LINK = 8,  /* struct link_event: a runtime names the request a client connection works for (group "links") */
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
	SRC_TLS = 11, /* plaintext at a TLS library call (group "tls"); dir says read or write */
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
/* Plaintext from a TLS library call (source SRC_TLS): pos is in the
 * connection's plaintext stream, which starts at 0 with the first TLS event
 * and is not the socket stream (whose ciphertext is no longer shipped). */
#define DATA_F_TLS 0x2

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
	__u64 ts_enter_ns; /* CLOCK_MONOTONIC, syscall entry; DIR_INGRESS: = ts_exit_ns (not read) */
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

/*
 * Runtime links (group "links"): a probe inside the application (nginx's
 * upstream module, Go's net/http, the Node.js preload's marker syscall) says,
 * at the moment it is true, which request a client connection is about to
 * work for. SET: the CLIENT requests this process starts next on client_conn
 * are children of the SERVER request in flight now on server_conn. CLEAR:
 * they are children of no request the runtime knows (a background task).
 * Every use of a client connection is marked one way or the other, so a
 * connection handed from one request to another is never left pointing at
 * the first. User space resolves "the request in flight" in its timeline.
 */
enum link_rule {
	LINK_NGINX = 1,
	LINK_GO = 2,
	LINK_NODE = 3,
};

enum link_op {
	LINK_OP_SET = 1,
	LINK_OP_CLEAR = 2,
};

struct link_event {
	__u32 type;        /* EV_LINK */
	__u32 tgid;
	__u32 tid;
	__u8 rule;         /* enum link_rule */
	__u8 op;           /* enum link_op */
	__u8 server_role;  /* enum conn_role of server_conn (ROLE_UNKNOWN when 0) */
	__u8 client_role;  /* enum conn_role of client_conn */
	__u64 ts_ns;       /* CLOCK_MONOTONIC */
	__u64 server_conn; /* conn id of the followed TCP socket at server_fd; 0: none (CLEAR, or not one) */
	__u64 client_conn; /* conn id of the followed TCP socket at client_fd; 0: not one */
	__s32 server_fd;   /* as the runtime gave it; -1 for CLEAR */
	__s32 client_fd;
	__u64 token;       /* the runtime's own id of the request (nginx: the request's address), for logs */
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
	STAT_IOV_SKIPPED = 7,     /* iovecs past MAX_IOVECS (their bytes counted as truncated); the kernel
				   * refuses more than UIO_MAXIOV, so 0 while MAX_IOVECS is that */
	STAT_MMSG_SKIPPED = 8,    /* mmsg messages past MAX_MMSG (not captured) */
	STAT_ARGS_MISSING = 9,    /* a sys_exit without its sys_enter (attach in mid-call) */
	STAT_MUTED_SYSCALLS = 10, /* data syscalls on MODE_MUTED connections: no event sent */
	STAT_MUTED_BYTES = 11,    /* bytes those syscalls moved (not in bytes_truncated) */
	STAT_CONN_MUTED = 12,     /* MODE_MUTED requests applied (user space asks once per connection) */
	/* TCP health (group "tcp") */
	STAT_TCP_UNOWNED = 13,      /* TCP events on sockets with no known owner (not selected, opened before the agent, not yet accepted): ignored */
	STAT_TCP_PEER_FOLDED = 14,  /* TCP events folded into their process's overflow key: tcp_peers was full */
	STAT_TCP_PEER_LOST = 15,    /* TCP events lost: tcp_peer_overflow was full too */
	STAT_TCP_OWNER_FAILED = 16, /* a socket's owner could not be stored: its events will be unowned */
	/* syscall latency (group "syscalls") */
	STAT_SYSLAT_NO_START = 17,  /* a sys_exit without its recorded sys_enter: in flight at attach,
				     * a new task's first return (fork/clone), selection changed */
	STAT_SYSLAT_MAP_FULL = 18,  /* syscall_hists had no room for a new key: call not counted */
	STAT_SYSLAT_COMPAT = 19,    /* 32-bit compat syscalls: not measured (numbers of another table) */
	STAT_SLOW_DROPPED = 20,     /* slow calls over the rate limit: not reported */
	/* TLS plaintext (group "tls", bpf/uprobes/openssl.bpf.h) */
	STAT_TLS_CIPHERTEXT_SYSCALLS = 21, /* data syscalls on TLS connections: ciphertext, no event sent */
	STAT_TLS_CIPHERTEXT_BYTES = 22,    /* bytes those syscalls moved */
	STAT_TLS_UNTIED_CALLS = 23,   /* TLS reads/writes that moved plaintext on an SSL tied to no connection: not sent */
	STAT_TLS_UNTIED_BYTES = 24,   /* the plaintext bytes of those calls */
	STAT_TLS_TIES_NESTED = 25,    /* SSL tied by a socket syscall inside its TLS call (socket BIO) */
	STAT_TLS_TIES_WRITE = 26,     /* SSL tied by the thread's next socket write after its TLS call (memory BIO) */
	STAT_TLS_TIES_REPLACED = 27,  /* a nested-syscall tie moved a tied SSL to another connection */
	STAT_TLS_TIES_STALE = 28,     /* a tie whose connection had closed or been replaced: removed */
	STAT_TLS_SSL_CONNS_FULL = 29, /* a tie could not be stored in ssl_conns */
	STAT_TLS_SSL_CONNS_EVICTED = 30, /* new ties while ssl_conns held max_entries: each pushed the
					  * least recently used one out */
	STAT_TLS_UNTIED_AT_FREE = 31, /* ties removed at SSL_free */
	/* Go crypto/tls (bpf/uprobes/go_tls.bpf.h) */
	STAT_TLS_GO_MARKED = 32,      /* connections found TLS by a Go Read/Write (the fd read from its Conn) */
	STAT_TLS_GO_LAYOUT = 33,      /* Go Read/Write calls whose Conn held no TCP netFD where expected: not captured */
	STAT_TLS_GO_RETURN_MISSED = 34, /* Go calls whose entry was replaced by the goroutine's next call: no return seen */
	/* Runtime links (group "links") */
	STAT_LINK_EVENTS = 35,       /* link events written */
	STAT__COUNT = 36,
};

/*
 * Program groups. The loader loads the programs of the groups it is asked
 * for and leaves the others out of the kernel (an unloaded program costs
 * nothing). A program's group is in its name:
 *   syslat_*  syscall latency histograms and slow calls (group "syscalls")
 *   tcph_*    TCP health (group "tcp"; its maps, named tcp_* and tcph_*, are
 *             created only with it)
 *   uprobe_ssl_*, uretprobe_ssl_*, uprobe_go_tls_*
 *             TLS plaintext at OpenSSL and Go crypto/tls calls (group
 *             "tls"; not attached by attachAll: user space attaches them
 *             per library file with attachUprobe). Needs group "sockets":
 *             the ties and the ciphertext muting are in its syscall
 *             programs.
 *   uprobe_link_*, link_*
 *             runtime links (group "links"): uprobes attached per file by
 *             user space (nginx, Go), tracepoints (link_*: the Node.js
 *             preload's marker) by attachAll. Needs group "sockets" (the
 *             connections they name).
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
	__u8 initial_mode;   /* enum capture_mode of every new connection: MODE_MUTED
			      * follows byte counts without shipping any data event
			      * (flows: ebpf-otel top) */
	__u8 tls;            /* group "tls" loaded: the syscall programs tie SSL
			      * objects to connections (set by the loader, not by user space) */
	__u8 _pad[6];
};

/*
 * A `conn_info` value (bpf/connections.bpf.h keeps the table). User space
 * reads the whole table each interval for flow byte counts (struct
 * conn_record, tcp_health.h): bytes_sent and bytes_recv are the true sizes
 * moved, also while the connection is muted.
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
	__u8 flags;     /* CONN_F_* */
	__u8 _pad[2];
	/* CONN_F_TLS: the plaintext streams' positions (bytes moved by TLS calls). */
	__u64 tls_sent;
	__u64 tls_recv;
	/* CONN_F_TLS: when the last ciphertext write syscall returned. A TLS
	 * write that made it ends then, not when the library call returned
	 * (after the peer may already have answered). */
	__u64 tls_cipher_sent_ns;
};

/* connection.flags */
#define CONN_F_TLS 0x1    /* a TLS library's calls carry its plaintext: its syscalls carry ciphertext */
#define CONN_F_GO_TLS 0x2 /* Go crypto/tls writes to it: its ciphertext writes may complete one (go_tls_writes) */

/* Each feature's records and configuration, in a header of its own. They use
 * the types above (struct sock_tuple, struct connection), so they come last. */
#include "tcp_health.h"
#include "syscall_latency.h"

#endif /* EBPF_OTEL_SOCKET_TRACE_H */
