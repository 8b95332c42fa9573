// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Socket capture: syscall tracepoints turn a selected process's TCP (and
 * optionally UDP) traffic into EV_OPEN / EV_DATA / EV_CLOSE records; sched
 * tracepoints report and follow its process lifecycle (EV_EXEC / EV_FORK /
 * EV_EXIT). Record layouts: socket_trace.h.
 *
 * Every syscall program starts with current_selected(); an I/O syscall saves
 * its arguments at entry (in the thread's task storage) and reports at exit, when it is
 * known how many bytes moved. Pids are those of the agent's pid namespace
 * (common.bpf.h).
 */
/* vmlinux.h has its own `struct proc_event` (proc connector) and a typedef
 * `config` (zlib); ours come from socket_trace.h and common.bpf.h. */
#define proc_event proc_event___kernel
#define config config___kernel
#include "vmlinux.h"
#undef proc_event
#undef config
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_tracing.h>

#include "socket_trace.h"
#include "common.bpf.h"
#include "selection.bpf.h"
#include "sockets.bpf.h"
#include "connections.bpf.h"
#include "data.bpf.h"
#include "tcp_health.bpf.h"      /* group "tcp" */
#include "syscall_latency.bpf.h" /* group "syscalls" */

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* ---- read/write-like syscalls ------------------------------------------ */

/* How the bytes of a syscall are laid out in user memory. */
enum io_shape {
	IO_BUFFER, /* one buffer */
	IO_IOVEC,  /* struct iovec[vlen] */
	IO_MSGHDR, /* struct user_msghdr */
	IO_MMSG,   /* struct mmsghdr[vlen]; the return value counts messages */
};

#include "uprobes/openssl.bpf.h" /* group "tls"; its ties are made in io_exit */
#include "uprobes/go_tls.bpf.h"  /* group "tls" */
#include "links.bpf.h"            /* group "links": what its probes call */
#include "uprobes/nginx_link.bpf.h" /* group "links": nginx's upstream module */
#include "uprobes/go_link.bpf.h"    /* group "links": Go net/http */
#include "link_node.bpf.h"          /* group "links": the Node.js preload's marks */

/*
 * The socket behind `fd` (0: not one we follow), from the thread's socket
 * cache when the fd still holds the file it held then.
 */
static __always_inline __u64 cached_sock_of_fd(struct io_task *t, __s64 fd)
{
	struct file *file = file_of_fd(fd);
	struct sock_cache_slot *slot = &t->socks[fd & (SOCK_CACHE_SLOTS - 1)];
	struct io_args *args = &t->io;
	struct sock *sk;

	if (!file)
		return 0;
	if (slot->file == (__u64)file) {
		args->sk_cached = 1;
		return slot->sk;
	}
	args->sk_cached = 0;
	sk = traced_sock_of_file(file);
	if (sk) {
		slot->file = (__u64)file;
		slot->sk = (__u64)sk;
	}
	return (__u64)sk;
}

/*
 * A cached socket the connection table does not know on that fd may be
 * stale: the fd was closed by another thread (or unseen, dup2) and its
 * file's memory reused for the new one. Then the walk decides, and the slot
 * is emptied. Returns the entry data on the fd belongs to, or NULL.
 */
static __always_inline struct connection *conn_of_io_exit(__u64 pid_tgid, struct io_task *t,
							  struct io_args *args)
{
	__u64 key = conn_key(pid_tgid >> 32, args->fd);
	struct connection *c = bpf_map_lookup_elem(&conn_info, &key);
	struct sock *sk;

	if (c && c->sk == args->sk)
		return c;
	if (args->sk_cached) {
		t->socks[args->fd & (SOCK_CACHE_SLOTS - 1)].file = 0;
		sk = traced_sock_of_fd(args->fd);
		if (!sk)
			return NULL;
		args->sk = (__u64)sk;
		if (c && c->sk == args->sk)
			return c;
	}
	return open_connection(pid_tgid, args->fd, (struct sock *)args->sk, ROLE_UNKNOWN, OPEN_EXISTING, c);
}

static __always_inline int io_enter(__u32 source, __u8 dir, __s64 fd, __u64 buf, __u64 vlen)
{
	struct io_args *args;
	struct io_task *t;
	__u64 pid_tgid;

	if (!current_selected(&pid_tgid))
		return 0;
	t = bpf_task_storage_get(&active_io_args, bpf_get_current_task_btf(), NULL,
				 BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!t)
		return 0; /* no memory: the exit counts it as missing */
	args = &t->io;
	/* Ingress: the exit's clock serves both (user space times received bytes
	 * by the exit); a clock read costs ~90 ns under kvm-clock
	 * (measured: bench/bpf-cost.ts). */
	args->ts_enter_ns = dir == DIR_EGRESS ? bpf_ktime_get_ns() : 0;
	args->buf = buf;
	args->fd = fd;
	args->vlen = vlen;
	args->sk = cached_sock_of_fd(t, fd);
	args->source = source;
	return 0;
}

static __always_inline int io_exit(__u8 source, __u8 dir, enum io_shape shape, long ret)
{
	struct io_args *saved, args;
	struct io_result x = { .args = &args, .dir = dir, .source = source };
	struct io_task *t;
	__u64 pid_tgid;

	if (!current_selected(&pid_tgid))
		return 0;
	x.pid_tgid = pid_tgid;
	x.ts_exit_ns = bpf_ktime_get_ns();
	t = bpf_task_storage_get(&active_io_args, bpf_get_current_task_btf(), NULL, 0);
	saved = t ? &t->io : NULL;
	if (!saved || saved->source != source) {
		stat_add(STAT_ARGS_MISSING, 1);
		return 0;
	}
	args = *saved;
	saved->source = 0;
	if (dir == DIR_INGRESS)
		args.ts_enter_ns = x.ts_exit_ns;
	if (ret <= 0 || !args.sk)
		return 0;

	x.conn = conn_of_io_exit(pid_tgid, t, &args);
	if (!x.conn)
		return 0;
	if (config.tls && tls_syscall_exit(t, &x, &args, shape)) {
		__u64 size = shape == IO_MMSG ? mmsg_bytes(args.buf, 0, ret) : ret;

		skip_ciphertext(&x, size);
		if (dir == DIR_EGRESS && (x.conn->flags & CONN_F_GO_TLS))
			go_tls_cipher_sent(&x, size);
		return 0;
	}
	if (connection_mode(x.conn) == MODE_MUTED) {
		/* *mmsg return a message count; every message's bytes count. */
		skip_muted(&x, shape == IO_MMSG ? mmsg_bytes(args.buf, 0, ret) : ret);
		return 0;
	}
	switch (shape) {
	case IO_BUFFER:
		capture_buffer(&x, ret);
		break;
	case IO_IOVEC:
		capture_iovecs(&x, ret, (const struct iovec *)args.buf, args.vlen);
		break;
	case IO_MSGHDR:
		capture_msghdr(&x, ret);
		break;
	case IO_MMSG:
		capture_mmsg(&x, ret);
		break;
	}
	return 0;
}

/* One enter/exit pair per syscall. Arguments: fd, buffer-ish pointer, count. */
#define IO_SYSCALL(name, source, dir, shape, vlen_arg)                              \
	SEC("tracepoint/syscalls/sys_enter_" #name)                                 \
	int tp_sys_enter_##name(struct trace_event_raw_sys_enter *ctx)              \
	{                                                                           \
		return io_enter(source, dir, (__s32)ctx->args[0], ctx->args[1], vlen_arg); \
	}                                                                           \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                  \
	int tp_sys_exit_##name(struct trace_event_raw_sys_exit *ctx)                \
	{                                                                           \
		return io_exit(source, dir, shape, ctx->ret);                       \
	}

IO_SYSCALL(read, SRC_READ, DIR_INGRESS, IO_BUFFER, 0)
IO_SYSCALL(write, SRC_WRITE, DIR_EGRESS, IO_BUFFER, 0)
IO_SYSCALL(recvfrom, SRC_RECVFROM, DIR_INGRESS, IO_BUFFER, 0)
IO_SYSCALL(sendto, SRC_SENDTO, DIR_EGRESS, IO_BUFFER, 0)
IO_SYSCALL(readv, SRC_READV, DIR_INGRESS, IO_IOVEC, ctx->args[2])
IO_SYSCALL(writev, SRC_WRITEV, DIR_EGRESS, IO_IOVEC, ctx->args[2])
IO_SYSCALL(recvmsg, SRC_RECVMSG, DIR_INGRESS, IO_MSGHDR, 0)
IO_SYSCALL(sendmsg, SRC_SENDMSG, DIR_EGRESS, IO_MSGHDR, 0)
IO_SYSCALL(recvmmsg, SRC_RECVMMSG, DIR_INGRESS, IO_MMSG, ctx->args[2])
IO_SYSCALL(sendmmsg, SRC_SENDMMSG, DIR_EGRESS, IO_MMSG, ctx->args[2])

/* ---- connection lifecycle ---------------------------------------------- */

struct connect_args {
	__u64 sk; /* socket behind fd at entry; 0: not one we follow */
	__s32 fd;
	__u32 _pad;
};

/* pid_tgid -> connect() in flight; also for non-sockets we follow (see io_args). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct connect_args);
} active_connect_args SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_connect")
int tp_sys_enter_connect(struct trace_event_raw_sys_enter *ctx)
{
	struct connect_args args = {};
	__u64 pid_tgid;

	if (!current_selected(&pid_tgid))
		return 0;
	args.fd = ctx->args[0];
	args.sk = (__u64)traced_sock_of_fd(args.fd);
	bpf_map_update_elem(&active_connect_args, &pid_tgid, &args, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int tp_sys_exit_connect(struct trace_event_raw_sys_exit *ctx)
{
	struct connect_args *saved, args;
	__u64 pid_tgid, key;

	if (!current_selected(&pid_tgid))
		return 0;
	saved = bpf_map_lookup_elem(&active_connect_args, &pid_tgid);
	if (!saved) {
		stat_add(STAT_ARGS_MISSING, 1);
		return 0;
	}
	args = *saved;
	bpf_map_delete_elem(&active_connect_args, &pid_tgid);
	/* EINPROGRESS: a non-blocking connect whose local port is already bound. */
	if ((ctx->ret != 0 && ctx->ret != -EINPROGRESS) || !args.sk)
		return 0;
	key = conn_key(pid_tgid >> 32, args.fd);
	open_connection(pid_tgid, args.fd, (struct sock *)args.sk, ROLE_CLIENT, OPEN_CONNECT,
			bpf_map_lookup_elem(&conn_info, &key));
	return 0;
}

/*
 * accept()/accept4() need no entry program: the new fd is the return value
 * and its socket is in the fd table by then. This also catches an accept
 * that was already blocked when the agent attached.
 */
static __always_inline int accept_exit(long ret)
{
	__u64 pid_tgid, key;
	struct sock *sk;

	if (ret < 0 || !current_selected(&pid_tgid))
		return 0;
	sk = traced_sock_of_fd(ret);
	if (!sk)
		return 0;
	key = conn_key(pid_tgid >> 32, ret);
	open_connection(pid_tgid, ret, sk, ROLE_SERVER, OPEN_ACCEPT, bpf_map_lookup_elem(&conn_info, &key));
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept")
int tp_sys_exit_accept(struct trace_event_raw_sys_exit *ctx)
{
	return accept_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int tp_sys_exit_accept4(struct trace_event_raw_sys_exit *ctx)
{
	return accept_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_close")
int tp_sys_enter_close(struct trace_event_raw_sys_enter *ctx)
{
	__u64 pid_tgid;

	if (!current_selected(&pid_tgid))
		return 0;
	close_connection(pid_tgid, ctx->args[0], CLOSE_SYSCALL);
	return 0;
}

/*
 * An fd can name a new file without a close() we see: dup2/dup3 onto it, and
 * close_range. Forget its connection at once, as close() does: else the
 * next I/O on the fd could be taken for the old connection's (the socket
 * cache and the conn_info check compare kernel addresses, which a new file
 * or socket may reuse).
 */
static __always_inline int fd_replaced(__s64 oldfd, __s64 newfd)
{
	__u64 pid_tgid;

	if (oldfd == newfd || !current_selected(&pid_tgid))
		return 0;
	close_connection(pid_tgid, newfd, CLOSE_REPLACED);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_dup2")
int tp_sys_enter_dup2(struct trace_event_raw_sys_enter *ctx)
{
	return fd_replaced(ctx->args[0], ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_enter_dup3")
int tp_sys_enter_dup3(struct trace_event_raw_sys_enter *ctx)
{
	return fd_replaced(ctx->args[0], ctx->args[1]);
}

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
/* fds looked at per close_range from its first: the rest stay to the LRU and
 * to the exit's check (a process with more open fds than this is rare). */
#define CLOSE_RANGE_MAX_FDS 1024

struct close_range_walk {
	__u64 pid_tgid;
	__u32 first;
	__u32 last;
};

static long close_range_step(__u64 i, void *ctx)
{
	struct close_range_walk *w = ctx;
	__u64 fd = (__u64)w->first + i;

	if (fd > w->last)
		return 1;
	close_connection(w->pid_tgid, (__s32)fd, CLOSE_SYSCALL);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_close_range")
int tp_sys_enter_close_range(struct trace_event_raw_sys_enter *ctx)
{
	struct close_range_walk w = { .first = ctx->args[0], .last = ctx->args[1] };

	/* CLOEXEC marks the fds, it closes nothing now (exec's close is not seen
	 * either: the process is a new program, its connections end with it). */
	if ((ctx->args[2] & CLOSE_RANGE_CLOEXEC) || w.first > w.last || !current_selected(&w.pid_tgid))
		return 0;
	bpf_loop(CLOSE_RANGE_MAX_FDS, close_range_step, &w, 0);
	return 0;
}

/* ---- process lifecycle -------------------------------------------------- */

/* User space acts on these at once: always wake the reader. */
static __always_inline void emit_proc_event(__u32 type, __u32 tgid, __u32 ppid, __u32 flags,
					    __s32 exit_code, const char *filename)
{
	struct proc_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		count_write(-1);
		return;
	}
	e->type = type;
	e->tgid = tgid;
	e->ppid = ppid;
	e->flags = flags;
	e->ts_ns = bpf_ktime_get_ns();
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->exit_code = exit_code;
	e->_pad = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	__builtin_memset(e->filename, 0, sizeof(e->filename));
	if (filename)
		bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), filename);
	bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
	count_write(0);
}

/* In the agent's pid namespace: 0 when the parent is outside it, as getppid() says there. */
static __always_inline __u32 real_parent_tgid(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	if (!pidns_set())
		return BPF_CORE_READ(task, real_parent, tgid);
	/* The current task is in the agent's namespace (current_pid_tgid said so): its level is that one's. */
	return task_tgid_at(BPF_CORE_READ(task, real_parent), task_pidns_level(task));
}

SEC("tracepoint/sched/sched_process_exec")
int tp_sched_process_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	char comm[TASK_COMM_LEN] = {};
	__u8 why = SELECTED_BY_KERNEL;
	__u32 flags = 0, tgid;
	__u64 pid_tgid;

	if (!current_pid_tgid(&pid_tgid))
		return 0;
	tgid = pid_tgid >> 32;
	if (tgid == config.agent_tgid)
		return 0;
	if (!is_selected(tgid)) {
		/* comm is already the new program's name here. */
		bpf_get_current_comm(comm, sizeof(comm));
		if (bpf_map_lookup_elem(&exec_names, comm)) {
			/* If selected_tgids is full the event still goes out,
			 * unflagged: user space may select the process itself. */
			if (!bpf_map_update_elem(&selected_tgids, &tgid, &why, BPF_NOEXIST))
				flags = PROC_F_SELECTED;
		} else if (!config.report_execs) {
			return 0;
		}
	}
	emit_proc_event(EV_EXEC, tgid, real_parent_tgid(), flags, 0,
			(const char *)ctx + (ctx->__data_loc_filename & 0xFFFF));
	return 0;
}

/* group_dead joined this tracepoint late; older kernels: count live threads. */
static __always_inline bool group_died(struct trace_event_raw_sched_process_exit *ctx)
{
	struct task_struct *task;

	if (bpf_core_field_exists(ctx->group_dead))
		return ctx->group_dead;
	task = (struct task_struct *)bpf_get_current_task();
	return BPF_CORE_READ(task, signal, live.counter) == 0;
}

SEC("tracepoint/sched/sched_process_exit")
int tp_sched_process_exit(struct trace_event_raw_sched_process_exit *ctx)
{
	struct task_struct *task;
	__u64 pid_tgid;
	__u32 tgid;

	if (!group_died(ctx) || !current_selected(&pid_tgid))
		return 0;
	tgid = pid_tgid >> 32;
	/* The tgid may be reused by an unrelated process. */
	bpf_map_delete_elem(&selected_tgids, &tgid);
	task = (struct task_struct *)bpf_get_current_task();
	/* Wait-status encoding: exit status << 8 | terminating signal. */
	emit_proc_event(EV_EXIT, tgid, real_parent_tgid(), 0, BPF_CORE_READ(task, exit_code), NULL);
	return 0;
}

/*
 * The classic sched_process_fork tracepoint carries thread ids only; the raw
 * tracepoint hands us both task_structs, so a new thread (same tgid) can be
 * told from a new process. Runs in the parent before the child is woken, so
 * the child is selected before its first syscall.
 */
SEC("raw_tp/sched_process_fork")
int raw_tp_sched_process_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *parent = (struct task_struct *)ctx->args[0];
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	__u32 parent_tgid, child_tgid;
	__u8 why = SELECTED_BY_KERNEL;
	__u32 flags = 0;
	__u64 cgroup_id;

	if (!config.follow_forks)
		return 0;
	if (pidns_set()) {
		/* Pids of the agent's namespace. The child's active namespace is
		 * at its own pid's deepest level; a child created elsewhere
		 * (CLONE_NEWPID, or by a host process entering the namespace)
		 * has no tgid here, or a parent without one: not followed (a
		 * cgroup selection still catches it at its first syscall). */
		__u32 level = task_pidns_level(child);

		child_tgid = task_tgid_at(child, level);
		parent_tgid = task_tgid_at(parent, level);
		if (!child_tgid || !parent_tgid)
			return 0;
	} else {
		parent_tgid = BPF_CORE_READ(parent, tgid);
		child_tgid = BPF_CORE_READ(child, tgid);
	}
	if (child_tgid == parent_tgid || parent_tgid == config.agent_tgid)
		return 0;
	if (!config.select_all) {
		if (bpf_map_lookup_elem(&selected_tgids, &parent_tgid)) {
			if (!bpf_map_update_elem(&selected_tgids, &child_tgid, &why, BPF_NOEXIST))
				flags = PROC_F_SELECTED;
		} else {
			/* Selected by cgroup: the child is in the same cgroup. */
			cgroup_id = bpf_get_current_cgroup_id();
			if (!bpf_map_lookup_elem(&selected_cgroups, &cgroup_id))
				return 0;
		}
	}
	emit_proc_event(EV_FORK, child_tgid, parent_tgid, flags, 0, NULL);
	return 0;
}
