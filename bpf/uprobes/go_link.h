/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Go net/http links: the per-binary offsets user space writes into a slot of
 * link_go_offsets (src/capture/links/go.ts encodes it; its test compiles this
 * header with the host compiler and compares). Plain fixed-width types.
 */
#ifndef EBPF_OTEL_UPROBES_GO_LINK_H
#define EBPF_OTEL_UPROBES_GO_LINK_H

struct go_link_offsets {
	__u32 ok;                  /* 1: the slot is filled */
	__u32 g_goid;              /* runtime.g.goid */
	__u32 conn_rwc;            /* net/http.conn.rwc (a net.Conn: itab, data) */
	__u32 fd_sysfd;            /* internal/poll.FD.Sysfd */
	__u32 fd_is_stream;        /* internal/poll.FD.IsStream */
	__u32 fd_zero_read_is_eof; /* internal/poll.FD.ZeroReadIsEOF */
	__u32 fd_is_file;          /* internal/poll.FD.isFile */
	__u32 netfd_family;        /* net.netFD.family (its pfd poll.FD is at 0) */
	__u32 netfd_sotype;        /* net.netFD.sotype */
	__u32 pc_conn;             /* net/http.persistConn.conn (a net.Conn) */
	__u32 resp_conn;           /* net/http.response.conn */
	__u32 resp_req;            /* net/http.response.req */
	__u32 conn_server;         /* net/http.conn.server */
	__u32 tls_conn;            /* crypto/tls.Conn.conn (the net.Conn under TLS) */
};

#endif /* EBPF_OTEL_UPROBES_GO_LINK_H */
