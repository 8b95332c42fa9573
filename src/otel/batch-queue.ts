// A BatchSpanProcessor / BatchLogRecordProcessor-like queue of one signal's
// items (sampled TraceRecords, log records) and their resources: bounded (drops
// counted, the first logged), one export in flight, batches of
// maxExportBatchSize, a schedule delay, each export bounded by the export
// timeout. Items are encoded as they are queued and wait as bytes
// (EncodedItems): an item that cannot be encoded is counted then, and a batch
// is its request built from those bytes (RequestEncoder). A failing collector is
// logged once, then counted; recovery is logged once. Items a collector refuses
// (partial success) are counted as failed and its message logged once.

import { ExportResultCode } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import type { Logger } from '../util/log';
import type { BatchConfig } from './config';
import { errorMessage, errorName, raceTimeout, type Exporter } from './export';
import { realTimers, type Timers } from '../util/timers';
import { EncodedItems } from './encoded-items';
import type { EncodedBatch } from './otlp-common';
import type { OtlpExportResult } from './otlp-transport';

/** How a queue names its items in log lines (and which variable and metrics it points to). */
export interface BatchSignal {
  /** Key of its once-only log lines. */
  readonly id: string;
  readonly noun: string;
  readonly plural: string;
  /** The variable that bounds the queue. */
  readonly queueSizeVariable: string;
  /** The namespace of its health metrics (ebpf_otel.<x>.dropped, .export_failures). */
  readonly metricPrefix: string;
  /** What an item the encoder could not take is, in a log line. */
  readonly invalidItems: string;
}

export const SPAN_SIGNAL: BatchSignal = {
  id: 'span',
  noun: 'span',
  plural: 'spans',
  queueSizeVariable: 'OTEL_BSP_MAX_QUEUE_SIZE',
  metricPrefix: 'ebpf_otel.span',
  invalidItems: 'records with malformed trace ids or times',
};

export const LOG_SIGNAL: BatchSignal = {
  id: 'log',
  noun: 'log record',
  plural: 'log records',
  queueSizeVariable: 'OTEL_BLRP_MAX_QUEUE_SIZE',
  metricPrefix: 'ebpf_otel.log',
  invalidItems: 'log records with malformed trace ids, times or severities',
};

/** Encodes items as they are queued, and requests of them (RequestEncoder fits). */
export interface BatchEncoder<T> {
  /** Encodes `item` at the end of `queue`; false, with nothing queued, when it cannot be encoded as it is. */
  append(queue: EncodedItems, item: T, resource: Resource): boolean;
  /** One request of the first `n` items of `queue`, which leave it. */
  request(queue: EncodedItems, n: number): EncodedBatch;
}

export interface BatchExportStats {
  /** Items accepted by the collector. */
  exported: number;
  /** Items whose export failed (after retries), the collector refused, or that could not be encoded. */
  failed: number;
  /** Items dropped because the queue was full. */
  droppedQueueFull: number;
  /** Items still queued at shutdown when its timeout ran out, or added after it. */
  droppedShutdown: number;
  /** Failed batch exports. */
  failedBatches: number;
  /** Failures by reason (gRPC status name, http_<code>, timeout, rejected, invalid_record, ...). */
  failuresByReason: Record<string, number>;
}

/** What a queue lost at shutdown: every item that was not confirmed exported once shutdown began. */
export interface ShutdownLoss {
  /** Still queued when the flush ran out of time. */
  readonly queued: number;
  /** In batches whose export failed during the flush. */
  readonly failed: number;
  /** In the batch under way when the exporter was closed (cancelled, or left to its deadline). */
  readonly unfinished: number;
}

export class BatchQueue<T> {
  readonly stats: BatchExportStats = {
    exported: 0,
    failed: 0,
    droppedQueueFull: 0,
    droppedShutdown: 0,
    failedBatches: 0,
    failuresByReason: {},
  };
  /** Queued items, encoded. */
  private readonly items = new EncodedItems();
  private timer: unknown;
  private inflight: Promise<void> | undefined;
  /** Items of the batch under way. */
  private inflightItems = 0;
  private loss: ShutdownLoss | undefined;
  private stopped = false;
  private failing = false;
  private failedSinceLog = 0;

  constructor(
    private readonly signal: BatchSignal,
    private readonly encoder: BatchEncoder<T>,
    private readonly exporter: Exporter<Buffer, OtlpExportResult>,
    private readonly cfg: BatchConfig,
    private readonly log: Logger,
    /** Where the items go, for log lines. */
    private readonly destination: string,
    private readonly timers: Timers = realTimers,
  ) {}

  get queued(): number {
    return this.items.count;
  }

  /** Queues an item of `resource`, encoded now. Throws only what the encoder throws (nothing is queued then). */
  add(item: T, resource: Resource): void {
    if (this.stopped) {
      this.stats.droppedShutdown++;
      return;
    }
    if (this.items.count >= this.cfg.maxQueueSize) {
      this.stats.droppedQueueFull++;
      const s = this.signal;
      this.log.warnOnce(
        `otel-${s.id}-queue-full`,
        `${s.noun} queue full (${this.cfg.maxQueueSize} ${s.plural}, ${s.queueSizeVariable}): dropping new ${s.plural}; drops are counted in ${s.metricPrefix}.dropped`,
      );
      return;
    }
    if (!this.encoder.append(this.items, item, resource)) {
      this.invalid();
      return;
    }
    if (this.items.count >= this.cfg.maxExportBatchSize) this.kick();
    else this.schedule();
  }

  /** Exports everything queued, within `timeoutMillis`. */
  async forceFlush(timeoutMillis = this.cfg.exportTimeoutMillis): Promise<void> {
    const deadline = this.timers.now() + timeoutMillis;
    while ((this.items.count > 0 || this.inflight) && this.timers.now() < deadline) {
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
    const failedBefore = this.stats.failed;
    await this.forceFlush(timeoutMillis);
    this.stopped = true;
    const queued = this.items.count;
    this.stats.droppedShutdown += queued;
    this.items.clear();
    await raceTimeout(this.exporter.shutdown().catch(() => {}), Math.max(0, deadline - this.timers.now()), this.timers);
    this.loss = { queued, failed: this.stats.failed - failedBefore, unfinished: this.inflight ? this.inflightItems : 0 };
  }

  /** What shutdown lost; undefined before it. */
  get lostAtShutdown(): ShutdownLoss | undefined {
    return this.loss;
  }

  private schedule(): void {
    if (this.timer !== undefined || this.inflight) return;
    this.timer = this.timers.setTimeout(() => {
      this.timer = undefined;
      this.kick();
    }, this.cfg.scheduleDelayMillis);
  }

  private kick(): void {
    if (this.inflight || this.items.count === 0) return;
    if (this.timer !== undefined) {
      this.timers.clearTimeout(this.timer);
      this.timer = undefined;
    }
    const n = Math.min(this.cfg.maxExportBatchSize, this.items.count);
    this.inflightItems = n;
    this.inflight = this.exportBatch(n).then(() => {
      this.inflight = undefined;
      this.inflightItems = 0;
      if (this.stopped) return;
      if (this.items.count >= this.cfg.maxExportBatchSize) this.kick();
      else if (this.items.count > 0) this.schedule();
    });
  }

  /** Exports the first `n` queued items. */
  private exportBatch(n: number): Promise<void> {
    let encoded: EncodedBatch;
    try {
      encoded = this.encoder.request(this.items, n);
    } catch (e) {
      // Not expected (the items are bytes already); if it happens, they are gone, counted.
      this.items.drop(n);
      this.failed(n, e);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      let settled = false;
      const finish = (result: OtlpExportResult) => {
        if (settled) return;
        settled = true;
        this.timers.clearTimeout(guard);
        if (result.code === ExportResultCode.SUCCESS) this.succeeded(n, result);
        else this.failed(n, result.error);
        resolve();
      };
      const guard = this.timers.setTimeout(
        () => finish({ code: ExportResultCode.FAILED, error: new Error(`export timed out after ${this.cfg.exportTimeoutMillis} ms`) }),
        this.cfg.exportTimeoutMillis,
      );
      try {
        // The exporter reads the bytes until it calls back, which may be after the guard gave up on it.
        this.exporter.export(encoded.bytes, (result) => {
          encoded.release();
          finish(result);
        });
      } catch (e) {
        finish({ code: ExportResultCode.FAILED, error: e as Error });
      }
    });
  }

  private succeeded(n: number, result: OtlpExportResult): void {
    const s = this.signal;
    const partial = result.partialSuccess;
    const rejected = partial ? Math.min(n, partial.rejected) : 0;
    this.stats.exported += n - rejected;
    if (rejected > 0) this.count('rejected', rejected);
    if (partial) {
      this.log.warnOnce(
        `otel-${s.id}-partial-success`,
        `${this.destination} rejected ${partial.rejected} of ${n} ${s.plural}: ${partial.errorMessage || '(no message)'}; later rejections are counted (${s.metricPrefix}.export_failures, error.type=rejected)`,
      );
    }
    if (this.failing) {
      this.failing = false;
      this.log.info(`${s.noun} export to ${this.destination} recovered (${this.failedSinceLog} ${s.plural} failed meanwhile)`);
      this.failedSinceLog = 0;
    }
  }

  private failed(n: number, error: unknown): void {
    const s = this.signal;
    this.stats.failedBatches++;
    this.count(errorName(error), n);
    this.failedSinceLog += n;
    if (!this.failing) {
      this.failing = true;
      this.log.warn(
        `cannot export ${s.plural} to ${this.destination}: ${errorMessage(error)}; ${n} ${s.plural} dropped, later failures are counted (${s.metricPrefix}.export_failures) until export recovers`,
      );
    }
  }

  /** An item the encoder could not take as it is: never sent, so never a wrong span or log record. */
  private invalid(): void {
    const s = this.signal;
    this.count('invalid_record', 1);
    this.log.warnOnce(
      `otel-${s.id}-invalid`,
      `${s.invalidItems} are not exported; they are counted (${s.metricPrefix}.export_failures, error.type=invalid_record)`,
    );
  }

  private count(reason: string, n: number): void {
    this.stats.failed += n;
    this.stats.failuresByReason[reason] = (this.stats.failuresByReason[reason] ?? 0) + n;
  }
}
