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
}

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

  /** Bytes held (a hunt's candidate, a message body being kept). */
  bufferedBytes(): number {
    return this.candidateBytes + (this.keepBuf?.length ?? 0);
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

  push(c: Chunk): void {
    if (this.state === PgReaderState.Stopped) return;
    if (this.state === PgReaderState.Hunt) return this.huntChunk(c);
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
        const untyped = this.state === PgReaderState.Untyped;
        const length = untyped ? readI32(this.header, 0) : readI32(this.header, 1);
        if (length < 4 || length > PG_MAX_MESSAGE_LENGTH) {
          // Not a message a peer sends: the boundary is lost.
          this.failed = true;
          this.hunt();
          return;
        }
        m.type = untyped ? 0 : this.header[0]!;
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
