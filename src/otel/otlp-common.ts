// What the OTLP requests and responses of every signal we encode share. An
// ExportTraceServiceRequest and an ExportLogsServiceRequest have the same
// skeleton, field numbers included: request.resource_x = 1 ->
// ResourceX{resource = 1, scope_x = 2} -> ScopeX{scope = 1, items = 2}. So the
// skeleton, the resource and scope encodings, KeyValue and AnyValue, the
// buffers lent per batch, and the partial_success of a response (field 1:
// rejected count = 1, error_message = 2) are written once, here; otlp-encode.ts
// (spans) and log-encode.ts (log records) write only their items.
//
// Schema: opentelemetry-proto collector/{trace,logs}/v1/*_service.proto,
// {trace,logs}/v1/*.proto, common/v1/common.proto, resource/v1/resource.proto.

import type { InstrumentationScope } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import { fields, ProtoWriter } from '../util/protobuf';
import { EncodedItems } from './encoded-items';

// Field tags: (field number << 3) | wire type (0 varint, 1 fixed64, 2 length-delimited, 5 fixed32).
const REQUEST_RESOURCE_X = 0x0a; // Export{Trace,Logs}ServiceRequest.resource_{spans,logs} = 1
const RESOURCE_X_RESOURCE = 0x0a; // Resource{Spans,Logs}.resource = 1
const RESOURCE_X_SCOPE_X = 0x12; // Resource{Spans,Logs}.scope_{spans,logs} = 2
const RESOURCE_ATTRIBUTES = 0x0a; // Resource.attributes = 1
const SCOPE_X_SCOPE = 0x0a; // Scope{Spans,Logs}.scope = 1
/** Scope{Spans,Logs}.{spans,log_records} = 2: the tag of each item. */
export const SCOPE_X_ITEM = 0x12;
const SCOPE_NAME = 0x0a; // InstrumentationScope.name = 1
const SCOPE_VERSION = 0x12; // InstrumentationScope.version = 2
export const KV_KEY = 0x0a; // KeyValue.key = 1
export const KV_VALUE = 0x12; // KeyValue.value = 2
export const ANY_STRING = 0x0a; // AnyValue.string_value = 1
const ANY_BOOL = 0x10; // 2
export const ANY_INT = 0x18; // 3
const ANY_DOUBLE = 0x21; // 4, fixed64
const ANY_ARRAY = 0x2a; // 5
const ANY_KVLIST = 0x32; // 6
const ANY_BYTES = 0x3a; // 7
const LIST_VALUES = 0x0a; // ArrayValue.values = 1, KeyValueList.values = 1

const MIN_INT64 = -(2 ** 63);
const MAX_INT64_EXCLUSIVE = 2 ** 63;

export interface EncodedBatch {
  /**
   * A serialized Export*ServiceRequest, in a buffer the encoder lends: valid
   * until `release()`, which gives the buffer back for another batch.
   */
  readonly bytes: Buffer;
  /** Items (spans, log records) in it. */
  readonly count: number;
  /** Call once the bytes are no longer read (the export is over, retries included). Idempotent. */
  release(): void;
}

/**
 * Buffers kept for reuse. Fresh memory for every batch costs more than
 * encoding it (page faults, GC of external memory); one export is in flight at
 * a time, and one more may be under way after the batch timeout gave up on it.
 */
const POOLED_WRITERS = 2;

/**
 * Encodes one signal's items as they are queued (`append`, into an
 * EncodedItems) and builds requests of the queued bytes (`request`), grouped
 * by resource in order of first appearance, under one scope. Subclasses write
 * an item (its SCOPE_X_ITEM tag included) into `w`.
 */
export abstract class RequestEncoder<T> {
  /** Where `item()` writes: the end of the queue being appended to. */
  protected w = new ProtoWriter(0);
  private readonly writers: ProtoWriter[] = [new ProtoWriter()];
  private readonly scopeField: Buffer;
  private readonly resourceFields = new WeakMap<Resource, Buffer>();

  constructor(scope: InstrumentationScope) {
    const w = new ProtoWriter(256);
    w.ensure(1);
    w.byte(SCOPE_X_SCOPE);
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

  /** Writes one item, tag included; false, with nothing written, when it cannot be encoded as it is. */
  protected abstract item(item: T): boolean;

  /** Encodes `item` of `resource` at the end of `queue`; false, with nothing queued, when it cannot be encoded as it is. */
  append(queue: EncodedItems, item: T, resource: Resource): boolean {
    const at = queue.beginItem();
    this.w = queue.w;
    let ok = false;
    try {
      ok = this.item(item);
    } finally {
      // A throw leaves nothing half written behind.
      if (!ok) queue.w.pos = at;
    }
    if (ok) queue.commitItem(at, resource);
    return ok;
  }

  /** One request of the first `n` items of `queue` (0 < n <= queue.count), which leave it. */
  request(queue: EncodedItems, n: number): EncodedBatch {
    const w = this.writers.pop() ?? new ProtoWriter();
    w.reset();
    const src = queue.w.buf;
    const first = queue.resourceAt(0);
    let one = true;
    for (let i = 1; i < n && one; i++) one = queue.resourceAt(i) === first;
    if (one) {
      // The usual batch, one process's items: their bytes are one run.
      let bytes = 0;
      for (let i = 0; i < n; i++) bytes += queue.lengthAt(i);
      this.group(w, first, src, queue.head, queue.head + bytes);
    } else this.grouped(w, queue, n);
    queue.drop(n);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      if (this.writers.length < POOLED_WRITERS && w.pooled()) this.writers.push(w);
    };
    return { bytes: w.buf.subarray(0, w.pos), count: n, release };
  }

  /**
   * One request for `items[i]` of `resources[i]`, encoded at once; `invalid`
   * counts the items left out because they could not be encoded as they are.
   */
  encode(items: readonly T[], resources: readonly Resource[]): EncodedBatch & { readonly invalid: number } {
    const queue = new EncodedItems();
    let invalid = 0;
    for (let i = 0; i < items.length; i++) if (!this.append(queue, items[i]!, resources[i]!)) invalid++;
    if (queue.count === 0) return { bytes: Buffer.alloc(0), count: 0, invalid, release: () => {} };
    return { ...this.request(queue, queue.count), invalid };
  }

  /** Several resources: each one's items, in queue order, under it; resources in order of first appearance. */
  private grouped(w: ProtoWriter, queue: EncodedItems, n: number): void {
    const groupOf = new Int32Array(n);
    const starts = new Int32Array(n);
    const resources: Resource[] = [];
    const index = new Map<Resource, number>();
    let at = queue.head;
    for (let i = 0; i < n; i++) {
      const r = queue.resourceAt(i);
      let g = index.get(r);
      if (g === undefined) {
        g = resources.length;
        resources.push(r);
        index.set(r, g);
      }
      groupOf[i] = g;
      starts[i] = at;
      at += queue.lengthAt(i);
    }
    // Items by group, in queue order within each (a counting sort).
    const firstOf = new Int32Array(resources.length + 1);
    for (let i = 0; i < n; i++) firstOf[groupOf[i]! + 1]! += 1;
    for (let g = 0; g < resources.length; g++) firstOf[g + 1]! += firstOf[g]!;
    const order = new Int32Array(n);
    const next = firstOf.slice(0, resources.length);
    for (let i = 0; i < n; i++) {
      const g = groupOf[i]!;
      order[next[g]!] = i;
      next[g]! += 1;
    }
    const src = queue.w.buf;
    for (let g = 0; g < resources.length; g++) {
      w.ensure(1);
      w.byte(REQUEST_RESOURCE_X);
      const rsAt = w.begin(3);
      w.raw(this.resourceField(resources[g]!));
      w.ensure(1);
      w.byte(RESOURCE_X_SCOPE_X);
      const ssAt = w.begin(3);
      w.raw(this.scopeField);
      for (let k = firstOf[g]!; k < firstOf[g + 1]!; k++) {
        const i = order[k]!;
        w.copy(src, starts[i]!, starts[i]! + queue.lengthAt(i));
      }
      w.end(ssAt, 3);
      w.end(rsAt, 3);
    }
  }

  /** One resource's items, the bytes `src[from, to)`. */
  private group(w: ProtoWriter, resource: Resource, src: Buffer, from: number, to: number): void {
    w.ensure(1);
    w.byte(REQUEST_RESOURCE_X);
    // A batch is some hundred KiB: a three-byte length.
    const rsAt = w.begin(3);
    w.raw(this.resourceField(resource));
    w.ensure(1);
    w.byte(RESOURCE_X_SCOPE_X);
    const ssAt = w.begin(3);
    w.raw(this.scopeField);
    w.copy(src, from, to);
    w.end(ssAt, 3);
    w.end(rsAt, 3);
  }

  /** Drops what was written of an item from `at` on; false, for `return this.abandon(at)`. */
  protected abandon(at: number): false {
    this.w.pos = at;
    return false;
  }

  /** Resource{Spans,Logs}.resource, tag included, encoded once per Resource object. */
  private resourceField(resource: Resource): Buffer {
    let f = this.resourceFields.get(resource);
    if (f) return f;
    const w = new ProtoWriter(1024);
    w.ensure(1);
    w.byte(RESOURCE_X_RESOURCE);
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
}

/** A KeyValue under `tag`; the key as a string, or as its encoded KeyValue.key field (tag included). */
export function keyValue(w: ProtoWriter, tag: number, key: string | Buffer, value: unknown): void {
  w.ensure(1);
  w.byte(tag);
  const at = w.begin(1);
  if (typeof key === 'string') {
    w.ensure(1);
    w.byte(KV_KEY);
    w.string(key);
  } else w.raw(key);
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
export function anyValue(w: ProtoWriter, value: unknown): void {
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

/** Export{Trace,Logs}PartialSuccess: what a collector that took the request refused of it. */
export interface PartialSuccess {
  /** rejected_spans or rejected_log_records. */
  readonly rejected: number;
  readonly errorMessage: string;
}

/**
 * The partial_success of an Export{Trace,Logs}ServiceResponse (field 1:
 * rejected_{spans,log_records} = 1 int64, error_message = 2 string);
 * undefined when absent, empty (both fields at their defaults, which means
 * full success) or malformed.
 */
export function decodePartialSuccess(body: Buffer): PartialSuccess | undefined {
  try {
    let partial: PartialSuccess | undefined;
    for (const f of fields(body)) {
      if (f.num !== 1 || !f.bytes) continue;
      let rejected = 0;
      let errorMessage = '';
      for (const p of fields(f.bytes)) {
        if (p.num === 1 && p.varint !== undefined) rejected = Number(BigInt.asIntN(64, p.varint));
        else if (p.num === 2 && p.bytes) errorMessage = p.bytes.toString('utf8');
      }
      partial = rejected === 0 && errorMessage === '' ? undefined : { rejected: Math.max(0, rejected), errorMessage };
    }
    return partial;
  } catch {
    return undefined;
  }
}
