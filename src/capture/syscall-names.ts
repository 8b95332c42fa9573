// Syscall and errno names for numbers the kernel reports. The tables are
// generated from the kernel headers at build time (scripts/gen-syscall-table.js),
// never typed by hand. An unknown number keeps its number: `syscall_<nr>`,
// `errno_<n>`; a guessed name would be a wrong value.

import { ERRNO_NAMES, SYSCALL_NAMES } from './syscall-table.generated';

export type SyscallArch = keyof typeof SYSCALL_NAMES;

/** The syscall table of a Node `process.arch`; undefined for an architecture we have no table for. */
export function syscallArch(nodeArch: string = process.arch): SyscallArch | undefined {
  return nodeArch === 'x64' ? 'x86_64' : nodeArch === 'arm64' ? 'arm64' : undefined;
}

/** This machine's table (undefined on an architecture we have none for: numbers are then kept as numbers). */
export const HOST_SYSCALL_ARCH: SyscallArch | undefined = syscallArch();

export function syscallName(nr: number, arch: SyscallArch | undefined): string {
  return (arch !== undefined ? SYSCALL_NAMES[arch][nr] : undefined) ?? `syscall_${nr}`;
}

/** The number of a syscall name on this architecture (for tests and filters). */
export function syscallNumber(name: string, arch: SyscallArch | undefined): number | undefined {
  if (arch === undefined) return undefined;
  for (const [nr, n] of Object.entries(SYSCALL_NAMES[arch])) if (n === name) return Number(nr);
  return undefined;
}

/** ENOENT for 2; `errno_<n>` for a number the headers do not name. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `errno_${errno}`;
}
