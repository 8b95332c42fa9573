// Transports for an encoded Export{Trace,Metrics,Logs}ServiceRequest: OTLP/gRPC
// (a unary call over node:http2, the bytes as they are; the signal picks the
// service) and OTLP/HTTP protobuf (node:http/https; the URL is the signal's).
// One attempt each; RetryingExporter (export.ts) retries per the OTLP rules,
// with classifyGrpcError or classifyHttpError. Like the official exporters,
// each fails fast when too many requests are under way. Sessions, keep-alive
// and reconnects follow export-policy.ts; shutdown cancels what is under way.
//
// OTLP/HTTP: https://opentelemetry.io/docs/specs/otlp/#otlphttp
// OTLP/gRPC: https://opentelemetry.io/docs/specs/otlp/#otlpgrpc

import * as http from 'node:http';
import type * as http2 from 'node:http2';
import type * as https from 'node:https';
import * as net from 'node:net';
import type * as tls from 'node:tls';
import type * as zlib from 'node:zlib';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { Exporter } from './export';
import { lazy } from '../util/lazy';
import { realTimers, type Timers } from '../util/timers';
import { decodePartialSuccess, type PartialSuccess } from './otlp-common';
import { GRPC_SESSION_OPTIONS } from './export-policy';

/** The signals whose encoded requests these transports send (metrics encoded by the official serializer). */
export type OtlpSignal = 'traces' | 'metrics' | 'logs';

/** The outcome of one export of an encoded request. */
export interface OtlpExportResult extends ExportResult {
  /** What the collector refused of a request it took. */
  readonly partialSuccess?: PartialSuccess;
}

/**
 * Builtins loaded on first use: each costs heap and pages of the node
 * binary that an agent not using it need not hold (idle RSS, issue 13):
 * http2 only for OTLP/gRPC, tls only for gRPC with TLS, https only for an
 * https:// endpoint, zlib only with gzip.
 */
const http2Module = lazy(() => require('node:http2') as typeof http2);
const httpsModule = lazy(() => require('node:https') as typeof https);
const tlsModule = lazy(() => require('node:tls') as typeof tls);
const zlibModule = lazy(() => require('node:zlib') as typeof zlib);

/** Requests under way at once before new ones fail fast (the official exporters' default). */
export const MAX_CONCURRENT_REQUESTS = 30;

/** The gRPC method of each signal's Export. */
export const GRPC_EXPORT_PATH: Readonly<Record<OtlpSignal, string>> = {
  traces: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
  metrics: '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export',
  logs: '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
};

/** Response bodies longer than this fail the attempt (a collector does not send megabytes back). */
const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

function failure(error: Error): OtlpExportResult {
  return { code: ExportResultCode.FAILED, error };
}

function success(body: Buffer | undefined): OtlpExportResult {
  const partialSuccess = body && body.length > 0 ? decodePartialSuccess(body) : undefined;
  return partialSuccess ? { code: ExportResultCode.SUCCESS, partialSuccess } : { code: ExportResultCode.SUCCESS };
}

/**
 * What both transports do before sending: refuse when shut down or when
 * MAX_CONCURRENT_REQUESTS exports are under way (fail fast, as the official
 * exporters do, instead of queueing), count the export until it is done,
 * and compress when asked. A shutdown during compression fails the export
 * with the transport's own cancellation error instead of sending.
 */
class ExportAdmission {
  private inflight = 0;
  private closed = false;

  constructor(
    private readonly gzip: boolean,
    private readonly cancelled: () => Error,
  ) {}

  admit(body: Buffer, done: (result: OtlpExportResult) => void, send: (body: Buffer, gzipped: boolean, done: (result: OtlpExportResult) => void) => void): void {
    if (this.closed) return done(failure(new Error('exporter is shut down')));
    if (this.inflight >= MAX_CONCURRENT_REQUESTS) return done(failure(new Error('Concurrent export limit reached')));
    this.inflight++;
    const finish = (r: OtlpExportResult) => {
      this.inflight--;
      done(r);
    };
    if (!this.gzip) return send(body, false, finish);
    zlibModule().gzip(body, (err, zipped) => {
      if (err) return finish(failure(err));
      if (this.closed) return finish(failure(this.cancelled()));
      send(zipped, true, finish);
    });
  }

  close(): void {
    this.closed = true;
  }
}

// ---------------------------------------------------------------- gRPC
//
// A unary call over node:http2, as PROTOCOL-HTTP2.md
// (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md) says:
// HEADERS (POST to the signal's method, content-type application/grpc,
// te: trailers, grpc-timeout, the user's metadata), then the request as one
// length-prefixed message (compressed flag, 4-byte big-endian length: written
// as a chunk of its own before the body, which is never copied), END_STREAM.
// The answer: HEADERS (:status, content-type), one length-prefixed message,
// trailers (grpc-status, grpc-message, grpc-status-details-bin); or the status
// in the first HEADERS alone (trailers-only).

/** gRPC status codes (https://grpc.github.io/grpc/core/md_doc_statuscodes.html). */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

const GRPC_STATUS_NAMES = Object.keys(GrpcStatus);

/** The name of a gRPC status code (UNAVAILABLE), or code_<n> for one outside the table. */
export function grpcStatusName(code: number): string {
  return GRPC_STATUS_NAMES[code] ?? `code_${code}`;
}

/** A gRPC call that did not end with OK: its status, its message, and the google.rpc.Status the server sent (grpc-status-details-bin), if any. */
export class GrpcStatusError extends Error {
  constructor(
    readonly code: number,
    readonly details: string,
    /** The serialized google.rpc.Status of grpc-status-details-bin (RetryInfo lives there). */
    readonly statusDetails?: Buffer,
  ) {
    super(`${code} ${grpcStatusName(code)}: ${details}`);
  }
}

/**
 * The gRPC target of an OTLP endpoint, as the official exporter derives it:
 * host:port of the URL (https:// assumed without a scheme), unix: URLs whole.
 */
export function grpcAddress(url: string): string {
  let u = url.trim();
  if (!/^[\w]{1,8}:\/\//.test(u)) u = `https://${u}`;
  const target = new URL(u);
  if (target.protocol === 'unix:') return u;
  return target.host;
}

/** TLS of a gRPC session: CA certificate(s) to trust (the system's otherwise), client key and certificate (mutual TLS). */
export interface GrpcTls {
  readonly ca?: Buffer;
  readonly key?: Buffer;
  readonly cert?: Buffer;
}

export interface GrpcTransportOptions {
  readonly signal: OtlpSignal;
  /** grpcAddress() of the endpoint: host[:port] (443 without one, as gRPC's resolver does) or unix:///path. */
  readonly address: string;
  /** TLS, or undefined for plaintext HTTP/2 (h2c with prior knowledge). */
  readonly tls: GrpcTls | undefined;
  /** The user's metadata, valid gRPC header names and values (grpcMetadata in export.ts). */
  readonly metadata: Readonly<Record<string, string>>;
  readonly gzip: boolean;
  /** Deadline of one call. */
  readonly timeoutMillis: number;
  readonly userAgent: string;
  readonly timers?: Timers;
}

/**
 * A session kept open deadlines after deadlines may be stuck: the official
 * exporter drops its client after this many in a row, and so do we.
 */
const MAX_DEADLINES_EXCEEDED = 5;
/** The gRPC default port, when the endpoint names none. */
const GRPC_DEFAULT_PORT = 443;

// HTTP/2 error codes (RFC 9113, section 7), as http2.constants has them.
const NGHTTP2_REFUSED_STREAM = 0x7;
const NGHTTP2_CANCEL = 0x8;
const NGHTTP2_ENHANCE_YOUR_CALM = 0xb;
const NGHTTP2_INADEQUATE_SECURITY = 0xc;

/** The status of an answer that is not HTTP 200 (doc/http-grpc-status-mapping.md). */
function statusOfHttp(httpStatus: number): number {
  switch (httpStatus) {
    case 400:
      return GrpcStatus.INTERNAL;
    case 401:
      return GrpcStatus.UNAUTHENTICATED;
    case 403:
      return GrpcStatus.PERMISSION_DENIED;
    case 404:
      return GrpcStatus.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcStatus.UNAVAILABLE;
    default:
      return GrpcStatus.UNKNOWN;
  }
}

/** The status of a stream the server reset without one (PROTOCOL-HTTP2.md, Errors). */
function statusOfReset(rstCode: number): number {
  switch (rstCode) {
    case NGHTTP2_REFUSED_STREAM:
      return GrpcStatus.UNAVAILABLE;
    case NGHTTP2_CANCEL:
      return GrpcStatus.CANCELLED;
    case NGHTTP2_ENHANCE_YOUR_CALM:
      return GrpcStatus.RESOURCE_EXHAUSTED;
    case NGHTTP2_INADEQUATE_SECURITY:
      return GrpcStatus.PERMISSION_DENIED;
    default:
      return GrpcStatus.INTERNAL;
  }
}

/** grpc-timeout: at most 8 digits, in ms while they fit, else in seconds. */
function grpcTimeout(ms: number): string {
  const m = Math.max(1, Math.ceil(ms));
  return m < 1e8 ? `${m}m` : `${Math.min(99_999_999, Math.ceil(m / 1000))}S`;
}

/** grpc-message, percent-decoded; as sent when it is not valid percent-encoding. */
function grpcMessage(meta: http2.IncomingHttpHeaders): string {
  const m = meta['grpc-message'];
  if (typeof m !== 'string') return '';
  try {
    return decodeURIComponent(m);
  } catch {
    return m;
  }
}

/** The status of a call from its response HEADERS and trailers, the stream's end and its error; undefined for OK. */
function callStatus(
  headers: http2.IncomingHttpHeaders | undefined,
  trailers: http2.IncomingHttpHeaders | undefined,
  rstCode: number | undefined,
  error: Error | undefined,
): GrpcStatusError | undefined {
  // Trailers-only: the status in the response HEADERS.
  const meta = trailers ?? (headers?.['grpc-status'] !== undefined ? headers : undefined);
  const detailsBin = meta?.['grpc-status-details-bin'];
  const statusDetails = typeof detailsBin === 'string' ? Buffer.from(detailsBin, 'base64') : undefined;
  if (headers !== undefined) {
    const httpStatus = Number(headers[':status']);
    // Not gRPC's answer (a proxy's, a load balancer's): the HTTP status decides, as in grpc-js.
    if (httpStatus !== 200) return new GrpcStatusError(statusOfHttp(httpStatus), meta ? grpcMessage(meta) || `HTTP ${httpStatus}` : `HTTP ${httpStatus}`, statusDetails);
    const type = headers['content-type'];
    if (typeof type !== 'string' || !type.startsWith('application/grpc')) return new GrpcStatusError(GrpcStatus.UNKNOWN, `content-type ${type ?? '(none)'} is not gRPC`);
  }
  const raw = meta?.['grpc-status'];
  if (typeof raw === 'string') {
    const code = /^\d{1,4}$/.test(raw) ? Number(raw) : GrpcStatus.UNKNOWN;
    return code === GrpcStatus.OK ? undefined : new GrpcStatusError(code, grpcMessage(meta!), statusDetails);
  }
  if (error !== undefined && (error as { code?: unknown }).code !== 'ERR_HTTP2_STREAM_ERROR') {
    // The connection failed (refused, reset, TLS, GOAWAY): the call never got an answer.
    return new GrpcStatusError(GrpcStatus.UNAVAILABLE, error.message);
  }
  if (rstCode !== undefined && rstCode !== 0) return new GrpcStatusError(statusOfReset(rstCode), `stream reset by the server (HTTP/2 error ${rstCode})`);
  return new GrpcStatusError(GrpcStatus.UNKNOWN, 'the response has no grpc-status');
}

/** The response message of a call that ended OK; undefined when absent or unreadable (its partial success is then unknown, never invented). */
function responseMessage(chunks: readonly Buffer[], encoding: unknown): Buffer | undefined {
  const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  if (body.length < 5) return undefined;
  const length = body.readUInt32BE(1);
  if (body.length < 5 + length) return undefined;
  const message = body.subarray(5, 5 + length);
  if (body[0] === 0) return message;
  if (body[0] !== 1 || encoding !== 'gzip') return undefined;
  try {
    return zlibModule().gunzipSync(message, { maxOutputLength: MAX_RESPONSE_BYTES });
  } catch {
    return undefined;
  }
}

/** One call under way, for shutdown to cancel. */
interface GrpcCall {
  readonly session: http2.ClientHttp2Session;
  cancel(): void;
}

export class GrpcTransport implements Exporter<Buffer, OtlpExportResult> {
  private session: http2.ClientHttp2Session | undefined;
  /** Every session not yet closed: the current one, and older ones still finishing calls after a GOAWAY. */
  private readonly sessions = new Set<http2.ClientHttp2Session>();
  private readonly calls = new Set<GrpcCall>();
  private readonly admission: ExportAdmission;
  private deadlinesExceeded = 0;
  /** The session a PING is checking, if any. */
  private probing: http2.ClientHttp2Session | undefined;
  private readonly timers: Timers;
  private readonly origin: string;
  private readonly socketPath: string | undefined;
  private readonly headers: http2.OutgoingHttpHeaders;

  constructor(private readonly opts: GrpcTransportOptions) {
    this.admission = new ExportAdmission(opts.gzip, () => new GrpcStatusError(GrpcStatus.CANCELLED, 'exporter shut down'));
    this.timers = opts.timers ?? realTimers;
    const scheme = opts.tls ? 'https' : 'http';
    if (opts.address.startsWith('unix:')) {
      this.socketPath = decodeURIComponent(new URL(opts.address).pathname);
      // A Unix socket has no authority: grpc-js sends localhost.
      this.origin = `${scheme}://localhost`;
    } else {
      const target = new URL(`${scheme}://${opts.address}`);
      this.origin = `${scheme}://${target.hostname}:${target.port || GRPC_DEFAULT_PORT}`;
    }
    this.headers = {
      ':method': 'POST',
      ':path': GRPC_EXPORT_PATH[opts.signal],
      te: 'trailers',
      'grpc-timeout': grpcTimeout(opts.timeoutMillis),
      'content-type': 'application/grpc',
      ...(opts.gzip ? { 'grpc-encoding': 'gzip' } : {}),
      'grpc-accept-encoding': 'identity,gzip',
      'user-agent': opts.userAgent,
      ...opts.metadata,
    };
  }

  export(body: Buffer, done: (result: OtlpExportResult) => void): void {
    this.admission.admit(body, done, this.send);
  }

  private readonly send = (body: Buffer, gzipped: boolean, done: (result: OtlpExportResult) => void): void => this.call(body, gzipped, done);

  /** Cancels the calls under way (they fail as CANCELLED) and closes every session. */
  async shutdown(): Promise<void> {
    this.admission.close();
    for (const call of [...this.calls]) call.cancel();
    this.session = undefined;
    for (const s of [...this.sessions]) s.destroy();
  }

  private call(message: Buffer, compressed: boolean, done: (result: OtlpExportResult) => void): void {
    let session: http2.ClientHttp2Session;
    let stream: http2.ClientHttp2Stream;
    try {
      const current = this.session;
      session = current && !current.destroyed && !current.closed ? current : this.connect();
      stream = session.request({ ...this.headers }, { endStream: false });
    } catch (e) {
      // A session that takes no more streams (closing, destroyed): the next attempt makes a new one.
      this.forget(this.session);
      return done(failure(new GrpcStatusError(GrpcStatus.UNAVAILABLE, (e as Error).message)));
    }
    const timers = this.timers;
    let headers: http2.IncomingHttpHeaders | undefined;
    let trailers: http2.IncomingHttpHeaders | undefined;
    let error: Error | undefined;
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    let cancelled = false;
    const finish = (result: OtlpExportResult) => {
      if (settled) return;
      settled = true;
      timers.clearTimeout(deadline);
      this.calls.delete(call);
      if (!this.hasCalls(session)) session.unref();
      // The body's buffer is reused once we call back: a stream still writing it must stop now.
      if (!stream.closed && !stream.writableFinished) stream.close(NGHTTP2_CANCEL);
      done(result);
    };
    const call: GrpcCall = {
      session,
      cancel: () => {
        cancelled = true;
        stream.close(NGHTTP2_CANCEL);
        // Called back once shutdown() has returned, as grpc-js did: the queue
        // counts the batch as cut short by the shutdown, not as an export that failed during it.
        setImmediate(() => finish(failure(new GrpcStatusError(GrpcStatus.CANCELLED, 'cancelled: the exporter is shut down'))));
      },
    };
    // An idle session never keeps the process alive; one with a call under way does, as in grpc-js.
    if (!this.hasCalls(session)) session.ref();
    this.calls.add(call);
    const deadline = timers.setTimeout(() => {
      finish(failure(new GrpcStatusError(GrpcStatus.DEADLINE_EXCEEDED, `deadline of ${this.opts.timeoutMillis} ms exceeded`)));
      stream.close(NGHTTP2_CANCEL);
      this.deadlineExceeded(session);
    }, this.opts.timeoutMillis);
    stream.on('response', (h) => {
      headers = h;
    });
    stream.on('trailers', (t) => {
      trailers = t;
    });
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_RESPONSE_BYTES) {
        finish(failure(new GrpcStatusError(GrpcStatus.RESOURCE_EXHAUSTED, `response longer than ${MAX_RESPONSE_BYTES} bytes`)));
        stream.close(NGHTTP2_CANCEL);
        return;
      }
      chunks.push(chunk);
    });
    stream.on('error', (e) => {
      error = e;
    });
    stream.on('close', () => {
      if (cancelled) return;
      const status = callStatus(headers, trailers, stream.rstCode, error);
      if (status) return finish(failure(status));
      if (!settled) this.deadlinesExceeded = 0;
      finish(success(responseMessage(chunks, headers?.['grpc-encoding'])));
    });
    const prefix = Buffer.allocUnsafe(5);
    prefix[0] = compressed ? 1 : 0;
    prefix.writeUInt32BE(message.length, 1);
    // One writev of both chunks (end() uncorks).
    stream.cork();
    stream.write(prefix);
    stream.end(message);
  }

  /** A new session to the collector, made current; errors reach its calls, and the next export makes another. */
  private connect(): http2.ClientHttp2Session {
    const tls = this.opts.tls;
    const path = this.socketPath;
    const options: http2.SecureClientSessionOptions = { settings: { enablePush: false }, ...(tls ?? {}) };
    if (path !== undefined) {
      options.createConnection = () =>
        tls ? tlsModule().connect({ path, ALPNProtocols: ['h2'], servername: 'localhost', ...tls }) : net.connect(path);
    }
    const session = http2Module().connect(this.origin, options);
    this.session = session;
    this.sessions.add(session);
    this.deadlinesExceeded = 0;
    session.on('connect', (_s, socket) => socket.setKeepAlive(true, GRPC_SESSION_OPTIONS.tcpKeepAliveMillis));
    // Its calls fail with the session's error; the session is not used again.
    session.on('error', () => this.forget(session));
    // A GOAWAY: calls under way may finish, new ones go to a new session.
    session.on('goaway', () => this.forget(session));
    session.on('close', () => {
      this.forget(session);
      this.sessions.delete(session);
    });
    session.setTimeout(GRPC_SESSION_OPTIONS.idleTimeoutMillis, () => {
      if (this.hasCalls(session)) return this.probe(session);
      // Idle this long: closed, so one to a collector that vanished without a FIN is never reused.
      this.forget(session);
      session.close();
    });
    session.unref();
    return session;
  }

  private forget(session: http2.ClientHttp2Session | undefined): void {
    if (session !== undefined && this.session === session) this.session = undefined;
  }

  private hasCalls(session: http2.ClientHttp2Session): boolean {
    for (const c of this.calls) if (c.session === session) return true;
    return false;
  }

  private deadlineExceeded(session: http2.ClientHttp2Session): void {
    if (++this.deadlinesExceeded > MAX_DEADLINES_EXCEEDED && this.session === session) {
      this.forget(session);
      session.close();
      return;
    }
    this.probe(session);
  }

  /**
   * After a deadline, or a session silent while calls wait: a session still
   * connecting, or whose PING is not answered within
   * GRPC_SESSION_OPTIONS.pingTimeoutMillis, has lost the collector (or the
   * path to it) and is destroyed; its calls fail as UNAVAILABLE.
   */
  private probe(session: http2.ClientHttp2Session): void {
    if (session.destroyed || this.probing === session) return;
    this.probing = session;
    const gone = (why: string) => {
      if (this.probing === session) this.probing = undefined;
      this.forget(session);
      if (!session.destroyed) session.destroy(new Error(`the collector ${why}; the session is closed`));
    };
    // Judged after the I/O the event loop has waiting (setImmediate runs after
    // its poll phase): a stalled loop is not a dead collector.
    setImmediate(() => {
      if (session.destroyed) return gone('');
      if (session.connecting) return gone(`took no connection within ${this.opts.timeoutMillis} ms`);
      let answered = false;
      const timer = this.timers.setTimeout(
        () => setImmediate(() => answered || gone(`did not answer a PING within ${GRPC_SESSION_OPTIONS.pingTimeoutMillis} ms`)),
        GRPC_SESSION_OPTIONS.pingTimeoutMillis,
      );
      const pong = (err: Error | null) => {
        answered = true;
        this.timers.clearTimeout(timer);
        if (err) gone(`failed a PING (${err.message})`);
        else if (this.probing === session) this.probing = undefined;
      };
      try {
        session.ping(pong);
      } catch (e) {
        pong(e as Error);
      }
    });
  }
}

// ---------------------------------------------------------------- HTTP

/** A collector's answer other than 2xx. `code` is the HTTP status (errorName: http_<code>). */
export class OtlpHttpError extends Error {
  constructor(
    readonly code: number,
    message: string,
    /** Retry-After, in ms, when the collector sent one. */
    readonly retryAfterMillis?: number,
  ) {
    super(message);
  }
}

const RETRYABLE_HTTP = new Set([429, 502, 503, 504]);
/** Connection errors worth another attempt (those the official HTTP transport retries). */
const RETRYABLE_NETWORK = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENOTFOUND', 'ENETUNREACH', 'EHOSTUNREACH']);

/** An attempt that took longer than the export timeout. */
export class OtlpTimeoutError extends Error {}

/** Classifies an OTLP/HTTP failure: 429, 502, 503, 504, timeouts and connection errors are retried; other statuses are final. */
export function classifyHttpError(error: unknown): { retryable: boolean; retryDelayMillis?: number } {
  if (error instanceof OtlpHttpError) {
    if (!RETRYABLE_HTTP.has(error.code)) return { retryable: false };
    return error.retryAfterMillis !== undefined ? { retryable: true, retryDelayMillis: error.retryAfterMillis } : { retryable: true };
  }
  if (error instanceof OtlpTimeoutError) return { retryable: true };
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return { retryable: typeof code === 'string' && RETRYABLE_NETWORK.has(code) };
}

/** Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date, in ms from `nowMs`; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  // An HTTP-date starts with the day's name; Date.parse alone takes far more than dates.
  const at = /^[A-Za-z]{3}/.test(v) ? Date.parse(v) : Number.NaN;
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

export interface HttpTransportOptions {
  /** The full URL of the signal (…/v1/traces, …/v1/logs). */
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly gzip: boolean;
  /** Bound of one attempt, response included. */
  readonly timeoutMillis: number;
  /** Keep-alive and TLS (ca, key, cert). */
  readonly agentOptions: https.AgentOptions;
  readonly userAgent: string;
  readonly timers: Timers;
}

export class HttpTransport implements Exporter<Buffer, OtlpExportResult> {
  private readonly url: URL;
  private readonly agent: http.Agent;
  private readonly request: typeof http.request;
  private readonly admission: ExportAdmission;

  constructor(private readonly opts: HttpTransportOptions) {
    this.url = new URL(opts.url);
    const secure = this.url.protocol === 'https:';
    this.agent = secure ? new (httpsModule().Agent)(opts.agentOptions) : new http.Agent(opts.agentOptions);
    this.request = secure ? httpsModule().request : http.request;
    this.admission = new ExportAdmission(opts.gzip, () => new Error('exporter is shut down'));
  }

  export(body: Buffer, done: (result: OtlpExportResult) => void): void {
    this.admission.admit(body, done, this.send);
  }

  private readonly send = (body: Buffer, gzipped: boolean, done: (result: OtlpExportResult) => void): void => this.post(body, gzipped, done);

  private post(body: Buffer, gzipped: boolean, done: (result: OtlpExportResult) => void): void {
    const timers = this.opts.timers;
    let settled = false;
    const finish = (r: OtlpExportResult) => {
      if (settled) return;
      settled = true;
      timers.clearTimeout(timer);
      // The body's buffer is reused once we call back: a request still
      // writing it (the collector answered early) must stop now.
      if (!req.writableFinished) req.destroy();
      done(r);
    };
    const headers: Record<string, string> = {
      ...this.opts.headers,
      'Content-Type': 'application/x-protobuf',
      'Content-Length': String(body.length),
      'User-Agent': this.opts.userAgent,
    };
    if (gzipped) headers['Content-Encoding'] = 'gzip';
    const req = this.request(this.url, { method: 'POST', headers, agent: this.agent }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_RESPONSE_BYTES) {
          finish(failure(new Error(`OTLP response longer than ${MAX_RESPONSE_BYTES} bytes`)));
          res.destroy();
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) return finish(success(Buffer.concat(chunks)));
        const retryAfter = parseRetryAfter(res.headers['retry-after'], Date.now());
        finish(failure(new OtlpHttpError(status, `HTTP ${status} ${res.statusMessage ?? ''}`.trim(), retryAfter)));
      });
      res.on('error', (e) => {
        const status = res.statusCode ?? 0;
        // The collector took the request; only its answer broke.
        if (status >= 200 && status < 300) finish(success(undefined));
        else finish(failure(e));
      });
    });
    const timer = timers.setTimeout(() => {
      finish(failure(new OtlpTimeoutError(`OTLP request timed out after ${this.opts.timeoutMillis} ms`)));
      req.destroy();
    }, this.opts.timeoutMillis);
    req.on('error', (e) => finish(failure(e)));
    req.end(body);
  }

  async shutdown(): Promise<void> {
    this.admission.close();
    this.agent.destroy();
  }
}
