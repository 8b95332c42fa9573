/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Node.js links (group "links", rule LINK_NODE): the opt-in preload
 * (preload/node/ebpf-otel-preload.js) makes one zero-byte pwrite64 right
 * before an outgoing HTTP request's first bytes reach its socket, with
 *
 *   pos = NODE_MARK_MAGIC << 40 | server_fd << 20 | client_fd
 *
 * server_fd NODE_MARK_NO_SERVER is a CLEAR. The write goes to /dev/null (or,
 * without it, to the client socket, which fails with ESPIPE): only the
 * arguments matter, read here at the syscall's entry. Nothing is read from
 * the application's memory; emit_link resolves both fds in the task's own
 * fd table, so a forged mark can only name the process's own sockets.
 *
 * Any process's pwrite64 passes here: the magic (a position beyond 2^52
 * bytes, which no file system takes) and the zero count are checked from
 * the context before the selection lookup.
 */
#ifndef EBPF_OTEL_LINK_NODE_BPF_H
#define EBPF_OTEL_LINK_NODE_BPF_H

#include "links.bpf.h"

/* Shared with the preload: change both together. */
#define NODE_MARK_MAGIC 0x1eb0
#define NODE_MARK_FD_BITS 20
#define NODE_MARK_FD_MASK ((1u << NODE_MARK_FD_BITS) - 1)
#define NODE_MARK_NO_SERVER NODE_MARK_FD_MASK

SEC("tracepoint/syscalls/sys_enter_pwrite64")
int link_node_mark(struct trace_event_raw_sys_enter *ctx)
{
	__u64 pos = ctx->args[3];
	__u64 pid_tgid;
	__s32 server_fd, client_fd;

	if (ctx->args[2] != 0 || (pos >> (2 * NODE_MARK_FD_BITS)) != NODE_MARK_MAGIC)
		return 0;
	if (!current_selected(&pid_tgid))
		return 0;
	server_fd = (pos >> NODE_MARK_FD_BITS) & NODE_MARK_FD_MASK;
	client_fd = pos & NODE_MARK_FD_MASK;
	if (server_fd == NODE_MARK_NO_SERVER)
		return emit_link(pid_tgid, LINK_NODE | LINK_OP_CLEAR << 8, -1, client_fd, 0);
	return emit_link(pid_tgid, LINK_NODE | LINK_OP_SET << 8, server_fd, client_fd, 0);
}

#endif /* EBPF_OTEL_LINK_NODE_BPF_H */
