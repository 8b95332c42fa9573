// What the agent needs from the kernel and its own credentials, checked before
// loading so a missing piece is one clear sentence instead of a libbpf errno.

import * as fs from 'node:fs';
import * as os from 'node:os';

export const CAP = {
  SYS_PTRACE: 19,
  SYS_ADMIN: 21,
  SYS_RESOURCE: 24,
  PERFMON: 38,
  BPF: 39,
} as const;
export type CapName = keyof typeof CAP;

/** Effective capability set of this process, from /proc/self/status. */
export function effectiveCaps(statusText?: string): bigint {
  const text = statusText ?? fs.readFileSync('/proc/self/status', 'utf8');
  const m = /^CapEff:\s+([0-9a-f]+)$/m.exec(text);
  return m ? BigInt('0x' + m[1]) : 0n;
}

export function hasCap(caps: bigint, cap: CapName): boolean {
  return (caps & (1n << BigInt(CAP[cap]))) !== 0n;
}

/** Capabilities missing for loading BPF and reading other processes' /proc. */
export function missingCaps(caps: bigint): CapName[] {
  const missing: CapName[] = [];
  // CAP_SYS_ADMIN implies what CAP_BPF + CAP_PERFMON grant (kernels >= 5.8 split them out).
  if (!hasCap(caps, 'SYS_ADMIN')) {
    if (!hasCap(caps, 'BPF')) missing.push('BPF');
    if (!hasCap(caps, 'PERFMON')) missing.push('PERFMON');
  }
  if (!hasCap(caps, 'SYS_PTRACE')) missing.push('SYS_PTRACE');
  return missing;
}

export const BTF_PATH = '/sys/kernel/btf/vmlinux';

/** The first missing prerequisite as one sentence, or undefined when all are there. */
export function prerequisiteProblem(caps = effectiveCaps()): string | undefined {
  if (os.platform() !== 'linux') return `eBPF capture needs Linux; this is ${os.platform()}.`;
  if (!fs.existsSync(BTF_PATH)) {
    return `the kernel exposes no BTF at ${BTF_PATH}: CO-RE programs need a kernel built with CONFIG_DEBUG_INFO_BTF (kernel ${os.release()}).`;
  }
  const missing = missingCaps(caps);
  if (missing.length > 0) {
    return `missing privileges: run as root or grant ${missing.map((c) => 'CAP_' + c).join(', ')} (effective capabilities lack them).`;
  }
  return undefined;
}

/** The kernel lockdown mode, if securityfs shows it. */
export function lockdownMode(): string | undefined {
  try {
    const text = fs.readFileSync('/sys/kernel/security/lockdown', 'utf8');
    return /\[(\w+)\]/.exec(text)?.[1];
  } catch {
    return undefined;
  }
}
