// Log records through Telemetry.emitLog: configuration, both OTLP transports
// end to end with the in-test receiver, retries, the bounded queue, the
// console, shutdown. The tests both signals share (gRPC retries, partial
// success) are export.test.ts's, run for each.

import test, { type ExecutionContext } from 'ava';
import { loadOtelConfig } from '../../src/otel/config';
import type { LogRecord } from '../../src/otel/log-record';
import { closedPort, sleep, traceRecord } from './fixtures';
import { harness, NOW_MONO_NS, OFFSET } from './harness';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';

const slowRead = (overrides: Partial<LogRecord> = {}): LogRecord => ({
  timeNs: 123_456_789_012,
  tgid: 4242,
  severity: 'WARN',
  eventName: 'ebpf_otel.syscall.slow',
  body: 'read took 1.203 s',
  attributes: { 'syscall.name': 'read', 'thread.id': 4250, 'ebpf_otel.syscall.duration_ns': 1_203_000_000 },
  ...overrides,
});

// ---------------------------------------------------------------- configuration

test('config: logs follow the traces rules; OTEL_BLRP_* with the SDK defaults', (t) => {
  const none = loadOtelConfig({});
  t.is(none.logs.exporter, 'console', 'no endpoint: printed, like spans');
  t.deepEqual(none.logs.batch, { maxQueueSize: 2048, maxExportBatchSize: 512, scheduleDelayMillis: 1000, exportTimeoutMillis: 30000 });
  const http = loadOtelConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' });
  t.is(http.logs.exporter, 'otlp');
  t.is(http.logs.otlp?.url, 'http://collector:4318/v1/logs');
  const grpc = loadOtelConfig({
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4317',
    OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
    OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: 'http/protobuf',
    OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: 'http://logs:4318/custom',
    OTEL_EXPORTER_OTLP_LOGS_HEADERS: 'x-logs=1',
    OTEL_EXPORTER_OTLP_HEADERS: 'x-all=2',
    OTEL_EXPORTER_OTLP_LOGS_COMPRESSION: 'gzip',
    OTEL_EXPORTER_OTLP_LOGS_TIMEOUT: '2500',
  });
  t.is(grpc.traces.otlp?.protocol, 'grpc');
  t.deepEqual(
    { ...grpc.logs.otlp },
    { protocol: 'http/protobuf', url: 'http://logs:4318/custom', headers: { 'x-all': '2', 'x-logs': '1' }, compression: 'gzip', timeoutMillis: 2500, insecure: false },
  );
  const tuned = loadOtelConfig({
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
    OTEL_BLRP_MAX_QUEUE_SIZE: '100',
    OTEL_BLRP_MAX_EXPORT_BATCH_SIZE: '200',
    OTEL_BLRP_SCHEDULE_DELAY: '0',
    OTEL_BLRP_EXPORT_TIMEOUT: '-1',
  });
  t.deepEqual(tuned.logs.batch, { maxQueueSize: 100, maxExportBatchSize: 100, scheduleDelayMillis: 0, exportTimeoutMillis: 30000 });
  t.deepEqual(tuned.warnings, [
    'OTEL_BLRP_MAX_EXPORT_BATCH_SIZE (200) exceeds OTEL_BLRP_MAX_QUEUE_SIZE (100); using 100',
    'OTEL_BLRP_EXPORT_TIMEOUT=-1 is not a number >= 1; using 30000',
  ]);
  t.deepEqual(tuned.batch.maxQueueSize, 16384, 'the span queue is another');
});

test('config: OTEL_LOGS_EXPORTER, OTEL_SDK_DISABLED, --console', (t) => {
  const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' };
  t.is(loadOtelConfig({ ...endpoint, OTEL_LOGS_EXPORTER: 'none' }).logs.exporter, 'none');
  t.is(loadOtelConfig({ ...endpoint, OTEL_LOGS_EXPORTER: 'console' }).logs.exporter, 'console');
  t.is(loadOtelConfig({ ...endpoint, OTEL_SDK_DISABLED: 'true' }).logs.exporter, 'none');
  t.is(loadOtelConfig(endpoint, { console: true }).logs.exporter, 'console');
  t.is(loadOtelConfig({}, { logsEndpoint: 'http://flag:4318/v1/logs' }).logs.otlp?.url, 'http://flag:4318/v1/logs');
  const orphan = loadOtelConfig({ OTEL_LOGS_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://t:4318/v1/traces' });
  t.is(orphan.logs.exporter, 'console', 'a traces endpoint is not a logs endpoint');
  t.true(orphan.warnings.some((w) => w.startsWith('OTEL_LOGS_EXPORTER=otlp but no endpoint is set')));
  const odd = loadOtelConfig({ ...endpoint, OTEL_LOGS_EXPORTER: 'journald' });
  t.is(odd.logs.exporter, 'otlp', 'an unknown exporter is ignored');
  t.true(odd.warnings.some((w) => w.includes('OTEL_LOGS_EXPORTER=journald is not supported')));
});

// ---------------------------------------------------------------- OTLP

async function logsExact(t: ExecutionContext, transport: 'grpc' | 'http') {
  const { receiver, telemetry } = await harness(t, transport);
  telemetry.emitLog(slowRead({ traceId: TRACE, spanId: '00f067aa0ba902b7', sampled: true }));
  telemetry.emitLog(slowRead({ tgid: 4343, severity: 'ERROR', eventName: 'x.connect', body: { port: 5432, refused: true }, attributes: {}, timeNs: 124_000_000_000 }));
  await telemetry.forceFlush(5000);
  const logs = await receiver.waitForLogs(2);
  t.is(logs.length, 2);
  const slow = logs.find((l) => l.eventName === 'ebpf_otel.syscall.slow')!;
  t.is(slow.transport, transport);
  t.is(slow.timeUnixNano, 123_456_789_012n + OFFSET);
  t.is(slow.observedTimeUnixNano, BigInt(NOW_MONO_NS) + OFFSET);
  t.is(slow.severityNumber, 13);
  t.is(slow.severityText, 'WARN');
  t.is(slow.body, 'read took 1.203 s');
  t.deepEqual(slow.attributes, { 'syscall.name': 'read', 'thread.id': 4250, 'ebpf_otel.syscall.duration_ns': 1_203_000_000 });
  t.is(slow.traceId, TRACE);
  t.is(slow.spanId, '00f067aa0ba902b7');
  t.is(slow.flags, 1);
  t.deepEqual(slow.scope, { name: 'ebpf-otel-sidecar', version: '0.1.0' });
  t.is(slow.resource['service.name'], 'shop', "the process's own resource, as its spans have");
  t.is(slow.resource['process.pid'], 4242);
  t.is(slow.resource['host.name'], 'test-host');
  const refused = logs.find((l) => l.eventName === 'x.connect')!;
  t.is(refused.resource['service.name'], 'billing');
  t.is(refused.severityNumber, 17);
  t.deepEqual(refused.body, { port: 5432, refused: true });
  t.is(refused.traceId, '');
  t.is(refused.flags, 0);
  const h = telemetry.health().logs;
  t.is(h.emitted, 2);
  t.is(h.exported, 2);
  t.is(h.failed, 0);
  t.is(receiver.calls.filter((c) => c.signal === 'logs').length, 1, 'one batch');
}
test('log records over OTLP/gRPC: times to the ns, severity, event name, body, trace context, resource', logsExact, 'grpc');
test('log records over OTLP/HTTP protobuf: the same', logsExact, 'http');

test('OTLP/HTTP: 503 is retried; 400 is final, counted and logged once', async (t) => {
  const { receiver, telemetry, logger } = await harness(t, 'http');
  receiver.failNext(1, { httpStatus: 503, signal: 'logs' });
  telemetry.emitLog(slowRead());
  await telemetry.forceFlush(5000);
  await receiver.waitForLogs(1);
  t.deepEqual(receiver.calls.filter((c) => c.signal === 'logs').map((c) => c.outcome), [503, 'ok']);
  receiver.failNext(2, { httpStatus: 400, signal: 'logs' });
  telemetry.emitLog(slowRead());
  telemetry.emitLog(slowRead());
  await telemetry.forceFlush(5000);
  telemetry.emitLog(slowRead());
  await telemetry.forceFlush(5000);
  const h = telemetry.health().logs;
  t.is(h.exported, 1);
  t.is(h.failed, 3);
  t.deepEqual(h.failuresByReason, { http_400: 3 });
  t.is(logger.lines.filter((l) => l.includes('cannot export log records')).length, 1, logger.lines.join('\n'));
});

test('a full queue drops new log records, counts them, logs once; the health metrics say so', async (t) => {
  const { receiver, telemetry, logger } = await harness(
    t,
    'grpc',
    { metricExportIntervalMillis: 60_000 },
    { OTEL_BLRP_MAX_QUEUE_SIZE: '5', OTEL_BLRP_MAX_EXPORT_BATCH_SIZE: '5', OTEL_BLRP_SCHEDULE_DELAY: '60000' },
  );
  telemetry.registerAgentHealth([], () => ({}));
  // The first 5 fill a batch, whose export starts; 5 more wait behind it; the rest find the queue full.
  for (let i = 0; i < 20; i++) telemetry.emitLog(slowRead({ timeNs: 1_000_000 + i }));
  t.is(telemetry.health().logs.queued, 5);
  await telemetry.forceFlush(5000);
  await receiver.waitForLogs(10);
  const h = telemetry.health().logs;
  t.is(h.emitted, 20);
  t.is(h.exported, 10);
  t.is(h.droppedQueueFull, 10);
  t.is(h.exported + h.failed + h.droppedQueueFull + h.droppedShutdown + h.queued, 20, 'every log record is accounted for');
  t.deepEqual(
    receiver.logs.map((l) => Number(l.timeUnixNano - OFFSET) - 1_000_000),
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    'the first ones are kept, in order',
  );
  const full = logger.lines.filter((l) => l.includes('log record queue full'));
  t.deepEqual(full, [
    'warn: log record queue full (5 log records, OTEL_BLRP_MAX_QUEUE_SIZE): dropping new log records; drops are counted in ebpf_otel.log.dropped',
  ]);
  await receiver.waitFor(() => receiver.points.some((p) => p.metric.name === 'ebpf_otel.log.dropped'), 5000);
  const dropped = receiver.latestPoints('ebpf_otel.log.dropped');
  t.deepEqual(
    dropped.map((p) => [p.attributes['ebpf_otel.reason'], p.value]).sort(),
    [
      ['queue_full', 10],
      ['shutdown', 0],
    ],
  );
  t.is(dropped[0]!.metric.unit, '{log_record}');
  t.is(receiver.latestPoints('ebpf_otel.log.exported')[0]!.value, 10);
  t.is(receiver.latestPoints('ebpf_otel.log.queue_size')[0]!.metric.type, 'gauge');
});

test('malformed log records are not sent, counted as invalid_record, logged once', async (t) => {
  const { receiver, telemetry, logger } = await harness(t, 'http');
  telemetry.emitLog(slowRead({ traceId: 'not-hex' }));
  telemetry.emitLog(slowRead({ timeNs: -1 }));
  telemetry.emitLog(slowRead({ eventName: 'fine' }));
  await telemetry.forceFlush(5000);
  const logs = await receiver.waitForLogs(1);
  t.deepEqual(logs.map((l) => l.eventName), ['fine']);
  t.deepEqual(telemetry.health().logs.failuresByReason, { invalid_record: 2 });
  t.is(logger.lines.filter((l) => l.includes('malformed')).length, 1);
});

test('shutdown flushes pending log records beside spans and metrics', async (t) => {
  const { receiver, telemetry } = await harness(t, 'grpc', { scheduleDelayMillis: 60_000 }, { OTEL_BLRP_SCHEDULE_DELAY: '60000' });
  for (let i = 0; i < 3; i++) telemetry.emitLog(slowRead());
  await sleep(100);
  t.is(receiver.logs.length, 0, 'nothing exported before the schedule delay');
  await telemetry.shutdown(5000);
  t.is(receiver.logs.length, 3);
  telemetry.emitLog(slowRead());
  t.is(telemetry.health().logs.emitted, 3, 'log records after shutdown are ignored');
});

test('shutdown is bounded when the collector is down; the log record is accounted for', async (t) => {
  // Refused at once, retried every 50 ms far past the shutdown budget.
  const { telemetry } = await harness(t, 'none', {
    endpoint: `http://127.0.0.1:${await closedPort()}`,
    protocol: 'http/protobuf',
    timeoutMillis: 60_000,
    retry: { maxAttempts: 100, initialBackoffMillis: 50, maxBackoffMillis: 50 },
  });
  telemetry.emitLog(slowRead());
  const before = Date.now();
  await telemetry.shutdown(1500);
  const took = Date.now() - before;
  t.true(took < 2500, `shutdown took ${took} ms`);
  // An attempt under way when the retries were abandoned reports when it ends.
  await sleep(200);
  const h = telemetry.health().logs;
  t.is(h.exported, 0);
  t.is(h.failed + h.droppedShutdown, 1, 'the log record is accounted for');
});

test('shutdown shares: spans at most half, log records a third of what is left, metrics the rest', async (t) => {
  // Exporters that never answer use their whole share; each is closed when its phase ends.
  const closedAt: Record<string, number> = {};
  const silent = (name: string) => ({
    export: () => {},
    shutdown: async () => {
      closedAt[name] = Date.now();
    },
  });
  const { telemetry } = await harness(t, 'grpc', {}, {}, undefined, { spanExporter: silent('spans'), logExporter: silent('logs') });
  telemetry.record([traceRecord()]);
  telemetry.emitLog(slowRead());
  await sleep(50);
  const start = Date.now();
  await telemetry.shutdown(1200);
  const spans = closedAt['spans']! - start;
  const logs = closedAt['logs']! - closedAt['spans']!;
  // 1200 ms: spans 6/12 = 600 ms, logs 2/6 of what is left (200 ms when spans end on time), metrics the rest.
  t.true(spans >= 580 && spans < 1000, `spans closed after ${spans} ms`);
  const logShare = Math.floor(((1200 - spans) * 2) / 6);
  t.true(logs >= logShare - 20 && logs < logShare + 150, `logs closed ${logs} ms later, share ${logShare} ms`);
});

// ---------------------------------------------------------------- console and off

test('console: one line per log record', async (t) => {
  const { telemetry, lines } = await harness(t, 'none');
  t.is(telemetry.config.logs.exporter, 'console');
  telemetry.emitLog(slowRead({ traceId: TRACE, spanId: '00f067aa0ba902b7', attributes: { 'syscall.name': 'read', 'file.path': '/tmp/a b', raw: Buffer.from([0xab, 0xcd]) } }));
  telemetry.emitLog({ timeNs: 123_456_789_012, tgid: 4343, severity: 'ERROR', body: { refused: true } });
  telemetry.emitLog(slowRead({ timeNs: 1.5 }));
  const wall = new Date(Number((123_456_789_012n + OFFSET) / 1_000_000n)).toISOString().slice(11);
  t.deepEqual(lines, [
    `${wall}  shop  WARN  ebpf_otel.syscall.slow  "read took 1.203 s"  syscall.name=read  file.path="/tmp/a b"  raw="abcd"  trace=4bf92f35 span=00f067aa`,
    `${wall}  billing  ERROR  {"refused":true}`,
  ]);
  const { emitted, printed, rejected, exported, queued } = telemetry.health().logs;
  t.deepEqual({ emitted, printed, rejected, exported, queued }, { emitted: 3, printed: 2, rejected: 1, exported: 0, queued: 0 });
});

test('OTEL_LOGS_EXPORTER=none: emitLog does nothing', async (t) => {
  const { receiver, telemetry, lines } = await harness(t, 'grpc', {}, { OTEL_LOGS_EXPORTER: 'none' });
  telemetry.emitLog(slowRead());
  await telemetry.forceFlush(2000);
  await sleep(100);
  t.is(receiver.calls.filter((c) => c.signal === 'logs').length, 0);
  t.deepEqual(lines, []);
  t.is(telemetry.health().logs.emitted, 0);
  t.is(telemetry.agentHealth().logsExported, undefined, 'no log health metrics without a log pipeline');
});
