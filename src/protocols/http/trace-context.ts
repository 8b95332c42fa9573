// W3C Trace Context (https://www.w3.org/TR/trace-context/) carried by a
// request: `traceparent` is taken only when it is exactly version 00 with
// lowercase hex and non-zero ids; anything else is ignored, never repaired.

import type { CarriedTraceContext } from '../types';

/** Longest tracestate kept (the W3C limit is 32 members; 512 characters is what we keep). */
export const MAX_TRACESTATE = 512;

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);
/** tracestate: printable ASCII, no control bytes. */
const TRACESTATE = /^[\x20-\x7e]*$/;

/**
 * `traceparent`: every value of the header (more than one is invalid).
 * `tracestate`: every value; several header lines are one comma-joined list.
 */
export function parseTraceContext(
  traceparent: readonly string[],
  tracestate: readonly string[],
): CarriedTraceContext | undefined {
  if (traceparent.length !== 1) return undefined;
  const m = TRACEPARENT.exec(traceparent[0]!.trim());
  if (m === null) return undefined;
  const traceId = m[1]!;
  const spanId = m[2]!;
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return undefined;
  const ctx = { traceId, spanId, traceFlags: parseInt(m[3]!, 16) };
  if (tracestate.length === 0) return ctx;
  const state = tracestate.map((s) => s.trim()).filter((s) => s !== '').join(',');
  if (state === '' || state.length > MAX_TRACESTATE || !TRACESTATE.test(state)) return ctx;
  return { ...ctx, traceState: state };
}
