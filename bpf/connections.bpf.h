/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The connection table: one entry per followed (tgid, fd), with the id user
 * space knows the connection by and the byte counters that are also the
 * stream positions. An id names one struct sock: when the fd comes to name
 * another socket, the old id is closed and a new one opened.
 */
#ifndef EBPF_OTEL_CONNECTIONS_BPF_H
#define EBPF_OTEL_CONNECTIONS_BPF_H

#include "common.bpf.h"
#include "sockets.bpf.h"

/* struct connection: bpf/socket_trace.h (user space reads conn_info). */

/*
 * LRU: fds closed without close() (exit, exec with CLOEXEC, close_range) leave
 * entries behind; the LRU ages them out instead of filling the table. An
 * entry of a live but idle connection that is aged out comes back as a new
 * id (OPEN_EXISTING) on its next I/O.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 32768);
	__type(key, __u64); /* conn_key() */
	__type(value, struct connection);
} conn_info SEC(".maps");

/* Connection ids: unique per load, never 0. */
__u64 next_conn_id = 1;

/*
 * Capture-mode requests from user space, by connection id (contract in
 * socket_trace.h). Consumed at the connection's next I/O, deleted at its
 * close; a request that arrives after its connection closed is never
 * consumed and ages out of the LRU. An evicted pending request leaves its
 * connection in the mode it had: more data than wanted, never less.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);   /* conn_id */
	__type(value, __u32); /* enum capture_mode */
} mode_requests SEC(".maps");

/*
 * Bumped by user space after it stored requests. An entry looks into
 * mode_requests only when this moved since its last look, so the data path
 * pays an array read per syscall, and a hash lookup per connection per bump.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} mode_requests_seq SEC(".maps");

static __always_inline __u32 current_mode_seq(void)
{
	__u32 zero = 0;
	__u32 *seq = bpf_map_lookup_elem(&mode_requests_seq, &zero);

	return seq ? *(volatile __u32 *)seq : 0; /* user space writes it at any time */
}

/*
 * The capture mode of `c`, after applying a pending request for it. The seq
 * is read before the lookup: a request stored after the lookup comes with a
 * later bump, so the next I/O looks again. Two threads of one process may
 * apply the same request at once: both store the same mode, and only the one
 * whose delete succeeds counts it.
 */
static __always_inline __u32 connection_mode(struct connection *c)
{
	__u32 seq = current_mode_seq();
	__u32 *want, mode;

	if (c->mode_seq == seq)
		return c->mode;
	want = bpf_map_lookup_elem(&mode_requests, &c->conn_id);
	if (want) {
		mode = *want;
		c->mode = mode;
		if (!bpf_map_delete_elem(&mode_requests, &c->conn_id) && mode == MODE_MUTED)
			stat_add(STAT_CONN_MUTED, 1);
	}
	c->mode_seq = seq;
	return c->mode;
}

static __always_inline __u64 conn_key(__u32 tgid, __s32 fd)
{
	return (__u64)tgid << 32 | (__u32)fd;
}

/* pid_tgid: the current task's, from current_selected(). */
static __always_inline void emit_conn_event(__u64 pid_tgid, __u32 type, __u8 reason, __s32 fd,
					    const struct connection *c)
{
	struct conn_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		count_write(-1);
		return;
	}
	e->type = type;
	e->tgid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	e->fd = fd;
	e->conn_id = c->conn_id;
	e->ts_ns = bpf_ktime_get_ns();
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->bytes_sent = c->bytes_sent;
	e->bytes_recv = c->bytes_recv;
	e->netns = c->netns;
	e->role = c->role;
	e->reason = reason;
	e->_pad = 0;
	e->tuple = c->tuple;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, batched_wakeup(sizeof(*e)));
	count_write(0);
}

static __always_inline bool same_tuple(const struct sock_tuple *a, const struct sock_tuple *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;
	int i;

	for (i = 0; i < sizeof(*a) / sizeof(__u64); i++)
		if (x[i] != y[i])
			return false;
	return true;
}

/*
 * Starts following `fd` as a new connection and emits EV_OPEN; `old` is the
 * entry the fd had (closed as CLOSE_REPLACED) or NULL. Returns the entry in
 * the table, or NULL if it could not be stored.
 */
static __always_inline struct connection *
open_connection(__u64 pid_tgid, __s32 fd, struct sock *sk, __u8 role, __u8 reason,
		struct connection *old)
{
	__u64 key = conn_key(pid_tgid >> 32, fd);
	struct connection fresh = {};
	long err;

	fresh.sk = (__u64)sk;
	fresh.role = role;
	/* MODE_MUTED from the start (ebpf-otel top): byte counts only, no data events. */
	fresh.mode = config.initial_mode;
	/* No request can name an id user space has not seen yet. */
	fresh.mode_seq = current_mode_seq();
	read_sock_tuple(sk, &fresh.tuple, &fresh.netns);

	/* A repeated connect() that reports the same connection is not a new one. */
	if (old && old->sk == fresh.sk && old->role == role && same_tuple(&old->tuple, &fresh.tuple))
		return old;

	fresh.conn_id = __sync_fetch_and_add(&next_conn_id, 1);
	if (old) {
		emit_conn_event(pid_tgid, EV_CLOSE, CLOSE_REPLACED, fd, old);
		bpf_map_delete_elem(&mode_requests, &old->conn_id);
		stat_add(STAT_CONN_CLOSED, 1);
	}
	/* First I/O seen by two threads at once: the first one's entry wins. */
	err = bpf_map_update_elem(&conn_info, &key, &fresh,
				  old || role != ROLE_UNKNOWN ? BPF_ANY : BPF_NOEXIST);
	if (err == -EEXIST)
		return bpf_map_lookup_elem(&conn_info, &key);
	if (err) {
		stat_add(STAT_CONN_TABLE_FULL, 1);
		return NULL;
	}
	stat_add(STAT_CONN_OPENED, 1);
	emit_conn_event(pid_tgid, EV_OPEN, reason, fd, &fresh);
	return bpf_map_lookup_elem(&conn_info, &key);
}

/* The entry data on (tgid, fd) belongs to; opened as OPEN_EXISTING if new. pid_tgid: the
 * current task's, from current_selected(), as for every function below. */
static __always_inline struct connection *connection_for_io(__u64 pid_tgid, __s32 fd, struct sock *sk)
{
	__u64 key = conn_key(pid_tgid >> 32, fd);
	struct connection *c = bpf_map_lookup_elem(&conn_info, &key);

	if (c && c->sk == (__u64)sk)
		return c;
	return open_connection(pid_tgid, fd, sk, ROLE_UNKNOWN, OPEN_EXISTING, c);
}

static __always_inline void close_connection(__u64 pid_tgid, __s32 fd, __u8 reason)
{
	__u64 key = conn_key(pid_tgid >> 32, fd);
	struct connection *c = bpf_map_lookup_elem(&conn_info, &key);

	if (!c)
		return;
	emit_conn_event(pid_tgid, EV_CLOSE, reason, fd, c);
	bpf_map_delete_elem(&mode_requests, &c->conn_id);
	bpf_map_delete_elem(&conn_info, &key);
	stat_add(STAT_CONN_CLOSED, 1);
}

#endif /* EBPF_OTEL_CONNECTIONS_BPF_H */
