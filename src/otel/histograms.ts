// Explicit-bucket histograms of one traced process's record measurements,
// collected into the @opentelemetry/sdk-metrics ResourceMetrics the official
// OTLP exporter takes: the same points, times, temporality and order the SDK
// would produce for the same measurements (test/otel/histograms.test.ts
// records into both and compares), at a fraction of the cost per measurement.
//
// Per measurement: the attribute set is resolved once per attributes object
// (measurements of one record usually share theirs), by a walk through a
// tree of Maps keyed by attribute name, then value, in the object's own key
// order: no string is built and nothing is sorted, which measured ~4x cheaper
// than a string key (building it, then hashing it in Map.get). A protocol
// builds its attribute sets in a fixed order, so one path stands for one set;
// the same set in another order is another path, normalised (sorted keys) once
// on first sight, which leads to the same set. Then one Map lookup per
// instrument (by set identity) and a binary search for the bucket.
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

import type { HrTime } from '@opentelemetry/api';
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
import type { Attributes, AttributeValue, InstrumentSpec, RecordMeasurement } from '../protocols/types';

export const OVERFLOW_ATTRIBUTE = 'otel.metric.overflow';

export interface ProcessHistogramsOptions {
  readonly resource: Resource;
  readonly scope: InstrumentationScope;
  readonly temporality: AggregationTemporality;
  readonly maxSeriesPerInstrument: number;
  /** `measurements` (default 1) were folded into the overflow series of `instrument`, whose bound is `bound`. */
  readonly onOverflow: (instrument: string, measurements?: number, bound?: number) => void;
}

/**
 * A histogram aggregated elsewhere (the kernel's syscall histograms): bucket
 * counts on the instrument's boundaries, their total and sum. The minimum is
 * not known; the maximum only when given.
 */
export interface AggregatedHistogram {
  /** One more than the instrument has boundaries. */
  readonly counts: readonly number[];
  readonly count: number;
  readonly sum: number;
  readonly max: number | undefined;
}

/** The histograms of one process (one resource, one scope). */
export class ProcessHistograms {
  private readonly instruments = new Map<string, InstrumentHistograms>();
  private readonly sets = new AttributeSets();
  /** The scope its points are collected under (as the SDK's meter would name it). */
  readonly scope: InstrumentationScope;
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
    // The set of the last attributes object: the cache lives for this call only, so an
    // attributes object changed between two records can never be given a stale set.
    let attributes: Attributes | undefined;
    let set: AttributeSet | undefined;
    for (const m of measurements) {
      const value = m.value;
      if (!(value >= 0)) continue;
      if (m.attributes !== attributes || set === undefined) {
        attributes = m.attributes;
        set = this.sets.resolve(attributes);
      }
      let inst = this.instruments.get(m.instrument.name);
      if (inst === undefined) {
        inst = new InstrumentHistograms(m.instrument, this.opts.temporality, m.instrument.maxSeries ?? this.opts.maxSeriesPerInstrument, this.sets);
        this.instruments.set(m.instrument.name, inst);
      }
      if (inst.record(value, set, nowMs)) this.opts.onOverflow(m.instrument.name);
      recorded++;
    }
    return recorded;
  }

  /**
   * Adds an aggregate to `instrument`'s series for `attributes` at `nowMs`,
   * under the same cardinality guard as record(). Throws when the counts do
   * not match the instrument's buckets (a programming error). Returns the
   * measurements (calls) it carried, 0 for an empty aggregate.
   */
  recordAggregated(instrument: InstrumentSpec, attributes: Attributes, agg: AggregatedHistogram, nowMs: number): number {
    if (agg.count <= 0) return 0;
    let inst = this.instruments.get(instrument.name);
    if (inst === undefined) {
      inst = new InstrumentHistograms(instrument, this.opts.temporality, instrument.maxSeries ?? this.opts.maxSeriesPerInstrument, this.sets);
      this.instruments.set(instrument.name, inst);
    }
    if (inst.recordAggregated(agg, this.sets.resolve(attributes), nowMs)) this.opts.onOverflow(instrument.name, agg.count, instrument.maxSeries);
    return agg.count;
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

  /** Attribute sets and paths remembered (for tests of the bounds). */
  get remembered(): { sets: number; paths: number } {
    return { sets: this.sets.size, paths: this.sets.paths };
  }

  /** Frozen attribute objects known by identity, and how often that table was emptied at its bound. */
  get frozenObjects(): { size: number; resets: number } {
    return { size: this.sets.byObjectSize, resets: this.sets.byObjectResets };
  }
}

/**
 * One attribute set of a process, whatever the key order it came in. Sets
 * some instrument admitted are registered (remembered); others are transient:
 * resolved again at each sight, so a flood of new sets cannot grow memory.
 */
interface AttributeSet {
  /** Sorted-key form: equal for equal sets. */
  readonly canonical: string;
  /** As first seen; a copy of its own once registered. */
  attributes: Attributes;
  registered: boolean;
}

/** A point in the path tree: the attributes walked so far. */
interface PathNode {
  /** The set whose attributes are exactly those walked. */
  set: AttributeSet | undefined;
  /** Next attribute name, then its value (Map's SameValueZero tells 200 from '200' and true from 'true'). */
  next: Map<string, Map<AttributeValue, PathNode>> | undefined;
}

/** Frozen attribute objects a process's sets remember by identity (each pins its object). */
export const FROZEN_OBJECTS_LIMIT = 1024;

/** The attribute sets of one process, found by the path of their attributes. */
class AttributeSets {
  private readonly root: PathNode = { set: undefined, next: undefined };
  private readonly byCanonical = new Map<string, AttributeSet>();
  /** Paths that lead to a set (one per registered set, plus other key orders). */
  paths = 0;
  /**
   * Registered sets by attributes object, for frozen objects only: a frozen
   * object cannot change and a registered set is never dropped, so the
   * object stands for its set. Protocols share one frozen object among the
   * records with the same values (http1 record.ts): one lookup, no walk.
   */
  private readonly byObject = new Map<Attributes, AttributeSet>();
  /** Times byObject was emptied at FROZEN_OBJECTS_LIMIT. */
  byObjectResets = 0;

  get byObjectSize(): number {
    return this.byObject.size;
  }

  get size(): number {
    return this.byCanonical.size;
  }

  /** The set of `attributes`: registered if known, else a transient one. */
  resolve(attributes: Attributes): AttributeSet {
    const frozen = Object.isFrozen(attributes);
    if (frozen) {
      const byObject = this.byObject.get(attributes);
      if (byObject !== undefined) return byObject;
    }
    // Attributes are plain data objects: for-in sees exactly their own keys.
    let node: PathNode | undefined = this.root;
    for (const k in attributes) {
      node = node.next?.get(k)?.get(attributes[k]!);
      if (node === undefined) break;
    }
    if (node?.set !== undefined) {
      if (frozen) this.rememberObject(attributes, node.set);
      return node.set;
    }
    // First sight of this path: the same set in another key order, or a new set.
    const canonical = canonicalKey(attributes);
    const known = this.byCanonical.get(canonical);
    if (known === undefined) return { canonical, attributes, registered: false };
    // Other spellings of known sets are remembered up to as many paths again as sets.
    if (this.paths < 2 * this.byCanonical.size) this.addPath(attributes, known);
    return known;
  }

  private rememberObject(attributes: Attributes, set: AttributeSet): void {
    if (this.byObject.size >= FROZEN_OBJECTS_LIMIT) {
      this.byObject.clear();
      this.byObjectResets++;
    }
    this.byObject.set(attributes, set);
  }

  /** Remembers `set` (an instrument admitted it) under its canonical form and its path. */
  register(set: AttributeSet): void {
    if (set.registered) return;
    set.registered = true;
    set.attributes = { ...set.attributes };
    this.byCanonical.set(set.canonical, set);
    this.addPath(set.attributes, set);
  }

  private addPath(attributes: Attributes, set: AttributeSet): void {
    let node = this.root;
    for (const k in attributes) {
      node.next ??= new Map();
      let values = node.next.get(k);
      if (values === undefined) node.next.set(k, (values = new Map()));
      const v = attributes[k]!;
      let child = values.get(v);
      if (child === undefined) values.set(v, (child = { set: undefined, next: undefined }));
      node = child;
    }
    if (node.set === undefined) this.paths++;
    node.set = set;
  }
}

/** One attribute set's histogram. */
interface Series {
  readonly attributes: Attributes;
  /** The overflow series (sets folded by the guard land here). */
  readonly overflow: boolean;
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
  /** Series by set (registered sets only; a folded set maps to the overflow series). */
  private readonly bySet = new Map<AttributeSet, Series>();
  /** Every series in order of creation (the cumulative export order). */
  private readonly series: Series[] = [];
  /** Delta: series with a measurement since the last collection, in order of their first one. */
  private active: Series[] = [];
  /** Delta: the series the last collection exported. */
  private exported: Series[] = [];
  private overflowSeries: Series | undefined;
  private admitted = 0;

  constructor(
    spec: InstrumentSpec,
    temporality: AggregationTemporality,
    private readonly maxSeries: number,
    private readonly sets: AttributeSets,
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
  }

  /** Returns true when the guard folded the measurement into the overflow series. */
  record(value: number, set: AttributeSet, nowMs: number): boolean {
    const s = this.bySet.get(set) ?? this.admit(set, nowMs);
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
    // A producer's own {otel.metric.overflow: true} shares the series but was not folded.
    return s.overflow && set.canonical !== OVERFLOW_KEY;
  }

  /** As record(), for an aggregate (see ProcessHistograms.recordAggregated). */
  recordAggregated(agg: AggregatedHistogram, set: AttributeSet, nowMs: number): boolean {
    if (agg.counts.length !== this.boundaries.length + 1) {
      throw new RangeError(`${this.descriptor.name}: ${agg.counts.length} bucket counts for ${this.boundaries.length + 1} buckets`);
    }
    const s = this.bySet.get(set) ?? this.admit(set, nowMs);
    if (!s.pending) {
      s.pending = true;
      if (this.delta) {
        s.start = millisToHrTime(nowMs);
        this.active.push(s);
      }
    }
    s.count += agg.count;
    s.sum += agg.sum;
    if (agg.max !== undefined) s.max = Math.max(agg.max, s.max);
    for (let i = 0; i < agg.counts.length; i++) s.counts[i]! += agg.counts[i]!;
    return s.overflow && set.canonical !== OVERFLOW_KEY;
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

  /** A set this instrument has no series for: admitted while there is room, else folded. */
  private admit(set: AttributeSet, nowMs: number): Series {
    if (set.canonical === OVERFLOW_KEY) {
      // The producer's own overflow set: the overflow series, not counted against the limit.
      this.sets.register(set);
      const s = this.overflow(nowMs);
      this.bySet.set(set, s);
      return s;
    }
    if (this.admitted < this.maxSeries) {
      this.admitted++;
      this.sets.register(set);
      const s = this.newSeries(set.attributes, false, nowMs);
      this.bySet.set(set, s);
      return s;
    }
    const s = this.overflow(nowMs);
    // Remembered only for sets another instrument admitted: memory stays bounded by admissions.
    if (set.registered) this.bySet.set(set, s);
    return s;
  }

  private overflow(nowMs: number): Series {
    return (this.overflowSeries ??= this.newSeries({ [OVERFLOW_ATTRIBUTE]: true }, true, nowMs));
  }

  private newSeries(attributes: Attributes, overflow: boolean, nowMs: number): Series {
    const s: Series = {
      attributes,
      overflow,
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
    this.series.push(s);
    return s;
  }
}

/**
 * A data point as the SDK's HistogramAggregator.toMetricData builds it. A
 * series fed only aggregates may not know its min or max: those are left
 * out (both are optional in OTLP) rather than sent as infinities.
 */
function point(s: Series, startTime: HrTime, endTime: HrTime, sum: number, boundaries: number[], counts: number[]): DataPoint<Histogram> {
  const value: Histogram =
    Number.isFinite(s.min) && Number.isFinite(s.max)
      ? { min: s.min, max: s.max, sum, buckets: { boundaries, counts }, count: s.count }
      : { ...(Number.isFinite(s.min) ? { min: s.min } : {}), ...(Number.isFinite(s.max) ? { max: s.max } : {}), sum, buckets: { boundaries, counts }, count: s.count };
  return { attributes: s.attributes, startTime, endTime, value };
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
 * An attribute set as a string, keys sorted: equal for equal sets whatever
 * their order. Every key and string value is length-prefixed and every value
 * typed, so no set can imitate another (`{a: 1}` and `{a: '1'}` differ).
 */
export function canonicalKey(attributes: Attributes): string {
  let out = '';
  for (const k of Object.keys(attributes).sort()) {
    const v = attributes[k]!;
    out += k.length + ':' + k;
    if (typeof v === 'string') out += 's' + v.length + ':' + v;
    else if (typeof v === 'number') out += 'n' + v + ';'; // a number's text has no ';'
    else out += v ? 't' : 'f';
  }
  return out;
}

const OVERFLOW_KEY = canonicalKey({ [OVERFLOW_ATTRIBUTE]: true });
