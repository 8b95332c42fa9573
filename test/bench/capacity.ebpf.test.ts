// Smoke test of the capacity benchmark (bench/capacity.ts), eBPF: two low
// rates without and with the agent, and 200 idle connections against the real agent, a real server (nginx
// when installed, and always under REQUIRE_EBPF=1; else the Node target) and a
// real OTLP receiver. At these rates nothing may be lost, so the counts it
// prints must agree exactly: one record and one span per request answered,
// every connection followed while open and none after. Not a speed test.

import { spawnSync } from 'node:child_process';
import { ebpfRequired, ebpfTest } from '../helpers/ebpf';
import * as os from 'node:os';
import { findLimit, formatBaseline, formatIdle, formatLimit, formatRamp, ledgerLine, runCapacity } from '../../bench/capacity';

const installed = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

ebpfTest.serial('bench capacity: exact counts at low rates and for 200 idle connections', async (t) => {
  t.timeout(120_000);
  const target = installed('nginx') || ebpfRequired ? 'nginx' : 'node';
  // The agent inherits this; partial span batches leave after 200 ms instead of 5 s, so steps drain sooner.
  process.env['OTEL_BSP_SCHEDULE_DELAY'] = '200';
  const r = await runCapacity({
    target,
    phases: ['baseline', 'ramp', 'idle'],
    rates: [200, 500],
    stepSeconds: 1,
    connections: 8,
    idle: 200,
    idleRate: 2000,
    idleSettleSeconds: 1,
    metricIntervalMs: 500,
  });
  const baseline = r.baseline!;
  const ramp = r.ramp!;
  const idle = r.idle!;
  t.log(formatBaseline(baseline));
  t.log(formatRamp(ramp));
  t.log(formatIdle(idle));

  t.deepEqual(
    baseline.map((s) => [s.rate, s.scheduled, s.answered, s.failed]),
    [
      [200, 200, 200, 0],
      [500, 500, 500, 0],
    ],
  );
  t.deepEqual(
    ramp.steps.map((s) => s.rate),
    [200, 500],
  );
  for (const s of ramp.steps) {
    const at = `${s.rate} req/s`;
    t.is(s.scheduled, s.rate, `${at}: one second's requests were due`);
    t.is(s.answered, s.scheduled, `${at}: every request answered`);
    t.is(s.failed, 0, at);
    t.true(s.drained, `${at}: the agent drained`);
    t.is(s.eventsLost, 0, `${at}: no event lost`);
    t.is(s.batchesDropped, 0, `${at}: no batch dropped`);
    t.is(s.spansDroppedQueueFull, 0, `${at}: no span dropped`);
    t.is(s.records, s.answered, `${at}: one record per request`);
    t.is(s.spansExported, s.answered, `${at}: one span exported per request`);
    t.is(s.spansReceived, s.answered, `${at}: one span received per request`);
    t.true(s.agentLossless, at);
    t.true(s.zeroLoss, at);
    t.is(s.requestsGivenUp, 0, `${at}: no request start given up`);
    t.regex(ledgerLine(s), / \+ uncounted 0;/, `${at}: every request answered accounted for`);
    t.true(s.agentRssBytes > 0 && s.agentCpuSeconds > 0, `${at}: the agent's RSS and CPU were read`);
  }
  t.is(ramp.highestZeroLossRate, 500);
  t.is(ramp.agent.code, 0);
  t.is(ramp.agent.lostInKernel + ramp.agent.lostBehindQueue, 0);

  t.is(idle.open, 200);
  t.is(idle.failed, 0);
  t.is(idle.ok, 200);
  t.true(idle.drained);
  t.is(idle.spansReceived, 200, 'one span per connection');
  t.is(idle.spansDropped, 0);
  t.is(idle.eventsLost, 0);
  t.is(idle.before.agentConnections, 0);
  t.is(idle.halfOpen.agentConnections, 100);
  t.is(idle.atOpen.agentConnections, 200);
  t.is(idle.settled.agentConnections, 200, 'idle connections are still followed');
  t.is(idle.closed.agentConnections, 0, 'closed connections are forgotten');
  t.true(idle.atOpen.rssBytes > 0 && idle.atOpen.peakRssBytes >= idle.atOpen.rssBytes);
  t.is(idle.agent.code, 0);
});

// Not eBPF, but a benchmark helper that pins processes: run with the others.
ebpfTest.serial('bench capacity: the limit search, pinned, stops at the first failing probe and keeps the last pass', async (t) => {
  t.timeout(60_000);
  if (os.cpus().length < 2) {
    t.pass('one CPU: nothing to pin apart');
    return;
  }
  const pin = { serverCpu: 1, othersCpu: 0 };
  // 500 req/s passes anywhere; 200 500 req/s is beyond any single Node server; a resolution wider than the gap ends the search.
  const r = await findLimit({ target: 'node', connections: 8, pin }, { fromRate: 500, coarseStep: 200_000, resolution: 1_000_000, stepSeconds: 1, p99Ms: 20, tries: 2 });
  t.log(formatLimit(r, pin));
  t.is(r.limit, 500);
  t.deepEqual(
    r.probes.map((p) => [p.rate, p.passed]),
    [
      [500, true],
      [200_500, false],
      [200_500, false],
    ],
  );
  for (const p of r.probes) t.true(p.others !== undefined && p.cpuBusy.length >= 2, 'pinned probes show what was not ours');
});
