// The agent's pid namespace, and what the kernel side must be told of it.
//
// On a node (or a DaemonSet with hostPID) the agent is in the initial pid
// namespace: the kernel's pids are the ones /proc shows, and nothing changes.
// In a pod with shareProcessNamespace the agent's /proc shows the pod's
// namespace pids (pause is 1) while the kernel knows every task by its host
// pid. The BPF programs are then given the namespace (config.pidns_dev /
// pidns_ino) and translate: they trace only tasks of that namespace and report
// them by the pids the agent's /proc shows (bpf/common.bpf.h).

import * as fs from 'node:fs';
import { CaptureSetupError } from './kernel-session';

/** Inode of the initial pid namespace (PROC_PID_INIT_INO, fixed since Linux 3.8). */
export const PROC_PID_INIT_INO = 0xeffffffcn;

export interface PidNamespace {
  /** Inode number of the namespace, as `readlink /proc/self/ns/pid` shows it: pid:[ino]. */
  readonly ino: bigint;
  /** st_dev of /proc/self/ns/pid (the nsfs device, in the C library's encoding). */
  readonly dev: bigint;
  /** The initial namespace: the host's pids. */
  readonly host: boolean;
}

/**
 * Reads the agent's pid namespace. Throws a CaptureSetupError (one sentence)
 * when it cannot be read, or when /proc is not the namespace's own: pids the
 * kernel reports would then name other processes in /proc, and every
 * resource read from there would be another process's.
 */
export function readPidNamespace(procRoot = '/proc', pid = process.pid): PidNamespace {
  let st: fs.BigIntStats;
  try {
    st = fs.statSync(`${procRoot}/self/ns/pid`, { bigint: true });
  } catch (err) {
    throw new CaptureSetupError(`cannot read the agent's pid namespace (${procRoot}/self/ns/pid): ${(err as Error).message}`);
  }
  let self: string;
  try {
    self = fs.readlinkSync(`${procRoot}/self`);
  } catch (err) {
    throw new CaptureSetupError(`cannot read ${procRoot}/self: ${(err as Error).message}`);
  }
  if (self !== String(pid)) {
    throw new CaptureSetupError(
      `${procRoot} belongs to another pid namespace than the agent (it calls the agent ${self}, the agent is ${pid}): mount the namespace's own procfs there`,
    );
  }
  return { ino: st.ino, dev: st.dev, host: st.ino === PROC_PID_INIT_INO };
}

/**
 * A stat() st_dev as the kernel's internal dev_t (MAJOR << 20 | MINOR),
 * which is what bpf_get_ns_current_pid_tgid compares against. The two agree
 * for the usual nsfs device 0:4, not in general. RangeError when the device
 * does not fit a kernel dev_t (12-bit major, 20-bit minor).
 */
export function kernelDevT(dev: bigint): bigint {
  const major = ((dev & 0xfff00n) >> 8n) | ((dev & 0xfffff00000000000n) >> 32n);
  const minor = (dev & 0xffn) | ((dev & 0xffffff00000n) >> 12n);
  if (major >= 1n << 12n || minor >= 1n << 20n) {
    throw new RangeError(`device ${major}:${minor} does not fit a kernel dev_t`);
  }
  return (major << 20n) | minor;
}

/** The `config` fields of the BPF object: zero in the initial namespace (no translation). */
export function pidNamespaceConfig(ns: PidNamespace): { pidnsDev: bigint; pidnsIno: bigint } {
  if (ns.host) return { pidnsDev: 0n, pidnsIno: 0n };
  if (ns.ino <= 0n || ns.ino > 0xffffffffn) throw new RangeError(`pid namespace inode ${ns.ino} is not a 32-bit inode number`);
  return { pidnsDev: kernelDevT(ns.dev), pidnsIno: ns.ino };
}

/** One line for `doctor` and the start of `run`. */
export function describePidNamespace(ns: PidNamespace): string {
  return ns.host
    ? 'host'
    : `${ns.ino} (not the host's: pids are translated in the kernel; only processes of this namespace are traced)`;
}
