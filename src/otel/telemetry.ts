// The OTel layer as the rest of the agent sees it: TraceRecords in, spans and
// metrics out (OTLP or console), health counters, a bounded shutdown.
//
//   const telemetry = createTelemetry(loadOtelConfig(process.env, flags), { clock, logger, procfs });
//   telemetry.registerAgentHealth(() => ({ eventsCaptured, eventsLost, ... }));
//   telemetry.record(records);                  // from correlate (TelemetrySink)
//   telemetry.processExec(p) / telemetry.processExited(p, info);
//   await telemetry.shutdown(5000);             // flushes spans and metrics, then closes

import * as os from 'node:os';
import type { InstrumentationScope } from '@opentelemetry/core';
import { ProcFs } from '../capture/procfs';
import type { Logger } from '../util/log';
import type { Env, OtelConfig } from './config';
import { ConsolePrinter, type ConsoleStats } from './console';
import { createMetricExporter, createSpanExporter, realTimers, SpanBatcher, type Exporter, type MetricExporter, type SpanExportStats, type Timers } from './export';
import { MetricsPipeline, registerAgentMetrics, type AgentHealth, type MetricsStats } from './metrics';
import type { AggregatedHistogram } from './histograms';
import type { Attributes, InstrumentSpec } from '../protocols/types';
import { ProcessResources, type ExitInfo, type ResourceStats } from './resource';
import { SpanEncoder } from './otlp-encode';
import { recordToSpan, type SpanBuildContext, type SpanClock } from './spans';
import type { SpanExportResult } from './trace-transport';
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
  readonly hostName?: string;
  /** Console output, one line per call; default stdout. */
  readonly write?: (line: string) => void;
  readonly timers?: Timers;
  readonly version?: string;
  /** Replace the OTLP transports (tests, benchmarks): spans arrive encoded, as ExportTraceServiceRequests. */
  readonly spanExporter?: Exporter<Buffer, SpanExportResult>;
  readonly metricExporter?: MetricExporter;
}

export interface TelemetryHealth {
  readonly records: { received: number; unsampled: number; rejected: number };
  readonly spans: SpanExportStats & { queued: number };
  readonly metrics: MetricsStats;
  readonly resources: ResourceStats;
  readonly console?: ConsoleStats;
}

export class Telemetry {
  readonly resources: ProcessResources;
  readonly metrics: MetricsPipeline;
  readonly batcher: SpanBatcher | undefined;
  readonly console: ConsolePrinter | undefined;
  private readonly spanContext: SpanBuildContext;
  private readonly counts = { received: 0, unsampled: 0, rejected: 0 };
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
      maxProcesses: config.resource.maxProcesses,
    });
    const clock = deps.clock;
    this.spanContext = { toHrTime: (ns) => clock.toHrTime(ns), scope };

    const t = config.traces;
    if (t.exporter === 'otlp' && t.otlp) {
      const exporter = deps.spanExporter ?? createSpanExporter(t.otlp, { retry: config.retry, timers, warnings, userAgent: `${SCOPE_NAME}/${version}` });
      const encoder = new SpanEncoder(scope, clock);
      this.batcher = new SpanBatcher(encoder, exporter, config.batch, deps.logger, `${t.otlp.url} (${t.otlp.protocol})`, timers);
    } else if (t.exporter === 'console') {
      this.console = new ConsolePrinter({ write: deps.write ?? ((l) => process.stdout.write(l + '\n')), timers });
    }

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
    for (const w of warnings) deps.logger.warn(w);
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

  // -- syscall latency --
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
  // -- end syscall latency --

  /** The agent's own metrics (ebpf_otel.*), from `snapshot` plus this layer's own counters. Call once. */
  registerAgentHealth(snapshot: () => AgentHealth): void {
    this.healthSnapshot = snapshot;
    registerAgentMetrics(this.metrics.agentMeterProvider, () => this.agentHealth(), this.spanContext.scope);
  }

  /** The agent's own metrics now: this layer's counters and the registered snapshot. */
  agentHealth(): AgentHealth {
    return { ...this.ownHealth(), ...this.healthSnapshot() };
  }

  health(): TelemetryHealth {
    const h: { -readonly [K in keyof TelemetryHealth]: TelemetryHealth[K] } = {
      records: { ...this.counts },
      spans: this.batcher
        ? { ...this.batcher.stats, failuresByReason: { ...this.batcher.stats.failuresByReason }, queued: this.batcher.queued }
        : { exported: 0, failed: 0, droppedQueueFull: 0, droppedShutdown: 0, failedBatches: 0, failuresByReason: {}, queued: 0 },
      metrics: { ...this.metrics.stats, failuresByReason: { ...this.metrics.stats.failuresByReason } },
      resources: { ...this.resources.stats },
    };
    if (this.console) h.console = { ...this.console.stats };
    return h;
  }

  /** Exports what is pending: spans first, then metrics (whose health counters then include that flush). */
  async forceFlush(timeoutMillis = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMillis;
    this.console?.flush();
    await this.batcher?.forceFlush(timeoutMillis);
    await this.metrics.forceFlush(Math.max(0, deadline - Date.now()));
  }

  /** Flushes every pending span and metric within `timeoutMillis`, then closes the exporters. */
  async shutdown(timeoutMillis = 5000): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const deadline = Date.now() + timeoutMillis;
    this.console?.flush();
    // Spans first, so the final health metrics count their flush, within 60%
    // of the time: a slow span flush must not leave the metrics no time.
    await this.batcher?.shutdown(this.metrics.enabled ? Math.floor(timeoutMillis * 0.6) : timeoutMillis);
    await this.metrics.shutdown(Math.max(0, deadline - Date.now()));
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
      metricOverflows: this.metrics.stats.overflowed,
      metricExportFailuresByReason: { ...this.metrics.stats.failuresByReason },
      resourcesEvicted: this.resources.stats.evicted,
    };
  }
}

export function createTelemetry(config: OtelConfig, deps: TelemetryDeps): Telemetry {
  return new Telemetry(config, deps);
}
