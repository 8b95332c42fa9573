// The events the agent reports that are not spans (slow syscalls first): what
// the rest of the agent hands to Telemetry.emitLog, one OTLP LogRecord each.
// The process's resource is the one its spans and metrics have.
//
// Log data model: https://opentelemetry.io/docs/specs/otel/logs/data-model/

import type { ProcessIdentity } from '../correlate/trace-record';

/** The severities the agent uses: the data model's short names, each the first number of its range. */
export type LogSeverity = 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR' | 'FATAL';

/** SeverityNumber of each severity (logs.proto SEVERITY_NUMBER_TRACE = 1, DEBUG = 5, ...). */
export const SEVERITY_NUMBER: Readonly<Record<LogSeverity, number>> = { TRACE: 1, DEBUG: 5, INFO: 9, WARN: 13, ERROR: 17, FATAL: 21 };

/** An AnyValue: a body, or an attribute's value (log attributes may be any value, maps and arrays included). */
export type LogValue = string | number | boolean | Uint8Array | null | readonly LogValue[] | { readonly [key: string]: LogValue };

/** Attributes a log record keeps (the SDK's LogRecordLimits default); more are counted in dropped_attributes_count. */
export const MAX_LOG_ATTRIBUTES = 128;

export interface LogRecord extends ProcessIdentity {
  /** When it happened: CLOCK_MONOTONIC ns, the kernel's clock (as L7 records' times). */
  readonly timeNs: number;
  readonly severity: LogSeverity;
  /**
   * event_name (OTLP 1.5+): what kind of event this is; records of one name
   * share one schema of attributes and body. Presence makes the record an event.
   */
  readonly eventName?: string;
  readonly body?: LogValue;
  readonly attributes?: Readonly<Record<string, LogValue>>;
  /** The trace it happened in, when known: 32 hex digits. */
  readonly traceId?: string;
  /** The span it happened in (16 hex digits); only with `traceId`. */
  readonly spanId?: string;
  /** Whether that trace is sampled (the W3C sampled flag in flags). */
  readonly sampled?: boolean;
}

/** A LogRecord as queued for export: with when the agent took it. */
export interface ObservedLogRecord {
  readonly record: LogRecord;
  /** observed_time_unix_nano, as CLOCK_MONOTONIC ns. */
  readonly observedNs: number;
}
