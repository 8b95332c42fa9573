// Items (spans, log records) encoded when they are queued, waiting for their
// export request: their protobuf bytes back to back in one buffer, with each
// one's length and resource. A queue of objects (records, their attribute
// objects, their resources) survives scavenges and is promoted while it
// waits for its batch, and then points at young objects, which every
// scavenge visits again; bytes are one buffer, invisible to the collector.
//
// First in, first out: items are appended at the end and requests take them
// from the front (RequestEncoder.append, RequestEncoder.request). The count
// is bounded by whoever queues (BatchQueue); the bytes follow from it.

import type { Resource } from '@opentelemetry/resources';
import { ProtoWriter } from '../util/protobuf';

const INITIAL_BYTES = 64 * 1024;
/** A buffer larger than this is dropped when the queue empties: a burst must not pin its memory. */
const KEEP_BYTES = 4 * 1024 * 1024;
const INITIAL_ITEMS = 256;

export class EncodedItems {
  /** Bytes of the queued items, from `head` to `w.pos`; items are written at the end. */
  w = new ProtoWriter(INITIAL_BYTES);
  /** Offset of the first item's bytes. */
  head = 0;
  /** Ring of the items' byte lengths and resources, oldest at `first`. */
  private lengths = new Int32Array(INITIAL_ITEMS);
  private resources: (Resource | undefined)[] = new Array<Resource | undefined>(INITIAL_ITEMS).fill(undefined);
  private first = 0;
  private n = 0;

  get count(): number {
    return this.n;
  }

  /** The resource of the i-th item from the front, 0 <= i < count. */
  resourceAt(i: number): Resource {
    return this.resources[(this.first + i) & (this.resources.length - 1)]!;
  }

  /** The byte length of the i-th item from the front, 0 <= i < count. */
  lengthAt(i: number): number {
    return this.lengths[(this.first + i) & (this.lengths.length - 1)]!;
  }

  /**
   * Where the next item's bytes start. Moves the queued bytes to the front
   * first when more than half the buffer lies before them (those bytes were
   * taken): the buffer then grows only for bytes still queued.
   */
  beginItem(): number {
    const w = this.w;
    if (this.head > 0 && this.head >= w.buf.length >>> 1) {
      w.buf.copyWithin(0, this.head, w.pos);
      w.pos -= this.head;
      this.head = 0;
    }
    return w.pos;
  }

  /** The item written since `beginItem()` returned `at` is queued, under `resource`. */
  commitItem(at: number, resource: Resource): void {
    if (this.n === this.lengths.length) this.growRing();
    const slot = (this.first + this.n) & (this.lengths.length - 1);
    this.lengths[slot] = this.w.pos - at;
    this.resources[slot] = resource;
    this.n++;
  }

  /** Forgets the first `k` items (their bytes were copied into a request). */
  drop(k: number): void {
    const mask = this.lengths.length - 1;
    let bytes = 0;
    for (let i = 0; i < k; i++) {
      const slot = (this.first + i) & mask;
      bytes += this.lengths[slot]!;
      // A resource is no longer held by an item that left.
      this.resources[slot] = undefined;
    }
    this.first = (this.first + k) & mask;
    this.n -= k;
    this.head += bytes;
    if (this.n === 0) this.emptied();
  }

  /** Forgets every item. */
  clear(): void {
    this.drop(this.n);
  }

  private emptied(): void {
    this.head = 0;
    this.first = 0;
    if (this.w.buf.length > KEEP_BYTES) this.w = new ProtoWriter(INITIAL_BYTES);
    else this.w.reset();
  }

  /** Twice the ring, the items in order from slot 0. */
  private growRing(): void {
    const size = this.lengths.length * 2;
    const lengths = new Int32Array(size);
    const resources = new Array<Resource | undefined>(size).fill(undefined);
    for (let i = 0; i < this.n; i++) {
      const slot = (this.first + i) & (this.lengths.length - 1);
      lengths[i] = this.lengths[slot]!;
      resources[i] = this.resources[slot];
    }
    this.lengths = lengths;
    this.resources = resources;
    this.first = 0;
  }
}
