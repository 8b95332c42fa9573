// An open-loop HTTP/1.1 load generator: requests are due on a fixed schedule
// (request i at start + i / rate), whatever the server does, and each one's
// latency is measured from the time it was due, not from when a connection was
// free to send it, so a server that falls behind shows its queueing in the
// percentiles instead of hiding it (no coordinated omission). wrk cannot do
// this. Keep-alive over a fixed set of connections, one request in flight per
// connection (no pipelining); due requests wait in one FIFO for a free one.
// Responses are framed by Content-Length (both bench targets send it).
//
//   node dist/bench/open-loop.js --url http://127.0.0.1:8080/small [--rate 5000] [--seconds 10] [--connections 32] [--drain-ms 2000]
//
// Prints one JSON line (OpenLoopResult). Run it as its own process, so the
// caller's work (an OTLP receiver decoding spans) does not delay its timers:
// runOpenLoopProcess does that.

import * as net from 'node:net';
import { parseArgs } from 'node:util';
import { runProcess } from './processes';

export interface OpenLoopOptions {
  readonly url: string;
  readonly rate: number;
  readonly seconds: number;
  readonly connections: number;
  /** How long to wait for requests still outstanding when the schedule ends. */
  readonly drainMs?: number;
}

export interface OpenLoopResult {
  readonly scheduled: number;
  readonly completed: number;
  /** Due but never answered before the drain ended (or lost with a connection). */
  readonly unfinished: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly seconds: number;
  /** Latency from due time to the last response byte, ms. */
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
  /** CPU this generator used (user + system), seconds. */
  readonly cpuSeconds: number;
}

const HEADER_END = Buffer.from('\r\n\r\n');

class Connection {
  private buf: Buffer = Buffer.alloc(0);
  private dueNs = 0n;
  busy = false;
  closed = false;

  constructor(
    private readonly socket: net.Socket,
    private readonly request: Buffer,
    private readonly onDone: (c: Connection, dueNs: bigint, status: number) => void,
    private readonly onError: (c: Connection, hadRequest: boolean) => void,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.onError(this, this.busy);
    });
  }

  send(dueNs: bigint): void {
    this.busy = true;
    this.dueNs = dueNs;
    this.socket.write(this.request);
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    const end = this.buf.indexOf(HEADER_END);
    if (end < 0) return;
    const head = this.buf.subarray(0, end).toString('latin1');
    const status = Number(head.slice(9, 12));
    const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    const total = end + 4 + (m ? Number(m[1]) : 0);
    if (this.buf.length < total) return;
    this.buf = this.buf.subarray(total);
    this.busy = false;
    this.onDone(this, this.dueNs, status);
  }
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

export async function runOpenLoop(o: OpenLoopOptions): Promise<OpenLoopResult> {
  const url = new URL(o.url);
  const port = Number(url.port || 80);
  const request = Buffer.from(`GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nUser-Agent: open-loop\r\n\r\n`);
  const total = Math.round(o.rate * o.seconds);
  const intervalNs = 1e9 / o.rate;
  const latencies = new Float64Array(total);
  let completed = 0;
  let non2xx = 0;
  let errors = 0;
  const idle: Connection[] = [];
  const due: bigint[] = [];
  let dueHead = 0;

  const dispatch = () => {
    while (dueHead < due.length && idle.length > 0) {
      const c = idle.pop()!;
      c.send(due[dueHead++]!);
    }
    if (dueHead > 4096 && dueHead * 2 > due.length) {
      due.splice(0, dueHead);
      dueHead = 0;
    }
  };
  const onDone = (c: Connection, dueNs: bigint, status: number) => {
    const now = process.hrtime.bigint();
    if (completed < total) latencies[completed] = Number(now - dueNs) / 1e6;
    completed++;
    if (status < 200 || status >= 300) non2xx++;
    idle.push(c);
    dispatch();
  };
  const onError = (c: Connection, hadRequest: boolean) => {
    if (hadRequest) errors++;
    const i = idle.indexOf(c);
    if (i >= 0) idle.splice(i, 1);
  };
  const conns = await Promise.all(
    Array.from(
      { length: o.connections },
      () =>
        new Promise<Connection>((resolve, reject) => {
          const s = net.connect(port, url.hostname, () => resolve(new Connection(s, request, onDone, onError)));
          s.once('error', reject);
        }),
    ),
  );
  idle.push(...conns);

  const cpu0 = process.cpuUsage();
  const start = process.hrtime.bigint();
  let issued = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const elapsed = Number(process.hrtime.bigint() - start);
      const upTo = Math.min(total, Math.floor(elapsed / intervalNs) + 1);
      for (; issued < upTo; issued++) due.push(start + BigInt(Math.round(issued * intervalNs)));
      dispatch();
      if (issued >= total) resolve();
      else setTimeout(tick, 1);
    };
    tick();
  });
  const drainUntil = Date.now() + (o.drainMs ?? 2000);
  while (completed < total && Date.now() < drainUntil && conns.some((c) => !c.closed)) await new Promise((r) => setTimeout(r, 5));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  for (const c of conns) c.destroy();
  const cpu = process.cpuUsage(cpu0);

  const sorted = latencies.slice(0, Math.min(completed, total)).sort();
  return {
    scheduled: total,
    completed,
    unfinished: total - completed,
    non2xx,
    errors,
    seconds,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    p999Ms: percentile(sorted, 0.999),
    maxMs: sorted.length ? sorted[sorted.length - 1]! : NaN,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
}

/** Runs the generator as its own process (this file, compiled) and returns its result. */
export async function runOpenLoopProcess(o: OpenLoopOptions): Promise<OpenLoopResult> {
  const out = await runProcess(process.execPath, [
    __filename,
    '--url', o.url,
    '--rate', String(o.rate),
    '--seconds', String(o.seconds),
    '--connections', String(o.connections),
    ...(o.drainMs !== undefined ? ['--drain-ms', String(o.drainMs)] : []),
  ]);
  return JSON.parse(out.trim().split('\n').pop()!) as OpenLoopResult;
}

if (require.main === module) {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      rate: { type: 'string', default: '5000' },
      seconds: { type: 'string', default: '10' },
      connections: { type: 'string', default: '32' },
      'drain-ms': { type: 'string', default: '2000' },
    },
  });
  if (!values.url) throw new Error('--url is required');
  runOpenLoop({
    url: values.url,
    rate: Number(values.rate),
    seconds: Number(values.seconds),
    connections: Number(values.connections),
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
