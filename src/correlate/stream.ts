// Reassembles one side of a connection by stream position. Data events carry
// `pos`, the offset of their first byte; most arrive in order, but threads
// writing one socket can reach the ring buffer out of order, and captures can
// be truncated or lost. Contiguous bytes go out as chunks; what is missing
// goes out as an explicit gap, never spliced over.

import type { DataEvent } from '../capture/events';
import type { Chunk, Side } from '../protocols/types';

export interface StreamSink {
  chunk(chunk: Chunk): void;
  gap(side: Side, pos: number, bytes: number, atNs: number): void;
}

export interface StreamStats {
  /** Events held back because an earlier position had not arrived yet. */
  reordered: number;
  /** Bytes declared missing (truncated captures and events that never came). */
  gapBytes: number;
  /** Events whose bytes had been passed already (duplicates, overlaps). */
  overlaps: number;
}

interface Held {
  readonly event: DataEvent;
  readonly data: Buffer;
}

/** How many out-of-order events a side holds before declaring the missing bytes a gap. */
const REORDER_WINDOW = 8;

export class SideStream {
  private next: number | undefined;
  /** Events ahead of `next`, by position; allocated when the first one comes (rare). */
  private held: Held[] | undefined;

  /**
   * `start`: the position of the stream's first byte when it is known (0 for
   * a connection seen from its connect or accept), so a first event that
   * overtook an earlier one is held for it like any other. Unknown (joined
   * mid-connection): the first event to arrive starts the stream, and an
   * earlier one arriving after it is dropped as an overlap.
   */
  constructor(
    readonly side: Side,
    private readonly sink: StreamSink,
    private readonly stats: StreamStats,
    start?: number,
  ) {
    this.next = start;
  }

  push(e: DataEvent): void {
    if (this.next === undefined) this.next = e.pos;
    if (e.pos === this.next) {
      this.emit(e, e.data);
      this.drainHeld();
      return;
    }
    if (e.pos < this.next) {
      this.stats.overlaps++;
      return;
    }
    // Ahead of what we expect: hold it (copied: the batch is reused) until the
    // missing bytes arrive or the window fills.
    this.stats.reordered++;
    const held = (this.held ??= []);
    held.push({ event: e, data: Buffer.from(e.data) });
    held.sort((a, b) => a.event.pos - b.event.pos);
    if (held.length > REORDER_WINDOW) this.flushHeld();
  }

  /** Declares everything held as final: missing bytes before it become gaps. */
  flushHeld(): void {
    const held = this.held;
    if (held === undefined) return;
    this.held = undefined;
    while (held.length > 0) {
      const h = held.shift()!;
      const next = this.next!;
      if (h.event.pos > next) {
        this.stats.gapBytes += h.event.pos - next;
        this.sink.gap(this.side, next, h.event.pos - next, h.event.tsEnterNs);
        this.next = h.event.pos;
      }
      if (h.event.pos === this.next) this.emit(h.event, h.data);
      else this.stats.overlaps++;
    }
  }

  bufferedBytes(): number {
    let n = 0;
    for (const h of this.held ?? []) n += h.data.length;
    return n;
  }

  private drainHeld(): void {
    const held = this.held;
    if (held === undefined) return;
    while (held.length > 0 && held[0]!.event.pos === this.next) {
      const h = held.shift()!;
      this.emit(h.event, h.data);
    }
    if (held.length === 0) this.held = undefined;
  }

  private emit(e: DataEvent, data: Buffer): void {
    const startNs = this.side === 'egress' ? e.tsEnterNs : e.tsExitNs;
    if (data.length > 0) {
      this.sink.chunk({ side: this.side, data, pos: e.pos, startNs, endNs: e.tsExitNs, syscallStart: true, tid: e.tid });
    }
    if (data.length < e.size) {
      const missing = e.size - data.length;
      this.stats.gapBytes += missing;
      this.sink.gap(this.side, e.pos + data.length, missing, e.tsExitNs);
    }
    this.next = e.pos + e.size;
  }
}
