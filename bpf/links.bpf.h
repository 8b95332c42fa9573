/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Runtime links (group "links"): what every runtime's probe calls to say
 * which request a client connection works for (struct link_event,
 * socket_trace.h). The runtimes' probes are in bpf/uprobes/ (nginx, Go) and
 * bpf/link_node.bpf.h (the Node.js preload's marker); they check selection
 * first and read their fds from the application, which is why both fds are
 * resolved here against the task's own fd table: a number that names no
 * followed TCP socket becomes conn id 0, and user space never links through
 * it (a probe reading the wrong offsets of a build shows up so).
 */
#ifndef EBPF_OTEL_LINKS_BPF_H
#define EBPF_OTEL_LINKS_BPF_H

#include "common.bpf.h"
#include "sockets.bpf.h"
#include "connections.bpf.h"

/* The followed connection at `fd` (opened as OPEN_EXISTING when first seen
 * here), or NULL when fd names no socket we follow. */
static __always_inline struct connection *link_connection(__u64 pid_tgid, __s32 fd)
{
	struct sock *sk;

	if (fd < 0)
		return NULL;
	sk = traced_sock_of_fd(fd);
	if (!sk)
		return NULL;
	return connection_for_io(pid_tgid, fd, sk);
}

/*
 * Writes one link event. pid_tgid: the current task's, from
 * current_selected(). rule_op: rule | op << 8 (a global function takes five
 * arguments at most). Global and __noinline: verified once, whatever the
 * number of probes calling it.
 */
__noinline int emit_link(__u64 pid_tgid, __u32 rule_op, __s32 server_fd, __s32 client_fd, __u64 token)
{
	struct connection *server = NULL, *client;
	struct link_event *e;
	__u8 op = rule_op >> 8;

	if (op == LINK_OP_SET)
		server = link_connection(pid_tgid, server_fd);
	client = link_connection(pid_tgid, client_fd);
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_write(-1);
		return 0;
	}
	e->type = EV_LINK;
	e->tgid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	e->rule = rule_op & 0xff;
	e->op = op;
	e->server_role = server ? server->role : ROLE_UNKNOWN;
	e->client_role = client ? client->role : ROLE_UNKNOWN;
	e->ts_ns = bpf_ktime_get_ns();
	e->server_conn = server ? server->conn_id : 0;
	e->client_conn = client ? client->conn_id : 0;
	e->server_fd = server_fd;
	e->client_fd = client_fd;
	e->token = token;
	bpf_ringbuf_submit(e, batched_wakeup(sizeof(*e)));
	count_write(0);
	stat_add(STAT_LINK_EVENTS, 1);
	return 0;
}

#endif /* EBPF_OTEL_LINKS_BPF_H */
