// What the agent costs per request, end to end, and what it holds in memory.
//
//   node dist/bench/agent-cost.js [--rates 5000,10000,20000] [--seconds 15] [--rounds 2]
//                                 [--connections 32] [--settle-seconds 5] [--warmup-seconds 3] [--json]
//                                 [--agent-node-options=--max-semi-space-size=8] [--protocol grpc|http/protobuf]
//                                 [--perf DIR]
//                                 [--idle-only [--idle-watch-seconds 60]]
//
// One Node `http` server (bench/targets/http-server.ts, ~100 B JSON on /small)
// traced by the real agent (`bin/ebpf-otel run --pid P`, test/helpers/agent.ts),
// which exports OTLP/gRPC (spans, and its own metrics every second, cumulative)
// to an in-process OtlpReceiver that counts spans without keeping them. The
// open-loop generator (bench/open-loop.ts, its own process) sends keep-alive
// GETs at each fixed rate for --seconds, after --warmup-seconds at the first
// rate that are not counted (steady state, not V8 compiling the agent); rates
// run in ascending order within a round, rounds repeat the whole set, figures
// are medians over rounds. The
// receiver's CPU (this process) is shown too: it decodes every span, and it
// shares the box.
//
// Per rate: the rate achieved (answered 2xx / s: what the box delivered, not
// the rate asked for); the agent's CPU (utime+stime, /proc/PID/stat) per
// answered request over the load window, and over the load window plus the
// agent's drain (its work for those requests that ended after the last one);
// the same without what the idle agent uses over as long (-idle: this bench
// has the agent export its metrics every second, to read its counters per
// step; the default interval is a minute); the server's CPU per request for
// scale; SERVER spans received (only the
// server's pid is traced) against requests answered; the agent's own loss
// counters (bench/agent-metrics.ts) over the step; batches handed to JS and
// span export requests per second (what costs per wake-up, not per request);
// its peak RSS over the step
// (VmHWM, reset before each step through /proc/PID/clear_refs). Each round
// starts a fresh agent on the same server, so a rate's peak is that of an
// agent that has seen only the lower rates.
//
// Idle, before any load (after start and --settle-seconds): the agent's RSS and
// its parts from /proc/PID/status and smaps (file-backed, the BPF ring buffer
// mapping, anonymous), an empty `node` process's RSS for reference, and the V8
// heap of the same agent assembly measured in a probe process (createAgent
// with a replay session for the kernel, exporting to the same receiver): the
// agent exposes no heap statistics of its own. --idle-only stops there: each
// round starts an agent, reads its idle memory and stops it, no load (a quick
// loop for what the idle agent holds; rounds give one idle figure each), and
// --idle-watch-seconds keeps each idle agent that much longer, reading its
// RSS every second (what V8's own idle collections and the agent's metric
// exports do to it afterwards).
//
// Needs root (eBPF) and the build (make build). Generator, server, agent and
// receiver share this machine's CPUs; CPU time, not wall time, is what is
// compared.

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as readline from 'node:readline';
import * as v8 from 'node:v8';
import { parseArgs } from 'node:util';
import { createAgent } from '../src/agent/agent';
import { WallClock } from '../src/capture/clock';
import { parseRunArgs } from '../src/cli/run-command';
import { silentLogger } from '../src/util/log';
import { OtlpReceiver } from '../test/helpers/otlp-receiver';
import { startAgent, type RunningAgent } from '../test/helpers/agent';
import { waitForAgentDrained, type AgentCounters } from './agent-metrics';
import { positive, runMain } from './main';
import { runOpenLoopProcess } from './open-loop';
import { ReplaySession } from './pipeline';
import { cpuSecondsOf, peakRssOf, rssOf, sleep } from './processes';
import { startNodeServer } from './servers';

export interface AgentCostOptions {
  readonly rates: readonly number[];
  readonly seconds: number;
  readonly rounds: number;
  readonly connections: number;
  readonly settleSeconds: number;
  /** Seconds of load at the first rate before anything is counted (default 3): V8 compiles the hot paths. */
  readonly warmupSeconds?: number;
  /** The agent's OTLP protocol (default grpc, as the issue measured; the agent's own default is http/protobuf). */
  readonly protocol?: 'grpc' | 'http/protobuf';
  /** NODE_OPTIONS of the agent alone (V8 settings to compare, e.g. --max-semi-space-size=8); default: none. */
  readonly agentNodeOptions?: string;
  /**
   * Records the agent with `perf record -g` over each rate's load window into
   * DIR/agent-RATE-rROUND.data (start the agent with
   * --agent-node-options=--perf-basic-prof so JIT frames get names).
   */
  readonly perfDir?: string;
  /** Only the idle memory of each round's agent: no warm-up, no rates. */
  readonly idleOnly?: boolean;
  /** With idleOnly: read the idle agent's RSS every second for this long after the idle reading. */
  readonly idleWatchSeconds?: number;
  readonly log?: (line: string) => void;
}

export interface RateRun {
  readonly round: number;
  readonly rate: number;
  readonly seconds: number;
  readonly scheduled: number;
  readonly answered: number;
  /** Errors, non-2xx answers and requests due but never answered. */
  readonly failed: number;
  readonly achievedRate: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly agentCpuLoadSeconds: number;
  readonly agentCpuDrainedSeconds: number;
  /** What the idle agent (this round's) would have used over the load window. */
  readonly agentCpuIdleSeconds: number;
  readonly serverCpuSeconds: number;
  readonly loadCpuSeconds: number;
  /** This process over the load window: mostly the OTLP receiver decoding what the agent sends. */
  readonly receiverCpuSeconds: number;
  /** SERVER spans the receiver got from the load's start until the agent drained. */
  readonly serverSpans: number;
  /** Differences of the agent's own counters over the step. */
  readonly records: number;
  readonly eventsLost: number;
  readonly batchesDropped: number;
  readonly spansDropped: number;
  readonly spanExportFailures: number;
  /** Batches handed to JavaScript, and span export requests the receiver got, from the load's start until drained. */
  readonly batches: number;
  readonly spanExports: number;
  readonly drained: boolean;
  readonly rssAfterBytes: number;
  /** VmHWM over this step alone (reset before it through /proc/PID/clear_refs). */
  readonly peakRssBytes: number;
}

export interface IdleMemory {
  readonly rssBytes: number;
  readonly rssFileBytes: number;
  readonly rssShmemBytes: number;
  readonly rssAnonBytes: number;
  /** Rss of the agent's mappings that are BPF maps (the ring buffer), by smaps name. */
  readonly bpfMappings: Record<string, number>;
  /** An empty `node` process (no module loaded), settled: RSS, file-backed and anonymous. */
  readonly emptyNode: { readonly rssBytes: number; readonly rssFileBytes: number; readonly rssAnonBytes: number };
  /** The same agent assembly in a probe process (replay session for the kernel). */
  readonly probe: HeapProbe;
}

export interface HeapProbe {
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
  readonly heapCommittedBytes: number;
  /** new_space: the young generation (its semispaces are committed whole once grown). */
  readonly youngUsedBytes: number;
  readonly youngCommittedBytes: number;
  readonly externalBytes: number;
  readonly arrayBuffersBytes: number;
  /** Committed memory outside the V8 heap spaces V8 knows of (code range, malloced by V8). */
  readonly mallocedBytes: number;
}

export interface RoundInfo {
  readonly idleRssBytes: number;
  readonly idleRssFileBytes: number;
  readonly idleRssAnonBytes: number;
  /** --idle-watch-seconds: the agent's RSS each second after the idle reading. */
  readonly idleWatchRssBytes?: readonly number[];
  /** The agent's CPU while idle (the settle after start: ticks, its own metric exports), ms per second. */
  readonly idleCpuMsPerSecond: number;
  /** After the last rate and --settle-seconds. */
  readonly rssAfterLoadBytes: number;
  readonly exitCode: number | null;
}

export interface AgentCostResult {
  /** The first round's agent, broken down. */
  readonly idle: IdleMemory;
  readonly runs: RateRun[];
  readonly rounds: RoundInfo[];
  readonly summary: RateSummary[];
}

export interface RateSummary {
  readonly rate: number;
  readonly rounds: number;
  /** Medians over rounds. */
  readonly achievedRate: number;
  readonly agentUsPerRequest: number;
  readonly agentUsPerRequestDrained: number;
  /** agentUsPerRequest without what the idle agent uses over the same time. */
  readonly agentUsPerRequestNetOfIdle: number;
  readonly serverUsPerRequest: number;
  readonly receiverUsPerRequest: number;
  readonly p99Ms: number;
  /** Sums over rounds. */
  readonly answered: number;
  readonly failed: number;
  readonly serverSpans: number;
  readonly records: number;
  readonly eventsLost: number;
  readonly batchesDropped: number;
  readonly spansDropped: number;
  /** Per second of load, medians over rounds: the fixed costs that do not scale with requests. */
  readonly batchesPerSecond: number;
  readonly spanExportsPerSecond: number;
  readonly drained: boolean;
  /** VmHWM over the step, median over rounds (each round a fresh agent, rates ascending). */
  readonly peakRssBytes: number;
}

const DRAIN_TIMEOUT_MS = 30_000;

// ------------------------------------------------------------------ memory

function statusKb(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/**
 * Rss of each BPF map mapping of `pid` (smaps names them anon_inode:bpf-map),
 * summed by name. The kernel maps a ring buffer's pages when mmap is called,
 * and its data pages twice (so a record that wraps reads contiguously): an
 * 8 MiB ring shows 16 MiB of Rss for 8 MiB of memory.
 */
export function bpfMappingsOf(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  let name: string | undefined;
  for (const line of fs.readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+(?:\s+(.*))?$/.exec(line);
    if (head) {
      const n = head[1]?.trim() ?? '';
      name = n.startsWith('anon_inode:bpf') ? n : undefined;
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss && name !== undefined) out[name] = (out[name] ?? 0) + Number(rss[1]) * 1024;
  }
  return out;
}

/** Memory of a node process that loads nothing, after a second. */
async function emptyNode(): Promise<IdleMemory['emptyNode']> {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  try {
    await sleep(1000);
    return { rssBytes: rssOf(child.pid!), rssFileBytes: statusKb(child.pid!, 'RssFile'), rssAnonBytes: statusKb(child.pid!, 'RssAnon') };
  } finally {
    child.kill('SIGKILL');
  }
}

/** Runs this file as a probe: the agent's assembly in its own process, settled; returns its memory. */
async function heapProbe(grpcUrl: string, settleSeconds: number): Promise<HeapProbe> {
  const child = spawn(process.execPath, [__filename, '--probe', grpcUrl, '--settle-seconds', String(settleSeconds)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`heap probe exited ${code}`)));
  });
  return JSON.parse(line) as HeapProbe;
}

/** The probe's side: builds the agent `run` builds, replay session for the kernel, and reports its memory. */
async function probeMain(grpcUrl: string, settleSeconds: number): Promise<void> {
  const options = parseRunArgs(['--all', '--otlp-endpoint', grpcUrl, '--otlp-protocol', 'grpc', '--metric-interval', '1s'], { env: {} });
  if (options === 'help') throw new Error('unreachable');
  const agent = createAgent(options, {
    logger: silentLogger,
    env: { OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: 'cumulative' },
    openSession: () => new ReplaySession(),
    clock: new WallClock(),
  });
  await agent.start();
  await sleep(settleSeconds * 1000);
  const spaces = v8.getHeapSpaceStatistics();
  const young = spaces.find((s) => s.space_name === 'new_space');
  const heap = v8.getHeapStatistics();
  const mem = process.memoryUsage();
  const probe: HeapProbe = {
    rssBytes: mem.rss,
    heapUsedBytes: heap.used_heap_size,
    heapCommittedBytes: heap.total_physical_size,
    youngUsedBytes: young?.space_used_size ?? 0,
    youngCommittedBytes: young?.physical_space_size ?? 0,
    externalBytes: mem.external,
    arrayBuffersBytes: mem.arrayBuffers,
    mallocedBytes: heap.malloced_memory,
  };
  process.stdout.write(JSON.stringify(probe) + '\n');
  await agent.stop();
}

// ------------------------------------------------------------------ load

function median(xs: number[]): number {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Resets the peak RSS (VmHWM) of `pid` to its RSS now (proc(5), clear_refs "5"). */
function resetPeakRss(pid: number): void {
  fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

/** `perf record -g` on `pid` until stop() (SIGINT, so perf writes its file whole). */
function startPerf(pid: number, out: string): { stop(): Promise<void> } {
  const child = spawn('perf', ['record', '-g', '-F', '999', '-p', String(pid), '-o', out], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    stop: async () => {
      child.kill('SIGINT');
      await exited;
    },
  };
}

async function runRate(
  round: number,
  rate: number,
  url: string,
  agent: RunningAgent,
  serverPid: number,
  receiver: OtlpReceiver,
  prev: AgentCounters,
  idleCpuMsPerSecond: number,
  o: AgentCostOptions,
) {
  resetPeakRss(agent.pid);
  const receiverCpu0 = process.cpuUsage();
  const agentCpu0 = cpuSecondsOf(agent.pid);
  const serverCpu0 = cpuSecondsOf(serverPid);
  const spans0 = receiver.spansReceivedByKind[2]!;
  const calls0 = receiver.calls.length;
  const perf = o.perfDir !== undefined ? startPerf(agent.pid, `${o.perfDir}/agent-${rate}-r${round}.data`) : undefined;
  const ol = await runOpenLoopProcess({ url, rate, seconds: o.seconds, connections: o.connections });
  await perf?.stop();
  const agentCpuLoadSeconds = cpuSecondsOf(agent.pid) - agentCpu0;
  const serverCpuSeconds = cpuSecondsOf(serverPid) - serverCpu0;
  const rc = process.cpuUsage(receiverCpu0);
  const rssAfterBytes = rssOf(agent.pid);
  const d = await waitForAgentDrained(receiver, DRAIN_TIMEOUT_MS);
  const c = d.counters;
  const answered = ol.completed - ol.non2xx;
  const run: RateRun = {
    round,
    rate,
    seconds: ol.seconds,
    scheduled: ol.scheduled,
    answered,
    failed: ol.errors + ol.non2xx + ol.unfinished,
    achievedRate: answered / ol.seconds,
    p50Ms: ol.p50Ms,
    p99Ms: ol.p99Ms,
    agentCpuLoadSeconds,
    agentCpuDrainedSeconds: cpuSecondsOf(agent.pid) - agentCpu0,
    agentCpuIdleSeconds: (idleCpuMsPerSecond / 1e3) * ol.seconds,
    serverCpuSeconds,
    loadCpuSeconds: ol.cpuSeconds,
    receiverCpuSeconds: (rc.user + rc.system) / 1e6,
    serverSpans: receiver.spansReceivedByKind[2]! - spans0,
    records: c.records - prev.records,
    eventsLost: c.eventsLost - prev.eventsLost,
    batchesDropped: c.batchesDropped - prev.batchesDropped,
    spansDropped: c.spansDroppedQueueFull - prev.spansDroppedQueueFull,
    spanExportFailures: c.spanExportFailures - prev.spanExportFailures,
    batches: c.batches - prev.batches,
    spanExports: receiver.calls.slice(calls0).filter((x) => x.signal === 'traces').length,
    drained: d.drained,
    rssAfterBytes,
    peakRssBytes: peakRssOf(agent.pid),
  };
  return { run, counters: c };
}

const AGENT_ENV = {
  OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
  OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: 'cumulative',
  // One span per request is what the loss figure is judged by.
  OTEL_TRACES_SAMPLER: 'always_on',
};

function idleOf(pid: number) {
  return {
    rssBytes: rssOf(pid),
    rssFileBytes: statusKb(pid, 'RssFile'),
    rssShmemBytes: statusKb(pid, 'RssShmem'),
    rssAnonBytes: statusKb(pid, 'RssAnon'),
    bpfMappings: bpfMappingsOf(pid),
  };
}

/** Each round: a fresh agent on the same server, idle memory, a warm-up, then every rate in ascending order. */
export async function runAgentCost(o: AgentCostOptions): Promise<AgentCostResult> {
  const receiver = await OtlpReceiver.start({ keepSpans: false });
  const server = await startNodeServer();
  let agent: RunningAgent | undefined;
  try {
    const serverPid = server.pids[0]!;
    const url = `http://127.0.0.1:${server.port}/small`;
    const runs: RateRun[] = [];
    const rounds: RoundInfo[] = [];
    let idle: IdleMemory | undefined;
    for (let round = 1; round <= o.rounds; round++) {
      receiver.reset();
      agent = await startAgent(['run', '--pid', String(serverPid), '--metric-interval', '1000ms'], {
        env: {
          ...AGENT_ENV,
          ...(o.protocol === 'http/protobuf'
            ? { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_EXPORTER_OTLP_ENDPOINT: receiver.httpUrl }
            : { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.grpcUrl }),
          ...(o.agentNodeOptions !== undefined ? { NODE_OPTIONS: o.agentNodeOptions } : {}) },
      });
      o.log?.(`round ${round}/${o.rounds}: agent ${agent.pid} traces server ${serverPid}; settling ${o.settleSeconds} s`);
      // Start-up first: the idle CPU is read over the settle after it.
      await sleep(2000);
      const idleCpu0 = cpuSecondsOf(agent.pid);
      const idleT0 = Date.now();
      await sleep(o.settleSeconds * 1000);
      const idleCpuMsPerSecond = ((cpuSecondsOf(agent.pid) - idleCpu0) * 1e3) / ((Date.now() - idleT0) / 1e3);
      const idleBase = idleOf(agent.pid);
      if (idle === undefined) {
        o.log?.('idle: empty node and heap probe');
        idle = { ...idleBase, emptyNode: await emptyNode(), probe: await heapProbe(receiver.grpcUrl, o.settleSeconds) };
      }
      const idleRound = { idleRssBytes: idleBase.rssBytes, idleRssFileBytes: idleBase.rssFileBytes, idleRssAnonBytes: idleBase.rssAnonBytes, idleCpuMsPerSecond };
      if (o.idleOnly) {
        o.log?.(`round ${round}/${o.rounds}: idle RSS ${mib(idleBase.rssBytes)} (file-backed ${mib(idleBase.rssFileBytes)}, anonymous ${mib(idleBase.rssAnonBytes)})`);
        const idleWatchRssBytes: number[] = [];
        for (let s = 0; s < (o.idleWatchSeconds ?? 0); s++) {
          await sleep(1000);
          idleWatchRssBytes.push(rssOf(agent.pid));
        }
        const stopped = await agent.stop();
        agent = undefined;
        rounds.push({ ...idleRound, idleWatchRssBytes, rssAfterLoadBytes: NaN, exitCode: stopped.code });
        continue;
      }
      // Warm-up, not counted: the wasm parser compiled, hot paths optimized.
      // 1 s at 500 req/s left the first rate paying for V8's compiler (a
      // second 5k step right after the first cost half as much per request).
      await runOpenLoopProcess({ url, rate: o.rates[0]!, seconds: o.warmupSeconds ?? 3, connections: o.connections });
      let prev = (await waitForAgentDrained(receiver, DRAIN_TIMEOUT_MS)).counters;
      for (const rate of o.rates) {
        o.log?.(`round ${round}/${o.rounds}: ${rate} req/s for ${o.seconds} s`);
        const r = await runRate(round, rate, url, agent, serverPid, receiver, prev, idleCpuMsPerSecond, o);
        runs.push(r.run);
        prev = r.counters;
      }
      await sleep(o.settleSeconds * 1000);
      const rssAfterLoadBytes = rssOf(agent.pid);
      const stopped = await agent.stop();
      agent = undefined;
      rounds.push({ ...idleRound, rssAfterLoadBytes, exitCode: stopped.code });
    }
    return { idle: idle!, runs, rounds, summary: summarize(runs, o.rates) };
  } finally {
    if (agent) await agent.stop().catch(() => undefined);
    await server.stop();
    await receiver.close();
  }
}

export function summarize(runs: readonly RateRun[], rates: readonly number[]): RateSummary[] {
  return rates.map((rate) => {
    const mine = runs.filter((r) => r.rate === rate);
    const per = (f: (r: RateRun) => number) => median(mine.map((r) => (f(r) / Math.max(1, r.answered)) * 1e6));
    const sum = (f: (r: RateRun) => number) => mine.reduce((a, r) => a + f(r), 0);
    return {
      rate,
      rounds: mine.length,
      achievedRate: median(mine.map((r) => r.achievedRate)),
      agentUsPerRequest: per((r) => r.agentCpuLoadSeconds),
      agentUsPerRequestDrained: per((r) => r.agentCpuDrainedSeconds),
      agentUsPerRequestNetOfIdle: per((r) => r.agentCpuLoadSeconds - r.agentCpuIdleSeconds),
      serverUsPerRequest: per((r) => r.serverCpuSeconds),
      receiverUsPerRequest: per((r) => r.receiverCpuSeconds),
      p99Ms: median(mine.map((r) => r.p99Ms)),
      answered: sum((r) => r.answered),
      failed: sum((r) => r.failed),
      serverSpans: sum((r) => r.serverSpans),
      records: sum((r) => r.records),
      eventsLost: sum((r) => r.eventsLost),
      batchesDropped: sum((r) => r.batchesDropped),
      spansDropped: sum((r) => r.spansDropped + r.spanExportFailures),
      batchesPerSecond: median(mine.map((r) => r.batches / r.seconds)),
      spanExportsPerSecond: median(mine.map((r) => r.spanExports / r.seconds)),
      drained: mine.every((r) => r.drained),
      peakRssBytes: median(mine.map((r) => r.peakRssBytes)),
    };
  });
}

// ------------------------------------------------------------------ output

const mib = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;

function table(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((row) => row[i]!.length)));
  const line = (row: string[]) => row.map((c, i) => c.padStart(widths[i]!)).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n') + '\n';
}

export function formatIdle(m: IdleMemory): string {
  const p = m.probe;
  const bpf = Object.values(m.bpfMappings).reduce((a, n) => a + n, 0);
  const rest = m.rssAnonBytes - p.heapCommittedBytes;
  const e = m.emptyNode;
  return [
    `idle agent RSS ${mib(m.rssBytes)} = BPF map mappings ${mib(bpf)} + other file-backed ${mib(m.rssFileBytes - bpf)} + shared ${mib(m.rssShmemBytes)} + anonymous ${mib(m.rssAnonBytes)}`,
    `  BPF map mappings (the ring buffer; its data pages are mapped twice): ` +
      (Object.keys(m.bpfMappings).length ? Object.entries(m.bpfMappings).map(([k, v]) => `${k} ${mib(v)}`).join(', ') : 'none mapped'),
    `  empty node process, for reference: RSS ${mib(e.rssBytes)} = file-backed ${mib(e.rssFileBytes)} + anonymous ${mib(e.rssAnonBytes)}`,
    `  V8 heap (probe: same agent assembly, replay session, own process; RSS ${mib(p.rssBytes)}): ` +
      `used ${mib(p.heapUsedBytes)}, committed ${mib(p.heapCommittedBytes)}; young generation used ${mib(p.youngUsedBytes)}, committed ${mib(p.youngCommittedBytes)}`,
    `  external ${mib(p.externalBytes)} (ArrayBuffers ${mib(p.arrayBuffersBytes)}), V8 malloced ${mib(p.mallocedBytes)} (probe)`,
    `  native malloc and the rest: the agent's anonymous minus the probe's committed V8 heap = ${mib(rest)}`,
    '',
  ].join('\n');
}

export function formatRates(s: readonly RateSummary[]): string {
  const header = [
    'rate/s', 'achieved/s', 'answered (failed)', 'p99 ms', 'agent µs/req', '+drain', '-idle', 'server µs/req', 'receiver µs/req',
    'SERVER spans/answered', 'records', 'lost events', 'batches dropped', 'spans dropped', 'batches/s', 'span exports/s', 'peak RSS',
  ];
  const rows = s.map((r) => [
    String(r.rate),
    r.achievedRate.toFixed(0),
    `${r.answered} (${r.failed})`,
    r.p99Ms.toFixed(1),
    r.agentUsPerRequest.toFixed(1),
    r.agentUsPerRequestDrained.toFixed(1),
    r.agentUsPerRequestNetOfIdle.toFixed(1),
    r.serverUsPerRequest.toFixed(1),
    r.receiverUsPerRequest.toFixed(1),
    `${r.serverSpans}/${r.answered} (${((r.serverSpans / Math.max(1, r.answered)) * 100).toFixed(1)}%)`,
    String(r.records),
    String(r.eventsLost),
    String(r.batchesDropped),
    String(r.spansDropped),
    r.batchesPerSecond.toFixed(1),
    r.spanExportsPerSecond.toFixed(1),
    mib(r.peakRssBytes) + (r.drained ? '' : ' (not drained)'),
  ]);
  return table(header, rows);
}

function protocolArg(v: string): 'grpc' | 'http/protobuf' {
  if (v === 'grpc') return 'grpc';
  if (v === 'http/protobuf' || v === 'http') return 'http/protobuf';
  throw new Error(`--protocol: expected grpc or http/protobuf, got ${JSON.stringify(v)}`);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      rates: { type: 'string', default: '5000,10000,20000' },
      seconds: { type: 'string', default: '15' },
      rounds: { type: 'string', default: '2' },
      connections: { type: 'string', default: '32' },
      'settle-seconds': { type: 'string', default: '5' },
      'warmup-seconds': { type: 'string', default: '3' },
      probe: { type: 'string' },
      'agent-node-options': { type: 'string' },
      perf: { type: 'string' },
      protocol: { type: 'string', default: 'grpc' },
      json: { type: 'boolean', default: false },
      'idle-only': { type: 'boolean', default: false },
      'idle-watch-seconds': { type: 'string', default: '0' },
    },
  });
  const settleSeconds = positive('--settle-seconds', values['settle-seconds']);
  if (values.probe !== undefined) {
    await probeMain(values.probe, settleSeconds);
    return 0;
  }
  const o: AgentCostOptions = {
    rates: values.rates.split(',').map((r) => positive('--rates', r)).sort((a, b) => a - b),
    seconds: positive('--seconds', values.seconds),
    rounds: positive('--rounds', values.rounds),
    connections: positive('--connections', values.connections),
    settleSeconds,
    warmupSeconds: positive('--warmup-seconds', values['warmup-seconds']),
    protocol: protocolArg(values.protocol),
    idleOnly: values['idle-only'],
    idleWatchSeconds: Number(values['idle-watch-seconds']),
    ...(values['agent-node-options'] !== undefined ? { agentNodeOptions: values['agent-node-options'] } : {}),
    ...(values.perf !== undefined ? { perfDir: values.perf } : {}),
    log: (l) => process.stderr.write(`agent-cost: ${l}\n`),
  };
  const loadAverage = os.loadavg();
  const r = await runAgentCost(o);
  if (values.json) {
    process.stdout.write(JSON.stringify({ options: { ...o, log: undefined }, cpus: os.cpus().length, loadAverage, ...r }, null, 2) + '\n');
  } else {
    process.stdout.write(
      `node http target traced by the agent (${o.protocol === 'http/protobuf' ? 'OTLP/HTTP' : 'OTLP/gRPC'} to an in-process receiver); ${os.cpus().length} CPUs, load average ` +
        `${loadAverage.map((x) => x.toFixed(1)).join(' ')} at start; ${o.rounds} round(s) of ${o.seconds} s per rate, ` +
        `open loop over ${o.connections} keep-alive connections; medians over rounds (counts summed)\n`,
    );
    process.stdout.write(formatIdle(r.idle));
    const rs = r.rounds;
    if (o.idleOnly) {
      process.stdout.write(
        `idle agent RSS per round (file-backed + anonymous): ${rs.map((x) => `${mib(x.idleRssBytes)} (${mib(x.idleRssFileBytes)} + ${mib(x.idleRssAnonBytes)})`).join(', ')}; ` +
          `median ${mib(median(rs.map((x) => x.idleRssBytes)))}; idle CPU ${median(rs.map((x) => x.idleCpuMsPerSecond)).toFixed(1)} ms/s; agent exit ${rs.map((x) => x.exitCode).join(', ')}\n`,
      );
      for (const [i, x] of rs.entries()) {
        const w = x.idleWatchRssBytes ?? [];
        if (w.length === 0) continue;
        process.stdout.write(
          `round ${i + 1}, RSS over the ${w.length} s after: min ${mib(Math.min(...w))}, max ${mib(Math.max(...w))}, last ${mib(w[w.length - 1]!)}; ` +
            `every 10 s: ${w.filter((_, j) => j % 10 === 9).map((b) => (b / 1048576).toFixed(1)).join(' ')}\n`,
        );
      }
      return rs.every((x) => x.exitCode === 0) ? 0 : 1;
    }
    process.stdout.write(formatRates(r.summary));
    process.stdout.write(
      `agent idle CPU ${median(rs.map((x) => x.idleCpuMsPerSecond)).toFixed(1)} ms/s over ${o.settleSeconds} s ` +
        `(its ticks and its metric export every second, which this bench needs to read its counters per step; -idle subtracts it); ` +
        `agent RSS (medians over rounds): idle ${mib(median(rs.map((x) => x.idleRssBytes)))}, ` +
        `peak per rate in the table (VmHWM over the step), ` +
        `after the load and ${o.settleSeconds} s ${mib(median(rs.map((x) => x.rssAfterLoadBytes)))}; agent exit ${rs.map((x) => x.exitCode).join(', ')}\n`,
    );
  }
  // Exit 1 only when the benchmark itself broke, never for a figure.
  return r.rounds.every((x) => x.exitCode === 0) && r.runs.every((x) => x.answered > 0 && x.serverSpans > 0) ? 0 : 1;
}

if (require.main === module) runMain(main);
