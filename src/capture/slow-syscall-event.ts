// One syscall slower than the configured threshold, as the syscalls group
// reports it (EV_SLOW_SYSCALL); re-exported by events.ts.

import type { SocketTuple } from './events';

/** What a slow call's fd named when the call returned (resolved in the kernel). */
export type FdTarget =
  | { readonly kind: 'file'; readonly path: string; readonly truncated: boolean; readonly deleted: boolean }
  | { readonly kind: 'socket'; readonly tuple: SocketTuple | undefined; readonly family: number; readonly inode: number; readonly netns: number }
  /** How /proc/PID/fd names it: pipe:[ino], anon_inode:[eventfd], socket:[ino]... */
  | { readonly kind: 'pseudo'; readonly name: string; readonly inode: number };

/**
 * One syscall slower than the configured threshold (EV_SLOW_SYSCALL). Not a
 * CaptureEvent: it reaches its own handler, not the socket pipeline.
 */
export interface SlowSyscallEvent {
  readonly type: 'slow_syscall';
  readonly tgid: number;
  readonly tid: number;
  readonly comm: string;
  readonly cgroupId: bigint;
  /** Syscall number in the host's native table. */
  readonly nr: number;
  /** The return value as the kernel gave it. */
  readonly ret: number;
  /** errno of a failed call; 0 on success. */
  readonly err: number;
  readonly tsEnterNs: number;
  readonly durationNs: number;
  /** First argument of an fd-based syscall; undefined for the others. */
  readonly fd: number | undefined;
  /** What the fd named at exit; undefined when not fd-based or not open any more. */
  readonly target: FdTarget | undefined;
}
