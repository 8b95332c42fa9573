/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What every TLS library's probes share (group "tls"): a connection found to
 * carry TLS stops shipping its syscalls' bytes (ciphertext), and a library
 * call's plaintext goes out as a data event of that connection, on its
 * plaintext stream positions. The libraries: openssl.bpf.h, go_tls.bpf.h.
 */
#ifndef EBPF_OTEL_UPROBES_TLS_BPF_H
#define EBPF_OTEL_UPROBES_TLS_BPF_H

#include "common.bpf.h"
#include "selection.bpf.h"
#include "connections.bpf.h"
#include "data.bpf.h"

/*
 * `c` carries TLS: its syscalls' bytes are ciphertext from now on. A mute
 * user space asked for before (it saw only ciphertext) is lifted, unless
 * every connection starts muted.
 */
static __always_inline void tls_mark_conn(struct connection *c)
{
	if (c->flags & CONN_F_TLS)
		return;
	c->flags |= CONN_F_TLS;
	if (config.initial_mode == MODE_MUTED)
		return;
	/* Requests made from ciphertext, applied or still pending, no longer hold
	 * (one user space sends after the mark can still apply: see its tracker). */
	c->mode = MODE_FULL;
	bpf_map_delete_elem(&mode_requests, &c->conn_id);
}

/* Ciphertext of a TLS connection: positions and totals advance, nothing is sent. */
static __always_inline void skip_ciphertext(const struct io_result *x, __u64 size)
{
	advance_stream(x, size);
	if (x->dir == DIR_EGRESS)
		x->conn->tls_cipher_sent_ns = x->ts_exit_ns;
	stat_add(STAT_TLS_CIPHERTEXT_SYSCALLS, 1);
	stat_add(STAT_TLS_CIPHERTEXT_BYTES, size);
}

/* The thread's task storage, created if `create`; NULL when the process is not selected. */
static __always_inline struct io_task *tls_task(__u64 *pid_tgid, bool create)
{
	if (!current_selected(pid_tgid))
		return NULL;
	return bpf_task_storage_get(&active_io_args, bpf_get_current_task_btf(), NULL,
				    create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
}

/*
 * The `n` plaintext bytes a TLS call moved (x->args: fd, buffer, entry time),
 * on x->conn. A write whose ciphertext went out inside the call (socket BIO,
 * Go) ends when that syscall returned; one whose ciphertext goes out later
 * (memory BIO: Node) ends at the call's return.
 */
static __always_inline void tls_plaintext(struct io_result *x, __u64 n)
{
	__u64 sent = x->conn->tls_cipher_sent_ns;

	if (x->dir == DIR_EGRESS && sent >= x->args->ts_enter_ns && sent < x->ts_exit_ns)
		x->ts_exit_ns = sent;
	if (connection_mode(x->conn) == MODE_MUTED) {
		skip_muted(x, n);
		return;
	}
	capture_buffer(x, n);
}

#endif /* EBPF_OTEL_UPROBES_TLS_BPF_H */
