// Smoke test of the overhead benchmark (bench/overhead.ts), eBPF: one short
// round over every arm of every target (nginx only when it and wrk are
// installed, outside REQUIRE_EBPF=1) against the real agent, the real servers
// and a real OTLP receiver. It asserts the benchmark completes, every arm
// served requests and every traced arm exported spans. Not a speed test.

import { spawnSync } from 'node:child_process';
import { ebpfRequired, ebpfTest } from '../helpers/ebpf';
import { ARMS, formatTable, runOverhead, type TargetName } from '../../bench/overhead';

const installed = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

ebpfTest.serial('bench overhead: every arm serves requests, the agent and SDK arms export spans', async (t) => {
  t.timeout(150_000);
  if (!installed('wrk')) {
    t.fail('wrk is not installed (bash scripts/setup.sh installs it)');
    return;
  }
  const targets: TargetName[] = installed('nginx') || ebpfRequired ? ['node', 'nginx', 'grpc'] : ['node', 'grpc'];
  const { runs, summary } = await runOverhead({ seconds: 1, rounds: 1, targets, rate: 1000, connections: 8, threads: 1, grpcChannels: 2, grpcRate: 200 });
  t.log(formatTable(summary));
  t.is(runs.length, targets.reduce((a, x) => a + ARMS[x].length, 0));
  for (const r of runs) {
    const what = `${r.target} ${r.arm}`;
    t.true(r.small.requests > 0, `${what}: closed loop, small answers, served requests`);
    t.true(r.large.requests > 0, `${what}: closed loop, large answers, served requests`);
    t.is(r.small.non2xx + r.large.non2xx + r.openLoop.non2xx, 0, `${what}: every answer a success`);
    t.true(r.openLoop.completed > 0, `${what}: open loop served requests`);
    if (r.arm !== 'untraced') t.true(r.spans > 0, `${what}: spans exported`);
    if (r.agent) {
      t.is(r.agent.exitCode, 0, `${what}: the agent exited cleanly`);
      t.false(Number.isNaN(r.agent.lostInKernel), `${what}: the agent printed its summary`);
      t.true(r.agent.peakRssBytes > 0);
    }
  }
});
