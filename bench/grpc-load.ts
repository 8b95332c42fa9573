// A gRPC load generator (@grpc/grpc-js) for the overhead benchmark's gRPC
// target (bench/targets/grpc-server.ts): unary calls of test.echo.Echo over
// `channels` channels (one HTTP/2 connection each), calls spread over them in
// turn. Two modes, the counterparts of wrk and bench/open-loop.ts:
//   closed  `concurrency` calls in flight for `seconds`, each issued as the
//           one before it ended (as wrk -c does);
//   open    calls due on a fixed schedule (call i at start + i / rate), at
//           most `concurrency` in flight (due calls wait in one FIFO, as the
//           HTTP generator's requests wait for a free connection), latency
//           from the due time (no coordinated omission).
//
//   node dist/bench/grpc-load.js --target 127.0.0.1:PORT --mode closed|open --message small|large
//                                [--seconds 10] [--concurrency 32] [--channels 4] [--rate 5000]
//
// Prints one JSON line: a WrkResult (closed) or an OpenLoopResult (open). Run
// it as its own process (runGrpcLoadProcess), as the HTTP generators are: its
// CPU is not the caller's, nor the traced server's.

import * as grpc from '@grpc/grpc-js';
import { parseArgs } from 'node:util';
import { echoService } from './grpc-echo';
import type { OpenLoopResult } from './open-loop';
import type { WrkResult } from './overhead';
import { runProcess } from './processes';

export interface GrpcLoadOptions {
  readonly target: string;
  readonly mode: 'closed' | 'open';
  readonly message: 'small' | 'large';
  readonly seconds: number;
  readonly concurrency: number;
  readonly channels: number;
  /** Open mode: calls per second. */
  readonly rate: number;
  /** Open mode: how long to wait for calls still outstanding when the schedule ends. */
  readonly drainMs?: number;
}

type UnaryClient = grpc.Client & { Unary(msg: object, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null) => void): grpc.ClientUnaryCall };

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

export async function runGrpcLoad(o: GrpcLoadOptions): Promise<WrkResult | OpenLoopResult> {
  const Echo = echoService();
  // A local subchannel pool per client: each channel its own connection.
  const clients = Array.from({ length: o.channels }, () => new Echo(o.target, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }) as unknown as UnaryClient);
  await Promise.all(clients.map((c) => new Promise<void>((resolve, reject) => c.waitForReady(Date.now() + 5000, (err) => (err ? reject(err) : resolve())))));
  const msg = { text: o.message };
  let next = 0;
  /** One call; resolves with its status code (0: OK). */
  const call = () =>
    new Promise<number>((resolve) => {
      const c = clients[next++ % clients.length]!;
      c.Unary(msg, { deadline: Date.now() + 10_000 }, (err) => resolve(err ? err.code : 0));
    });

  const latencies: number[] = [];
  let notOk = 0;
  const cpu0 = process.cpuUsage();
  const start = process.hrtime.bigint();
  const elapsedNs = () => Number(process.hrtime.bigint() - start);
  const result = (o.mode === 'closed' ? closed : open)();
  return result.finally(() => {
    for (const c of clients) c.close();
  });

  async function closed(): Promise<WrkResult> {
    const endNs = o.seconds * 1e9;
    const worker = async () => {
      while (elapsedNs() < endNs) {
        const t0 = process.hrtime.bigint();
        const code = await call();
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
        if (code !== 0) notOk++;
      }
    };
    await Promise.all(Array.from({ length: o.concurrency }, worker));
    const seconds = elapsedNs() / 1e9;
    const sorted = Float64Array.from(latencies).sort();
    return {
      requests: sorted.length,
      seconds,
      requestsPerSecond: sorted.length / seconds,
      p50Ms: percentile(sorted, 0.5),
      p75Ms: percentile(sorted, 0.75),
      p90Ms: percentile(sorted, 0.9),
      p99Ms: percentile(sorted, 0.99),
      non2xx: notOk,
      socketErrors: 0,
    };
  }

  async function open(): Promise<OpenLoopResult> {
    const total = Math.round(o.rate * o.seconds);
    const intervalNs = 1e9 / o.rate;
    let issued = 0;
    let started = 0;
    let completed = 0;
    let inFlight = 0;
    const dueNs = (i: number) => Math.round(i * intervalNs);
    const dispatch = () => {
      while (started < issued && inFlight < o.concurrency) {
        const due = dueNs(started++);
        inFlight++;
        void call().then((code) => {
          inFlight--;
          completed++;
          latencies.push((elapsedNs() - due) / 1e6);
          if (code !== 0) notOk++;
          dispatch();
        });
      }
    };
    await new Promise<void>((resolve) => {
      const tick = () => {
        issued = Math.min(total, Math.floor(elapsedNs() / intervalNs) + 1);
        dispatch();
        if (issued >= total) resolve();
        else setTimeout(tick, 1);
      };
      tick();
    });
    const drainUntil = Date.now() + (o.drainMs ?? 2000);
    while (completed < total && Date.now() < drainUntil) await new Promise((r) => setTimeout(r, 5));
    const seconds = elapsedNs() / 1e9;
    const cpu = process.cpuUsage(cpu0);
    const sorted = Float64Array.from(latencies).sort();
    return {
      scheduled: total,
      completed,
      unfinished: total - completed,
      non2xx: notOk,
      errors: 0,
      seconds,
      p50Ms: percentile(sorted, 0.5),
      p99Ms: percentile(sorted, 0.99),
      p999Ms: percentile(sorted, 0.999),
      maxMs: sorted.length ? sorted[sorted.length - 1]! : NaN,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
    };
  }
}

/** Runs the generator as its own process (this file, compiled) and returns its result. */
export async function runGrpcLoadProcess(o: GrpcLoadOptions & { mode: 'closed' }): Promise<WrkResult>;
export async function runGrpcLoadProcess(o: GrpcLoadOptions & { mode: 'open' }): Promise<OpenLoopResult>;
export async function runGrpcLoadProcess(o: GrpcLoadOptions): Promise<WrkResult | OpenLoopResult> {
  const out = await runProcess(process.execPath, [
    __filename,
    '--target', o.target,
    '--mode', o.mode,
    '--message', o.message,
    '--seconds', String(o.seconds),
    '--concurrency', String(o.concurrency),
    '--channels', String(o.channels),
    '--rate', String(o.rate),
    ...(o.drainMs !== undefined ? ['--drain-ms', String(o.drainMs)] : []),
  ]);
  return JSON.parse(out.trim().split('\n').pop()!) as WrkResult | OpenLoopResult;
}

if (require.main === module) {
  const { values } = parseArgs({
    options: {
      target: { type: 'string' },
      mode: { type: 'string', default: 'closed' },
      message: { type: 'string', default: 'small' },
      seconds: { type: 'string', default: '10' },
      concurrency: { type: 'string', default: '32' },
      channels: { type: 'string', default: '4' },
      rate: { type: 'string', default: '5000' },
      'drain-ms': { type: 'string', default: '2000' },
    },
  });
  if (!values.target) throw new Error('--target is required');
  if (values.mode !== 'closed' && values.mode !== 'open') throw new Error(`--mode is closed or open, got ${values.mode}`);
  if (values.message !== 'small' && values.message !== 'large') throw new Error(`--message is small or large, got ${values.message}`);
  runGrpcLoad({
    target: values.target,
    mode: values.mode,
    message: values.message,
    seconds: Number(values.seconds),
    concurrency: Number(values.concurrency),
    channels: Number(values.channels),
    rate: Number(values.rate),
    drainMs: Number(values['drain-ms']),
  }).then(
    (r) => {
      process.stdout.write(JSON.stringify(r) + '\n');
      process.exit(0);
    },
    (err: unknown) => {
      process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
      process.exit(2);
    },
  );
}
