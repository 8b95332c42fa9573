// TraceRecords straight to OTLP protobuf bytes: one ExportTraceServiceRequest
// per batch, without building ReadableSpans or running the SDK serializer.
// The spans are the ones spans.ts's recordToSpan describes (same attribute
// limit, error.type, status, flags), and decode to what the SDK's
// ProtobufTraceSerializer makes of those (test/otel/otlp-encode.test.ts checks
// it). Zero-valued scalar fields are left out, as proto3 allows.
//
// Schema: opentelemetry-proto collector/trace/v1/trace_service.proto,
// trace/v1/trace.proto, common/v1/common.proto, resource/v1/resource.proto.

import { TraceState, type InstrumentationScope } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import type { Uint64Parts } from '../capture/clock';
import type { TraceRecord } from '../correlate/trace-record';
import { fields, ProtoWriter, varint32Size } from './protobuf';
import { MAX_SPAN_ATTRIBUTES, type SpanClock } from './spans';

// Field tags: (field number << 3) | wire type (0 varint, 1 fixed64, 2 length-delimited, 5 fixed32).
const REQUEST_RESOURCE_SPANS = 0x0a; // ExportTraceServiceRequest.resource_spans = 1
const RESOURCE_SPANS_RESOURCE = 0x0a; // ResourceSpans.resource = 1
const RESOURCE_SPANS_SCOPE_SPANS = 0x12; // ResourceSpans.scope_spans = 2
const RESOURCE_ATTRIBUTES = 0x0a; // Resource.attributes = 1
const SCOPE_SPANS_SCOPE = 0x0a; // ScopeSpans.scope = 1
const SCOPE_SPANS_SPANS = 0x12; // ScopeSpans.spans = 2
const SCOPE_NAME = 0x0a; // InstrumentationScope.name = 1
const SCOPE_VERSION = 0x12; // InstrumentationScope.version = 2
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
const KV_KEY = 0x0a; // KeyValue.key = 1
const KV_VALUE = 0x12; // KeyValue.value = 2
const ANY_STRING = 0x0a; // AnyValue.string_value = 1
const ANY_BOOL = 0x10; // 2
const ANY_INT = 0x18; // 3
const ANY_DOUBLE = 0x21; // 4, fixed64
const ANY_ARRAY = 0x2a; // 5
const ANY_KVLIST = 0x32; // 6
const ANY_BYTES = 0x3a; // 7
const LIST_VALUES = 0x0a; // ArrayValue.values = 1, KeyValueList.values = 1

const SPAN_KIND_SERVER = 2;
const SPAN_KIND_CLIENT = 3;
const STATUS_CODE_ERROR = 2;
const TRACE_FLAGS_SAMPLED = 0x01;
// trace.proto SpanFlags: bits 8 and 9 say whether the parent is remote.
const SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK = 0x100;
const SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK = 0x200;

const TWO_32 = 4294967296;
const MIN_INT64 = -(2 ** 63);
const MAX_INT64_EXCLUSIVE = 2 ** 63;

/** Attribute keys whose encoding is kept (the protocols use a small fixed set; more are encoded each time). */
const MAX_CACHED_KEYS = 1024;

export interface EncodedSpans {
  /**
   * A serialized ExportTraceServiceRequest, in a buffer the encoder lends:
   * valid until `release()`, which gives the buffer back for another batch.
   */
  readonly bytes: Buffer;
  /** Spans in it. */
  readonly spans: number;
  /** Records left out because an id or a time could not be encoded as it is (malformed). */
  readonly invalid: number;
  /** Call once the bytes are no longer read (the export is over, retries included). Idempotent. */
  release(): void;
}

/**
 * Buffers kept for reuse. Fresh memory for every batch costs more than
 * encoding it (page faults, GC of external memory); one export is in flight at
 * a time, and one more may be under way after the batch timeout gave up on it.
 */
const POOLED_WRITERS = 2;

/** Encodes batches of sampled TraceRecords; keeps buffers and caches between batches. */
export class SpanEncoder {
  /** The writer of the batch being encoded. */
  private w = new ProtoWriter();
  private readonly writers: ProtoWriter[] = [this.w];
  private readonly scopeField: Buffer;
  private readonly resourceFields = new WeakMap<Resource, Buffer>();
  private readonly keyFields = new Map<string, Buffer>();
  private readonly time: Uint64Parts = { hi: 0, lo: 0 };
  private lastTraceState: string | undefined;
  private lastTraceStateSerialized = '';

  constructor(
    scope: InstrumentationScope,
    private readonly clock: SpanClock,
  ) {
    const w = new ProtoWriter(256);
    w.ensure(1);
    w.byte(SCOPE_SPANS_SCOPE);
    const at = w.begin(1);
    w.ensure(1);
    w.byte(SCOPE_NAME);
    w.string(scope.name);
    if (scope.version) {
      w.ensure(1);
      w.byte(SCOPE_VERSION);
      w.string(scope.version);
    }
    w.end(at, 1);
    this.scopeField = w.finish();
  }

  /** One request for `records[i]` of `resources[i]`, grouped by resource in order of first appearance. */
  encode(records: readonly TraceRecord[], resources: readonly Resource[]): EncodedSpans {
    const groups = new Map<Resource, number[]>();
    for (let i = 0; i < records.length; i++) {
      const res = resources[i]!;
      const g = groups.get(res);
      if (g) g.push(i);
      else groups.set(res, [i]);
    }
    const w = (this.w = this.writers.pop() ?? new ProtoWriter());
    w.reset();
    let spans = 0;
    let invalid = 0;
    for (const [resource, indexes] of groups) {
      w.ensure(1);
      w.byte(REQUEST_RESOURCE_SPANS);
      // A batch of spans is some hundred KiB: a three-byte length.
      const rsAt = w.begin(3);
      w.raw(this.resourceField(resource));
      w.ensure(1);
      w.byte(RESOURCE_SPANS_SCOPE_SPANS);
      const ssAt = w.begin(3);
      w.raw(this.scopeField);
      for (const i of indexes) {
        if (this.span(records[i]!)) spans++;
        else invalid++;
      }
      w.end(ssAt, 3);
      w.end(rsAt, 3);
    }
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      if (this.writers.length < POOLED_WRITERS && w.pooled()) this.writers.push(w);
    };
    return { bytes: w.buf.subarray(0, w.pos), spans, invalid, release };
  }

  /** ResourceSpans.resource, tag included, encoded once per Resource object. */
  private resourceField(resource: Resource): Buffer {
    let f = this.resourceFields.get(resource);
    if (f) return f;
    const w = new ProtoWriter(1024);
    w.ensure(1);
    w.byte(RESOURCE_SPANS_RESOURCE);
    const at = w.begin(2);
    const attrs = resource.attributes;
    for (const k in attrs) {
      if (!Object.prototype.hasOwnProperty.call(attrs, k)) continue;
      keyValue(w, RESOURCE_ATTRIBUTES, k, attrs[k]);
    }
    w.end(at, 2);
    f = w.finish();
    this.resourceFields.set(resource, f);
    return f;
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
  private span(tr: TraceRecord): boolean {
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

  private abandon(spanAt: number): false {
    this.w.pos = spanAt;
    return false;
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
    const w = this.w;
    w.ensure(1);
    w.byte(SPAN_ATTRIBUTES);
    const at = w.begin(1);
    w.raw(keyField);
    w.ensure(1);
    w.byte(KV_VALUE);
    const vAt = w.begin(1);
    anyValue(w, value);
    w.end(vAt, 1);
    w.end(at, 1);
  }
}

/** A KeyValue under `tag`. */
function keyValue(w: ProtoWriter, tag: number, key: string, value: unknown): void {
  w.ensure(1);
  w.byte(tag);
  const at = w.begin(1);
  w.ensure(1);
  w.byte(KV_KEY);
  w.string(key);
  w.ensure(1);
  w.byte(KV_VALUE);
  const vAt = w.begin(1);
  anyValue(w, value);
  w.end(vAt, 1);
  w.end(at, 1);
}

/**
 * An AnyValue's content, typed as the SDK types attribute values: integers in
 * the int64 range as int_value, other numbers as double_value; anything else
 * unknown as an empty AnyValue.
 */
function anyValue(w: ProtoWriter, value: unknown): void {
  switch (typeof value) {
    case 'string':
      w.ensure(1);
      w.byte(ANY_STRING);
      w.string(value);
      return;
    case 'number':
      w.ensure(1);
      if (Number.isInteger(value) && value >= MIN_INT64 && value < MAX_INT64_EXCLUSIVE) {
        w.byte(ANY_INT);
        w.varint64(value);
      } else {
        w.byte(ANY_DOUBLE);
        w.double(value);
      }
      return;
    case 'boolean':
      w.ensure(2);
      w.byte(ANY_BOOL);
      w.byte(value ? 1 : 0);
      return;
    case 'object':
      if (value === null) return;
      if (value instanceof Uint8Array) {
        w.ensure(1);
        w.byte(ANY_BYTES);
        w.bytes(value);
      } else if (Array.isArray(value)) {
        w.ensure(1);
        w.byte(ANY_ARRAY);
        const at = w.begin(2);
        for (const item of value) {
          w.ensure(1);
          w.byte(LIST_VALUES);
          const iAt = w.begin(1);
          anyValue(w, item);
          w.end(iAt, 1);
        }
        w.end(at, 2);
      } else {
        w.ensure(1);
        w.byte(ANY_KVLIST);
        const at = w.begin(2);
        const obj = value as Record<string, unknown>;
        for (const k in obj) {
          if (Object.prototype.hasOwnProperty.call(obj, k)) keyValue(w, LIST_VALUES, k, obj[k]);
        }
        w.end(at, 2);
      }
      return;
    default:
      return;
  }
}

// ---------------------------------------------------------------- response

/** ExportTracePartialSuccess: what a collector that took the request refused of it. */
export interface TracePartialSuccess {
  readonly rejectedSpans: number;
  readonly errorMessage: string;
}

/**
 * The partial_success of an ExportTraceServiceResponse (field 1: rejected_spans
 * = 1 int64, error_message = 2 string); undefined when absent, empty (both
 * fields at their defaults, which means full success) or malformed.
 */
export function decodeTraceResponse(body: Buffer): TracePartialSuccess | undefined {
  try {
    let partial: TracePartialSuccess | undefined;
    for (const f of fields(body)) {
      if (f.num !== 1 || !f.bytes) continue;
      let rejectedSpans = 0;
      let errorMessage = '';
      for (const p of fields(f.bytes)) {
        if (p.num === 1 && p.varint !== undefined) rejectedSpans = Number(BigInt.asIntN(64, p.varint));
        else if (p.num === 2 && p.bytes) errorMessage = p.bytes.toString('utf8');
      }
      partial = rejectedSpans === 0 && errorMessage === '' ? undefined : { rejectedSpans: Math.max(0, rejectedSpans), errorMessage };
    }
    return partial;
  } catch {
    return undefined;
  }
}
