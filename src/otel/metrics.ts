// Metrics, each traced process under its own OTLP resource.
//
// Design: the record measurements of each traced process are aggregated by
// our own explicit-bucket histograms (histograms.ts) under the process's
// resource; one agent-wide cycle collects every process into the
// @opentelemetry/sdk-metrics ResourceMetrics and hands each to the one
// official OTLP metric exporter, one request per resource, one request at a
// time. Temporality is the exporter's. Around the aggregation: the bound on
// processes (LRU; an evicted or idle process gets a final collection and
// export), and a counted cardinality guard on every instrument.
//
// Our own aggregation, first rejected (it re-implements the SDK's histogram
// and temporality logic), was chosen once measured: with one sdk-metrics
// MeterProvider per process, recording took 17% of the CPU of
// bench/pipeline.ts (keepalive), plus GC: attribute hashing by sort and JSON
// per measurement, the SDK's hash map, context lookups, and our guard hashing
// the same attributes again. histograms.ts resolves each record's attribute
// set once and takes ~3%; the pipeline went from ~19k to ~29k records per CPU
// second. It produces exactly what the SDK would (a unit test compares both).
// Also rejected: a PeriodicExportingMetricReader per process (a timer, a
// request and an exporter per process, no shared backpressure).
//
// The agent's own health metrics, few and observable, stay on an sdk-metrics
// MeterProvider under the agent's resource (service.name
// "ebpf-otel-sidecar"), observed from a snapshot callback at collection time.

import type { MeterProvider as ApiMeterProvider } from '@opentelemetry/api';
import type { ExportResult, InstrumentationScope } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import { AggregationTemporality, InstrumentType, MeterProvider, MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { Attributes, InstrumentSpec, RecordMeasurement } from '../protocols/types';
import type { Logger } from '../util/log';
import { errorMessage, errorName, raceTimeout, type MetricExporter } from './export';
import { METRIC_RETRY_INTERVAL_MS } from './export-policy';
import { realTimers, type Timers } from '../util/timers';
import { ProcessHistograms, type AggregatedHistogram } from './histograms';
import { ProcessAggregates } from './aggregates';
import type { ProcessIdentity } from '../correlate/trace-record';

export { OVERFLOW_ATTRIBUTE } from './histograms';

/** Pull-only reader: collected by MetricsPipeline's own cycle. */
class PullReader extends MetricReader {
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

export interface MetricsStats {
  /** Measurements recorded. */
  recorded: number;
  /** Measurements whose attributes were folded into otel.metric.overflow=true. */
  overflowed: number;
  /** Data points the collector accepted. */
  dataPointsExported: number;
  /** Export requests that failed (after retries). */
  failedExports: number;
  failuresByReason: Record<string, number>;
  /** Process meters retired by the bound on processes. */
  processesEvicted: number;
  /** Process meters retired after being idle. */
  processesIdle: number;
  /** Collection cycles skipped because the previous one was still running. */
  cyclesSkipped: number;
  /** Final collections of retired meters dropped: more than MAX_RETIRED were waiting for export. */
  retiredDropped: number;
}

// A retired meter's final collection (a process exited, went idle, or was
// evicted) is exported within RETIRED_FLUSH_MS, not at the next interval: under
// process churn (thousands of short-lived processes a minute) holding them for
// a 60 s interval grew the heap with every exit (issue 12: 156 -> 198 MiB RSS
// from the 1000th to the 3000th curl). They go out together, one request per
// flush (ResourceMetrics concatenated: a repeated field), and at most
// MAX_RETIRED wait, the oldest dropped and counted past that.
export const RETIRED_FLUSH_MS = 5000;
export const MAX_RETIRED = 1024;
const MAX_POINTS_PER_REQUEST = 4096;

/** The final metric export at shutdown: exported, failed (after retries), or cut by the shutdown bound. */
export interface FinalMetricExport {
  readonly outcome: 'exported' | 'failed' | 'unfinished';
  /** Export requests that failed during it. */
  readonly failedRequests: number;
  /** Their failure reasons (gRPC status name, http_<code>, timeout, ...). */
  readonly reasons: readonly string[];
}

export interface MetricsPipelineOptions {
  /** Undefined: metrics are not exported and measurements are ignored. */
  readonly exporter: MetricExporter | undefined;
  readonly resources: { resourceFor(p: ProcessIdentity): Resource; agentResource(): Resource };
  readonly scope: InstrumentationScope;
  readonly exportIntervalMillis: number;
  readonly exportTimeoutMillis: number;
  readonly maxSeriesPerInstrument: number;
  /** Processes with a live meter (default 256). */
  readonly maxProcesses?: number;
  /** A process meter with no measurement for this long is retired after a final export (default 5 intervals, at least 5 min). */
  readonly idleMillis?: number;
  readonly log: Logger;
  /** Where metrics go, for log lines. */
  readonly destination: string;
  readonly timers?: Timers;
}

interface ProcessMeter {
  readonly key: string;
  readonly tgid: number;
  readonly startTimeTicks: number | undefined;
  readonly histograms: ProcessHistograms;
  /** Kernel-aggregated instruments (TCP health, flows), made on first use. */
  aggregates: ProcessAggregates | undefined;
  lastRecordMs: number;
  /** Still in the process table (not retired). */
  live: boolean;
}

export class MetricsPipeline {
  readonly stats: MetricsStats = {
    recorded: 0,
    overflowed: 0,
    dataPointsExported: 0,
    failedExports: 0,
    failuresByReason: {},
    processesEvicted: 0,
    processesIdle: 0,
    cyclesSkipped: 0,
    retiredDropped: 0,
  };
  /** The agent's own MeterProvider (agent resource); see registerAgentMetrics. */
  readonly agentMeterProvider: MeterProvider;
  private readonly agentReader: PullReader;
  /** Process meters, least recently used first. */
  private readonly meters = new Map<string, ProcessMeter>();
  /** The meter of the last record: consecutive records of one process skip the key and the LRU move. */
  private lastMeter: ProcessMeter | undefined;
  /** Final collections of retired process meters, exported within RETIRED_FLUSH_MS or with the next cycle. */
  private retired: ResourceMetrics[] = [];
  private retiredTimer: unknown;
  private readonly temporality: AggregationTemporality;
  private readonly counterTemporality: AggregationTemporality;
  private readonly timers: Timers;
  private readonly maxProcesses: number;
  private readonly idleMillis: number;
  private timer: unknown;
  private cycle: Promise<void> | undefined;
  /** Run at the start of every collection: data kept elsewhere is brought in first. */
  private readonly collectHooks: (() => void)[] = [];
  private failing = false;
  private final: FinalMetricExport | undefined;
  private stopped = false;

  constructor(private readonly opts: MetricsPipelineOptions) {
    this.timers = opts.timers ?? realTimers;
    this.maxProcesses = Math.max(1, opts.maxProcesses ?? 256);
    this.idleMillis = opts.idleMillis ?? Math.max(5 * opts.exportIntervalMillis, 300_000);
    // The exporter's answer for histograms is fixed (it comes from its configuration).
    this.temporality = opts.exporter?.selectAggregationTemporality(InstrumentType.HISTOGRAM) ?? AggregationTemporality.CUMULATIVE;
    this.counterTemporality = opts.exporter?.selectAggregationTemporality(InstrumentType.COUNTER) ?? AggregationTemporality.CUMULATIVE;
    this.agentReader = this.newReader();
    this.agentMeterProvider = new MeterProvider({ resource: opts.resources.agentResource(), readers: [this.agentReader] });
  }

  get enabled(): boolean {
    return this.opts.exporter !== undefined;
  }

  /** Starts the periodic export (no-op without an exporter). */
  start(): void {
    if (!this.enabled || this.stopped || this.timer !== undefined) return;
    const tick = () => {
      this.timer = this.timers.setTimeout(() => {
        void this.collectAndExport().finally(() => {
          if (!this.stopped) tick();
        });
        // While the collector fails, try again soon (export-policy.ts): its return is seen within seconds, not an interval.
      }, this.failing ? Math.min(this.opts.exportIntervalMillis, METRIC_RETRY_INTERVAL_MS) : this.opts.exportIntervalMillis);
    };
    tick();
  }

  /** Records a record's measurements under its process's resource. */
  record(process: ProcessIdentity, measurements: readonly RecordMeasurement[]): void {
    if (!this.enabled || this.stopped || measurements.length === 0) return;
    const now = this.timers.now();
    const pm = this.meterFor(process, now);
    pm.lastRecordMs = now;
    this.stats.recorded += pm.histograms.record(measurements, now);
  }

  /**
   * Where kernel-aggregated measurements of a process go (TCP health, flows),
   * under its resource; undefined when metrics are not exported.
   */
  aggregatesFor(process: ProcessIdentity): ProcessAggregates | undefined {
    if (!this.enabled || this.stopped) return undefined;
    const now = this.timers.now();
    const pm = this.meterFor(process, now);
    pm.lastRecordMs = now;
    pm.aggregates ??= new ProcessAggregates({
      counterTemporality: this.counterTemporality,
      maxSeriesPerInstrument: this.opts.maxSeriesPerInstrument,
      onOverflow: this.onOverflow,
    });
    return pm.aggregates;
  }

  /** Runs `hook` at the start of every collection (it may record); a throw is logged once. */
  addCollectHook(hook: () => void): void {
    this.collectHooks.push(hook);
  }

  /** An aggregate (see ProcessHistograms.recordAggregated) under the process's resource. */
  recordAggregated(process: ProcessIdentity, instrument: InstrumentSpec, attributes: Attributes, agg: AggregatedHistogram): void {
    if (!this.enabled || this.stopped || agg.count <= 0) return;
    const now = this.timers.now();
    const pm = this.meterFor(process, now);
    pm.lastRecordMs = now;
    this.stats.recorded += pm.histograms.recordAggregated(instrument, attributes, agg, now);
  }

  /** The process exec'd or exited: export what it has and start afresh next time. */
  retire(process: ProcessIdentity): void {
    for (const pm of [...this.meters.values()]) {
      if (pm.tgid === process.tgid) this.retireMeter(pm);
    }
  }

  get processCount(): number {
    return this.meters.size;
  }

  /** One collection and export of every resource; concurrent calls share the cycle in progress. */
  collectAndExport(): Promise<void> {
    if (this.cycle) {
      this.stats.cyclesSkipped++;
      return this.cycle;
    }
    this.cycle = this.runCycle().finally(() => {
      this.cycle = undefined;
    });
    return this.cycle;
  }

  /** Exports everything now, within `timeoutMillis`. */
  async forceFlush(timeoutMillis = this.opts.exportTimeoutMillis): Promise<void> {
    if (!this.enabled) return;
    await raceTimeout(this.cycle ?? Promise.resolve(), timeoutMillis, this.timers);
    await raceTimeout(this.collectAndExport(), timeoutMillis, this.timers);
  }

  /** Final export within `timeoutMillis`, then closes the exporter. */
  async shutdown(timeoutMillis = this.opts.exportTimeoutMillis): Promise<void> {
    if (this.stopped) return;
    const deadline = this.timers.now() + timeoutMillis;
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    let final: { done: boolean; failedBefore: number; reasonsBefore: Record<string, number> } | undefined;
    if (this.enabled) {
      await raceTimeout(this.cycle ?? Promise.resolve(), timeoutMillis, this.timers);
      const f = (final = { done: false as boolean, failedBefore: this.stats.failedExports, reasonsBefore: { ...this.stats.failuresByReason } });
      await raceTimeout(
        this.collectAndExport().then(() => {
          f.done = true;
        }),
        Math.max(0, deadline - this.timers.now()),
        this.timers,
      );
    }
    this.stopped = true;
    if (this.retiredTimer !== undefined) this.timers.clearTimeout(this.retiredTimer);
    this.retiredTimer = undefined;
    for (const pm of this.meters.values()) pm.live = false;
    this.meters.clear();
    this.lastMeter = undefined;
    void this.agentMeterProvider.shutdown().catch(() => {});
    if (this.opts.exporter) await raceTimeout(this.opts.exporter.shutdown().catch(() => {}), Math.max(0, deadline - this.timers.now()), this.timers);
    if (final) this.judgeFinalExport(final, timeoutMillis);
  }

  /** How the final export at shutdown went; undefined before shutdown or without an exporter. */
  get finalExport(): FinalMetricExport | undefined {
    return this.final;
  }

  private judgeFinalExport(f: { done: boolean; failedBefore: number; reasonsBefore: Record<string, number> }, timeoutMillis: number): void {
    const failed = this.stats.failedExports - f.failedBefore;
    const reasons = Object.entries(this.stats.failuresByReason)
      .filter(([k, n]) => n > (f.reasonsBefore[k] ?? 0))
      .map(([k]) => k);
    this.final = !f.done ? { outcome: 'unfinished', failedRequests: failed, reasons } : failed > 0 ? { outcome: 'failed', failedRequests: failed, reasons } : { outcome: 'exported', failedRequests: 0, reasons: [] };
    const dest = this.opts.destination;
    if (this.final.outcome === 'unfinished') {
      this.opts.log.warn(`the final metric export to ${dest} did not finish within the shutdown bound (${timeoutMillis} ms for metrics): the last interval's metrics are lost`);
    } else if (this.final.outcome === 'failed') {
      this.opts.log.warn(`the final metric export to ${dest} failed at shutdown (${failed} request${failed === 1 ? '' : 's'}, ${reasons.join(', ')}): the last interval's metrics are lost`);
    }
  }

  private newReader(): PullReader {
    const exporter = this.opts.exporter;
    return new PullReader(exporter ? { aggregationTemporalitySelector: (t) => exporter.selectAggregationTemporality(t) } : {});
  }

  private meterFor(p: ProcessIdentity, now: number): ProcessMeter {
    // Already the most recently used: nothing to move.
    const last = this.lastMeter;
    if (last !== undefined && last.live && last.tgid === p.tgid && last.startTimeTicks === p.startTimeTicks) return last;
    const key = `${p.tgid}:${p.startTimeTicks ?? ''}`;
    let pm = this.meters.get(key);
    if (pm) {
      this.meters.delete(key);
      this.meters.set(key, pm);
    } else {
      pm = {
        key,
        tgid: p.tgid,
        startTimeTicks: p.startTimeTicks,
        histograms: new ProcessHistograms({
          resource: this.opts.resources.resourceFor(p),
          scope: this.opts.scope,
          temporality: this.temporality,
          maxSeriesPerInstrument: this.opts.maxSeriesPerInstrument,
          onOverflow: this.onOverflow,
        }),
        aggregates: undefined,
        lastRecordMs: now,
        live: true,
      };
      this.meters.set(key, pm);
      while (this.meters.size > this.maxProcesses) {
        const oldest = this.meters.values().next().value as ProcessMeter;
        this.stats.processesEvicted++;
        this.opts.log.warnOnce('otel-metric-process-evict', `more than ${this.maxProcesses} traced processes have metrics: the least recently active are exported and dropped`);
        this.retireMeter(oldest);
      }
    }
    this.lastMeter = pm;
    return pm;
  }

  private retireMeter(pm: ProcessMeter): void {
    this.meters.delete(pm.key);
    pm.live = false;
    if (this.lastMeter === pm) this.lastMeter = undefined;
    this.retired.push(collectMeter(pm, this.timers.now()));
    if (this.retired.length > MAX_RETIRED) {
      this.retired.shift();
      this.stats.retiredDropped++;
      this.opts.log.warnOnce(
        'otel-metric-retired-drop',
        `more than ${MAX_RETIRED} exited or idle processes' final metrics wait for export: the oldest are dropped (ebpf_otel.metric.retired_dropped)`,
      );
    }
    if (this.retiredTimer === undefined && this.opts.exporter && !this.stopped) {
      this.retiredTimer = this.timers.setTimeout(() => {
        this.retiredTimer = undefined;
        void this.flushRetired();
      }, RETIRED_FLUSH_MS);
    }
  }

  /** Exports the retired meters' final collections now, in one request. */
  private async flushRetired(): Promise<void> {
    const exporter = this.opts.exporter;
    if (!exporter || this.retired.length === 0) return;
    const batches = this.retired;
    this.retired = [];
    await this.exportAll(exporter, batches);
  }

  /**
   * As few requests as fit MAX_POINTS_PER_REQUEST points each (well under the
   * 4 MiB a gRPC server takes by default); one resource per request for an
   * exporter without exportMany.
   */
  private async exportAll(exporter: MetricExporter, batches: ResourceMetrics[]): Promise<void> {
    const perRequest = exporter.exportMany ? MAX_POINTS_PER_REQUEST : 0;
    let chunk: ResourceMetrics[] = [];
    let chunkPoints = 0;
    const send = () => {
      const rms = chunk;
      const n = chunkPoints;
      chunk = [];
      chunkPoints = 0;
      return this.exportOne((done) => (rms.length === 1 ? exporter.export(rms[0]!, done) : exporter.exportMany!(rms, done)), n);
    };
    for (const rm of batches) {
      const n = countDataPoints(rm);
      if (n === 0) continue;
      if (chunk.length > 0 && chunkPoints + n > perRequest) await send();
      chunk.push(rm);
      chunkPoints += n;
    }
    if (chunk.length > 0) await send();
  }

  /** Measurements were folded into otel.metric.overflow=true by an instrument's cardinality guard. */
  private readonly onOverflow = (instrument: string, measurements = 1, bound = this.opts.maxSeriesPerInstrument): void => {
    this.stats.overflowed += measurements;
    this.opts.log.warnOnce(
      `otel-metric-overflow-${instrument}`,
      `metric ${instrument}: more than ${bound} attribute sets for one process; further ones are folded into otel.metric.overflow=true`,
    );
  };

  private async runCycle(): Promise<void> {
    const exporter = this.opts.exporter;
    if (!exporter) return;
    for (const hook of this.collectHooks) {
      try {
        hook();
      } catch (e) {
        this.opts.log.warnOnce('otel-metric-collect-hook', `a metric source failed before collection: ${errorMessage(e)}`);
      }
    }
    const now = this.timers.now();
    for (const pm of [...this.meters.values()]) {
      if (now - pm.lastRecordMs >= this.idleMillis) {
        this.stats.processesIdle++;
        this.retireMeter(pm);
      }
    }
    const batches = this.retired;
    this.retired = [];
    for (const pm of this.meters.values()) batches.push(collectMeter(pm, now));
    try {
      batches.push((await this.agentReader.collect()).resourceMetrics);
    } catch {
      // the provider was shut down under us: nothing to export
    }
    await this.exportAll(exporter, batches);
  }

  private exportOne(send: (done: (result: ExportResult) => void) => void, points: number): Promise<void> {
    return new Promise((resolve) => {
      let settled = false;
      const finish = (ok: boolean, error?: unknown) => {
        if (settled) return;
        settled = true;
        this.timers.clearTimeout(guard);
        if (ok) {
          this.stats.dataPointsExported += points;
          if (this.failing) {
            this.failing = false;
            this.opts.log.info(`metric export to ${this.opts.destination} recovered`);
          }
        } else {
          this.stats.failedExports++;
          const reason = errorName(error);
          this.stats.failuresByReason[reason] = (this.stats.failuresByReason[reason] ?? 0) + 1;
          if (!this.failing) {
            this.failing = true;
            this.opts.log.warn(
              `cannot export metrics to ${this.opts.destination}: ${errorMessage(error)}; later failures are counted (ebpf_otel.metric.export_failures) until export recovers`,
            );
          }
        }
        resolve();
      };
      const guard = this.timers.setTimeout(() => finish(false, new Error(`metric export timed out after ${this.opts.exportTimeoutMillis} ms`)), this.opts.exportTimeoutMillis);
      try {
        send((result) => finish(result.code === 0, result.error));
      } catch (e) {
        finish(false, e);
      }
    });
  }
}

/** A process's record histograms and kernel aggregates, under its one resource and scope. */
function collectMeter(pm: ProcessMeter, nowMs: number): ResourceMetrics {
  const rm = pm.histograms.collect(nowMs);
  const extra = pm.aggregates?.collect(nowMs) ?? [];
  if (extra.length === 0) return rm;
  const scope = rm.scopeMetrics[0];
  if (scope) return { resource: rm.resource, scopeMetrics: [{ scope: scope.scope, metrics: [...scope.metrics, ...extra] }] };
  return { resource: rm.resource, scopeMetrics: [{ scope: pm.histograms.scope, metrics: extra }] };
}

function countDataPoints(rm: ResourceMetrics): number {
  let n = 0;
  for (const sm of rm.scopeMetrics) for (const m of sm.metrics) n += m.dataPoints.length;
  return n;
}

// ------------------------------------------------------------ agent health

/**
 * The agent's own counters, as totals since start (counters) or current
 * values (gauges), by the `field` of their AgentMetric: a number, or for a
 * metric with an attribute, a number per attribute value. The parts of the
 * agent each declare their metrics (src/agent/ assembles the list) and fill
 * their fields; this layer's own are TELEMETRY_METRICS.
 */
export type AgentHealth = Readonly<Record<string, number | Readonly<Record<string, number>> | undefined>>;

/** One of the agent's own metrics (ebpf_otel.*). */
export interface AgentMetric {
  /** Key in AgentHealth. */
  readonly field: string;
  readonly name: string;
  readonly kind: 'counter' | 'gauge';
  readonly unit: string;
  readonly description: string;
  /** For Record-valued fields: the attribute that carries the key. */
  readonly attribute?: string;
  /** Record keys of two values, "a|b": `attribute` carries a, this one b. */
  readonly secondAttribute?: string;
}

/**
 * The telemetry layer's own metrics. Names follow the OpenTelemetry naming
 * rules: a namespace, snake_case words, plural only for counts of things
 * ({unit}), no _total.
 */
export const TELEMETRY_METRICS: readonly AgentMetric[] = [
  { field: 'spansExported', name: 'ebpf_otel.span.exported', kind: 'counter', unit: '{span}', description: 'Spans accepted by the collector.' },
  { field: 'spansDroppedByReason', name: 'ebpf_otel.span.dropped', kind: 'counter', unit: '{span}', description: 'Spans dropped before export, per reason.', attribute: 'ebpf_otel.reason' },
  { field: 'spanExportFailuresByReason', name: 'ebpf_otel.span.export_failures', kind: 'counter', unit: '{span}', description: 'Spans whose export failed after retries, per error type.', attribute: 'error.type' },
  { field: 'spanQueueSize', name: 'ebpf_otel.span.queue_size', kind: 'gauge', unit: '{span}', description: 'Spans waiting for export now.' },
  { field: 'logsExported', name: 'ebpf_otel.log.exported', kind: 'counter', unit: '{log_record}', description: 'Log records accepted by the collector.' },
  { field: 'logsDroppedByReason', name: 'ebpf_otel.log.dropped', kind: 'counter', unit: '{log_record}', description: 'Log records dropped before export, per reason.', attribute: 'ebpf_otel.reason' },
  { field: 'logExportFailuresByReason', name: 'ebpf_otel.log.export_failures', kind: 'counter', unit: '{log_record}', description: 'Log records whose export failed after retries, per error type.', attribute: 'error.type' },
  { field: 'logQueueSize', name: 'ebpf_otel.log.queue_size', kind: 'gauge', unit: '{log_record}', description: 'Log records waiting for export now.' },
  { field: 'metricOverflows', name: 'ebpf_otel.metric.overflows', kind: 'counter', unit: '{measurement}', description: 'Measurements folded into otel.metric.overflow=true by the cardinality guard.' },
  { field: 'metricRetiredDropped', name: 'ebpf_otel.metric.retired_dropped', kind: 'counter', unit: '{process}', description: 'Final metrics of exited or idle processes dropped: too many were waiting for export.' },
  { field: 'metricExportFailuresByReason', name: 'ebpf_otel.metric.export_failures', kind: 'counter', unit: '{request}', description: 'Metric export requests that failed after retries, per error type.', attribute: 'error.type' },
  { field: 'resourcesEvicted', name: 'ebpf_otel.resource.evicted', kind: 'counter', unit: '{process}', description: 'Process resources evicted from the bounded cache.' },
];

/**
 * Registers the agent's health metrics on `provider`: observed from
 * `snapshot()` at each collection. Call it once per provider.
 */
export function registerAgentMetrics(provider: ApiMeterProvider, metrics: readonly AgentMetric[], snapshot: () => AgentHealth, scope?: InstrumentationScope): void {
  const meter = provider.getMeter(scope?.name ?? 'ebpf-otel-sidecar', scope?.version);
  const instruments = metrics.map((m) => ({
    spec: m,
    inst:
      m.kind === 'counter'
        ? meter.createObservableCounter(m.name, { unit: m.unit, description: m.description })
        : meter.createObservableGauge(m.name, { unit: m.unit, description: m.description }),
  }));
  meter.addBatchObservableCallback(
    (result) => {
      let h: AgentHealth;
      try {
        h = snapshot();
      } catch {
        return;
      }
      for (const { spec, inst } of instruments) {
        const v = h[spec.field];
        if (v === undefined) continue;
        if (typeof v === 'number') result.observe(inst, v);
        else if (spec.attribute && spec.secondAttribute) {
          for (const [k, n] of Object.entries(v)) {
            const bar = k.indexOf('|');
            result.observe(inst, n, { [spec.attribute]: k.slice(0, bar), [spec.secondAttribute]: k.slice(bar + 1) });
          }
        } else if (spec.attribute) for (const [k, n] of Object.entries(v)) result.observe(inst, n, { [spec.attribute]: k });
      }
    },
    instruments.map((i) => i.inst),
  );
}

