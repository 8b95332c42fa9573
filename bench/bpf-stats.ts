// Run counts and run time of loaded BPF programs, from the kernel's own
// accounting (kernel.bpf_stats_enabled): what each program costs, measured
// where it runs, not guessed from the traced process's slowdown.
//
// The sysctl is system-wide and costs every BPF program two clock reads per
// run while on, so enableBpfStats() puts back the value it found: on
// restore(), at process exit, and on SIGINT/SIGTERM (then the process exits).

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';

const SYSCTL = '/proc/sys/kernel/bpf_stats_enabled';

export interface BpfStatsGuard {
  /** Puts the sysctl back as found; idempotent. */
  restore(): void;
}

export function enableBpfStats(): BpfStatsGuard {
  const before = fs.readFileSync(SYSCTL, 'utf8').trim();
  let restored = false;
  const restore = () => {
    if (restored) return;
    restored = true;
    process.off('exit', restore);
    for (const sig of SIGNALS) process.off(sig, onSignal);
    if (before !== '1') fs.writeFileSync(SYSCTL, before);
  };
  const onSignal = (sig: NodeJS.Signals) => {
    restore();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.on('exit', restore);
  for (const sig of SIGNALS) process.on(sig, onSignal);
  if (before !== '1') fs.writeFileSync(SYSCTL, '1');
  return { restore };
}

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

export interface ProgramStats {
  readonly id: number;
  readonly name: string;
  readonly runCount: number;
  readonly runTimeNs: number;
  /** Translated instructions (the verifier's output, before JIT). */
  readonly xlatedBytes: number;
}

/** One bpftool snapshot of the programs in `ids` (missing ones are left out). */
export function snapshot(ids: ReadonlySet<number>): Map<number, ProgramStats> {
  const all = JSON.parse(execFileSync('bpftool', ['prog', 'show', '--json'], { encoding: 'utf8', maxBuffer: 64 << 20 })) as {
    id: number;
    name: string;
    run_cnt?: number;
    run_time_ns?: number;
    bytes_xlated?: number;
  }[];
  const out = new Map<number, ProgramStats>();
  for (const p of all) {
    if (!ids.has(p.id)) continue;
    out.set(p.id, { id: p.id, name: p.name, runCount: p.run_cnt ?? 0, runTimeNs: p.run_time_ns ?? 0, xlatedBytes: p.bytes_xlated ?? 0 });
  }
  return out;
}

/** What ran between two snapshots, by program name (programs of `after` only). */
export function diff(before: Map<number, ProgramStats>, after: Map<number, ProgramStats>): Map<string, { runs: number; ns: number }> {
  const out = new Map<string, { runs: number; ns: number }>();
  for (const [id, a] of after) {
    const b = before.get(id);
    out.set(a.name, { runs: a.runCount - (b?.runCount ?? 0), ns: a.runTimeNs - (b?.runTimeNs ?? 0) });
  }
  return out;
}
