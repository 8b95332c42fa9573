// Transports for an encoded Export{Trace,Metrics,Logs}ServiceRequest: OTLP/gRPC
// (grpc-js, bytes as they are; the signal picks the service) and OTLP/HTTP
// protobuf (node:http/https; the URL is the signal's). One attempt
// each; RetryingExporter (export.ts) retries per the OTLP rules, with
// classifyGrpcError or classifyHttpError. Like the official exporters, each
// fails fast when too many requests are under way. Reconnect backoff and
// keep-alive follow export-policy.ts; shutdown cancels what is under way.
//
// OTLP/HTTP: https://opentelemetry.io/docs/specs/otlp/#otlphttp
// OTLP/gRPC: https://opentelemetry.io/docs/specs/otlp/#otlpgrpc

import * as http from 'node:http';
import * as https from 'node:https';
import * as zlib from 'node:zlib';
import { Client, status as grpcStatus, type ChannelCredentials, type ClientUnaryCall, type Metadata, type ServiceError } from '@grpc/grpc-js';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { Exporter } from './export';
import type { Timers } from '../util/timers';
import { decodePartialSuccess, type PartialSuccess } from './otlp-common';
import { GRPC_RECONNECT_OPTIONS } from './export-policy';

/** The signals whose encoded requests these transports send (metrics encoded by the official serializer). */
export type OtlpSignal = 'traces' | 'metrics' | 'logs';

/** The outcome of one export of an encoded request. */
export interface OtlpExportResult extends ExportResult {
  /** What the collector refused of a request it took. */
  readonly partialSuccess?: PartialSuccess;
}

/** Requests under way at once before new ones fail fast (the official exporters' default). */
export const MAX_CONCURRENT_REQUESTS = 30;

/** The gRPC method of each signal's Export. */
export const GRPC_EXPORT_PATH: Readonly<Record<OtlpSignal, string>> = {
  traces: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
  metrics: '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export',
  logs: '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
};

function failure(error: Error): OtlpExportResult {
  return { code: ExportResultCode.FAILED, error };
}

function success(body: Buffer | undefined): OtlpExportResult {
  const partialSuccess = body && body.length > 0 ? decodePartialSuccess(body) : undefined;
  return partialSuccess ? { code: ExportResultCode.SUCCESS, partialSuccess } : { code: ExportResultCode.SUCCESS };
}

// ---------------------------------------------------------------- gRPC

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

export interface GrpcTransportOptions {
  readonly signal: OtlpSignal;
  readonly address: string;
  readonly credentials: ChannelCredentials;
  readonly metadata: Metadata;
  readonly gzip: boolean;
  /** Deadline of one call. */
  readonly timeoutMillis: number;
  readonly userAgent: string;
}

/**
 * A grpc-js channel kept open deadlines after deadlines may be stuck: the
 * official exporter drops its client after this many in a row, and so do we.
 */
const MAX_DEADLINES_EXCEEDED = 5;
const GRPC_COMPRESSION_NONE = 0;
const GRPC_COMPRESSION_GZIP = 2;

const identity = (b: Buffer): Buffer => b;

export class GrpcTransport implements Exporter<Buffer, OtlpExportResult> {
  private client: Client | undefined;
  private readonly calls = new Set<ClientUnaryCall>();
  private deadlinesExceeded = 0;
  private closed = false;

  constructor(private readonly opts: GrpcTransportOptions) {}

  export(body: Buffer, done: (result: OtlpExportResult) => void): void {
    if (this.closed) return done(failure(new Error('exporter is shut down')));
    if (this.calls.size >= MAX_CONCURRENT_REQUESTS) return done(failure(new Error('Concurrent export limit reached')));
    let client = this.client;
    if (!client) {
      try {
        client = this.client = new Client(this.opts.address, this.opts.credentials, {
          'grpc.default_compression_algorithm': this.opts.gzip ? GRPC_COMPRESSION_GZIP : GRPC_COMPRESSION_NONE,
          'grpc.primary_user_agent': this.opts.userAgent,
          ...GRPC_RECONNECT_OPTIONS,
        });
      } catch (e) {
        return done(failure(e as Error));
      }
      this.deadlinesExceeded = 0;
    }
    const deadline = Date.now() + this.opts.timeoutMillis;
    let ended = false;
    const call = client.makeUnaryRequest(GRPC_EXPORT_PATH[this.opts.signal], identity, identity, body, this.opts.metadata, { deadline }, (err: ServiceError | null, res?: Buffer) => {
      ended = true;
      this.calls.delete(call);
      if (err) {
        if (err.code === grpcStatus.DEADLINE_EXCEEDED && ++this.deadlinesExceeded > MAX_DEADLINES_EXCEEDED && this.client === client) {
          client.close();
          this.client = undefined;
        }
        return done(failure(err));
      }
      this.deadlinesExceeded = 0;
      done(success(res));
    });
    if (!ended) this.calls.add(call);
  }

  /** Cancels the calls under way (they fail as CANCELLED): a closed client would let them run to their deadline. */
  async shutdown(): Promise<void> {
    this.closed = true;
    for (const call of [...this.calls]) call.cancel();
    this.client?.close();
    this.client = undefined;
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

/** Response bodies longer than this fail the attempt (a collector does not send megabytes back). */
const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

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
  private inflight = 0;
  private closed = false;

  constructor(private readonly opts: HttpTransportOptions) {
    this.url = new URL(opts.url);
    const secure = this.url.protocol === 'https:';
    this.agent = secure ? new https.Agent(opts.agentOptions) : new http.Agent(opts.agentOptions);
    this.request = secure ? https.request : http.request;
  }

  export(body: Buffer, done: (result: OtlpExportResult) => void): void {
    if (this.closed) return done(failure(new Error('exporter is shut down')));
    if (this.inflight >= MAX_CONCURRENT_REQUESTS) return done(failure(new Error('Concurrent export limit reached')));
    this.inflight++;
    const finish = (r: OtlpExportResult) => {
      this.inflight--;
      done(r);
    };
    if (!this.opts.gzip) return this.post(body, false, finish);
    zlib.gzip(body, (err, zipped) => (err ? finish(failure(err)) : this.post(zipped, true, finish)));
  }

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
    this.closed = true;
    this.agent.destroy();
  }
}
