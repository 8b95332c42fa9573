// Exporters are wiring: spans and log records go through our own encoders
// (otlp-encode.ts, log-encode.ts) and transports (otlp-transport.ts); metrics
// through the official OTLP metric exporters. A retry wrapper where needed;
// the bounded batch queue is batch-queue.ts.
//
// Retries, per the OTLP specification, and reconnects follow one policy for
// all three signals and both transports (export-policy.ts):
// - every signal, both transports: RetryingExporter retries with
//   jittered exponential backoff (1 s, x1.5, max 5 s, 5 retries by default)
//   and stops when the next try would start after the export timeout (an
//   attempt under way may still run its own timeout, so one export takes at
//   most about twice OTEL_EXPORTER_OTLP_TIMEOUT). gRPC: CANCELLED, DEADLINE_EXCEEDED, ABORTED,
//   OUT_OF_RANGE, UNAVAILABLE and DATA_LOSS are retried; RESOURCE_EXHAUSTED
//   only when the server sent RetryInfo, whose retry_delay is honoured. HTTP:
//   429, 502, 503, 504, timeouts and connection errors (ECONNREFUSED, ...) are
//   retried, Retry-After honoured; other statuses are final.
// - metrics: the official serializer (otlp-transformer) encodes a
//   ResourceMetrics and our transports send it, as for spans. The official
//   metric exporters build their own grpc-js channel without a way to pass
//   channel options (its reconnect backoff then grows to 120 s) and retry
//   HTTP by their own constants; they are not used.
// gRPC errors are GrpcStatusError (otlp-transport.ts): the status code, and
// the google.rpc.Status of grpc-status-details-bin for RetryInfo.

import * as fs from 'node:fs';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { ProtobufMetricsSerializer } from '@opentelemetry/otlp-transformer';
import { AggregationTemporality, InstrumentType, type AggregationTemporalitySelector, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { OtlpSignalConfig, RetryConfig, TemporalityPreference } from './config';
import {
  classifyHttpError,
  grpcAddress,
  GrpcStatus,
  GrpcStatusError,
  grpcStatusName,
  GrpcTransport,
  HttpTransport,
  type GrpcTls,
  type OtlpExportResult,
  type OtlpSignal,
} from './otlp-transport';
import { HTTP_AGENT_OPTIONS } from './export-policy';
import { fields } from '../util/protobuf';
import { realTimers, type Timers } from '../util/timers';

/**
 * What the pipeline needs of an exporter (PushMetricExporter fits; span
 * transports take encoded requests). An exporter may read what it was given
 * until it calls back, and not after.
 */
export interface Exporter<T, R extends ExportResult = ExportResult> {
  export(items: T, resultCallback: (result: R) => void): void;
  shutdown(): Promise<void>;
  forceFlush?(): Promise<void>;
}

// ---------------------------------------------------------------- gRPC retry

const RETRYABLE_GRPC = new Set<number>([
  GrpcStatus.CANCELLED,
  GrpcStatus.DEADLINE_EXCEEDED,
  GrpcStatus.ABORTED,
  GrpcStatus.OUT_OF_RANGE,
  GrpcStatus.UNAVAILABLE,
  GrpcStatus.DATA_LOSS,
]);

/** Whether a failed attempt is worth another, and when the server asked for it. */
export interface RetryClass {
  readonly retryable: boolean;
  /** The server's delay (RetryInfo.retry_delay, Retry-After), in ms. */
  readonly retryDelayMillis?: number;
}

export interface GrpcErrorClass extends RetryClass {
  /** Low-cardinality name for counters and logs (the gRPC status name, or "unknown"). */
  readonly name: string;
}

/** Classifies an export error per the OTLP/gRPC failure table. */
export function classifyGrpcError(error: unknown): GrpcErrorClass {
  if (!(error instanceof GrpcStatusError)) return { retryable: false, name: 'unknown' };
  const code = error.code;
  const name = grpcStatusName(code);
  const delay = error.statusDetails !== undefined ? retryDelayFromStatusDetails(error.statusDetails) : undefined;
  if (code === GrpcStatus.RESOURCE_EXHAUSTED) {
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

export interface RetryStats {
  /** Attempts after the first. */
  retries: number;
}

/** Retries an OTLP export per the OTLP rules (see the header); gRPC's unless told how to classify failures. */
export class RetryingExporter<T, R extends ExportResult = ExportResult> implements Exporter<T, R> {
  readonly stats: RetryStats = { retries: 0 };
  private readonly pending = new Map<unknown, () => void>();
  private closed = false;

  constructor(
    private readonly inner: Exporter<T, R>,
    private readonly retry: RetryConfig,
    private readonly timeoutMillis: number,
    private readonly timers: Timers = realTimers,
    private readonly random: () => number = Math.random,
    private readonly classify: (error: unknown) => RetryClass = classifyGrpcError,
  ) {}

  export(items: T, done: (result: R) => void): void {
    const deadline = this.timers.now() + this.timeoutMillis;
    let attempt = 1;
    let backoff = this.retry.initialBackoffMillis;
    const run = () => {
      this.inner.export(items, (result) => {
        if (result.code === ExportResultCode.SUCCESS || this.closed) return done(result);
        const c = this.classify(result.error);
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

/** TLS unless the URL says http:// or, without a scheme, OTEL_EXPORTER_OTLP_INSECURE=true; undefined: plaintext. */
export function grpcTls(cfg: OtlpSignalConfig, warnings: string[] = []): GrpcTls | undefined {
  const plaintext = /^http:\/\//i.test(cfg.url) || (!/^https:\/\//i.test(cfg.url) && cfg.insecure);
  if (plaintext) return undefined;
  const ca = readPem(cfg.certificate, 'certificate', warnings);
  const key = readPem(cfg.clientKey, 'client key', warnings);
  const cert = readPem(cfg.clientCertificate, 'client certificate', warnings);
  return { ...(ca ? { ca } : {}), ...(key && cert ? { key, cert } : {}) };
}

/** Headers gRPC or HTTP/2 reserve: the transport sets them, or they are not allowed at all. */
const RESERVED_METADATA = new Set(['content-type', 'te', 'user-agent', 'host', 'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

/**
 * The user's headers as gRPC metadata: names lowercased; a name that is not
 * a valid metadata key (0-9 a-z _ . -), is reserved (grpc-*, the transport's
 * own headers) or has a value that is not printable ASCII is left out, with a
 * warning. A -bin key's value is sent base64-encoded, as metadata values of
 * binary keys are.
 */
export function grpcMetadata(headers: Readonly<Record<string, string>>, warnings: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    const key = k.toLowerCase();
    if (!/^[0-9a-z_.-]+$/.test(key)) warnings.push(`OTLP header ${JSON.stringify(k)} is not a valid gRPC metadata key (0-9 a-z _ . -); not sent`);
    else if (key.startsWith('grpc-') || RESERVED_METADATA.has(key)) warnings.push(`OTLP header ${k} is reserved by gRPC or HTTP/2; not sent`);
    else if (key.endsWith('-bin')) out[key] = Buffer.from(v, 'utf8').toString('base64');
    else if (!/^[\x20-\x7e]*$/.test(v)) warnings.push(`OTLP header ${k} has a value that is not printable ASCII; not sent`);
    else out[key] = v;
  }
  return out;
}

function httpAgentOptions(cfg: OtlpSignalConfig, warnings: string[]) {
  const ca = readPem(cfg.certificate, 'certificate', warnings);
  const key = readPem(cfg.clientKey, 'client key', warnings);
  const cert = readPem(cfg.clientCertificate, 'client certificate', warnings);
  return { ...HTTP_AGENT_OPTIONS, ...(ca ? { ca } : {}), ...(key && cert ? { key, cert } : {}) };
}

const DEFAULT_USER_AGENT = 'ebpf-otel-sidecar';

export interface ExporterOptions {
  readonly retry: RetryConfig;
  readonly timers?: Timers;
  /** User-Agent of every export. */
  readonly userAgent?: string;
  /** Problems met while building (unreadable certificate files), one sentence each. */
  readonly warnings?: string[];
}

/** The OTLP transport for a signal's encoded requests, with the retries of its protocol. */
export function createOtlpExporter(signal: OtlpSignal, cfg: OtlpSignalConfig, opts: ExporterOptions): Exporter<Buffer, OtlpExportResult> {
  const warnings = opts.warnings ?? [];
  const timers = opts.timers ?? realTimers;
  const userAgent = opts.userAgent ?? DEFAULT_USER_AGENT;
  if (cfg.protocol === 'grpc') {
    const transport = new GrpcTransport({
      signal,
      address: grpcAddress(cfg.url),
      tls: grpcTls(cfg, warnings),
      metadata: grpcMetadata(cfg.headers, warnings),
      gzip: cfg.compression === 'gzip',
      timeoutMillis: cfg.timeoutMillis,
      userAgent,
      timers,
    });
    return new RetryingExporter(transport, opts.retry, cfg.timeoutMillis, timers, Math.random, classifyGrpcError);
  }
  const transport = new HttpTransport({
    url: cfg.url,
    headers: cfg.headers,
    gzip: cfg.compression === 'gzip',
    timeoutMillis: cfg.timeoutMillis,
    agentOptions: httpAgentOptions(cfg, warnings),
    userAgent,
    timers,
  });
  return new RetryingExporter(transport, opts.retry, cfg.timeoutMillis, timers, Math.random, classifyHttpError);
}

export interface MetricExporter extends Exporter<ResourceMetrics> {
  selectAggregationTemporality(instrumentType: InstrumentType): AggregationTemporality;
  /** Several resources' metrics in one request, where the exporter can. */
  exportMany?(rms: readonly ResourceMetrics[], done: (result: ExportResult) => void): void;
}

// OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE, as the OTLP exporter
// specification defines it (https://opentelemetry.io/docs/specs/otel/metrics/sdk_exporters/otlp/):
// delta makes counters (sync and async) and histograms delta, lowmemory only
// the synchronous counters and histograms; up-down counters stay cumulative.
// Gauges carry no temporality in OTLP; they follow the official exporters
// (delta under delta). Written here rather than imported: the official
// exporter package costs 1.5 MiB of heap for these three functions.
export const TEMPORALITY: Readonly<Record<TemporalityPreference, AggregationTemporalitySelector>> = {
  cumulative: () => AggregationTemporality.CUMULATIVE,
  delta: (kind) =>
    kind === InstrumentType.UP_DOWN_COUNTER || kind === InstrumentType.OBSERVABLE_UP_DOWN_COUNTER ? AggregationTemporality.CUMULATIVE : AggregationTemporality.DELTA,
  lowmemory: (kind) => (kind === InstrumentType.COUNTER || kind === InstrumentType.HISTOGRAM ? AggregationTemporality.DELTA : AggregationTemporality.CUMULATIVE),
};

/**
 * The OTLP metric exporter for a configuration: a ResourceMetrics encoded by
 * the official serializer, sent by the signal's transport with its retries
 * (createOtlpExporter), temporality chosen as the official exporters do.
 */
export function createMetricExporter(cfg: OtlpSignalConfig, temporality: TemporalityPreference, opts: ExporterOptions): MetricExporter {
  const transport = createOtlpExporter('metrics', cfg, opts);
  const select = TEMPORALITY[temporality];
  const exportMany = (rms: readonly ResourceMetrics[], done: (result: ExportResult) => void): void => {
    // ExportMetricsServiceRequest has one field, repeated resource_metrics: requests
    // serialized one resource each and concatenated are one request with them all.
    const parts: Uint8Array[] = [];
    try {
      for (const rm of rms) {
        const body = ProtobufMetricsSerializer.serializeRequest(rm);
        if (!body) return done({ code: ExportResultCode.FAILED, error: new Error('metrics could not be serialized') });
        parts.push(body);
      }
    } catch (e) {
      return done({ code: ExportResultCode.FAILED, error: e as Error });
    }
    transport.export(parts.length === 1 ? Buffer.from(parts[0]!.buffer, parts[0]!.byteOffset, parts[0]!.byteLength) : Buffer.concat(parts), done);
  };
  return {
    export: (rm: ResourceMetrics, done: (result: ExportResult) => void): void => exportMany([rm], done),
    exportMany,
    selectAggregationTemporality: (instrumentType: InstrumentType): AggregationTemporality => select(instrumentType),
    forceFlush: () => transport.forceFlush?.() ?? Promise.resolve(),
    shutdown: () => transport.shutdown(),
  };
}

/** A short, low-cardinality reason for a failed export. */
export function errorName(error: unknown): string {
  if (typeof error === 'object' && error !== null) {
    const code = (error as { code?: unknown }).code;
    if (error instanceof GrpcStatusError) return grpcStatusName(error.code);
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
