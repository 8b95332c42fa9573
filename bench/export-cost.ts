// What the OTLP/gRPC transport costs the agent per span, and nothing else:
// real encoded ExportTraceServiceRequests (SpanEncoder, 1024 HTTP server spans
// each, ~550 KB) sent one at a time, as the span queue sends them, through
// createOtlpExporter (the transport with its retries) to the sink of
// bench/targets/otlp-sink.ts in its own process, which decodes nothing.
//
//   node dist/bench/export-cost.js [--seconds 5] [--rounds 5] [--spans 1024] [--gzip]
//
// Per round: this process's CPU (process.cpuUsage, user + system, GC
// threads included) over --seconds of exports, per span and per request;
// medians over rounds. The requests are encoded once, up front, outside the
// measured time.

import { parseArgs } from 'node:util';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { ExportResultCode } from '@opentelemetry/core';
import { loadOtelConfig } from '../src/otel/config';
import { createOtlpExporter } from '../src/otel/export';
import { DEFAULT_RETRY } from '../src/otel/export-policy';
import { SpanEncoder } from '../src/otel/otlp-encode';
import { fixedOffsetClock } from '../src/otel/spans';
import { traceRecord } from '../test/otel/fixtures';
import { positive, runMain } from './main';
import { startSink } from './pipeline';

/** Distinct requests sent in turn, so no buffer is hot by accident. */
const REQUESTS = 8;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function encodeRequests(spans: number): Buffer[] {
  const resource = resourceFromAttributes({ 'service.name': 'shop', 'process.pid': 4242, 'host.name': 'bench-host' });
  const encoder = new SpanEncoder({ name: 'ebpf-otel-sidecar', version: '0.1.0' }, fixedOffsetClock(1_700_000_000_000_000_000n));
  const out: Buffer[] = [];
  for (let r = 0; r < REQUESTS; r++) {
    const records = Array.from({ length: spans }, (_, i) =>
      traceRecord(
        { traceId: (r * spans + i + 1).toString(16).padStart(32, '0'), spanId: (r * spans + i + 1).toString(16).padStart(16, '0') },
        {
          startNs: 1_000_000_000 + i * 1000,
          endNs: 1_000_500_000 + i * 1000,
          // What the agent records of an HTTP/1 server request: ~540 B a span encoded.
          attributes: {
            'http.request.method': 'GET',
            'http.route': '/users/:id',
            'url.path': `/users/${i}`,
            'url.scheme': 'http',
            'http.response.status_code': 200,
            'network.protocol.version': '1.1',
            'server.address': '127.0.0.1',
            'server.port': 8080,
            'client.address': '127.0.0.1',
            'network.peer.address': '127.0.0.1',
            'network.peer.port': 40000 + (i % 32),
            'user_agent.original': 'open-loop/1.0 (bench; keep-alive)',
            'http.request.body.size': 0,
            'http.response.body.size': 104,
          },
        },
      ),
    );
    const batch = encoder.encode(records, records.map(() => resource));
    out.push(Buffer.from(batch.bytes));
    batch.release();
  }
  return out;
}

export interface ExportCostOptions {
  readonly seconds: number;
  readonly rounds: number;
  readonly spans: number;
  readonly gzip: boolean;
}

export interface ExportCostResult {
  /** CPU µs per span, one per round. */
  readonly perSpanUs: readonly number[];
  /** Requests per wall second, one per round. */
  readonly requestsPerSecond: readonly number[];
  /** Requests that succeeded in the measured rounds (every one must: a failure throws). */
  readonly requests: number;
  /** Mean size of a request, bytes. */
  readonly requestBytes: number;
}

export async function runExportCost(o: ExportCostOptions): Promise<ExportCostResult> {
  const requests = encodeRequests(o.spans);
  const sink = await startSink();
  try {
    const cfg = loadOtelConfig({}, { endpoint: sink.url, protocol: 'grpc', ...(o.gzip ? { compression: 'gzip' as const } : {}) }).traces.otlp!;
    const exporter = createOtlpExporter('traces', cfg, { retry: DEFAULT_RETRY });
    const send = (body: Buffer) =>
      new Promise<void>((resolve, reject) =>
        exporter.export(body, (r) => (r.code === ExportResultCode.SUCCESS ? resolve() : reject(r.error ?? new Error('export failed')))),
      );
    // Warm-up: the session, JIT.
    for (let i = 0; i < 2 * REQUESTS; i++) await send(requests[i % REQUESTS]!);
    const perSpanUs: number[] = [];
    const requestsPerSecond: number[] = [];
    let total = 0;
    for (let round = 0; round < o.rounds; round++) {
      const c0 = process.cpuUsage();
      const w0 = performance.now();
      let sent = 0;
      while (performance.now() - w0 < o.seconds * 1000) await send(requests[sent++ % REQUESTS]!);
      const c = process.cpuUsage(c0);
      perSpanUs.push((c.user + c.system) / (sent * o.spans));
      requestsPerSecond.push(sent / ((performance.now() - w0) / 1000));
      total += sent;
    }
    await exporter.shutdown();
    return { perSpanUs, requestsPerSecond, requests: total, requestBytes: Math.round(requests.reduce((a, b) => a + b.length, 0) / REQUESTS) };
  } finally {
    sink.stop();
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '5' },
      rounds: { type: 'string', default: '5' },
      spans: { type: 'string', default: '1024' },
      gzip: { type: 'boolean', default: false },
    },
  });
  const o = {
    seconds: positive('--seconds', values.seconds!),
    rounds: positive('--rounds', values.rounds!),
    spans: positive('--spans', values.spans!),
    gzip: values.gzip!,
  };
  const r = await runExportCost(o);
  const perSpan = median([...r.perSpanUs]);
  process.stdout.write(
    `OTLP/gRPC export${o.gzip ? ' (gzip)' : ''}: ${o.spans} spans per request (${r.requestBytes} B), one request at a time to a sink in its own process; ` +
      `${o.rounds} rounds x ${o.seconds} s\n` +
      `  CPU per span: median ${perSpan.toFixed(3)} µs (rounds: ${r.perSpanUs.map((x) => x.toFixed(3)).join(', ')})\n` +
      `  CPU per request: median ${(perSpan * o.spans).toFixed(0)} µs; requests/s: median ${median([...r.requestsPerSecond]).toFixed(0)}\n`,
  );
  return 0;
}

if (require.main === module) runMain(main);
