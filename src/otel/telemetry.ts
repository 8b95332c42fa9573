// The OTel layer as the rest of the agent sees it: TraceRecords and log
// records in, spans, log records and metrics out (OTLP or console), health
// counters, a bounded shutdown.
//
//   const telemetry = createTelemetry(loadOtelConfig(process.env, flags), { clock, logger, procfs });
//   telemetry.registerAgentHealth(metrics, () => ({ eventsCaptured, eventsLost, ... }));
//   telemetry.record(records);                  // from correlate (TelemetrySink)
//   telemetry.emitLog({ timeNs, tgid, severity: 'WARN', eventName, body, attributes });
//   telemetry.processExec(p) / telemetry.processExited(p, info);
//   await telemetry.shutdown();                 // flushes spans, log records and metrics within its bound, then closes
//   telemetry.shutdownSummary();                // what each signal lost at shutdown, one line each

import * as os from 'node:os';
import type { InstrumentationScope } from '@opentelemetry/core';
import type { PidNamespace } from '../capture/pid-namespace';
import { ProcFs } from '../util/procfs';
import type { Logger } from '../util/log';
import type { Env, OtelConfig } from './config';
import { BatchQueue, LOG_SIGNAL, SPAN_SIGNAL, type BatchExportStats, type ShutdownLoss } from './batch-queue';
import { ConsolePrinter, formatLogLine, type ConsoleStats } from './console';
import { createMetricExporter, createOtlpExporter, type Exporter, type MetricExporter } from './export';
import { realTimers, type Timers } from '../util/timers';
import { LogEncoder } from './log-encode';
import type { LogRecord, ObservedLogRecord } from './log-record';
import { MetricsPipeline, TELEMETRY_METRICS, registerAgentMetrics, type AgentHealth, type AgentMetric, type MetricsStats } from './metrics';
import type { AggregatedHistogram } from './histograms';
import type { Attributes, InstrumentSpec } from '../protocols/types';
import { ProcessResources, type ExitInfo, type ResourceStats } from './resource';
import { SpanEncoder } from './otlp-encode';
import type { OtlpExportResult } from './otlp-transport';
import { hrTimeToNs, recordToSpan, type SpanBuildContext, type SpanClock } from './spans';
import type { ProcessIdentity, TraceRecord } from '../correlate/trace-record';

export const SCOPE_NAME = 'ebpf-otel-sidecar';

export function agentVersion(): string {
  try {
    // dist/src/otel/ -> repository root, as src/cli/main.ts does.
    return (require('../../../package.json') as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

export interface TelemetryDeps {
  /** CLOCK_MONOTONIC ns -> wall clock (capture/clock.ts WallClock). */
  readonly clock: SpanClock;
  readonly logger: Logger;
  readonly procfs?: ProcFs;
  /** The agent's own environment (Kubernetes variables); default process.env. */
  readonly agentEnv?: Env;
  /**
   * The agent's pid namespace. Outside the host's, every traced process is in
   * the agent's pod (resource.ts); unknown counts as the host's.
   */
  readonly pidNamespace?: PidNamespace;
  readonly hostName?: string;
  /** Console output, one line per call; default stdout. */
  readonly write?: (line: string) => void;
  readonly timers?: Timers;
  readonly version?: string;
  /** Replace the OTLP transports (tests, benchmarks): spans arrive encoded, as ExportTraceServiceRequests. */
  readonly spanExporter?: Exporter<Buffer, OtlpExportResult>;
  /** The same for log records (ExportLogsServiceRequests). */
  readonly logExporter?: Exporter<Buffer, OtlpExportResult>;
  readonly metricExporter?: MetricExporter;
  /** CLOCK_MONOTONIC ns now: when a log record is observed. Default process.hrtime. */
  readonly monotonicNs?: () => number;
}

export interface TelemetryHealth {
  readonly records: { received: number; unsampled: number; rejected: number };
  readonly spans: BatchExportStats & { queued: number };
  /** emitted: emitLog calls taken; printed: lines written (console); rejected: records that could not be printed. */
  readonly logs: BatchExportStats & { queued: number; emitted: number; printed: number; rejected: number };
  readonly metrics: MetricsStats;
  readonly resources: ResourceStats;
  readonly console?: ConsoleStats;
}

export class Telemetry {
  readonly resources: ProcessResources;
  readonly metrics: MetricsPipeline;
  readonly batcher: BatchQueue<TraceRecord> | undefined;
  readonly console: ConsolePrinter | undefined;
  readonly logBatcher: BatchQueue<ObservedLogRecord> | undefined;
  /** Where log records are printed (console), one line each. */
  private readonly logLines: ((line: string) => void) | undefined;
  private readonly monotonicNs: () => number;
  private readonly spanContext: SpanBuildContext;
  private readonly counts = { received: 0, unsampled: 0, rejected: 0 };
  private readonly logCounts = { emitted: 0, printed: 0, rejected: 0 };
  private stopped = false;
  private healthSnapshot: () => AgentHealth = () => ({});

  constructor(
    readonly config: OtelConfig,
    private readonly deps: TelemetryDeps,
  ) {
    const version = deps.version ?? agentVersion();
    const scope: InstrumentationScope = { name: SCOPE_NAME, version };
    const timers = deps.timers ?? realTimers;
    const warnings: string[] = [];
    this.resources = new ProcessResources({
      procfs: deps.procfs ?? new ProcFs(),
      agentEnv: deps.agentEnv ?? process.env,
      hostName: deps.hostName ?? os.hostname(),
      distroVersion: version,
      captureCommandArgs: config.resource.captureCommandArgs,
      attributes: config.resource.attributes,
      podPidNamespace: deps.pidNamespace !== undefined && !deps.pidNamespace.host,
      maxProcesses: config.resource.maxProcesses,
    });
    const clock = deps.clock;
    this.spanContext = { toHrTime: (ns) => clock.toHrTime(ns), scope };

    const write = deps.write ?? ((l: string) => process.stdout.write(l + '\n'));
    const exporterOptions = { retry: config.retry, timers, warnings, userAgent: `${SCOPE_NAME}/${version}` };
    const t = config.traces;
    if (t.exporter === 'otlp' && t.otlp) {
      const exporter = deps.spanExporter ?? createOtlpExporter('traces', t.otlp, exporterOptions);
      const encoder = new SpanEncoder(scope, clock);
      this.batcher = new BatchQueue(SPAN_SIGNAL, encoder, exporter, config.batch, deps.logger, `${t.otlp.url} (${t.otlp.protocol})`, timers);
    } else if (t.exporter === 'console') {
      this.console = new ConsolePrinter({ write, timers });
    }

    const l = config.logs;
    if (l.exporter === 'otlp' && l.otlp) {
      const exporter = deps.logExporter ?? createOtlpExporter('logs', l.otlp, exporterOptions);
      this.logBatcher = new BatchQueue(LOG_SIGNAL, new LogEncoder(scope, clock), exporter, l.batch, deps.logger, `${l.otlp.url} (${l.otlp.protocol})`, timers);
    } else if (l.exporter === 'console') {
      this.logLines = write;
    }
    this.monotonicNs = deps.monotonicNs ?? (() => Number(process.hrtime.bigint()));

    const m = config.metrics;
    const metricExporter =
      m.exporter === 'otlp' && m.otlp ? (deps.metricExporter ?? createMetricExporter(m.otlp, m.temporality, { retry: config.retry, timers, warnings })) : undefined;
    this.metrics = new MetricsPipeline({
      exporter: metricExporter,
      resources: this.resources,
      scope,
      exportIntervalMillis: m.exportIntervalMillis,
      exportTimeoutMillis: m.exportTimeoutMillis,
      maxSeriesPerInstrument: m.maxSeriesPerInstrument,
      log: deps.logger,
      destination: m.otlp ? `${m.otlp.url} (${m.otlp.protocol})` : 'nowhere',
      timers,
    });
    this.metrics.start();
    // Each signal's exporter reads the same settings: a problem with them is said once.
    for (const w of new Set(warnings)) deps.logger.warn(w);
  }

  /** Spans for the sampled records, measurements for all of them. Never throws, never blocks. */
  record(records: readonly TraceRecord[]): void {
    if (this.stopped) return;
    for (const tr of records) {
      this.counts.received++;
      try {
        if (this.metrics.enabled) this.metrics.record(tr.process, tr.record.measurements);
        if (!tr.sampled) {
          this.counts.unsampled++;
          continue;
        }
        if (this.batcher) this.batcher.add(tr, this.resources.resourceFor(tr.process));
        else if (this.console) this.console.onSpan(recordToSpan(tr, this.resources.resourceFor(tr.process), this.spanContext));
      } catch (e) {
        this.counts.rejected++;
        this.deps.logger.warnOnce('otel-record-rejected', `a record could not be exported: ${(e as Error).message}`);
      }
    }
  }

  /**
   * A log record about a traced process (its resource is the process's), for
   * export or the console; observed now. Never throws, never blocks: a full
   * queue drops it, counted.
   */
  emitLog(log: LogRecord): void {
    if (this.stopped || (!this.logBatcher && !this.logLines)) return;
    this.logCounts.emitted++;
    try {
      const resource = this.resources.resourceFor(log);
      if (this.logBatcher) {
        this.logBatcher.add({ record: log, observedNs: this.monotonicNs() }, resource);
        return;
      }
      // The encoder's check, for the console: a wrong time is never printed.
      if (!Number.isInteger(log.timeNs) || log.timeNs < 0) throw new Error(`time ${log.timeNs} is not a CLOCK_MONOTONIC ns count`);
      this.logLines!(formatLogLine(log, resource, hrTimeToNs(this.spanContext.toHrTime(log.timeNs))));
      this.logCounts.printed++;
    } catch (e) {
      this.logCounts.rejected++;
      this.deps.logger.warnOnce('otel-log-rejected', `a log record was dropped: ${(e as Error).message}`);
    }
  }

  /** A traced process exec'd: its resource and meters are rebuilt on next use. */
  processExec(process: ProcessIdentity | number): void {
    const p = typeof process === 'number' ? { tgid: process } : process;
    this.metrics.retire(p);
    this.resources.invalidate(p.tgid);
    this.resources.learn(p);
  }

  /** A traced process exited: its resource is kept as read (or built from `info`); its metrics are exported and retired. */
  processExited(process: ProcessIdentity | number, info?: ExitInfo): void {
    const p = typeof process === 'number' ? { tgid: process } : process;
    this.resources.exited(p, info);
    this.metrics.retire(p);
  }

  /**
   * An aggregate measured elsewhere (the kernel's syscall histograms) for a
   * process. Never throws. Taken during shutdown too, until the final metric
   * collection: that is when the last interval is read.
   */
  recordAggregated(process: ProcessIdentity, instrument: InstrumentSpec, attributes: Attributes, agg: AggregatedHistogram): void {
    try {
      this.metrics.recordAggregated(process, instrument, attributes, agg);
    } catch (e) {
      this.deps.logger.warnOnce('otel-aggregate-rejected', `an aggregated measurement could not be recorded: ${(e as Error).message}`);
    }
  }

  /** Runs `hook` before every metric collection, so data kept elsewhere is recorded in time for it. */
  beforeMetricCollection(hook: () => void): void {
    this.metrics.addCollectHook(hook);
  }

  /**
   * The agent's own metrics (ebpf_otel.*): `metrics` filled by `snapshot`,
   * plus this layer's own (TELEMETRY_METRICS, which `metrics` may hold too).
   * Call once.
   */
  registerAgentHealth(metrics: readonly AgentMetric[], snapshot: () => AgentHealth): void {
    this.healthSnapshot = snapshot;
    const all = [...metrics, ...TELEMETRY_METRICS.filter((m) => !metrics.some((x) => x.name === m.name))];
    registerAgentMetrics(this.metrics.agentMeterProvider, all, () => this.agentHealth(), this.spanContext.scope);
  }

  /** The agent's own metrics now: this layer's counters and the registered snapshot. */
  agentHealth(): AgentHealth {
    return { ...this.ownHealth(), ...this.healthSnapshot() };
  }

  health(): TelemetryHealth {
    const h: { -readonly [K in keyof TelemetryHealth]: TelemetryHealth[K] } = {
      records: { ...this.counts },
      spans: queueHealth(this.batcher),
      logs: { ...queueHealth(this.logBatcher), ...this.logCounts },
      metrics: { ...this.metrics.stats, failuresByReason: { ...this.metrics.stats.failuresByReason } },
      resources: { ...this.resources.stats },
    };
    if (this.console) h.console = { ...this.console.stats };
    return h;
  }

  /** Exports what is pending: spans, then log records, then metrics (whose health counters then include both flushes), all within `timeoutMillis`. */
  async forceFlush(timeoutMillis = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMillis;
    const left = () => Math.max(0, deadline - Date.now());
    this.console?.flush();
    await this.batcher?.forceFlush(left());
    await this.logBatcher?.forceFlush(left());
    await this.metrics.forceFlush(left());
  }

  /**
   * Flushes every pending span, log record and metric within `timeoutMillis`
   * (default: the configuration's shutdownTimeoutMillis, export-policy.ts),
   * then closes the exporters. Spans first, then log records, then metrics
   * (whose final health counters then count both flushes), each within its
   * share of the time the phases still to run have left: weights 6 (spans), 2
   * (log records), 4 (metrics), for the signals exported. So with spans and
   * metrics, spans get at most 60% and metrics at least 40%; with all three,
   * spans at most 50%, log records at least 1/6 and metrics at least 1/3. A
   * slow flush cannot starve the next; time a phase does not use passes on.
   * Each phase ends by closing its exporter, which cancels what is still under
   * way: nothing outlives the bound.
   */
  async shutdown(timeoutMillis = this.config.shutdownTimeoutMillis): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.console?.flush();
    const deadline = Date.now() + timeoutMillis;
    const phases: [number, (ms: number) => Promise<void> | undefined][] = [
      [this.batcher ? SHUTDOWN_WEIGHTS.spans : 0, (ms) => this.batcher?.shutdown(ms)],
      [this.logBatcher ? SHUTDOWN_WEIGHTS.logs : 0, (ms) => this.logBatcher?.shutdown(ms)],
      [this.metrics.enabled ? SHUTDOWN_WEIGHTS.metrics : 0, (ms) => this.metrics.shutdown(ms)],
    ];
    let weightLeft = phases.reduce((sum, [w]) => sum + w, 0);
    for (const [weight, phase] of phases) {
      const left = Math.max(0, deadline - Date.now());
      const share = weightLeft > 0 ? Math.floor((left * weight) / weightLeft) : left;
      weightLeft -= weight;
      await phase(share);
    }
  }

  /**
   * What each exported signal lost at shutdown, one line each, for the exit
   * summary: spans and log records not confirmed exported once shutdown began
   * (still queued, in a failed export, in an export cut short), and whether
   * the final metric export went. Empty before shutdown.
   */
  shutdownSummary(): string[] {
    if (!this.stopped) return [];
    const lines: string[] = [];
    const queue = (plural: string, q: BatchQueue<unknown> | undefined, where: string | undefined) => {
      const loss = q?.lostAtShutdown;
      if (!q || !loss) return;
      const n = loss.queued + loss.failed + loss.unfinished;
      lines.push(
        n === 0
          ? `${plural} to ${where}: ${q.stats.exported} exported, none lost at shutdown`
          : `${plural} to ${where}: ${q.stats.exported} exported, ${n} lost at shutdown (${describeLoss(loss)})`,
      );
    };
    queue('spans', this.batcher, this.config.traces.otlp && destination(this.config.traces.otlp));
    queue('log records', this.logBatcher, this.config.logs.otlp && destination(this.config.logs.otlp));
    const final = this.metrics.finalExport;
    const m = this.config.metrics.otlp;
    if (final && m) {
      const what =
        final.outcome === 'exported'
          ? 'final export done'
          : final.outcome === 'failed'
            ? `final export failed at shutdown (${final.reasons.join(', ')}): the last interval is lost`
            : `final export did not finish within the shutdown bound${final.reasons.length > 0 ? ` (${final.reasons.join(', ')})` : ''}: the last interval is lost`;
      lines.push(`metrics to ${destination(m)}: ${what}`);
    }
    return lines;
  }

  private ownHealth(): AgentHealth {
    const s = this.batcher?.stats;
    return {
      ...(s
        ? {
            spansExported: s.exported,
            spansDroppedByReason: { queue_full: s.droppedQueueFull, shutdown: s.droppedShutdown },
            spanExportFailuresByReason: { ...s.failuresByReason },
            spanQueueSize: this.batcher!.queued,
          }
        : {}),
      ...(this.logBatcher
        ? {
            logsExported: this.logBatcher.stats.exported,
            logsDroppedByReason: { queue_full: this.logBatcher.stats.droppedQueueFull, shutdown: this.logBatcher.stats.droppedShutdown },
            logExportFailuresByReason: { ...this.logBatcher.stats.failuresByReason },
            logQueueSize: this.logBatcher.queued,
          }
        : {}),
      metricOverflows: this.metrics.stats.overflowed,
      metricRetiredDropped: this.metrics.stats.retiredDropped,
      metricExportFailuresByReason: { ...this.metrics.stats.failuresByReason },
      resourcesEvicted: this.resources.stats.evicted,
    };
  }
}

const SHUTDOWN_WEIGHTS = { spans: 6, logs: 2, metrics: 4 } as const;

function destination(c: { url: string; protocol: string }): string {
  return `${c.url} (${c.protocol})`;
}

function describeLoss(l: ShutdownLoss): string {
  const parts: string[] = [];
  if (l.queued > 0) parts.push(`${l.queued} still queued`);
  if (l.failed > 0) parts.push(`${l.failed} in failed exports`);
  if (l.unfinished > 0) parts.push(`${l.unfinished} in an export cut short`);
  return parts.join(', ');
}

function queueHealth(q: BatchQueue<unknown> | undefined): BatchExportStats & { queued: number } {
  if (!q) return { exported: 0, failed: 0, droppedQueueFull: 0, droppedShutdown: 0, failedBatches: 0, failuresByReason: {}, queued: 0 };
  return { ...q.stats, failuresByReason: { ...q.stats.failuresByReason }, queued: q.queued };
}

export function createTelemetry(config: OtelConfig, deps: TelemetryDeps): Telemetry {
  return new Telemetry(config, deps);
}
