// Opens the real kernel session through the native addon: the one place that
// turns the addon's errors into sentences a user can act on.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { KernelSession, KernelSessionOptions } from './capture-engine';
import { readFdSyscalls } from './fd-syscalls';
import { loadNativeBinding } from './native-binding';
import { prerequisiteProblem } from './privileges';
import type { ResolvedCgroup } from './process-selection';
import { HOST_SYSCALL_ARCH } from './syscall-names';

/** An error meant to be shown as is: one sentence, no stack. */
export class CaptureSetupError extends Error {}

export function openKernelSession(opts: KernelSessionOptions): KernelSession {
  const problem = prerequisiteProblem();
  if (problem) throw new CaptureSetupError(problem);
  const binding = loadNativeBinding();
  let tracefs: string;
  try {
    tracefs = binding.ensureTracefs();
  } catch (err) {
    throw new CaptureSetupError(`tracefs is not mounted and could not be mounted: ${(err as Error).message}`);
  }
  const fdSyscalls = fdSyscallsFor(opts, tracefs);
  try {
    return new binding.SocketTraceSession({ ...opts, syscalls: { ...opts.syscalls, fdSyscalls } });
  } catch (err) {
    throw explain(err as Error & { code?: string; op?: string });
  }
}

/**
 * Syscall latency: slow calls name their fd, so the kernel needs to know which
 * syscalls take one; tracefs says, unless the options already do. Only read
 * when slow calls are reported.
 */
function fdSyscallsFor(opts: KernelSessionOptions, tracefs: string): readonly number[] {
  if (opts.syscalls.fdSyscalls !== undefined) return opts.syscalls.fdSyscalls;
  if (!(opts.groups.syscalls && opts.syscalls.slowNs > 0)) return [];
  try {
    return readFdSyscalls(tracefs, HOST_SYSCALL_ARCH).numbers;
  } catch (err) {
    throw new CaptureSetupError(`cannot read the syscall formats under ${tracefs}/events/syscalls: ${(err as Error).message}`);
  }
}

function explain(err: Error & { code?: string; op?: string }): Error {
  const first = err.message.split('\n')[0];
  switch (err.code) {
    case 'EPERM':
    case 'EACCES':
      return new CaptureSetupError(
        `the kernel refused to ${err.op ?? 'load'} the eBPF programs (${err.code}): run as root or with CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE, and check that no LSM policy forbids bpf(): ${first}`,
      );
    case 'ENOENT':
      return new CaptureSetupError(`a tracepoint or kernel object the agent needs is missing (${first})`);
    default:
      return err;
  }
}

/** Finds the cgroup2 mount point from /proc/self/mountinfo. */
export function cgroup2Mount(mountinfo = '/proc/self/mountinfo'): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(mountinfo, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const fstype = line.slice(sep + 3).split(' ')[0];
    if (fstype === 'cgroup2') return line.split(' ')[4];
  }
  return undefined;
}

/**
 * Resolves a --cgroup argument: an absolute directory under the cgroup2 mount,
 * or a path relative to it. The cgroup v2 id is the directory's inode number.
 */
export function resolveCgroupV2(arg: string): ResolvedCgroup | undefined {
  const mount = cgroup2Mount();
  if (!mount) return undefined;
  const abs = arg.startsWith(mount + '/') || arg === mount ? arg : path.join(mount, arg);
  let st: fs.BigIntStats;
  try {
    st = fs.statSync(abs, { bigint: true });
  } catch {
    return undefined;
  }
  if (!st.isDirectory()) return undefined;
  const rel = '/' + path.relative(mount, abs);
  return { id: st.ino, relPath: rel === '/.' ? '/' : rel };
}
