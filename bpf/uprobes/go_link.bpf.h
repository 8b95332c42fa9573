/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Go net/http links (group "links", rule LINK_GO): a client request made
 * by the goroutine serving a SERVER request is that request's child. amd64,
 * Go 1.17 and later (register ABI: arguments in RAX..., g in R14).
 *
 * Who serves: the goroutine in net/http's serverHandler.ServeHTTP for a
 * request of an HTTP/1 connection over TCP or TLS (its fd read through the
 * ResponseWriter), between its entry and one of its return instructions.
 * Goroutines are keyed by their goroutine id (runtime.g.goid), never by the
 * g pointer (g structs are reused) nor by the thread (goroutines migrate):
 * a goroutine id is never reused in a process, so nothing kept for one
 * goroutine can apply to another.
 *
 * Who writes: net/http's client writes a request from the persistConn's
 * writeLoop goroutine, not the caller's. (*persistConn).roundTrip's entry
 * records on whose behalf the persistConn's connection (its fd, read from
 * pc.conn, and its connection id) acts until the next roundTrip on it: the
 * caller's serving request, or none. Keyed by the connection, not by the
 * writeLoop goroutine, so that pools dialled before the agent attached
 * are covered too. Any other client (database/sql drivers, raw net.Conn)
 * writing on the serving goroutine itself is linked directly.
 *
 * The mark: at each write to a followed connection not accepted by the
 * process (internal/poll.(*FD).Write, Writev, WriteOnce, WriteMsg,
 * SendFile and Splice: every path by which Go writes a TCP socket), its owner is compared with the
 * connection's last mark: a SET when the owner is a serving request other
 * than the last one marked, a CLEAR when there is no owner and the last
 * mark was a SET. Writes by no owner on a connection never marked emit
 * nothing (user space takes unmarked connections as roots).
 *
 * Offsets (struct fields) come per binary from user space, in the slot of
 * link_go_offsets given by the attach cookie (DWARF, or a table of
 * verified Go versions); a binary without them is not probed.
 */
#ifndef EBPF_OTEL_UPROBES_GO_LINK_BPF_H
#define EBPF_OTEL_UPROBES_GO_LINK_BPF_H

#include "common.bpf.h"
#include "selection.bpf.h"
#include "sockets.bpf.h"
#include "connections.bpf.h"
#include "links.bpf.h"
#include "uprobes/go_link.h"

#if defined(__TARGET_ARCH_x86)

#define GO_LINK_BINARIES 64 /* LINK_FILE_SLOTS (src/capture/links/runtime.ts) */
#define GO_LINK_GOROUTINES 16384
#define GO_LINK_MARKS 16384

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GO_LINK_BINARIES);
	__type(key, __u32);
	__type(value, struct go_link_offsets);
} link_go_offsets SEC(".maps");

struct go_link_gkey {
	__u32 tgid;
	__u32 _pad;
	__u64 goid;
};

/* A request being served: by the goroutine serving the connection at server_fd. */
struct go_link_serve {
	__s32 server_fd; /* -1: nobody (an acting entry of a caller that serves nothing) */
	__u32 _pad;
	__u64 epoch;     /* the serve's start (ns): tells two requests of one goroutine apart */
	__u64 goid;      /* the serving goroutine */
};

/*
 * Goroutine -> the request it serves, from ServeHTTP's entry to its return.
 * A handler that panics leaves without a return: its goroutine (conn.serve's)
 * recovers, closes the connection and ends, writing to no socket; the entry
 * ages out of the LRU (its goroutine id is never used again).
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, GO_LINK_GOROUTINES);
	__type(key, struct go_link_gkey);
	__type(value, struct go_link_serve);
} go_link_serving SEC(".maps");

/* A persistConn's connection, conn_key(tgid, fd) -> on whose behalf it acts. */
struct go_link_act {
	struct go_link_serve serve; /* server_fd -1: none */
	__u64 conn_id;              /* the connection it was set for: a reused fd is another */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, GO_LINK_GOROUTINES);
	__type(key, __u64);
	__type(value, struct go_link_act);
} go_link_acting SEC(".maps");

/* The last mark sent for a client connection. */
struct go_link_mark {
	__u64 conn_id;
	__u64 epoch;
	__u64 goid;
	__u8 op; /* LINK_OP_SET / LINK_OP_CLEAR */
	__u8 _pad[7];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, GO_LINK_MARKS);
	__type(key, __u64); /* conn_key(tgid, fd) */
	__type(value, struct go_link_mark);
} go_link_marks SEC(".maps");

/* This binary's offsets: the attach cookie's slot. */
static __always_inline const struct go_link_offsets *go_link_offsets_of(struct pt_regs *ctx)
{
	__u32 slot = (__u32)bpf_get_attach_cookie(ctx);
	const struct go_link_offsets *o = bpf_map_lookup_elem(&link_go_offsets, &slot);

	return o && o->ok ? o : NULL;
}

/* The current goroutine's key: its id, read from its g (R14). False when unreadable. */
static __always_inline bool go_link_goroutine(struct pt_regs *ctx, const struct go_link_offsets *o, __u64 pid_tgid,
					      struct go_link_gkey *k)
{
	__u64 goid;

	if (bpf_probe_read_user(&goid, sizeof(goid), (const void *)(ctx->r14 + o->g_goid)) || !goid)
		return false;
	k->tgid = pid_tgid >> 32;
	k->_pad = 0;
	k->goid = goid;
	return true;
}

/* A selected process's probe: its offsets, and the current goroutine. */
static __always_inline const struct go_link_offsets *go_link_enter(struct pt_regs *ctx, __u64 *pid_tgid,
								   struct go_link_gkey *k)
{
	const struct go_link_offsets *o;

	if (!current_selected(pid_tgid))
		return NULL;
	o = go_link_offsets_of(ctx);
	if (!o || !go_link_goroutine(ctx, o, *pid_tgid, k))
		return NULL;
	return o;
}

/* The socket fd of the poll.FD at `pfd` when it is a stream socket's, else -1. */
static __always_inline __s32 go_link_fd_of_pfd(const struct go_link_offsets *o, __u64 pfd)
{
	__s64 sysfd;
	__u8 is_stream = 0, zero_read_is_eof = 0, is_file = 1;

	if (!pfd ||
	    bpf_probe_read_user(&sysfd, sizeof(sysfd), (const void *)(pfd + o->fd_sysfd)) ||
	    bpf_probe_read_user(&is_stream, 1, (const void *)(pfd + o->fd_is_stream)) ||
	    bpf_probe_read_user(&zero_read_is_eof, 1, (const void *)(pfd + o->fd_zero_read_is_eof)) ||
	    bpf_probe_read_user(&is_file, 1, (const void *)(pfd + o->fd_is_file)))
		return -1;
	if (is_stream != 1 || zero_read_is_eof != 1 || is_file != 0 || sysfd < 0 || sysfd > 0x7fffffff)
		return -1;
	return (__s32)sysfd;
}

/* The fd of the netFD at `netfd` when it is a TCP socket's, else -1. */
static __always_inline __s32 go_link_fd_of_netfd(const struct go_link_offsets *o, __u64 netfd)
{
	__s64 family, sotype;
	__s32 fd;

	fd = go_link_fd_of_pfd(o, netfd);
	if (fd < 0 ||
	    bpf_probe_read_user(&family, sizeof(family), (const void *)(netfd + o->netfd_family)) ||
	    bpf_probe_read_user(&sotype, sizeof(sotype), (const void *)(netfd + o->netfd_sotype)))
		return -1;
	if ((family != 2 /* AF_INET */ && family != 10 /* AF_INET6 */) || sotype != 1 /* SOCK_STREAM */)
		return -1;
	return fd;
}

/*
 * The TCP socket fd under a net.Conn interface value at `iface`: a
 * *net.TCPConn (its first word is the *netFD), or a *tls.Conn over one
 * (tls.Conn.conn, a net.Conn). -1 for anything else. Read as a TCPConn, a
 * tls.Conn's first word is an itab, whose method pointers fail the
 * family/sotype checks; only then is it read as a tls.Conn.
 */
static __always_inline __s32 go_link_fd_of_conn(const struct go_link_offsets *o, __u64 iface)
{
	__u64 data, netfd;
	__s32 fd;

	if (bpf_probe_read_user(&data, sizeof(data), (const void *)(iface + 8)) || !data ||
	    bpf_probe_read_user(&netfd, sizeof(netfd), (const void *)data) || !netfd)
		return -1;
	fd = go_link_fd_of_netfd(o, netfd);
	if (fd >= 0)
		return fd;
	if (bpf_probe_read_user(&data, sizeof(data), (const void *)(data + o->tls_conn + 8)) || !data ||
	    bpf_probe_read_user(&netfd, sizeof(netfd), (const void *)data) || !netfd)
		return -1;
	return go_link_fd_of_netfd(o, netfd);
}

/*
 * net/http.serverHandler.ServeHTTP(sh, rw ResponseWriter, req *Request): sh
 * (struct{srv *Server}) in RAX, rw in RBX (itab) and RCX (data), req in RDI.
 * conn.serve calls it with rw a *response; HTTP/2 with its own writer. rw
 * is taken for a *response only when it says so twice: response.req is
 * req, and response.conn's server is sh's. Then the connection is
 * response.conn.rwc's socket (a TCPConn, or a tls.Conn over one). Read at every
 * call, not at conn.serve's start: connections accepted before the agent
 * attached are served the same way.
 */
SEC("uprobe")
int uprobe_link_go_serve(struct pt_regs *ctx)
{
	const struct go_link_offsets *o;
	struct go_link_serve s = {};
	struct go_link_gkey k;
	__u64 pid_tgid, rw = ctx->cx, conn = 0, req = 0, srv = 0;
	__s32 fd;

	o = go_link_enter(ctx, &pid_tgid, &k);
	if (!o)
		return 0;
	if (!rw || !ctx->di ||
	    bpf_probe_read_user(&req, sizeof(req), (const void *)(rw + o->resp_req)) || req != ctx->di ||
	    bpf_probe_read_user(&conn, sizeof(conn), (const void *)(rw + o->resp_conn)) || !conn ||
	    bpf_probe_read_user(&srv, sizeof(srv), (const void *)(conn + o->conn_server)) || srv != ctx->ax ||
	    (fd = go_link_fd_of_conn(o, conn + o->conn_rwc)) < 0) {
		bpf_map_delete_elem(&go_link_serving, &k);
		return 0;
	}
	s.server_fd = fd;
	s.epoch = bpf_ktime_get_ns();
	s.goid = k.goid;
	bpf_map_update_elem(&go_link_serving, &k, &s, BPF_ANY);
	return 0;
}

/* At a return of serverHandler.ServeHTTP: the handler is done. */
SEC("uprobe")
int uprobe_link_go_serve_ret(struct pt_regs *ctx)
{
	struct go_link_gkey k;
	__u64 pid_tgid;

	if (go_link_enter(ctx, &pid_tgid, &k))
		bpf_map_delete_elem(&go_link_serving, &k);
	return 0;
}

/*
 * Marks connection c (at fd, key conn_key) for `owner` (NULL: nobody) when
 * that changes what its last mark says: a SET for another request, a CLEAR
 * after a SET.
 */
static __always_inline void go_link_mark(__u64 pid_tgid, __u64 key, __s32 fd, const struct connection *c,
					 const struct go_link_serve *owner)
{
	struct go_link_mark m = {}, *last = bpf_map_lookup_elem(&go_link_marks, &key);

	if (owner && owner->server_fd < 0)
		owner = NULL;
	if (owner) {
		if (owner->server_fd == fd)
			return;
		if (last && last->conn_id == c->conn_id && last->op == LINK_OP_SET && last->epoch == owner->epoch &&
		    last->goid == owner->goid)
			return;
		m.op = LINK_OP_SET;
		m.epoch = owner->epoch;
		m.goid = owner->goid;
	} else {
		if (!last || last->op != LINK_OP_SET)
			return;
		/* The last SET was of a closed connection whose fd this one reuses: this one was never marked. */
		if (last->conn_id != c->conn_id) {
			bpf_map_delete_elem(&go_link_marks, &key);
			return;
		}
		m.op = LINK_OP_CLEAR;
	}
	m.conn_id = c->conn_id;
	bpf_map_update_elem(&go_link_marks, &key, &m, BPF_ANY);
	emit_link(pid_tgid, LINK_GO | (__u32)m.op << 8, owner ? owner->server_fd : -1, fd, m.goid);
}

/*
 * net/http.(*persistConn).roundTrip(pc, req): pc in RAX. pc's connection
 * acts for the caller's request from now on: its writeLoop writes only
 * requests a roundTrip handed it, so the next roundTrip on pc replaces this
 * before pc writes anything else (no probe on roundTrip's returns: one
 * trap less per request). The connection is marked here, before the
 * writeLoop's write: a request's start is the time of its first write call
 * (for TLS, crypto/tls's Write, before any socket write), and the mark must
 * come first in the timeline.
 */
SEC("uprobe")
int uprobe_link_go_round_trip(struct pt_regs *ctx)
{
	const struct go_link_offsets *o;
	struct go_link_serve *s;
	struct go_link_act a = { .serve = { .server_fd = -1 } };
	struct connection *c;
	struct go_link_gkey k;
	__u64 pid_tgid, key, pc = ctx->ax;
	__s32 fd;

	o = go_link_enter(ctx, &pid_tgid, &k);
	if (!o || !pc)
		return 0;
	fd = go_link_fd_of_conn(o, pc + o->pc_conn);
	if (fd < 0)
		return 0;
	c = link_connection(pid_tgid, fd);
	if (!c || c->role == ROLE_SERVER)
		return 0;
	s = bpf_map_lookup_elem(&go_link_serving, &k);
	if (s)
		a.serve = *s;
	a.conn_id = c->conn_id;
	key = conn_key(k.tgid, fd);
	/* Always written, "none" too: the connection's last user's request must never carry over. */
	bpf_map_update_elem(&go_link_acting, &key, &a, BPF_ANY);
	go_link_mark(pid_tgid, key, fd, c, &a.serve);
	return 0;
}

/*
 * internal/poll.(*FD).Write/Writev/WriteMsg (fd in RAX), poll.SendFile and
 * poll.Splice (the destination *FD in RAX): a write to a socket is about to
 * happen; mark its connection with the current owner when that changed.
 * Not a TLS connection's: crypto/tls's Write began before this socket write,
 * and its request starts then; those are marked by roundTrip only (a TLS
 * connection written otherwise stays unmarked: its requests are roots).
 */
SEC("uprobe")
int uprobe_link_go_fd_write(struct pt_regs *ctx)
{
	const struct go_link_offsets *o;
	const struct go_link_serve *owner = NULL;
	struct go_link_mark *last;
	struct go_link_act *acting;
	struct go_link_gkey k;
	struct connection *c;
	__u64 pid_tgid, key;
	__s32 fd;

	if (!current_selected(&pid_tgid))
		return 0;
	o = go_link_offsets_of(ctx);
	if (!o)
		return 0;
	fd = go_link_fd_of_pfd(o, ctx->ax);
	if (fd < 0)
		return 0;
	key = conn_key(pid_tgid >> 32, fd);
	/* A goroutine that cannot be told is nobody: its write still ends an older SET. */
	if (go_link_goroutine(ctx, o, pid_tgid, &k))
		owner = bpf_map_lookup_elem(&go_link_serving, &k);
	acting = owner ? NULL : bpf_map_lookup_elem(&go_link_acting, &key);
	last = bpf_map_lookup_elem(&go_link_marks, &key);
	if (!owner && !acting && (!last || last->op != LINK_OP_SET))
		return 0;
	/*
	 * Only TCP connections the capture follows (the fd's own socket, never a
	 * stale entry), that this process did not accept: a connection open
	 * before the agent started has no known role, and a pooled client one
	 * often is.
	 */
	c = link_connection(pid_tgid, fd);
	if (!c || c->role == ROLE_SERVER) {
		if (last)
			bpf_map_delete_elem(&go_link_marks, &key);
		return 0;
	}
	if (c->flags & CONN_F_TLS)
		return 0;
	if (acting && acting->conn_id == c->conn_id)
		owner = &acting->serve;
	go_link_mark(pid_tgid, key, fd, c, owner);
	return 0;
}

#endif /* __TARGET_ARCH_x86 */
#endif /* EBPF_OTEL_UPROBES_GO_LINK_BPF_H */
