// Smoke test of the syscall cost benchmark (bench/syscall-cost.ts), eBPF:
// one short round. Not a speed test: it checks every arm ran, the kernel
// counted the selected workload's calls and nothing of the unselected one.

import { ebpfTest } from '../helpers/ebpf';
import { formatReport, runSyscallCost } from '../../bench/syscall-cost';

ebpfTest.serial('bench syscall cost: every arm runs; the selected calls are counted, the unselected ones are not', async (t) => {
  t.timeout(60_000);
  const r = await runSyscallCost({ seconds: 0.3, rounds: 1, rate: 1_000_000 });
  t.log(formatReport(r, 1_000_000));
  t.deepEqual(r.summary.map((p) => p.pace), ['max', 'paced']);
  for (const p of r.summary) {
    t.deepEqual(p.arms.map((a) => a.arm), ['untraced', 'selected', 'unselected']);
    for (const a of p.arms) t.true(a.syscallsPerSecond > 0, `${p.pace} ${a.arm} made syscalls`);
  }
  t.is(r.runs.length, 8, '2 paces x (A and B untraced, A selected, B unselected)');
  // The workload's own count, plus its command reads and answer writes (a few per run).
  t.true(r.kernelCounted >= r.workloadReported && r.kernelCounted <= r.workloadReported + 16, `${r.kernelCounted} counted, ${r.workloadReported} made`);
  t.is(r.unselectedEntries, 0);
  t.true(Number.isFinite(r.agentCpuMsPerMillion));
});
