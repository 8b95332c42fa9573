import test, { type ExecutionContext } from 'ava';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as zlib from 'node:zlib';
import { status } from '@grpc/grpc-js';
import { classifyGrpcError, errorName, retryDelayFromStatusDetails } from '../../src/otel/export';
import { classifyHttpError, grpcAddress, GrpcStatus, GrpcStatusError, grpcStatusName, OtlpHttpError, OtlpTimeoutError, parseRetryAfter } from '../../src/otel/otlp-transport';
import { decodeTraceRequest, OtlpReceiver, statusWithRetryInfo } from '../helpers/otlp-receiver';
import { closedPort, SERVER_DURATION, sleep, traceRecord } from './fixtures';
import { harness, OFFSET, type Harness } from './harness';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';

/** The two signals the agent encodes and queues itself, as the tests below drive and read them. */
type QueuedSignal = 'traces' | 'logs';
const SIGNALS = {
  traces: {
    plural: 'spans',
    emit: (h: Harness, n: number) => h.telemetry.record(Array.from({ length: n }, () => traceRecord())),
    received: (h: Harness) => h.receiver.spans.length,
    stats: (h: Harness) => h.telemetry.health().spans,
    respondPartially: (h: Harness, rejected: number, errorMessage: string) => h.receiver.respondPartially({ rejectedSpans: rejected, errorMessage }),
  },
  logs: {
    plural: 'log records',
    emit: (h: Harness, n: number) => {
      for (let i = 0; i < n; i++) h.telemetry.emitLog({ timeNs: 1_000_000 + i, tgid: 4242, severity: 'WARN', eventName: 'test.event' });
    },
    received: (h: Harness) => h.receiver.logs.length,
    stats: (h: Harness) => h.telemetry.health().logs,
    respondPartially: (h: Harness, rejected: number, errorMessage: string) => h.receiver.respondLogsPartially({ rejectedLogRecords: rejected, errorMessage }),
  },
} as const;

async function spansExact(t: ExecutionContext, transport: 'grpc' | 'http') {
  const { receiver, telemetry } = await harness(t, transport);
  telemetry.record([
    traceRecord(
      { traceId: TRACE, spanId: '00f067aa0ba902b7', parentSpanId: 'b7ad6b7169203331', traceState: 'vendor=x' },
      { startNs: 123_456_789_012, endNs: 123_469_134_690 },
    ),
    traceRecord(
      { traceId: TRACE, spanId: '1111111111111111', parentSpanId: '00f067aa0ba902b7' },
      { kind: 'client', name: 'GET', status: 'error', statusMessage: 'HTTP 503', errorType: '503', startNs: 123_460_000_000, endNs: 123_465_000_001 },
    ),
    traceRecord({ traceId: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', sampled: false }),
  ]);
  await telemetry.forceFlush(5000);
  const spans = await receiver.waitForSpans(2);
  await sleep(100);
  t.is(spans.length, 2, 'the unsampled record is not exported');
  const server = spans.find((s) => s.spanId === '00f067aa0ba902b7')!;
  const client = spans.find((s) => s.spanId === '1111111111111111')!;
  t.is(server.transport, transport);
  t.is(server.traceId, TRACE);
  t.is(server.parentSpanId, 'b7ad6b7169203331');
  t.is(server.traceState, 'vendor=x');
  t.is(server.kind, 2);
  t.is(server.name, 'GET /users/:id');
  t.is(server.startTimeUnixNano, 123_456_789_012n + OFFSET);
  t.is(server.endTimeUnixNano, 123_469_134_690n + OFFSET);
  t.is(server.flags, 0x301, 'sampled, parent is remote');
  t.deepEqual(server.attributes, { 'http.request.method': 'GET', 'http.route': '/users/:id', 'http.response.status_code': 200 });
  t.deepEqual(server.status, { code: 0, message: '' });
  t.is(server.events, 0);
  t.is(server.links, 0);
  t.deepEqual(server.scope, { name: 'ebpf-otel-sidecar', version: '0.1.0' });
  t.is(server.resource['service.name'], 'shop');
  t.is(server.resource['process.pid'], 4242);
  t.is(server.resource['process.runtime.name'], 'cpython');
  t.is(server.resource['host.name'], 'test-host');
  t.is(server.resource['telemetry.distro.name'], 'ebpf-otel-sidecar');
  t.is(client.kind, 3);
  t.is(client.parentSpanId, '00f067aa0ba902b7');
  t.is(client.flags, 0x101, 'sampled, parent is local');
  t.deepEqual(client.status, { code: 2, message: 'HTTP 503' });
  t.is(client.attributes['error.type'], '503');
  t.is(client.endTimeUnixNano - client.startTimeUnixNano, 5_000_001n);
  t.is(telemetry.health().spans.exported, 2);
  t.is(telemetry.health().records.unsampled, 1);
}
test('spans over OTLP/gRPC: ids, times to the ns, kinds, status, resource', spansExact, 'grpc');
test('spans over OTLP/HTTP protobuf: the same', spansExact, 'http');

test('one resource per process', async (t) => {
  const { receiver, telemetry } = await harness(t, 'grpc');
  telemetry.record([traceRecord({ process: { tgid: 4242 } }, { tgid: 4242 }), traceRecord({ process: { tgid: 4343 } }, { tgid: 4343 })]);
  await telemetry.forceFlush(5000);
  const spans = await receiver.waitForSpans(2);
  t.deepEqual(spans.map((s) => s.resource['service.name']).sort(), ['billing', 'shop']);
});

async function unavailableRetried(t: ExecutionContext, signal: QueuedSignal) {
  const h = await harness(t, 'grpc');
  const sig = SIGNALS[signal];
  h.receiver.failNext(2, { grpcCode: status.UNAVAILABLE, signal });
  sig.emit(h, 1);
  await h.telemetry.forceFlush(5000);
  await h.receiver.waitFor(() => sig.received(h) >= 1);
  t.deepEqual(
    h.receiver.calls.filter((c) => c.signal === signal).map((c) => c.outcome),
    [status.UNAVAILABLE, status.UNAVAILABLE, 'ok'],
  );
  const stats = sig.stats(h);
  t.is(stats.exported, 1);
  t.is(stats.failed, 0);
  t.false(h.logger.lines.some((l) => l.includes('cannot export')));
}
test('gRPC: UNAVAILABLE is retried with backoff until it succeeds', unavailableRetried, 'traces');
test('gRPC: UNAVAILABLE is retried until log records go, the same', unavailableRetried, 'logs');

async function retryInfo(t: ExecutionContext, code: number) {
  // Our own backoff would wait 8 s: a retry well before that is the server's delay.
  const { receiver, telemetry } = await harness(t, 'grpc', { retry: { initialBackoffMillis: 8000, maxBackoffMillis: 8000 } });
  receiver.failNext(1, { grpcCode: code, retryDelayMillis: 400, signal: 'traces' });
  telemetry.record([traceRecord()]);
  await telemetry.forceFlush(5000);
  await receiver.waitForSpans(1);
  const calls = receiver.calls.filter((c) => c.signal === 'traces');
  t.deepEqual(calls.map((c) => c.outcome), [code, 'ok']);
  const gap = calls[1]!.atMs - calls[0]!.atMs;
  t.true(gap >= 380 && gap < 3000, `retried after ${gap} ms`);
}
test('gRPC: RESOURCE_EXHAUSTED with RetryInfo is retried after the server delay', retryInfo, status.RESOURCE_EXHAUSTED);
test('gRPC: UNAVAILABLE with RetryInfo honours the server delay', retryInfo, status.UNAVAILABLE);

test('gRPC: RESOURCE_EXHAUSTED without RetryInfo is not retried', async (t) => {
  const { receiver, telemetry } = await harness(t, 'grpc');
  receiver.failNext(1, { grpcCode: status.RESOURCE_EXHAUSTED, signal: 'traces' });
  telemetry.record([traceRecord()]);
  await telemetry.forceFlush(5000);
  await sleep(300);
  t.is(receiver.calls.filter((c) => c.signal === 'traces').length, 1);
  t.deepEqual(telemetry.health().spans.failuresByReason, { RESOURCE_EXHAUSTED: 1 });
});

test('gRPC: INVALID_ARGUMENT is dropped and counted, logged once, recovery logged', async (t) => {
  const { receiver, telemetry, logger } = await harness(t, 'grpc');
  receiver.failNext(2, { grpcCode: status.INVALID_ARGUMENT, signal: 'traces' });
  telemetry.record([traceRecord(), traceRecord()]);
  await telemetry.forceFlush(5000);
  telemetry.record([traceRecord()]);
  await telemetry.forceFlush(5000);
  telemetry.record([traceRecord()]);
  await telemetry.forceFlush(5000);
  await receiver.waitForSpans(1);
  t.deepEqual(
    receiver.calls.filter((c) => c.signal === 'traces').map((c) => c.outcome),
    [status.INVALID_ARGUMENT, status.INVALID_ARGUMENT, 'ok'],
  );
  const h = telemetry.health().spans;
  t.is(h.failed, 3);
  t.is(h.failedBatches, 2);
  t.deepEqual(h.failuresByReason, { INVALID_ARGUMENT: 3 });
  t.is(h.exported, 1);
  t.is(logger.lines.filter((l) => l.includes('cannot export spans')).length, 1);
  t.is(logger.lines.filter((l) => l.includes('recovered')).length, 1);
});

test('OTLP/HTTP: 503 is retried after Retry-After; 400 is not retried', async (t) => {
  const { receiver, telemetry } = await harness(t, 'http');
  receiver.failNext(1, { httpStatus: 503, retryAfterSeconds: 1, signal: 'traces' });
  telemetry.record([traceRecord()]);
  await telemetry.forceFlush(8000);
  await receiver.waitForSpans(1);
  let calls = receiver.calls.filter((c) => c.signal === 'traces');
  t.deepEqual(calls.map((c) => c.outcome), [503, 'ok']);
  t.true(calls[1]!.atMs - calls[0]!.atMs >= 950, 'Retry-After honoured');
  receiver.reset();
  receiver.failNext(1, { httpStatus: 400, signal: 'traces' });
  telemetry.record([traceRecord()]);
  await telemetry.forceFlush(5000);
  await sleep(300);
  calls = receiver.calls.filter((c) => c.signal === 'traces');
  t.deepEqual(calls.map((c) => c.outcome), [400]);
  t.deepEqual(telemetry.health().spans.failuresByReason, { http_400: 1 });
});

test('headers and our user agent reach the collector on both transports', async (t) => {
  for (const transport of ['grpc', 'http'] as const) {
    const { receiver, telemetry } = await harness(t, transport, {}, { OTEL_EXPORTER_OTLP_HEADERS: 'x-api-key=s%3Dcret' });
    telemetry.record([traceRecord()]);
    await telemetry.forceFlush(5000);
    const [call] = await receiver.waitForCalls(1, 5000, 'traces');
    t.is(call!.headers['x-api-key'], 's=cret', transport);
    t.true(call!.headers['user-agent']!.startsWith('ebpf-otel-sidecar/0.1.0'), call!.headers['user-agent']);
  }
});

test('gzip over HTTP', async (t) => {
  const { receiver, telemetry } = await harness(t, 'http', { compression: 'gzip' });
  telemetry.record([traceRecord({ spanId: '2222222222222222' }, { attributes: { 'url.path': '/a'.repeat(500) } })]);
  await telemetry.forceFlush(5000);
  const [span] = await receiver.waitForSpans(1);
  t.is(span!.spanId, '2222222222222222');
  t.is(span!.attributes['url.path'], '/a'.repeat(500));
  t.is(receiver.calls[0]!.headers['content-encoding'], 'gzip');
});

test('gzip over gRPC: a compressed message, flagged and announced', async (t) => {
  // A bare HTTP/2 server sees what grpc-js servers hide: the encoding header and the message's compressed flag.
  const server = http2.createServer();
  const seen: { encoding?: string; flag?: number; request?: Buffer }[] = [];
  server.on('stream', (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const body = Buffer.concat(chunks);
      const message = body.subarray(5, 5 + body.readUInt32BE(1));
      seen.push({ encoding: headers['grpc-encoding'] as string, flag: body[0]!, request: zlib.gunzipSync(message) });
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(Buffer.from([0, 0, 0, 0, 0]));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const port = (server.address() as net.AddressInfo).port;
  const { telemetry } = await harness(t, 'none', { endpoint: `http://127.0.0.1:${port}`, protocol: 'grpc', compression: 'gzip' });
  telemetry.record([traceRecord({ spanId: '3333333333333333' })]);
  await telemetry.forceFlush(5000);
  t.is(telemetry.health().spans.exported, 1);
  t.is(seen.length, 1);
  t.is(seen[0]!.encoding, 'gzip');
  t.is(seen[0]!.flag, 1, 'compressed');
  const spans = (decodeTraceRequest(seen[0]!.request!)['resourceSpans'] as any[])[0].scopeSpans[0].spans; // eslint-disable-line @typescript-eslint/no-explicit-any
  t.is(Buffer.from(spans[0].spanId).toString('hex'), '3333333333333333');
});

async function partialSuccess(t: ExecutionContext, transport: 'grpc' | 'http', signal: QueuedSignal) {
  const h = await harness(t, transport);
  const sig = SIGNALS[signal];
  sig.respondPartially(h, 2, 'too old');
  sig.respondPartially(h, 1, 'again');
  sig.emit(h, 3);
  await h.telemetry.forceFlush(5000);
  sig.emit(h, 2);
  await h.telemetry.forceFlush(5000);
  await h.receiver.waitFor(() => sig.received(h) >= 5);
  const stats = sig.stats(h);
  t.is(stats.exported, 2);
  t.is(stats.failed, 3);
  t.is(stats.failedBatches, 0, 'a partial success is no failed export');
  t.deepEqual(stats.failuresByReason, { rejected: 3 });
  const lines = h.logger.lines.filter((l) => l.includes('rejected'));
  t.is(lines.length, 1, h.logger.lines.join('\n'));
  t.true(lines[0]!.includes(`rejected 2 of 3 ${sig.plural}: too old`), lines[0]);
  t.false(h.logger.lines.some((l) => l.includes('cannot export')));
}
test('partial success over gRPC: rejected spans counted as failed, the message logged once', partialSuccess, 'grpc', 'traces');
test('partial success over HTTP: the same', partialSuccess, 'http', 'traces');
test('partial success of log records over gRPC: the same', partialSuccess, 'grpc', 'logs');
test('partial success of log records over HTTP: the same', partialSuccess, 'http', 'logs');

test('OTLP/HTTP: a collector that never answers times out and fails as timeout', async (t) => {
  const sockets = new Set<net.Socket>();
  const silent = net.createServer((s) => sockets.add(s));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    silent.close();
  });
  const port = (silent.address() as net.AddressInfo).port;
  const { telemetry, logger } = await harness(t, 'none', {
    endpoint: `http://127.0.0.1:${port}`,
    protocol: 'http/protobuf',
    // Long enough for the server to see the connection on a loaded machine.
    timeoutMillis: 1000,
    retry: { maxAttempts: 1, initialBackoffMillis: 20, maxBackoffMillis: 20 },
  });
  telemetry.record([traceRecord(), traceRecord()]);
  await telemetry.forceFlush(5000);
  const h = telemetry.health().spans;
  t.deepEqual(h.failuresByReason, { timeout: 2 });
  t.is(sockets.size, 1, 'the attempt used the whole export timeout: no time is left for a retry');
  t.regex(logger.lines.find((l) => l.includes('cannot export spans'))!, /timed out after 1000 ms/);
});

async function collectorDown(t: ExecutionContext, transport: 'grpc' | 'http') {
  // The receiver takes its ports first, so the closed port cannot be one of them.
  const receiver = await OtlpReceiver.start();
  t.teardown(() => receiver.close());
  const port = await closedPort();
  const { telemetry, logger } = await harness(t, 'none', {
    endpoint: `http://127.0.0.1:${port}`,
    protocol: transport === 'grpc' ? 'grpc' : 'http/protobuf',
    maxQueueSize: 20,
    maxExportBatchSize: 10,
    scheduleDelayMillis: 10,
    timeoutMillis: 300,
    retry: { maxAttempts: 1, initialBackoffMillis: 20, maxBackoffMillis: 20 },
  }, {}, receiver);
  for (let i = 0; i < 20; i++) {
    telemetry.record(Array.from({ length: 25 }, () => traceRecord()));
    t.true(telemetry.health().spans.queued <= 20, 'the queue stays bounded');
    await sleep(10);
  }
  const before = Date.now();
  await telemetry.shutdown(2000);
  t.true(Date.now() - before < 3000, 'shutdown is bounded');
  const h = telemetry.health().spans;
  t.is(h.exported, 0);
  t.true(h.droppedQueueFull > 0);
  t.true(h.failed > 0);
  t.is(h.exported + h.failed + h.droppedQueueFull + h.droppedShutdown + h.queued, 500, 'every span is accounted for');
  t.is(logger.lines.filter((l) => l.includes('cannot export spans')).length, 1, 'one log line, then counted');
  t.is(logger.lines.filter((l) => l.includes('span queue full')).length, 1);
}
test('collector down over gRPC: bounded queue, drops counted, one log line', collectorDown, 'grpc');
test('collector down over HTTP: bounded queue, drops counted, one log line', collectorDown, 'http');

test('shutdown flushes every pending span and metric', async (t) => {
  const { receiver, telemetry } = await harness(t, 'grpc', { scheduleDelayMillis: 60_000, metricExportIntervalMillis: 60_000 });
  const m = [{ instrument: SERVER_DURATION, value: 0.02, attributes: { 'http.route': '/a' } }];
  telemetry.record(Array.from({ length: 7 }, () => traceRecord({}, { measurements: m })));
  await sleep(100);
  t.is(receiver.spans.length, 0, 'nothing exported before the schedule delay');
  await telemetry.shutdown(5000);
  t.is(receiver.spans.length, 7);
  const points = receiver.latestPoints('http.server.request.duration');
  t.is(points.length, 1);
  t.is(points[0]!.histogram!.count, 7);
  telemetry.record([traceRecord()]);
  t.is(telemetry.health().records.received, 7, 'records after shutdown are ignored');
});

test('RetryInfo is read from grpc-status-details-bin', (t) => {
  t.is(retryDelayFromStatusDetails(statusWithRetryInfo(14, 'busy', 1500)), 1500);
  t.is(retryDelayFromStatusDetails(statusWithRetryInfo(8, 'slow down', 2250.5)), 2250.5);
  t.is(retryDelayFromStatusDetails(Buffer.from([0x08, 0x0e])), undefined, 'a status without details');
  t.is(retryDelayFromStatusDetails(Buffer.from([0x1a, 0x40, 0x01])), undefined, 'truncated');
});

test('OTLP/HTTP failure classification: 429, 502, 503, 504, timeouts and connection errors are retried', (t) => {
  for (let code = 400; code <= 504; code++) {
    t.is(classifyHttpError(new OtlpHttpError(code, 'x')).retryable, [429, 502, 503, 504].includes(code), String(code));
  }
  t.deepEqual(classifyHttpError(new OtlpHttpError(503, 'x', 2000)), { retryable: true, retryDelayMillis: 2000 });
  t.deepEqual(classifyHttpError(new OtlpHttpError(400, 'x', 2000)), { retryable: false });
  t.true(classifyHttpError(new OtlpTimeoutError('timed out')).retryable);
  t.true(classifyHttpError(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' })).retryable);
  t.false(classifyHttpError(Object.assign(new Error('bad cert'), { code: 'CERT_HAS_EXPIRED' })).retryable);
  t.false(classifyHttpError(new Error('Concurrent export limit reached')).retryable);
});

test('Retry-After: seconds or an HTTP date', (t) => {
  const now = Date.parse('Wed, 25 Nov 2026 15:00:00 GMT');
  t.is(parseRetryAfter('3', now), 3000);
  t.is(parseRetryAfter(' 0 ', now), 0);
  t.is(parseRetryAfter('Wed, 25 Nov 2026 15:00:07 GMT', now), 7000);
  t.is(parseRetryAfter('Wed, 25 Nov 2026 14:00:00 GMT', now), 0, 'a date in the past');
  t.is(parseRetryAfter('-5', now), undefined);
  t.is(parseRetryAfter('soon', now), undefined);
  t.is(parseRetryAfter(undefined, now), undefined);
});

test('gRPC status names and codes are grpc-js\'s', (t) => {
  for (let code = 0; code <= 16; code++) t.is(grpcStatusName(code), status[code] as string, String(code));
  t.deepEqual(Object.entries(GrpcStatus).map(([k, v]) => [k, v]), Object.entries(GrpcStatus).map(([k]) => [k, status[k as keyof typeof status]]));
});

test('gRPC target from the endpoint, as the official exporter derives it', (t) => {
  t.is(grpcAddress('http://collector:4317'), 'collector:4317');
  t.is(grpcAddress('https://collector:4317/ignored'), 'collector:4317');
  t.is(grpcAddress(' collector:4317 '), 'collector:4317');
  t.is(grpcAddress('http://[::1]:4317'), '[::1]:4317');
  t.is(grpcAddress('unix:///run/otel.sock'), 'unix:///run/otel.sock');
});

test('gRPC status classification follows the OTLP table', (t) => {
  const err = (code: number, delay?: number) => new GrpcStatusError(code, 'x', delay !== undefined ? statusWithRetryInfo(code, 'x', delay) : undefined);
  const retryable = [status.CANCELLED, status.DEADLINE_EXCEEDED, status.ABORTED, status.OUT_OF_RANGE, status.UNAVAILABLE, status.DATA_LOSS];
  for (let code = 1; code <= 16; code++) {
    const c = classifyGrpcError(err(code));
    t.is(c.retryable, retryable.includes(code), status[code]);
    t.is(c.name, status[code] as string);
  }
  t.deepEqual(classifyGrpcError(err(status.RESOURCE_EXHAUSTED, 700)), { retryable: true, retryDelayMillis: 700, name: 'RESOURCE_EXHAUSTED' });
  t.deepEqual(classifyGrpcError(err(status.UNAVAILABLE, 50)), { retryable: true, retryDelayMillis: 50, name: 'UNAVAILABLE' });
  t.false(classifyGrpcError(new Error('Nothing to send')).retryable);
  t.false(classifyGrpcError(Object.assign(new Error('x'), { code: status.UNAVAILABLE })).retryable, 'only a gRPC status is classified by its code');
  t.is(errorName(new GrpcStatusError(status.UNAVAILABLE, 'x')), 'UNAVAILABLE');
  t.is(errorName(new GrpcStatusError(99, 'x')), 'code_99');
  t.is(new GrpcStatusError(status.UNAVAILABLE, 'connection refused').message, '14 UNAVAILABLE: connection refused');
});
