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
 * Wake-up policy for routine records. wakeup_bytes == 0: flags 0, the ring's
 * own policy, which wakes the reader whenever it has caught up, so every
 * record is delivered at once. Otherwise only wake once that much data
 * waits; the reader's poll timeout picks up the rest.
 */
static __always_inline __u64 batched_wakeup(void)
{
	if (!config.wakeup_bytes)
		return 0;
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= config.wakeup_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

#endif /* EBPF_OTEL_COMMON_BPF_H */
