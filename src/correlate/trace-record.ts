// What the correlate layer hands to the OpenTelemetry layer: one L7 record
// with its place in a trace and the head-sampling decision.

import type { L7Record } from '../protocols/types';

export interface ProcessIdentity {
  readonly tgid: number;
  /** Process start time in clock ticks since boot (/proc/pid/stat field 22), when known: tells a reused pid apart. */
  readonly startTimeTicks?: number;
}

export interface TraceRecord {
  readonly record: L7Record;
  /** 32 lowercase hex digits. */
  readonly traceId: string;
  /** 16 lowercase hex digits. */
  readonly spanId: string;
  /** 16 lowercase hex digits; absent for a root span. */
  readonly parentSpanId?: string | undefined;
  readonly traceState?: string | undefined;
  /** Head decision, taken once per trace. Unsampled records still count in metrics. */
  readonly sampled: boolean;
  readonly process: ProcessIdentity;
}

/** The head sampler, as configured (OTEL_TRACES_SAMPLER). */
export interface Sampling {
  /**
   * Whether a trace is sampled. `parentSampled` is the sampled flag of a
   * context the request carried, undefined for a new trace.
   */
  decide(traceId: string, parentSampled: boolean | undefined): boolean;
}

export const alwaysSample: Sampling = { decide: () => true };
