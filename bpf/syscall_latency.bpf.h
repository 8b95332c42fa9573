/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Syscall latency (program group "syscalls": every program here is named
 * syslat_*). Two raw tracepoints, sys_enter and sys_exit, for every syscall
 * of the selected processes:
 *
 *   sys_enter: the start time and syscall number, in the thread's task
 *              storage (freed with the task, so no bound to pick);
 *   sys_exit:  the duration goes into a cumulative log2 histogram per
 *              (tgid, syscall, errno) in `syscall_hists`; no event per call.
 *              A call over syscall_config.slow_ns is also reported once as
 *              an EV_SLOW_SYSCALL record, rate limited per CPU, with what its
 *              fd named at that moment (resolved here: a later readlink in
 *              /proc could name another file).
 *
 * Measured choices (docs/ARCHITECTURE.md has the figures):
 *   - raw tracepoints rather than tracepoint/raw_syscalls/sys_{enter,exit}:
 *     no perf trace record is filled before the program runs;
 *   - task storage rather than a hash keyed by thread id for the start:
 *     cheaper, and no bound to pick or entries to age out;
 *   - the selection maps first in both programs, rather than a "selected in
 *     this epoch" mark in task storage: that saved a selected process ~15 ns
 *     per syscall and cost every unselected one ~40 ns.
 * Layouts: syscall_latency.h (through socket_trace.h).
 */
#ifndef EBPF_OTEL_SYSCALL_LATENCY_BPF_H
#define EBPF_OTEL_SYSCALL_LATENCY_BPF_H

#include "common.bpf.h"
#include "selection.bpf.h"
#include "sockets.bpf.h"

#ifndef S_IFIFO
#define S_IFIFO 0010000
#endif
/* The largest errno a syscall returns (include/linux/err.h MAX_ERRNO). */
#define SYSLAT_MAX_ERRNO 4095
/* Path walk: dentries and mount crossings looked at. */
#define SLOW_PATH_STEPS 32

const volatile struct syscall_config syslat_config = {};

/*
 * The one place the current task's ids are read: as the agent's pid
 * namespace sees them (common.bpf.h); false for a task outside it.
 */
static __always_inline bool syslat_pid_tgid(__u64 *pid_tgid)
{
	return current_pid_tgid(pid_tgid);
}

/* A syscall in flight on this thread. */
struct syslat_start {
	__u64 ts_ns;  /* 0: none (consumed, or never recorded) */
	__u32 nr;
	__u32 epoch;  /* syslat_epoch at entry */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct syslat_start);
} syslat_starts SEC(".maps");

/*
 * Bumped by user space whenever it deselects a process or cgroup. A start
 * recorded under an older epoch is not trusted: its exit may have happened
 * while the process was deselected (nobody consumed it) and the exit now
 * seen belong to a later call whose entry was never recorded.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} syslat_epoch SEC(".maps");

/* Cumulative histograms; the loader sets max_entries. Not preallocated:
 * memory follows the keys in use. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, struct syscall_hist_key);
	__type(value, struct syscall_hist);
} syscall_hists SEC(".maps");

/* nr -> 1 when the syscall's first argument is a file descriptor; filled by
 * user space from the tracefs formats before attach. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SYSLAT_MAX_NR);
	__type(key, __u32);
	__type(value, __u8);
} fd_syscalls SEC(".maps");

/* Token bucket of slow-call reports, per CPU. */
struct slow_bucket {
	__u64 credit_ns;
	__u64 last_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct slow_bucket);
} slow_buckets SEC(".maps");

/* Path assembly, written backwards from the middle: twice the path so that
 * every masked write stays inside. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, char[2 * SLOW_PATH_LEN]);
} slow_path_scratch SEC(".maps");

static const struct syscall_hist syslat_zero_hist;

static __always_inline __u32 current_epoch(void)
{
	__u32 zero = 0;
	__u32 *epoch = bpf_map_lookup_elem(&syslat_epoch, &zero);

	return epoch ? *epoch : 0;
}

/*
 * A 32-bit process's syscall (or an int 0x80 from a 64-bit one) uses the
 * compat table: its number would be named from the wrong table.
 * x86: TS_COMPAT in thread_info.status (arch/x86/include/asm/thread_info.h),
 * set at a compat entry and cleared only on the way back to user space,
 * after sys_exit. arm64: TIF_32BIT (bit 22) in thread_info.flags
 * (arch/arm64/include/asm/thread_info.h).
 */
static __always_inline bool compat_syscall(struct task_struct *task)
{
#if defined(__TARGET_ARCH_x86)
	return task->thread_info.status & 0x0002;
#elif defined(__TARGET_ARCH_arm64)
	return task->thread_info.flags & (1UL << 22);
#else
	return false;
#endif
}

/* floor(log2(v)) for v > 0, without a loop. */
static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 r = 0, shift;

	shift = (v > 0xFFFFFFFFULL) << 5; v >>= shift; r |= shift;
	shift = (v > 0xFFFF) << 4; v >>= shift; r |= shift;
	shift = (v > 0xFF) << 3; v >>= shift; r |= shift;
	shift = (v > 0xF) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	return r | (__u32)(v >> 1);
}

/* Bucket of d ns: (2^(i-1), 2^i] scaled by 2^SYSLAT_FIRST_LOG2, upper-inclusive. */
static __always_inline __u32 syslat_bucket(__u64 d)
{
	__u32 ceil_log2;

	if (d <= (1ULL << SYSLAT_FIRST_LOG2))
		return 0;
	ceil_log2 = log2_u64(d - 1) + 1;
	if (ceil_log2 - SYSLAT_FIRST_LOG2 >= SYSLAT_BUCKETS - 1)
		return SYSLAT_BUCKETS - 1;
	return ceil_log2 - SYSLAT_FIRST_LOG2;
}

static __always_inline void record_duration(struct syscall_hist_key *key, __u64 d)
{
	struct syscall_hist *h = bpf_map_lookup_elem(&syscall_hists, key);
	__u32 bucket;
	__u64 old;
	int i, err;

	if (!h) {
		err = bpf_map_update_elem(&syscall_hists, key, &syslat_zero_hist, BPF_NOEXIST);
		if (err && err != -EEXIST) {
			stat_add(STAT_SYSLAT_MAP_FULL, 1);
			return;
		}
		h = bpf_map_lookup_elem(&syscall_hists, key);
		if (!h)
			return; /* deleted by user space in between: its process is gone */
	}
	/* No count: it is the sum of the buckets, so a reader never sees the two
	 * disagree (and there is one atomic add less per call). */
	__sync_fetch_and_add(&h->sum_ns, d);
	bucket = syslat_bucket(d);
	if (bucket < SYSLAT_BUCKETS)
		__sync_fetch_and_add(&h->buckets[bucket], 1);
	/* Another CPU may raise max between our read and write: retry a few
	 * times; each failed exchange means someone else moved it up. */
	for (i = 0; i < 4; i++) {
		old = h->max_ns;
		if (d <= old)
			break;
		if (__sync_val_compare_and_swap(&h->max_ns, old, d) == old)
			break;
	}
}

/* State of the path walk between bpf_loop steps (all scalars). */
struct path_walk {
	struct dentry *d;
	struct mount *mnt;
	__u32 pos;  /* the path so far starts at scratch[pos] */
	__u8 done;  /* reached the namespace's root */
	__u8 truncated;
};

/* One step up: a component, or a crossing into the parent mount. */
static int path_step(__u32 index, void *ctx)
{
	struct path_walk *w = ctx;
	/* Locals: CO-RE reads must not relocate our own struct's fields. */
	struct dentry *d = w->d, *parent, *mnt_root;
	struct mount *mnt = w->mnt, *parent_mnt;
	const unsigned char *name;
	__u32 zero = 0, len, pos;
	char *buf;

	mnt_root = BPF_CORE_READ(mnt, mnt.mnt_root);
	parent = BPF_CORE_READ(d, d_parent);
	if (d == mnt_root || d == parent) {
		parent_mnt = BPF_CORE_READ(mnt, mnt_parent);
		if (parent_mnt == mnt || !parent_mnt) {
			w->done = 1;
			return 1;
		}
		w->d = BPF_CORE_READ(mnt, mnt_mountpoint);
		w->mnt = parent_mnt;
		return 0;
	}
	buf = bpf_map_lookup_elem(&slow_path_scratch, &zero);
	if (!buf)
		return 1;
	len = BPF_CORE_READ(d, d_name.len);
	name = BPF_CORE_READ(d, d_name.name);
	pos = w->pos;
	if (len + 1 > pos || pos >= SLOW_PATH_LEN) {
		w->truncated = 1;
		return 1;
	}
	pos -= len;
	/* The masks only convince the verifier: pos < SLOW_PATH_LEN already. */
	bpf_probe_read_kernel(&buf[pos & (SLOW_PATH_LEN - 1)], len & (SLOW_PATH_LEN - 1), name);
	pos -= 1;
	buf[pos & (SLOW_PATH_LEN - 1)] = '/';
	w->pos = pos;
	w->d = parent;
	return 0;
}

/*
 * The file's path in its mount namespace, as d_path() would give it up to
 * the namespace's root: walked up from the dentry, crossing into the parent
 * mount at each mount root (struct mount around the vfsmount, mnt_parent,
 * mnt_mountpoint). Written backwards so that when it does not fit, the
 * leading components are what is lost (flagged). bpf_loop: the verifier
 * checks one step, not every path through SLOW_PATH_STEPS of them.
 */
static __always_inline void slow_file_path(struct slow_syscall_event *e, struct file *file)
{
	struct vfsmount *vfsmnt = BPF_CORE_READ(file, f_path.mnt);
	struct path_walk w = {};
	__u32 zero = 0;
	char *buf;

	buf = bpf_map_lookup_elem(&slow_path_scratch, &zero);
	if (!buf || !vfsmnt)
		return;
	w.d = BPF_CORE_READ(file, f_path.dentry);
	w.mnt = (struct mount *)((void *)vfsmnt - bpf_core_field_offset(struct mount, mnt));
	w.pos = SLOW_PATH_LEN - 1;
	buf[SLOW_PATH_LEN - 1] = '\0';
	bpf_loop(SLOW_PATH_STEPS, path_step, &w, 0);
	if (!w.done)
		e->flags |= SLOW_F_PATH_TRUNCATED;
	if (w.pos == SLOW_PATH_LEN - 1 && w.done) {
		w.pos -= 1; /* the root itself */
		buf[SLOW_PATH_LEN - 2] = '/';
	}
	bpf_probe_read_kernel(e->path, SLOW_PATH_LEN, &buf[w.pos & (SLOW_PATH_LEN - 1)]);
}

/* What fd names now, filled into the event (FDT_NONE when not open). */
static __always_inline void slow_fd_target(struct slow_syscall_event *e, __s32 fd)
{
	struct file *file = file_of_fd(fd);
	struct dentry *dentry;
	struct socket *sock;
	struct sock *sk;
	__u16 mode;

	if (!file)
		return;
	mode = BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT;
	e->mode = mode;
	e->ino = BPF_CORE_READ(file, f_inode, i_ino);
	if (mode == S_IFSOCK) {
		sock = BPF_CORE_READ(file, private_data);
		sk = BPF_CORE_READ(sock, sk);
		if (!sk)
			return;
		e->socket_family = BPF_CORE_READ(sk, __sk_common.skc_family);
		if (e->socket_family == AF_INET || e->socket_family == AF_INET6) {
			read_sock_tuple(sk, &e->tuple, &e->netns);
			e->target = FDT_SOCKET_INET;
		} else {
			e->target = FDT_SOCKET;
		}
		return;
	}
	dentry = BPF_CORE_READ(file, f_path.dentry);
	/* d_path() hands a dentry with d_dname (pipes, anon inodes) to the
	 * filesystem, which makes up the name from the inode; so does user space. */
	if (BPF_CORE_READ(dentry, d_op, d_dname)) {
		e->target = FDT_PSEUDO;
		bpf_probe_read_kernel_str(e->path, SLOW_PATH_LEN, BPF_CORE_READ(dentry, d_name.name));
		return;
	}
	e->target = FDT_FILE;
	/* d_unlinked(): unhashed and not a root */
	if (!BPF_CORE_READ(dentry, d_hash.pprev) && BPF_CORE_READ(dentry, d_parent) != dentry)
		e->flags |= SLOW_F_DELETED;
	slow_file_path(e, file);
}

/* Token bucket: credit grows 1 per ns, capped at one second's worth. */
static __always_inline bool slow_allowed(__u64 now)
{
	__u32 zero = 0;
	struct slow_bucket *b = bpf_map_lookup_elem(&slow_buckets, &zero);
	__u64 credit;

	if (!b)
		return false;
	credit = b->credit_ns + (now - b->last_ns);
	if (credit > 1000000000ULL)
		credit = 1000000000ULL;
	b->last_ns = now;
	if (credit < syslat_config.slow_cost_ns) {
		b->credit_ns = credit;
		return false;
	}
	b->credit_ns = credit - syslat_config.slow_cost_ns;
	return true;
}

static __noinline void report_slow(struct bpf_raw_tracepoint_args *ctx, const struct syscall_hist_key *key,
				   __u64 start_ns, __u64 now)
{
	struct slow_syscall_event *e;
	__u64 pid_tgid;
	__u32 nr = key->nr;
	__u8 *fd_based;

	if (!slow_allowed(now)) {
		stat_add(STAT_SLOW_DROPPED, 1);
		return;
	}
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_write(-1);
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->type = EV_SLOW_SYSCALL;
	e->tgid = key->tgid;
	e->tid = syslat_pid_tgid(&pid_tgid) ? (__u32)pid_tgid : 0;
	e->nr = nr;
	e->ret = (long)ctx->args[1];
	e->err = key->err;
	e->ts_enter_ns = start_ns;
	e->duration_ns = now - start_ns;
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->fd = -1;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	fd_based = bpf_map_lookup_elem(&fd_syscalls, &nr);
	if (fd_based && *fd_based) {
		/* The argument as the syscall used it: pt_regs keep it until return. */
		e->fd = (__s32)PT_REGS_PARM1_CORE_SYSCALL((struct pt_regs *)ctx->args[0]);
		slow_fd_target(e, e->fd);
	}
	bpf_ringbuf_submit(e, 0);
	count_write(0);
}

SEC("raw_tp/sys_enter")
int syslat_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	struct syslat_start *start;
	__u64 pid_tgid;

	if (!syslat_pid_tgid(&pid_tgid) || !is_selected(pid_tgid >> 32))
		return 0;
	start = bpf_task_storage_get(&syslat_starts, bpf_get_current_task_btf(), NULL,
				     BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!start)
		return 0;
	start->nr = ctx->args[1];
	start->epoch = current_epoch();
	start->ts_ns = bpf_ktime_get_ns();
	return 0;
}

SEC("raw_tp/sys_exit")
int syslat_sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct syscall_hist_key key;
	__u64 pid_tgid;
	struct syslat_start *start;
	struct task_struct *task;
	__u64 now, start_ns;
	long ret;

	if (!syslat_pid_tgid(&pid_tgid) || !is_selected(pid_tgid >> 32))
		return 0;
	now = bpf_ktime_get_ns();
	task = bpf_get_current_task_btf();
	start = bpf_task_storage_get(&syslat_starts, task, NULL, 0);
	if (!start || !start->ts_ns || start->epoch != current_epoch()) {
		stat_add(STAT_SYSLAT_NO_START, 1);
		return 0;
	}
	start_ns = start->ts_ns;
	start->ts_ns = 0;
	if (compat_syscall(task)) {
		stat_add(STAT_SYSLAT_COMPAT, 1);
		return 0;
	}
	ret = ctx->args[1];
	key.tgid = pid_tgid >> 32;
	key.nr = start->nr;
	key.err = ret < 0 && ret >= -SYSLAT_MAX_ERRNO && key.nr != syslat_config.sigreturn_nr ? -ret : 0;
	record_duration(&key, now - start_ns);
	if (syslat_config.slow_ns && now - start_ns >= syslat_config.slow_ns)
		report_slow(ctx, &key, start_ns, now);
	return 0;
}

#endif /* EBPF_OTEL_SYSCALL_LATENCY_BPF_H */
