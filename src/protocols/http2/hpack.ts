// HPACK header block decoding (RFC 7541), one decoder per direction of a
// connection. Pure: bytes in, fields out; the HTTP/2 session feeds it every
// complete header block (HEADERS + CONTINUATION, PUSH_PROMISE) of its
// direction, in order. Mid-stream attach, bounds and the rule that decides
// when a dynamic-table reference can be resolved: README.md, "HPACK after a
// mid-stream attach".

import { decodeHuffman, HUFFMAN_INVALID } from './huffman';

/** Appendix A: entry i (1-based) at [i - 1]. */
export const HPACK_STATIC_TABLE: readonly (readonly [name: string, value: string])[] = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];
const STATIC_COUNT = 61;
const STATIC_NAMES: readonly string[] = HPACK_STATIC_TABLE.map((e) => e[0]);
const STATIC_VALUES: readonly string[] = HPACK_STATIC_TABLE.map((e) => e[1]);

/** §4.1: an entry's size is its name and value octets plus this. */
export const HPACK_ENTRY_OVERHEAD = 32;
/** RFC 9113 §6.5.2: SETTINGS_HEADER_TABLE_SIZE before any SETTINGS. */
export const HPACK_DEFAULT_TABLE_SIZE = 4096;

/** Why a header block could not be decoded (each a COMPRESSION_ERROR, RFC 9113 §4.3). */
export type HpackErrorCode =
  /** The block ends inside a representation (an integer or a string). */
  | 'truncated'
  /** An integer past 2^32 - 1 or longer than 5 continuation octets. */
  | 'integer_overflow'
  /** Index 0 (§6.1). */
  | 'index_zero'
  /** An index past the static and dynamic tables, when the decoder knows the whole table. */
  | 'index_out_of_range'
  /** A Huffman string holding EOS or padded with more than 7 bits or not with ones (§5.2). */
  | 'huffman_invalid'
  /** A dynamic table size update after a field representation (§4.2). */
  | 'table_size_update_misplaced'
  /** A dynamic table size update above SETTINGS_HEADER_TABLE_SIZE (§6.3). */
  | 'table_size_over_limit';

/** `ok`, an error (the decoder is then poisoned), or `poisoned` (an earlier error: nothing is decoded any more). */
export type HpackResult = 'ok' | HpackErrorCode | 'poisoned';

/** The field's name and/or value (undefined) refers to dynamic-table content the decoder never saw. */
export const HPACK_FIELD_UNKNOWN = 1;
/** The field's name and/or value (undefined) was longer than `maxFieldLength` and not kept. */
export const HPACK_FIELD_OVERSIZED = 2;
/** Literal never indexed (§6.2.3): intermediaries must keep it out of tables; a hint that it is sensitive. */
export const HPACK_FIELD_NEVER_INDEXED = 4;

/**
 * The fields of one header block, in order, reused from block to block (the
 * strings are the only allocation). Names and values are latin1 strings: one
 * character per octet, so no octet is lost or guessed; undefined when not
 * known (`flags` says why).
 */
export class HpackFieldList {
  count = 0;
  readonly names: (string | undefined)[] = [];
  readonly values: (string | undefined)[] = [];
  readonly flags: number[] = [];
  /** RFC 9113 §6.5.2 size of the listed fields (name and value octets plus 32 each; unknown lengths count 0). */
  listSize = 0;
  /** Fields past `maxHeaderListSize` were decoded (to keep the table right) but not listed. */
  truncated = false;

  clear(): void {
    this.count = 0;
    this.listSize = 0;
    this.truncated = false;
  }

  push(name: string | undefined, value: string | undefined, flags: number): void {
    const i = this.count++;
    this.names[i] = name;
    this.values[i] = value;
    this.flags[i] = flags;
  }
}

export interface HpackDecoderOptions {
  /**
   * The decoder joined a connection already open: it never saw the blocks
   * before, so the dynamic table's contents and size are unknown at first.
   */
  readonly unsynced?: boolean;
  /**
   * SETTINGS_HEADER_TABLE_SIZE of the decoding endpoint: the most a size
   * update may set. Default 4096; unknown (any size update accepted) for an
   * unsynced decoder unless given.
   */
  readonly tableSizeLimit?: number;
  /** Longest name or value kept, in octets (default 8192); longer ones are undefined with HPACK_FIELD_OVERSIZED. */
  readonly maxFieldLength?: number;
  /** Most RFC 9113 §6.5.2 list size listed per block (default 65536); past it, fields are not listed. */
  readonly maxHeaderListSize?: number;
  /**
   * Most octets (entry sizes) of dynamic table the decoder keeps (default
   * 65536). A larger table works: older entries are forgotten and references
   * to them are unknown fields.
   */
  readonly maxStoredTableSize?: number;
}

export interface HpackDecoderStats {
  /** Header blocks decoded (successfully or not). */
  blocks: number;
  /** Fields listed. */
  fields: number;
  /** Dynamic-table references (whole field or name) the decoder could not resolve for certain: listed as unknown. */
  unknownReferences: number;
  /** Dynamic-table references resolved while unsynced (to entries inserted since the decoder attached). */
  unsyncedResolved: number;
  /** Names or values not kept for `maxFieldLength`. */
  oversizedStrings: number;
  /** Blocks whose fields went past `maxHeaderListSize`. */
  truncatedLists: number;
  /** Blocks refused with a decoding error (the first poisons the decoder). */
  errors: number;
  /** Blocks refused because an earlier one poisoned the decoder. */
  poisonedBlocks: number;
  /** Times the session reported a lost header block (`lostBlock`). */
  lostBlocks: number;
}

const TRUNCATED = -1;
const OVERFLOW = -2;
const UINT32_MAX = 0xffffffff;
/** Hard bound of the size options: what one decoder may hold or build. */
const OPTION_MAX = 1 << 24;

/** Node's own latin1 slice (what toString('latin1', ...) calls), minus the encoding dispatch; not in @types/node. */
type Latin1Buffer = Buffer & { latin1Slice(start: number, end: number): string };

/** Huffman output for every decoder (decoding is synchronous), grown to the largest maxFieldLength in use. */
let scratch = Buffer.allocUnsafe(8192) as Latin1Buffer;

function sizeOption(v: number | undefined, dflt: number, what: string, max = OPTION_MAX): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`HPACK ${what} must be an integer in 0..${max}`);
  return v;
}

/** A SETTINGS_HEADER_TABLE_SIZE (any uint32 a peer may announce: it only bounds size updates). */
function tableSizeLimit(v: number): number {
  return Number.isInteger(v) && v >= 0 ? Math.min(v, UINT32_MAX) : -1;
}

export class HpackDecoder {
  readonly stats: HpackDecoderStats = {
    blocks: 0, fields: 0, unknownReferences: 0, unsyncedResolved: 0, oversizedStrings: 0,
    truncatedLists: 0, errors: 0, poisonedBlocks: 0, lostBlocks: 0,
  };

  private readonly maxFieldLength: number;
  private readonly maxHeaderListSize: number;
  private readonly maxStored: number;
  /** SETTINGS_HEADER_TABLE_SIZE, -1 unknown. */
  private limit: number;
  /** The table's maximum size (§4.2) as the encoder last set it, -1 unknown. */
  private maxSize: number;
  /** The remembered entries are the whole table: tailGone and all certain, maximum size known. */
  private isSynced: boolean;
  /** No entry older than the remembered ones is left (none the decoder never saw). */
  private tailGone: boolean;
  /** The newest `certain` remembered entries are certainly in the table. */
  private certain = 0;
  private poisoned = false;

  // Remembered entries: the newest `count` insertions, in a ring. Slot of
  // entry j (0 = newest) is (head - 1 - j) & mask. nameLengths is -1 when the
  // name came from an entry the decoder did not know (size is then the
  // lower bound 32 + value length).
  private names: (string | undefined)[] = [];
  private values: (string | undefined)[] = [];
  private nameLengths = new Int32Array(0);
  private sizes = new Int32Array(0);
  private mask = -1;
  private head = 0;
  private count = 0;
  private storedSize = 0;
  /** Remembered entries whose size is a lower bound. */
  private inexact = 0;

  // Results of readInt / readString (no allocation per call).
  private pos = 0;
  private str: string | undefined = undefined;
  private strLen = 0;

  constructor(options: HpackDecoderOptions = {}) {
    this.maxFieldLength = sizeOption(options.maxFieldLength, 8192, 'maxFieldLength');
    this.maxHeaderListSize = sizeOption(options.maxHeaderListSize, 65536, 'maxHeaderListSize');
    this.maxStored = sizeOption(options.maxStoredTableSize, 65536, 'maxStoredTableSize');
    const unsynced = options.unsynced === true;
    this.limit = options.tableSizeLimit !== undefined ? sizeOption(options.tableSizeLimit, 0, 'tableSizeLimit', UINT32_MAX)
      : unsynced ? -1 : HPACK_DEFAULT_TABLE_SIZE;
    this.maxSize = unsynced ? -1 : HPACK_DEFAULT_TABLE_SIZE;
    this.isSynced = !unsynced;
    this.tailGone = !unsynced;
    if (scratch.length < this.maxFieldLength) scratch = Buffer.allocUnsafe(this.maxFieldLength) as Latin1Buffer;
  }

  /** The decoder knows the whole dynamic table: every reference resolves or is an error. */
  get synced(): boolean {
    return this.isSynced;
  }

  /** A decoding error happened: every later block is refused. */
  get isPoisoned(): boolean {
    return this.poisoned;
  }

  /** Entries remembered (the whole table when synced). */
  get tableLength(): number {
    return this.count;
  }

  /** §4.1 size of the remembered entries (the table's size when synced). */
  get tableSize(): number {
    return this.storedSize;
  }

  /** The table's maximum size as the last size update set it; undefined when unknown. */
  get maxTableSize(): number | undefined {
    return this.maxSize < 0 ? undefined : this.maxSize;
  }

  /** Remembered entry j (0 = newest, index 62 + j), or undefined past them. */
  entry(j: number): { readonly name: string | undefined; readonly value: string | undefined; readonly size: number } | undefined {
    if (!(j >= 0 && j < this.count)) return undefined;
    const slot = (this.head - 1 - j) & this.mask;
    return { name: this.names[slot], value: this.values[slot], size: this.sizes[slot]! };
  }

  /**
   * The decoding endpoint's SETTINGS_HEADER_TABLE_SIZE took effect (the
   * encoder acknowledged it); undefined when it is not known (so is anything
   * but an integer from 0 to 2^32 - 1: the session never makes this throw).
   */
  setTableSizeLimit(limit: number | undefined): void {
    this.limit = limit === undefined ? -1 : tableSizeLimit(limit);
  }

  /**
   * A header block of this direction was not seen (a capture gap, a block
   * over the session's bound): it may have inserted entries or changed the
   * table's size, so nothing remembered has a known index any more. The
   * decoder goes on as if it had just attached.
   */
  lostBlock(): void {
    this.stats.lostBlocks++;
    this.clearEntries();
    this.maxSize = -1;
    this.tailGone = false;
    this.isSynced = false;
  }

  /**
   * Decodes the complete header block `block[start, end)` into `out`
   * (cleared first). On any result but `ok`, `out` is empty and the block's
   * fields must be taken as unknown. Never throws.
   */
  decode(block: Buffer, out: HpackFieldList, start = 0, end = block.length): HpackResult {
    out.clear();
    if (this.poisoned) {
      this.stats.poisonedBlocks++;
      return 'poisoned';
    }
    this.stats.blocks++;
    const r = this.decodeBlock(block, Math.max(0, start), Math.min(end, block.length), out);
    if (r !== 'ok') {
      this.poisoned = true;
      this.stats.errors++;
      out.clear();
      return r;
    }
    this.stats.fields += out.count;
    return r;
  }

  private decodeBlock(src: Buffer, start: number, end: number, out: HpackFieldList): HpackResult {
    let pos = start;
    let fieldSeen = false;
    while (pos < end) {
      const b = src[pos]!;
      if (b >= 0x80) {
        // §6.1 indexed field
        const index = this.readInt(src, pos, end, 7);
        if (index < 0) return index === TRUNCATED ? 'truncated' : 'integer_overflow';
        pos = this.pos;
        if (index === 0) return 'index_zero';
        fieldSeen = true;
        if (index <= STATIC_COUNT) {
          const name = STATIC_NAMES[index - 1]!;
          const value = STATIC_VALUES[index - 1]!;
          this.list(out, name, value, name.length, value.length, 0);
          continue;
        }
        const j = index - STATIC_COUNT - 1;
        if (j < this.count) {
          if (!this.isSynced) this.stats.unsyncedResolved++;
          const slot = (this.head - 1 - j) & this.mask;
          const name = this.names[slot];
          const value = this.values[slot];
          const nameLength = this.nameLengths[slot]!;
          const valueLength = this.sizes[slot]! - HPACK_ENTRY_OVERHEAD - Math.max(nameLength, 0);
          let flags = 0;
          if (nameLength < 0) {
            flags |= HPACK_FIELD_UNKNOWN;
            this.stats.unknownReferences++;
          } else if (name === undefined) flags |= HPACK_FIELD_OVERSIZED;
          if (value === undefined) flags |= HPACK_FIELD_OVERSIZED;
          this.list(out, name, value, nameLength, valueLength, flags);
        } else if (this.isSynced) {
          return 'index_out_of_range';
        } else {
          this.stats.unknownReferences++;
          this.list(out, undefined, undefined, -1, -1, HPACK_FIELD_UNKNOWN);
        }
      } else if (b >= 0x40 || b < 0x20) {
        // §6.2.1 with incremental indexing (6-bit index), §6.2.2 without
        // indexing, §6.2.3 never indexed (4-bit index)
        const incremental = b >= 0x40;
        let flags = b >= 0x10 && b < 0x20 ? HPACK_FIELD_NEVER_INDEXED : 0;
        const index = this.readInt(src, pos, end, incremental ? 6 : 4);
        if (index < 0) return index === TRUNCATED ? 'truncated' : 'integer_overflow';
        pos = this.pos;
        fieldSeen = true;
        let name: string | undefined;
        let nameLength: number;
        if (index === 0) {
          const r = this.readString(src, pos, end, true);
          if (r !== 'ok') return r;
          pos = this.pos;
          name = this.str;
          nameLength = this.strLen;
          if (name === undefined) flags |= HPACK_FIELD_OVERSIZED;
        } else if (index <= STATIC_COUNT) {
          name = STATIC_NAMES[index - 1]!;
          nameLength = name.length;
        } else {
          const j = index - STATIC_COUNT - 1;
          if (j < this.count) {
            if (!this.isSynced) this.stats.unsyncedResolved++;
            const slot = (this.head - 1 - j) & this.mask;
            name = this.names[slot];
            nameLength = this.nameLengths[slot]!;
            if (nameLength < 0) {
              flags |= HPACK_FIELD_UNKNOWN;
              this.stats.unknownReferences++;
            } else if (name === undefined) flags |= HPACK_FIELD_OVERSIZED;
          } else if (this.isSynced) {
            return 'index_out_of_range';
          } else {
            this.stats.unknownReferences++;
            name = undefined;
            nameLength = -1;
            flags |= HPACK_FIELD_UNKNOWN;
          }
        }
        // A value the list will not show is still checked (Huffman errors)
        // but not made a string, unless the table keeps it.
        const r = this.readString(src, pos, end, incremental || !out.truncated);
        if (r !== 'ok') return r;
        pos = this.pos;
        const value = this.str;
        const valueLength = this.strLen;
        if (value === undefined && valueLength > this.maxFieldLength) flags |= HPACK_FIELD_OVERSIZED;
        if (incremental) this.insert(name, value, nameLength, valueLength);
        this.list(out, name, value, nameLength, valueLength, flags);
      } else {
        // §6.3 dynamic table size update: only before the first field (§4.2)
        if (fieldSeen) return 'table_size_update_misplaced';
        const size = this.readInt(src, pos, end, 5);
        if (size < 0) return size === TRUNCATED ? 'truncated' : 'integer_overflow';
        pos = this.pos;
        if (this.limit >= 0 && size > this.limit) return 'table_size_over_limit';
        this.resize(size);
      }
    }
    return 'ok';
  }

  /** Lists a field unless the list is past its bound (lengths -1 when unknown). */
  private list(out: HpackFieldList, name: string | undefined, value: string | undefined, nameLength: number, valueLength: number, flags: number): void {
    if (out.truncated) return;
    const size = HPACK_ENTRY_OVERHEAD + Math.max(nameLength, 0) + Math.max(valueLength, 0);
    if (out.listSize + size > this.maxHeaderListSize) {
      out.truncated = true;
      this.stats.truncatedLists++;
      return;
    }
    out.listSize += size;
    out.push(name, value, flags);
  }

  /**
   * §5.1 integer with an N-bit prefix at src[pos]; sets this.pos after it.
   * Returns the value, TRUNCATED or OVERFLOW.
   */
  private readInt(src: Buffer, pos: number, end: number, prefixBits: number): number {
    const max = (1 << prefixBits) - 1;
    let value = src[pos++]! & max;
    if (value === max) {
      let factor = 1;
      for (;;) {
        if (pos >= end) return TRUNCATED;
        const b = src[pos++]!;
        value += (b & 0x7f) * factor;
        if (b < 0x80) break;
        factor *= 128;
        // Five continuation octets carry 35 bits: more than any uint32 needs.
        if (factor > 2 ** 28) return OVERFLOW;
      }
      if (value > UINT32_MAX) return OVERFLOW;
    }
    this.pos = pos;
    return value;
  }

  /**
   * §5.2 string literal at src[pos]; sets this.pos after it, this.strLen to
   * its decoded length and this.str to it when `keep` and not longer than
   * maxFieldLength (else undefined).
   */
  private readString(src: Buffer, pos: number, end: number, keep: boolean): HpackResult {
    if (pos >= end) return 'truncated';
    const huffman = src[pos]! >= 0x80;
    const length = this.readInt(src, pos, end, 7);
    if (length < 0) return length === TRUNCATED ? 'truncated' : 'integer_overflow';
    pos = this.pos;
    if (length > end - pos) return 'truncated';
    const stop = pos + length;
    this.pos = stop;
    if (!huffman) {
      this.strLen = length;
      this.str = keep && length <= this.maxFieldLength ? (src as Latin1Buffer).latin1Slice(pos, stop) : undefined;
    } else {
      const n = decodeHuffman(src, pos, stop, keep ? scratch : null);
      if (n === HUFFMAN_INVALID) return 'huffman_invalid';
      this.strLen = n;
      this.str = keep && n <= this.maxFieldLength ? scratch.latin1Slice(0, n) : undefined;
    }
    if (keep && this.str === undefined) this.stats.oversizedStrings++;
    return 'ok';
  }

  /**
   * §4.4 insertion, with what the decoder can know of evictions (README).
   * An entry is dropped only when certainly evicted: the sizes kept are
   * exact or lower bounds, so a remembered sum over the maximum size proves
   * the oldest of them gone.
   */
  private insert(name: string | undefined, value: string | undefined, nameLength: number, valueLength: number): void {
    const exact = nameLength >= 0;
    const size = HPACK_ENTRY_OVERHEAD + valueLength + (exact ? nameLength : 0);
    const max = this.maxSize;
    if (max < 0) {
      // Whether it (or anything older) is still there depends on a size the
      // decoder does not know.
      this.push(name, value, nameLength, size);
      this.certain = 0;
    } else if (size > max) {
      // Larger than the table (a lower bound suffices): it empties it.
      this.clearEntries();
      this.tailGone = true;
    } else {
      let dropped = false;
      while (this.count > 0 && this.storedSize + size > max) {
        this.dropOldest();
        dropped = true;
      }
      // Entries the decoder never saw are older than every remembered one.
      if (dropped) this.tailGone = true;
      this.push(name, value, nameLength, size);
      // What was certainly there still fits beside the new entry.
      this.certain = this.inexact === 0 ? Math.min(this.certain, this.count - 1) + 1 : 0;
      if (max - this.storedSize < HPACK_ENTRY_OVERHEAD) this.tailGone = true;
    }
    this.settle();
  }

  /** §4.3 / §6.3: the encoder set the table's maximum size. */
  private resize(size: number): void {
    this.maxSize = size;
    let dropped = false;
    while (this.count > 0 && this.storedSize > size) {
      this.dropOldest();
      dropped = true;
    }
    if (dropped) this.tailGone = true;
    if (this.inexact > 0) this.certain = 0;
    // No unseen entry (at least 32 octets) has room beside the remembered ones.
    if (size - this.storedSize < HPACK_ENTRY_OVERHEAD) this.tailGone = true;
    this.settle();
  }

  /** The memory bound, then whether the remembered entries are the table. */
  private settle(): void {
    while (this.count > 0 && this.storedSize > this.maxStored) {
      this.dropOldest();
      this.tailGone = false;
    }
    this.isSynced = this.tailGone && this.certain === this.count && this.maxSize >= 0;
  }

  private push(name: string | undefined, value: string | undefined, nameLength: number, size: number): void {
    if (this.count === this.mask + 1) this.grow();
    const slot = this.head;
    this.names[slot] = name;
    this.values[slot] = value;
    this.nameLengths[slot] = nameLength;
    this.sizes[slot] = size;
    this.head = (slot + 1) & this.mask;
    this.count++;
    this.storedSize += size;
  }

  private dropOldest(): void {
    const slot = (this.head - this.count) & this.mask;
    this.storedSize -= this.sizes[slot]!;
    if (this.nameLengths[slot]! < 0) this.inexact--;
    this.names[slot] = undefined;
    this.values[slot] = undefined;
    this.count--;
    if (this.certain > this.count) this.certain = this.count;
  }

  private clearEntries(): void {
    while (this.count > 0) this.dropOldest();
  }

  /** Doubles the ring, oldest entry to slot 0. */
  private grow(): void {
    const capacity = Math.max(16, 2 * (this.mask + 1));
    const names: (string | undefined)[] = new Array(capacity).fill(undefined);
    const values: (string | undefined)[] = new Array(capacity).fill(undefined);
    const nameLengths = new Int32Array(capacity);
    const sizes = new Int32Array(capacity);
    for (let k = 0; k < this.count; k++) {
      const from = (this.head - this.count + k) & this.mask;
      names[k] = this.names[from];
      values[k] = this.values[from];
      nameLengths[k] = this.nameLengths[from]!;
      sizes[k] = this.sizes[from]!;
    }
    this.names = names;
    this.values = values;
    this.nameLengths = nameLengths;
    this.sizes = sizes;
    this.mask = capacity - 1;
    this.head = this.count & this.mask;
  }
}
