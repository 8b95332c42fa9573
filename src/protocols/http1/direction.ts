// One direction of an HTTP/1.x connection (the requests or the responses): an
// llhttp parser fed contiguous chunks, which copies out the parts of each head
// that records use, counts body bytes, steps over gaps a body's framing
// covers, and hunts for a message start after it lost its place.
//
// States:
//   hunting --syscall-start chunk beginning a request/status line--> parsing
//   parsing --llhttp error, header bound, gap outside a bridgeable body--> hunting
//   parsing --request of an upgrade / CONNECT complete--> held (bytes kept until the answer)
//   held --answer declined--> parsing (held bytes replayed) | hunting (held bytes lost)
//   parsing | held --protocol switched (101, CONNECT 2xx)--> stopped
// A direction starts parsing at position 0 of a connection seen from its
// start; anywhere else it starts hunting.

import { isUtf8 } from 'node:buffer';
import type { Chunk } from '../types';
import type { Http1Stats } from './counters';
import { classifyRequestLine, classifyStatusLine } from './detect';
import { Http1HeadScan, Http1RecentValues, MAX_RECENT_TEXT, recentLines, recentText, scanHead, type LatinSlicer } from './fast-head';
import type { Http1HeaderName, Http1HeaderTable, Http1KeptHeader } from './header-names';
import { LLHTTP_ERROR, LlhttpParser, type LlhttpHandler } from './llhttp';
import { Http1Message, NO_ACTIVITY, NO_LINES, type Http1Activity, type Http1Incomplete } from './message';

export type Http1DirectionKind = 'request' | 'response';

/** How heads are parsed: scanned in JavaScript when fast-head.ts accepts them, else by llhttp; or always by llhttp. */
export type Http1HeadParsing = 'fast' | 'llhttp';

export interface Http1Limits {
  /** Bytes of request/status line plus header fields of one message. */
  readonly maxHeaderBytes: number;
  readonly maxHeaderCount: number;
  /** Longest request-target kept for attributes (longer: kept as unknown). */
  readonly maxTargetBytes: number;
  /** Bytes held while an upgrade request waits for its answer. */
  readonly maxHeldBytes: number;
  /** Longest header value kept, and lines kept per header name (beyond: the header is not used). */
  readonly maxKeptValue: number;
  readonly maxKeptLines: number;
  /** Longest captured header value recorded (longer: dropped, counted, and that header not recorded). */
  readonly maxCapturedValue: number;
  /** Lines of captured headers per message (past it: dropped and counted the same way). */
  readonly maxCapturedLines: number;
}

export interface Http1DirectionListener {
  /** A message began: a request once its method is known, a response at its first byte. */
  begin(kind: Http1DirectionKind, m: Http1Message): void;
  /** The head is parsed. Responses answer 0 (body per framing), 1 (no body) or 2 (no body, protocol switch). */
  headers(kind: Http1DirectionKind, m: Http1Message): 0 | 1 | 2;
  complete(kind: Http1DirectionKind, m: Http1Message): void;
  /**
   * The direction lost its place at `atNs` (error, gap, bytes skipped while
   * hunting); `inFlight` is the message cut, if one had begun (its
   * `incomplete` says why).
   */
  lost(kind: Http1DirectionKind, inFlight: Http1Message | undefined, atNs: number): void;
  /** The response direction stopped at a protocol switch (after complete()). */
  switched(): void;
}

type State = 'hunting' | 'parsing' | 'held' | 'stopped';

/** One scan result for every direction: scanning is synchronous and never nested. */
const SCAN = new Http1HeadScan();

export interface HeldChunk {
  readonly data: Buffer;
  readonly pos: number;
  readonly startNs: number;
  readonly endNs: number;
  readonly tid: number;
}

export class Http1Direction implements LlhttpHandler {
  private state: State = 'hunting';
  private readonly parser: LlhttpParser;
  /** The message being parsed (begun, not complete). */
  message: Http1Message | undefined;
  /** What this direction did last (chunks, skipped chunks, gaps). */
  activity: Http1Activity = NO_ACTIVITY;
  private nextPos: number | undefined;
  private started = false;
  /** Messages begun so far that were valid (their index). */
  private count = 0;
  /** Heads are scanned in JavaScript first (fast-head.ts); false when headers are captured (llhttp's path has capture's rules). */
  private readonly fastPath: boolean;
  /**
   * llhttp is in its start state: it was reset, or the last message it
   * parsed kept the connection alive (after others it refuses more data, or
   * switches protocols). Only then may a message bypass it.
   */
  private llhttpAtStart = true;
  /** The message in flight had its head scanned in JavaScript: llhttp never saw it, its body is counted here. */
  private fastMessage = false;
  /** llhttp's keep-alive verdict on the message it is parsing (from on_headers_complete; false once a trailer field came). */
  private llhttpKeepAlive = false;
  /** Values of the last scanned heads, reused while the bytes repeat (allocated at the first scanned head). */
  private recent: Http1RecentValues | undefined;

  // Context of the bytes being executed.
  private ctxStartNs = 0;
  private ctxEndNs = 0;
  /** Stream position of the data given to llhttp. */
  private ctxPos = 0;
  private ctxTid = 0;
  /** Bytes before the current position of this chunk belong to an earlier message. */
  private midChunk = false;

  // Head parsing.
  /** The message in flight went past a head bound (the llhttp error that follows is ours, not the peer's). */
  private boundHit = false;
  private headerBytes = 0;
  private headerCount = 0;
  private inField = false;
  private field = '';
  /** The current header name while it is one span in the piece being parsed (address, length); -1 once copied into `field`. */
  private fieldAt = -1;
  private fieldLen = 0;
  /** The current line's value is kept for records as this header. */
  private keepLine: Http1KeptHeader | undefined;
  /** The current line's value is captured (index in `names.attributes`); -1: not. */
  private captureLine = -1;
  /** The current line's value so far (latin1), while it is kept or captured. */
  private value = '';

  // Upgrade: bytes after the request, until its answer.
  /** Allocated when the first chunk is held: most directions never hold one. */
  private held: HeldChunk[] | undefined;
  private heldBytes = 0;
  private heldLost = false;
  /** Stream position right after the message that paused as an upgrade. */
  private switchFrom: number | undefined;

  constructor(
    readonly kind: Http1DirectionKind,
    private readonly listener: Http1DirectionListener,
    private readonly stats: Http1Stats,
    private readonly limits: Http1Limits,
    /** The connection was seen from its start: position 0 is a message boundary. */
    private readonly fromStart: boolean,
    /** Header names matched (kept for records, captured for attributes), by length. */
    private readonly names: Http1HeaderTable,
    heads: Http1HeadParsing = 'fast',
  ) {
    this.parser = new LlhttpParser(kind, this);
    this.fastPath = heads === 'fast' && names.attributes.length === 0;
  }

  /** Contiguous bytes of this direction. */
  feed(c: Chunk): void {
    let data = c.data;
    let pos = c.pos;
    let syscallStart = c.syscallStart;
    if (this.nextPos !== undefined && pos !== this.nextPos) {
      if (pos > this.nextPos) this.gap(this.nextPos, pos - this.nextPos, c.startNs);
      else {
        // Bytes already seen (the stream layer should not send them): use only the new ones.
        const seen = this.nextPos - pos;
        if (seen >= data.length) return;
        data = data.subarray(seen);
        pos += seen;
        syscallStart = false;
      }
    }
    if (!this.started) {
      this.started = true;
      if (this.fromStart && pos === 0) this.state = 'parsing';
    }
    this.nextPos = pos + data.length;
    const chunkActivity = { startNs: c.startNs, endNs: c.endNs };
    switch (this.state) {
      case 'stopped':
        break;
      case 'held':
        this.hold({ data, pos, startNs: c.startNs, endNs: c.endNs, tid: c.tid ?? 0 });
        break;
      case 'hunting':
        if (syscallStart && this.beginsMessage(data)) {
          this.parser.reset();
          this.llhttpAtStart = true;
          this.state = 'parsing';
          this.ctxTid = c.tid ?? 0;
          this.execute(data, pos, c.startNs, c.endNs);
        } else {
          this.stats.bytesSkipped += data.length;
          this.listener.lost(this.kind, undefined, c.startNs);
        }
        break;
      case 'parsing':
        this.ctxTid = c.tid ?? 0;
        this.execute(data, pos, c.startNs, c.endNs);
        break;
    }
    this.activity = chunkActivity;
  }

  /** `bytes` at `pos` moved but were not captured. */
  gap(pos: number, bytes: number, atNs: number): void {
    if (bytes <= 0) return;
    if (this.nextPos === undefined) {
      this.started = true;
      this.nextPos = pos;
    }
    if (pos + bytes <= this.nextPos) return;
    if (pos > this.nextPos) bytes += pos - this.nextPos;
    else bytes -= this.nextPos - pos;
    this.nextPos += bytes;
    // The missing bytes moved after the last activity and by atNs.
    const before = this.activity;
    this.activity = { startNs: Number.isFinite(before.endNs) ? Math.min(before.endNs, atNs) : atNs, endNs: atNs };
    switch (this.state) {
      case 'stopped':
      case 'hunting':
        return;
      case 'held':
        this.heldLost = true;
        this.held = undefined;
        this.heldBytes = 0;
        return;
      case 'parsing': {
        const m = this.message;
        if (m !== undefined && m.headersDone && (m.bodyKind === 'eof' || (m.bodyKind === 'length' && bytes <= m.remaining))) {
          // Inside a body that the framing delimits: the bytes are body bytes whatever they were.
          this.ctxStartNs = atNs;
          this.ctxEndNs = atNs;
          this.midChunk = true;
          if (this.fastMessage) {
            this.bodyBytes(m, m.bodyKind === 'eof' ? bytes : Math.min(bytes, m.remaining));
            return;
          }
          if (this.parser.executeZeros(bytes) === LLHTTP_ERROR.OK) return;
        }
        this.loseMessage(atNs, 'not_captured');
        return;
      }
    }
  }

  /** The connection ended: completes a message delimited by the close; returns one left incomplete. */
  finish(): Http1Message | undefined {
    if (this.state !== 'parsing' || this.message === undefined) return this.message;
    const m = this.message;
    this.ctxStartNs = m.lastByteNs;
    this.ctxEndNs = m.lastByteNs;
    if (this.fastMessage) {
      // As llhttp_finish: a body delimited by the close ends here; a Content-Length body cut short stays incomplete.
      if (m.bodyKind === 'eof') this.onMessageComplete();
    } else this.parser.finish();
    return this.message;
  }

  /** The upgrade this direction held for was declined: parse what was held. */
  resume(): void {
    if (this.state !== 'held') return;
    const held = this.held;
    const lost = this.heldLost;
    this.held = undefined;
    this.heldBytes = 0;
    this.heldLost = false;
    if (lost) {
      this.state = 'hunting';
      this.listener.lost(this.kind, undefined, this.activity.endNs);
      return;
    }
    this.parser.resumeAfterUpgrade();
    this.state = 'parsing';
    for (const h of held ?? []) {
      if (this.state === 'parsing') {
        this.ctxTid = h.tid;
        this.execute(h.data, h.pos, h.startNs, h.endNs);
      } else if (this.state === 'held') {
        this.hold(h);
      } else if (this.state === 'hunting') {
        // Lost its place while replaying: the rest is skipped (a later syscall may resync).
        this.stats.bytesSkipped += h.data.length;
      }
    }
  }

  /** The connection switched protocols: nothing more to parse (what was held stays for handOff()). */
  stop(): void {
    this.state = 'stopped';
    this.message = undefined;
  }

  /**
   * After a protocol switch: where this direction's bytes stopped being
   * HTTP/1 (the end of the upgrade request or of the 101 head) and the bytes
   * it holds from there on, which belong to the next protocol. Undefined
   * `from` when the switch point is not known (held bytes were lost).
   */
  handOff(): { from: number | undefined; held: HeldChunk[] } {
    const held = this.heldLost ? [] : (this.held ?? []);
    const from = this.heldLost ? undefined : this.switchFrom;
    this.held = undefined;
    this.heldBytes = 0;
    return { from, held };
  }

  /** Told by the stitcher that the framing used was wrong (a guessed HEAD/CONNECT answer). */
  loseSync(atNs: number): void {
    if (this.state !== 'parsing') return;
    this.loseMessage(atNs, 'malformed');
  }

  bufferedBytes(): number {
    return this.heldBytes + this.field.length + this.value.length;
  }

  free(): void {
    this.parser.free();
  }

  private beginsMessage(data: Buffer): boolean {
    const c = this.kind === 'request' ? classifyRequestLine(data) : classifyStatusLine(data);
    return c !== 'no';
  }

  private hold(h: HeldChunk): void {
    if (this.heldLost) return;
    if (this.heldBytes + h.data.length > this.limits.maxHeldBytes) {
      this.heldLost = true;
      this.stats.bytesSkipped += this.heldBytes + h.data.length;
      this.held = undefined;
      this.heldBytes = 0;
      return;
    }
    (this.held ??= []).push({ ...h, data: Buffer.from(h.data) });
    this.heldBytes += h.data.length;
  }

  private execute(data: Buffer, pos: number, startNs: number, endNs: number): void {
    this.ctxStartNs = startNs;
    this.ctxEndNs = endNs;
    this.ctxPos = pos;
    this.midChunk = this.message !== undefined;
    let off = 0;
    if (this.fastPath) {
      off = this.executeFast(data, pos);
      if (off < 0 || off === data.length) return;
      // llhttp takes over from a message start (or inside its own message).
      this.ctxPos = pos + off;
    }
    this.llhttpAtStart = false;
    const errno = this.parser.execute(off === 0 ? data : data.subarray(off));
    if (errno === LLHTTP_ERROR.OK) return;
    const consumed = off + this.parser.consumed;
    if (errno === LLHTTP_ERROR.PAUSED_UPGRADE) {
      this.switchFrom = pos + consumed;
      if (this.kind === 'response') {
        const rest = data.subarray(consumed);
        this.stop();
        if (rest.length > 0) this.held = [{ data: Buffer.from(rest), pos: pos + consumed, startNs, endNs, tid: this.ctxTid }];
        this.listener.switched();
        return;
      }
      this.state = 'held';
      const rest = data.subarray(consumed);
      if (rest.length > 0) this.hold({ data: rest, pos: pos + consumed, startNs, endNs, tid: this.ctxTid });
      return;
    }
    // Malformed input (or a bound): the rest of this chunk is skipped.
    this.stats.parseErrors++;
    this.stats.bytesSkipped += data.length - consumed;
    this.loseMessage(startNs, this.boundHit ? 'too_large' : 'malformed');
  }

  private loseMessage(atNs: number, why: Http1Incomplete): void {
    const inFlight = this.message;
    this.message = undefined;
    this.fastMessage = false;
    this.state = 'hunting';
    this.resetHead();
    if (inFlight !== undefined) {
      inFlight.incomplete = why;
      // A target cut before its end is never used (a path would be a guess).
      if (!inFlight.targetDone) inFlight.target = undefined;
    }
    this.listener.lost(this.kind, inFlight !== undefined && inFlight.index >= 0 ? inFlight : undefined, atNs);
  }

  private resetHead(): void {
    this.boundHit = false;
    this.headerBytes = 0;
    this.headerCount = 0;
    this.inField = false;
    this.field = '';
    this.fieldAt = -1;
    this.keepLine = undefined;
    this.captureLine = -1;
    this.value = '';
  }

  /** Counts the head bytes of a span at `at`; false once past the bound (the message is given up). */
  private headBytes(at: number, len: number): boolean {
    const before = this.headerBytes;
    this.headerBytes += len;
    if (this.headerBytes <= this.limits.maxHeaderBytes) return true;
    this.boundHit = true;
    this.parser.stopAddress = at + Math.max(0, this.limits.maxHeaderBytes - before);
    return false;
  }

  // --- the fast path (fast-head.ts) ---------------------------------------

  /**
   * Parses in JavaScript what it can of `data` (at `pos`): bodies of messages
   * whose heads it scanned, then every head at a message start that
   * scanHead() accepts, each through the same steps as llhttp's callbacks.
   * Returns where llhttp must take over (data.length: nowhere), or -1 when
   * the direction stopped (a protocol switch).
   */
  private executeFast(data: Buffer, pos: number): number {
    let off = 0;
    for (;;) {
      const m = this.message;
      if (m !== undefined) {
        if (!this.fastMessage) return off;
        const n = data.length - off;
        off += this.bodyBytes(m, m.bodyKind === 'eof' ? n : Math.min(n, m.remaining));
        if (this.message !== undefined) return data.length;
      }
      if (off >= data.length || !this.llhttpAtStart) return off;
      const end = scanHead(this.kind, data, off, this.names, this.limits, SCAN);
      if (end < 0) return off;
      if (!this.fastHead(data as Buffer & LatinSlicer, pos, off, SCAN)) return -1;
      off = end;
    }
  }

  /** A head scanned whole at `data[off]`: the message, as llhttp's callbacks would have made it. False when the direction stopped. */
  private fastHead(data: Buffer & LatinSlicer, pos: number, off: number, scan: Http1HeadScan): boolean {
    const m = this.beginMessage();
    this.fastMessage = true;
    if (this.kind === 'request') {
      m.index = this.count++;
      m.method = scan.method;
      m.pos = pos + off;
      m.target = this.recentTarget(data, scan.targetStart, scan.targetEnd);
    }
    this.listener.begin(this.kind, m);
    for (let k = 0; k < scan.kept; k++) this.fastKeep(m, scan.keptNames[k]!, data, scan.keptSpans[2 * k]!, scan.keptSpans[2 * k + 1]!);
    const mode = this.headersComplete(m, scan.status, false, '1.1');
    if (mode === 2) {
      // As llhttp: the message completes, then parsing pauses as an upgrade (only a response, to CONNECT, gets here).
      this.onMessageComplete();
      const end = scan.end;
      this.switchFrom = pos + end;
      this.stop();
      if (end < data.length) this.held = [{ data: Buffer.from(data.subarray(end)), pos: pos + end, startNs: this.ctxStartNs, endNs: this.ctxEndNs, tid: this.ctxTid }];
      this.listener.switched();
      return false;
    }
    if (m.bodyKind === 'none') this.onMessageComplete();
    return true;
  }

  private recentTarget(data: Buffer & LatinSlicer, start: number, end: number): string {
    const r = (this.recent ??= new Http1RecentValues());
    const text = recentText(r.target, data, start, end);
    if (text.length <= MAX_RECENT_TEXT) r.target = text;
    return text;
  }

  /** A kept value of a scanned head: as keep(), with the first line of Host, User-Agent and Content-Length reused when it repeats. */
  private fastKeep(m: Http1Message, kept: Http1KeptHeader, data: Buffer & LatinSlicer, start: number, end: number): void {
    const r = (this.recent ??= new Http1RecentValues());
    if (kept === 'host' && m.host === NO_LINES) {
      m.host = recentLines(r.host, data, start, end);
      if (end - start <= MAX_RECENT_TEXT) r.host = m.host;
    } else if (kept === 'user-agent' && m.userAgent === NO_LINES) {
      m.userAgent = recentLines(r.userAgent, data, start, end);
      if (end - start <= MAX_RECENT_TEXT) r.userAgent = m.userAgent;
    } else if (kept === 'content-length') {
      // At most one line (a second one is llhttp's); at most 15 digits.
      m.contentLength = r.contentLength = recentText(r.contentLength, data, start, end);
    } else this.keep(m, kept, data.latin1Slice(start, end));
  }

  /** `n` body bytes of the message in flight (as llhttp's on_body); completes a Content-Length body at its end. Returns `n`. */
  private bodyBytes(m: Http1Message, n: number): number {
    if (n > 0) this.onBody(n);
    if (m.bodyKind === 'length' && m.remaining === 0) this.onMessageComplete();
    return n;
  }

  // --- llhttp callbacks -------------------------------------------------

  onMessageBegin(): number {
    this.llhttpAtStart = false;
    const m = this.beginMessage();
    this.resetHead();
    if (this.kind === 'response') this.listener.begin(this.kind, m);
    return 0;
  }

  private beginMessage(): Http1Message {
    const before = this.midChunk ? { startNs: this.ctxStartNs, endNs: this.ctxEndNs } : this.activity;
    const m = new Http1Message(this.ctxStartNs, before);
    m.lastByteNs = this.ctxEndNs;
    this.message = m;
    return m;
  }

  onUrl(at: number, len: number): number {
    const m = this.message;
    if (m === undefined) return 0;
    const first = m.index < 0;
    if (first) {
      // The method and the target's first byte were seen: the request began, even if its line is too long.
      m.index = this.count++;
      m.method = this.parser.method();
      // request-line = method SP request-target ...: the target's first byte locates the message.
      m.pos = this.ctxPos + this.parser.offsetOf(at) - m.method.length - 1;
    }
    const within = this.headBytes(at, len);
    if (m.target !== undefined) {
      m.target = !within || m.target.length + len > this.limits.maxTargetBytes ? undefined : m.target + this.parser.text(at, len);
    }
    if (first) this.listener.begin(this.kind, m);
    return within ? 0 : -1;
  }

  onStatus(at: number, len: number): number {
    return this.headBytes(at, len) ? 0 : -1;
  }

  onHeaderField(at: number, len: number): number {
    const m = this.message;
    if (m !== undefined) {
      m.targetDone = true;
      // A trailer field can end keep-alive after on_headers_complete said it held (Connection: close).
      if (m.headersDone) this.llhttpKeepAlive = false;
    }
    if (!this.headBytes(at, len)) return -1;
    if (!this.inField) {
      this.endLine();
      this.inField = true;
      this.field = '';
      if (++this.headerCount > this.limits.maxHeaderCount) {
        this.boundHit = true;
        this.parser.stopAddress = at;
        return -1;
      }
      // Usually the whole name: judged from its bytes when its value begins.
      this.fieldAt = at;
      this.fieldLen = len;
      return 0;
    }
    // The name goes on in a later piece (its start was copied out at the piece's end).
    this.copyField();
    const longest = this.names.longest;
    if (this.field.length <= longest) this.field += this.parser.text(at, Math.min(len, longest + 1));
    return 0;
  }

  onPieceEnd(): void {
    if (this.inField) this.copyField();
  }

  private copyField(): void {
    if (this.fieldAt < 0) return;
    this.field = this.parser.text(this.fieldAt, Math.min(this.fieldLen, this.names.longest + 1));
    this.fieldAt = -1;
  }

  /** The matched header the current name is, if any (decided once per header line, never per byte). */
  private headerName(): Http1HeaderName | undefined {
    const byLength = this.names.byLength;
    if (this.fieldAt >= 0) {
      const at = this.fieldAt;
      const len = this.fieldLen;
      this.fieldAt = -1;
      const candidates = byLength[len];
      if (candidates === undefined) return undefined;
      for (const c of candidates) if (this.parser.spanIsToken(at, len, c.bytes)) return c;
      return undefined;
    }
    const candidates = byLength[this.field.length];
    if (candidates === undefined) return undefined;
    const name = this.field.toLowerCase();
    for (const c of candidates) if (c.name === name) return c;
    return undefined;
  }

  onHeaderValue(at: number, len: number): number {
    if (!this.headBytes(at, len)) return -1;
    if (this.inField) {
      this.inField = false;
      this.beginLine();
    }
    if (len > 0 && (this.keepLine !== undefined || this.captureLine >= 0)) this.valuePiece(at, len);
    return 0;
  }

  /** A header line's value begins: decides whether it is kept, captured, or ignored. */
  private beginLine(): void {
    const m = this.message;
    // Trailer fields (after the head) are not headers: ignored.
    const h = m === undefined || m.headersDone ? undefined : this.headerName();
    this.fieldAt = -1;
    this.field = '';
    this.value = '';
    this.keepLine = undefined;
    this.captureLine = -1;
    if (h === undefined) return;
    // Only the presence of Transfer-Encoding matters (llhttp validates the codings).
    if (h.kept === 'transfer-encoding') m!.transferEncoding = true;
    else this.keepLine = h.kept;
    const i = h.capture;
    if (i < 0) return;
    if (++m!.capturedLines > this.limits.maxCapturedLines) this.dropCaptured(m!, i);
    else if (m!.captured?.[i] === null) this.stats.headerValuesDropped++;
    else this.captureLine = i;
  }

  /** A piece of a kept or captured value; a value past its bound is never cut, it is dropped. */
  private valuePiece(at: number, len: number): void {
    const n = this.value.length + len;
    if (this.captureLine >= 0 && n > this.limits.maxCapturedValue) {
      this.dropCaptured(this.message!, this.captureLine);
      this.captureLine = -1;
    }
    if (this.keepLine !== undefined && n > this.limits.maxKeptValue) this.overlong(this.keepLine);
    if (this.keepLine !== undefined || this.captureLine >= 0) this.value += this.parser.text(at, len);
    else this.value = '';
  }

  /** A kept header's value is too long to keep whole: the header is not used (never a cut value). */
  private overlong(kept: Http1KeptHeader): void {
    const m = this.message;
    if (m !== undefined) (m.overlong ??= []).includes(kept) || m.overlong.push(kept);
    this.keepLine = undefined;
  }

  /**
   * A line of captured header `i` cannot be recorded: the header is not
   * recorded for this message at all (a list missing a line is a wrong
   * value). Counts this line and the lines already kept.
   */
  private dropCaptured(m: Http1Message, i: number): void {
    const captured = (m.captured ??= []);
    this.stats.headerValuesDropped += 1 + (captured[i]?.length ?? 0);
    captured[i] = null;
  }

  /** The end of a header line: its value goes where beginLine() decided. */
  private endLine(): void {
    const m = this.message;
    const kept = this.keepLine;
    const i = this.captureLine;
    const raw = this.value;
    this.keepLine = undefined;
    this.captureLine = -1;
    this.value = '';
    if (m === undefined || (kept === undefined && i < 0)) return;
    const v = trimOws(raw);
    if (kept !== undefined) this.keep(m, kept, v);
    if (i >= 0) {
      const text = fieldText(v);
      if (text === undefined) return this.dropCaptured(m, i);
      const captured = (m.captured ??= []);
      const list = captured[i];
      if (list === undefined || list === null) captured[i] = [text];
      else list.push(text);
    }
  }

  private keep(m: Http1Message, kept: Http1KeptHeader, v: string): void {
    switch (kept) {
      case 'host':
        m.host = this.withLine(m.host, kept, v);
        break;
      case 'user-agent':
        m.userAgent = this.withLine(m.userAgent, kept, v);
        break;
      case 'traceparent':
        m.traceparent = this.withLine(m.traceparent, kept, v);
        break;
      case 'tracestate':
        m.tracestate = this.withLine(m.tracestate, kept, v);
        break;
      case 'upgrade':
        m.upgradeTo = this.withLine(m.upgradeTo, kept, v);
        break;
      case 'content-length':
        m.contentLength ??= v;
        break;
      case 'transfer-encoding':
        break;
    }
  }

  /** `lines` with `v` added: a new one-line array for the first line (never NO_LINES itself), else in place (a copy of a shared list) up to the bound. */
  private withLine(lines: readonly string[], kept: Http1KeptHeader, v: string): readonly string[] {
    if (lines === NO_LINES) return [v];
    if (lines.length >= this.limits.maxKeptLines) {
      this.overlong(kept);
      return lines;
    }
    // A first line reused from an earlier head (fastKeep) is shared and frozen: this message gets its own list.
    const own = Object.isFrozen(lines) ? lines.slice() : (lines as string[]);
    own.push(v);
    return own;
  }

  onHeadersComplete(statusCode: number, upgrade: boolean, keepAlive: boolean): number {
    const m = this.message;
    if (m === undefined) return -1;
    this.endLine();
    this.inField = false;
    this.field = '';
    this.fieldAt = -1;
    this.llhttpKeepAlive = keepAlive && !upgrade;
    return this.headersComplete(m, statusCode, upgrade, this.parser.version());
  }

  /** The head of `m` is parsed (by llhttp or scanHead()): tells the listener, settles the body's framing. */
  private headersComplete(m: Http1Message, statusCode: number, upgrade: boolean, version: string): 0 | 1 | 2 {
    m.version = version;
    m.targetDone = true;
    m.statusCode = statusCode;
    m.upgrade = upgrade;
    m.headersDone = true;
    m.lastByteNs = this.ctxEndNs;
    m.tid = this.ctxTid;
    if (this.kind === 'response' && m.index < 0) m.index = this.count++;
    const mode = this.listener.headers(this.kind, m);
    m.bodyKind = bodyKind(this.kind, m, mode);
    if (m.bodyKind === 'length') m.remaining = Number(m.contentLength);
    return mode;
  }

  onBody(len: number): number {
    const m = this.message;
    if (m === undefined) return 0;
    m.bodyBytes += len;
    if (m.bodyKind === 'length') m.remaining -= len;
    m.lastByteNs = this.ctxEndNs;
    return 0;
  }

  onMessageComplete(): number {
    const m = this.message;
    if (m === undefined) return 0;
    this.message = undefined;
    // After its own message llhttp is at a start only if it kept the connection alive; a scanned one never touched it.
    if (!this.fastMessage) this.llhttpAtStart = this.llhttpKeepAlive;
    this.fastMessage = false;
    this.midChunk = true;
    // The last byte is in the bytes being executed (at close: the last byte seen).
    m.lastByteNs = this.ctxEndNs;
    m.complete = true;
    this.listener.complete(this.kind, m);
    return 0;
  }
}

/** How the body is delimited (RFC 9112 §6.3), given what the head said and what the listener answered. */
function bodyKind(kind: Http1DirectionKind, m: Http1Message, mode: number): Http1Message['bodyKind'] {
  if (mode !== 0 || noBodyStatus(kind, m)) return 'none';
  if (m.transferEncoding || m.overlong?.includes('content-length')) return 'coded';
  if (m.contentLength !== undefined) {
    const n = Number(m.contentLength);
    if (!Number.isSafeInteger(n)) return 'coded';
    return n === 0 ? 'none' : 'length';
  }
  return kind === 'response' ? 'eof' : 'none';
}

/** Responses that never have a body whatever their headers say (RFC 9112 §6.3 item 1). */
function noBodyStatus(kind: Http1DirectionKind, m: Http1Message): boolean {
  if (kind !== 'response') return false;
  const s = m.statusCode;
  return s < 200 || s === 204 || s === 304;
}

/** A field value without the optional whitespace around it (RFC 9110 §5.5: SP and HTAB only). */
function trimOws(v: string): string {
  let a = 0;
  let b = v.length;
  while (a < b && (v.charCodeAt(a) === 0x20 || v.charCodeAt(a) === 0x09)) a++;
  while (b > a && (v.charCodeAt(b - 1) === 0x20 || v.charCodeAt(b - 1) === 0x09)) b--;
  return a === 0 && b === v.length ? v : v.slice(a, b);
}

const NON_ASCII = /[^\x00-\x7f]/;

/**
 * A captured value (latin1 from the wire) as text: ASCII as is, other bytes
 * decoded as UTF-8 when they are valid UTF-8; undefined otherwise (opaque
 * bytes, RFC 9110 §5.5: any text made of them would be a guess).
 */
function fieldText(latin1: string): string | undefined {
  if (!NON_ASCII.test(latin1)) return latin1;
  const bytes = Buffer.from(latin1, 'latin1');
  return isUtf8(bytes) ? bytes.toString('utf8') : undefined;
}
