// Counter increments the kernel has already aggregated, per process
// (connections, bytes, resets...). Collected as the sdk-metrics MetricData
// the OTLP exporter takes, beside the histograms of histograms.ts, under the
// same resource. Histograms that arrive as bucket counts (connection
// lifetimes, syscall latencies) go to ProcessHistograms.recordAggregated.
//
// Temporality follows the SDK, as histograms.ts does:
// - cumulative: every series at every collection, from its first
//   measurement, with totals since then;
// - delta: only series with a measurement since the last collection, values
//   reset after each collection; the start time is the last collection for a
//   series exported then, else its first measurement in the interval.
//
// Cardinality: past `maxSeriesPerInstrument` attribute sets an instrument
// folds further sets into one series with only otel.metric.overflow=true,
// counted through onOverflow. Callers bound their own attributes first (the
// network metrics fold peers per process); this guard is the last line.

import type { HrTime } from '@opentelemetry/api';
import { ValueType } from '@opentelemetry/api';
import { millisToHrTime } from '@opentelemetry/core';
import {
  AggregationTemporality,
  DataPointType,
  InstrumentType,
  type DataPoint,
  type MetricDescriptor,
  type SumMetricData,
} from '@opentelemetry/sdk-metrics';
import type { Attributes } from '../protocols/types';
import { canonicalKey, OVERFLOW_ATTRIBUTE } from './histograms';

/** A monotonic counter (an OTLP Sum, monotonic). */
export interface SumInstrument {
  readonly kind: 'sum';
  readonly name: string;
  readonly unit: string;
  readonly description: string;
}

export interface ProcessAggregatesOptions {
  readonly counterTemporality: AggregationTemporality;
  readonly maxSeriesPerInstrument: number;
  /** A measurement was folded into the overflow series of `instrument`. */
  readonly onOverflow: (instrument: string) => void;
}

const OVERFLOW_KEY = canonicalKey({ [OVERFLOW_ATTRIBUTE]: true });

interface Series {
  readonly attributes: Attributes;
  /** Since the last collection. */
  value: number;
  /** Cumulative: what was exported last time. */
  total: number;
  start: HrTime;
  pending: boolean;
  reported: boolean;
}

class InstrumentSeries {
  readonly descriptor: MetricDescriptor;
  readonly delta: boolean;
  private readonly bySet = new Map<string, Series>();
  /** In order of creation: the cumulative export order. */
  private readonly series: Series[] = [];
  /** Delta: series with a measurement since the last collection. */
  private active: Series[] = [];
  private exported: Series[] = [];
  private overflowSeries: Series | undefined;
  private admitted = 0;

  constructor(
    readonly spec: SumInstrument,
    temporality: AggregationTemporality,
    private readonly maxSeries: number,
  ) {
    this.delta = temporality === AggregationTemporality.DELTA;
    // The SDK's descriptor for createCounter, which carries the instrument type and advice too.
    const descriptor = { name: spec.name, type: InstrumentType.COUNTER, description: spec.description, unit: spec.unit, valueType: ValueType.INT, advice: {} };
    this.descriptor = descriptor;
  }

  /**
   * The series of `attributes`, and whether the guard folded it. A set the
   * producer marked otel.metric.overflow=true itself (its own fold, which may
   * keep a bounded attribute such as a direction) gets its own series
   * outside the limit.
   */
  seriesFor(attributes: Attributes, nowMs: number): [Series, boolean] {
    const key = canonicalKey(attributes);
    const known = this.bySet.get(key);
    if (known !== undefined) return [known, false];
    const own = attributes[OVERFLOW_ATTRIBUTE] === true;
    if (own || this.admitted < this.maxSeries) {
      if (!own) this.admitted++;
      const s = this.newSeries({ ...attributes }, nowMs);
      this.bySet.set(key, s);
      return [s, false];
    }
    // Folded sets are not remembered: memory stays bounded by the admitted ones.
    if (this.overflowSeries === undefined) {
      // One series per attribute set: the producer's own {overflow: true}, if it came first.
      this.overflowSeries = this.bySet.get(OVERFLOW_KEY) ?? this.newSeries({ [OVERFLOW_ATTRIBUTE]: true }, nowMs);
      this.bySet.set(OVERFLOW_KEY, this.overflowSeries);
    }
    return [this.overflowSeries, true];
  }

  touch(s: Series, nowMs: number): void {
    if (s.pending) return;
    s.pending = true;
    if (this.delta) {
      s.start = millisToHrTime(nowMs);
      this.active.push(s);
    }
  }

  collect(end: HrTime, lastCollection: HrTime | undefined): SumMetricData | undefined {
    const points: DataPoint<number>[] = [];
    const emit = (s: Series, start: HrTime, value: number) => points.push({ attributes: s.attributes, startTime: start, endTime: end, value });
    if (this.delta) {
      for (const s of this.active) {
        emit(s, s.reported && lastCollection !== undefined ? lastCollection : s.start, s.value);
        s.value = 0;
        s.pending = false;
      }
      for (const s of this.exported) s.reported = false;
      for (const s of this.active) s.reported = true;
      this.exported = this.active;
      this.active = [];
    } else {
      for (const s of this.series) {
        s.total += s.value;
        s.value = 0;
        s.pending = false;
        emit(s, s.start, s.total);
      }
    }
    if (points.length === 0) return undefined;
    const temporality = this.delta ? AggregationTemporality.DELTA : AggregationTemporality.CUMULATIVE;
    return { descriptor: this.descriptor, aggregationTemporality: temporality, dataPointType: DataPointType.SUM, isMonotonic: true, dataPoints: points };
  }

  private newSeries(attributes: Attributes, nowMs: number): Series {
    const s: Series = {
      attributes,
      value: 0,
      total: 0,
      start: millisToHrTime(nowMs),
      pending: false,
      reported: false,
    };
    this.series.push(s);
    return s;
  }
}

/** The kernel-aggregated instruments of one process. */
export class ProcessAggregates {
  private readonly instruments = new Map<string, InstrumentSeries>();
  private lastCollection: HrTime | undefined;

  constructor(private readonly opts: ProcessAggregatesOptions) {}

  /** Adds `value` (>= 0) to a counter. Zero, negative and NaN values are ignored. */
  add(spec: SumInstrument, attributes: Attributes, value: number, nowMs: number): void {
    if (!(value > 0)) return;
    const inst = this.instrument(spec);
    const [s, folded] = inst.seriesFor(attributes, nowMs);
    if (folded) this.opts.onOverflow(spec.name);
    inst.touch(s, nowMs);
    s.value += value;
  }

  /** The points due at `nowMs`, in order of first use of each instrument. */
  collect(nowMs: number): SumMetricData[] {
    const end = millisToHrTime(nowMs);
    const out: SumMetricData[] = [];
    for (const inst of this.instruments.values()) {
      const m = inst.collect(end, this.lastCollection);
      if (m !== undefined) out.push(m);
    }
    this.lastCollection = end;
    return out;
  }

  private instrument(spec: SumInstrument): InstrumentSeries {
    let inst = this.instruments.get(spec.name);
    if (inst === undefined) {
      inst = new InstrumentSeries(spec, this.opts.counterTemporality, this.opts.maxSeriesPerInstrument);
      this.instruments.set(spec.name, inst);
    } else if (inst.spec !== spec && inst.spec.unit !== spec.unit) {
      throw new Error(`instrument ${spec.name} used with unit ${spec.unit} and with ${inst.spec.unit}`);
    }
    return inst;
  }
}
