/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Data events: the arguments a read/write-like syscall was entered with, and
 * the copy of the bytes it moved into one ring record at its exit.
 */
#ifndef EBPF_OTEL_DATA_BPF_H
#define EBPF_OTEL_DATA_BPF_H

#include "common.bpf.h"
#include "connections.bpf.h"

/* The kernel's cap on iovecs per call and on messages per *mmsg call. */
#ifndef UIO_MAXIOV
#define UIO_MAXIOV 1024
#endif

/* Slots of the per-thread socket cache (a power of two; indexed by fd). */
#define SOCK_CACHE_SLOTS 16

/* fd -> the followed socket its file was, as this thread last saw it. */
struct sock_cache_slot {
	__u64 file; /* struct file *; 0: empty */
	__u64 sk;   /* struct sock * behind it: never 0 (only sockets we follow are kept) */
};

struct io_args {
	__u64 ts_enter_ns;
	__u64 buf;  /* a buffer, a struct iovec[], a struct user_msghdr or a struct mmsghdr[] */
	__u64 sk;   /* socket behind fd at entry; 0: not one we follow */
	__s32 fd;
	__u32 vlen;   /* readv/writev: iovec count; *mmsg: message count */
	__u32 source; /* enum data_source: the exit checks it is its own syscall's entry; 0: none */
	__u32 sk_cached; /* sk came from socks[], not from a walk of the file */
};

/*
 * The thread's TLS library call (group "tls", bpf/uprobes/openssl.bpf.h):
 * what its entry probe saw, for its return probe and for the socket
 * syscalls the call makes (the nested-syscall tie), and the untied SSL
 * object whose call returned last (the thread's next socket write may tie
 * it: memory BIOs).
 */
struct tls_call {
	__u64 ssl;         /* SSL * of the read/write in flight; 0: none */
	__u64 buf;         /* its plaintext buffer */
	__u64 ex_out;      /* SSL_*_ex: the size_t * the byte count goes to; 0: the return value */
	__u64 ts_enter_ns; /* DIR_EGRESS only */
	__u64 pending_ssl; /* untied SSL * whose TLS call ended last; 0: none */
	__u64 pending_ts;  /* when that call ended */
	__u8 dir;          /* enum direction of the call in flight */
	__u8 _pad[7];
};

/*
 * The thread's task storage: its I/O syscall in flight, its TLS call, and its socket
 * cache, which spares the walk from the file to the socket (inode, socket,
 * sock: cold lines) on every I/O syscall (measured: bench/bpf-cost.ts). The
 * cache is keyed by the file pointer read from the fd table at entry; only
 * sockets we follow are kept, so a stale slot can only name a wrong socket,
 * which the exit checks against the connection table (conn_of_io_exit).
 */
struct io_task {
	struct io_args io;
	struct tls_call tls;
	struct sock_cache_slot socks[SOCK_CACHE_SLOTS];
};

/*
 * The current thread's I/O syscall in flight, for every I/O syscall of a
 * selected process (also non-sockets, so a missing entry really means a
 * missed sys_enter). Task storage, not a hash keyed by pid_tgid: created once
 * per thread and reused, freed with the task (bounded by the live threads of
 * selected processes), and no hash update and delete per syscall (measured:
 * bench/bpf-cost.ts). source 0: consumed or never filled.
 */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct io_task);
} active_io_args SEC(".maps");

/* The data event being built: header, then at most MAX_PAYLOAD bytes. */
struct data_event_buf {
	__u8 bytes[sizeof(struct data_event) + MAX_PAYLOAD];
};

/*
 * Vectored I/O is gathered here first: at (offset < MAX_PAYLOAD) a copy of
 * (length <= MAX_PAYLOAD) is provably in bounds only in 2 * MAX_PAYLOAD bytes,
 * and header + 2 * MAX_PAYLOAD exceeds what a per-CPU value may hold (32 KiB).
 */
struct iov_gather_buf {
	__u8 bytes[2 * MAX_PAYLOAD];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct data_event_buf);
} data_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct iov_gather_buf);
} iov_scratch SEC(".maps");

static __always_inline __u64 capture_limit(void)
{
	return config.capture_bytes < MAX_PAYLOAD ? config.capture_bytes : MAX_PAYLOAD;
}

static __always_inline struct data_event *data_event_scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&data_scratch, &zero);
}

/* What a syscall exit knows about one run of bytes to report. */
struct io_result {
	const struct io_args *args;
	struct connection *conn;
	__u64 pid_tgid; /* the current task's, from current_selected() */
	__u64 ts_exit_ns;
	__u8 dir;
	__u8 source;
	__u8 tls; /* plaintext of a TLS call: the connection's TLS streams, DATA_F_TLS */
};

/*
 * Claims the next `size` bytes of this direction's stream; returns where they
 * start. Atomic: concurrent writers on one socket each get their own range.
 */
static __always_inline __u64 advance_stream(const struct io_result *x, __u64 size)
{
	if (x->tls)
		return __sync_fetch_and_add(x->dir == DIR_EGRESS ? &x->conn->tls_sent : &x->conn->tls_recv, size);
	if (x->dir == DIR_EGRESS)
		return __sync_fetch_and_add(&x->conn->bytes_sent, size);
	return __sync_fetch_and_add(&x->conn->bytes_recv, size);
}

/* Fills the header for `size` moved bytes of which `captured` are in the
 * payload already, and writes header + payload to the ring. */
static __always_inline void submit_data_event(struct data_event *ev, const struct io_result *x,
					      __u64 size, __u64 captured)
{
	struct connection *c = x->conn;
	long err;

	ev->type = EV_DATA;
	ev->tgid = x->pid_tgid >> 32;
	ev->tid = (__u32)x->pid_tgid;
	ev->fd = x->args->fd;
	ev->conn_id = c->conn_id;
	ev->ts_enter_ns = x->args->ts_enter_ns;
	ev->ts_exit_ns = x->ts_exit_ns;
	ev->pos = advance_stream(x, size);
	ev->cgroup_id = bpf_get_current_cgroup_id();
	ev->netns = c->netns;
	ev->size = size;
	ev->dir = x->dir;
	ev->role = c->role;
	ev->source = x->source;
	ev->tuple = c->tuple;
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));

	barrier_var(captured);
	if (captured > MAX_PAYLOAD) /* never true; bounds the ring write for the verifier */
		captured = 0;
	ev->captured = captured;
	ev->flags = x->tls ? DATA_F_TLS : 0;
	if (captured < size) {
		ev->flags |= DATA_F_TRUNCATED;
		stat_add(STAT_BYTES_TRUNCATED, size - captured);
	}
	err = bpf_ringbuf_output(&events, ev, sizeof(*ev) + captured,
				 batched_wakeup(sizeof(*ev) + captured));
	count_write(err);
	stat_add(STAT_DATA_EVENTS, 1);
}

/* read/write/recvfrom/sendto: one contiguous user buffer. */
static __always_inline void capture_buffer(const struct io_result *x, __u64 size)
{
	struct data_event *ev = data_event_scratch();
	__u64 n = size < capture_limit() ? size : capture_limit();

	if (!ev)
		return;
	barrier_var(n);
	if (n > MAX_PAYLOAD)
		n = 0;
	if (n && bpf_probe_read_user(ev->payload, n, (const void *)x->args->buf))
		n = 0;
	submit_data_event(ev, x, size, n);
}

/*
 * The walk of one iovec array, between bpf_loop steps: copies to `dst`, in
 * iovec order, the first bytes of the `moved` the syscall transferred
 * through the user iovec array at `iov`, at most `cap`. `dst` holds
 * 2 * half bytes and `cap` <= half (a power of two): then a copy of
 * n <= half at (copied & (half - 1)) is provably in bounds. half is a
 * constant of each step function, one per destination.
 */
struct iov_gather {
	__u64 iov;
	__u64 moved;
	__u64 cap;
	__u64 consumed;
	__u64 copied;
	__u8 *dst;
};

/* One iovec; 1 (stop) at the end of the bytes or of the cap, or at the first
 * unreadable iovec. */
static __always_inline long gather_step(__u64 i, struct iov_gather *g, const __u64 half)
{
	const struct iovec *iov = (const struct iovec *)g->iov;
	struct iovec v;
	__u64 take, n, copied = g->copied;

	if (g->consumed >= g->moved || copied >= g->cap)
		return 1;
	if (bpf_probe_read_user(&v, sizeof(v), &iov[i]))
		return 1;
	take = g->moved - g->consumed;
	if (v.iov_len < take)
		take = v.iov_len;
	g->consumed += take;
	n = take < g->cap - copied ? take : g->cap - copied;
	barrier_var(n);
	if (n > half)
		return 1;
	/* copied < cap <= half here: the mask only informs the verifier. */
	if (n && bpf_probe_read_user(g->dst + (copied & (half - 1)), n, v.iov_base))
		return 1;
	g->copied = copied + n;
	return 0;
}

static long gather_step_stage(__u64 i, void *ctx)
{
	return gather_step(i, ctx, MAX_PAYLOAD);
}

static long gather_step_direct(__u64 i, void *ctx)
{
	return gather_step(i, ctx, MAX_PAYLOAD / 2);
}

/*
 * bpf_loop, not an unrolled loop: the verifier checks one step whatever the
 * count, so every iovec a syscall may pass (UIO_MAXIOV) is walked. Node's
 * http2 writes one iovec per frame: 100 gRPC calls are ~200 iovecs in one
 * writev, and an unrolled loop of 256 already exceeds the verifier's
 * 1M-instruction budget.
 */
static __always_inline long gather_into(struct iov_gather *g, __u64 vlen, bool direct)
{
	__u64 steps = vlen < MAX_IOVECS ? vlen : MAX_IOVECS;

	bpf_loop(steps, direct ? gather_step_direct : gather_step_stage, g, 0);
	/* Bytes sat in iovecs past the bound: they show as truncation. The
	 * kernel refuses more than UIO_MAXIOV, so only a smaller bound bites. */
	if (g->consumed < g->moved && g->copied < g->cap && vlen > MAX_IOVECS)
		stat_add(STAT_IOV_SKIPPED, vlen - MAX_IOVECS);
	return g->copied;
}

/*
 * Global, not static: the verifier checks each once per program instead of
 * once per call site, which keeps the *mmsg programs (a call per message)
 * small.
 *
 * Any capture up to MAX_PAYLOAD, through the per-CPU stage (then copied into
 * the event).
 */
__noinline long gather_iovecs(struct iov_gather_buf *dst, __u64 iov_addr, __u64 vlen,
			      __u64 moved, __u64 cap)
{
	struct iov_gather g = { .iov = iov_addr, .moved = moved, .cap = cap };

	if (!dst || cap > MAX_PAYLOAD)
		return 0;
	g.dst = dst->bytes;
	return gather_into(&g, vlen, false);
}

struct event_payload {
	__u8 bytes[MAX_PAYLOAD];
};

/*
 * A capture up to MAX_PAYLOAD / 2 straight into the event's payload: one
 * copy of the bytes fewer, and no stage to touch, for the small writes that
 * are most of them (measured: bench/bpf-cost.ts).
 */
__noinline long gather_iovecs_direct(struct event_payload *dst, __u64 iov_addr, __u64 vlen,
				     __u64 moved, __u64 cap)
{
	struct iov_gather g = { .iov = iov_addr, .moved = moved, .cap = cap };

	if (!dst || cap > MAX_PAYLOAD / 2)
		return 0;
	g.dst = dst->bytes;
	return gather_into(&g, vlen, true);
}

/* readv/writev/recvmsg/sendmsg, and each message of *mmsg. */
static __always_inline void capture_iovecs(const struct io_result *x, __u64 size,
					   const struct iovec *iov, __u64 vlen)
{
	struct data_event *ev = data_event_scratch();
	__u64 want = size < capture_limit() ? size : capture_limit();
	struct iov_gather_buf *stage;
	__u32 zero = 0;
	__u64 n;

	if (!ev)
		return;
	if (want <= MAX_PAYLOAD / 2) {
		n = gather_iovecs_direct((struct event_payload *)ev->payload, (__u64)iov, vlen, size, want);
		barrier_var(n);
		if (n > MAX_PAYLOAD / 2)
			n = 0;
		submit_data_event(ev, x, size, n);
		return;
	}
	stage = bpf_map_lookup_elem(&iov_scratch, &zero);
	if (!stage)
		return;
	n = gather_iovecs(stage, (__u64)iov, vlen, size, want);
	barrier_var(n);
	if (n > MAX_PAYLOAD)
		n = 0;
	if (n && bpf_probe_read_kernel(ev->payload, n, stage))
		n = 0;
	submit_data_event(ev, x, size, n);
}

static __always_inline void capture_msghdr(const struct io_result *x, __u64 size)
{
	struct user_msghdr msg;

	if (bpf_probe_read_user(&msg, sizeof(msg), (const void *)x->args->buf))
		return;
	capture_iovecs(x, size, msg.msg_iov, msg.msg_iovlen);
}

/*
 * Bytes moved by messages [from, count) of an *mmsg call. Messages past
 * MAX_MMSG are not captured but still advance the stream, so user space sees
 * a gap instead of a stream that silently lacks them. Global for the reason
 * gather_iovecs is.
 */
__noinline long mmsg_bytes(__u64 msgs_addr, __u64 from, __u64 count)
{
	const struct mmsghdr *msgs = (const struct mmsghdr *)msgs_addr;
	__u64 sum = 0;
	__u32 len;
	int i;

	for (i = 0; i < UIO_MAXIOV; i++) {
		if (from + i >= count || bpf_probe_read_user(&len, sizeof(len), &msgs[from + i].msg_len))
			break;
		sum += len;
	}
	return sum;
}

/* recvmmsg/sendmmsg: `count` messages moved; each is its own data event. */
static __always_inline void capture_mmsg(const struct io_result *x, __u64 count)
{
	const struct mmsghdr *msgs = (const struct mmsghdr *)x->args->buf;
	int i;

	for (i = 0; i < MAX_MMSG; i++) {
		struct mmsghdr m;

		if (i >= count)
			break;
		if (bpf_probe_read_user(&m, sizeof(m), &msgs[i]))
			break;
		if (m.msg_len)
			capture_iovecs(x, m.msg_len, m.msg_hdr.msg_iov, m.msg_hdr.msg_iovlen);
	}
	if (count > MAX_MMSG) {
		__u64 skipped = mmsg_bytes(x->args->buf, MAX_MMSG, count);

		stat_add(STAT_MMSG_SKIPPED, count - MAX_MMSG);
		stat_add(STAT_BYTES_TRUNCATED, skipped);
		advance_stream(x, skipped);
	}
}

/*
 * A MODE_MUTED connection: the `size` bytes a syscall moved claim their
 * stream range like captured ones, so positions and close totals stay exact,
 * but nothing is read from user memory and nothing goes to the ring.
 */
static __always_inline void skip_muted(const struct io_result *x, __u64 size)
{
	advance_stream(x, size);
	stat_add(STAT_MUTED_SYSCALLS, 1);
	stat_add(STAT_MUTED_BYTES, size);
}

#endif /* EBPF_OTEL_DATA_BPF_H */
