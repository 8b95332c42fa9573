// Collector outages and shutdown, against the real receiver (export-policy.ts):
// every signal flows again within RECOVERY_BOUND_MS of the collector's
// return whatever the outage, and shutdown under a collector that hangs ends
// within its bound and says what each signal lost.

import test from 'ava';
import * as net from 'node:net';
import { DEFAULT_RETRY as CONFIG_DEFAULT_RETRY, loadOtelConfig } from '../../src/otel/config';
import {
  DEFAULT_RETRY,
  GRPC_SESSION_OPTIONS,
  HTTP_AGENT_OPTIONS,
  METRIC_RETRY_INTERVAL_MS,
  RECOVERY_BOUND_MS,
  SHUTDOWN_TIMEOUT_MS,
} from '../../src/otel/export-policy';
import { OtlpReceiver } from '../helpers/otlp-receiver';
import { SERVER_DURATION, sleep, traceRecord } from './fixtures';
import { harness, type Harness } from './harness';

const MEASUREMENTS = [{ instrument: SERVER_DURATION, value: 0.02, attributes: { 'http.route': '/a' } }];

/** What one telemetry sent: SPANS_PER_TICK spans (each with a measurement) and one log record every TICK_MS. */
const TICK_MS = 100;
const SPANS_PER_TICK = 5;

function emit(h: Harness, tick: number): void {
  h.telemetry.record(Array.from({ length: SPANS_PER_TICK }, () => traceRecord({}, { measurements: MEASUREMENTS })));
  h.telemetry.emitLog({ timeNs: 1_000_000 + tick, tgid: 4242, severity: 'WARN', eventName: 'test.event' });
}

// One real outage for both transports at once. During it the collector's ports
// take connections and close them at once (a client with a reconnect backoff,
// as grpc-js had, by default 1 s x1.6 up to 120 s, would wait about 10 s after
// 20 s), and the collector comes back right after an attempt, the worst moment.
const OUTAGE_MS = 20_000;

/** Takes connections on `port` and closes them at once; `attempts` counts them, `next` resolves on the next one. */
async function refuser(port: number) {
  let wake: (() => void) | undefined;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    r.attempts++;
    s.on('error', () => {});
    s.destroy();
    wake?.();
  });
  const r = {
    attempts: 0,
    next: () => new Promise<void>((resolve) => (wake = resolve)),
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return r;
}

test('after a collector outage, spans, log records and metrics flow again within 5 s, over gRPC and HTTP', async (t) => {
  t.timeout(OUTAGE_MS + 60_000);
  const first = await OtlpReceiver.start();
  // The agent's own retry policy (the harness's is fast, for other tests); metrics every 10 s.
  const options = { scheduleDelayMillis: 100, metricExportIntervalMillis: 10_000, retry: {} };
  const grpc = await harness(t, 'grpc', options, {}, first);
  const http = await harness(t, 'http', options, {}, first);
  let ticks = 0;
  const timer = setInterval(() => {
    emit(grpc, ticks);
    emit(http, ticks);
    ticks++;
  }, TICK_MS);
  t.teardown(() => clearInterval(timer));

  await first.waitFor(() => first.spans.some((s) => s.transport === 'grpc') && first.spans.some((s) => s.transport === 'http'), 10_000, 'spans before the outage');
  await first.close();
  const grpcDown = await refuser(first.grpcPort);
  const httpDown = await refuser(first.httpPort);
  await sleep(OUTAGE_MS);
  // Right after an attempt (grpc-js's default backoff would have made the next one wait up to 17 s).
  await Promise.race([grpcDown.next(), sleep(20_000)]);
  await Promise.all([grpcDown.close(), httpDown.close()]);
  const back = await OtlpReceiver.start({ grpcPort: first.grpcPort, httpPort: first.httpPort });
  t.teardown(() => back.close());
  const returnedAt = Date.now();
  t.log(`connection attempts during the outage: gRPC ${grpcDown.attempts}, HTTP ${httpDown.attempts}`);

  const arrival: Record<string, number> = {};
  const seen = (key: string, cond: () => boolean) => {
    if (arrival[key] === undefined && cond()) arrival[key] = Date.now() - returnedAt;
  };
  const expected = ['grpc spans', 'grpc logs', 'grpc metrics', 'http spans', 'http logs', 'http metrics'];
  await back.waitFor(
    () => {
      for (const tr of ['grpc', 'http'] as const) {
        seen(`${tr} spans`, () => back.spans.some((s) => s.transport === tr));
        seen(`${tr} logs`, () => back.logs.some((l) => l.transport === tr));
        seen(`${tr} metrics`, () => back.calls.some((c) => c.signal === 'metrics' && c.transport === tr && c.outcome === 'ok'));
      }
      return expected.every((k) => arrival[k] !== undefined);
    },
    RECOVERY_BOUND_MS + 5000,
    'every signal after the outage',
  ).catch(() => {});
  t.log(`arrival after the collector's return (ms): ${JSON.stringify(arrival)}`);
  for (const k of expected) t.true(arrival[k] !== undefined && arrival[k]! <= RECOVERY_BOUND_MS, `${k} after ${arrival[k]} ms`);

  clearInterval(timer);
  for (const h of [grpc, http]) {
    await h.telemetry.shutdown();
    const s = h.telemetry.health().spans;
    t.is(s.exported + s.failed + s.droppedQueueFull + s.droppedShutdown, ticks * SPANS_PER_TICK, 'every span is accounted for');
    t.is(h.logger.lines.filter((l) => l.includes('cannot export spans')).length, 1, 'the outage is logged once');
    t.is(h.logger.lines.filter((l) => l.startsWith('info: span export') && l.includes('recovered')).length, 1, 'and so is the recovery');
  }
});

test('one policy: gRPC sessions, the retry defaults, keep-alive sockets, the bounds', (t) => {
  t.deepEqual(GRPC_SESSION_OPTIONS, { idleTimeoutMillis: 15_000, pingTimeoutMillis: 2000, tcpKeepAliveMillis: 1000 });
  t.is(CONFIG_DEFAULT_RETRY, DEFAULT_RETRY, 'the configuration takes its defaults from the policy');
  t.deepEqual(DEFAULT_RETRY, { maxAttempts: 5, initialBackoffMillis: 1000, maxBackoffMillis: 2000, backoffMultiplier: 1.5, jitter: 0.2 });
  t.deepEqual(HTTP_AGENT_OPTIONS, { keepAlive: true, keepAliveMsecs: 1000, timeout: 15_000, scheduling: 'lifo' });
  t.is(METRIC_RETRY_INTERVAL_MS, 2000);
  t.is(RECOVERY_BOUND_MS, 5000);
  t.is(SHUTDOWN_TIMEOUT_MS, 5000);
  t.is(loadOtelConfig({}, {}).shutdownTimeoutMillis, SHUTDOWN_TIMEOUT_MS);
});

/** A collector that takes connections and never answers (neither HTTP/2 nor HTTP). */
async function hangingCollector(t: import('ava').ExecutionContext): Promise<{ port: number; sockets: Set<net.Socket> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return { port: (server.address() as net.AddressInfo).port, sockets };
}

for (const transport of ['grpc', 'http'] as const) {
  test(`shutdown under a hanging collector (${transport}) ends within its bound and says what each signal lost`, async (t) => {
    const { port } = await hangingCollector(t);
    const url = `http://127.0.0.1:${port}`;
    const { telemetry, logger } = await harness(t, 'none', {
      endpoint: url,
      protocol: transport === 'grpc' ? 'grpc' : 'http/protobuf',
      shutdownTimeoutMillis: 1500,
      metricExportIntervalMillis: 60_000,
      retry: {},
    });
    telemetry.record(Array.from({ length: 16_384 }, () => traceRecord({}, { measurements: MEASUREMENTS })));
    for (let i = 0; i < 3; i++) telemetry.emitLog({ timeNs: 1_000_000 + i, tgid: 4242, severity: 'WARN', eventName: 'test.event' });
    await sleep(200);
    const before = Date.now();
    await telemetry.shutdown();
    const took = Date.now() - before;
    t.true(took >= 1400 && took < 2000, `shutdown took ${took} ms`);
    const protocol = transport === 'grpc' ? 'grpc' : 'http/protobuf';
    const signalUrl = (path: string) => (transport === 'grpc' ? url : `${url}/${path}`);
    const summary = telemetry.shutdownSummary();
    t.deepEqual(summary, [
      `spans to ${signalUrl('v1/traces')} (${protocol}): 0 exported, 16384 lost at shutdown (15360 still queued, 1024 in an export cut short)`,
      `log records to ${signalUrl('v1/logs')} (${protocol}): 0 exported, 3 lost at shutdown (3 in an export cut short)`,
      `metrics to ${signalUrl('v1/metrics')} (${protocol}): final export did not finish within the shutdown bound: the last interval is lost`,
    ]);
    t.true(
      logger.lines.some((l) => l.startsWith('warn: the final metric export to ') && l.endsWith("the last interval's metrics are lost")),
      'the lost metric export is logged',
    );
    // The cut exports end now, not at their 10 s deadline.
    await sleep(100);
    const s = telemetry.health().spans;
    t.is(s.exported + s.failed + s.droppedShutdown, 16_384);
    t.is(s.droppedShutdown, 15_360);
    // The cut export was cancelled (gRPC) or its socket destroyed (HTTP).
    t.deepEqual(s.failuresByReason, transport === 'grpc' ? { CANCELLED: 1024 } : { ECONNRESET: 1024 });
  });
}
