/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What every program shares: the load-time configuration, the event ring,
 * the counters. BPF side only: include after vmlinux.h and the libbpf headers.
 */
#ifndef EBPF_OTEL_COMMON_BPF_H
#define EBPF_OTEL_COMMON_BPF_H

#include "socket_trace.h"

/* Set by the loader through skel->rodata before load; the verifier then sees
 * constants and drops the branches a configuration does not use. */
const volatile struct agent_config config = {
	.capture_bytes = MAX_PAYLOAD,
	.wakeup_bytes = 0,
	.select_all = 0,
	.capture_udp = 0,
	.follow_forks = 1,
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20); /* the loader may resize before load */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT__COUNT);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void stat_add(__u32 index, __u64 n)
{
	__u64 *value = bpf_map_lookup_elem(&stats, &index);

	if (value)
		*value += n; /* per-CPU slot: no other writer */
}

/* Every ring write ends up in exactly one of these two counters. */
static __always_inline void count_write(long err)
{
	stat_add(err ? STAT_EVENTS_LOST : STAT_EVENTS_SENT, 1);
}

/*
 * Wake-up policy for a routine record of `size` bytes. wakeup_bytes == 0:
 * flags 0, the ring's own policy, which wakes the reader whenever it has
 * caught up, so every record is delivered at once. Otherwise wake only when
 * this record takes the waiting data across a multiple of wakeup_bytes: the
 * record that crosses the threshold wakes the reader itself, and while the
 * woken reader has not run yet the next records do not wake it again. Each
 * wake-up is a self-IPI and a wake_up inside the producer's run (~7 us of
 * BPF time on our VM): forcing one for every record from the threshold on
 * cost a 63-byte read 5 us when 16 KiB responses kept the ring above it
 * (measured: bench/bpf-cost.ts --path /large). The reader's poll timeout
 * picks up the rest, and a crossing made by two CPUs' records together.
 */
static __always_inline __u64 batched_wakeup(__u64 size)
{
	__u64 avail;

	if (!config.wakeup_bytes)
		return 0;
	avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	if (avail / config.wakeup_bytes != (avail + size) / config.wakeup_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

/*
 * Pids as the agent sees them. In the initial pid namespace (pidns_ino 0) they
 * are the kernel's own. In another one (a sidecar sharing its pod's pid
 * namespace) they are that namespace's: what the agent's /proc shows and what
 * its selection maps hold. A task is in the agent's namespace when that is its
 * *active* pid namespace, the one it was created in: exactly the pod's
 * processes, never the host's nor those of a namespace nested below.
 */
static __always_inline bool pidns_set(void)
{
	return config.pidns_ino != 0;
}

/*
 * The current task's pid_tgid in the agent's namespace. False when the task
 * is not in that namespace: it is never traced, whatever the selection says.
 * Every use of the current pid or tgid goes through here.
 */
static __always_inline bool current_pid_tgid(__u64 *pid_tgid)
{
	struct bpf_pidns_info ns;

	if (!pidns_set()) {
		*pid_tgid = bpf_get_current_pid_tgid();
		return true;
	}
	/* Fails unless the current task's active pid namespace is this one. */
	if (bpf_get_ns_current_pid_tgid(config.pidns_dev, config.pidns_ino, &ns, sizeof(ns)))
		return false;
	*pid_tgid = (__u64)ns.tgid << 32 | ns.pid;
	return true;
}

/* Depth of the task's active pid namespace (0: the initial one). */
static __always_inline __u32 task_pidns_level(struct task_struct *task)
{
	return BPF_CORE_READ(task, thread_pid, level);
}

/*
 * The thread-group id of `task` in the agent's namespace, which sits at
 * `level` of the pid hierarchy (see task_pidns_level of a task known to be
 * in it). 0 when the task has no pid there: it lives in an ancestor
 * namespace (the host), or in another namespace at that depth. A task's
 * struct pid holds one number per level, from the initial namespace down to
 * its own; the thread-group leader's pid is the tgid.
 */
static __always_inline __u32 task_tgid_at(struct task_struct *task, __u32 level)
{
	struct pid *pid = BPF_CORE_READ(task, group_leader, thread_pid);
	struct upid upid;

	if (!pid || BPF_CORE_READ(pid, level) < level)
		return 0;
	if (bpf_core_read(&upid, sizeof(upid), &pid->numbers[level]))
		return 0;
	if (BPF_CORE_READ(upid.ns, ns.inum) != config.pidns_ino)
		return 0;
	return upid.nr;
}

#endif /* EBPF_OTEL_COMMON_BPF_H */
