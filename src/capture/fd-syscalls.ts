// Which syscalls take a file descriptor as their first argument, read from
// the kernel's own description of each syscall tracepoint
// (tracefs events/syscalls/sys_enter_<name>/format), never typed by hand.
// The kernel resolves that fd for slow-call reports.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { SYSLAT_MAX_NR } from './layout';
import { syscallNumber, type SyscallArch } from './syscall-names';

/**
 * Whether a sys_enter format's first argument is a file descriptor: an
 * integer (not a pointer: pipe's `int * fildes` is an array to fill) named
 * fd, fildes, mqdes or *fd (epfd, oldfd, ufd, pidfd, out_fd...), but not a
 * directory fd (dfd, olddfd, from_dfd, mountdirfd...), which only anchors a
 * path argument.
 */
export function firstArgIsFd(format: string): boolean {
  for (const line of format.split('\n')) {
    const m = /^\s*field:(.+?)\s*;\s*offset:/.exec(line);
    if (!m) continue;
    const decl = m[1]!;
    const name = /(\w+)$/.exec(decl)?.[1] ?? '';
    if (name.startsWith('common_') || name === '__syscall_nr') continue;
    if (decl.includes('*')) return false;
    if (/(?:^|_|old|new)dfd$|dirfd$/.test(name)) return false;
    return name === 'fildes' || name === 'mqdes' || name === 'fd_in' || /fd$/.test(name);
  }
  return false;
}

export interface FdSyscalls {
  /** Numbers (below SYSLAT_MAX_NR) of fd-based syscalls. */
  readonly numbers: number[];
  /** Tracepoint names with no number in the table (their calls are never fd-resolved). */
  readonly unmapped: string[];
}

/**
 * A tracepoint is named after its SYSCALL_DEFINE, which differs from the
 * table's __NR_ name in two ways only: a `new` prefix (newfstat is __NR_fstat,
 * newuname __NR_uname) and a `64` suffix (sendfile64 is __NR_sendfile on
 * 64-bit tables). Tried only when the name itself is not in the table.
 */
export function tableNumber(name: string, arch: SyscallArch | undefined): number | undefined {
  return (
    syscallNumber(name, arch) ??
    (name.startsWith('new') ? syscallNumber(name.slice(3), arch) : undefined) ??
    (name.endsWith('64') ? syscallNumber(name.slice(0, -2), arch) : undefined)
  );
}

/** Reads every sys_enter_* format under `tracefs` (its mount point). */
export function readFdSyscalls(tracefs: string, arch: SyscallArch | undefined): FdSyscalls {
  const dir = path.join(tracefs, 'events', 'syscalls');
  const numbers: number[] = [];
  const unmapped: string[] = [];
  for (const entry of fs.readdirSync(dir)) {
    if (!entry.startsWith('sys_enter_')) continue;
    let format: string;
    try {
      format = fs.readFileSync(path.join(dir, entry, 'format'), 'utf8');
    } catch {
      continue;
    }
    if (!firstArgIsFd(format)) continue;
    const name = entry.slice('sys_enter_'.length);
    const nr = tableNumber(name, arch);
    if (nr === undefined || nr >= SYSLAT_MAX_NR) unmapped.push(name);
    else numbers.push(nr);
  }
  return { numbers: numbers.sort((a, b) => a - b), unmapped: unmapped.sort() };
}
