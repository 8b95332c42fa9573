// TraceRecords straight to OTLP protobuf bytes: each span when its record is
// queued (RequestEncoder.append), one ExportTraceServiceRequest per batch of
// them, without building ReadableSpans or running the SDK serializer.
// The spans are the ones spans.ts's recordToSpan describes (same attribute
// limit, error.type, status, flags), and decode to what the SDK's
// ProtobufTraceSerializer makes of those (test/otel/otlp-encode.test.ts checks
// it). Zero-valued scalar fields are left out, as proto3 allows.
//
// The request's skeleton (resources, scope), AnyValue and the response are
// otlp-common.ts's, shared with the log records.
//
// Schema: opentelemetry-proto collector/trace/v1/trace_service.proto,
// trace/v1/trace.proto, common/v1/common.proto, resource/v1/resource.proto.

import { TraceState, type InstrumentationScope } from '@opentelemetry/core';
import type { Uint64Parts } from '../capture/clock';
import type { TraceRecord } from '../correlate/trace-record';
import { ANY_INT, ANY_STRING, keyValue, KV_KEY, KV_VALUE, RequestEncoder, SCOPE_X_ITEM } from './otlp-common';
import { ProtoWriter, varint32Size } from '../util/protobuf';
import { MAX_SPAN_ATTRIBUTES, type SpanClock } from './spans';

// Field tags: (field number << 3) | wire type (0 varint, 1 fixed64, 2 length-delimited, 5 fixed32).
const SCOPE_SPANS_SPANS = SCOPE_X_ITEM; // ScopeSpans.spans = 2
const SPAN_TRACE_ID = 0x0a; // 1
const SPAN_SPAN_ID = 0x12; // 2
const SPAN_TRACE_STATE = 0x1a; // 3
const SPAN_PARENT_SPAN_ID = 0x22; // 4
const SPAN_NAME = 0x2a; // 5
const SPAN_KIND = 0x30; // 6
const SPAN_START = 0x39; // 7, fixed64
const SPAN_END = 0x41; // 8, fixed64
const SPAN_ATTRIBUTES = 0x4a; // 9
const SPAN_DROPPED_ATTRIBUTES = 0x50; // 10
const SPAN_STATUS = 0x7a; // 15
const SPAN_FLAGS = [0x85, 0x01] as const; // 16, fixed32: a two-byte tag
const STATUS_MESSAGE = 0x12; // Status.message = 2
const STATUS_CODE = 0x18; // Status.code = 3

const SPAN_KIND_SERVER = 2;
const SPAN_KIND_CLIENT = 3;
const STATUS_CODE_ERROR = 2;
const TRACE_FLAGS_SAMPLED = 0x01;
// trace.proto SpanFlags: bits 8 and 9 say whether the parent is remote.
const SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK = 0x100;
const SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK = 0x200;

const TWO_32 = 4294967296;

/** Attribute keys whose encoding is kept (the protocols use a small fixed set; more are encoded each time). */
const MAX_CACHED_KEYS = 1024;

/** Encodes sampled TraceRecords as they are queued; keeps buffers and caches between batches. */
export class SpanEncoder extends RequestEncoder<TraceRecord> {
  private readonly keyFields = new Map<string, Buffer>();
  private readonly time: Uint64Parts = { hi: 0, lo: 0 };
  private lastTraceState: string | undefined;
  private lastTraceStateSerialized = '';

  constructor(
    scope: InstrumentationScope,
    private readonly clock: SpanClock,
  ) {
    super(scope);
  }

  /** KeyValue.key, tag included. */
  private keyField(key: string): Buffer {
    let f = this.keyFields.get(key);
    if (f) return f;
    const w = new ProtoWriter(key.length * 3 + 8);
    w.ensure(1);
    w.byte(KV_KEY);
    w.string(key);
    f = w.finish();
    if (this.keyFields.size < MAX_CACHED_KEYS) this.keyFields.set(key, f);
    return f;
  }

  private traceState(raw: string): string {
    // A trace's spans share one tracestate: remember the last one.
    if (raw !== this.lastTraceState) {
      this.lastTraceState = raw;
      this.lastTraceStateSerialized = new TraceState(raw).serialize();
    }
    return this.lastTraceStateSerialized;
  }

  /** ScopeSpans.spans, tag included; false (nothing written) when the record cannot be encoded as it is. */
  protected item(tr: TraceRecord): boolean {
    const w = this.w;
    const r = tr.record;
    const endMono = r.endNs < r.startNs ? r.startNs : r.endNs;
    if (!(Number.isInteger(r.startNs) && r.startNs >= 0 && Number.isInteger(endMono))) return false;
    const spanAt = w.pos;
    w.ensure(8);
    w.byte(SCOPE_SPANS_SPANS);
    // Spans are usually 128 bytes to 16 KiB: a two-byte length.
    const at = w.begin(2);

    w.byte(SPAN_TRACE_ID);
    w.byte(16);
    if (!w.hex(tr.traceId, 16)) return this.abandon(spanAt);
    w.ensure(2);
    w.byte(SPAN_SPAN_ID);
    w.byte(8);
    if (!w.hex(tr.spanId, 8)) return this.abandon(spanAt);
    if (tr.traceState) {
      const ts = this.traceState(tr.traceState);
      if (ts !== '') {
        w.ensure(1);
        w.byte(SPAN_TRACE_STATE);
        w.string(ts);
      }
    }
    const parent = tr.parentSpanId;
    if (parent !== undefined) {
      w.ensure(2);
      w.byte(SPAN_PARENT_SPAN_ID);
      w.byte(8);
      if (!w.hex(parent, 8)) return this.abandon(spanAt);
    }
    w.ensure(1);
    w.byte(SPAN_NAME);
    w.string(r.name);
    const server = r.kind === 'server';
    w.ensure(2 + 2 * 9);
    w.byte(SPAN_KIND);
    w.byte(server ? SPAN_KIND_SERVER : SPAN_KIND_CLIENT);
    // The end is the start plus the duration: one clock reading per span, and
    // the duration stays exact even if the clock's offset is refreshed.
    const t = this.time;
    this.clock.toWallNs64(r.startNs, t);
    w.byte(SPAN_START);
    w.fixed64(t.lo, t.hi);
    const duration = endMono - r.startNs;
    const durHi = Math.floor(duration / TWO_32);
    let endLo = t.lo + (duration - durHi * TWO_32);
    let endHi = t.hi + durHi;
    if (endLo >= TWO_32) {
      endLo -= TWO_32;
      endHi++;
    }
    w.byte(SPAN_END);
    w.fixed64(endLo, endHi >>> 0);

    // The attribute limit and error.type exactly as recordToSpan applies them.
    const attrs = r.attributes;
    const error = r.status === 'error';
    const errorType = r.errorType;
    const addErrorType = error && errorType !== undefined && attrs['error.type'] !== errorType;
    let kept = 0;
    let dropped = 0;
    let errorTypeWritten = false;
    for (const k in attrs) {
      if (kept >= MAX_SPAN_ATTRIBUTES) {
        dropped++;
        continue;
      }
      kept++;
      if (addErrorType && k === 'error.type') {
        this.attribute(k, errorType);
        errorTypeWritten = true;
      } else this.attribute(k, attrs[k]);
    }
    if (addErrorType && !errorTypeWritten) {
      if (kept < MAX_SPAN_ATTRIBUTES) this.attribute('error.type', errorType);
      else dropped++;
    }
    if (dropped > 0) {
      w.ensure(1);
      w.byte(SPAN_DROPPED_ATTRIBUTES);
      w.varint32(dropped);
    }

    w.ensure(1);
    w.byte(SPAN_STATUS);
    const message = error ? r.statusMessage : undefined;
    if (message) {
      const st = w.begin(1);
      w.ensure(1);
      w.byte(STATUS_MESSAGE);
      w.string(message);
      w.ensure(2);
      w.byte(STATUS_CODE);
      w.byte(STATUS_CODE_ERROR);
      w.end(st, 1);
    } else {
      w.ensure(3);
      if (error) {
        w.byte(2);
        w.byte(STATUS_CODE);
        w.byte(STATUS_CODE_ERROR);
      } else w.byte(0);
    }

    let flags = (tr.sampled ? TRACE_FLAGS_SAMPLED : 0) | SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK;
    // A server span's parent is the caller's span (another process); a client span's is local.
    if (parent !== undefined && server) flags |= SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK;
    w.ensure(2);
    w.byte(SPAN_FLAGS[0]);
    w.byte(SPAN_FLAGS[1]);
    w.fixed32(flags);
    w.end(at, 2);
    return true;
  }

  /** Span.attributes: one KeyValue. */
  private attribute(key: string, value: unknown): void {
    const kf = this.keyField(key);
    const kn = kf.length;
    const w = this.w;
    // Fast paths, the usual attributes: whole KeyValue under 128 bytes, so
    // every length is one byte and known before writing.
    if (typeof value === 'string') {
      const n = value.length;
      const kvLen = kn + 4 + n; // key, value tag and length, string tag and length, chars
      if (kvLen < 0x80) {
        w.ensure(kvLen + 2);
        const buf = w.buf;
        let p = w.pos + 2 + kn + 4;
        for (let i = 0; i < n; i++) {
          const c = value.charCodeAt(i);
          if (c >= 0x80) return this.attributeSlow(kf, value); // not ASCII: lengths differ
          buf[p++] = c;
        }
        p = w.pos;
        buf[p++] = SPAN_ATTRIBUTES;
        buf[p++] = kvLen;
        for (let i = 0; i < kn; i++) buf[p++] = kf[i]!;
        buf[p++] = KV_VALUE;
        buf[p++] = n + 2;
        buf[p++] = ANY_STRING;
        buf[p++] = n;
        w.pos = p + n;
        return;
      }
    } else if (typeof value === 'number' && value >= 0 && value < TWO_32 && Number.isInteger(value)) {
      const vn = varint32Size(value);
      const kvLen = kn + 3 + vn;
      if (kvLen < 0x80) {
        w.ensure(kvLen + 2);
        const buf = w.buf;
        let p = w.pos;
        buf[p++] = SPAN_ATTRIBUTES;
        buf[p++] = kvLen;
        for (let i = 0; i < kn; i++) buf[p++] = kf[i]!;
        buf[p++] = KV_VALUE;
        buf[p++] = vn + 1;
        buf[p++] = ANY_INT;
        let v = value;
        while (v > 0x7f) {
          buf[p++] = (v & 0x7f) | 0x80;
          v >>>= 7;
        }
        buf[p++] = v;
        w.pos = p;
        return;
      }
    }
    this.attributeSlow(kf, value);
  }

  private attributeSlow(keyField: Buffer, value: unknown): void {
    keyValue(this.w, SPAN_ATTRIBUTES, keyField, value);
  }
}
