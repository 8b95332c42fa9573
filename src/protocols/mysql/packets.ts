// One direction's MySQL packets, reassembled from chunks cut anywhere: a
// 4-byte header (payload length, sequence id) and the payload. A payload of
// 16 MiB or more travels as packets of 0xffffff bytes and a shorter last one,
// joined here into one logical packet. Only a bounded head of each payload is
// kept (what commands, OK/ERR packets and column counts need); the rest is
// skipped by length, so a row of 100 MiB costs no memory.

import type { Chunk } from '../types';
import { MYSQL_HEADER_BYTES, MYSQL_MAX_PACKET } from './wire';

/** A logical packet; `head` is valid during the sink call only. */
export interface MysqlPacket {
  /** Sequence id of its first (or only) physical packet. */
  seq: number;
  /** Sequence id of its last physical packet (differs only for payloads of 16 MiB and more). */
  lastSeq: number;
  /** Whole logical payload length. */
  length: number;
  /** The first bytes of the payload, at most the reader's keep bound. */
  head: Uint8Array;
  /** Some payload bytes were not captured (a gap fell inside it): `head` may then be shorter than kept. */
  lost: boolean;
  /** Stream position of its first header byte. */
  pos: number;
  startNs: number;
  endNs: number;
  /** Thread that moved its last byte. */
  tid: number;
}

export interface MysqlPacketSink {
  packet(p: MysqlPacket): void;
}

type ReaderState = 'header' | 'payload' | 'lost';

export class MysqlPacketReader {
  private state: ReaderState;
  /** Header bytes collected so far (a header may be cut across chunks). */
  private readonly header = new Uint8Array(MYSQL_HEADER_BYTES);
  private headerFill = 0;
  /** Payload bytes left in the current physical packet. */
  private left = 0;
  /** The current physical packet is 0xffffff long: another one continues the payload. */
  private continues = false;
  /** Copy of the head when a payload spans chunks (allocated once, reused). */
  private keepBuf: Buffer | undefined;
  private keepFill = 0;
  /** The head is a view into the current chunk (the packet began and ends in it). */
  private current: MysqlPacket = { seq: 0, lastSeq: 0, length: 0, head: new Uint8Array(0), lost: false, pos: 0, startNs: 0, endNs: 0, tid: 0 };
  /** Next stream position expected. */
  position: number;

  constructor(
    private readonly sink: MysqlPacketSink,
    /** Payload bytes kept per logical packet. */
    private readonly keep: number,
    start: number | undefined,
  ) {
    this.state = start === undefined ? 'lost' : 'header';
    this.position = start ?? 0;
  }

  /** Whether the reader knows where packets start. */
  get synced(): boolean {
    return this.state !== 'lost';
  }

  /** Whether a packet is partly read (header or payload). */
  get midPacket(): boolean {
    return this.state === 'payload' || this.headerFill > 0 || this.continues;
  }

  /** Start reading at `pos`, a packet boundary proven by the caller. */
  syncAt(pos: number): void {
    this.state = 'header';
    this.position = pos;
    this.headerFill = 0;
    this.left = 0;
    this.continues = false;
    this.keepFill = 0;
  }

  /** Forget the boundary: bytes are skipped until syncAt(). */
  lose(): void {
    this.state = 'lost';
    this.headerFill = 0;
    this.left = 0;
    this.continues = false;
    this.keepFill = 0;
  }

  /** Bytes of `c` from `from` on (stream order, contiguous with what came before). Returns bytes skipped while lost. */
  push(c: Chunk, from = 0): number {
    const data = c.data;
    let i = from;
    const n = data.length;
    if (this.state === 'lost') {
      this.position = c.pos + n;
      return n - from;
    }
    const tid = c.tid ?? 0;
    while (i < n) {
      if (this.state === 'header') {
        // Fast path: a whole single-packet payload inside this chunk is passed as a view.
        if (this.headerFill === 0 && !this.continues && i + MYSQL_HEADER_BYTES <= n) {
          const len = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16);
          if (len < MYSQL_MAX_PACKET && i + MYSQL_HEADER_BYTES + len <= n) {
            const p = this.current;
            p.seq = data[i + 3]!;
            p.lastSeq = p.seq;
            p.length = len;
            p.head = data.subarray(i + MYSQL_HEADER_BYTES, i + MYSQL_HEADER_BYTES + Math.min(len, this.keep));
            p.lost = false;
            p.pos = c.pos + i;
            p.startNs = c.startNs;
            p.endNs = c.endNs;
            p.tid = tid;
            i += MYSQL_HEADER_BYTES + len;
            this.position = c.pos + i;
            this.sink.packet(p);
            if (!this.synced) {
              // The sink gave up on this direction: the rest is skipped.
              this.position = c.pos + n;
              return n - i;
            }
            continue;
          }
        }
        if (this.headerFill === 0 && !this.continues) this.begin(c, c.pos + i);
        this.header[this.headerFill++] = data[i++]!;
        if (this.headerFill < MYSQL_HEADER_BYTES) continue;
        this.headerFill = 0;
        const h = this.header;
        const len = h[0]! | (h[1]! << 8) | (h[2]! << 16);
        const seq = h[3]!;
        const p = this.current;
        if (this.continues) {
          p.lastSeq = seq;
          p.length += len;
        } else {
          p.seq = seq;
          p.lastSeq = seq;
          p.length = len;
        }
        this.continues = len === MYSQL_MAX_PACKET;
        this.left = len;
        this.state = 'payload';
        if (len === 0 && !this.continues) {
          this.position = c.pos + i;
          this.finish(c, tid);
          if (!this.synced) {
            this.position = c.pos + n;
            return n - i;
          }
        }
        continue;
      }
      // payload
      const take = Math.min(this.left, n - i);
      const room = this.keep - this.keepFill;
      if (room > 0) {
        const k = Math.min(room, take);
        this.reserve(this.keepFill + Math.min(room, this.left));
        this.keepBuf!.set(data.subarray(i, i + k), this.keepFill);
        this.keepFill += k;
      }
      i += take;
      this.left -= take;
      if (this.left === 0) {
        if (this.continues) this.state = 'header';
        else {
          this.position = c.pos + i;
          this.finish(c, tid);
          if (!this.synced) {
            this.position = c.pos + n;
            return n - i;
          }
        }
      }
    }
    this.position = c.pos + n;
    return 0;
  }

  /**
   * `bytes` at the current position moved but were not captured. Inside a
   * payload they are skipped exactly (the packet is marked `lost`); where
   * they reach a header the boundary is unknown: returns false and the
   * reader is lost.
   */
  gap(bytes: number): boolean {
    this.position += bytes;
    if (this.state === 'lost') return false;
    if (this.state === 'payload' && bytes <= this.left) {
      this.left -= bytes;
      this.current.lost = true;
      if (this.left === 0 && !this.continues) {
        // Finished without a chunk: times and thread stay the last ones seen.
        this.state = 'header';
        this.current.head = this.keepBuf === undefined ? new Uint8Array(0) : this.keepBuf.subarray(0, this.keepFill);
        this.keepFill = 0;
        this.sink.packet(this.current);
        return this.synced;
      }
      if (this.left === 0) this.state = 'header';
      return true;
    }
    this.lose();
    return false;
  }

  bufferedBytes(): number {
    return this.keepBuf === undefined ? 0 : this.keepBuf.length;
  }

  /** Drops the reusable copy buffer (the connection went idle or ended). */
  free(): void {
    this.keepBuf = undefined;
  }

  /**
   * The copy buffer holds at least `bytes` (grown by powers of two, never past
   * the keep bound): a server reading each command in two syscalls (header,
   * then payload) copies small commands into a small buffer.
   */
  private reserve(bytes: number): void {
    const have = this.keepBuf?.length ?? 0;
    if (have >= bytes) return;
    let size = Math.max(256, have);
    while (size < bytes) size *= 2;
    const grown = Buffer.allocUnsafe(Math.min(size, this.keep));
    if (this.keepBuf !== undefined && this.keepFill > 0) this.keepBuf.copy(grown, 0, 0, this.keepFill);
    this.keepBuf = grown;
  }

  private begin(c: Chunk, pos: number): void {
    const p = this.current;
    p.pos = pos;
    p.startNs = c.startNs;
    p.lost = false;
    this.keepFill = 0;
  }

  private finish(c: Chunk, tid: number): void {
    const p = this.current;
    this.state = 'header';
    p.endNs = c.endNs;
    p.tid = tid;
    p.head = this.keepBuf === undefined || this.keepFill === 0 ? EMPTY : this.keepBuf.subarray(0, this.keepFill);
    this.keepFill = 0;
    this.sink.packet(p);
  }
}

const EMPTY = new Uint8Array(0);
