/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * TCP health (program group "tcp": every program here is named tcph_*):
 * connection attempts, failed connects by socket error, resets, retransmits
 * and lifetimes, counted in the kernel per (process, role, peer) in
 * `tcp_peers`. Record layouts: tcp_health.h (through socket_trace.h).
 *
 * The socket tracepoints (sock:inet_sock_set_state, tcp:*) often fire in
 * softirq context, where `current` is whoever the CPU interrupted, not the
 * socket's owner. So the owner is learned only in process context, where it
 * is certain: at CLOSE -> SYN_SENT (inside connect(), current is the
 * connecting process) and at accept()/accept4() exit (the new socket is in
 * the caller's fd table). Selection is checked there and only there; an
 * event on a socket with no known owner is ignored and counted
 * (STAT_TCP_UNOWNED): a missing value, never a wrong one.
 *
 * Bounds: `tcp_owners` is an LRU of sockets followed now; `tcp_peers` is a
 * plain hash (the loader may resize it) whose overflow goes into one key per
 * process in `tcp_peer_overflow`, counted; user space deletes the keys of
 * exited processes after their last read.
 */
#ifndef EBPF_OTEL_TCP_HEALTH_BPF_H
#define EBPF_OTEL_TCP_HEALTH_BPF_H

#include "common.bpf.h"
#include "selection.bpf.h"
#include "sockets.bpf.h"

#ifndef E2BIG
#define E2BIG 7
#endif

/*
 * The one place TCP health asks who is running (process context only): the
 * tgid as the agent's pid namespace sees it, and whether it is selected.
 */
static __always_inline bool tcph_current_selected(__u32 *tgid)
{
	__u64 pid_tgid;

	if (!current_selected(&pid_tgid))
		return false;
	*tgid = pid_tgid >> 32;
	return true;
}

/*
 * Tracepoint records, as the format files under events/sock and events/tcp
 * describe them. Declared here rather than taken from vmlinux.h: the
 * kernel's names for these structs changed between versions (e.g.
 * tcp_event_sk_skb became tcp_retransmit_skb), while the fields used here
 * kept their offsets since the tracepoints appeared.
 */
struct tcph_set_state_ctx {
	__u64 common;
	const void *skaddr;
	__s32 oldstate;
	__s32 newstate;
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u16 protocol;
};

struct tcph_skb_sk_ctx { /* tcp_retransmit_skb, tcp_send_reset */
	__u64 common;
	const void *skbaddr;
	const void *skaddr;
};

struct tcph_sk_ctx { /* tcp_receive_reset */
	__u64 common;
	const void *skaddr;
};

/* TCP states (include/net/tcp_states.h); vmlinux.h has them as an enum. */
#define TCPH_ESTABLISHED 1
#define TCPH_SYN_SENT 2
#define TCPH_CLOSE 7

/*
 * A reset that close() sends (SO_LINGER 0, unread data) comes right after
 * the socket went to CLOSE, when its owner entry is already gone: the key
 * stays in `tcph_recently_closed` for this long. On loopback the peer's
 * whole reaction (its own close) runs in between, in the same call.
 */
#define TCPH_CLOSED_RESET_WINDOW_NS 10000000ULL

struct tcp_owner {
	struct tcp_peer_key key; /* where this socket's events are counted */
	__u64 since_ns;          /* established (client) or accepted (server); 0 before */
};

/* struct sock * -> owner, for the sockets of selected processes followed now. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct tcp_owner);
} tcp_owners SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192); /* the loader sets the configured bound */
	__type(key, struct tcp_peer_key);
	__type(value, struct tcp_peer_stats);
} tcp_peers SEC(".maps");

/* One key per process (TCP_PEER_F_OVERFLOW) for what did not fit in tcp_peers. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct tcp_peer_key);
	__type(value, struct tcp_peer_stats);
} tcp_peer_overflow SEC(".maps");

struct tcph_closed {
	__u64 at_ns;
	struct tcp_peer_key key;
	__u16 remote_port; /* to recognise the socket (the local port is released at CLOSE) */
	__u16 _pad[3];
};

/*
 * struct sock * -> its owner's key, for sockets that just went to CLOSE.
 * TCP sockets are SLAB_TYPESAFE_BY_RCU (their memory may be reused at once),
 * so a reset is matched to an entry only within the window and when the
 * socket still has the tuple of the key.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct tcph_closed);
} tcph_recently_closed SEC(".maps");

/* Source of zeroes for new entries (too large for the stack). Never written. */
static struct tcp_peer_stats tcph_zero_stats;

static __always_inline struct tcp_peer_stats *tcph_lookup_or_insert(void *map, const struct tcp_peer_key *key)
{
	struct tcp_peer_stats *s = bpf_map_lookup_elem(map, key);
	long err;

	if (s)
		return s;
	err = bpf_map_update_elem(map, key, &tcph_zero_stats, BPF_NOEXIST);
	if (err && err != -EEXIST)
		return NULL;
	return bpf_map_lookup_elem(map, key);
}

/* The counters for `key`, or its process's overflow key when tcp_peers is full. */
static __always_inline struct tcp_peer_stats *tcph_stats(const struct tcp_peer_key *key)
{
	struct tcp_peer_key overflow = {};
	struct tcp_peer_stats *s = tcph_lookup_or_insert(&tcp_peers, key);

	if (s)
		return s;
	overflow.tgid = key->tgid;
	overflow.flags = TCP_PEER_F_OVERFLOW;
	s = tcph_lookup_or_insert(&tcp_peer_overflow, &overflow);
	stat_add(s ? STAT_TCP_PEER_FOLDED : STAT_TCP_PEER_LOST, 1);
	return s;
}

/* Counters are shared by every CPU: atomic adds. */
#define tcph_add(field, n) __sync_fetch_and_add(&(field), (n))

static __always_inline __u32 tcph_fls64(__u64 x)
{
	__u32 n = 0;

	if (x >> 32) { n += 32; x >>= 32; }
	if (x >> 16) { n += 16; x >>= 16; }
	if (x >> 8) { n += 8; x >>= 8; }
	if (x >> 4) { n += 4; x >>= 4; }
	if (x >> 2) { n += 2; x >>= 2; }
	if (x >> 1) { n += 1; x >>= 1; }
	return x ? n + 1 : 0;
}

/* Bucket of a lifetime: the first power-of-two bound >= ns (see tcp_health.h). */
static __always_inline __u32 tcph_lifetime_bucket(__u64 ns)
{
	__u32 log2_ceil = ns <= 1 ? 0 : tcph_fls64(ns - 1);

	if (log2_ceil <= TCP_LIFETIME_MIN_SHIFT)
		return 0;
	if (log2_ceil > TCP_LIFETIME_MAX_SHIFT)
		return TCP_LIFETIME_BUCKETS - 1;
	return log2_ceil - TCP_LIFETIME_MIN_SHIFT;
}

/* The peer key of `sk` for `role`: client by remote port, server by local port. */
static __always_inline void tcph_key_of(struct sock *sk, __u32 tgid, __u8 role, struct tcp_peer_key *key)
{
	struct sock_tuple t = {};
	__u32 netns;

	read_sock_tuple(sk, &t, &netns);
	key->tgid = tgid;
	key->role = role;
	key->family = t.family;
	key->port = role == ROLE_SERVER ? t.local_port : t.remote_port;
	__builtin_memcpy(key->addr, t.remote_addr, sizeof(key->addr));
}

static __always_inline void tcph_learn(__u64 sk, const struct tcp_owner *owner)
{
	if (bpf_map_update_elem(&tcp_owners, &sk, owner, BPF_ANY))
		stat_add(STAT_TCP_OWNER_FAILED, 1);
}

/* CLOSE -> SYN_SENT runs inside connect(): current is the owner. */
static __always_inline void tcph_on_connect(__u64 sk)
{
	struct tcp_owner owner = {};
	struct tcp_peer_stats *s;
	__u32 tgid;

	if (!tcph_current_selected(&tgid))
		return;
	tcph_key_of((struct sock *)sk, tgid, ROLE_CLIENT, &owner.key);
	tcph_learn(sk, &owner);
	s = tcph_stats(&owner.key);
	if (s)
		tcph_add(s->attempts, 1);
}

/* A failed connect counts under its own key: the peer's, with the socket error. */
static __always_inline void tcph_count_failure(const struct tcp_owner *owner, __s32 err)
{
	struct tcp_peer_key key = owner->key;
	struct tcp_peer_stats *s;

	key.flags |= TCP_PEER_F_FAILURE;
	key.err = err;
	s = tcph_stats(&key);
	if (s)
		tcph_add(s->failed, 1);
}

static __always_inline void tcph_on_close(__u64 sk, struct tcp_owner *owner, __s32 oldstate)
{
	struct tcph_closed closed = {};
	struct tcp_peer_stats *s;
	__u64 now = bpf_ktime_get_ns(), lifetime;
	__u32 bucket;

	if (oldstate == TCPH_SYN_SENT) {
		/* tcp_reset()/tcp_write_err() set sk_err before moving to CLOSE. */
		tcph_count_failure(owner, BPF_CORE_READ((struct sock *)sk, sk_err));
	} else if (owner->since_ns) {
		s = tcph_stats(&owner->key);
		lifetime = now - owner->since_ns;
		bucket = tcph_lifetime_bucket(lifetime);
		if (s) {
			tcph_add(s->closed, 1);
			tcph_add(s->lifetime_sum_ns, lifetime);
			if (bucket < TCP_LIFETIME_BUCKETS)
				tcph_add(s->lifetime_buckets[bucket], 1);
		}
	}
	closed.at_ns = now;
	closed.key = owner->key;
	closed.remote_port = bpf_ntohs(BPF_CORE_READ((struct sock *)sk, __sk_common.skc_dport));
	bpf_map_update_elem(&tcph_recently_closed, &sk, &closed, BPF_ANY);
	bpf_map_delete_elem(&tcp_owners, &sk);
}

SEC("tracepoint/sock/inet_sock_set_state")
int tcph_inet_sock_set_state(struct tcph_set_state_ctx *ctx)
{
	__u64 sk = (__u64)ctx->skaddr;
	struct tcp_owner *owner;
	struct tcp_peer_stats *s;

	if (ctx->protocol != IPPROTO_TCP)
		return 0;
	if (ctx->newstate == TCPH_SYN_SENT && ctx->oldstate == TCPH_CLOSE) {
		tcph_on_connect(sk);
		return 0;
	}
	if (ctx->newstate != TCPH_ESTABLISHED && ctx->newstate != TCPH_CLOSE)
		return 0;
	owner = bpf_map_lookup_elem(&tcp_owners, &sk);
	if (!owner) {
		stat_add(STAT_TCP_UNOWNED, 1);
		return 0;
	}
	if (ctx->newstate == TCPH_CLOSE) {
		tcph_on_close(sk, owner, ctx->oldstate);
		return 0;
	}
	if (ctx->oldstate != TCPH_SYN_SENT)
		return 0;
	owner->since_ns = bpf_ktime_get_ns();
	s = tcph_stats(&owner->key);
	if (s)
		tcph_add(s->established, 1);
	return 0;
}

/* accept()/accept4() exit: the new socket is in the caller's fd table. */
static __always_inline int tcph_accept_exit(long ret)
{
	struct tcp_owner owner = {};
	struct tcp_peer_stats *s;
	struct sock *sk;
	__u32 tgid;

	if (ret < 0 || !tcph_current_selected(&tgid))
		return 0;
	sk = traced_sock_of_fd(ret);
	if (!sk || BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	tcph_key_of(sk, tgid, ROLE_SERVER, &owner.key);
	owner.since_ns = bpf_ktime_get_ns();
	/* Reset before accept() took it: counted, but nothing more will come. */
	if (BPF_CORE_READ(sk, __sk_common.skc_state) != TCPH_CLOSE)
		tcph_learn((__u64)sk, &owner);
	s = tcph_stats(&owner.key);
	if (s)
		tcph_add(s->established, 1);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept")
int tcph_sys_exit_accept(struct trace_event_raw_sys_exit *ctx)
{
	return tcph_accept_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int tcph_sys_exit_accept4(struct trace_event_raw_sys_exit *ctx)
{
	return tcph_accept_exit(ctx->ret);
}

/* The owner learned for `sk`; NULL (counted as unowned) when there is none. */
static __always_inline struct tcp_owner *tcph_owner(__u64 sk)
{
	struct tcp_owner *owner = bpf_map_lookup_elem(&tcp_owners, &sk);

	if (!owner)
		stat_add(STAT_TCP_UNOWNED, 1);
	return owner;
}

SEC("tracepoint/tcp/tcp_retransmit_skb")
int tcph_tcp_retransmit_skb(struct tcph_skb_sk_ctx *ctx)
{
	__u64 sk = (__u64)ctx->skaddr;
	struct tcp_owner *owner = tcph_owner(sk);
	struct tcp_peer_stats *s;

	if (!owner)
		return 0;
	s = tcph_stats(&owner->key);
	if (s)
		tcph_add(s->retransmits, 1);
	return 0;
}

/* The reset a socket sends as close() ends it: its key from tcph_recently_closed. */
static __always_inline struct tcp_peer_stats *tcph_closed_stats(__u64 sk)
{
	struct tcph_closed *closed = bpf_map_lookup_elem(&tcph_recently_closed, &sk);
	struct sock_tuple now = {};
	struct tcp_peer_stats *s;
	__u32 netns;

	if (!closed || bpf_ktime_get_ns() - closed->at_ns > TCPH_CLOSED_RESET_WINDOW_NS)
		return NULL;
	read_sock_tuple((struct sock *)sk, &now, &netns);
	if (now.remote_port != closed->remote_port || now.family != closed->key.family ||
	    *(__u64 *)&now.remote_addr[0] != *(__u64 *)&closed->key.addr[0] ||
	    *(__u64 *)&now.remote_addr[8] != *(__u64 *)&closed->key.addr[8])
		return NULL; /* the memory is another socket's now */
	s = tcph_stats(&closed->key);
	bpf_map_delete_elem(&tcph_recently_closed, &sk); /* one close sends one reset */
	return s;
}

/*
 * A reset answering a connect() (SYN_SENT) is already counted as a failed
 * connect (ECONNREFUSED): resets count on connections past the handshake.
 */
SEC("tracepoint/tcp/tcp_send_reset")
int tcph_tcp_send_reset(struct tcph_skb_sk_ctx *ctx)
{
	__u64 sk = (__u64)ctx->skaddr;
	struct tcp_owner *owner;
	struct tcp_peer_stats *s;

	if (!sk)
		return 0; /* answering a segment no socket owns */
	owner = bpf_map_lookup_elem(&tcp_owners, &sk);
	if (owner) {
		if (BPF_CORE_READ((struct sock *)sk, __sk_common.skc_state) == TCPH_SYN_SENT)
			return 0;
		s = tcph_stats(&owner->key);
	} else {
		s = tcph_closed_stats(sk);
		if (!s) {
			stat_add(STAT_TCP_UNOWNED, 1);
			return 0;
		}
	}
	if (s)
		tcph_add(s->resets_sent, 1);
	return 0;
}

/* Fires before the reset moves the socket to CLOSE: the owner is still known. */
SEC("tracepoint/tcp/tcp_receive_reset")
int tcph_tcp_receive_reset(struct tcph_sk_ctx *ctx)
{
	__u64 sk = (__u64)ctx->skaddr;
	struct tcp_owner *owner = tcph_owner(sk);
	struct tcp_peer_stats *s;

	if (!owner)
		return 0;
	if (BPF_CORE_READ((struct sock *)sk, __sk_common.skc_state) == TCPH_SYN_SENT)
		return 0;
	s = tcph_stats(&owner->key);
	if (s)
		tcph_add(s->resets_recv, 1);
	return 0;
}

#endif /* EBPF_OTEL_TCP_HEALTH_BPF_H */
