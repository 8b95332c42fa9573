// Explicit-bucket histograms of one traced process's record measurements,
// collected into the @opentelemetry/sdk-metrics ResourceMetrics the official
// OTLP exporter takes: the same points, times, temporality and order the SDK
// would produce for the same measurements (test/otel/histograms.test.ts
// records into both and compares), at a fraction of the cost per measurement.
//
// Per measurement: one series key per attributes object (measurements of one
// record usually share theirs), one Map lookup per instrument and one per
// series, a binary search for the bucket. The key is the attributes in their
// own key order, not sorted: a protocol builds its attribute sets in a fixed
// order, so one key string stands for one set. A set seen in another order
// gets another key string, which is normalised (sorted) once, on first sight,
// and from then on maps to the same series.
//
// Temporality follows the SDK exactly:
// - cumulative: every series is exported at every collection, start time is
//   its first measurement, totals are kept; the exported sum is the previous
//   one plus this interval's, as the SDK merges them (so float sums agree to
//   the last bit);
// - delta: only series with a measurement since the last collection are
//   exported, in the order of their first measurement in the interval; the
//   start time is the last collection for a series exported then, else its
//   first measurement in the interval; values reset after each collection.
//
// The cardinality guard is part of the aggregation: past
// `maxSeriesPerInstrument` attribute sets an instrument folds further sets
// into one series with only otel.metric.overflow=true (the SDK's own overflow
// attribute). Sets once admitted stay admitted until the process is retired.

import type { Attributes, HrTime } from '@opentelemetry/api';
import { ValueType } from '@opentelemetry/api';
import { millisToHrTime, type InstrumentationScope } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  DataPointType,
  InstrumentType,
  type DataPoint,
  type Histogram,
  type HistogramMetricData,
  type MetricDescriptor,
  type ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import type { InstrumentSpec, RecordMeasurement } from '../protocols/types';

export const OVERFLOW_ATTRIBUTE = 'otel.metric.overflow';

export interface ProcessHistogramsOptions {
  readonly resource: Resource;
  readonly scope: InstrumentationScope;
  readonly temporality: AggregationTemporality;
  readonly maxSeriesPerInstrument: number;
  /** A measurement was folded into the overflow series of `instrument`. */
  readonly onOverflow: (instrument: string) => void;
}

/** The histograms of one process (one resource, one scope). */
export class ProcessHistograms {
  private readonly instruments = new Map<string, InstrumentHistograms>();
  private readonly scope: InstrumentationScope;
  /** Delta: when the previous collection ran (the start time of series it exported). */
  private lastCollection: HrTime | undefined;

  constructor(private readonly opts: ProcessHistogramsOptions) {
    // The SDK's meter scope (MeterProvider.getMeter(name, version)): version '' when absent, schemaUrl present.
    this.scope = { name: opts.scope.name, version: opts.scope.version ?? '', schemaUrl: opts.scope.schemaUrl } as InstrumentationScope;
  }

  /**
   * Records one L7 record's measurements at `nowMs`; returns how many were
   * recorded. Negative and NaN values are skipped, as the SDK skips them (a
   * histogram takes no negative value; NaN falls in no bucket).
   */
  record(measurements: readonly RecordMeasurement[], nowMs: number): number {
    let recorded = 0;
    // The key of the last attributes object: the cache lives for this call only, so an
    // attributes object changed between two records can never be given a stale key.
    let attributes: Attributes | undefined;
    let key = '';
    for (const m of measurements) {
      const value = m.value;
      if (!(value >= 0)) continue;
      if (m.attributes !== attributes) {
        attributes = m.attributes;
        key = seriesKey(attributes);
      }
      let inst = this.instruments.get(m.instrument.name);
      if (inst === undefined) {
        inst = new InstrumentHistograms(m.instrument, this.opts.temporality, this.opts.maxSeriesPerInstrument);
        this.instruments.set(m.instrument.name, inst);
      }
      if (inst.record(value, key, attributes, nowMs)) this.opts.onOverflow(m.instrument.name);
      recorded++;
    }
    return recorded;
  }

  /** The points due at `nowMs`, as the SDK's MetricReader.collect() would give them. */
  collect(nowMs: number): ResourceMetrics {
    const end = millisToHrTime(nowMs);
    const metrics: HistogramMetricData[] = [];
    for (const inst of this.instruments.values()) {
      const m = inst.collect(end, this.lastCollection);
      if (m !== undefined) metrics.push(m);
    }
    this.lastCollection = end;
    return { resource: this.opts.resource, scopeMetrics: metrics.length > 0 ? [{ scope: this.scope, metrics }] : [] };
  }
}

/** One attribute set's histogram. */
interface Series {
  readonly attributes: Attributes;
  /** Bucket counts: since the start (cumulative) or since the last collection (delta). */
  readonly counts: number[];
  count: number;
  /** Since the last collection (both temporalities; see `total`). */
  sum: number;
  /** Cumulative: the sum exported last time. */
  total: number;
  min: number;
  max: number;
  /** Cumulative: first measurement; delta: first measurement since the last collection. */
  start: HrTime;
  /** Has a measurement since the last collection. */
  pending: boolean;
  /** Delta: was exported by the last collection. */
  reported: boolean;
}

class InstrumentHistograms {
  private readonly descriptor: MetricDescriptor;
  private readonly boundaries: number[];
  private readonly delta: boolean;
  /** Series by key as the producer spelled it (raw key order); aliases and folded keys bounded by `maxKeys`. */
  private readonly byKey = new Map<string, Series>();
  /** Keys (raw) whose sets were folded into overflow. */
  private readonly folded = new Set<string>();
  /** Series by canonical (sorted) key: one per attribute set. */
  private readonly byCanonicalKey = new Map<string, Series>();
  /** Every series in order of creation (the cumulative export order). */
  private readonly series: Series[] = [];
  /** Delta: series with a measurement since the last collection, in order of their first one. */
  private active: Series[] = [];
  /** Delta: the series the last collection exported. */
  private exported: Series[] = [];
  private admitted = 0;
  private readonly maxKeys: number;

  constructor(
    spec: InstrumentSpec,
    temporality: AggregationTemporality,
    private readonly maxSeries: number,
  ) {
    // As the SDK's ExplicitBucketHistogramAggregation: sorted, without infinities.
    const sorted = [...spec.boundaries].sort((a, b) => a - b);
    const inf = sorted.indexOf(Infinity);
    this.boundaries = sorted.slice(sorted.lastIndexOf(-Infinity) + 1, inf === -1 ? undefined : inf);
    // The SDK's descriptor for createHistogram(name, { unit, description, advice }), which carries its type and advice too.
    const descriptor = {
      name: spec.name,
      type: InstrumentType.HISTOGRAM,
      description: spec.description,
      unit: spec.unit,
      valueType: ValueType.DOUBLE,
      advice: { explicitBucketBoundaries: [...spec.boundaries] },
    };
    this.descriptor = descriptor;
    this.delta = temporality === AggregationTemporality.DELTA;
    this.maxKeys = 2 * maxSeries + 1;
  }

  /** Returns true when the measurement went to the overflow series. */
  record(value: number, key: string, attributes: Attributes, nowMs: number): boolean {
    let s = this.byKey.get(key);
    let overflowed = false;
    if (s === undefined) {
      if (this.folded.has(key)) {
        s = this.overflowSeries(nowMs);
        overflowed = true;
      } else {
        const found = this.firstSight(key, attributes, nowMs);
        s = found.series;
        overflowed = found.overflowed;
      }
    }
    if (!s.pending) {
      s.pending = true;
      if (this.delta) {
        s.start = millisToHrTime(nowMs);
        this.active.push(s);
      }
    }
    s.count++;
    s.sum += value;
    s.min = Math.min(value, s.min);
    s.max = Math.max(value, s.max);
    s.counts[bucketIndex(this.boundaries, value)]!++;
    return overflowed;
  }

  collect(end: HrTime, lastCollection: HrTime | undefined): HistogramMetricData | undefined {
    const dataPoints: DataPoint<Histogram>[] = [];
    if (this.delta) {
      for (const s of this.active) {
        dataPoints.push(point(s, s.reported && lastCollection !== undefined ? lastCollection : s.start, end, s.sum, this.boundaries, s.counts.slice()));
        s.counts.fill(0);
        s.count = 0;
        s.sum = 0;
        s.min = Infinity;
        s.max = -Infinity;
        s.pending = false;
      }
      for (const s of this.exported) s.reported = false;
      for (const s of this.active) s.reported = true;
      this.exported = this.active;
      this.active = [];
    } else {
      for (const s of this.series) {
        s.total += s.sum;
        s.sum = 0;
        s.pending = false;
        dataPoints.push(point(s, s.start, end, s.total, this.boundaries, s.counts.slice()));
      }
    }
    if (dataPoints.length === 0) return undefined;
    return {
      descriptor: this.descriptor,
      aggregationTemporality: this.delta ? AggregationTemporality.DELTA : AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.HISTOGRAM,
      dataPoints,
    };
  }

  /** A key not met before: the set's series (found by canonical key, or new), or overflow. */
  private firstSight(key: string, attributes: Attributes, nowMs: number): { series: Series; overflowed: boolean } {
    const canonical = canonicalKey(attributes);
    let s = this.byCanonicalKey.get(canonical);
    if (s === undefined && this.admitted < this.maxSeries) {
      s = this.newSeries(canonical, { ...attributes }, nowMs);
      this.admitted++;
    }
    if (s !== undefined) {
      // The producer's own spelling is always kept for an admitted set; other spellings while there is room.
      if (key === canonical || this.byKey.size + this.folded.size < this.maxKeys) this.byKey.set(key, s);
      return { series: s, overflowed: false };
    }
    if (this.byKey.size + this.folded.size < this.maxKeys) this.folded.add(key);
    return { series: this.overflowSeries(nowMs), overflowed: true };
  }

  private overflowSeries(nowMs: number): Series {
    return this.byCanonicalKey.get(OVERFLOW_KEY) ?? this.newSeries(OVERFLOW_KEY, { [OVERFLOW_ATTRIBUTE]: true }, nowMs);
  }

  private newSeries(canonical: string, attributes: Attributes, nowMs: number): Series {
    const s: Series = {
      attributes,
      counts: new Array<number>(this.boundaries.length + 1).fill(0),
      count: 0,
      sum: 0,
      total: 0,
      min: Infinity,
      max: -Infinity,
      start: millisToHrTime(nowMs),
      pending: false,
      reported: false,
    };
    this.byCanonicalKey.set(canonical, s);
    this.series.push(s);
    return s;
  }
}

/** A data point as the SDK's HistogramAggregator.toMetricData builds it. */
function point(s: Series, startTime: HrTime, endTime: HrTime, sum: number, boundaries: number[], counts: number[]): DataPoint<Histogram> {
  return {
    attributes: s.attributes,
    startTime,
    endTime,
    value: { min: s.min, max: s.max, sum, buckets: { boundaries, counts }, count: s.count },
  };
}

/** The first boundary >= value (upper bounds are inclusive), or the overflow bucket: the SDK's binarySearchUB. */
function bucketIndex(boundaries: readonly number[], value: number): number {
  let lo = 0;
  let hi = boundaries.length - 1;
  let found = boundaries.length;
  while (hi >= lo) {
    const mid = (lo + hi) >>> 1;
    if (boundaries[mid]! < value) lo = mid + 1;
    else {
      found = mid;
      hi = mid - 1;
    }
  }
  return found;
}

/**
 * A series key for an attribute set, in the set's own key order. Every key and
 * string value is length-prefixed and every value typed, so no set can imitate
 * another (`{a: 1}` and `{a: '1'}` differ).
 */
export function seriesKey(attributes: Attributes): string {
  let out = '';
  const keys = Object.keys(attributes);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    out = appendEntry(out, k, attributes[k]);
  }
  return out;
}

/** The series key with keys sorted: equal for equal sets whatever their order. */
export function canonicalKey(attributes: Attributes): string {
  let out = '';
  for (const k of Object.keys(attributes).sort()) out = appendEntry(out, k, attributes[k]);
  return out;
}

const OVERFLOW_KEY = canonicalKey({ [OVERFLOW_ATTRIBUTE]: true });

function appendEntry(out: string, k: string, v: unknown): string {
  out += k.length + ':' + k;
  switch (typeof v) {
    case 'string':
      return out + 's' + v.length + ':' + v;
    case 'number':
      return out + 'n' + v + ';'; // a number's text has no ';'
    case 'boolean':
      return out + (v ? 't' : 'f');
    default: {
      // Arrays (rare in metric attributes); undefined and null as the SDK's hash has them, alike.
      const text = v == null ? '' : JSON.stringify(v);
      return out + 'j' + text.length + ':' + text;
    }
  }
}
