// What the agent needs from the kernel and its own credentials, checked before
// loading so a missing piece is one clear sentence instead of a libbpf errno.

import * as fs from 'node:fs';
import * as os from 'node:os';

export const CAP = {
  DAC_OVERRIDE: 1,
  DAC_READ_SEARCH: 2,
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

/**
 * What works less well without a capability the agent can run without, as
 * sentences (empty when nothing is missing). /proc/<pid>/environ is mode 0400
 * of the process's user: reading another user's needs CAP_DAC_READ_SEARCH
 * besides CAP_SYS_PTRACE (tested in test/e2e/privileges.ebpf.test.ts).
 */
export function capabilityAdvisories(caps: bigint): string[] {
  const out: string[] = [];
  if (!hasCap(caps, 'DAC_READ_SEARCH') && !hasCap(caps, 'DAC_OVERRIDE')) {
    out.push(
      "without CAP_DAC_READ_SEARCH the environment of processes of other users cannot be read: their OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES are not used (service.name falls back to the program's name)",
    );
  }
  return out;
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
