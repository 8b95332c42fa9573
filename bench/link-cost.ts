// What the runtime link probes (issue 17: Go's goroutine links, nginx's
// request links) cost the probed process, per request, side by side with the
// same agent running without them.
//
//   node dist/bench/link-cost.js [--target go,nginx] [--requests N] [--concurrency C] [--rounds R] [--seconds S] [--json]
//
// go: the e2e program test/e2e/programs/go/links (built like the e2e test
// builds it, test/helpers/go-build.ts), a Go frontend calling a Go backend per
// request (background goroutine off: LINKS_BACKGROUND=0), driven by its
// driver.js (N requests, C keep-alive connections). Arms: the agent
// following both with the Go link probes, the same with --no-link-go, and no
// agent. The figure is the frontend's CPU per request.
// nginx: Debian's nginx (one worker, a mkdtemp prefix, loopback, random free
// ports) proxying / to its own second server (`return 200`) over a
// keep-alive upstream, loaded by wrk -t1 -cC -dS (if wrk is installed, else
// the target is skipped, saying so). Arms: the agent following the worker
// with the nginx link probes and with --no-link-nginx. The figure is the
// worker's CPU per request.
// Every arm starts a fresh agent (exporting to an in-process OTLP receiver),
// warms up, then measures; arm order rotates per round so drift in the
// machine's load falls on every arm. CPU is utime + stime from
// /proc/PID/stat (clock ticks: 10 ms at 100 Hz, so give each arm enough
// requests). Prints figures; asserts nothing about them.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { parseArgs } from 'node:util';
import { ROOT, startAgent, type RunningAgent } from '../test/helpers/agent';
import { goProgram } from '../test/helpers/go-build';
import { NGINX, nginxPrelude } from '../test/helpers/nginx-server';
import { OtlpReceiver } from '../test/helpers/otlp-receiver';
import { freePort } from '../test/helpers/ports';
import { positive, runMain } from './main';
import { parseWrk } from './overhead';
import { childrenOf, cpuSecondsOf, runProcess, sleep, stopChild } from './processes';

const GO_PROGRAM = path.join(ROOT, 'test', 'e2e', 'programs', 'go', 'links');
const GO_DRIVER = path.join(GO_PROGRAM, 'driver.js');
const GO_WARMUP = 1000;
const NGINX_WARMUP_SECONDS = 1;

export type Target = 'go' | 'nginx';
export const TARGETS: readonly Target[] = ['go', 'nginx'];
/** Arms per target: the first probes the runtime's links; `no agent` runs no agent at all. */
export const ARMS: Readonly<Record<Target, readonly string[]>> = {
  go: ['links', '--no-link-go', 'no agent'],
  nginx: ['links', '--no-link-nginx'],
};

export interface ArmRound {
  readonly target: Target;
  readonly round: number;
  readonly arm: string;
  readonly requests: number;
  readonly cpuUsPerRequest: number;
  readonly requestsPerSecond: number;
  readonly loadavg: string;
}

export interface LinkCostOptions {
  readonly targets: readonly Target[];
  readonly requests: number;
  readonly concurrency: number;
  readonly rounds: number;
  readonly seconds: number;
}

export function parseTargets(raw: string): Target[] {
  const out: Target[] = [];
  for (const t of raw.split(',')) {
    if (!(TARGETS as readonly string[]).includes(t)) throw new Error(`--target takes a list of ${TARGETS.join(', ')}; got ${JSON.stringify(t)}`);
    if (!out.includes(t as Target)) out.push(t as Target);
  }
  return out;
}

/** The arms of round `round` in the order they run: rotated by one each round. */
export function armOrder(arms: readonly string[], round: number): string[] {
  const k = round % arms.length;
  return [...arms.slice(k), ...arms.slice(0, k)];
}

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const loadavg = () => fs.readFileSync('/proc/loadavg', 'utf8').trim().split(' ').slice(0, 3).join(' ');

async function agentFor(arm: string, pids: readonly number[], receiver: OtlpReceiver): Promise<RunningAgent | undefined> {
  if (arm === 'no agent') return undefined;
  receiver.reset();
  return startAgent(['run', ...pids.flatMap((p) => ['--pid', String(p)]), ...(arm.startsWith('--') ? [arm] : [])], {
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.grpcUrl, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' },
  });
}

async function stopAgent(agent: RunningAgent | undefined): Promise<void> {
  if (agent === undefined) return;
  const { code, stderr } = await agent.stop();
  if (code !== 0) throw new Error(`agent exited ${code}:\n${stderr}`);
}

// -------------------------------------------------------------------- go

interface Started {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly port: number;
}

async function startGo(binary: string, args: string[], env: Record<string, string>): Promise<Started> {
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  const first = await new Promise<string>((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`${binary} ${args.join(' ')} exited ${code} before ready`)));
  });
  const hello = JSON.parse(first) as { pid: number; port: number };
  return { child, pid: hello.pid, port: hello.port };
}

/** COUNT requests through the driver (ids from `first` on), in its own process; throws unless all succeeded. Async: the OTLP receiver in this process keeps taking the agent's exports meanwhile. */
async function drive(port: number, count: number, concurrency: number, first: number): Promise<void> {
  const stdout = await runProcess(process.execPath, [GO_DRIVER, String(port), String(count), String(concurrency), String(first)]);
  const result = JSON.parse(stdout.trim().split('\n').pop()!) as { ok: number; failed: number };
  if (result.failed !== 0 || result.ok !== count) throw new Error(`driver: ${result.ok} ok, ${result.failed} failed of ${count}`);
}

async function runGo(o: LinkCostOptions, receiver: OtlpReceiver, report: (r: ArmRound) => void): Promise<void> {
  const binary = await goProgram(GO_PROGRAM);
  const backend = await startGo(binary, ['backend'], {});
  const frontend = await startGo(binary, ['frontend', String(backend.port)], { LINKS_BACKGROUND: '0' });
  let first = 0;
  try {
    for (let round = 0; round < o.rounds; round++) {
      for (const arm of armOrder(ARMS.go, round)) {
        const agent = await agentFor(arm, [frontend.pid, backend.pid], receiver);
        try {
          await drive(frontend.port, GO_WARMUP, o.concurrency, first);
          first += GO_WARMUP;
          const cpu0 = cpuSecondsOf(frontend.pid);
          const t0 = process.hrtime.bigint();
          await drive(frontend.port, o.requests, o.concurrency, first);
          const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
          const cpu1 = cpuSecondsOf(frontend.pid);
          first += o.requests;
          report({ target: 'go', round, arm, requests: o.requests, cpuUsPerRequest: ((cpu1 - cpu0) * 1e6) / o.requests, requestsPerSecond: o.requests / seconds, loadavg: loadavg() });
        } finally {
          await stopAgent(agent);
        }
      }
    }
  } finally {
    await stopChild(frontend.child, 'SIGTERM');
    await stopChild(backend.child, 'SIGTERM');
  }
}

// -------------------------------------------------------------------- nginx

export function nginxBenchConfig(dir: string, port: number, upstreamPort: number, connections: number): string {
  return `${nginxPrelude(dir, 'warn')}  upstream up { server 127.0.0.1:${upstreamPort}; keepalive ${connections}; }
  server {
    listen 127.0.0.1:${port};
    keepalive_requests 1000000;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
  server {
    listen 127.0.0.1:${upstreamPort};
    keepalive_requests 1000000;
    location / { return 200 "ok\\n"; }
  }
}
`;
}

async function listening(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const c = net.connect({ host: '127.0.0.1', port }, () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (up) return;
    await sleep(50);
  }
  throw new Error(`nginx: nothing listens on 127.0.0.1:${port}`);
}

function hasWrk(): boolean {
  return spawnSync('wrk', ['--version'], { stdio: 'ignore' }).error === undefined;
}

async function wrk(port: number, connections: number, seconds: number) {
  const r = parseWrk(await runProcess('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', `http://127.0.0.1:${port}/`]));
  if (r.non2xx !== 0 || r.socketErrors !== 0) throw new Error(`wrk: ${r.non2xx} non-2xx answers, ${r.socketErrors} socket errors`);
  return r;
}

async function runNginx(o: LinkCostOptions, receiver: OtlpReceiver, report: (r: ArmRound) => void): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'link-cost-nginx-'));
  const port = await freePort();
  let upstreamPort = await freePort();
  while (upstreamPort === port) upstreamPort = await freePort();
  fs.writeFileSync(path.join(dir, 'nginx.conf'), nginxBenchConfig(dir, port, upstreamPort, o.concurrency));
  const nginx = spawn(NGINX, ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'error.log'), '-g', 'daemon off;'], { stdio: 'inherit' });
  try {
    let workers: number[] = [];
    for (let i = 0; i < 100 && workers.length !== 1; i++) {
      await sleep(50);
      workers = childrenOf(nginx.pid!);
    }
    if (workers.length !== 1) throw new Error(`nginx: expected one worker, found ${JSON.stringify(workers)}`);
    await listening(port);
    const worker = workers[0]!;
    for (let round = 0; round < o.rounds; round++) {
      for (const arm of armOrder(ARMS.nginx, round)) {
        const agent = await agentFor(arm, [worker], receiver);
        try {
          await wrk(port, o.concurrency, NGINX_WARMUP_SECONDS);
          const cpu0 = cpuSecondsOf(worker);
          const r = await wrk(port, o.concurrency, o.seconds);
          const cpu1 = cpuSecondsOf(worker);
          report({ target: 'nginx', round, arm, requests: r.requests, cpuUsPerRequest: ((cpu1 - cpu0) * 1e6) / r.requests, requestsPerSecond: r.requestsPerSecond, loadavg: loadavg() });
        } finally {
          await stopAgent(agent);
        }
      }
    }
  } finally {
    await stopChild(nginx, 'SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// -------------------------------------------------------------------- main

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      target: { type: 'string', default: TARGETS.join(',') },
      requests: { type: 'string', default: '20000' },
      concurrency: { type: 'string', default: '16' },
      rounds: { type: 'string', default: '3' },
      seconds: { type: 'string', default: '8' },
      json: { type: 'boolean', default: false },
    },
  });
  const o: LinkCostOptions = {
    targets: parseTargets(values.target!),
    requests: positive('--requests', values.requests!),
    concurrency: positive('--concurrency', values.concurrency!),
    rounds: positive('--rounds', values.rounds!),
    seconds: positive('--seconds', values.seconds!),
  };
  const json = values.json!;
  const say = (line: string) => {
    if (!json) process.stdout.write(`${line}\n`);
  };
  const results: ArmRound[] = [];
  const skipped: string[] = [];
  const report = (r: ArmRound) => {
    results.push(r);
    say(`  ${r.target} round ${r.round} ${r.arm.padEnd(16)} CPU ${r.cpuUsPerRequest.toFixed(1).padStart(6)} us/request  ${r.requestsPerSecond.toFixed(0).padStart(6)} req/s  (${r.requests} requests, load ${r.loadavg})`);
  };
  const receiver = await OtlpReceiver.start({ keepSpans: false });
  try {
    for (const target of o.targets) {
      if (target === 'go') {
        say(`go: frontend CPU per request, ${o.requests} requests, ${o.concurrency} in flight, ${o.rounds} rounds:`);
        await runGo(o, receiver, report);
      } else if (!fs.existsSync(NGINX) || !hasWrk()) {
        const why = `nginx: skipped, ${fs.existsSync(NGINX) ? 'wrk' : NGINX} is not installed (scripts/setup.sh installs both)`;
        skipped.push(why);
        say(why);
      } else {
        say(`nginx: worker CPU per request, wrk -t1 -c${o.concurrency} -d${o.seconds}s, ${o.rounds} rounds:`);
        await runNginx(o, receiver, report);
      }
    }
  } finally {
    await receiver.close();
  }
  const medians = o.targets.flatMap((target) =>
    ARMS[target]
      .map((arm) => ({ target, arm, rows: results.filter((r) => r.target === target && r.arm === arm) }))
      .filter((x) => x.rows.length > 0)
      .map(({ target, arm, rows }) => ({
        target,
        arm,
        cpuUsPerRequest: median(rows.map((r) => r.cpuUsPerRequest)),
        requestsPerSecond: median(rows.map((r) => r.requestsPerSecond)),
      })),
  );
  if (json) {
    process.stdout.write(`${JSON.stringify({ ...o, results, medians, skipped, loadavg: loadavg() })}\n`);
    return 0;
  }
  if (medians.length > 0) say(`medians (load ${loadavg()}):`);
  for (const m of medians) {
    say(`  ${m.target} ${m.arm.padEnd(16)} CPU ${m.cpuUsPerRequest.toFixed(1).padStart(6)} us/request  ${m.requestsPerSecond.toFixed(0).padStart(6)} req/s`);
  }
  return 0;
}

if (require.main === module) runMain(main);
