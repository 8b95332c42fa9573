// The OTLP/gRPC transport (node:http2) against bare HTTP/2 servers, for what
// a grpc-js server never sends (HTTP errors without grpc-status, resets,
// GOAWAY, silence), and against the real receiver (grpc-js) over TLS and a
// Unix socket.

import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { ExportResultCode } from '@opentelemetry/core';
import { classifyGrpcError, grpcMetadata } from '../../src/otel/export';
import { GRPC_SESSION_OPTIONS } from '../../src/otel/export-policy';
import {
  GRPC_EXPORT_PATH,
  GrpcStatus,
  GrpcStatusError,
  GrpcTransport,
  MAX_CONCURRENT_REQUESTS,
  type GrpcTransportOptions,
  type OtlpExportResult,
} from '../../src/otel/otlp-transport';
import { OtlpReceiver, statusWithRetryInfo, traceResponse } from '../helpers/otlp-receiver';
import { makeTestPki } from '../helpers/tls-certs';
import { closedPort, sleep, traceRecord } from './fixtures';
import { harness } from './harness';

interface RawCall {
  readonly headers: http2.IncomingHttpHeaders;
  /** The request message's compressed flag and bytes. */
  readonly flag: number;
  readonly message: Buffer;
  readonly stream: http2.ServerHttp2Stream;
}

type Answer = (call: RawCall) => void;

/** A bare HTTP/2 server: each request is answered by the next of `answers` (the last one repeats). */
async function rawServer(t: ExecutionContext, answers: Answer[]) {
  const server = http2.createServer();
  const calls: RawCall[] = [];
  const sessions: http2.ServerHttp2Session[] = [];
  server.on('session', (s) => sessions.push(s));
  server.on('stream', (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('error', () => {});
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const body = Buffer.concat(chunks);
      const call = { headers, flag: body[0]!, message: body.subarray(5, 5 + body.readUInt32BE(1)), stream };
      calls.push(call);
      const answer = answers.length > 1 ? answers.shift()! : answers[0]!;
      answer(call);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const s of sessions) s.destroy();
    server.close();
  });
  return { server, calls, sessions, address: `127.0.0.1:${(server.address() as net.AddressInfo).port}` };
}

/** A length-prefixed message. */
function framed(message: Buffer, flag = 0): Buffer {
  const prefix = Buffer.alloc(5);
  prefix[0] = flag;
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

/** A gRPC answer: headers, the message, trailers. */
function grpcAnswer(trailers: http2.OutgoingHttpHeaders, message?: Buffer, headers: http2.OutgoingHttpHeaders = {}): Answer {
  return ({ stream }) => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc', ...headers }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers(trailers));
    stream.end(message ?? Buffer.alloc(0));
  };
}

const ok = grpcAnswer({ 'grpc-status': '0' }, framed(Buffer.alloc(0)));

/** Only HEADERS, with END_STREAM. */
function headersOnly(headers: http2.OutgoingHttpHeaders): Answer {
  return ({ stream }) => stream.respond(headers, { endStream: true });
}

function transport(t: ExecutionContext, address: string, opts: Partial<GrpcTransportOptions> = {}): GrpcTransport {
  const tr = new GrpcTransport({
    signal: 'traces',
    address,
    tls: undefined,
    metadata: {},
    gzip: false,
    timeoutMillis: 5000,
    userAgent: 'test-agent/1.0',
    ...opts,
  });
  t.teardown(() => tr.shutdown());
  return tr;
}

function send(tr: GrpcTransport, body: Buffer = Buffer.from('request bytes')): Promise<OtlpExportResult> {
  return new Promise((resolve) => tr.export(body, resolve));
}

/** The gRPC status of a failed result. */
function statusOf(r: OtlpExportResult): { code: number; details: string } {
  if (!(r.error instanceof GrpcStatusError)) throw new Error(`not a gRPC status: ${String(r.error)}`);
  return { code: r.error.code, details: r.error.details };
}

test('a unary call: method, path, headers, the length-prefixed message; one session for every call', async (t) => {
  const { calls, sessions, address } = await rawServer(t, [ok]);
  const tr = transport(t, address, { metadata: { 'x-api-key': 's=cret' }, timeoutMillis: 7000 });
  const body = Buffer.from('0123456789'.repeat(1000));
  t.deepEqual(await send(tr, body), { code: ExportResultCode.SUCCESS });
  t.deepEqual(await send(tr, body), { code: ExportResultCode.SUCCESS });
  t.is(calls.length, 2);
  const h = calls[0]!.headers;
  t.is(h[':method'], 'POST');
  t.is(h[':path'], GRPC_EXPORT_PATH.traces);
  t.is(h[':scheme'], 'http');
  t.is(h[':authority'], address);
  t.is(h['content-type'], 'application/grpc');
  t.is(h['te'], 'trailers');
  t.is(h['grpc-timeout'], '7000m');
  t.is(h['grpc-accept-encoding'], 'identity,gzip');
  t.is(h['grpc-encoding'], undefined);
  t.is(h['user-agent'], 'test-agent/1.0');
  t.is(h['x-api-key'], 's=cret');
  t.is(calls[0]!.flag, 0);
  t.true(calls[0]!.message.equals(body));
  t.is(sessions.length, 1, 'the session is reused');
});

test('gzip: the message compressed and flagged, grpc-encoding announced', async (t) => {
  const { calls, address } = await rawServer(t, [ok]);
  const tr = transport(t, address, { gzip: true });
  const body = Buffer.from('span '.repeat(500));
  t.deepEqual(await send(tr, body), { code: ExportResultCode.SUCCESS });
  t.is(calls[0]!.headers['grpc-encoding'], 'gzip');
  t.is(calls[0]!.flag, 1);
  t.true(zlib.gunzipSync(calls[0]!.message).equals(body));
});

test('the status of every kind of answer, as PROTOCOL-HTTP2 and the HTTP mapping say', async (t) => {
  const details = statusWithRetryInfo(GrpcStatus.RESOURCE_EXHAUSTED, 'slow down', 700);
  const cases: [string, Answer, number, string][] = [
    ['trailers-only, message percent-decoded', headersOnly({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '3', 'grpc-message': 'bad%20span%3A%20%E2%9C%93' }), GrpcStatus.INVALID_ARGUMENT, 'bad span: ✓'],
    ['trailers-only, malformed percent-encoding kept as sent', headersOnly({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '13', 'grpc-message': '100%' }), GrpcStatus.INTERNAL, '100%'],
    ['status in trailers', grpcAnswer({ 'grpc-status': '8', 'grpc-message': 'slow down', 'grpc-status-details-bin': details.toString('base64').replace(/=+$/, '') }), GrpcStatus.RESOURCE_EXHAUSTED, 'slow down'],
    ['HTTP 503 without grpc-status', headersOnly({ ':status': 503 }), GrpcStatus.UNAVAILABLE, 'HTTP 503'],
    ['HTTP 502', headersOnly({ ':status': 502 }), GrpcStatus.UNAVAILABLE, 'HTTP 502'],
    ['HTTP 504', headersOnly({ ':status': 504 }), GrpcStatus.UNAVAILABLE, 'HTTP 504'],
    ['HTTP 429', headersOnly({ ':status': 429 }), GrpcStatus.UNAVAILABLE, 'HTTP 429'],
    ['HTTP 400', headersOnly({ ':status': 400 }), GrpcStatus.INTERNAL, 'HTTP 400'],
    ['HTTP 401', headersOnly({ ':status': 401 }), GrpcStatus.UNAUTHENTICATED, 'HTTP 401'],
    ['HTTP 403', headersOnly({ ':status': 403 }), GrpcStatus.PERMISSION_DENIED, 'HTTP 403'],
    ['HTTP 404', headersOnly({ ':status': 404 }), GrpcStatus.UNIMPLEMENTED, 'HTTP 404'],
    ['HTTP 500', headersOnly({ ':status': 500 }), GrpcStatus.UNKNOWN, 'HTTP 500'],
    ['not gRPC content', headersOnly({ ':status': 200, 'content-type': 'text/html' }), GrpcStatus.UNKNOWN, 'content-type text/html is not gRPC'],
    ['no status at all', ({ stream }) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
      stream.end(framed(Buffer.alloc(0)));
    }, GrpcStatus.UNKNOWN, 'the response has no grpc-status'],
    ['RST_STREAM REFUSED_STREAM', ({ stream }) => stream.close(http2.constants.NGHTTP2_REFUSED_STREAM), GrpcStatus.UNAVAILABLE, 'stream reset by the server (HTTP/2 error 7)'],
    ['RST_STREAM ENHANCE_YOUR_CALM', ({ stream }) => stream.close(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM), GrpcStatus.RESOURCE_EXHAUSTED, 'stream reset by the server (HTTP/2 error 11)'],
  ];
  const { address } = await rawServer(t, [...cases.map((c) => c[1]), ok]);
  const tr = transport(t, address);
  for (const [what, , code, message] of cases) {
    const r = await send(tr);
    t.is(r.code, ExportResultCode.FAILED, what);
    t.deepEqual(statusOf(r), { code, details: message }, what);
    if (code === GrpcStatus.RESOURCE_EXHAUSTED && what === 'status in trailers') {
      t.deepEqual(classifyGrpcError(r.error), { retryable: true, retryDelayMillis: 700, name: 'RESOURCE_EXHAUSTED' }, 'RetryInfo from grpc-status-details-bin');
    }
  }
  t.deepEqual(await send(tr), { code: ExportResultCode.SUCCESS }, 'and the session still works');
});

test('the response message: partial success read, plain or gzip-compressed; an unreadable one is no partial success', async (t) => {
  const partial = traceResponse({ rejectedSpans: 2, errorMessage: 'too old' });
  const { address } = await rawServer(t, [
    grpcAnswer({ 'grpc-status': '0' }, framed(partial)),
    grpcAnswer({ 'grpc-status': '0' }, framed(zlib.gzipSync(partial), 1), { 'grpc-encoding': 'gzip' }),
    grpcAnswer({ 'grpc-status': '0' }, framed(partial, 1), { 'grpc-encoding': 'snappy' }),
    grpcAnswer({ 'grpc-status': '0' }, framed(partial).subarray(0, 8)),
  ]);
  const tr = transport(t, address);
  const expected = { code: ExportResultCode.SUCCESS, partialSuccess: { rejected: 2, errorMessage: 'too old' } };
  t.deepEqual(await send(tr), expected);
  t.deepEqual(await send(tr), expected, 'gzip');
  t.deepEqual(await send(tr), { code: ExportResultCode.SUCCESS }, 'an encoding we did not offer');
  t.deepEqual(await send(tr), { code: ExportResultCode.SUCCESS }, 'truncated');
});

test('the deadline cuts the call with RST_STREAM CANCEL and fails it as DEADLINE_EXCEEDED', async (t) => {
  const resets: number[] = [];
  const { address } = await rawServer(t, [({ stream }) => stream.on('close', () => resets.push(stream.rstCode))]);
  const tr = transport(t, address, { timeoutMillis: 1000 });
  const before = Date.now();
  const r = await send(tr);
  const took = Date.now() - before;
  t.deepEqual(statusOf(r), { code: GrpcStatus.DEADLINE_EXCEEDED, details: 'deadline of 1000 ms exceeded' });
  t.true(took >= 990 && took < 3000, `took ${took} ms`);
  for (let i = 0; i < 100 && resets.length === 0; i++) await sleep(20);
  t.deepEqual(resets, [http2.constants.NGHTTP2_CANCEL]);
});

test('after a GOAWAY the next call goes on a new session', async (t) => {
  const { calls, sessions, address } = await rawServer(t, [
    (call) => {
      ok(call);
      call.stream.session?.goaway(http2.constants.NGHTTP2_NO_ERROR);
    },
    ok,
  ]);
  const tr = transport(t, address);
  t.deepEqual(await send(tr), { code: ExportResultCode.SUCCESS });
  await sleep(100);
  t.deepEqual(await send(tr), { code: ExportResultCode.SUCCESS });
  t.is(calls.length, 2);
  t.is(sessions.length, 2);
});

test('a refused connection fails as UNAVAILABLE (retried), and the next call connects again', async (t) => {
  const port = await closedPort();
  const tr = transport(t, `127.0.0.1:${port}`);
  const r = await send(tr);
  t.is(statusOf(r).code, GrpcStatus.UNAVAILABLE);
  t.regex(statusOf(r).details, /ECONNREFUSED/);
  t.true(classifyGrpcError(r.error).retryable);
  const server = http2.createServer();
  server.on('stream', (stream) => {
    stream.on('data', () => {});
    stream.on('end', () => ok({ stream } as RawCall));
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  t.teardown(() => server.close());
  t.deepEqual(await send(tr), { code: ExportResultCode.SUCCESS });
});

test('MAX_CONCURRENT_REQUESTS calls at once, then fail-fast; shutdown cancels them all as CANCELLED', async (t) => {
  const { calls, address } = await rawServer(t, [() => {}]);
  const tr = transport(t, address, { timeoutMillis: 30_000 });
  const pending = Array.from({ length: MAX_CONCURRENT_REQUESTS }, () => send(tr));
  const extra = await send(tr);
  t.is(extra.error?.message, 'Concurrent export limit reached');
  while (calls.length < MAX_CONCURRENT_REQUESTS) await sleep(20);
  const before = Date.now();
  await tr.shutdown();
  const results = await Promise.all(pending);
  t.true(Date.now() - before < 1000);
  t.deepEqual(new Set(results.map((r) => statusOf(r).code)), new Set([GrpcStatus.CANCELLED]));
  t.is((await send(tr)).error?.message, 'exporter is shut down');
});

test('a collector gone without a FIN: the PING after a deadline goes unanswered, the session is dropped, the next call connects anew', async (t) => {
  t.timeout(20_000);
  const { sessions, address } = await rawServer(t, [ok]);
  const [host, port] = address.split(':');
  // A TCP relay whose first connection goes silent on demand (nothing forwarded, nothing closed).
  let silent = false;
  let firstClosed: () => void = () => {};
  const firstClose = new Promise<void>((r) => (firstClosed = r));
  const relayed: net.Socket[] = [];
  const relay = net.createServer((client) => {
    const upstream = net.connect(Number(port), host);
    const first = relayed.length === 0;
    relayed.push(client, upstream);
    client.on('error', () => {});
    upstream.on('error', () => {});
    if (first) client.on('close', firstClosed);
    client.on('data', (d) => (first && silent ? undefined : upstream.write(d)));
    upstream.on('data', (d) => (first && silent ? undefined : client.write(d)));
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const s of relayed) s.destroy();
    relay.close();
  });
  const tr = transport(t, `127.0.0.1:${(relay.address() as net.AddressInfo).port}`, { timeoutMillis: 3000 });
  t.deepEqual(await send(tr), { code: ExportResultCode.SUCCESS });
  silent = true;
  const deadlineAt = Date.now();
  t.is(statusOf(await send(tr)).code, GrpcStatus.DEADLINE_EXCEEDED);
  await Promise.race([firstClose, sleep(10_000)]);
  const closedAfter = Date.now() - deadlineAt;
  t.true(closedAfter >= 3000 + GRPC_SESSION_OPTIONS.pingTimeoutMillis && closedAfter < 3000 + GRPC_SESSION_OPTIONS.pingTimeoutMillis + 4000, `closed ${closedAfter} ms after the call began`);
  t.deepEqual(await send(tr), { code: ExportResultCode.SUCCESS }, 'on a new connection');
  t.is(relayed.length, 4, 'two connections');
  t.is(sessions.length, 2);
});

test('after more than 5 deadlines in a row the session is dropped, even when it answers PINGs', async (t) => {
  const { sessions, address } = await rawServer(t, [...Array<Answer>(6).fill(() => {}), ok]);
  const tr = transport(t, address, { timeoutMillis: 800 });
  for (let i = 0; i < 6; i++) t.deepEqual(statusOf(await send(tr)), { code: GrpcStatus.DEADLINE_EXCEEDED, details: 'deadline of 800 ms exceeded' }, String(i));
  t.deepEqual(await send(tr), { code: ExportResultCode.SUCCESS });
  t.is(sessions.length, 2);
});

test('an idle session does not keep the process alive', async (t) => {
  const { calls, address } = await rawServer(t, [ok]);
  const dir = path.resolve(__dirname, '../../src/otel/otlp-transport.js');
  // Exports once and leaves the transport as it is, session open: the process must end on its own.
  const script = `
    const { GrpcTransport } = require(${JSON.stringify(dir)});
    const tr = new GrpcTransport({ signal: 'traces', address: ${JSON.stringify(address)}, tls: undefined, metadata: {}, gzip: false, timeoutMillis: 5000, userAgent: 'x' });
    tr.export(Buffer.from('x'), (r) => console.log(JSON.stringify(r)));
  `;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const before = Date.now();
  const code = await new Promise<number | null>((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), GRPC_SESSION_OPTIONS.idleTimeoutMillis - 5000);
    child.on('exit', (c) => {
      clearTimeout(kill);
      resolve(c);
    });
  });
  t.is(code, 0, `exited after ${Date.now() - before} ms`);
  t.is(out.trim(), JSON.stringify({ code: ExportResultCode.SUCCESS }));
  t.is(calls.length, 1);
});

test('metadata: names lowercased, invalid or reserved names and unprintable values left out with a warning, -bin values base64', (t) => {
  const warnings: string[] = [];
  t.deepEqual(
    grpcMetadata({ 'X-Api-Key': 'secret', 'bad key': 'x', 'grpc-timeout': '1S', te: 'gzip', 'x-line': 'a\nb', 'trace-bin': 'ab' }, warnings),
    { 'x-api-key': 'secret', 'trace-bin': 'YWI=' },
  );
  t.deepEqual(warnings, [
    'OTLP header "bad key" is not a valid gRPC metadata key (0-9 a-z _ . -); not sent',
    'OTLP header grpc-timeout is reserved by gRPC or HTTP/2; not sent',
    'OTLP header te is reserved by gRPC or HTTP/2; not sent',
    'OTLP header x-line has a value that is not printable ASCII; not sent',
  ]);
});

test('a header that cannot be metadata is left out and said once, whatever the number of signals', async (t) => {
  const { receiver, telemetry, logger } = await harness(t, 'grpc', {}, { OTEL_EXPORTER_OTLP_HEADERS: 'bad key=x,x-ok=1' });
  t.deepEqual(
    logger.lines.filter((l) => l.includes('OTLP header')),
    ['warn: OTLP header "bad key" is not a valid gRPC metadata key (0-9 a-z _ . -); not sent'],
  );
  telemetry.record([traceRecord()]);
  await telemetry.forceFlush(5000);
  const [call] = await receiver.waitForCalls(1, 5000, 'traces');
  t.is(call!.headers['x-ok'], '1');
  t.is(call!.headers['bad key'], undefined);
});

// ------------------------------------------------------- the real receiver

test('TLS to the real receiver: the configured CA, mutual TLS, and an unknown CA refused', async (t) => {
  const pki = await makeTestPki();
  t.teardown(() => pki.cleanup());
  const receiver = await OtlpReceiver.start({ grpcTls: { key: pki.read(pki.serverKey), cert: pki.read(pki.serverCert), clientCa: pki.read(pki.caCert) } });
  t.teardown(() => receiver.close());
  t.regex(receiver.grpcUrl, /^https:\/\/127\.0\.0\.1:\d+$/);
  const tls = { endpoint: receiver.grpcUrl, protocol: 'grpc', certificate: pki.caCert, clientKey: pki.clientKey, clientCertificate: pki.clientCert } as const;
  const good = await harness(t, 'none', tls, {}, receiver);
  good.telemetry.record([traceRecord({ spanId: '4444444444444444' })]);
  await good.telemetry.forceFlush(5000);
  const [span] = await receiver.waitForSpans(1);
  t.is(span!.spanId, '4444444444444444');
  t.is(span!.transport, 'grpc');

  for (const [what, options] of [
    ['a CA that signed nothing here', { ...tls, certificate: pki.otherCaCert }],
    ['no client certificate', { endpoint: receiver.grpcUrl, protocol: 'grpc', certificate: pki.caCert }],
  ] as const) {
    const bad = await harness(t, 'none', { ...options, timeoutMillis: 2000, retry: { maxAttempts: 0 } }, {}, receiver);
    bad.telemetry.record([traceRecord()]);
    await bad.telemetry.forceFlush(5000);
    t.deepEqual(bad.telemetry.health().spans.failuresByReason, { UNAVAILABLE: 1 }, what);
  }
  t.is(receiver.spans.length, 1);
});

test('a Unix socket endpoint, plaintext with insecure', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otlp-sock-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const receiver = await OtlpReceiver.start({ grpcSocketPath: path.join(dir, 'otlp.sock') });
  t.teardown(() => receiver.close());
  t.is(receiver.grpcUrl, `unix://${dir}/otlp.sock`);
  const { telemetry } = await harness(t, 'none', { endpoint: receiver.grpcUrl, protocol: 'grpc', insecure: true }, {}, receiver);
  telemetry.record([traceRecord({ spanId: '5555555555555555' })]);
  await telemetry.forceFlush(5000);
  const [span] = await receiver.waitForSpans(1);
  t.is(span!.spanId, '5555555555555555');
});

test('gzip to the real receiver: it decompresses and decodes the spans', async (t) => {
  const { receiver, telemetry } = await harness(t, 'grpc', { compression: 'gzip' });
  telemetry.record([traceRecord({ spanId: '6666666666666666' }, { attributes: { 'url.path': '/b'.repeat(300) } })]);
  await telemetry.forceFlush(5000);
  const [span] = await receiver.waitForSpans(1);
  t.is(span!.spanId, '6666666666666666');
  t.is(span!.attributes['url.path'], '/b'.repeat(300));
});
