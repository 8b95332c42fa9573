// What the opt-in Node.js preload (preload/node/ebpf-otel-preload.js) costs
// the application, per request, side by side with the same server without it.
//
//   node dist/bench/node-preload-cost.js [--requests N] [--concurrency C] [--rounds R] [--preload FILE] [--json]
//
// Workload: the e2e test's Node frontend (test/e2e/programs/node_links/
// frontend.js: per request, one keep-alive call to a backend, some after a
// timer or a promise chain), in front of a plain Node backend that answers at
// once; the load comes from this process (keep-alive, C in flight). Per
// round, one frontend without the preload and one with it
// (NODE_OPTIONS=--require), started fresh, warmed up (2000 requests), then
// measured over N requests, arms alternating (--preload: another file in
// the preload's place, to compare variants). The figure is the frontend's
// CPU time (every thread's, /proc/PID/task/*/schedstat) per request, median
// over the rounds; the preload's cost is the difference. No agent runs:
// this is the preload alone (its marks reach a tracepoint only when the
// agent is attached and selects the process).
// Then the mark alone, in this process: the zero-byte pwrite64 the preload
// makes, to /dev/null (what it does) and to a socket, failing with ESPIPE
// (its fallback: an error built with Error.stackTraceLimit = 0), in ns.

import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { parseArgs } from 'node:util';
import { positive, runMain } from './main';

const ROOT = path.resolve(__dirname, '..', '..');
const FRONTEND = path.join(ROOT, 'test', 'e2e', 'programs', 'node_links', 'frontend.js');
const PRELOAD = path.join(ROOT, 'preload', 'node', 'ebpf-otel-preload.js');
const WARMUP = 2000;

const BACKEND_SOURCE = `
const http = require('node:http');
const server = http.createServer((req, res) => res.end('ok'));
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ pid: process.pid, port: server.address().port })));
`;

export type Arm = 'without' | 'with';

interface Started {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly port: number;
}

async function start(args: string[], env: Record<string, string>): Promise<Started> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  const first = await new Promise<string>((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code} before ready`)));
  });
  const hello = JSON.parse(first) as { pid: number; port: number };
  return { child, pid: hello.pid, port: hello.port };
}

/** CPU time of every thread of `pid` so far, in ns. */
export function processCpuNs(pid: number): number {
  let total = 0;
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // a thread that exited meanwhile
    }
  }
  return total;
}

async function load(port: number, requests: number, concurrency: number, prefix: string): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  let next = 0;
  let failed = 0;
  const one = async (): Promise<void> => {
    while (next < requests) {
      const id = `${prefix}${String(next++).padStart(6, '0')}`;
      await new Promise<void>((resolve) => {
        const req = http.get({ host: '127.0.0.1', port, path: `/r/${id}`, agent }, (res) => {
          if (res.statusCode !== 200) failed++;
          res.resume();
          res.on('end', resolve);
        });
        req.on('error', () => {
          failed++;
          resolve();
        });
      });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, one));
  agent.destroy();
  if (failed > 0) throw new Error(`${failed} of ${requests} requests failed`);
}

export interface ArmResult {
  readonly round: number;
  readonly arm: Arm;
  readonly nsPerRequest: number;
}

async function measure(arm: Arm, preload: string, backendPort: number, requests: number, concurrency: number, round: number): Promise<ArmResult> {
  const env: Record<string, string> = arm === 'with' ? { NODE_OPTIONS: `--require ${preload}` } : { NODE_OPTIONS: '' };
  const fe = await start([FRONTEND, String(backendPort)], env);
  try {
    await load(fe.port, WARMUP, concurrency, 'w');
    const before = processCpuNs(fe.pid);
    await load(fe.port, requests, concurrency, 'm');
    const after = processCpuNs(fe.pid);
    return { round, arm, nsPerRequest: (after - before) / requests };
  } finally {
    fe.child.kill();
  }
}

/** ns per mark, both ways (a connected loopback socket for the ESPIPE one). */
async function markCost(count: number): Promise<{ devNull: number; espipe: number }> {
  const empty = Buffer.alloc(0);
  const position = 0x1eb0 * 2 ** 40 + 21 * 2 ** 20 + 20;
  const server = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  const socketFd = (socket as unknown as { _handle: { fd: number } })._handle.fd;
  const devNull = fs.openSync('/dev/null', 'w');
  const viaDevNull = () => fs.writeSync(devNull, empty, 0, 0, position);
  const viaSocket = () => {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      fs.writeSync(socketFd, empty, 0, 0, position);
    } catch {
      // ESPIPE
    } finally {
      Error.stackTraceLimit = limit;
    }
  };
  const time = (f: () => unknown) => {
    for (let i = 0; i < 10_000; i++) f();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < count; i++) f();
    return Number(process.hrtime.bigint() - t0) / count;
  };
  const result = { devNull: time(viaDevNull), espipe: time(viaSocket) };
  fs.closeSync(devNull);
  socket.destroy();
  server.close();
  return result;
}

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      requests: { type: 'string', default: '20000' },
      concurrency: { type: 'string', default: '16' },
      rounds: { type: 'string', default: '5' },
      preload: { type: 'string', default: PRELOAD },
      json: { type: 'boolean', default: false },
    },
  });
  const requests = positive('--requests', values.requests!);
  const concurrency = positive('--concurrency', values.concurrency!);
  const rounds = positive('--rounds', values.rounds!);
  const backend = await start(['-e', BACKEND_SOURCE], { NODE_OPTIONS: '' });
  const results: ArmResult[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      // Alternate which arm goes first, so drift in the machine's load falls on both.
      const arms: Arm[] = round % 2 === 0 ? ['without', 'with'] : ['with', 'without'];
      for (const arm of arms) results.push(await measure(arm, values.preload!, backend.port, requests, concurrency, round));
    }
  } finally {
    backend.child.kill();
  }
  const without = median(results.filter((r) => r.arm === 'without').map((r) => r.nsPerRequest));
  const withPreload = median(results.filter((r) => r.arm === 'with').map((r) => r.nsPerRequest));
  const marks = await markCost(200_000);
  const loadavg = fs.readFileSync('/proc/loadavg', 'utf8').trim();
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ requests, concurrency, rounds, results, median: { without, with: withPreload }, marks, loadavg })}\n`);
    return 0;
  }
  const us = (ns: number) => `${(ns / 1000).toFixed(1)} us`;
  process.stdout.write(`frontend CPU per request, ${requests} requests, ${concurrency} in flight, median of ${rounds} rounds (load ${loadavg}):\n`);
  for (let round = 0; round < rounds; round++) {
    const w = results.find((r) => r.round === round && r.arm === 'without')!;
    const p = results.find((r) => r.round === round && r.arm === 'with')!;
    process.stdout.write(`  round ${round}: without ${us(w.nsPerRequest)}   with preload ${us(p.nsPerRequest)}\n`);
  }
  process.stdout.write(`  median:  without ${us(without)}   with preload ${us(withPreload)}   preload ${us(withPreload - without)} (${((100 * (withPreload - without)) / without).toFixed(1)} %)\n`);
  process.stdout.write(`one mark (200000 in a row): /dev/null ${marks.devNull.toFixed(0)} ns, ESPIPE on the socket ${marks.espipe.toFixed(0)} ns\n`);
  return 0;
}

if (require.main === module) runMain(main);
