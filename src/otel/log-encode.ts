// Log records straight to an OTLP ExportLogsServiceRequest, one per batch,
// on the skeleton otlp-common.ts shares with spans. They decode to what the
// SDK's ProtobufLogsSerializer makes of the same records
// (test/otel/log-encode.test.ts checks it with the official schema).
// Zero-valued scalar fields are left out, as proto3 allows.
//
// Schema: opentelemetry-proto collector/logs/v1/logs_service.proto,
// logs/v1/logs.proto (event_name = 12 since 1.5.0).

import type { InstrumentationScope } from '@opentelemetry/core';
import type { Uint64Parts } from '../capture/clock';
import { MAX_LOG_ATTRIBUTES, SEVERITY_NUMBER, type ObservedLogRecord } from './log-record';
import { anyValue, keyValue, RequestEncoder, SCOPE_X_ITEM } from './otlp-common';
import type { SpanClock } from './spans';

// Field tags: (field number << 3) | wire type (0 varint, 1 fixed64, 2 length-delimited, 5 fixed32).
const SCOPE_LOGS_LOG_RECORDS = SCOPE_X_ITEM; // ScopeLogs.log_records = 2
const LOG_TIME = 0x09; // time_unix_nano = 1, fixed64
const LOG_SEVERITY_NUMBER = 0x10; // 2
const LOG_SEVERITY_TEXT = 0x1a; // 3
const LOG_BODY = 0x2a; // 5 (4 is reserved)
const LOG_ATTRIBUTES = 0x32; // 6
const LOG_DROPPED_ATTRIBUTES = 0x38; // 7
const LOG_FLAGS = 0x45; // 8, fixed32
const LOG_TRACE_ID = 0x4a; // 9
const LOG_SPAN_ID = 0x52; // 10
const LOG_OBSERVED_TIME = 0x59; // observed_time_unix_nano = 11, fixed64
const LOG_EVENT_NAME = 0x62; // 12

const TRACE_FLAGS_SAMPLED = 0x01;

const validTime = (ns: number) => Number.isInteger(ns) && ns >= 0;

/** Encodes batches of log records; keeps buffers and resource encodings between batches. */
export class LogEncoder extends RequestEncoder<ObservedLogRecord> {
  private readonly time: Uint64Parts = { hi: 0, lo: 0 };

  constructor(
    scope: InstrumentationScope,
    private readonly clock: SpanClock,
  ) {
    super(scope);
  }

  /** ScopeLogs.log_records, tag included; false (nothing written) when the record cannot be encoded as it is. */
  protected item(o: ObservedLogRecord): boolean {
    const r = o.record;
    const severity = SEVERITY_NUMBER[r.severity];
    if (severity === undefined || !validTime(r.timeNs) || !validTime(o.observedNs)) return false;
    if (r.spanId !== undefined && r.traceId === undefined) return false;
    const w = this.w;
    const at0 = w.pos;
    w.ensure(1);
    w.byte(SCOPE_LOGS_LOG_RECORDS);
    // A log record is usually 100 bytes to 16 KiB: a two-byte length.
    const at = w.begin(2);
    const t = this.time;
    this.clock.toWallNs64(r.timeNs, t);
    w.ensure(1);
    w.byte(LOG_TIME);
    w.fixed64(t.lo, t.hi);
    w.ensure(3);
    w.byte(LOG_SEVERITY_NUMBER);
    w.byte(severity);
    w.byte(LOG_SEVERITY_TEXT);
    w.string(r.severity);
    if (r.body !== undefined) {
      w.ensure(1);
      w.byte(LOG_BODY);
      const bodyAt = w.begin(1);
      anyValue(w, r.body);
      w.end(bodyAt, 1);
    }
    const attrs = r.attributes;
    let dropped = 0;
    if (attrs) {
      let kept = 0;
      for (const k in attrs) {
        if (!Object.prototype.hasOwnProperty.call(attrs, k)) continue;
        if (kept >= MAX_LOG_ATTRIBUTES) dropped++;
        else {
          kept++;
          keyValue(w, LOG_ATTRIBUTES, k, attrs[k]);
        }
      }
    }
    if (dropped > 0) {
      w.ensure(1);
      w.byte(LOG_DROPPED_ATTRIBUTES);
      w.varint32(dropped);
    }
    if (r.traceId !== undefined) {
      if (r.sampled) {
        w.ensure(1);
        w.byte(LOG_FLAGS);
        w.fixed32(TRACE_FLAGS_SAMPLED);
      }
      w.ensure(2);
      w.byte(LOG_TRACE_ID);
      w.byte(16);
      if (!w.hex(r.traceId, 16)) return this.abandon(at0);
      if (r.spanId !== undefined) {
        w.ensure(2);
        w.byte(LOG_SPAN_ID);
        w.byte(8);
        if (!w.hex(r.spanId, 8)) return this.abandon(at0);
      }
    }
    this.clock.toWallNs64(o.observedNs, t);
    w.ensure(1);
    w.byte(LOG_OBSERVED_TIME);
    w.fixed64(t.lo, t.hi);
    if (r.eventName) {
      w.ensure(1);
      w.byte(LOG_EVENT_NAME);
      w.string(r.eventName);
    }
    w.end(at, 2);
    return true;
  }
}
