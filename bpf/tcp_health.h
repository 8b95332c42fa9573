/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * TCP health and flows: the records of the kernel tables user space
 * batch-reads each interval. TCP health counters come from the program group
 * "tcp" (bpf/tcp_health.bpf.h); flows read socket capture's `conn_info`.
 *
 * Part of socket_trace.h, which includes it after the types it uses (struct
 * connection): include socket_trace.h, not this file.
 */
#ifndef EBPF_OTEL_TCP_HEALTH_H
#define EBPF_OTEL_TCP_HEALTH_H

#ifndef EBPF_OTEL_SOCKET_TRACE_H
#error "include socket_trace.h, not tcp_health.h"
#endif

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

#endif /* EBPF_OTEL_TCP_HEALTH_H */
