/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * nginx upstream links (group "links"): each connection nginx's HTTP
 * upstream module takes for a request (a new one or one from the keep-alive
 * cache) is marked, when it is taken, as working for the request in flight
 * on that request's downstream connection (LINK_OP_SET); every other
 * connection ngx_event_connect_peer hands out is marked as working for no
 * known request (LINK_OP_CLEAR). User space attaches these probes per nginx
 * binary (src/capture/links/nginx.ts), with the binary's offsets slot as
 * the cookie.
 *
 * The association is kept by the upstream's peer object, not the thread: a
 * retry (ngx_http_upstream_next) or a resolver callback connects the same
 * peer again from an event handler, outside the request's first call.
 *   ngx_http_upstream_init(r), entry: r's peer is &r->upstream->peer (the
 *       upstream is created before, by the content handler); remember
 *       peer -> r and r -> peer. Subrequests are left out (see below).
 *   ngx_event_connect_peer(pc), entry and return: pc->connection is the
 *       connection taken (new: NGX_OK/NGX_AGAIN; cached: NGX_DONE). When pc
 *       is a known request's peer, and the request still says so (its
 *       signature is "HTTP" and r->upstream->peer is pc), SET from r's
 *       downstream fd to that connection's fd; else CLEAR.
 *   ngx_http_free_request(r), entry: the request's pool goes; forget both.
 * Nothing is inferred from timing or from which thread runs what.
 *
 * Subrequests (auth_request, mirror, SSI) are not associated: nginx frees
 * them with their main request's pool, without a call of their own to see,
 * so their entries could outlive them. ngx_http_subrequest's return names
 * each one; their connections are CLEARed.
 *
 * The offsets are checked where nginx gives a handle on them: the request's
 * signature (must be "HTTP"), its upstream (a connect inside
 * ngx_http_upstream_init(r) of a main request must be for r's peer: nothing
 * else connects there), and the fds (user space checks a process's first
 * SETs name sockets it follows, with the right roles, else switches the rule
 * off for it). A connect inside ngx_http_upstream_init(r) for a peer that is
 * not r's as read means the request or upstream offsets are wrong: it is
 * sent as a SET from fd -1, which user space counts as a failed check, so
 * that such a build is reported although it would link nothing.
 */
#ifndef EBPF_OTEL_UPROBES_NGINX_LINK_BPF_H
#define EBPF_OTEL_UPROBES_NGINX_LINK_BPF_H

#include "common.bpf.h"
#include "selection.bpf.h"
#include "links.bpf.h"

#define NGINX_LINK_ENTRIES 16384

/* nginx's return codes (ngx_config.h). */
#define NGX_OK 0
#define NGX_AGAIN (-2)
#define NGX_DONE (-4)

/* Per binary: written by user space before attach, indexed by the attach cookie. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NGINX_LINK_BINARIES);
	__type(key, __u32);
	__type(value, struct nginx_link_offsets);
} link_nginx_offsets SEC(".maps");

/* An object of nginx's address space: pointers of two workers may be equal. */
struct nginx_object {
	__u32 tgid;
	__u32 _pad;
	__u64 addr;
};

/* peer (&r->upstream->peer) -> r, and r -> its peer: from the request's
 * ngx_http_upstream_init to its ngx_http_free_request. LRU: a worker that
 * dies leaves its entries behind; an entry pushed out means a request that
 * is not linked (every use is checked against the request itself). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, NGINX_LINK_ENTRIES);
	__type(key, struct nginx_object);
	__type(value, __u64);
} link_nginx_peers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, NGINX_LINK_ENTRIES);
	__type(key, struct nginx_object);
	__type(value, __u64);
} link_nginx_requests SEC(".maps");

/* Subrequests nginx made (ngx_http_subrequest's return): never associated. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, NGINX_LINK_ENTRIES);
	__type(key, struct nginx_object);
	__type(value, __u8);
} link_nginx_subrequests SEC(".maps");

/* Per thread, entry to return: the request in ngx_http_upstream_init, the
 * peer in ngx_event_connect_peer, the out pointer of ngx_http_subrequest. */
struct nginx_call_key {
	__u64 pid_tgid;
	__u32 call; /* enum nginx_call */
	__u32 _pad;
};

enum nginx_call {
	NGINX_CALL_UPSTREAM_INIT = 1,
	NGINX_CALL_CONNECT_PEER = 2,
	NGINX_CALL_SUBREQUEST = 3,
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, NGINX_LINK_ENTRIES);
	__type(key, struct nginx_call_key);
	__type(value, __u64);
} link_nginx_calls SEC(".maps");

static __always_inline struct nginx_link_offsets *nginx_offsets(struct pt_regs *ctx)
{
	__u32 slot = bpf_get_attach_cookie(ctx);

	return bpf_map_lookup_elem(&link_nginx_offsets, &slot);
}

static __always_inline __u64 nginx_read_ptr(__u64 base, __u32 off)
{
	__u64 v = 0;

	if (!base || bpf_probe_read_user(&v, sizeof(v), (const void *)(base + off)))
		return 0;
	return v;
}

/* The fd of an ngx_connection_t, -1 when it cannot be read. */
static __always_inline __s32 nginx_connection_fd(const struct nginx_link_offsets *o, __u64 c)
{
	__s32 fd = -1;

	if (!c || bpf_probe_read_user(&fd, sizeof(fd), (const void *)(c + o->connection_fd)))
		return -1;
	return fd;
}

static __always_inline bool nginx_is_request(__u64 r)
{
	__u32 sig = 0;

	return r && !bpf_probe_read_user(&sig, sizeof(sig), (const void *)r) && sig == NGINX_HTTP_SIGNATURE;
}

/* &r->upstream->peer, 0 when r is no request or has no upstream. */
static __always_inline __u64 nginx_request_peer(const struct nginx_link_offsets *o, __u64 r)
{
	__u64 u;

	if (!nginx_is_request(r))
		return 0;
	u = nginx_read_ptr(r, o->request_upstream);
	return u ? u + o->upstream_peer : 0;
}

static __always_inline void nginx_link(__u64 pid_tgid, __u8 op, __s32 server_fd, __s32 client_fd, __u64 token)
{
	emit_link(pid_tgid, LINK_NGINX | (__u32)op << 8, server_fd, client_fd, token);
}

/* Forgets peer -> r if it still names r. */
static __always_inline void nginx_forget_peer(__u32 tgid, __u64 peer, __u64 r)
{
	struct nginx_object k = { .tgid = tgid, .addr = peer };
	__u64 *v = bpf_map_lookup_elem(&link_nginx_peers, &k);

	if (v && *v == r)
		bpf_map_delete_elem(&link_nginx_peers, &k);
}

SEC("uprobe")
int uprobe_link_nginx_upstream_init(struct pt_regs *ctx)
{
	struct nginx_call_key call = { .call = NGINX_CALL_UPSTREAM_INIT };
	struct nginx_object req = {}, peer = {};
	struct nginx_link_offsets *o;
	__u64 pid_tgid, r = PT_REGS_PARM1(ctx), *old;

	if (!current_selected(&pid_tgid))
		return 0;
	o = nginx_offsets(ctx);
	if (!o)
		return 0;
	req.tgid = peer.tgid = pid_tgid >> 32;
	req.addr = r;
	if (bpf_map_lookup_elem(&link_nginx_subrequests, &req)) {
		stat_add(STAT_LINK_NGINX_SUBREQUESTS, 1);
		return 0;
	}
	/* Whatever follows: a connect inside this call that is not for r's peer is a layout failure. */
	call.pid_tgid = pid_tgid;
	bpf_map_update_elem(&link_nginx_calls, &call, &r, BPF_ANY);
	/* The content handler created r->upstream before: none means the offsets are wrong. */
	peer.addr = nginx_request_peer(o, r);
	if (!peer.addr) {
		stat_add(STAT_LINK_NGINX_LAYOUT, 1);
		return 0;
	}
	/* An internal redirect to another proxied location made r a new upstream. */
	old = bpf_map_lookup_elem(&link_nginx_requests, &req);
	if (old && *old != peer.addr)
		nginx_forget_peer(req.tgid, *old, r);
	bpf_map_update_elem(&link_nginx_requests, &req, &peer.addr, BPF_ANY);
	bpf_map_update_elem(&link_nginx_peers, &peer, &r, BPF_ANY);
	return 0;
}

SEC("uretprobe")
int uprobe_link_nginx_upstream_init_ret(struct pt_regs *ctx)
{
	struct nginx_call_key call = { .call = NGINX_CALL_UPSTREAM_INIT };

	if (!current_selected(&call.pid_tgid))
		return 0;
	bpf_map_delete_elem(&link_nginx_calls, &call);
	return 0;
}

SEC("uprobe")
int uprobe_link_nginx_connect_peer(struct pt_regs *ctx)
{
	struct nginx_call_key call = { .call = NGINX_CALL_CONNECT_PEER };
	__u64 pc = PT_REGS_PARM1(ctx);

	if (!current_selected(&call.pid_tgid))
		return 0;
	bpf_map_update_elem(&link_nginx_calls, &call, &pc, BPF_ANY);
	return 0;
}

SEC("uretprobe")
int uprobe_link_nginx_connect_peer_ret(struct pt_regs *ctx)
{
	struct nginx_call_key call = { .call = NGINX_CALL_CONNECT_PEER };
	struct nginx_object peer = {};
	struct nginx_link_offsets *o;
	long rc = PT_REGS_RC(ctx);
	__u64 pc, r, *v;
	__s32 fd;

	if (!current_selected(&call.pid_tgid))
		return 0;
	v = bpf_map_lookup_elem(&link_nginx_calls, &call);
	if (!v)
		return 0;
	pc = *v;
	bpf_map_delete_elem(&link_nginx_calls, &call);
	o = nginx_offsets(ctx);
	/* Only these hand out a connection; the others leave none in pc. */
	if (!o || (rc != NGX_OK && rc != NGX_AGAIN && rc != NGX_DONE))
		return 0;
	fd = nginx_connection_fd(o, nginx_read_ptr(pc, o->peer_connection));
	if (fd < 0)
		return 0;
	peer.tgid = call.pid_tgid >> 32;
	peer.addr = pc;
	v = bpf_map_lookup_elem(&link_nginx_peers, &peer);
	r = v ? *v : 0;
	if (r && nginx_request_peer(o, r) == pc) {
		stat_add(STAT_LINK_NGINX_SET, 1);
		nginx_link(call.pid_tgid, LINK_OP_SET, nginx_connection_fd(o, nginx_read_ptr(r, o->request_connection)), fd, r);
		return 0;
	}
	/* Inside ngx_http_upstream_init(r) of a main request, for a peer that is not r's as
	 * the offsets say: they are wrong (nothing else connects there). */
	call.call = NGINX_CALL_UPSTREAM_INIT;
	v = bpf_map_lookup_elem(&link_nginx_calls, &call);
	if (v) {
		stat_add(STAT_LINK_NGINX_FOREIGN_PEER, 1);
		nginx_link(call.pid_tgid, LINK_OP_SET, -1, fd, *v);
		return 0;
	}
	stat_add(STAT_LINK_NGINX_CLEAR, 1);
	nginx_link(call.pid_tgid, LINK_OP_CLEAR, -1, fd, 0);
	return 0;
}

SEC("uprobe")
int uprobe_link_nginx_free_request(struct pt_regs *ctx)
{
	struct nginx_object req = {};
	struct nginx_link_offsets *o;
	__u64 pid_tgid, r = PT_REGS_PARM1(ctx), *peer;

	if (!current_selected(&pid_tgid))
		return 0;
	req.tgid = pid_tgid >> 32;
	req.addr = r;
	peer = bpf_map_lookup_elem(&link_nginx_requests, &req);
	if (peer) {
		nginx_forget_peer(req.tgid, *peer, r);
		bpf_map_delete_elem(&link_nginx_requests, &req);
	}
	/* Also the peer the request holds now, should its entry have been pushed out of link_nginx_requests. */
	o = nginx_offsets(ctx);
	if (o)
		nginx_forget_peer(req.tgid, nginx_request_peer(o, r), r);
	bpf_map_delete_elem(&link_nginx_subrequests, &req);
	return 0;
}

/* ngx_http_subrequest(r, uri, args, ngx_http_request_t **psr, ps, flags): *psr is the subrequest at return. */
SEC("uprobe")
int uprobe_link_nginx_subrequest(struct pt_regs *ctx)
{
	struct nginx_call_key call = { .call = NGINX_CALL_SUBREQUEST };
	__u64 psr = PT_REGS_PARM4(ctx);

	if (!current_selected(&call.pid_tgid))
		return 0;
	bpf_map_update_elem(&link_nginx_calls, &call, &psr, BPF_ANY);
	return 0;
}

SEC("uretprobe")
int uprobe_link_nginx_subrequest_ret(struct pt_regs *ctx)
{
	struct nginx_call_key call = { .call = NGINX_CALL_SUBREQUEST };
	struct nginx_object sr = {};
	__u8 one = 1;
	__u64 *psr;

	if (!current_selected(&call.pid_tgid))
		return 0;
	psr = bpf_map_lookup_elem(&link_nginx_calls, &call);
	if (!psr)
		return 0;
	sr.addr = PT_REGS_RC(ctx) == NGX_OK ? nginx_read_ptr(*psr, 0) : 0;
	bpf_map_delete_elem(&link_nginx_calls, &call);
	if (!sr.addr)
		return 0;
	sr.tgid = call.pid_tgid >> 32;
	bpf_map_update_elem(&link_nginx_subrequests, &sr, &one, BPF_ANY);
	return 0;
}

#endif /* EBPF_OTEL_UPROBES_NGINX_LINK_BPF_H */
