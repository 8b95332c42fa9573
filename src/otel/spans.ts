// TraceRecord -> ReadableSpan, built directly (no Tracer): the span processor
// and the OTLP serializer only need the ReadableSpan interface (sdk-trace 2.x:
// parentSpanContext and instrumentationScope replace 1.x's parentSpanId and
// instrumentationLibrary).

import { SpanKind, SpanStatusCode, TraceFlags, type Attributes, type HrTime, type SpanContext } from '@opentelemetry/api';
import { TraceState, type InstrumentationScope } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { TraceRecord } from '../correlate/trace-record';

/** OTel's default attribute count limit per span. */
export const MAX_SPAN_ATTRIBUTES = 128;

const NS_PER_S = 1_000_000_000n;

/** Wall-clock nanoseconds to OTel's [seconds, nanoseconds], exactly. */
export function toHrTime(wallNs: bigint): HrTime {
  const s = wallNs / NS_PER_S;
  return [Number(s), Number(wallNs - s * NS_PER_S)];
}

export interface SpanBuildContext {
  /** CLOCK_MONOTONIC ns -> wall-clock ns (WallClock.toWallNs). */
  readonly toWallNs: (monoNs: number) => bigint;
  readonly scope: InstrumentationScope;
}

/** The span of a sampled record. */
export function recordToSpan(tr: TraceRecord, resource: Resource, ctx: SpanBuildContext): ReadableSpan {
  const r = tr.record;
  const startNs = ctx.toWallNs(r.startNs);
  let endNs = ctx.toWallNs(r.endNs);
  if (endNs < startNs) endNs = startNs;
  const traceFlags = tr.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE;
  const traceState = tr.traceState ? new TraceState(tr.traceState) : undefined;
  const spanContext: SpanContext = { traceId: tr.traceId, spanId: tr.spanId, traceFlags, isRemote: false };
  if (traceState) spanContext.traceState = traceState;

  const attributes: Attributes = {};
  let count = 0;
  let dropped = 0;
  const put = (k: string, v: string | number | boolean) => {
    if (k in attributes) {
      attributes[k] = v;
    } else if (count < MAX_SPAN_ATTRIBUTES) {
      attributes[k] = v;
      count++;
    } else {
      dropped++;
    }
  };
  for (const k of Object.keys(r.attributes)) put(k, r.attributes[k]!);
  if (r.status === 'error' && r.errorType !== undefined) put('error.type', r.errorType);

  const span: {
    -readonly [K in keyof ReadableSpan]: ReadableSpan[K];
  } = {
    name: r.name,
    kind: r.kind === 'server' ? SpanKind.SERVER : SpanKind.CLIENT,
    spanContext: () => spanContext,
    startTime: toHrTime(startNs),
    endTime: toHrTime(endNs),
    duration: toHrTime(endNs - startNs),
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
