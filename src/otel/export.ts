// Exporters are wiring: the official OTLP exporters (serializer + transport),
// a retry wrapper where the official one lacks it, and a bounded batch queue.
//
// Retries, as the 0.223 exporters do them:
// - http/protobuf: the official exporter retries 429, 502, 503, 504, timeouts
//   and connection errors (ECONNREFUSED, ECONNRESET, ...) up to 5 times with
//   jittered exponential backoff (1 s, x1.5, max 5 s), honours Retry-After,
//   and gives up when the next try would pass the export timeout. We rely on it.
// - grpc: the official exporter does not retry at all (every gRPC error is a
//   final failure). RetryingExporter adds the OTLP/gRPC rules: CANCELLED,
//   DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, UNAVAILABLE and DATA_LOSS are
//   retried; RESOURCE_EXHAUSTED only when the server sent RetryInfo; the
//   server's RetryInfo.retry_delay is honoured; otherwise the same jittered
//   backoff as the HTTP exporter. Retries stop when the next one would start
//   after the export timeout (an attempt under way may still run its own
//   timeout, so one export takes at most about twice OTEL_EXPORTER_OTLP_TIMEOUT).
//
// SpanBatcher is a BatchSpanProcessor-like queue: bounded (drops counted), one
// export in flight, batches of maxExportBatchSize, a schedule delay, each
// export bounded by the BSP export timeout. A failing collector is logged once,
// then counted; recovery is logged once.

import * as fs from 'node:fs';
import { credentials, Metadata, status as grpcStatus, type ChannelCredentials } from '@grpc/grpc-js';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { CompressionAlgorithm } from '@opentelemetry/otlp-exporter-base';
import { OTLPTraceExporter as GrpcTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as ProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPMetricExporter as GrpcMetricExporter } from '@opentelemetry/exporter-metrics-otlp-grpc';
import { OTLPMetricExporter as ProtoMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import type { AggregationTemporality, InstrumentType, ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { Logger } from '../util/log';
import type { BatchConfig, OtlpSignalConfig, RetryConfig, TemporalityPreference } from './config';

/** What the pipeline needs of an exporter (SpanExporter and PushMetricExporter both fit). */
export interface Exporter<T> {
  export(items: T, resultCallback: (result: ExportResult) => void): void;
  shutdown(): Promise<void>;
  forceFlush?(): Promise<void>;
}

/** Timers, injectable for tests. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  now(): number;
}

export const realTimers: Timers = {
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
  now: () => Date.now(),
};

// ---------------------------------------------------------------- gRPC retry

const RETRYABLE_GRPC = new Set<number>([
  grpcStatus.CANCELLED,
  grpcStatus.DEADLINE_EXCEEDED,
  grpcStatus.ABORTED,
  grpcStatus.OUT_OF_RANGE,
  grpcStatus.UNAVAILABLE,
  grpcStatus.DATA_LOSS,
]);

export interface GrpcErrorClass {
  readonly retryable: boolean;
  /** RetryInfo.retry_delay from the server, in ms. */
  readonly retryDelayMillis?: number;
  /** Low-cardinality name for counters and logs (the gRPC status name, or "unknown"). */
  readonly name: string;
}

/** Classifies an export error per the OTLP/gRPC failure table. */
export function classifyGrpcError(error: unknown): GrpcErrorClass {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  if (typeof code !== 'number') return { retryable: false, name: 'unknown' };
  const name = grpcStatus[code] ?? `code_${code}`;
  const meta = (error as { metadata?: unknown }).metadata;
  let delay: number | undefined;
  if (meta instanceof Metadata) {
    const details = meta.get('grpc-status-details-bin')[0];
    if (details !== undefined) delay = retryDelayFromStatusDetails(Buffer.isBuffer(details) ? details : Buffer.from(details));
  }
  if (code === grpcStatus.RESOURCE_EXHAUSTED) {
    return delay !== undefined ? { retryable: true, retryDelayMillis: delay, name } : { retryable: false, name };
  }
  if (!RETRYABLE_GRPC.has(code)) return { retryable: false, name };
  return delay !== undefined ? { retryable: true, retryDelayMillis: delay, name } : { retryable: true, name };
}

const RETRY_INFO_TYPE = 'type.googleapis.com/google.rpc.RetryInfo';

/**
 * RetryInfo.retry_delay (ms) from a serialized google.rpc.Status
 * (grpc-status-details-bin): Status{details=3: Any{type_url=1, value=2}},
 * RetryInfo{retry_delay=1: Duration{seconds=1, nanos=2}}. Undefined when
 * absent or malformed.
 */
export function retryDelayFromStatusDetails(buf: Buffer): number | undefined {
  try {
    for (const f of fields(buf)) {
      if (f.num !== 3 || !f.bytes) continue;
      let typeUrl: string | undefined;
      let value: Buffer | undefined;
      for (const a of fields(f.bytes)) {
        if (a.num === 1 && a.bytes) typeUrl = a.bytes.toString('utf8');
        else if (a.num === 2 && a.bytes) value = a.bytes;
      }
      if (typeUrl !== RETRY_INFO_TYPE || !value) continue;
      for (const r of fields(value)) {
        if (r.num !== 1 || !r.bytes) continue;
        let seconds = 0;
        let nanos = 0;
        for (const d of fields(r.bytes)) {
          if (d.num === 1 && d.varint !== undefined) seconds = Number(BigInt.asIntN(64, d.varint));
          else if (d.num === 2 && d.varint !== undefined) nanos = Number(BigInt.asIntN(32, d.varint));
        }
        const ms = seconds * 1000 + nanos / 1e6;
        return ms >= 0 ? ms : undefined;
      }
      return 0; // RetryInfo without a delay: retry, with our own backoff
    }
  } catch {
    return undefined;
  }
  return undefined;
}

interface PbField {
  num: number;
  varint?: bigint;
  bytes?: Buffer;
}

/** Minimal protobuf wire reader (varint, 64-bit, length-delimited, 32-bit). Throws on truncation. */
function* fields(buf: Buffer): Generator<PbField> {
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (pos >= buf.length || shift > 63n) throw new Error('truncated varint');
      const b = buf[pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
    }
  };
  while (pos < buf.length) {
    const tag = Number(varint());
    const num = tag >>> 3;
    const wire = tag & 7;
    if (wire === 0) yield { num, varint: varint() };
    else if (wire === 1) {
      if (pos + 8 > buf.length) throw new Error('truncated');
      pos += 8;
      yield { num };
    } else if (wire === 2) {
      const len = Number(varint());
      if (pos + len > buf.length) throw new Error('truncated');
      yield { num, bytes: buf.subarray(pos, pos + len) };
      pos += len;
    } else if (wire === 5) {
      if (pos + 4 > buf.length) throw new Error('truncated');
      pos += 4;
      yield { num };
    } else throw new Error(`wire type ${wire}`);
  }
}

export interface RetryStats {
  /** Attempts after the first. */
  retries: number;
}

/** Retries an OTLP/gRPC export per the OTLP rules (see the header). */
export class RetryingExporter<T> implements Exporter<T> {
  readonly stats: RetryStats = { retries: 0 };
  private readonly pending = new Map<unknown, () => void>();
  private closed = false;

  constructor(
    private readonly inner: Exporter<T>,
    private readonly retry: RetryConfig,
    private readonly timeoutMillis: number,
    private readonly timers: Timers = realTimers,
    private readonly random: () => number = Math.random,
  ) {}

  export(items: T, done: (result: ExportResult) => void): void {
    const deadline = this.timers.now() + this.timeoutMillis;
    let attempt = 1;
    let backoff = this.retry.initialBackoffMillis;
    const run = () => {
      this.inner.export(items, (result) => {
        if (result.code === ExportResultCode.SUCCESS || this.closed) return done(result);
        const c = classifyGrpcError(result.error);
        if (!c.retryable || attempt >= this.retry.maxAttempts + 1) return done(result);
        const jittered = Math.min(backoff * (1 + (this.random() * 2 - 1) * this.retry.jitter), this.retry.maxBackoffMillis);
        backoff = Math.min(backoff * this.retry.backoffMultiplier, this.retry.maxBackoffMillis);
        const delay = Math.max(0, c.retryDelayMillis !== undefined && c.retryDelayMillis > 0 ? c.retryDelayMillis : jittered);
        if (this.timers.now() + delay >= deadline) return done(result);
        attempt++;
        this.stats.retries++;
        const fire = () => {
          this.pending.delete(handle);
          run();
        };
        const handle = this.timers.setTimeout(fire, delay);
        this.pending.set(handle, () => done(result));
      });
    };
    run();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }

  /** Abandons scheduled retries (their exports fail) and shuts the exporter down. */
  async shutdown(): Promise<void> {
    this.closed = true;
    for (const [handle, fail] of this.pending) {
      this.timers.clearTimeout(handle);
      fail();
    }
    this.pending.clear();
    await this.inner.shutdown();
  }
}

// ------------------------------------------------------------- construction

function readPem(file: string | undefined, what: string, warnings: string[]): Buffer | undefined {
  if (file === undefined) return undefined;
  try {
    return fs.readFileSync(file);
  } catch (e) {
    warnings.push(`cannot read OTLP ${what} ${file}: ${(e as Error).message}`);
    return undefined;
  }
}

/** TLS unless the URL says http:// or, without a scheme, OTEL_EXPORTER_OTLP_INSECURE=true. */
export function grpcCredentials(cfg: OtlpSignalConfig, warnings: string[] = []): ChannelCredentials {
  const plaintext = /^http:\/\//i.test(cfg.url) || (!/^https:\/\//i.test(cfg.url) && cfg.insecure);
  if (plaintext) return credentials.createInsecure();
  const ca = readPem(cfg.certificate, 'certificate', warnings);
  const key = readPem(cfg.clientKey, 'client key', warnings);
  const cert = readPem(cfg.clientCertificate, 'client certificate', warnings);
  return key && cert ? credentials.createSsl(ca ?? null, key, cert) : credentials.createSsl(ca ?? null);
}

function grpcMetadata(headers: Readonly<Record<string, string>>): Metadata {
  const m = new Metadata();
  for (const [k, v] of Object.entries(headers)) m.set(k.toLowerCase(), v);
  return m;
}

function compression(c: OtlpSignalConfig['compression']): CompressionAlgorithm {
  return c === 'gzip' ? CompressionAlgorithm.GZIP : CompressionAlgorithm.NONE;
}

function httpAgentOptions(cfg: OtlpSignalConfig, warnings: string[]) {
  const ca = readPem(cfg.certificate, 'certificate', warnings);
  const key = readPem(cfg.clientKey, 'client key', warnings);
  const cert = readPem(cfg.clientCertificate, 'client certificate', warnings);
  return { keepAlive: true, ...(ca ? { ca } : {}), ...(key && cert ? { key, cert } : {}) };
}

export interface ExporterOptions {
  readonly retry: RetryConfig;
  readonly timers?: Timers;
  /** Problems met while building (unreadable certificate files), one sentence each. */
  readonly warnings?: string[];
}

/** The OTLP span exporter for a configuration (gRPC wrapped for retries). */
export function createSpanExporter(cfg: OtlpSignalConfig, opts: ExporterOptions): Exporter<ReadableSpan[]> {
  const warnings = opts.warnings ?? [];
  if (cfg.protocol === 'grpc') {
    const inner = new GrpcTraceExporter({
      url: cfg.url,
      credentials: grpcCredentials(cfg, warnings),
      metadata: grpcMetadata(cfg.headers),
      compression: compression(cfg.compression),
      timeoutMillis: cfg.timeoutMillis,
    });
    return new RetryingExporter<ReadableSpan[]>(inner, opts.retry, cfg.timeoutMillis, opts.timers);
  }
  return new ProtoTraceExporter({
    url: cfg.url,
    headers: { ...cfg.headers },
    compression: compression(cfg.compression),
    timeoutMillis: cfg.timeoutMillis,
    httpAgentOptions: httpAgentOptions(cfg, warnings),
  });
}

export interface MetricExporter extends Exporter<ResourceMetrics> {
  selectAggregationTemporality(instrumentType: InstrumentType): AggregationTemporality;
}

/** The OTLP metric exporter for a configuration (gRPC wrapped for retries). */
export function createMetricExporter(cfg: OtlpSignalConfig, temporality: TemporalityPreference, opts: ExporterOptions): MetricExporter {
  const warnings = opts.warnings ?? [];
  // AggregationTemporalityPreference of exporter-metrics-otlp-http: DELTA 0, CUMULATIVE 1, LOWMEMORY 2.
  const temporalityPreference = temporality === 'delta' ? 0 : temporality === 'lowmemory' ? 2 : 1;
  if (cfg.protocol === 'grpc') {
    const inner = new GrpcMetricExporter({
      url: cfg.url,
      credentials: grpcCredentials(cfg, warnings),
      metadata: grpcMetadata(cfg.headers),
      compression: compression(cfg.compression),
      timeoutMillis: cfg.timeoutMillis,
      temporalityPreference,
    });
    const retrying = new RetryingExporter<ResourceMetrics>(inner, opts.retry, cfg.timeoutMillis, opts.timers);
    return Object.assign(retrying, { selectAggregationTemporality: inner.selectAggregationTemporality.bind(inner) });
  }
  return new ProtoMetricExporter({
    url: cfg.url,
    headers: { ...cfg.headers },
    compression: compression(cfg.compression),
    timeoutMillis: cfg.timeoutMillis,
    httpAgentOptions: httpAgentOptions(cfg, warnings),
    temporalityPreference,
  });
}

/** A short, low-cardinality reason for a failed export. */
export function errorName(error: unknown): string {
  if (typeof error === 'object' && error !== null) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'number' && 'metadata' in error) return grpcStatus[code] ?? `code_${code}`;
    if (typeof code === 'number') return `http_${code}`;
    if (typeof code === 'string') return code;
    if (error instanceof Error && error.message.includes('timed out')) return 'timeout';
  }
  return 'error';
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message.split('\n')[0]!;
  return String(error);
}

// ------------------------------------------------------------ span batching

export interface SpanExportStats {
  /** Spans accepted by the collector. */
  exported: number;
  /** Spans whose export failed (after retries). */
  failed: number;
  /** Spans dropped because the queue was full. */
  droppedQueueFull: number;
  /** Spans still queued at shutdown when its timeout ran out. */
  droppedShutdown: number;
  /** Failed batch exports. */
  failedBatches: number;
  /** Failures by reason (gRPC status name, http_<code>, timeout, ...). */
  failuresByReason: Record<string, number>;
}

export class SpanBatcher {
  readonly stats: SpanExportStats = {
    exported: 0,
    failed: 0,
    droppedQueueFull: 0,
    droppedShutdown: 0,
    failedBatches: 0,
    failuresByReason: {},
  };
  private queue: ReadableSpan[] = [];
  private timer: unknown;
  private inflight: Promise<void> | undefined;
  private stopped = false;
  private failing = false;
  private failedSinceLog = 0;

  constructor(
    private readonly exporter: Exporter<ReadableSpan[]>,
    private readonly cfg: BatchConfig,
    private readonly log: Logger,
    /** Where spans go, for log lines. */
    private readonly destination: string,
    private readonly timers: Timers = realTimers,
  ) {}

  get queued(): number {
    return this.queue.length;
  }

  add(span: ReadableSpan): void {
    if (this.stopped) {
      this.stats.droppedShutdown++;
      return;
    }
    if (this.queue.length >= this.cfg.maxQueueSize) {
      this.stats.droppedQueueFull++;
      this.log.warnOnce(
        'otel-span-queue-full',
        `span queue full (${this.cfg.maxQueueSize} spans, OTEL_BSP_MAX_QUEUE_SIZE): dropping new spans; drops are counted in ebpf_otel.span.dropped`,
      );
      return;
    }
    this.queue.push(span);
    if (this.queue.length >= this.cfg.maxExportBatchSize) this.kick();
    else this.schedule();
  }

  /** Exports everything queued, within `timeoutMillis`. */
  async forceFlush(timeoutMillis = this.cfg.exportTimeoutMillis): Promise<void> {
    const deadline = this.timers.now() + timeoutMillis;
    while ((this.queue.length > 0 || this.inflight) && this.timers.now() < deadline) {
      if (!this.inflight) this.kick();
      const current = this.inflight;
      if (!current) break;
      await raceTimeout(current, deadline - this.timers.now(), this.timers);
    }
  }

  /** Flushes within `timeoutMillis`, drops (and counts) what is left, closes the exporter. */
  async shutdown(timeoutMillis = this.cfg.exportTimeoutMillis): Promise<void> {
    if (this.stopped) return;
    const deadline = this.timers.now() + timeoutMillis;
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    await this.forceFlush(timeoutMillis);
    this.stopped = true;
    this.stats.droppedShutdown += this.queue.length;
    this.queue = [];
    await raceTimeout(this.exporter.shutdown().catch(() => {}), Math.max(0, deadline - this.timers.now()), this.timers);
  }

  private schedule(): void {
    if (this.timer !== undefined || this.inflight) return;
    this.timer = this.timers.setTimeout(() => {
      this.timer = undefined;
      this.kick();
    }, this.cfg.scheduleDelayMillis);
  }

  private kick(): void {
    if (this.inflight || this.queue.length === 0) return;
    if (this.timer !== undefined) {
      this.timers.clearTimeout(this.timer);
      this.timer = undefined;
    }
    const batch = this.queue.splice(0, this.cfg.maxExportBatchSize);
    this.inflight = this.exportBatch(batch).then(() => {
      this.inflight = undefined;
      if (this.stopped) return;
      if (this.queue.length >= this.cfg.maxExportBatchSize) this.kick();
      else if (this.queue.length > 0) this.schedule();
    });
  }

  private exportBatch(batch: ReadableSpan[]): Promise<void> {
    return new Promise((resolve) => {
      let settled = false;
      const finish = (result: ExportResult) => {
        if (settled) return;
        settled = true;
        this.timers.clearTimeout(guard);
        if (result.code === ExportResultCode.SUCCESS) this.succeeded(batch.length);
        else this.failed(batch.length, result.error);
        resolve();
      };
      const guard = this.timers.setTimeout(
        () => finish({ code: ExportResultCode.FAILED, error: new Error(`export timed out after ${this.cfg.exportTimeoutMillis} ms`) }),
        this.cfg.exportTimeoutMillis,
      );
      try {
        this.exporter.export(batch, finish);
      } catch (e) {
        finish({ code: ExportResultCode.FAILED, error: e as Error });
      }
    });
  }

  private succeeded(n: number): void {
    this.stats.exported += n;
    if (this.failing) {
      this.failing = false;
      this.log.info(`span export to ${this.destination} recovered (${this.failedSinceLog} spans failed meanwhile)`);
      this.failedSinceLog = 0;
    }
  }

  private failed(n: number, error: unknown): void {
    this.stats.failed += n;
    this.stats.failedBatches++;
    const reason = errorName(error);
    this.stats.failuresByReason[reason] = (this.stats.failuresByReason[reason] ?? 0) + n;
    this.failedSinceLog += n;
    if (!this.failing) {
      this.failing = true;
      this.log.warn(
        `cannot export spans to ${this.destination}: ${errorMessage(error)}; ${n} spans dropped, later failures are counted (ebpf_otel.span.export_failures) until export recovers`,
      );
    }
  }
}

/** Resolves when `p` settles or after `ms`, whichever is first. */
export function raceTimeout(p: Promise<unknown>, ms: number, timers: Timers = realTimers): Promise<void> {
  return new Promise((resolve) => {
    const h = timers.setTimeout(resolve, Math.max(0, ms));
    p.then(
      () => {
        timers.clearTimeout(h);
        resolve();
      },
      () => {
        timers.clearTimeout(h);
        resolve();
      },
    );
  });
}
