/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Which processes are traced. User space fills the three maps; the kernel
 * adds tgids itself at exec (exec_names) and fork (config.follow_forks) so a
 * new process is captured from its first syscall, and drops them at exit.
 */
#ifndef EBPF_OTEL_SELECTION_BPF_H
#define EBPF_OTEL_SELECTION_BPF_H

#include "common.bpf.h"

/* Value of a selected_tgids entry the kernel inserts itself. */
#define SELECTED_BY_KERNEL 1

/* tgid -> why it was selected (user space's business; the kernel writes 1). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} selected_tgids SEC(".maps");

/* cgroup v2 id -> 1: every process in the cgroup is traced. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u8);
} selected_cgroups SEC(".maps");

/*
 * Non-zero once user space may have stored a cgroup in selected_cgroups (it
 * sets this first, through the skeleton's mmap of .bss, and never clears
 * it: a stale 1 costs only the lookup it would have saved). While it is 0,
 * an unselected process leaves after the tgid lookup, without reading its
 * cgroup id or looking it up (measured: bench/bpf-cost.ts).
 */
volatile __u32 cgroups_selected;

/* comm after exec (NUL padded to TASK_COMM_LEN) -> 1. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, char[TASK_COMM_LEN]);
	__type(value, __u8);
} exec_names SEC(".maps");

/*
 * Whether a tgid of the agent's pid namespace is traced. An unselected
 * process pays the tgid lookup, and the cgroup one only once a cgroup has
 * been selected, and nothing else. Callers got the tgid from current_selected() or task_tgid_at(), so
 * a task outside the agent's namespace never gets here.
 */
static __always_inline bool is_selected(__u32 tgid)
{
	__u64 cgroup_id;

	if (tgid == config.agent_tgid)
		return false;
	if (config.select_all)
		return true;
	if (bpf_map_lookup_elem(&selected_tgids, &tgid))
		return true;
	if (!cgroups_selected)
		return false;
	cgroup_id = bpf_get_current_cgroup_id();
	return bpf_map_lookup_elem(&selected_cgroups, &cgroup_id) != NULL;
}

/*
 * The first check of every syscall program: the current task's pid_tgid (in
 * the agent's pid namespace) when it is traced. A task outside that
 * namespace is not, even under select_all, before any map is looked at.
 */
static __always_inline bool current_selected(__u64 *pid_tgid)
{
	return current_pid_tgid(pid_tgid) && is_selected(*pid_tgid >> 32);
}

#endif /* EBPF_OTEL_SELECTION_BPF_H */
