// What each short-lived process leaves behind in the agent: thousands of
// processes, each exec'd, making one HTTP/1 request on a connection of its
// own, then exiting, replayed through the agent `run` builds (createAgent on
// a replay of recorded batches: no kernel needed, the agent's user space
// only). Prints the heap and RSS after a warm-up and every --step processes
// (after a full GC), and what the agent's per-process tables hold.
//
//   node --expose-gc dist/bench/process-churn.js [--processes 20000] [--step 5000] [--json]
//
//   node dist/bench/process-churn.js --kernel [--processes 20000] [--step 1000] [--concurrency 4] [--select exe|all] [--heap-snapshots DIR]
//
// --kernel: the real thing instead of a replay (root, eBPF, curl): the CLI's
// `run --exe curl` (or `--all`) exporting OTLP/gRPC to an in-process
// receiver, and --processes curl processes, --concurrency at a time, each
// making one request to an HTTP server in this process. Prints the agent's
// RSS (VmRSS, after 2 s without traffic) at the 1000th process and every
// --step, and CLIENT spans received against requests made.
//
// The target (issue 12): flat within 10 MiB from the 1000th process on.

import { runMain } from './main';
import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ExportResultCode } from '@opentelemetry/core';
import { AggregationTemporality } from '@opentelemetry/sdk-metrics';
import { createAgent } from '../src/agent/agent';
import { parseRunArgs } from '../src/cli/run-command';
import { ProcFs } from '../src/util/procfs';
import { silentLogger } from '../src/util/log';
import { FakeKernelSession } from '../test/helpers/fake-session';
import { startAgent } from '../test/helpers/agent';
import { OtlpReceiver, type ReceivedSpan } from '../test/helpers/otlp-receiver';
import { rssOf, sleep } from './processes';
import { batch, connRecord, dataRecord, procRecord } from '../test/helpers/records';

declare const gc: () => void;

const REQUEST = Buffer.from('GET /items/42 HTTP/1.1\r\nHost: svc\r\nUser-Agent: churn\r\n\r\n');
const RESPONSE = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');

interface Point {
  readonly processes: number;
  readonly heapMiB: number;
  readonly rssMiB: number;
  readonly resources: number;
  readonly records: number;
}

const MiB = 1024 * 1024;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      processes: { type: 'string' },
      step: { type: 'string' },
      json: { type: 'boolean' },
      kernel: { type: 'boolean' },
      concurrency: { type: 'string' },
      select: { type: 'string' },
      'heap-snapshots': { type: 'string' },
    },
  });
  const total = Number(values.processes ?? 20000);
  const step = Number(values.step ?? 5000);
  if (values.kernel) return kernelChurn(total, step, Number(values.concurrency ?? 4), values.select === 'all' ? 'all' : 'exe', values.json === true, values['heap-snapshots']);
  const ok = { code: ExportResultCode.SUCCESS };
  const options = parseRunArgs(
    ['--all', '--no-tcp-metrics', '--no-flow-metrics', '--otlp-endpoint', 'http://127.0.0.1:4318', '--otlp-protocol', 'http/protobuf', '--metric-interval', '1s'],
    { env: {} },
  );
  if (options === 'help') throw new Error('unreachable');
  let now = 1e12;
  const agent = createAgent(options, {
    logger: silentLogger,
    env: {},
    openSession: () => new FakeKernelSession(),
    procfs: new ProcFs(),
    agentPid: 1,
    tickMs: 0,
    monotonicNs: () => now,
    telemetry: {
      spanExporter: { export: (_r, done) => done(ok), shutdown: async () => {} },
      metricExporter: { export: (_r, done) => done(ok), selectAggregationTemporality: () => AggregationTemporality.CUMULATIVE, shutdown: async () => {} },
    },
  });
  await agent.start();
  const points: Point[] = [];
  const measure = async (processes: number) => {
    // Let exports and retirements run, then a full collection.
    await new Promise((r) => setTimeout(r, 1100));
    gc();
    gc();
    const m = process.memoryUsage();
    const records = Object.values(agent.sockets.stats().recordsByProtocol).reduce((a, n) => a + n, 0);
    points.push({ processes, heapMiB: m.heapUsed / MiB, rssMiB: m.rss / MiB, resources: agent.telemetry.resources.size, records });
  };
  // Pids above the machine's pid_max: never a real process, so /proc has nothing for them (the exit builds the resource).
  const firstPid = 5_000_000;
  for (let i = 0; i < total; i++) {
    const tgid = firstPid + i;
    const t = now + i * 10_000;
    agent.replay(
      batch([
        procRecord({ type: 'exec', tgid, tsNs: t, comm: 'curl', filename: '/usr/bin/curl' }),
        connRecord({ type: 'open', tgid, connId: i + 1, role: 1, reason: 1, ts: t + 1000, tuple: { localPort: 30000 + (i % 20000), remotePort: 8080 } }),
        dataRecord({ tgid, tid: tgid, connId: i + 1, dir: 1, pos: 0, payload: REQUEST, tsEnter: t + 2000, tsExit: t + 2100 }),
        dataRecord({ tgid, tid: tgid, connId: i + 1, dir: 2, pos: 0, payload: RESPONSE, tsEnter: t + 3000, tsExit: t + 3100 }),
        connRecord({ type: 'close', tgid, connId: i + 1, ts: t + 4000 }),
        procRecord({ type: 'exit', tgid, tsNs: t + 5000, comm: 'curl' }),
      ]),
    );
    if ((i + 1) % 200 === 0) {
      agent.tick(t + 5000);
      await new Promise((r) => setImmediate(r));
    }
    if (i + 1 === 1000 || (i + 1) % step === 0) await measure(i + 1);
  }
  now += total * 10_000;
  await agent.stop();
  if (values.json) {
    process.stdout.write(JSON.stringify({ points }) + '\n');
    return 0;
  }
  process.stdout.write('processes   heap MiB   RSS MiB   resources cached   records\n');
  for (const p of points) {
    process.stdout.write(
      `${String(p.processes).padStart(9)}   ${p.heapMiB.toFixed(1).padStart(8)}   ${p.rssMiB.toFixed(1).padStart(7)}   ${String(p.resources).padStart(16)}   ${String(p.records).padStart(7)}\n`,
    );
  }
  const first = points[0]!;
  const last = points[points.length - 1]!;
  process.stdout.write(
    `from ${first.processes} to ${last.processes} processes: heap ${(last.heapMiB - first.heapMiB).toFixed(1)} MiB, RSS ${(last.rssMiB - first.rssMiB).toFixed(1)} MiB ` +
      `(${(((last.heapMiB - first.heapMiB) * MiB) / (last.processes - first.processes)).toFixed(0)} bytes of heap per process)\n`,
  );
  return 0;
}

interface KernelPoint {
  readonly processes: number;
  readonly rssMiB: number;
  readonly clientSpans: number;
}

/** The same churn through the kernel: real curl processes, the real CLI. */
async function kernelChurn(total: number, step: number, concurrency: number, select: 'exe' | 'all', json: boolean, snapshotDir?: string): Promise<number> {
  const receiver = await OtlpReceiver.start();
  const server = http.createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}/items/42`;
  const agent = await startAgent(['run', ...(select === 'all' ? ['--all'] : ['--exe', 'curl'])], {
    env: {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.grpcUrl,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      // --heap-snapshots DIR: the agent writes a heap snapshot at each sample (after the RSS reading).
      ...(snapshotDir !== undefined ? { NODE_OPTIONS: `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${snapshotDir}` } : {}),
    },
  });
  // Only this server's requests: other curls on the box (a test suite running
  // beside the benchmark) are traced too, and counted apart.
  const ours = (sp: ReceivedSpan) => sp.kind === 3 && sp.attributes['url.full'] === url && sp.attributes['http.response.status_code'] === 200;
  const clientSpans = () => receiver.spans.reduce((n, sp) => n + (ours(sp) ? 1 : 0), 0);
  const strays = () => receiver.spans.length - clientSpans();
  const points: KernelPoint[] = [];
  let failed = 0;
  const curl = () =>
    new Promise<void>((resolve) => {
      const child = spawn('curl', ['-sf', '-o', '/dev/null', url], { stdio: 'ignore' });
      child.once('exit', (code) => {
        if (code !== 0) failed++;
        resolve();
      });
      child.once('error', () => {
        failed++;
        resolve();
      });
    });
  let started = 0;
  let done = 0;
  let ledger: string[] = [];
  const marks = new Set<number>([1000]);
  for (let n = step; n <= total; n += step) marks.add(n);
  try {
    while (done < total) {
      // Up to the next mark, `concurrency` at a time, then a pause and a sample.
      const mark = Math.min(...[...marks].filter((m) => m > done), total);
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (started < mark) {
            started++;
            await curl();
            done++;
          }
        }),
      );
      await sleep(2000);
      const point = { processes: done, rssMiB: rssOf(agent.pid) / MiB, clientSpans: clientSpans() };
      points.push(point);
      if (!json) process.stderr.write(`  ${done} processes: agent RSS ${point.rssMiB.toFixed(1)} MiB, ${point.clientSpans} CLIENT spans\n`);
      if (snapshotDir !== undefined) {
        process.kill(agent.pid, 'SIGUSR2');
        await sleep(8000);
      }
    }
  } finally {
    // The agent's own exit ledger (requests started = recorded + given up, by
    // reason; events lost): a request without a span must be counted there.
    const stopped = await agent.stop();
    ledger = stopped.stderr.split('\n').filter((l) => /ebpf-otel info: (captured|requests:|selection:)/.test(l));
    server.close();
  }
  await receiver.waitFor(() => clientSpans() >= total - failed, 10_000, 'every span').catch(() => {});
  const spans = clientSpans();
  const other = strays();
  await receiver.close();
  const first = points.find((p) => p.processes >= 1000) ?? points[0]!;
  const last = points[points.length - 1]!;
  const rest = points.filter((p) => p.processes >= first.processes).map((p) => p.rssMiB);
  const result = {
    points,
    requests: total - failed,
    failed,
    clientSpans: spans,
    otherSpans: other,
    rssSpreadMiB: Math.max(...rest) - Math.min(...rest),
    rssGrowthMiB: last.rssMiB - first.rssMiB,
    agentLedger: ledger,
  };
  if (json) {
    process.stdout.write(JSON.stringify(result) + '\n');
    return 0;
  }
  process.stdout.write('processes   agent RSS MiB   CLIENT spans\n');
  for (const p of points) process.stdout.write(`${String(p.processes).padStart(9)}   ${p.rssMiB.toFixed(1).padStart(13)}   ${String(p.clientSpans).padStart(12)}\n`);
  process.stdout.write(
    `from ${first.processes} to ${last.processes} processes: agent RSS ${result.rssGrowthMiB.toFixed(1)} MiB (spread ${result.rssSpreadMiB.toFixed(1)} MiB); ` +
      `${spans} CLIENT spans for ${total - failed} requests (${failed} curl failures); ${other} spans of other processes on the box\n` +
      ledger.map((l) => `  ${l}\n`).join(''),
  );
  return 0;
}

runMain(main);
