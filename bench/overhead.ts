// What the agent costs a traced HTTP server, measured side by side in one run.
//
//   node dist/bench/overhead.js [--seconds N] [--rounds N] [--targets node,nginx] [--json]
//                               [--rate 5000] [--connections 32] [--threads 1]
//
// Targets: a Node `http` server (bench/targets/http-server.ts) and nginx from
// Debian (run by us with a generated config in a temp prefix, one worker).
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
// at --rate on /small, latency measured from each request's due time.
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
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { parseArgs } from 'node:util';
import { OtlpReceiver } from '../test/helpers/otlp-receiver';
import { startAgent, type RunningAgent } from '../test/helpers/agent';
import type { OpenLoopResult } from './open-loop';

export type TargetName = 'node' | 'nginx';
export type ArmName = 'untraced' | 'agent' | 'sdk';

export const ARMS: Record<TargetName, ArmName[]> = { node: ['untraced', 'agent', 'sdk'], nginx: ['untraced', 'agent'] };

export interface OverheadOptions {
  readonly seconds: number;
  readonly rounds: number;
  readonly targets: TargetName[];
  /** Open-loop arrival rate, requests per second. */
  readonly rate: number;
  readonly connections: number;
  readonly threads: number;
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

// ------------------------------------------------------------------ paths and processes

const ROOT = path.resolve(__dirname, '../..');
const SERVER_JS = path.join(ROOT, 'dist', 'bench', 'targets', 'http-server.js');
const OTEL_SDK_JS = path.join(ROOT, 'dist', 'bench', 'targets', 'otel-sdk.js');
const OPEN_LOOP_JS = path.join(ROOT, 'dist', 'bench', 'open-loop.js');

const CLK_TCK = (() => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return n > 0 ? n : 100;
})();

/** utime + stime of a process, seconds (0 once it is gone). */
export function cpuSecondsOf(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // f[0] is field 3 (state): utime is field 14, stime field 15.
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return 0;
  }
}

/** VmHWM (peak resident set) of a process, bytes. */
export function peakRssOf(pid: number): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await sleep(20);
  }
}

async function stopChild(child: ChildProcess, signal: NodeJS.Signals, timeoutMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  await exited;
  clearTimeout(timer);
}

interface Server {
  readonly port: number;
  /** Every process that serves requests (nginx: master and worker). */
  readonly pids: number[];
  stop(): Promise<void>;
}

async function startNodeServer(sdkEndpoint: string | undefined): Promise<Server> {
  const args = sdkEndpoint ? ['--require', OTEL_SDK_JS, SERVER_JS] : [SERVER_JS];
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('OTEL_')) delete env[k];
  if (sdkEndpoint) {
    env['OTEL_EXPORTER_OTLP_ENDPOINT'] = sdkEndpoint;
    env['OTEL_EXPORTER_OTLP_PROTOCOL'] = 'grpc';
    env['OTEL_SERVICE_NAME'] = 'bench-node-sdk';
  }
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const line = await new Promise<string>((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`node target exited ${code} before listening: ${stderr}`)));
  });
  const { port } = JSON.parse(line) as { port: number };
  return { port, pids: [child.pid!], stop: () => stopChild(child, 'SIGTERM') };
}

const SMALL_BODY = Buffer.from(JSON.stringify({ ok: true, service: 'bench', items: [1, 2, 3], note: 'a small response of about 100 bytes' }));

async function startNginx(): Promise<Server> {
  const prefix = fs.mkdtempSync(path.join(os.tmpdir(), 'ebpf-otel-bench-nginx-'));
  // Workers run as nobody: the prefix must be readable by them.
  fs.chmodSync(prefix, 0o755);
  fs.mkdirSync(path.join(prefix, 'html'), { mode: 0o755 });
  fs.writeFileSync(path.join(prefix, 'html', 'small'), SMALL_BODY, { mode: 0o644 });
  fs.writeFileSync(path.join(prefix, 'html', 'large'), Buffer.alloc(16 * 1024, 'x'), { mode: 0o644 });
  const port = await freePort();
  const tmp = (n: string) => `${n}_temp_path ${path.join(prefix, n)};`;
  fs.writeFileSync(
    path.join(prefix, 'nginx.conf'),
    `daemon off;
master_process on;
worker_processes 1;
pid ${path.join(prefix, 'nginx.pid')};
error_log ${path.join(prefix, 'error.log')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  ${tmp('client_body')} ${tmp('proxy')} ${tmp('fastcgi')} ${tmp('uwsgi')} ${tmp('scgi')}
  default_type application/octet-stream;
  keepalive_requests 1000000;
  keepalive_timeout 65;
  server {
    listen 127.0.0.1:${port};
    root ${path.join(prefix, 'html')};
    location / { }
  }
}
`,
  );
  const child = spawn('nginx', ['-p', prefix, '-c', path.join(prefix, 'nginx.conf'), '-e', path.join(prefix, 'error.log')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`nginx exited ${code}: ${stderr}`))));
  exited.catch(() => {});
  await Promise.race([waitForPort(port, 10_000), exited]);
  let workers: number[] = [];
  for (let i = 0; i < 100 && workers.length === 0; i++) {
    workers = childrenOf(child.pid!);
    if (workers.length === 0) await sleep(20);
  }
  return {
    port,
    pids: [child.pid!, ...workers],
    async stop() {
      await stopChild(child, 'SIGTERM');
      fs.rmSync(prefix, { recursive: true, force: true });
    },
  };
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

function runProcess(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err}${out}`))));
  });
}

async function wrk(url: string, o: OverheadOptions): Promise<WrkResult> {
  const secs = Math.max(1, Math.round(o.seconds));
  return parseWrk(await runProcess('wrk', ['-t', String(o.threads), '-c', String(o.connections), '-d', `${secs}s`, '--latency', url]));
}

async function openLoop(url: string, o: OverheadOptions): Promise<OpenLoopResult> {
  const out = await runProcess(process.execPath, [
    OPEN_LOOP_JS,
    '--url', url,
    '--rate', String(o.rate),
    '--seconds', String(o.seconds),
    '--connections', String(o.connections),
  ]);
  return JSON.parse(out.trim().split('\n').pop()!) as OpenLoopResult;
}

// ------------------------------------------------------------------ one arm

const SUMMARY_RE = /captured (\d+) events \(lost (\d+) in the kernel, (\d+) behind the native queue\)/;

async function runArm(round: number, target: TargetName, arm: ArmName, receiver: OtlpReceiver, o: OverheadOptions): Promise<ArmRun> {
  receiver.reset();
  const server = target === 'nginx' ? await startNginx() : await startNodeServer(arm === 'sdk' ? receiver.grpcUrl : undefined);
  let agent: RunningAgent | undefined;
  let agentInfo: ArmRun['agent'];
  try {
    if (arm === 'agent') {
      agent = await startAgent(['run', ...server.pids.flatMap((p) => ['--pid', String(p)])], {
        env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.grpcUrl, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' },
      });
    }
    const base = `http://127.0.0.1:${server.port}`;
    const agentCpu0 = agent ? cpuSecondsOf(agent.pid) : 0;
    const serverCpu0 = server.pids.reduce((a, p) => a + cpuSecondsOf(p), 0);
    const receiverCpu0 = process.cpuUsage();
    const small = await wrk(`${base}/small`, o);
    const large = await wrk(`${base}/large`, o);
    const ol = await openLoop(`${base}/small`, o);
    const serverCpu = server.pids.reduce((a, p) => a + cpuSecondsOf(p), 0) - serverCpu0;
    if (agent) {
      const cpuSeconds = cpuSecondsOf(agent.pid) - agentCpu0;
      const peakRssBytes = peakRssOf(agent.pid);
      const stopped = await agent.stop();
      agent = undefined;
      const m = SUMMARY_RE.exec(stopped.stderr);
      const sum = (metric: string, reason?: string) =>
        receiver
          .latestPoints(metric)
          .filter((p) => reason === undefined || p.attributes['ebpf_otel.reason'] === reason)
          .reduce((a, p) => a + (p.value ?? 0), 0);
      agentInfo = {
        cpuSeconds,
        peakRssBytes,
        eventsCaptured: m ? Number(m[1]) : NaN,
        lostInKernel: m ? Number(m[2]) : NaN,
        lostBehindQueue: m ? Number(m[3]) : NaN,
        records: sum('ebpf_otel.protocol.records'),
        parseErrors: sum('ebpf_otel.protocol.parse_errors'),
        spansDroppedQueueFull: sum('ebpf_otel.span.dropped', 'queue_full'),
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
    'wrk /small req/s', 'p50 ms', 'p99 ms',
    'wrk /large req/s', 'p50 ms', 'p99 ms',
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
      targets: { type: 'string', default: 'node,nginx' },
      rate: { type: 'string', default: '5000' },
      connections: { type: 'string', default: '32' },
      threads: { type: 'string', default: '1' },
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
    log: (l) => process.stderr.write(`overhead: ${l}\n`),
  };
  for (const [k, v] of Object.entries(o)) if (typeof v === 'number' && !(v > 0)) throw new Error(`--${k} takes a positive number, got ${v}`);
  const { runs, summary } = await runOverhead(o);
  if (values.json) {
    process.stdout.write(JSON.stringify({ options: { ...o, log: undefined }, runs, summary }, null, 2) + '\n');
  } else {
    process.stdout.write(
      `${o.rounds} round(s), ${o.seconds} s per run; wrk -t ${o.threads} -c ${o.connections}; open loop ${o.rate} req/s over ${o.connections} connections; ` +
        `${os.cpus().length} CPUs; medians over rounds, (x) = ratio to untraced in the same round\n`,
    );
    process.stdout.write(formatTable(summary));
  }
  return runs.every((r) => r.requests > 0 && (r.arm === 'untraced' || r.spans > 0)) ? 0 : 1;
}

if (require.main === module) runMain(main);
