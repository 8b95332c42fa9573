// The protobuf wire format, as much of it as OTLP export needs: a writer that
// builds a message in one reused buffer (lengths back-patched), and a field
// reader for the small messages collectors send back.
//
// Wire format: https://protobuf.dev/programming-guides/encoding/

const TWO_32 = 4294967296;

/** Bytes of the varint of `v`, 0 <= v < 2^32. */
export function varint32Size(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

/**
 * Appends to one buffer that grows and is kept for the next message. A
 * length-delimited field is opened with `begin(reserve)`, which keeps
 * `reserve` bytes for its length, and closed with `end`, which writes the
 * length there, moving the content when the length needs another size.
 * Choose `reserve` as the usual size of the length and moves are rare.
 */
export class ProtoWriter {
  buf: Buffer;
  pos = 0;

  constructor(
    initialBytes = 64 * 1024,
    /** Largest buffer worth reusing (`pooled`). */
    private readonly keepBytes = 4 * 1024 * 1024,
  ) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  reset(): void {
    this.pos = 0;
  }

  /** Room for `n` more bytes. */
  ensure(n: number): void {
    if (this.pos + n > this.buf.length) this.grow(n);
  }

  private grow(n: number): void {
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** One byte; the caller made room (`ensure`). */
  byte(b: number): void {
    this.buf[this.pos++] = b;
  }

  /** 0 <= v < 2^32. */
  varint32(v: number): void {
    this.ensure(5);
    const buf = this.buf;
    let p = this.pos;
    while (v > 0x7f) {
      buf[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    buf[p++] = v;
    this.pos = p;
  }

  /** An integer in the int64 range; negatives in two's complement (10 bytes), as int64 fields take them. */
  varint64(v: number): void {
    if (v >= 0 && v < TWO_32) return this.varint32(v);
    let lo: number;
    let hi: number;
    if (v >= 0) {
      hi = Math.floor(v / TWO_32);
      lo = v - hi * TWO_32;
    } else {
      const a = -v;
      const ahi = Math.floor(a / TWO_32);
      lo = (~(a - ahi * TWO_32) >>> 0) + 1;
      hi = ~ahi >>> 0;
      if (lo === TWO_32) {
        lo = 0;
        hi = (hi + 1) >>> 0;
      }
    }
    this.ensure(10);
    const buf = this.buf;
    let p = this.pos;
    while (hi > 0 || lo > 0x7f) {
      buf[p++] = (lo & 0x7f) | 0x80;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    buf[p++] = lo;
    this.pos = p;
  }

  fixed32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(v >>> 0, this.pos);
    this.pos += 4;
  }

  /** A 64-bit value from its exact 32-bit halves. */
  fixed64(lo: number, hi: number): void {
    this.ensure(8);
    const buf = this.buf;
    const p = this.pos;
    buf[p] = lo;
    buf[p + 1] = lo >>> 8;
    buf[p + 2] = lo >>> 16;
    buf[p + 3] = lo >>> 24;
    buf[p + 4] = hi;
    buf[p + 5] = hi >>> 8;
    buf[p + 6] = hi >>> 16;
    buf[p + 7] = hi >>> 24;
    this.pos = p + 8;
  }

  double(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }

  /** Bytes as they are (a pre-encoded field, tag included). */
  raw(bytes: Uint8Array): void {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** `src[from, to)` as they are (encoded items, tags included). */
  copy(src: Buffer, from: number, to: number): void {
    const n = to - from;
    this.ensure(n);
    src.copy(this.buf, this.pos, from, to);
    this.pos += n;
  }

  /** Length-prefixed bytes. */
  bytes(bytes: Uint8Array): void {
    this.varint32(bytes.length);
    this.raw(bytes);
  }

  /** Length-prefixed UTF-8 (lone surrogates become U+FFFD, as TextEncoder does). */
  string(s: string): void {
    const n = s.length;
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    this.ensure(3 * n + 5);
    const buf = this.buf;
    // ASCII, the usual case, is one pass: its byte length is its length.
    const at = this.pos;
    const start = at + varint32Size(n);
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) return this.utf8(s);
      buf[start + i] = c;
    }
    this.pos = at;
    this.varint32(n);
    this.pos = start + n;
  }

  private utf8(s: string): void {
    const len = Buffer.byteLength(s, 'utf8');
    this.varint32(len);
    this.pos += this.buf.write(s, this.pos, len, 'utf8');
  }

  /**
   * Writes a run of lowercase or uppercase hex digits as bytes (trace and span
   * ids), `bytes` of them. False, with nothing written, when `hex` is not
   * exactly that many digits.
   */
  hex(hex: string, bytes: number): boolean {
    if (hex.length !== bytes * 2) return false;
    this.ensure(bytes);
    const buf = this.buf;
    const p = this.pos;
    let bad = 0;
    for (let i = 0; i < bytes; i++) {
      const h = nibble(hex.charCodeAt(2 * i));
      const l = nibble(hex.charCodeAt(2 * i + 1));
      bad |= h | l;
      buf[p + i] = (h << 4) | l;
    }
    if (bad < 0) return false;
    this.pos = p + bytes;
    return true;
  }

  /** Opens a length-delimited field's content (its tag already written); returns where its length goes. */
  begin(reserve: number): number {
    this.ensure(reserve);
    const at = this.pos;
    this.pos += reserve;
    return at;
  }

  /** Closes what `begin(reserve)` opened at `at`. */
  end(at: number, reserve: number): void {
    const start = at + reserve;
    let len = this.pos - start;
    const size = varint32Size(len);
    if (size !== reserve) {
      if (size > reserve) this.ensure(size - reserve);
      this.buf.copyWithin(at + size, start, this.pos);
      this.pos += size - reserve;
    }
    const buf = this.buf;
    let p = at;
    while (len > 0x7f) {
      buf[p++] = (len & 0x7f) | 0x80;
      len >>>= 7;
    }
    buf[p] = len;
  }

  /** A copy of what was written, and a reset. */
  finish(): Buffer {
    const out = Buffer.allocUnsafe(this.pos);
    this.buf.copy(out, 0, 0, this.pos);
    this.pos = 0;
    return out;
  }

  /** Whether the buffer is worth keeping for reuse (a huge one must not pin its memory). */
  pooled(): boolean {
    return this.buf.length <= this.keepBytes;
  }
}

/** Hex digit value, or -1. */
const NIBBLE = (() => {
  const t = new Int8Array(128).fill(-1);
  for (let i = 0; i < 10; i++) t[48 + i] = i;
  for (let i = 0; i < 6; i++) {
    t[97 + i] = 10 + i;
    t[65 + i] = 10 + i;
  }
  return t;
})();

function nibble(c: number): number {
  return c < 128 ? NIBBLE[c]! : -1;
}

// ---------------------------------------------------------------- reading

export interface PbField {
  num: number;
  varint?: bigint;
  bytes?: Buffer;
}

/** The fields of a message (varint, 64-bit, length-delimited, 32-bit). Throws on truncation. */
export function* fields(buf: Buffer): Generator<PbField> {
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (pos >= buf.length || shift > 63n) throw new Error('truncated varint');
      const b = buf[pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
    }
  };
  while (pos < buf.length) {
    const tag = Number(varint());
    const num = tag >>> 3;
    const wire = tag & 7;
    if (wire === 0) yield { num, varint: varint() };
    else if (wire === 1) {
      if (pos + 8 > buf.length) throw new Error('truncated');
      pos += 8;
      yield { num };
    } else if (wire === 2) {
      const len = Number(varint());
      if (pos + len > buf.length) throw new Error('truncated');
      yield { num, bytes: buf.subarray(pos, pos + len) };
      pos += len;
    } else if (wire === 5) {
      if (pos + 4 > buf.length) throw new Error('truncated');
      pos += 4;
      yield { num };
    } else throw new Error(`wire type ${wire}`);
  }
}
