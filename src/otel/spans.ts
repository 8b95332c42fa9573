// TraceRecord -> ReadableSpan, built directly (no Tracer): the span processor
// and the OTLP serializer only need the ReadableSpan interface (sdk-trace 2.x:
// parentSpanContext and instrumentationScope replace 1.x's parentSpanId and
// instrumentationLibrary).

import { SpanKind, SpanStatusCode, TraceFlags, type Attributes, type HrTime, type SpanContext } from '@opentelemetry/api';
import { TraceState, type InstrumentationScope } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { TraceRecord } from '../correlate/trace-record';
import { addOffset64, uint64Parts, type Uint64Parts } from '../capture/clock';

/** OTel's default attribute count limit per span. */
export const MAX_SPAN_ATTRIBUTES = 128;

const NS_PER_S = 1_000_000_000n;

/** Wall-clock nanoseconds to OTel's [seconds, nanoseconds], exactly. */
export function toHrTime(wallNs: bigint): HrTime {
  const s = wallNs / NS_PER_S;
  return [Number(s), Number(wallNs - s * NS_PER_S)];
}

export interface SpanBuildContext {
  /** CLOCK_MONOTONIC ns -> wall-clock HrTime, exactly (WallClock.toHrTime). */
  readonly toHrTime: (monoNs: number) => HrTime;
  readonly scope: InstrumentationScope;
}

/** A fixed-offset converter (tests, replays): monotonic ns + offset, as HrTime. */
export function fixedOffsetHrTime(offsetNs: bigint): (monoNs: number) => HrTime {
  return (monoNs) => toHrTime(BigInt(monoNs) + offsetNs);
}

/** CLOCK_MONOTONIC ns -> wall clock, both ways spans need it, exactly (capture/clock.ts WallClock has both). */
export interface SpanClock {
  /** As HrTime, for ReadableSpans (console output). */
  toHrTime(monoNs: number): HrTime;
  /** As the halves of the uint64 wall-clock ns, into `out` (OTLP fixed64 times; no allocation). */
  toWallNs64(monoNs: number, out: Uint64Parts): void;
}

/** A fixed-offset SpanClock (tests, replays). */
export function fixedOffsetClock(offsetNs: bigint): SpanClock {
  const offset = uint64Parts(offsetNs);
  return {
    toHrTime: fixedOffsetHrTime(offsetNs),
    toWallNs64: (monoNs, out) => addOffset64(monoNs, offset, out),
  };
}

/** A non-negative nanosecond count as HrTime, exactly (below 2^53). */
function durationHrTime(ns: number): HrTime {
  const s = Math.floor(ns / 1e9);
  return [s, ns - s * 1e9];
}

/** The span of a sampled record. */
export function recordToSpan(tr: TraceRecord, resource: Resource, ctx: SpanBuildContext): ReadableSpan {
  const r = tr.record;
  const endMono = r.endNs < r.startNs ? r.startNs : r.endNs;
  const traceFlags = tr.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE;
  const traceState = tr.traceState ? new TraceState(tr.traceState) : undefined;
  const spanContext: SpanContext = { traceId: tr.traceId, spanId: tr.spanId, traceFlags, isRemote: false };
  if (traceState) spanContext.traceState = traceState;

  // A record's attributes never change after it is made: the span shares them
  // unless it must add error.type or drop past the limit.
  let attributes: Attributes = r.attributes;
  let dropped = 0;
  let count = 0;
  for (const _ in r.attributes) count++;
  const addErrorType = r.status === 'error' && r.errorType !== undefined && r.attributes['error.type'] !== r.errorType;
  if (count > MAX_SPAN_ATTRIBUTES || addErrorType) {
    attributes = {};
    let kept = 0;
    for (const k in r.attributes) {
      if (kept < MAX_SPAN_ATTRIBUTES) {
        attributes[k] = r.attributes[k]!;
        kept++;
      } else dropped++;
    }
    if (addErrorType) {
      if ('error.type' in attributes || kept < MAX_SPAN_ATTRIBUTES) attributes['error.type'] = r.errorType!;
      else dropped++;
    }
  }

  const span: {
    -readonly [K in keyof ReadableSpan]: ReadableSpan[K];
  } = {
    name: r.name,
    kind: r.kind === 'server' ? SpanKind.SERVER : SpanKind.CLIENT,
    spanContext: () => spanContext,
    startTime: ctx.toHrTime(r.startNs),
    endTime: ctx.toHrTime(endMono),
    duration: durationHrTime(endMono - r.startNs),
    status:
      r.status === 'error'
        ? r.statusMessage !== undefined
          ? { code: SpanStatusCode.ERROR, message: r.statusMessage }
          : { code: SpanStatusCode.ERROR }
        : { code: SpanStatusCode.UNSET },
    attributes,
    links: [],
    events: [],
    ended: true,
    resource,
    instrumentationScope: ctx.scope,
    droppedAttributesCount: dropped,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  };
  if (tr.parentSpanId !== undefined) {
    // A server span's parent is the caller's span (another process): remote.
    // A client span's parent is a span of the same process: local.
    const parent: SpanContext = {
      traceId: tr.traceId,
      spanId: tr.parentSpanId,
      traceFlags,
      isRemote: r.kind === 'server',
    };
    if (traceState) parent.traceState = traceState;
    span.parentSpanContext = parent;
  }
  return span;
}

/** Nanoseconds of an HrTime, for display. */
export function hrTimeToNs(t: HrTime): bigint {
  return BigInt(t[0]) * NS_PER_S + BigInt(t[1]);
}
