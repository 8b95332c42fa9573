/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * TLS plaintext at Go's crypto/tls (group "tls"): (*Conn).Read and
 * (*Conn).Write report the bytes they moved as data events of the socket
 * connection under the Conn. amd64, Go 1.17 and later (register ABI).
 *
 * User space finds the functions in the binary's pclntab (stripped
 * binaries too) and attaches an entry probe at each function's first
 * instruction and a return probe at each of its RET instructions
 * (src/capture/elf/gopclntab.ts): uretprobes rewrite the return address on
 * the stack, and Go moves and copies goroutine stacks, which would then
 * return into the kernel's trampoline from the wrong place.
 *
 * Entry to return: keyed by the goroutine (its g, in R14 in Go's internal
 * ABI, in the function and at its returns), not the thread: a call that
 * blocks parks its goroutine, which may resume on another thread while
 * this one runs other goroutines' calls.
 *
 * The handshake's entry (client or server) marks the connection TLS before
 * its first record.
 *
 * The connection: the socket fd read from the Conn itself (Conn.conn, a
 * net.Conn holding a *net.TCPConn, whose netFD holds the poll.FD with the
 * fd), no tie by timing. The offsets are those of Go 1.17 to 1.23 (checked
 * on Go 1.19's DWARF); a netFD that does not look like a TCP socket's
 * (stream, not a file, AF_INET/AF_INET6, SOCK_STREAM) means another layout
 * or another net.Conn (a user's wrapper): the call is counted, not
 * captured, never tied to a fd read from the wrong place.
 */
#ifndef EBPF_OTEL_UPROBES_GO_TLS_BPF_H
#define EBPF_OTEL_UPROBES_GO_TLS_BPF_H

#include "common.bpf.h"
#include "selection.bpf.h"
#include "connections.bpf.h"
#include "data.bpf.h"
#include "uprobes/tls.bpf.h"

/* The register ABI's registers are amd64's here; other architectures have no Go probes yet. */
#if defined(__TARGET_ARCH_x86)

#define GO_TLS_CALLS_MAX 16384

/* crypto/tls.Conn: conn net.Conn (itab, data). */
#define GO_TLS_CONN_IFACE_DATA 8
/* net.TCPConn{conn{fd *netFD}}: the netFD pointer is its first word. */
/* net.netFD: pfd poll.FD at 0, then family and sotype; poll.FD: fdmu (16
 * bytes), Sysfd, ..., IsStream, ZeroReadIsEOF, isFile. */
struct go_netfd {
	__u8 fdmu[16];
	__s64 sysfd;          /* 16 */
	__u8 _mid[24];        /* pd, iovecs, csema, isBlocking */
	__u8 is_stream;       /* 48 */
	__u8 zero_read_is_eof;/* 49 */
	__u8 is_file;         /* 50 */
	__u8 _pad[5];
	__s64 family;         /* 56 */
	__s64 sotype;         /* 64 */
};

struct go_call_key {
	__u32 tgid;
	__u32 dir;
	__u64 g; /* the goroutine's runtime.g */
};

struct go_call {
	__u64 buf;
	__u64 ts_enter_ns; /* DIR_EGRESS only */
	__s32 fd;
	__u32 write_kept; /* a write also kept in go_tls_writes */
};

/* Calls in flight. LRU: a goroutine that never returns (a panic unwinding
 * through Read) leaves its entry until the LRU ages it out or its g's next
 * call replaces it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, GO_TLS_CALLS_MAX);
	__type(key, struct go_call_key);
	__type(value, struct go_call);
} go_tls_calls SEC(".maps");

/*
 * A write in flight, by connection. It is shipped from the socket syscall
 * that completes its ciphertext (as many ciphertext bytes went out since it
 * began as it has plaintext: records only add), with that syscall's exit
 * time: the goroutine may run its return much later, after another
 * goroutine read the answer and closed the connection, or the process
 * exited. Two writers racing on one Conn (the second's entry while the
 * first is in flight) make the slot contended: both ship at their return.
 */
struct go_write {
	__u64 conn_id;
	__u64 g;
	__u64 buf;
	__u64 len;
	__u64 ts_enter_ns;
	__u64 cipher;   /* ciphertext bytes sent on the connection since it began */
	__u8 shipped;
	__u8 contended;
	__u8 _pad[6];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, GO_TLS_CALLS_MAX);
	__type(key, __u64); /* conn_key(tgid, fd) */
	__type(value, struct go_write);
} go_tls_writes SEC(".maps");

/* The Conn's socket fd, or -1 when its net.Conn is not a TCP netFD as laid out above. */
static __always_inline __s32 go_conn_fd(__u64 conn)
{
	struct go_netfd nfd;
	__u64 data, netfd;

	if (bpf_probe_read_user(&data, sizeof(data), (const void *)(conn + GO_TLS_CONN_IFACE_DATA)) || !data ||
	    bpf_probe_read_user(&netfd, sizeof(netfd), (const void *)data) || !netfd ||
	    bpf_probe_read_user(&nfd, sizeof(nfd), (const void *)netfd))
		return -1;
	if (nfd.is_stream != 1 || nfd.zero_read_is_eof != 1 || nfd.is_file != 0 ||
	    (nfd.family != 2 /* AF_INET */ && nfd.family != 10 /* AF_INET6 */) || nfd.sotype != 1 /* SOCK_STREAM */ ||
	    nfd.sysfd < 0 || nfd.sysfd > 0x7fffffff)
		return -1;
	return (__s32)nfd.sysfd;
}

/* The connection carries TLS: from the entry of its first Read/Write on, so
 * that the ciphertext of that call's own syscalls is not shipped either. */
static __always_inline void go_tls_mark(struct connection *c)
{
	if (c->flags & CONN_F_TLS)
		return;
	c->flags |= CONN_F_GO_TLS;
	stat_add(STAT_TLS_GO_MARKED, 1);
	tls_mark_conn(c);
}

/*
 * The followed connection under Conn `conn` of process `tgid`, marked TLS;
 * NULL when the capture does not follow its fd. *fd < 0 (counted) when the
 * Conn holds no TCP netFD where expected; *key: the fd's conn_info key.
 */
static __always_inline struct connection *go_conn_of(__u32 tgid, __u64 conn, __s32 *fd, __u64 *key)
{
	struct connection *c;

	*fd = go_conn_fd(conn);
	if (*fd < 0) {
		stat_add(STAT_TLS_GO_LAYOUT, 1);
		return NULL;
	}
	*key = conn_key(tgid, *fd);
	c = bpf_map_lookup_elem(&conn_info, key);
	if (c)
		go_tls_mark(c);
	return c;
}

/* (*Conn).Read/Write(c *Conn, b []byte): c in RAX, b's pointer in RBX; g in R14. */
static __always_inline int go_tls_enter(struct pt_regs *ctx, __u8 dir)
{
	struct go_call_key k = { .dir = dir };
	struct go_call v = {};
	struct connection *c;
	__u64 pid_tgid, key;

	if (!current_selected(&pid_tgid))
		return 0;
	k.tgid = pid_tgid >> 32;
	c = go_conn_of(k.tgid, ctx->ax, &v.fd, &key);
	if (v.fd < 0)
		return 0;
	v.buf = ctx->bx;
	v.ts_enter_ns = dir == DIR_EGRESS ? bpf_ktime_get_ns() : 0;
	k.g = ctx->r14;
	if (c && dir == DIR_EGRESS) {
		struct go_write *busy = bpf_map_lookup_elem(&go_tls_writes, &key);
		struct go_write w = {
			.conn_id = c->conn_id, .g = k.g, .buf = v.buf, .len = ctx->cx,
			.ts_enter_ns = v.ts_enter_ns,
		};

		if (busy && !busy->shipped && busy->conn_id == c->conn_id && busy->g != k.g)
			busy->contended = 1; /* another goroutine's write in flight */
		else
			v.write_kept = !bpf_map_update_elem(&go_tls_writes, &key, &w, BPF_ANY);
	}
	if (bpf_map_update_elem(&go_tls_calls, &k, &v, BPF_NOEXIST)) {
		/* This goroutine's last call of this kind never returned through a probed RET. */
		stat_add(STAT_TLS_GO_RETURN_MISSED, 1);
		bpf_map_update_elem(&go_tls_calls, &k, &v, BPF_ANY);
	}
	return 0;
}

/* At a RET of (*Conn).Read/Write: n in RAX (the error in RBX:RCX); g in R14. */
static __always_inline int go_tls_return(struct pt_regs *ctx, __u8 dir)
{
	struct io_args args = {};
	struct io_result x = { .args = &args, .dir = dir, .source = SRC_TLS, .tls = 1 };
	struct go_call_key k = { .dir = dir };
	struct go_call *call;
	struct go_write *w;
	__s64 n = (__s64)ctx->ax;
	bool shipped = false;
	__u64 key;

	if (!current_selected(&x.pid_tgid))
		return 0;
	k.tgid = x.pid_tgid >> 32;
	k.g = ctx->r14;
	call = bpf_map_lookup_elem(&go_tls_calls, &k);
	if (!call) {
		/* In flight at attach, or its entry was not captured (counted there). */
		stat_add(STAT_ARGS_MISSING, 1);
		return 0;
	}
	args.fd = call->fd;
	args.buf = call->buf;
	args.ts_enter_ns = call->ts_enter_ns;
	key = conn_key(k.tgid, args.fd);
	if (call->write_kept) {
		w = bpf_map_lookup_elem(&go_tls_writes, &key);
		/* Ours, unless a racing writer found it first (then ours is contended and ships here). */
		if (w && w->g == k.g) {
			shipped = w->shipped;
			bpf_map_delete_elem(&go_tls_writes, &key);
		}
	}
	bpf_map_delete_elem(&go_tls_calls, &k);
	if (n <= 0 || shipped)
		return 0;
	x.ts_exit_ns = bpf_ktime_get_ns();
	if (dir == DIR_INGRESS)
		args.ts_enter_ns = x.ts_exit_ns;
	/* The call's own syscalls (the handshake's, the record's) made the
	 * connection known; a fd the capture does not follow has nothing to tie. */
	x.conn = bpf_map_lookup_elem(&conn_info, &key);
	if (!x.conn) {
		stat_add(STAT_TLS_UNTIED_CALLS, 1);
		stat_add(STAT_TLS_UNTIED_BYTES, n);
		return 0;
	}
	go_tls_mark(x.conn);
	tls_plaintext(&x, n);
	return 0;
}

/*
 * (*Conn).clientHandshake/serverHandshake(c, ctx): the handshake's records go out through
 * the socket before any Read or Write; marking the connection here keeps
 * them from reaching user space (where they would look like TLS nobody
 * probes).
 */
SEC("uprobe")
int uprobe_go_tls_handshake(struct pt_regs *ctx)
{
	__u64 pid_tgid, key;
	__s32 fd;

	if (current_selected(&pid_tgid))
		go_conn_of(pid_tgid >> 32, ctx->ax, &fd, &key);
	return 0;
}

SEC("uprobe")
int uprobe_go_tls_read(struct pt_regs *ctx)
{
	return go_tls_enter(ctx, DIR_INGRESS);
}

SEC("uprobe")
int uprobe_go_tls_read_ret(struct pt_regs *ctx)
{
	return go_tls_return(ctx, DIR_INGRESS);
}

SEC("uprobe")
int uprobe_go_tls_write(struct pt_regs *ctx)
{
	return go_tls_enter(ctx, DIR_EGRESS);
}

SEC("uprobe")
int uprobe_go_tls_write_ret(struct pt_regs *ctx)
{
	return go_tls_return(ctx, DIR_EGRESS);
}

/*
 * A ciphertext write syscall on a connection Go writes to returned, having
 * sent `size` bytes: the write in flight is shipped once its ciphertext is
 * all out, ending then.
 */
static __always_inline void go_tls_cipher_sent(const struct io_result *x, __u64 size)
{
	struct io_args args = {};
	struct io_result y = { .args = &args, .conn = x->conn, .pid_tgid = x->pid_tgid, .ts_exit_ns = x->ts_exit_ns,
			       .dir = DIR_EGRESS, .source = SRC_TLS, .tls = 1 };
	__u64 key = conn_key(x->pid_tgid >> 32, x->args->fd);
	struct go_write *w = bpf_map_lookup_elem(&go_tls_writes, &key);

	if (!w || w->shipped || w->contended || w->conn_id != x->conn->conn_id)
		return;
	w->cipher += size;
	if (w->cipher < w->len)
		return;
	w->shipped = 1;
	args.fd = x->args->fd;
	args.buf = w->buf;
	args.ts_enter_ns = w->ts_enter_ns;
	if (w->len)
		tls_plaintext(&y, w->len);
}

#else

static __always_inline void go_tls_cipher_sent(const struct io_result *x, __u64 size)
{
}

#endif /* __TARGET_ARCH_x86 */
#endif /* EBPF_OTEL_UPROBES_GO_TLS_BPF_H */
