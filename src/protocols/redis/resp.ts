// An incremental RESP2/RESP3 reader for one direction of a connection
// (https://redis.io/docs/latest/develop/reference/protocol-spec/). Bytes come
// in chunks cut anywhere; values are walked by their declared lengths, never
// buffered: a bulk string's body is skipped, and only the bytes the listener
// asks for (a command's name and the arguments its record shows, the first
// elements of a reply) are copied, into fixed scratch space. What a top-level
// value was is left in `top` when the listener hears `valueEnd`.

/** RESP type bytes (RESP2: + - : $ *; RESP3 adds the rest). */
export const RespType = {
  simple: 0x2b, // +
  error: 0x2d, // -
  integer: 0x3a, // :
  bulk: 0x24, // $
  array: 0x2a, // *
  null: 0x5f, // _
  boolean: 0x23, // #
  double: 0x2c, // ,
  bigNumber: 0x28, // (
  bulkError: 0x21, // !
  verbatim: 0x3d, // =
  map: 0x25, // %
  set: 0x7e, // ~
  attribute: 0x7c, // |
  push: 0x3e, // >
  /** Not on the wire: a command sent inline (`PING\r\n`), request side only. */
  inline: 0x69,
} as const;

const CR = 0x0d;
const LF = 0x0a;

/** A line (type byte and header, simple string, error, inline command) keeps this many bytes; longer lines are walked, not kept. */
export const RESP_LINE_KEEP = 1024;
/** Nesting the reader follows; deeper values are refused as malformed (Redis itself nests far less). */
const MAX_DEPTH = 64;
/** Elements of a top-level aggregate whose facts are kept (their count is always known). */
export const RESP_MAX_TRACKED = 1024;
/** Bytes of element text kept per top-level value. */
export const RESP_ARG_BYTES = 8192;
/** A declared length past this is not something Redis sends (its proto-max-bulk-len tops out at 2^32 - 1... with a margin). */
const MAX_LENGTH = 2 ** 40;
/** Aggregate counts past this are refused (no Redis reply or command has so many elements). */
const MAX_COUNT = 2 ** 31 - 1;

export type RespError =
  | 'bad-type' // a byte that starts no RESP value
  | 'bad-header' // a length, count or scalar line that is not what its type allows
  | 'bad-terminator' // a bulk body not followed by CRLF, a line without CR
  | 'too-deep' // nesting past MAX_DEPTH
  | 'streamed'; // RESP3 streamed strings or aggregates (`$?`, `*?`): Redis does not send them; not followed

export interface RespListener {
  /** A top-level value (or the attribute before it) begins at stream position `pos`. */
  valueBegin(pos: number): void;
  /** The top-level value is complete (its last byte is at `pos - 1`); `reader.top` describes it. */
  valueEnd(pos: number): void;
  /** How many bytes of element `index` (a string of `length` bytes) of the top-level aggregate to keep. */
  keep(index: number, length: number): number;
  /** The bytes are not RESP: the reader stopped and waits for `resume()`. */
  malformed(error: RespError, pos: number): void;
}

/** What the last complete top-level value was. Reused: read it in valueEnd. */
export class RespTop {
  /** Its type byte (an attribute before it is not counted). */
  type = 0;
  /** Null (RESP2 `$-1`, `*-1`, RESP3 `_`). */
  isNull = false;
  /** Aggregates: element count (pairs for maps); strings: length; integers: the value (as a double). */
  size = 0;
  /** Line types (simple string, error, integer, double, ...) and bulk errors: the text kept (up to RESP_LINE_KEEP bytes). */
  /** Where the line's text is (valid during valueEnd: the reader's scratch is reused for the next line). */
  private lineSource: Buffer | undefined;
  private lineFrom = 0;
  private lineTo = 0;
  private lineText: string | undefined;

  /** The line's text, decoded on first use: most replies (`+OK`) are compared, never decoded. */
  get line(): string {
    if (this.lineText === undefined) this.lineText = this.lineSource === undefined ? '' : this.lineSource.toString('utf8', this.lineFrom, this.lineTo);
    return this.lineText;
  }

  setLine(source: Buffer, from: number, to: number): void {
    this.lineSource = source;
    this.lineFrom = from;
    this.lineTo = to;
    this.lineText = undefined;
  }

  /** Whether the line is exactly `ascii`, without decoding it. */
  lineIs(ascii: string): boolean {
    if (this.lineSource === undefined || this.lineTo - this.lineFrom !== ascii.length) return false;
    for (let i = 0; i < ascii.length; i++) if (this.lineSource[this.lineFrom + i] !== ascii.charCodeAt(i)) return false;
    return true;
  }

  /** The line's first byte (-1 when empty). */
  lineByte(): number {
    return this.lineSource === undefined || this.lineTo === this.lineFrom ? -1 : this.lineSource[this.lineFrom]!;
  }
  /** Elements tracked (min(size, maxTracked)) of an aggregate. */
  tracked = 0;
  /**
   * Per tracked element: type byte, full length (strings) or value
   * (integers), start and length of its kept bytes in `bytes`. Grown on
   * demand up to `maxTracked` and RESP_ARG_BYTES: most sessions never need
   * more than a few elements and a few dozen bytes, and idle connections are many.
   */
  elementType = new Uint8Array(8);
  elementSize = new Float64Array(8);
  keptStart = new Int32Array(8);
  keptLength = new Int32Array(8);
  /** Kept element bytes. */
  bytes = Buffer.allocUnsafe(128);
  used = 0;

  constructor(
    /** Elements of a top-level aggregate whose facts are kept (their count is always known). */
    readonly maxTracked: number = RESP_MAX_TRACKED,
  ) {}

  /** Room for element `i` (i < maxTracked). */
  slot(i: number): void {
    if (i < this.elementType.length) return;
    const n = Math.min(this.maxTracked, Math.max(i + 1, this.elementType.length * 2));
    const grow = <T extends Uint8Array | Float64Array | Int32Array>(a: T, make: (n: number) => T): T => {
      const b = make(n);
      b.set(a);
      return b;
    };
    this.elementType = grow(this.elementType, (k) => new Uint8Array(k));
    this.elementSize = grow(this.elementSize, (k) => new Float64Array(k));
    this.keptStart = grow(this.keptStart, (k) => new Int32Array(k));
    this.keptLength = grow(this.keptLength, (k) => new Int32Array(k));
  }

  /** Room for `count` more kept bytes; returns how many fit under RESP_ARG_BYTES. */
  reserve(count: number): number {
    const k = Math.max(0, Math.min(count, RESP_ARG_BYTES - this.used));
    if (this.used + k > this.bytes.length) {
      const b = Buffer.allocUnsafe(Math.min(RESP_ARG_BYTES, Math.max(this.used + k, this.bytes.length * 2)));
      this.bytes.copy(b, 0, 0, this.used);
      this.bytes = b;
    }
    return k;
  }

  reset(): void {
    this.type = 0;
    this.isNull = false;
    this.size = 0;
    this.lineSource = undefined;
    this.lineText = undefined;
    this.tracked = 0;
    this.used = 0;
  }

  /** Kept text of element `i` (latin1: command names and keys are compared as bytes). */
  text(i: number, encoding: BufferEncoding = 'latin1'): string {
    return this.bytes.toString(encoding, this.keptStart[i]!, this.keptStart[i]! + this.keptLength[i]!);
  }

  /** Whether element `i` was kept whole. */
  whole(i: number): boolean {
    return this.keptLength[i] === this.elementSize[i];
  }
}

const enum State {
  /** Between values, or reading a line into `line`. */
  Line,
  /** Inside a string body: `bodyLeft` bytes to go. */
  Body,
  /** The CR LF after a body: `crlfLeft` (2 or 1) to go. */
  Crlf,
  /** Stopped at malformed bytes until resume(). */
  Stopped,
}

export class RespReader {
  readonly top: RespTop;
  private state = State.Line;
  /** The line being read: its first RESP_LINE_KEEP bytes, its full length. */
  private readonly lineBytes = Buffer.allocUnsafe(RESP_LINE_KEEP);
  private lineLength = 0;
  private bodyLeft = 0;
  private crlfLeft = 0;
  /** Type of the string whose body is being read. */
  private bodyType = 0;
  /** Bytes still to copy of the body being read, and where (an element slot, or -1 for a bulk error's text). */
  private keepLeft = 0;
  private keepSlot = -2;
  /** Aggregate frames: elements left in each, and whether it is an attribute (whose elements belong to no one). */
  private readonly left = new Float64Array(MAX_DEPTH);
  private readonly attribute = new Uint8Array(MAX_DEPTH);
  private depth = 0;
  /** A top-level value has begun (valueBegin was said). */
  private inValue = false;
  /** Bulk error text being kept (top-level `!`). */
  private errorBytes = 0;

  constructor(
    private readonly listener: RespListener,
    /** Request side: a line starting with a letter at top level is an inline command. */
    private readonly inline: boolean,
    maxTracked = RESP_MAX_TRACKED,
  ) {
    this.top = new RespTop(maxTracked);
  }

  /** Between top-level values (a resync may start here). */
  get idle(): boolean {
    return this.state === State.Line && !this.inValue && this.lineLength === 0;
  }

  get stopped(): boolean {
    return this.state === State.Stopped;
  }

  /** Forget the value in progress and read from a value boundary. */
  resume(): void {
    this.state = State.Line;
    this.lineLength = 0;
    this.depth = 0;
    this.inValue = false;
    this.keepLeft = 0;
    this.top.reset();
  }

  stop(): void {
    this.state = State.Stopped;
  }

  /**
   * `bytes` not captured at stream position `pos`. Inside a string body
   * (and its CR LF) they are skipped exactly: what they held was not needed
   * to find the next value. Elsewhere, or past the CR LF, the reader loses
   * its place: false, and it stops.
   */
  skip(pos: number, bytes: number): boolean {
    if (this.state === State.Body && bytes <= this.bodyLeft + 2) {
      const body = Math.min(bytes, this.bodyLeft);
      this.bodyLeft -= body;
      // What the element kept stays a prefix (keptLength < its length): texts stop there.
      this.keepLeft = 0;
      if (this.bodyLeft > 0) return true;
      this.state = State.Crlf;
      this.crlfLeft = 2;
      bytes -= body;
    }
    if (this.state === State.Crlf && bytes <= this.crlfLeft) {
      this.crlfLeft -= bytes;
      if (this.crlfLeft === 0) {
        this.state = State.Line;
        this.endString(pos + bytes);
      }
      return true;
    }
    this.state = State.Stopped;
    return bytes === 0;
  }

  /** Reads data[from..]; `pos` is the stream position of data[from]. */
  feed(data: Uint8Array, from: number, pos: number): void {
    let i = from;
    const n = data.length;
    const base = pos - from;
    while (i < n) {
      switch (this.state) {
        case State.Stopped:
          return;
        case State.Line: {
          if (!this.inValue && this.lineLength === 0) {
            this.inValue = true;
            this.top.reset();
            this.listener.valueBegin(base + i);
          }
          let lf = -1;
          for (let k = i; k < n; k++) {
            if (data[k] === LF) {
              lf = k;
              break;
            }
          }
          const end = lf < 0 ? n : lf + 1;
          const room = RESP_LINE_KEEP - this.lineLength;
          if (room > 0) {
            const take = Math.min(room, end - i);
            for (let k = 0; k < take; k++) this.lineBytes[this.lineLength + k] = data[i + k]!;
          }
          this.lineLength += end - i;
          i = end;
          if (lf >= 0) this.line(base + i);
          break;
        }
        case State.Body: {
          const take = Math.min(this.bodyLeft, n - i);
          if (this.keepLeft > 0) {
            const k = Math.min(this.keepLeft, take);
            this.copyKept(data, i, k);
            this.keepLeft -= k;
          }
          this.bodyLeft -= take;
          i += take;
          if (this.bodyLeft === 0) {
            this.state = State.Crlf;
            this.crlfLeft = 2;
          }
          break;
        }
        case State.Crlf: {
          const want = this.crlfLeft === 2 ? CR : LF;
          if (data[i] !== want) {
            this.fail('bad-terminator', base + i);
            return;
          }
          i++;
          if (--this.crlfLeft === 0) {
            this.state = State.Line;
            this.endString(base + i);
          }
          break;
        }
      }
    }
  }

  private copyKept(data: Uint8Array, at: number, count: number): void {
    const t = this.top;
    if (this.keepSlot >= 0) {
      // Kept pieces are short (names, keys): a loop, not a subarray view per piece.
      if (count <= 64) for (let k = 0; k < count; k++) t.bytes[t.used + k] = data[at + k]!;
      else t.bytes.set(data.subarray(at, at + count), t.used);
      t.used += count;
      t.keptLength[this.keepSlot]! += count;
    } else {
      // A top-level bulk error's text goes to the line scratch.
      const room = Math.min(count, RESP_LINE_KEEP - this.errorBytes);
      for (let k = 0; k < room; k++) this.lineBytes[this.errorBytes + k] = data[at + k]!;
      this.errorBytes += room;
    }
  }

  private fail(error: RespError, pos: number): void {
    this.state = State.Stopped;
    this.listener.malformed(error, pos);
  }

  /** A whole line is in `lineBytes` (kept part) and ends at stream position `end`. */
  private line(end: number): void {
    const length = this.lineLength;
    this.lineLength = 0;
    const kept = Math.min(length, RESP_LINE_KEEP);
    const b = this.lineBytes;
    const type = b[0]!;
    // The line without CR LF; inline commands may end in a bare LF.
    const hasCr = length >= 2 && (length <= RESP_LINE_KEEP ? b[length - 2] === CR : true);
    const textEnd = Math.min(kept, length - (hasCr ? 2 : 1));
    const t = this.top;
    const topLevel = this.depth === 0;
    const tracked = this.depth === 1 && this.attribute[0] === 0 ? this.nextIndex() : -1;
    if (this.inline && topLevel && textEnd <= 0) {
      // An empty line between commands: Redis skips it (redis-cli --pipe sends one before its ECHO marker).
      this.inValue = false;
      return;
    }
    if (this.inline && topLevel && isLetter(type)) {
      this.inlineCommand(textEnd);
      this.complete(end);
      return;
    }
    if (!hasCr) return this.fail('bad-terminator', end - 1);
    switch (type) {
      case RespType.simple:
      case RespType.error:
      case RespType.double:
      case RespType.bigNumber:
      case RespType.boolean:
      case RespType.integer:
      case RespType.null: {
        if (type === RespType.null && textEnd !== 1) return this.fail('bad-header', end - 1);
        if (type === RespType.boolean && (textEnd !== 2 || (b[1] !== 0x74 && b[1] !== 0x66))) return this.fail('bad-header', end - 1);
        let value = 0;
        if (type === RespType.integer) {
          const v = parseInteger(b, 1, textEnd);
          if (v === undefined) return this.fail('bad-header', end - 1);
          value = v;
        }
        if (topLevel) {
          t.type = type;
          t.isNull = type === RespType.null;
          t.size = value;
          if (type !== RespType.integer) t.setLine(b, 1, textEnd);
        } else if (tracked >= 0) {
          t.slot(tracked);
          t.elementType[tracked] = type;
          t.elementSize[tracked] = type === RespType.integer ? value : textEnd - 1;
          t.keptStart[tracked] = t.used;
          t.keptLength[tracked] = 0;
          if (type === RespType.simple) {
            const k = t.reserve(Math.min(this.listener.keep(tracked, textEnd - 1), textEnd - 1));
            if (k > 0) {
              b.copy(t.bytes, t.used, 1, 1 + k);
              t.used += k;
              t.keptLength[tracked] = k;
            }
          }
        }
        this.complete(end);
        return;
      }
      case RespType.bulk:
      case RespType.bulkError:
      case RespType.verbatim: {
        if (textEnd === 2 && b[1] === 0x3f) return this.fail('streamed', end - 1);
        const len = parseInteger(b, 1, textEnd);
        if (len === undefined || len < -1 || len > MAX_LENGTH || (len === -1 && type !== RespType.bulk)) return this.fail('bad-header', end - 1);
        if (topLevel) {
          t.type = type;
          t.isNull = len === -1;
          t.size = len;
        }
        if (len === -1) {
          if (tracked >= 0) {
            t.slot(tracked);
            t.elementType[tracked] = RespType.null;
            t.elementSize[tracked] = 0;
            t.keptStart[tracked] = t.used;
            t.keptLength[tracked] = 0;
          }
          this.complete(end);
          return;
        }
        this.bodyType = type;
        this.keepLeft = 0;
        this.keepSlot = -2;
        if (tracked >= 0) {
          t.slot(tracked);
          t.elementType[tracked] = type;
          t.elementSize[tracked] = len;
          t.keptStart[tracked] = t.used;
          t.keptLength[tracked] = 0;
          this.keepLeft = t.reserve(Math.min(this.listener.keep(tracked, len), len));
          this.keepSlot = tracked;
        } else if (topLevel && type === RespType.bulkError) {
          this.errorBytes = 0;
          this.keepLeft = len;
          this.keepSlot = -1;
        }
        if (len === 0) {
          this.state = State.Crlf;
          this.crlfLeft = 2;
        } else {
          this.state = State.Body;
          this.bodyLeft = len;
        }
        return;
      }
      case RespType.array:
      case RespType.map:
      case RespType.set:
      case RespType.attribute:
      case RespType.push: {
        if (textEnd === 2 && b[1] === 0x3f) return this.fail('streamed', end - 1);
        const count = parseInteger(b, 1, textEnd);
        if (count === undefined || count < -1 || count > MAX_COUNT || (count === -1 && type !== RespType.array && type !== RespType.map)) {
          return this.fail('bad-header', end - 1);
        }
        if (type !== RespType.attribute && topLevel) {
          t.type = type;
          t.isNull = count === -1;
          t.size = Math.max(count, 0);
          t.tracked = Math.min(t.size * (type === RespType.map ? 2 : 1), t.maxTracked);
        } else if (tracked >= 0) {
          t.slot(tracked);
          t.elementType[tracked] = type;
          t.elementSize[tracked] = count;
          t.keptStart[tracked] = t.used;
          t.keptLength[tracked] = 0;
        }
        const elements = type === RespType.map || type === RespType.attribute ? count * 2 : count;
        if (elements <= 0) {
          // An empty attribute precedes the value it describes: nothing completes.
          if (type !== RespType.attribute) this.complete(end);
          return;
        }
        if (this.depth >= MAX_DEPTH) return this.fail('too-deep', end - 1);
        this.left[this.depth] = elements;
        this.attribute[this.depth] = type === RespType.attribute ? 1 : 0;
        this.depth++;
        return;
      }
      default:
        return this.fail('bad-type', end - length);
    }
  }

  /** Index in the top-level aggregate of the element starting now. */
  private nextIndex(): number {
    const t = this.top;
    const index = (t.type === RespType.map ? t.size * 2 : t.size) - this.left[0]!;
    return index < t.maxTracked ? index : -1;
  }

  private endString(end: number): void {
    if (this.depth === 0 && this.bodyType === RespType.bulkError) {
      this.top.setLine(this.lineBytes, 0, this.errorBytes);
    }
    this.keepLeft = 0;
    this.complete(end);
  }

  /** A value ended at `end`: up the frames until one still waits for elements, or the top-level value is done. */
  private complete(end: number): void {
    while (this.depth > 0) {
      const d = this.depth - 1;
      if (--this.left[d]! > 0) return;
      this.depth--;
      // An attribute belongs to the value after it: that value is what completes.
      if (this.attribute[d] === 1) return;
    }
    this.inValue = false;
    this.listener.valueEnd(end);
  }

  /** An inline command: words separated by spaces, kept as elements (from the kept part of the line). */
  private inlineCommand(textEnd: number): void {
    const t = this.top;
    const b = this.lineBytes;
    t.type = RespType.inline;
    // Counted first: which arguments are keys may depend on how many there are.
    let words = 0;
    for (let i = 0; i < textEnd; i++) if (!isSpace(b[i]!) && (i === 0 || isSpace(b[i - 1]!))) words++;
    t.size = words;
    t.tracked = 0;
    let count = 0;
    let i = 0;
    while (i < textEnd && count < t.maxTracked) {
      while (i < textEnd && isSpace(b[i]!)) i++;
      if (i >= textEnd) break;
      const start = i;
      while (i < textEnd && !isSpace(b[i]!)) i++;
      const len = i - start;
      t.slot(count);
      t.elementType[count] = RespType.bulk;
      t.elementSize[count] = len;
      t.keptStart[count] = t.used;
      t.keptLength[count] = 0;
      t.tracked = count + 1;
      const k = t.reserve(Math.min(this.listener.keep(count, len), len));
      b.copy(t.bytes, t.used, start, start + k);
      t.used += k;
      t.keptLength[count] = k;
      count++;
    }
  }
}

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x09;
}

function isLetter(b: number): boolean {
  return (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
}

/** A decimal integer (optional sign) in b[from..to), or undefined. */
export function parseInteger(b: Uint8Array, from: number, to: number): number | undefined {
  if (from >= to || to - from > 20) return undefined;
  let i = from;
  let negative = false;
  if (b[i] === 0x2d || b[i] === 0x2b) {
    negative = b[i] === 0x2d;
    i++;
    if (i >= to) return undefined;
  }
  let v = 0;
  for (; i < to; i++) {
    const c = b[i]! - 0x30;
    if (c < 0 || c > 9) return undefined;
    v = v * 10 + c;
  }
  return negative ? -v : v;
}
