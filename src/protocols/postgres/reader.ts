// Incremental message reader for one direction of a PostgreSQL connection.
// Fed the direction's captured bytes in stream order, cut anywhere; hands
// each message to a sink once its last byte is read. What a message's body
// keeps is the sink's choice (`keep`): the rest is skipped by its length
// without being buffered, so a 1 GiB CopyData or DataRow costs nothing but
// counting. Pure: no clock, no I/O, never throws on input.

import type { Chunk } from '../types';
import { PG_MAX_MESSAGE_LENGTH, PG_TYPED_HEADER, PG_UNTYPED_HEADER, readI32 } from './wire';
import { tiles } from './detect';

/** One message as the sink sees it; `body` is valid only during the call. */
export interface PgMessage {
  /** Type byte; 0 for an untyped first message; for a one-byte answer (SSLRequest) the byte itself with `answer` set. */
  type: number;
  answer: boolean;
  /** The Int32 length (it counts itself); 0 for an answer byte. */
  length: number;
  /** The kept prefix of the body. */
  body: Buffer;
  /** The body is whole in `body` (kept whole, no gap inside). */
  whole: boolean;
  /** Stream position of its first byte. */
  pos: number;
  /** When its first byte moved (its chunk's start), when its last did (its chunk's end). */
  startNs: number;
  endNs: number;
  /** Thread of the chunk holding its last byte. */
  tid: number;
}

export interface PgMessageSink {
  /** Body bytes to keep of a message of `type` and `bodyLength` (0 to bodyLength). */
  keep(type: number, bodyLength: number): number;
  message(m: PgMessage): void;
  /**
   * A tail hunt (tailHunt()) found a ReadyForQuery and the whole message
   * before it: `last` (its body whole) and then `ready`. Typed reading goes
   * on after them.
   */
  tailFound?(last: PgMessage, ready: PgMessage): void;
}

export const enum PgReaderState {
  /** An untyped first message (StartupMessage, SSLRequest...). */
  Untyped,
  Typed,
  /** One byte answering an SSLRequest or GSSENCRequest. */
  Answer,
  /** Looking for a syscall whose bytes are whole messages (mid-stream, after a loss). */
  Hunt,
  /** Nothing more is read (the bytes belong to another protocol). */
  Stopped,
  /** After a response gap: looking, in the bytes as they come, for a ReadyForQuery proven by the message before it. */
  TailHunt,
}

/** Bytes of a tail hunt's window: the message before a ReadyForQuery must fit in it. */
export const PG_TAIL_WINDOW = 4096;
/** A ReadyForQuery's bytes. */
const READY_BYTES = 6;

/** Largest run of bytes a hunt holds while a syscall's messages are incomplete. */
export const PG_HUNT_MAX_BYTES = 64 * 1024;

export class PgMessageReader {
  state: PgReaderState;
  /** Bytes passed over while hunting. */
  huntedBytes = 0;
  /** Stream position of the next byte expected. */
  position = -1;
  private readonly header = Buffer.alloc(PG_UNTYPED_HEADER);
  private headerHave = 0;
  /** The message being read: its header is whole. */
  private inBody = false;
  private readonly m: PgMessage = { type: 0, answer: false, length: 0, body: Buffer.alloc(0), whole: true, pos: 0, startNs: 0, endNs: 0, tid: 0 };
  private bodyLength = 0;
  private bodyRead = 0;
  private keepLength = 0;
  private keepBuf: Buffer | undefined;
  /** A hunt's candidate: copies of chunks from a syscall start on. */
  private candidate: Chunk[] = [];
  private candidateBytes = 0;

  constructor(
    private readonly sink: PgMessageSink,
    start: PgReaderState,
    /** The message check that proves a hunt's candidate (detect.ts). */
    private readonly proof: (b: Uint8Array, p: number, end: number) => number,
  ) {
    this.state = start;
  }

  /** Bytes held (a hunt's candidate or window, a message body being kept). */
  bufferedBytes(): number {
    return this.candidateBytes + (this.keepBuf?.length ?? 0) + this.tail.length;
  }

  /** Between messages (nothing of the next one read yet). */
  get atBoundary(): boolean {
    return this.headerHave === 0 && !this.inBody;
  }

  /** Read the next message as untyped / as an answer byte (the session knows what comes). */
  expect(state: PgReaderState.Untyped | PgReaderState.Answer | PgReaderState.Typed): void {
    if (this.state !== PgReaderState.Stopped && this.state !== PgReaderState.Hunt) this.state = state;
  }

  stop(): void {
    this.state = PgReaderState.Stopped;
    this.dropMessage();
    this.dropCandidate();
  }

  /** Forget the message in progress and hunt from the next syscall start. */
  hunt(): void {
    if (this.state === PgReaderState.Stopped) return;
    this.state = PgReaderState.Hunt;
    this.dropMessage();
  }

  /**
   * Look for a ReadyForQuery in the bytes that come (see tailChunk); bytes
   * passed over count as hunted.
   */
  tailHunt(): void {
    if (this.state === PgReaderState.Stopped) return;
    this.dropMessage();
    this.state = PgReaderState.TailHunt;
    this.tail = EMPTY;
    this.tailPos = this.position;
  }

  /** End a tail hunt: the next byte is known to start a message (the session proved it). */
  resume(): void {
    if (this.state !== PgReaderState.TailHunt) return;
    this.huntedBytes += this.tail.length;
    this.tail = EMPTY;
    this.state = PgReaderState.Typed;
  }

  push(c: Chunk): void {
    if (this.state === PgReaderState.Stopped) return;
    if (this.state === PgReaderState.Hunt) return this.huntChunk(c);
    if (this.state === PgReaderState.TailHunt) return this.tailChunk(c);
    this.position = c.pos + c.data.length;
    this.read(c, 0);
  }

  /**
   * `bytes` moved but were not captured. Inside a body whose end is known
   * they are skipped (the message is no longer whole); anywhere else the
   * boundary is lost: hunt.
   */
  gap(bytes: number, atNs: number): void {
    if (this.state === PgReaderState.Stopped) return;
    this.position += bytes;
    if (this.state === PgReaderState.TailHunt) {
      // What is kept must be contiguous.
      this.huntedBytes += bytes + this.tail.length;
      this.tail = EMPTY;
      this.tailPos = this.position;
      return;
    }
    if (this.state === PgReaderState.Hunt) {
      this.huntedBytes += bytes + this.candidateBytes;
      this.dropCandidate();
      return;
    }
    if (this.inBody && this.bodyLength - this.bodyRead >= bytes) {
      this.bodyRead += bytes;
      this.m.whole = false;
      // The kept prefix cannot continue past a hole.
      if (this.keepBuf !== undefined && this.bodyReadKept() < this.keepLength) this.keepLength = this.bodyReadKept();
      if (this.bodyRead === this.bodyLength) {
        this.m.endNs = atNs;
        this.finishMessage();
      }
      return;
    }
    this.huntedBytes += bytes;
    this.hunt();
  }

  private bodyReadKept(): number {
    return Math.min(this.bodyRead, this.keepLength);
  }

  private huntChunk(c: Chunk): void {
    if (c.syscallStart) {
      this.huntedBytes += this.candidateBytes;
      this.dropCandidate();
    } else if (this.candidate.length === 0) {
      this.huntedBytes += c.data.length;
      return;
    }
    this.candidate.push({ ...c, data: Buffer.from(c.data) });
    this.candidateBytes += c.data.length;
    const bytes = this.candidate.length === 1 ? this.candidate[0]!.data : Buffer.concat(this.candidate.map((x) => x.data));
    const t = tiles(bytes, this.proof);
    if (t === 'no' || (t === 'more' && this.candidateBytes >= PG_HUNT_MAX_BYTES)) {
      this.huntedBytes += this.candidateBytes;
      this.dropCandidate();
      return;
    }
    if (t === 'more') return;
    // Whole messages from a syscall start to here: a proven boundary.
    const held = this.candidate;
    this.dropCandidate();
    this.state = PgReaderState.Typed;
    for (const h of held) {
      this.position = h.pos + h.data.length;
      this.read(h, 0);
    }
  }

  /** The bytes of a tail hunt not yet passed over (at most the window plus a chunk), from stream position tailPos. */
  private tail: Buffer = EMPTY;
  private tailPos = 0;

  /**
   * A tail hunt: every position of the bytes since the loss is tried, in
   * stream order, whatever the chunks: a ReadyForQuery (`Z`, length 5, a
   * status I/T/E) whose preceding bytes are one whole backend message ending
   * exactly at it (its length says where it starts, its layout checks). The
   * first found ends the hunt; reading goes on after it. Positions found
   * do not depend on where chunks are cut.
   */
  private tailChunk(c: Chunk): void {
    const b = this.tail.length === 0 ? Buffer.from(c.data) : Buffer.concat([this.tail, c.data]);
    const base = this.tailPos;
    this.position = c.pos + c.data.length;
    for (let i = 0; i + READY_BYTES <= b.length; i++) {
      if (b[i] !== 0x5a || b[i + 1] !== 0 || b[i + 2] !== 0 || b[i + 3] !== 0 || b[i + 4] !== 5) continue;
      const status = b[i + 5];
      if (status !== 0x49 && status !== 0x54 && status !== 0x45) continue;
      const before = this.messageEndingAt(b, i);
      if (before < 0) continue;
      this.huntedBytes += before;
      this.state = PgReaderState.Typed;
      this.tail = EMPTY;
      const m = this.m;
      const last = { ...m, type: b[before]!, answer: false, length: i - before - 1, body: b.subarray(before + PG_TYPED_HEADER, i), whole: true, pos: base + before, startNs: c.startNs, endNs: c.endNs, tid: c.tid ?? 0 };
      const ready = { ...last, type: 0x5a, length: 5, body: b.subarray(i + PG_TYPED_HEADER, i + READY_BYTES), pos: base + i };
      this.sink.tailFound?.(last, ready);
      const rest = i + READY_BYTES - (b.length - c.data.length);
      if (rest < c.data.length) this.read(c, Math.max(0, rest));
      return;
    }
    // Keep the window the next chunk's first ReadyForQuery may need before it.
    const keep = Math.min(b.length, PG_TAIL_WINDOW + READY_BYTES);
    this.huntedBytes += b.length - keep;
    this.tail = keep === b.length ? b : Buffer.from(b.subarray(b.length - keep));
    this.tailPos = base + b.length - keep;
  }

  /** Where the whole backend message ending exactly at `end` starts, or -1. */
  private messageEndingAt(b: Buffer, end: number): number {
    const from = Math.max(0, end - PG_TAIL_WINDOW);
    for (let p = end - PG_TYPED_HEADER; p >= from; p--) {
      if (readI32(b, p + 1) !== end - p - 1) continue;
      if (this.proof(b, p, end) === end && checkBackTail(b[p]!)) return p;
    }
    return -1;
  }

  private dropCandidate(): void {
    this.candidate = [];
    this.candidateBytes = 0;
  }

  private dropMessage(): void {
    this.headerHave = 0;
    this.inBody = false;
    this.keepBuf = undefined;
  }

  private read(c: Chunk, from: number): void {
    const data = c.data;
    let p = from;
    const m = this.m;
    while (p < data.length) {
      if (this.state === PgReaderState.Stopped || this.state === PgReaderState.Hunt) return;
      if (!this.inBody) {
        if (this.state === PgReaderState.Answer) {
          m.type = data[p]!;
          m.answer = true;
          m.length = 0;
          m.body = EMPTY;
          m.whole = true;
          m.pos = c.pos + p;
          m.startNs = c.startNs;
          m.endNs = c.endNs;
          m.tid = c.tid ?? 0;
          p++;
          // The sink says what comes next (expect()); typed by default.
          this.state = PgReaderState.Typed;
          this.sink.message(m);
          continue;
        }
        const need = this.state === PgReaderState.Untyped ? PG_UNTYPED_HEADER - 4 : PG_TYPED_HEADER;
        const untyped = this.state === PgReaderState.Untyped;
        let length: number;
        let type: number;
        if (this.headerHave === 0 && data.length - p >= need) {
          // The whole header in this chunk (the usual case): read in place.
          m.pos = c.pos + p;
          m.startNs = c.startNs;
          type = untyped ? 0 : data[p]!;
          length = untyped ? readI32(data, p) : readI32(data, p + 1);
          p += need;
        } else {
          if (this.headerHave === 0) {
            m.pos = c.pos + p;
            m.startNs = c.startNs;
          }
          const take = Math.min(need - this.headerHave, data.length - p);
          data.copy(this.header, this.headerHave, p, p + take);
          this.headerHave += take;
          p += take;
          if (this.headerHave < need) return;
          this.headerHave = 0;
          type = untyped ? 0 : this.header[0]!;
          length = untyped ? readI32(this.header, 0) : readI32(this.header, 1);
        }
        if (length < 4 || length > PG_MAX_MESSAGE_LENGTH) {
          // Not a message a peer sends: the boundary is lost.
          this.failed = true;
          this.hunt();
          return;
        }
        m.type = type;
        m.answer = false;
        m.length = length;
        m.whole = true;
        this.bodyLength = length - 4;
        this.bodyRead = 0;
        this.keepLength = Math.min(this.bodyLength, this.sink.keep(m.type, this.bodyLength));
        this.inBody = true;
        this.keepBuf = undefined;
        // The whole kept part in this chunk: a view, no copy.
        if (this.keepLength > 0 && data.length - p >= this.keepLength) {
          m.body = data.subarray(p, p + this.keepLength);
        } else if (this.keepLength > 0) {
          this.keepBuf = Buffer.allocUnsafe(this.keepLength);
          m.body = this.keepBuf;
        } else m.body = EMPTY;
        if (this.keepLength < this.bodyLength) m.whole = false;
      }
      const left = this.bodyLength - this.bodyRead;
      const take = Math.min(left, data.length - p);
      if (this.keepBuf !== undefined && this.bodyRead < this.keepLength) {
        const k = Math.min(take, this.keepLength - this.bodyRead);
        data.copy(this.keepBuf, this.bodyRead, p, p + k);
      }
      this.bodyRead += take;
      p += take;
      if (this.bodyRead === this.bodyLength) {
        m.endNs = c.endNs;
        m.tid = c.tid ?? 0;
        this.finishMessage();
      }
    }
  }

  /** Set when a header's length was impossible (a parse error for the session to count). */
  failed = false;

  private finishMessage(): void {
    const m = this.m;
    if (this.keepBuf !== undefined && this.keepLength < this.keepBuf.length) m.body = this.keepBuf.subarray(0, this.keepLength);
    this.inBody = false;
    this.keepBuf = undefined;
    // After an untyped message the sink says what comes (expect()); typed by default.
    if (this.state === PgReaderState.Untyped) this.state = PgReaderState.Typed;
    this.sink.message(m);
  }
}

const EMPTY = Buffer.alloc(0);

/** Messages that may end a response right before its ReadyForQuery: CommandComplete, ErrorResponse, EmptyQueryResponse, PortalSuspended... not a DataRow (its layout proves less). */
function checkBackTail(type: number): boolean {
  return type !== 0x44;
}
