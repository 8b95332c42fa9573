/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * TLS plaintext at the OpenSSL API (group "tls"): SSL_read/SSL_write and
 * their _ex forms report the bytes they moved as data events of the
 * connection their SSL object is tied to (source SRC_TLS, DATA_F_TLS, the
 * connection's plaintext positions). The probes are SEC("uprobe") without a
 * target: user space attaches them per library file (libssl.so.*, or a
 * binary that links OpenSSL statically and exports it) with attachUprobe,
 * and every probe first checks the process is selected, so one attach per
 * file serves only the selected processes.
 *
 * An SSL object is tied to its connection only from evidence, on the thread
 * that made the call:
 *   - nested syscall (socket BIO: curl, Python, most C programs): a socket
 *     data syscall that exits while a TLS read/write is in flight on its
 *     thread moved that SSL's ciphertext;
 *   - next write (memory BIO: Node.js, which feeds OpenSSL from its own
 *     buffers and does the socket I/O itself right after the TLS call): the
 *     thread's next socket write after a TLS call on an untied SSL returned,
 *     if no other TLS call started in between, within TLS_TIE_WINDOW_NS, and
 *     the bytes start with a TLS record header (the thread's socket reads
 *     in between restart the window: SSL_do_handshake, which has no return
 *     probe, may wait for the peer). Reads never tie: their bytes may have
 *     been buffered by an earlier read. OpenSSL's SSL_connect and
 *     SSL_accept call SSL_do_handshake, so most handshakes tie this way.
 * A tied connection is CONN_F_TLS: its syscalls' bytes (ciphertext) are no
 * longer shipped. Ties go at SSL_free (an address reused for a new SSL
 * object must not inherit one) and when found stale (their connection
 * closed or was replaced).
 *
 * Included by socket_trace.bpf.c after data.bpf.h; the syscall programs call
 * tls_syscall_exit() (the ties and the muting live in their path).
 */
#ifndef EBPF_OTEL_UPROBES_OPENSSL_BPF_H
#define EBPF_OTEL_UPROBES_OPENSSL_BPF_H

#include "common.bpf.h"
#include "selection.bpf.h"
#include "connections.bpf.h"
#include "data.bpf.h"
#include "uprobes/tls.bpf.h"

/* A write ties a pending SSL only this soon after its TLS call ended: Node
 * writes in the same synchronous run, microseconds later. */
#define TLS_TIE_WINDOW_NS (10ULL * 1000 * 1000)

#define SSL_CONNS_MAX 16384

struct ssl_key {
	__u32 tgid;
	__u32 _pad;
	__u64 ssl; /* SSL * in the process */
};

struct ssl_tie {
	__u64 conn_id;  /* the connection it was tied to: a conn_info entry with another id is stale */
	__u64 conn_key; /* conn_key(tgid, fd) of that connection */
};

/*
 * (tgid, SSL *) -> its connection. LRU: a process that dies without
 * SSL_free leaves its ties behind; the LRU ages them out. A live SSL whose
 * tie was pushed out shows as untied (STAT_TLS_UNTIED_*) until its next
 * nested-syscall tie.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SSL_CONNS_MAX);
	__type(key, struct ssl_key);
	__type(value, struct ssl_tie);
} ssl_conns SEC(".maps");

/* Ties this code stored and has not removed: once it exceeds max_entries, each
 * new tie pushed an old one out (the LRU says nothing of its evictions). */
__u64 ssl_conns_live = 0;

static __always_inline void ssl_conns_forget(struct ssl_key *k)
{
	if (!bpf_map_delete_elem(&ssl_conns, k))
		__sync_fetch_and_add(&ssl_conns_live, -1);
}

/* The TLS record header a connection's bytes start with: content type
 * change_cipher_spec..application_data (20..23), version 3.1..3.4. */
static __always_inline bool tls_record_header(const __u8 *h)
{
	return h[0] >= 20 && h[0] <= 23 && h[1] == 3 && h[2] >= 1 && h[2] <= 4;
}

/*
 * Ties `ssl` to `c` (key `key`); `replace`: a tie to another connection
 * moves (nested syscall: the evidence is direct), else it stays. The
 * connection becomes TLS (tls_mark_conn).
 */
static __always_inline void tls_tie(__u32 tgid, __u64 ssl, __u64 key, struct connection *c, bool replace,
				    __u32 made_stat)
{
	struct ssl_key k = { .tgid = tgid, .ssl = ssl };
	struct ssl_tie v = { .conn_id = c->conn_id, .conn_key = key };
	struct ssl_tie *old = bpf_map_lookup_elem(&ssl_conns, &k);

	if (old) {
		if (old->conn_id == c->conn_id && old->conn_key == key)
			goto mark;
		if (!replace)
			return;
		if (bpf_map_update_elem(&ssl_conns, &k, &v, BPF_EXIST))
			return;
		stat_add(STAT_TLS_TIES_REPLACED, 1);
	} else {
		if (bpf_map_update_elem(&ssl_conns, &k, &v, BPF_NOEXIST)) {
			stat_add(STAT_TLS_SSL_CONNS_FULL, 1);
			return;
		}
		if (__sync_fetch_and_add(&ssl_conns_live, 1) >= SSL_CONNS_MAX) {
			__sync_fetch_and_add(&ssl_conns_live, -1);
			stat_add(STAT_TLS_SSL_CONNS_EVICTED, 1);
		}
	}
	stat_add(made_stat, 1);
mark:
	tls_mark_conn(c);
}

/* The first 3 bytes a write syscall sent, in `h`. */
static __always_inline bool first_written_bytes(__u8 *h, __u64 buf, __u32 shape)
{
	struct user_msghdr msg;
	struct iovec v;

	switch (shape) {
	case IO_BUFFER:
		return !bpf_probe_read_user(h, 3, (const void *)buf);
	case IO_MSGHDR:
		if (bpf_probe_read_user(&msg, sizeof(msg), (const void *)buf))
			return false;
		buf = (__u64)msg.msg_iov;
		/* fall through */
	case IO_IOVEC:
		if (bpf_probe_read_user(&v, sizeof(v), (const void *)buf) || v.iov_len < 3)
			return false;
		return !bpf_probe_read_user(h, 3, v.iov_base);
	}
	return false;
}

/*
 * At a socket data syscall's exit on followed connection x->conn, moved
 * `ret` > 0: ties the thread's TLS call in flight (nested syscall) or its
 * pending untied SSL (next write) to the connection. Returns whether the
 * connection is TLS: then the syscall's bytes are ciphertext, not shipped.
 */
static __always_inline bool tls_syscall_exit(struct io_task *t, const struct io_result *x,
					     const struct io_args *args, __u32 shape)
{
	__u64 key = conn_key(x->pid_tgid >> 32, args->fd);
	struct tls_call *tls = &t->tls;
	__u64 pending;
	__u8 h[3];

	if (tls->ssl) {
		tls_tie(x->pid_tgid >> 32, tls->ssl, key, x->conn, true, STAT_TLS_TIES_NESTED);
	} else if (tls->pending_ssl && x->dir == DIR_INGRESS) {
		/* SSL_do_handshake has no return probe: while it waits for the
		 * peer (a blocking server reads the ClientHello) the window runs
		 * from its last read, not from its entry. */
		tls->pending_ts = x->ts_exit_ns;
	} else if (tls->pending_ssl) {
		/* The next write decides, tie or not. */
		pending = tls->pending_ssl;
		tls->pending_ssl = 0;
		if (x->ts_exit_ns - tls->pending_ts <= TLS_TIE_WINDOW_NS && shape != IO_MMSG &&
		    first_written_bytes(h, args->buf, shape) && tls_record_header(h))
			tls_tie(x->pid_tgid >> 32, pending, key, x->conn, false, STAT_TLS_TIES_WRITE);
	}
	return x->conn->flags & CONN_F_TLS;
}

/* SSL_read/SSL_write(ssl, buf, num) and the _ex forms (ssl, buf, num, size_t *out). */
static __always_inline int tls_call_enter(struct pt_regs *ctx, __u8 dir, bool ex)
{
	struct io_task *t;
	__u64 pid_tgid;

	t = tls_task(&pid_tgid, true);
	if (!t)
		return 0;
	t->tls.ssl = PT_REGS_PARM1(ctx);
	t->tls.buf = PT_REGS_PARM2(ctx);
	t->tls.ex_out = ex ? PT_REGS_PARM4(ctx) : 0;
	t->tls.ts_enter_ns = dir == DIR_EGRESS ? bpf_ktime_get_ns() : 0;
	t->tls.dir = dir;
	/* Another TLS call started: a pending SSL can no longer be tied by a write. */
	t->tls.pending_ssl = 0;
	return 0;
}

static __always_inline int tls_call_exit(struct pt_regs *ctx, __u8 dir, bool ex)
{
	struct io_args args = {};
	struct io_result x = { .args = &args, .dir = dir, .source = SRC_TLS, .tls = 1 };
	long rc = PT_REGS_RC(ctx);
	struct tls_call call;
	struct ssl_tie *tie;
	struct ssl_key k = {};
	struct io_task *t;
	__u64 n = 0, out;

	t = tls_task(&x.pid_tgid, false);
	if (!t)
		return 0;
	x.ts_exit_ns = bpf_ktime_get_ns();
	call = t->tls;
	t->tls.ssl = 0;
	if (!call.ssl || call.dir != dir) {
		stat_add(STAT_ARGS_MISSING, 1);
		return 0;
	}
	if (ex) {
		if ((int)rc == 1 && !bpf_probe_read_user(&out, sizeof(out), (const void *)call.ex_out))
			n = out;
	} else if ((int)rc > 0) {
		n = (int)rc;
	}

	k.tgid = x.pid_tgid >> 32;
	k.ssl = call.ssl;
	tie = bpf_map_lookup_elem(&ssl_conns, &k);
	if (tie) {
		x.conn = bpf_map_lookup_elem(&conn_info, &tie->conn_key);
		if (!x.conn || x.conn->conn_id != tie->conn_id) {
			ssl_conns_forget(&k);
			stat_add(STAT_TLS_TIES_STALE, 1);
			tie = NULL;
		}
	}
	if (!tie) {
		/* Memory BIO: the socket write that follows may tie it. */
		t->tls.pending_ssl = call.ssl;
		t->tls.pending_ts = x.ts_exit_ns;
		if (n) {
			stat_add(STAT_TLS_UNTIED_CALLS, 1);
			stat_add(STAT_TLS_UNTIED_BYTES, n);
		}
		return 0;
	}
	if (!n)
		return 0;
	args.fd = (__s32)tie->conn_key;
	args.buf = call.buf;
	args.ts_enter_ns = dir == DIR_EGRESS ? call.ts_enter_ns : x.ts_exit_ns;
	tls_plaintext(&x, n);
	return 0;
}

/* SSL_do_handshake/SSL_shutdown (no return probe): their socket write may tie the SSL. */
static __always_inline int tls_other_call(struct pt_regs *ctx)
{
	struct io_task *t;
	__u64 pid_tgid;

	t = tls_task(&pid_tgid, true);
	if (!t)
		return 0;
	t->tls.ssl = 0;
	t->tls.pending_ssl = PT_REGS_PARM1(ctx);
	t->tls.pending_ts = bpf_ktime_get_ns();
	return 0;
}

SEC("uprobe")
int uprobe_ssl_read(struct pt_regs *ctx)
{
	return tls_call_enter(ctx, DIR_INGRESS, false);
}

SEC("uretprobe")
int uretprobe_ssl_read(struct pt_regs *ctx)
{
	return tls_call_exit(ctx, DIR_INGRESS, false);
}

SEC("uprobe")
int uprobe_ssl_write(struct pt_regs *ctx)
{
	return tls_call_enter(ctx, DIR_EGRESS, false);
}

SEC("uretprobe")
int uretprobe_ssl_write(struct pt_regs *ctx)
{
	return tls_call_exit(ctx, DIR_EGRESS, false);
}

SEC("uprobe")
int uprobe_ssl_read_ex(struct pt_regs *ctx)
{
	return tls_call_enter(ctx, DIR_INGRESS, true);
}

SEC("uretprobe")
int uretprobe_ssl_read_ex(struct pt_regs *ctx)
{
	return tls_call_exit(ctx, DIR_INGRESS, true);
}

SEC("uprobe")
int uprobe_ssl_write_ex(struct pt_regs *ctx)
{
	return tls_call_enter(ctx, DIR_EGRESS, true);
}

SEC("uretprobe")
int uretprobe_ssl_write_ex(struct pt_regs *ctx)
{
	return tls_call_exit(ctx, DIR_EGRESS, true);
}

SEC("uprobe")
int uprobe_ssl_do_handshake(struct pt_regs *ctx)
{
	return tls_other_call(ctx);
}

SEC("uprobe")
int uprobe_ssl_shutdown(struct pt_regs *ctx)
{
	return tls_other_call(ctx);
}

/* SSL_free(ssl): the address may be reused for another SSL object. */
SEC("uprobe")
int uprobe_ssl_free(struct pt_regs *ctx)
{
	struct ssl_key k = {};
	struct io_task *t;
	__u64 pid_tgid;

	if (!current_selected(&pid_tgid))
		return 0;
	t = bpf_task_storage_get(&active_io_args, bpf_get_current_task_btf(), NULL, 0);
	k.tgid = pid_tgid >> 32;
	k.ssl = PT_REGS_PARM1(ctx);
	if (!bpf_map_delete_elem(&ssl_conns, &k)) {
		__sync_fetch_and_add(&ssl_conns_live, -1);
		stat_add(STAT_TLS_UNTIED_AT_FREE, 1);
	}
	if (t && t->tls.pending_ssl == k.ssl)
		t->tls.pending_ssl = 0;
	return 0;
}

#endif /* EBPF_OTEL_UPROBES_OPENSSL_BPF_H */
