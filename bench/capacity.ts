// How much the agent can follow on this machine, in two parts.
//
//   node dist/bench/capacity.js [--target nginx|node] [--rates 2000,5000,10000] [--step-seconds 10]
//                               [--sustain RATE [--seconds 60]] [--connections 64]
//                               [--idle 10000] [--idle-rate 1000] [--idle-settle-seconds 10]
//                               [--phases baseline,ramp,idle] [--metric-interval 1000] [--json]
//   node dist/bench/capacity.js --target node --find-limit [--pin 1:0]
//   node dist/bench/capacity.js --target node --at-limit [--limit RATE] [--over 1.2] [--seconds 60] [--pin 1:0]
//
// At the limit (the target "no span lost below the rate the application
// sustains untraced on its own core; above it, drops counted"): the server is
// pinned to one CPU and everything else (this process with its OTLP receiver,
// the load generator, the agent) to the other (--pin SERVER:OTHERS, default
// 1:0 with --find-limit and --at-limit; `--pin none` leaves them free).
// --find-limit searches the untraced server's limit on its core: open-loop
// probes of --limit-step-seconds (default 10) from --limit-from (5000 req/s)
// up by --limit-coarse (5000) until one fails, then bisection down to
// --limit-resolution (500); a probe passes when every request due is answered
// with a 2xx and p99 latency (from the time it was due) stays under
// --limit-p99-ms (20): past the limit the open-loop queue grows without bound
// and p99 goes to hundreds of ms. The box is shared and what others run lands
// on our CPUs too, so a failing probe runs again (--limit-tries, default 2 in
// all) and every row shows the share of each pinned CPU that was not ours. If the generator's core, not the server's,
// was full at the failing probe, it says so: the limit found is then the
// generator's. --at-limit finds the limit (or takes --limit RATE) and runs the
// traced ramp at the limit and at --over times it (default 1.2), --seconds
// each, and prints each step's ledger: requests answered against spans
// received, spans dropped and request starts the agent gave up (its counters),
// with events lost alongside, so a request without a span is seen counted or
// not. The search and each traced step take a minute or more each: to keep
// holds of a shared bench lock short, run --find-limit, then --sustain RATE
// --pin 1:0 --phases baseline,ramp per rate (the untraced and traced server
// at that rate, --seconds each).
//
// Baseline: the same rates against the same server without the agent: what
// the load generator and the server deliver on this box at the time of the
// run, the ceiling the ramp is read against.
//
// Ramp: one traced server, the real agent (`bin/ebpf-otel run --pid <server
// pids>`, exporting OTLP/gRPC to an in-process OtlpReceiver that counts spans
// without keeping them, and its own metrics every --metric-interval), and the
// open-loop generator (bench/open-loop.ts, its own process) at each rate in
// turn for --step-seconds, over --connections keep-alive connections. After a
// step the bench waits until the agent has drained (bench/agent-metrics.ts:
// quiet between two of its metric exports, span queue empty, every exported
// span at the receiver), so a step's figures are differences of the agent's
// own cumulative counters between two drained points. A step passes when every
// request due was answered with a 2xx, no event was lost (kernel ring full or
// JavaScript behind the native queue), no batch or span was dropped or failed,
// and the receiver got exactly one span per request answered. `--sustain RATE`
// is one step of --seconds (default 60) at RATE.
//
// Idle: a fresh server and agent; --idle keep-alive connections, --idle-rate
// a second, that each send one request and then stay open
// (bench/idle-connections.ts); the agent's RSS (VmRSS) and peak (VmHWM)
// before, with half and with all of them open, after --idle-settle-seconds,
// and after closing them and settling again. The first half also pays for the
// agent's one-off growth under load (young generation, native batch buffers),
// so the second half's RSS per connection is the per-connection cost.
//
// The default target is nginx: one C worker serves a request for a fraction of
// the CPU the Node http target needs, which leaves the most of two shared
// cores to the agent and to the load generator (both JavaScript). The agent
// inherits this process's environment (OTEL_BSP_* and the like reach it);
// metric temporality is forced to cumulative and the sampler to always_on,
// which the readings rely on.
//
// Needs root (eBPF), nginx (scripts/setup.sh) and the build (make build).
// Load generator, server, agent and receiver share this machine's CPUs: the
// figures are this box's, and each step shows where its CPU went.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { parseArgs } from 'node:util';
import { AGENT_BSP_DEFAULTS } from '../src/otel/config';
import { OtlpReceiver } from '../test/helpers/otlp-receiver';
import { startAgent, type RunningAgent } from '../test/helpers/agent';
import { latestAgentCounters, nextAgentCounters, waitForAgentDrained, type AgentCounters, type Drained } from './agent-metrics';
import { openIdleConnections, type IdleConnections } from './idle-connections';
import { positive, runMain } from './main';
import { runOpenLoopProcess } from './open-loop';
import { cpuSecondsOf, peakRssOf, raiseOpenFileLimit, rssOf, sleep } from './processes';
import { startNginx, startNodeServer, type Server } from './servers';

export type CapacityTarget = 'nginx' | 'node';
export type Phase = 'baseline' | 'ramp' | 'idle';
const PHASES: readonly Phase[] = ['baseline', 'ramp', 'idle'];

export interface CapacityOptions {
  readonly target: CapacityTarget;
  readonly phases: readonly Phase[];
  /** Open-loop rates of the ramp, requests per second, in order. */
  readonly rates: readonly number[];
  readonly stepSeconds: number;
  /** Open-loop keep-alive connections. */
  readonly connections: number;
  /** Idle keep-alive connections to open, and how many a second. */
  readonly idle: number;
  readonly idleRate: number;
  readonly idleSettleSeconds: number;
  /** The agent's metric export interval, ms. */
  readonly metricIntervalMs: number;
  /** Server on one CPU, this process and its children (generator, agent) on another. */
  readonly pin?: Pin;
  /** The search of --find-limit. */
  readonly limit?: LimitSearchOptions;
  /** Progress lines (default: none). */
  readonly log?: (line: string) => void;
}

export interface Pin {
  readonly serverCpu: number;
  readonly othersCpu: number;
}

/** Busy share of a pinned CPU not used by our processes: the box is shared, this is the noise. */
export interface Others {
  readonly serverCpu: number;
  readonly othersCpu: number;
}

function othersOf(pin: Pin | undefined, cpuBusy: readonly number[], serverCores: number, oursOnOthersCpu: number): Others | undefined {
  if (!pin) return undefined;
  return { serverCpu: cpuBusy[pin.serverCpu]! - serverCores, othersCpu: cpuBusy[pin.othersCpu]! - oursOnOthersCpu };
}

export interface LimitSearchOptions {
  readonly fromRate: number;
  readonly coarseStep: number;
  readonly resolution: number;
  readonly stepSeconds: number;
  readonly p99Ms: number;
  /** A failing probe is run again, up to this many times in all: the box is shared and one burst elsewhere should not set the limit. */
  readonly tries: number;
}

export interface StepResult {
  readonly rate: number;
  readonly seconds: number;
  readonly scheduled: number;
  readonly answered: number;
  /** Due but never answered, errors and non-2xx answers. */
  readonly unanswered: number;
  readonly failed: number;
  readonly achievedRate: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Differences of the agent's counters over the step. */
  readonly eventsCaptured: number;
  readonly eventsLost: number;
  readonly batchesDropped: number;
  readonly records: number;
  readonly parseErrors: number;
  readonly requestsGivenUp: number;
  readonly spansExported: number;
  readonly spansDroppedQueueFull: number;
  readonly spanExportFailures: number;
  /** Spans the receiver got over the step. */
  readonly spansReceived: number;
  /** The agent's CPU seconds over the step and its drain. */
  readonly agentCpuSeconds: number;
  /** Share of a CPU each process used while the load ran (1 = one core). */
  readonly cores: { readonly agent: number; readonly server: number; readonly load: number; readonly receiver: number };
  /** Busy share of each CPU over the load (from /proc/stat, everything on it). */
  readonly cpuBusy: number[];
  /** Pinned: CPU used on each of the two CPUs by what is not ours (other processes, interrupts). */
  readonly others?: Others;
  /** At the end of the step's load. */
  readonly agentRssBytes: number;
  readonly agentPeakRssBytes: number;
  /** The agent was quiet again before the drain timeout. */
  readonly drained: boolean;
  /**
   * The agent lost nothing it was given: no event lost, no batch or span
   * dropped or failed, every record a span at the receiver. When requests
   * went unanswered (the box, not the agent, fell behind) that is all that
   * can be said: the server may have answered some after the generator gave up.
   */
  readonly agentLossless: boolean;
  /** agentLossless, every request due was answered with a 2xx, and one span per request. */
  readonly zeroLoss: boolean;
}

export interface AgentExit {
  readonly code: number | null;
  /** From the agent's exit summary, over its whole run (warm-up included). */
  readonly eventsCaptured: number;
  readonly lostInKernel: number;
  readonly lostBehindQueue: number;
  /** The agent's request ledger line (started = recorded + given up), if it printed one. */
  readonly requestLedger?: string;
}

export interface RampResult {
  readonly steps: StepResult[];
  /** Highest rate whose step passed (0: none). */
  readonly highestZeroLossRate: number;
  readonly agent: AgentExit;
}

export interface MemorySample {
  readonly rssBytes: number;
  readonly peakRssBytes: number;
  /** ebpf_otel.connection.count at the agent's next metric export. */
  readonly agentConnections: number;
}

export interface IdleResult {
  readonly requested: number;
  readonly open: number;
  readonly failed: number;
  readonly ok: number;
  /** Spans received for the connections' requests, and what the agent counted as lost or dropped. */
  readonly spansReceived: number;
  readonly eventsLost: number;
  readonly spansDropped: number;
  readonly drained: boolean;
  readonly before: MemorySample;
  /** Half the connections open (the first half also pays for the agent's one-off growth under load). */
  readonly halfOpen: MemorySample;
  readonly atOpen: MemorySample;
  readonly settled: MemorySample;
  readonly closed: MemorySample;
  /** RSS added by the second half of the connections, per connection. */
  readonly marginalBytesPerConnection: number;
  readonly agent: AgentExit;
}

/** A rate without the agent. */
export interface BaselineStep {
  readonly rate: number;
  readonly scheduled: number;
  readonly answered: number;
  readonly failed: number;
  readonly achievedRate: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly cores: { readonly server: number; readonly load: number };
  readonly cpuBusy: number[];
  readonly others?: Others;
  /** Every request due answered with a 2xx, p99 under the search's bound (search probes only). */
  readonly passed?: boolean;
}

export interface LimitResult {
  /** Highest rate that passed (0: none). */
  readonly limit: number;
  readonly probes: BaselineStep[];
  readonly p99Ms: number;
  /** At the lowest failing probe, the generator's CPU was busier than the server's: the limit is the generator's. */
  readonly loadBound: boolean;
}

export interface CapacityResult {
  readonly baseline?: BaselineStep[];
  readonly limit?: LimitResult;
  readonly ramp?: RampResult;
  readonly idle?: IdleResult;
}

const DRAIN_TIMEOUT_MS = 30_000;
const LEDGER_RE = /requests: started .*$/m;
const SUMMARY_RE = /captured (\d+) events \(lost (\d+) in the kernel, (\d+) behind the native queue\)/;

async function startTarget(target: CapacityTarget, workerConnections: number, pin?: Pin): Promise<Server> {
  const cpus = pin ? { cpus: String(pin.serverCpu) } : {};
  // Idle connections must outlive the settle time: nginx keeps them 10 min.
  return target === 'nginx' ? startNginx({ workerConnections, keepaliveTimeoutSeconds: 600, ...cpus }) : startNodeServer(undefined, cpus);
}

/**
 * This process, every thread it has, on `cpu`; what it starts afterwards (the
 * generator, the agent) inherits it. Threads made later inherit their maker's.
 */
export function pinSelf(cpu: number): void {
  const r = spawnSync('taskset', ['-a', '-p', '-c', String(cpu), String(process.pid)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`taskset -a -p -c ${cpu} ${process.pid}: ${r.stderr || r.error}`);
}

/** Busy and total jiffies of each CPU (/proc/stat: all but idle and iowait is busy). */
function cpuTimes(): Array<{ busy: number; total: number }> {
  return fs
    .readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .filter((l) => /^cpu\d+ /.test(l))
    .map((l) => {
      const v = l.trim().split(/\s+/).slice(1).map(Number);
      const total = v.reduce((a, x) => a + x, 0);
      return { busy: total - v[3]! - v[4]!, total };
    });
}

const busySince = (t0: ReturnType<typeof cpuTimes>) =>
  cpuTimes().map((t, i) => (t.busy - t0[i]!.busy) / Math.max(1, t.total - t0[i]!.total));

function startTracingAgent(server: Server, receiver: OtlpReceiver, o: CapacityOptions): Promise<RunningAgent> {
  return startAgent(['run', ...server.pids.flatMap((p) => ['--pid', String(p)]), '--metric-interval', `${o.metricIntervalMs}ms`], {
    env: {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.grpcUrl,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: 'cumulative',
      // One span per request is what a step is judged by (and how it is known to have drained).
      OTEL_TRACES_SAMPLER: 'always_on',
    },
  });
}

async function stopAgent(agent: RunningAgent): Promise<AgentExit> {
  const stopped = await agent.stop();
  const m = SUMMARY_RE.exec(stopped.stderr);
  return {
    code: stopped.code,
    eventsCaptured: m ? Number(m[1]) : NaN,
    lostInKernel: m ? Number(m[2]) : NaN,
    lostBehindQueue: m ? Number(m[3]) : NaN,
    ...(LEDGER_RE.test(stopped.stderr) ? { requestLedger: LEDGER_RE.exec(stopped.stderr)![0] } : {}),
  };
}

const cpuOf = (pids: readonly number[]) => pids.reduce((a, p) => a + cpuSecondsOf(p), 0);

// ------------------------------------------------------------------ baseline

async function baselineStep(server: Server, rate: number, seconds: number, connections: number, pin?: Pin): Promise<BaselineStep> {
  const url = `http://127.0.0.1:${server.port}/small`;
  const serverCpu0 = cpuOf(server.pids);
  const cpu0 = cpuTimes();
  const self0 = process.cpuUsage();
  const ol = await runOpenLoopProcess({ url, rate, seconds, connections });
  const cpuBusy = busySince(cpu0);
  const self = process.cpuUsage(self0);
  const answered = ol.completed - ol.non2xx;
  const serverCores = (cpuOf(server.pids) - serverCpu0) / ol.seconds;
  const others = othersOf(pin, cpuBusy, serverCores, (ol.cpuSeconds + (self.user + self.system) / 1e6) / ol.seconds);
  return {
    rate,
    scheduled: ol.scheduled,
    answered,
    failed: ol.errors + ol.non2xx,
    achievedRate: answered / ol.seconds,
    p50Ms: ol.p50Ms,
    p99Ms: ol.p99Ms,
    cores: { server: serverCores, load: ol.cpuSeconds / ol.seconds },
    cpuBusy,
    ...(others ? { others } : {}),
  };
}

export async function runBaseline(o: CapacityOptions): Promise<BaselineStep[]> {
  const server = await startTarget(o.target, 4096, o.pin);
  try {
    await runOpenLoopProcess({ url: `http://127.0.0.1:${server.port}/small`, rate: 500, seconds: 1, connections: o.connections });
    const steps: BaselineStep[] = [];
    for (const rate of o.rates) {
      o.log?.(`baseline: ${rate} req/s for ${o.stepSeconds} s, no agent`);
      steps.push(await baselineStep(server, rate, o.stepSeconds, o.connections, o.pin));
    }
    return steps;
  } finally {
    await server.stop();
  }
}

/**
 * The untraced server's limit: the highest rate at which every request due is
 * answered with a 2xx and p99 stays under the bound. Up by the coarse step
 * until a probe fails, then bisection between the last pass and the first
 * failure. One server for the whole search (warm); a pause after each probe
 * lets an overloaded one catch up.
 */
export async function findLimit(o: Pick<CapacityOptions, 'target' | 'connections' | 'pin' | 'log'>, s: LimitSearchOptions): Promise<LimitResult> {
  const server = await startTarget(o.target, 4096, o.pin);
  try {
    // Warm-up, not counted: the server's hot paths optimized.
    await runOpenLoopProcess({ url: `http://127.0.0.1:${server.port}/small`, rate: Math.min(s.fromRate, 5000), seconds: 3, connections: o.connections });
    const probes: BaselineStep[] = [];
    const probe = async (rate: number) => {
      for (let t = 0; t < s.tries; t++) {
        o.log?.(`limit: ${rate} req/s for ${s.stepSeconds} s, no agent`);
        const b = await baselineStep(server, rate, s.stepSeconds, o.connections, o.pin);
        const passed = b.failed === 0 && b.answered === b.scheduled && b.p99Ms <= s.p99Ms;
        probes.push({ ...b, passed });
        o.log?.(`limit: ${rate} req/s: ${b.answered}/${b.scheduled}, p99 ${b.p99Ms.toFixed(1)} ms, server ${b.cores.server.toFixed(2)} core: ${passed ? 'pass' : 'FAIL'}`);
        await sleep(2000);
        if (passed) return true;
      }
      return false;
    };
    let pass = 0;
    let fail = Infinity;
    for (let rate = s.fromRate; fail === Infinity; rate += s.coarseStep) {
      if (await probe(rate)) pass = rate;
      else fail = rate;
    }
    while (fail - pass > s.resolution) {
      const mid = Math.round((pass + fail) / 2 / 100) * 100;
      if (await probe(mid)) pass = mid;
      else fail = mid;
    }
    const firstFail = probes.filter((p) => p.rate === fail).pop()!;
    const loadBound = firstFail.cores.load > firstFail.cores.server;
    return { limit: pass, probes, p99Ms: s.p99Ms, loadBound };
  } finally {
    await server.stop();
  }
}

// ------------------------------------------------------------------ ramp

export async function runRamp(o: CapacityOptions, receiver: OtlpReceiver): Promise<RampResult> {
  receiver.reset();
  const server = await startTarget(o.target, 4096, o.pin);
  let agent: RunningAgent | undefined;
  try {
    agent = await startTracingAgent(server, receiver, o);
    const url = `http://127.0.0.1:${server.port}/small`;
    // Warm-up, not counted: the wasm parser compiled, hot paths optimized.
    await runOpenLoopProcess({ url, rate: 500, seconds: 1, connections: o.connections });
    let prev = (await waitForAgentDrained(receiver, DRAIN_TIMEOUT_MS)).counters;
    const steps: StepResult[] = [];
    for (const rate of o.rates) {
      o.log?.(`ramp: ${rate} req/s for ${o.stepSeconds} s`);
      const agentCpu0 = cpuSecondsOf(agent.pid);
      const serverCpu0 = cpuOf(server.pids);
      const receiverCpu0 = process.cpuUsage();
      const spans0 = receiver.spansReceived;
      const cpuTimes0 = cpuTimes();
      const ol = await runOpenLoopProcess({ url, rate, seconds: o.stepSeconds, connections: o.connections });
      const cpuBusy = busySince(cpuTimes0);
      const rc = process.cpuUsage(receiverCpu0);
      const cores = {
        agent: (cpuSecondsOf(agent.pid) - agentCpu0) / ol.seconds,
        server: (cpuOf(server.pids) - serverCpu0) / ol.seconds,
        load: ol.cpuSeconds / ol.seconds,
        receiver: (rc.user + rc.system) / 1e6 / ol.seconds,
      };
      const others = othersOf(o.pin, cpuBusy, cores.server, cores.agent + cores.load + cores.receiver);
      const agentRssBytes = rssOf(agent.pid);
      const d = await waitForAgentDrained(receiver, DRAIN_TIMEOUT_MS);
      const step = stepResult(rate, ol, prev, d.counters, d.drained, {
        spansReceived: receiver.spansReceived - spans0,
        agentCpuSeconds: cpuSecondsOf(agent.pid) - agentCpu0,
        cores,
        cpuBusy,
        ...(others ? { others } : {}),
        agentRssBytes,
        agentPeakRssBytes: peakRssOf(agent.pid),
      });
      steps.push(step);
      o.log?.(`ramp: ${rate} req/s: ${step.answered}/${step.scheduled} answered, ${step.spansReceived} spans, ${step.zeroLoss ? 'no loss' : 'LOSS'}`);
      o.log?.(`ramp: ${rate} req/s: ${ledgerLine(step)}`);
      prev = d.counters;
    }
    const exit = await stopAgent(agent);
    agent = undefined;
    const passed = steps.filter((s) => s.zeroLoss).map((s) => s.rate);
    return { steps, highestZeroLossRate: passed.length ? Math.max(...passed) : 0, agent: exit };
  } finally {
    if (agent) await agent.stop().catch(() => undefined);
    await server.stop();
  }
}

function stepResult(
  rate: number,
  ol: Awaited<ReturnType<typeof runOpenLoopProcess>>,
  a: AgentCounters,
  b: AgentCounters,
  drained: boolean,
  x: Pick<StepResult, 'spansReceived' | 'agentCpuSeconds' | 'cores' | 'cpuBusy' | 'others' | 'agentRssBytes' | 'agentPeakRssBytes'>,
): StepResult {
  const d = (k: keyof AgentCounters) => b[k] - a[k];
  const failed = ol.errors + ol.non2xx;
  const answered = ol.completed - ol.non2xx;
  const s = {
    rate,
    seconds: ol.seconds,
    scheduled: ol.scheduled,
    answered,
    unanswered: ol.unfinished,
    failed,
    achievedRate: answered / ol.seconds,
    p50Ms: ol.p50Ms,
    p99Ms: ol.p99Ms,
    eventsCaptured: d('eventsCaptured'),
    eventsLost: d('eventsLost'),
    batchesDropped: d('batchesDropped'),
    records: d('records'),
    parseErrors: d('parseErrors'),
    requestsGivenUp: d('requestsGivenUp'),
    spansExported: d('spansExported'),
    spansDroppedQueueFull: d('spansDroppedQueueFull'),
    spanExportFailures: d('spanExportFailures'),
    drained,
    ...x,
  };
  const agentLossless =
    drained &&
    s.eventsLost === 0 &&
    s.batchesDropped === 0 &&
    s.spansDroppedQueueFull === 0 &&
    s.spanExportFailures === 0 &&
    s.spansExported === s.records &&
    s.spansReceived === s.spansExported;
  const zeroLoss = agentLossless && s.unanswered === 0 && s.failed === 0 && s.spansReceived === s.answered;
  return { ...s, agentLossless, zeroLoss };
}

// ------------------------------------------------------------------ idle connections

/** RSS now and the connections the agent follows at its next metric export. */
async function memorySample(agent: RunningAgent, receiver: OtlpReceiver): Promise<MemorySample> {
  const rssBytes = rssOf(agent.pid);
  const peakRssBytes = peakRssOf(agent.pid);
  const c = await nextAgentCounters(receiver, latestAgentCounters(receiver)?.call ?? -1, DRAIN_TIMEOUT_MS);
  return { rssBytes, peakRssBytes, agentConnections: c.connections };
}

/** Opens `n` idle connections, waits until the agent has digested their requests, samples memory. */
async function openAndSample(
  agent: RunningAgent,
  receiver: OtlpReceiver,
  port: number,
  n: number,
  ratePerSecond: number,
): Promise<{ conns: IdleConnections; sample: MemorySample; drained: Drained }> {
  const conns = await openIdleConnections(port, n, { ratePerSecond });
  const drained = await waitForAgentDrained(receiver, DRAIN_TIMEOUT_MS * 2);
  const sample = { rssBytes: rssOf(agent.pid), peakRssBytes: peakRssOf(agent.pid), agentConnections: drained.counters.connections };
  return { conns, sample, drained };
}

export async function runIdle(o: CapacityOptions, receiver: OtlpReceiver): Promise<IdleResult> {
  receiver.reset();
  const server = await startTarget(o.target, o.idle + 1024, o.pin);
  let agent: RunningAgent | undefined;
  const opened: IdleConnections[] = [];
  try {
    agent = await startTracingAgent(server, receiver, o);
    const before = await memorySample(agent, receiver);
    const first = Math.floor(o.idle / 2);
    o.log?.(`idle: opening ${first} connections, then ${o.idle - first} more, ${o.idleRate} a second`);
    const half = await openAndSample(agent, receiver, server.port, first, o.idleRate);
    opened.push(half.conns);
    const full = await openAndSample(agent, receiver, server.port, o.idle - first, o.idleRate);
    opened.push(full.conns);
    const open = half.conns.open + full.conns.open;
    o.log?.(`idle: ${open} open; settling ${o.idleSettleSeconds} s`);
    await sleep(o.idleSettleSeconds * 1000);
    const settled = await memorySample(agent, receiver);
    await Promise.all(opened.splice(0).map((c) => c.close()));
    await waitForAgentDrained(receiver, DRAIN_TIMEOUT_MS);
    await sleep(o.idleSettleSeconds * 1000);
    const closed = await memorySample(agent, receiver);
    const spansReceived = receiver.spansReceived;
    const c = full.drained.counters;
    const exit = await stopAgent(agent);
    agent = undefined;
    return {
      requested: o.idle,
      open,
      failed: half.conns.failed + full.conns.failed,
      ok: half.conns.ok + full.conns.ok,
      spansReceived,
      eventsLost: c.eventsLost,
      spansDropped: c.spansDroppedQueueFull + c.spanExportFailures,
      drained: half.drained.drained && full.drained.drained,
      before,
      halfOpen: half.sample,
      atOpen: full.sample,
      settled,
      closed,
      marginalBytesPerConnection: (full.sample.rssBytes - half.sample.rssBytes) / Math.max(1, full.conns.open),
      agent: exit,
    };
  } finally {
    await Promise.all(opened.map((c) => c.close()));
    if (agent) await agent.stop().catch(() => undefined);
    await server.stop();
  }
}

// ------------------------------------------------------------------ both, output

export async function runCapacity(o: CapacityOptions): Promise<CapacityResult> {
  if (o.phases.includes('idle')) raiseOpenFileLimit(o.idle + 4096);
  const receiver = await OtlpReceiver.start({ keepSpans: false });
  try {
    const baseline = o.phases.includes('baseline') ? await runBaseline(o) : undefined;
    const limit = o.limit ? await findLimit(o, o.limit) : undefined;
    const ramp = o.phases.includes('ramp') ? await runRamp(o, receiver) : undefined;
    const idle = o.phases.includes('idle') ? await runIdle(o, receiver) : undefined;
    return { ...(baseline ? { baseline } : {}), ...(limit ? { limit } : {}), ...(ramp ? { ramp } : {}), ...(idle ? { idle } : {}) };
  } finally {
    await receiver.close();
  }
}

const mib = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;

function table(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((row) => row[i]!.length)));
  const line = (row: string[]) => row.map((c, i) => c.padStart(widths[i]!)).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n') + '\n';
}

const busy = (b: readonly number[]) => b.map((x) => x.toFixed(2)).join('/');
const othersCell = (x: Others | undefined) => (x ? `${x.serverCpu.toFixed(2)}/${x.othersCpu.toFixed(2)}` : '-');

function baselineTable(steps: readonly BaselineStep[]): string {
  const withPass = steps.some((s) => s.passed !== undefined);
  const header = ['rate/s', 'answered/due', 'achieved/s', 'p50/p99 ms', 'cores: server', 'load', 'cpu busy 0/1', 'not ours: server cpu/other', ...(withPass ? ['pass'] : [])];
  const rows = steps.map((s) => [
    String(s.rate),
    `${s.answered}/${s.scheduled}` + (s.failed ? ` (${s.failed} failed)` : ''),
    s.achievedRate.toFixed(0),
    `${s.p50Ms.toFixed(2)}/${s.p99Ms.toFixed(1)}`,
    s.cores.server.toFixed(2),
    s.cores.load.toFixed(2),
    busy(s.cpuBusy),
    othersCell(s.others),
    ...(withPass ? [s.passed ? 'yes' : 'no'] : []),
  ]);
  return table(header, rows);
}

export function formatBaseline(steps: readonly BaselineStep[]): string {
  return 'without the agent:\n' + baselineTable(steps);
}

export function formatLimit(r: LimitResult, pin: Pin | undefined): string {
  return (
    `untraced limit search (${pin ? `server on CPU ${pin.serverCpu}, generator on CPU ${pin.othersCpu}` : 'not pinned'}; ` +
    `a probe passes with every request due answered 2xx and p99 <= ${r.p99Ms} ms), in the order run:\n` +
    baselineTable(r.probes) +
    `untraced limit: ${r.limit} req/s` +
    (r.loadBound ? ' (the generator used more CPU than the server at the failing probe: this may be the generator\'s limit)' : '') +
    '\n'
  );
}

/**
 * Where the requests answered went: a span at the receiver, a span the agent
 * counted as dropped (queue full, export failed), or a request start it
 * counted as given up; events lost are beside (one lost event can cost a
 * request its span). Uncounted: answered requests none of these explain
 * (negative: the server answered some the generator had given up on).
 */
export function ledgerLine(s: StepResult): string {
  const dropped = s.spansDroppedQueueFull + s.spanExportFailures;
  const uncounted = s.answered - s.spansReceived - dropped - s.requestsGivenUp;
  return (
    `answered ${s.answered} = spans ${s.spansReceived} + spans dropped ${dropped} + requests given up ${s.requestsGivenUp} + uncounted ${uncounted}; ` +
    `events lost ${s.eventsLost}, batches dropped ${s.batchesDropped}, parse errors ${s.parseErrors}` +
    (uncounted > 0 && s.eventsLost + s.batchesDropped === 0 ? ' -- SPANS MISSING WITH NOTHING COUNTED' : '')
  );
}

export function formatRamp(r: RampResult): string {
  const header = [
    'rate/s', 'answered/due', 'achieved/s', 'p50/p99 ms',
    'events', 'lost', 'batches dropped', 'spans dropped', 'spans/answered',
    'agent us/req', 'cores: agent', 'server', 'load', 'receiver', 'cpu busy 0/1', 'not ours: server cpu/other', 'agent RSS (peak)', 'zero loss',
  ];
  const rows = r.steps.map((s) => [
    String(s.rate),
    `${s.answered}/${s.scheduled}` + (s.failed ? ` (${s.failed} failed)` : ''),
    s.achievedRate.toFixed(0),
    `${s.p50Ms.toFixed(2)}/${s.p99Ms.toFixed(1)}`,
    String(s.eventsCaptured),
    String(s.eventsLost),
    String(s.batchesDropped),
    String(s.spansDroppedQueueFull + s.spanExportFailures),
    `${s.spansReceived}/${s.answered}`,
    ((s.agentCpuSeconds / Math.max(1, s.answered)) * 1e6).toFixed(1),
    s.cores.agent.toFixed(2),
    s.cores.server.toFixed(2),
    s.cores.load.toFixed(2),
    s.cores.receiver.toFixed(2),
    busy(s.cpuBusy),
    othersCell(s.others),
    `${mib(s.agentRssBytes)} (${mib(s.agentPeakRssBytes)})`,
    (s.zeroLoss ? 'yes' : s.agentLossless ? 'no (load)' : 'no') + (s.drained ? '' : ' (not drained)'),
  ]);
  const failing = r.steps.filter((s) => !s.zeroLoss && s.rate < r.highestZeroLossRate).map((s) => s.rate);
  const loadOnly = r.steps.filter((s) => !s.zeroLoss && s.agentLossless).map((s) => s.rate);
  return (
    'traced by the agent:\n' +
    table(header, rows) +
    `highest rate followed with zero loss and one span per request: ${r.highestZeroLossRate > 0 ? `${r.highestZeroLossRate} req/s` : 'none'}` +
    (failing.length ? ` (lower rates with loss: ${failing.join(', ')})` : '') +
    (loadOnly.length
      ? `\nno (load): the agent lost nothing at ${loadOnly.join(', ')} req/s, but not every request due was answered: ` +
        `the generator and the traced server fell behind (see the CPU columns)`
      : '') +
    '\nledger per step:\n' +
    r.steps.map((s) => `  ${s.rate} req/s: ${ledgerLine(s)}\n`).join('') +
    `agent exit ${r.agent.code}: ${r.agent.eventsCaptured} events over the run, lost ${r.agent.lostInKernel} in the kernel, ${r.agent.lostBehindQueue} behind the native queue\n` +
    (r.agent.requestLedger ? `agent ${r.agent.requestLedger}\n` : '')
  );
}

export function formatIdle(r: IdleResult): string {
  const row = (what: string, m: MemorySample) =>
    `  ${what.padEnd(22)} RSS ${mib(m.rssBytes).padStart(10)}  peak ${mib(m.peakRssBytes).padStart(10)}  connections followed ${m.agentConnections}`;
  return [
    `idle keep-alive connections: ${r.open}/${r.requested} open (${r.failed} failed), ${r.ok} answered 2xx, ${r.spansReceived} spans ` +
      `(${r.spansDropped} dropped), ${r.eventsLost} events lost${r.drained ? '' : ' (not drained)'}`,
    row('agent before', r.before),
    row('half open', r.halfOpen),
    row('all open', r.atOpen),
    row('all open, settled', r.settled),
    row('all closed, settled', r.closed),
    `  RSS per connection, second half: ${(r.marginalBytesPerConnection / 1024).toFixed(2)} KiB`,
    '',
  ].join('\n');
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      target: { type: 'string', default: 'nginx' },
      phases: { type: 'string', default: PHASES.join(',') },
      rates: { type: 'string', default: '2000,5000,10000,15000,20000,25000,30000' },
      'step-seconds': { type: 'string', default: '10' },
      sustain: { type: 'string' },
      seconds: { type: 'string', default: '60' },
      connections: { type: 'string', default: '64' },
      idle: { type: 'string', default: '10000' },
      'idle-rate': { type: 'string', default: '1000' },
      'idle-settle-seconds': { type: 'string', default: '10' },
      'metric-interval': { type: 'string', default: '1000' },
      'find-limit': { type: 'boolean', default: false },
      'at-limit': { type: 'boolean', default: false },
      limit: { type: 'string' },
      over: { type: 'string', default: '1.2' },
      pin: { type: 'string' },
      'limit-from': { type: 'string', default: '5000' },
      'limit-coarse': { type: 'string', default: '5000' },
      'limit-resolution': { type: 'string', default: '500' },
      'limit-step-seconds': { type: 'string', default: '10' },
      'limit-p99-ms': { type: 'string', default: '20' },
      'limit-tries': { type: 'string', default: '2' },
      json: { type: 'boolean', default: false },
    },
  });
  const findLimitOnly = values['find-limit'];
  const atLimit = values['at-limit'];
  if (findLimitOnly && atLimit) throw new Error('--find-limit and --at-limit: one or the other');
  const target = values.target as CapacityTarget;
  if (target !== 'nginx' && target !== 'node') throw new Error(`--target takes nginx or node, got ${JSON.stringify(values.target)}`);
  const phases = findLimitOnly ? [] : atLimit ? (['ramp'] as Phase[]) : (values.phases.split(',') as Phase[]);
  for (const p of phases) if (!PHASES.includes(p)) throw new Error(`--phases takes some of ${PHASES.join(',')}, got ${JSON.stringify(p)}`);
  const sustain = values.sustain !== undefined ? positive('--sustain', values.sustain) : undefined;
  const pinArg = values.pin ?? (findLimitOnly || atLimit ? '1:0' : 'none');
  let pin: Pin | undefined;
  if (pinArg !== 'none') {
    const m = /^(\d+):(\d+)$/.exec(pinArg);
    if (!m || m[1] === m[2]) throw new Error(`--pin takes SERVER_CPU:OTHERS_CPU (two different CPUs) or none, got ${JSON.stringify(pinArg)}`);
    pin = { serverCpu: Number(m[1]), othersCpu: Number(m[2]) };
  }
  const limitSearch: LimitSearchOptions = {
    fromRate: positive('--limit-from', values['limit-from']),
    coarseStep: positive('--limit-coarse', values['limit-coarse']),
    resolution: positive('--limit-resolution', values['limit-resolution']),
    stepSeconds: positive('--limit-step-seconds', values['limit-step-seconds']),
    p99Ms: positive('--limit-p99-ms', values['limit-p99-ms']),
    tries: positive('--limit-tries', values['limit-tries']),
  };
  const given = values.limit !== undefined ? positive('--limit', values.limit) : undefined;
  const over = positive('--over', values.over);
  if (pin) pinSelf(pin.othersCpu);
  const log = (l: string) => process.stderr.write(`capacity: ${l}\n`);
  let limit: LimitResult | undefined;
  let rates: number[];
  if (atLimit) {
    // The search runs first, on its own server, so the ramp's rates are known before it starts.
    if (given === undefined) limit = await findLimit({ target, connections: positive('--connections', values.connections), ...(pin ? { pin } : {}), log }, limitSearch);
    const l = given ?? limit!.limit;
    if (l === 0) throw new Error('no rate passed the untraced limit search');
    rates = [l, Math.round((l * over) / 100) * 100];
  } else {
    rates = sustain !== undefined ? [sustain] : values.rates.split(',').map((r) => positive('--rates', r));
  }
  const o: CapacityOptions = {
    target,
    phases,
    rates,
    stepSeconds: sustain !== undefined || atLimit ? positive('--seconds', values.seconds) : positive('--step-seconds', values['step-seconds']),
    connections: positive('--connections', values.connections),
    idle: positive('--idle', values.idle),
    idleRate: positive('--idle-rate', values['idle-rate']),
    idleSettleSeconds: positive('--idle-settle-seconds', values['idle-settle-seconds']),
    metricIntervalMs: positive('--metric-interval', values['metric-interval']),
    ...(pin ? { pin } : {}),
    ...(findLimitOnly ? { limit: limitSearch } : {}),
    log,
  };
  const loadAverage = os.loadavg();
  const r = { ...(limit ? { limit } : {}), ...(await runCapacity(o)) };
  if (values.json) {
    process.stdout.write(JSON.stringify({ options: { ...o, log: undefined }, cpus: os.cpus().length, loadAverage, ...r }, null, 2) + '\n');
  } else {
    process.stdout.write(
      `target ${o.target}, ${os.cpus().length} CPUs (load average ${loadAverage.map((x) => x.toFixed(1)).join(' ')} at start); ` +
        `open loop over ${o.connections} connections, ${o.stepSeconds} s per step; agent metrics every ${o.metricIntervalMs} ms, ` +
        `span queue ${process.env['OTEL_BSP_MAX_QUEUE_SIZE'] ?? `${AGENT_BSP_DEFAULTS.maxQueueSize} (default)`}, ` +
        `batches of ${process.env['OTEL_BSP_MAX_EXPORT_BATCH_SIZE'] ?? `${AGENT_BSP_DEFAULTS.maxExportBatchSize} (default)`}` +
        (pin ? `; server pinned to CPU ${pin.serverCpu}, this process, generator and agent to CPU ${pin.othersCpu}` : '') +
        '\n',
    );
    if (r.limit) process.stdout.write(formatLimit(r.limit, pin));
    if (r.baseline) process.stdout.write(formatBaseline(r.baseline));
    if (r.ramp) process.stdout.write(formatRamp(r.ramp));
    if (r.idle) process.stdout.write(formatIdle(r.idle));
  }
  // Exit 1 only when the benchmark itself broke, never for a speed.
  const agentsOk = [r.ramp?.agent, r.idle?.agent].every((a) => a === undefined || a.code === 0);
  if (findLimitOnly) return r.limit && r.limit.probes.length > 0 ? 0 : 1;
  return agentsOk && (r.ramp === undefined || r.ramp.steps.some((s) => s.spansReceived > 0)) ? 0 : 1;
}

if (require.main === module) runMain(main);
