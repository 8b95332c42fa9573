// What the agent costs a traced HTTP server, measured side by side in one run.
//
//   node dist/bench/overhead.js [--seconds N] [--rounds N] [--targets node,nginx,grpc] [--json]
//                               [--rate 5000] [--connections 32] [--threads 1] [--grpc-channels 4] [--grpc-rate 500]
//
// Targets: a Node `http` server (bench/targets/http-server.ts), nginx from
// Debian (run by us with a generated config in a temp prefix, one worker) and
// a @grpc/grpc-js server (bench/targets/grpc-server.ts, h2c, unary calls).
// Arms per target, run in turn within each round so drift hits them alike:
//   untraced  the server alone;
//   agent     the same server with `bin/ebpf-otel run --pid <server pids>`
//             exporting OTLP/gRPC to an in-process OtlpReceiver;
//   sdk       (Node only) the server with the OpenTelemetry Node SDK and its
//             HTTP instrumentation preloaded (bench/targets/otel-sdk.ts),
//             exporting to the same receiver.
// Each arm starts a fresh server (and agent), then runs, each for --seconds:
// wrk (closed loop, keep-alive, --latency) on /small (~100 B) and on /large
// (16 KiB), then the open-loop generator (bench/open-loop.ts, its own process)
// at --rate on /small, latency measured from each request's due time. The gRPC
// target gets the same three runs from a grpc-js client (bench/grpc-load.ts,
// its own process): --connections calls in flight over --grpc-channels
// channels (one HTTP/2 connection each), unary calls answered by ~100 B
// ("small") and 16 KiB ("large") messages, then open loop at --grpc-rate
// (grpc-js serves a few times fewer calls per CPU second than Node's http
// does requests: on this box about 300 us of server CPU a call).
//
// Reported per traced arm against the untraced arm of the same target and
// round (median over rounds): throughput and p50/p99 latency ratios under
// saturation; open-loop p50/p99/p99.9; agent CPU seconds per 10 000 requests
// (/proc/<pid>/stat utime+stime over the workloads, startup excluded) and peak
// RSS (VmHWM); events lost (the agent's exit summary); SERVER spans received
// for the server's pids against requests served. Server CPU per 10 000
// requests is shown for every arm (the SDK's cost lands there).
//
// The agent inherits this process's environment, so OTEL_BSP_* and the like
// set around the benchmark reach it; the Node targets get no OTEL_* variables
// but the SDK arm's own.
//
// Needs root (eBPF), nginx and wrk (scripts/setup.sh installs them), and the
// build (make build). Load generator, server and agent share this machine's
// CPUs: the figures say what the agent costs on this box, not in general.

import { runMain } from './main';
import * as os from 'node:os';
import { parseArgs } from 'node:util';
import { OtlpReceiver } from '../test/helpers/otlp-receiver';
import { startAgent, type RunningAgent } from '../test/helpers/agent';
import { latestAgentCounters } from './agent-metrics';
import { runOpenLoopProcess, type OpenLoopResult } from './open-loop';
import { cpuSecondsOf, peakRssOf, runProcess } from './processes';
import { runGrpcLoadProcess } from './grpc-load';
import { startGrpcServer, startNginx, startNodeServer, type Server } from './servers';

export type TargetName = 'node' | 'nginx' | 'grpc';
export type ArmName = 'untraced' | 'agent' | 'sdk';

export const ARMS: Record<TargetName, ArmName[]> = { node: ['untraced', 'agent', 'sdk'], nginx: ['untraced', 'agent'], grpc: ['untraced', 'agent'] };

export interface OverheadOptions {
  readonly seconds: number;
  readonly rounds: number;
  readonly targets: TargetName[];
  /** Open-loop arrival rate, requests per second. */
  readonly rate: number;
  readonly connections: number;
  readonly threads: number;
  /** gRPC target: channels (connections) the calls are spread over. */
  readonly grpcChannels: number;
  /** gRPC target: open-loop calls per second. */
  readonly grpcRate: number;
  /** Progress lines (default: none). */
  readonly log?: (line: string) => void;
}

export interface WrkResult {
  readonly requests: number;
  readonly seconds: number;
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p75Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly non2xx: number;
  readonly socketErrors: number;
}

export interface ArmRun {
  readonly round: number;
  readonly target: TargetName;
  readonly arm: ArmName;
  readonly small: WrkResult;
  readonly large: WrkResult;
  readonly openLoop: OpenLoopResult;
  /** Requests the server answered: both wrk runs plus the open-loop run. */
  readonly requests: number;
  /** SERVER spans the receiver got whose resource is one of the server's pids. */
  readonly spans: number;
  readonly serverCpuSeconds: number;
  /** CPU of this process (the OTLP receiver decoding what it is sent), workloads and flush. */
  readonly receiverCpuSeconds: number;
  readonly agent?: {
    readonly cpuSeconds: number;
    readonly peakRssBytes: number;
    readonly eventsCaptured: number;
    readonly lostInKernel: number;
    readonly lostBehindQueue: number;
    /** From the agent's own metrics (ebpf_otel.*) as exported at its exit. */
    readonly records: number;
    readonly parseErrors: number;
    readonly spansDroppedQueueFull: number;
    readonly exitCode: number | null;
  };
}

export interface ArmSummary {
  readonly target: TargetName;
  readonly arm: ArmName;
  readonly rounds: number;
  /** Medians over rounds. */
  readonly smallRps: number;
  readonly smallP50Ms: number;
  readonly smallP99Ms: number;
  readonly largeRps: number;
  readonly largeP50Ms: number;
  readonly largeP99Ms: number;
  readonly openLoopP50Ms: number;
  readonly openLoopP99Ms: number;
  readonly openLoopP999Ms: number;
  readonly openLoopUnfinished: number;
  readonly serverCpuSecondsPer10k: number;
  readonly receiverCpuSecondsPer10k: number;
  /** Medians of per-round ratios to the untraced arm (1 for untraced). */
  readonly ratios: {
    readonly smallRps: number;
    readonly smallP50: number;
    readonly smallP99: number;
    readonly largeRps: number;
    readonly largeP50: number;
    readonly largeP99: number;
  };
  readonly agentCpuSecondsPer10k?: number;
  readonly agentPeakRssBytes?: number;
  /** Sums over rounds. */
  readonly eventsLostInKernel?: number;
  readonly eventsLostBehindQueue?: number;
  readonly agentRecords?: number;
  readonly agentParseErrors?: number;
  readonly agentSpansDroppedQueueFull?: number;
  readonly spans: number;
  readonly requests: number;
}

// ------------------------------------------------------------------ load

const UNIT_MS: Record<string, number> = { us: 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 };

/** Parses `wrk --latency` output. */
export function parseWrk(out: string): WrkResult {
  const num = (re: RegExp, what: string) => {
    const m = re.exec(out);
    if (!m) throw new Error(`wrk output has no ${what}:\n${out}`);
    return m;
  };
  const pct = (p: number) => {
    const m = num(new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m|h)\\s*$`, 'm'), `${p}% latency`);
    return Number(m[1]) * UNIT_MS[m[2]!]!;
  };
  const total = num(/(\d+) requests in ([\d.]+)(us|ms|s|m|h)/, 'request count');
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    requests: Number(total[1]),
    seconds: (Number(total[2]) * UNIT_MS[total[3]!]!) / 1e3,
    requestsPerSecond: Number(num(/Requests\/sec:\s+([\d.]+)/, 'requests/sec')[1]),
    p50Ms: pct(50),
    p75Ms: pct(75),
    p90Ms: pct(90),
    p99Ms: pct(99),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
    socketErrors: sock ? sock.slice(1).reduce((a, n) => a + Number(n), 0) : 0,
  };
}

async function wrk(url: string, o: OverheadOptions): Promise<WrkResult> {
  const secs = Math.max(1, Math.round(o.seconds));
  return parseWrk(await runProcess('wrk', ['-t', String(o.threads), '-c', String(o.connections), '-d', `${secs}s`, '--latency', url]));
}

// ------------------------------------------------------------------ one arm

const SUMMARY_RE = /captured (\d+) events \(lost (\d+) in the kernel, (\d+) behind the native queue\)/;

/** The three workloads of an arm: closed loop on the small and the large answer, then open loop on the small one. */
interface Workloads {
  small(): Promise<WrkResult>;
  large(): Promise<WrkResult>;
  openLoop(): Promise<OpenLoopResult>;
}

function workloads(target: TargetName, server: Server, o: OverheadOptions): Workloads {
  if (target === 'grpc') {
    const common = { target: `127.0.0.1:${server.port}`, seconds: o.seconds, concurrency: o.connections, channels: o.grpcChannels, rate: o.grpcRate };
    return {
      small: () => runGrpcLoadProcess({ ...common, mode: 'closed', message: 'small' }),
      large: () => runGrpcLoadProcess({ ...common, mode: 'closed', message: 'large' }),
      openLoop: () => runGrpcLoadProcess({ ...common, mode: 'open', message: 'small' }),
    };
  }
  const base = `http://127.0.0.1:${server.port}`;
  return {
    small: () => wrk(`${base}/small`, o),
    large: () => wrk(`${base}/large`, o),
    openLoop: () => runOpenLoopProcess({ url: `${base}/small`, rate: o.rate, seconds: o.seconds, connections: o.connections }),
  };
}

function startTarget(target: TargetName, arm: ArmName, receiver: OtlpReceiver): Promise<Server> {
  switch (target) {
    case 'nginx': return startNginx();
    case 'grpc': return startGrpcServer();
    case 'node': return startNodeServer(arm === 'sdk' ? receiver.grpcUrl : undefined);
  }
}

async function runArm(round: number, target: TargetName, arm: ArmName, receiver: OtlpReceiver, o: OverheadOptions): Promise<ArmRun> {
  receiver.reset();
  const server = await startTarget(target, arm, receiver);
  let agent: RunningAgent | undefined;
  let agentInfo: ArmRun['agent'];
  try {
    if (arm === 'agent') {
      agent = await startAgent(['run', ...server.pids.flatMap((p) => ['--pid', String(p)])], {
        env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.grpcUrl, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' },
      });
    }
    const load = workloads(target, server, o);
    const agentCpu0 = agent ? cpuSecondsOf(agent.pid) : 0;
    const serverCpu0 = server.pids.reduce((a, p) => a + cpuSecondsOf(p), 0);
    const receiverCpu0 = process.cpuUsage();
    const small = await load.small();
    const large = await load.large();
    const ol = await load.openLoop();
    const serverCpu = server.pids.reduce((a, p) => a + cpuSecondsOf(p), 0) - serverCpu0;
    if (agent) {
      const cpuSeconds = cpuSecondsOf(agent.pid) - agentCpu0;
      const peakRssBytes = peakRssOf(agent.pid);
      const stopped = await agent.stop();
      agent = undefined;
      const m = SUMMARY_RE.exec(stopped.stderr);
      const c = latestAgentCounters(receiver);
      agentInfo = {
        cpuSeconds,
        peakRssBytes,
        eventsCaptured: m ? Number(m[1]) : NaN,
        lostInKernel: m ? Number(m[2]) : NaN,
        lostBehindQueue: m ? Number(m[3]) : NaN,
        records: c?.records ?? NaN,
        parseErrors: c?.parseErrors ?? NaN,
        spansDroppedQueueFull: c?.spansDroppedQueueFull ?? NaN,
        exitCode: stopped.code,
      };
    }
    // The SDK flushes its spans on SIGTERM, before it exits.
    await server.stop();
    const rc = process.cpuUsage(receiverCpu0);
    const pids = new Set(server.pids);
    const spans = receiver.spans.filter((s) => s.kind === 2 && pids.has(Number(s.resource['process.pid']))).length;
    receiver.reset();
    return {
      round,
      target,
      arm,
      small,
      large,
      openLoop: ol,
      requests: small.requests + large.requests + ol.completed,
      spans,
      serverCpuSeconds: serverCpu,
      receiverCpuSeconds: (rc.user + rc.system) / 1e6,
      ...(agentInfo ? { agent: agentInfo } : {}),
    };
  } finally {
    if (agent) await agent.stop().catch(() => undefined);
    await server.stop();
  }
}

// ------------------------------------------------------------------ all arms, summary

export async function runOverhead(o: OverheadOptions): Promise<{ runs: ArmRun[]; summary: ArmSummary[] }> {
  const receiver = await OtlpReceiver.start();
  const runs: ArmRun[] = [];
  try {
    for (let round = 1; round <= o.rounds; round++) {
      for (const target of o.targets) {
        for (const arm of ARMS[target]) {
          o.log?.(`round ${round}/${o.rounds}: ${target} ${arm}`);
          runs.push(await runArm(round, target, arm, receiver, o));
        }
      }
    }
  } finally {
    await receiver.close();
  }
  return { runs, summary: summarize(runs) };
}

function median(xs: number[]): number {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function summarize(runs: ArmRun[]): ArmSummary[] {
  const out: ArmSummary[] = [];
  const targets = [...new Set(runs.map((r) => r.target))];
  for (const target of targets) {
    for (const arm of ARMS[target]) {
      const mine = runs.filter((r) => r.target === target && r.arm === arm);
      if (mine.length === 0) continue;
      const base = (r: ArmRun) => runs.find((b) => b.target === target && b.arm === 'untraced' && b.round === r.round);
      const ratio = (f: (r: ArmRun) => number) => median(mine.map((r) => { const b = base(r); return b ? f(r) / f(b) : NaN; }));
      const agents = mine.map((r) => r.agent).filter((a): a is NonNullable<ArmRun['agent']> => a !== undefined);
      const requests = mine.reduce((a, r) => a + r.requests, 0);
      out.push({
        target,
        arm,
        rounds: mine.length,
        smallRps: median(mine.map((r) => r.small.requestsPerSecond)),
        smallP50Ms: median(mine.map((r) => r.small.p50Ms)),
        smallP99Ms: median(mine.map((r) => r.small.p99Ms)),
        largeRps: median(mine.map((r) => r.large.requestsPerSecond)),
        largeP50Ms: median(mine.map((r) => r.large.p50Ms)),
        largeP99Ms: median(mine.map((r) => r.large.p99Ms)),
        openLoopP50Ms: median(mine.map((r) => r.openLoop.p50Ms)),
        openLoopP99Ms: median(mine.map((r) => r.openLoop.p99Ms)),
        openLoopP999Ms: median(mine.map((r) => r.openLoop.p999Ms)),
        openLoopUnfinished: mine.reduce((a, r) => a + r.openLoop.unfinished, 0),
        serverCpuSecondsPer10k: median(mine.map((r) => (r.serverCpuSeconds / r.requests) * 1e4)),
        receiverCpuSecondsPer10k: median(mine.map((r) => (r.receiverCpuSeconds / r.requests) * 1e4)),
        ratios: {
          smallRps: ratio((r) => r.small.requestsPerSecond),
          smallP50: ratio((r) => r.small.p50Ms),
          smallP99: ratio((r) => r.small.p99Ms),
          largeRps: ratio((r) => r.large.requestsPerSecond),
          largeP50: ratio((r) => r.large.p50Ms),
          largeP99: ratio((r) => r.large.p99Ms),
        },
        ...(agents.length > 0
          ? {
              agentCpuSecondsPer10k: median(mine.map((r) => (r.agent ? (r.agent.cpuSeconds / r.requests) * 1e4 : NaN))),
              agentPeakRssBytes: Math.max(...agents.map((a) => a.peakRssBytes)),
              eventsLostInKernel: agents.reduce((a, x) => a + x.lostInKernel, 0),
              eventsLostBehindQueue: agents.reduce((a, x) => a + x.lostBehindQueue, 0),
              agentRecords: agents.reduce((a, x) => a + x.records, 0),
              agentParseErrors: agents.reduce((a, x) => a + x.parseErrors, 0),
              agentSpansDroppedQueueFull: agents.reduce((a, x) => a + x.spansDroppedQueueFull, 0),
            }
          : {}),
        spans: mine.reduce((a, r) => a + r.spans, 0),
        requests,
      });
    }
  }
  return out;
}

export function formatTable(summary: ArmSummary[]): string {
  const x = (r: number) => (Number.isNaN(r) ? '' : ` (${r.toFixed(2)}x)`);
  const k = (n: number) => `${(n / 1e3).toFixed(1)}k`;
  const ms = (n: number) => (n < 10 ? n.toFixed(2) : n.toFixed(1));
  const header = [
    'target', 'arm',
    'closed small req/s', 'p50 ms', 'p99 ms',
    'closed large req/s', 'p50 ms', 'p99 ms',
    'open-loop p50/p99/p99.9 ms',
    'server cpu s/10k', 'agent cpu s/10k', 'receiver cpu s/10k', 'agent peak RSS',
    'lost kern/queue', 'records/parse errors/spans dropped (queue full)', 'spans/requests',
  ];
  const rows = summary.map((s) => {
    const untraced = s.arm === 'untraced';
    const rx = (r: number) => (untraced ? '' : x(r));
    return [
      s.target,
      s.arm,
      k(s.smallRps) + rx(s.ratios.smallRps),
      ms(s.smallP50Ms) + rx(s.ratios.smallP50),
      ms(s.smallP99Ms) + rx(s.ratios.smallP99),
      k(s.largeRps) + rx(s.ratios.largeRps),
      ms(s.largeP50Ms) + rx(s.ratios.largeP50),
      ms(s.largeP99Ms) + rx(s.ratios.largeP99),
      `${ms(s.openLoopP50Ms)}/${ms(s.openLoopP99Ms)}/${ms(s.openLoopP999Ms)}` + (s.openLoopUnfinished ? ` (${s.openLoopUnfinished} unfinished)` : ''),
      s.serverCpuSecondsPer10k.toFixed(3),
      s.agentCpuSecondsPer10k === undefined ? '-' : s.agentCpuSecondsPer10k.toFixed(3),
      s.receiverCpuSecondsPer10k.toFixed(3),
      s.agentPeakRssBytes === undefined ? '-' : `${(s.agentPeakRssBytes / 1048576).toFixed(0)} MiB`,
      s.eventsLostInKernel === undefined ? '-' : `${s.eventsLostInKernel}/${s.eventsLostBehindQueue}`,
      s.agentRecords === undefined ? '-' : `${s.agentRecords}/${s.agentParseErrors}/${s.agentSpansDroppedQueueFull}`,
      untraced ? '-' : `${s.spans}/${s.requests} (${((s.spans / s.requests) * 100).toFixed(1)}%)`,
    ];
  });
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n') + '\n';
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '10' },
      rounds: { type: 'string', default: '3' },
      targets: { type: 'string', default: 'node,nginx,grpc' },
      rate: { type: 'string', default: '5000' },
      connections: { type: 'string', default: '32' },
      threads: { type: 'string', default: '1' },
      'grpc-channels': { type: 'string', default: '4' },
      'grpc-rate': { type: 'string', default: '500' },
      json: { type: 'boolean', default: false },
    },
  });
  const targets = values.targets.split(',') as TargetName[];
  for (const t of targets) if (!(t in ARMS)) throw new Error(`unknown target ${t}; known: ${Object.keys(ARMS).join(', ')}`);
  const o: OverheadOptions = {
    seconds: Number(values.seconds),
    rounds: Number(values.rounds),
    targets,
    rate: Number(values.rate),
    connections: Number(values.connections),
    threads: Number(values.threads),
    grpcChannels: Number(values['grpc-channels']),
    grpcRate: Number(values['grpc-rate']),
    log: (l) => process.stderr.write(`overhead: ${l}\n`),
  };
  for (const [k, v] of Object.entries(o)) if (typeof v === 'number' && !(v > 0)) throw new Error(`--${k} takes a positive number, got ${v}`);
  const { runs, summary } = await runOverhead(o);
  if (values.json) {
    process.stdout.write(JSON.stringify({ options: { ...o, log: undefined }, runs, summary }, null, 2) + '\n');
  } else {
    process.stdout.write(
      `${o.rounds} round(s), ${o.seconds} s per run; wrk -t ${o.threads} -c ${o.connections}; open loop ${o.rate} req/s over ${o.connections} connections; ` +
        (targets.includes('grpc') ? `grpc: grpc-load ${o.connections} calls in flight over ${o.grpcChannels} channels, open loop ${o.grpcRate} calls/s; ` : '') +
        `${os.cpus().length} CPUs; medians over rounds, (x) = ratio to untraced in the same round\n`,
    );
    process.stdout.write(formatTable(summary));
  }
  return runs.every((r) => r.requests > 0 && (r.arm === 'untraced' || r.spans > 0)) ? 0 : 1;
}

if (require.main === module) runMain(main);
