/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * From a file descriptor of the current task to the struct sock behind it,
 * and from a struct sock to the tuple user space sees. All reads are CO-RE
 * probe reads: the fd table can change under us, a stale read is harmless.
 */
#ifndef EBPF_OTEL_SOCKETS_BPF_H
#define EBPF_OTEL_SOCKETS_BPF_H

#include "common.bpf.h"

/* Macros vmlinux.h cannot carry. */
#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif
#ifndef S_IFMT
#define S_IFMT 00170000
#endif
#ifndef S_IFSOCK
#define S_IFSOCK 0140000
#endif
#ifndef EINPROGRESS
#define EINPROGRESS 115
#endif
#ifndef EEXIST
#define EEXIST 17
#endif

/* The struct file behind `fd` in the current task's fd table, or NULL. */
static __always_inline struct file *file_of_fd(__s64 fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **slots;
	struct file *file = NULL;

	if (!fdt || fd < 0 || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	slots = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &slots[fd]))
		return NULL;
	return file;
}

/*
 * The socket behind `file` if it is one we follow: AF_INET/AF_INET6, TCP, and
 * UDP when config.capture_udp. NULL for files, pipes, AF_UNIX and the rest.
 */
static __always_inline struct sock *traced_sock_of_file(struct file *file)
{
	struct socket *sock;
	struct sock *sk;
	__u16 family;
	__u64 proto;

	if (!file)
		return NULL;
	if ((BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return NULL;
	/* A socket file's private_data is its struct socket. */
	sock = BPF_CORE_READ(file, private_data);
	sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return NULL;

	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return NULL;
	/* sk_protocol was a bitfield before 5.6: the probed read copes with both. */
	proto = BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol);
	if (proto == IPPROTO_TCP)
		return sk;
	if (config.capture_udp && proto == IPPROTO_UDP)
		return sk;
	return NULL;
}

/* The socket behind `fd` if it is one we follow (see traced_sock_of_file). */
static __always_inline struct sock *traced_sock_of_fd(__s64 fd)
{
	return traced_sock_of_file(file_of_fd(fd));
}

/*
 * Addresses stay as the kernel holds them (an AF_INET6 socket may carry
 * v4-mapped addresses; user space normalises). Ports become host order.
 */
static __always_inline void read_sock_tuple(struct sock *sk, struct sock_tuple *t, __u32 *netns)
{
	t->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	t->l4_proto = BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol);
	if (t->family == AF_INET6) {
		bpf_core_read(t->local_addr, sizeof(t->local_addr), &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(t->remote_addr, sizeof(t->remote_addr), &sk->__sk_common.skc_v6_daddr);
	} else {
		bpf_core_read(t->local_addr, sizeof(__u32), &sk->__sk_common.skc_rcv_saddr);
		bpf_core_read(t->remote_addr, sizeof(__u32), &sk->__sk_common.skc_daddr);
	}
	t->local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	t->remote_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	*netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

#endif /* EBPF_OTEL_SOCKETS_BPF_H */
