// Incremental HTTP/2 frame reader for one direction of a connection
// (RFC 9113 §3.4 preface, §4 frame format, §6 frame definitions). Fed the
// direction's captured bytes in stream order, cut anywhere; calls a handler
// per frame. Pure: no clock, no I/O, never throws on input. A connection
// error (what a real peer would reject) or a gap it cannot skip stops the
// reader; the failure is sticky and says where (`failure`).

import { findFrameBoundary } from './detect';
import {
  HTTP2_CLIENT_PREFACE, HTTP2_DEFAULT_MAX_FRAME_SIZE, HTTP2_DEFAULT_MAX_HEADER_BLOCK, HTTP2_FRAME_HEADER_BYTES,
  HTTP2_MAX_FRAME_SIZE_LIMIT, Http2Flag, Http2FrameType, validSetting,
} from './wire';

export interface Http2Setting {
  readonly id: number;
  readonly value: number;
}

/**
 * What the reader reports. Views (`Uint8Array` arguments) are valid only
 * during the call: copy what you keep. Every frame first gets `frame()`,
 * then at most the calls its type defines; unknown types get `frame()` only.
 */
export interface Http2FrameHandler {
  /** The client preface was read (start 'client-preface' only). */
  preface(): void;
  /** A frame header was read (before its payload). `streamId` without the reserved bit. */
  frame(type: number, flags: number, streamId: number, length: number): void;
  /** DATA payload bytes, padding stripped: zero or more calls per frame, in order, never copied. */
  data(streamId: number, bytes: Uint8Array): void;
  /** `bytes` of a DATA frame's data were lost to a capture gap (the frame boundary is still known). */
  dataGap(streamId: number, bytes: number): void;
  /** The DATA frame ended. */
  dataEnd(streamId: number, endStream: boolean): void;
  /** A whole header block: HEADERS and its CONTINUATIONs, padding and priority fields stripped. */
  headers(streamId: number, endStream: boolean, block: Uint8Array): void;
  /** A whole PUSH_PROMISE header block (with its CONTINUATIONs). */
  pushPromise(streamId: number, promisedStreamId: number, block: Uint8Array): void;
  priority(streamId: number, dependency: number, exclusive: boolean, weight: number): void;
  rstStream(streamId: number, errorCode: number): void;
  /** SETTINGS: the values in frame order (an ACK has none). */
  settings(ack: boolean, values: readonly Http2Setting[]): void;
  ping(ack: boolean, opaque: Uint8Array): void;
  /** GOAWAY; its debug data is skipped, only its length is told. */
  goaway(lastStreamId: number, errorCode: number, debugLength: number): void;
  windowUpdate(streamId: number, increment: number): void;
}

export type Http2FailureReason =
  /** The client preface was not `PRI * HTTP/2.0...`. */
  | 'bad-preface'
  /** The first frame of a connection's side was not a SETTINGS without ACK (§3.4). */
  | 'settings-expected'
  /** Longer than the frame size the reader allows, or a length the type forbids (§4.2, §6). */
  | 'frame-size'
  /** Pad Length leaves no room for the payload (§6.1, §6.2, §6.6). */
  | 'bad-padding'
  /** Stream 0 where a stream is required, or a stream where 0 is required. */
  | 'stream-id'
  /** A header block was open and the frame was not its CONTINUATION (§6.10). */
  | 'continuation-expected'
  /** CONTINUATION without an open header block (§6.10). */
  | 'unexpected-continuation'
  /** A SETTINGS value out of its range (§6.5.2). */
  | 'bad-setting'
  /** A header block over `maxHeaderBlockBytes` (our bound, not the peer's). */
  | 'header-block-too-large'
  /** A capture gap fell where the bytes matter (frame header, header block, control frame): HPACK state is lost. */
  | 'gap';

export interface Http2ReadFailure {
  readonly reason: Http2FailureReason;
  /** Stream position of the frame (or preface) where it happened. */
  readonly pos: number;
}

export type Http2ReaderStart =
  /** Client side from the first byte: the preface, then SETTINGS. */
  | 'client-preface'
  /** Server side from the first byte: SETTINGS first. */
  | 'server-preface'
  /** At a frame boundary known otherwise (tests, a session that checked the preface itself). */
  | 'frame'
  /** Mid-stream: look for a provable frame boundary in each chunk (detect.ts `findFrameBoundary`). */
  | 'hunt';

export interface Http2ReaderOptions {
  readonly start: Http2ReaderStart;
  /** Stream position of the first byte the reader will see. */
  readonly pos?: number;
  /**
   * Frames longer than this are a connection error. Default: 16384 when the
   * reader starts at a preface (raise it with `allowFrameSize` when the other
   * side advertises more), the 2^24 - 1 limit otherwise (settings unknown).
   */
  readonly maxFrameSize?: number;
  /** Bound of one header block (default 64 KiB). */
  readonly maxHeaderBlockBytes?: number;
  /** Consecutive whole frames a hunt needs to accept a boundary (default 2, see README "Resynchronising"). */
  readonly huntMinFrames?: number;
  /** Largest frame a hunt accepts (default 16384: a larger negotiated size makes the hunt give up, never guess). */
  readonly huntMaxFrameSize?: number;
}

const enum Phase {
  Preface,
  Header,
  PadLength,
  Prefix,
  Body,
  Padding,
  Hunt,
  Failed,
}

/** What the body of the current frame is for. */
const enum Body {
  Data,
  Fragment,
  Settings,
  Skip,
}

const SCRATCH_BYTES = 8;

export class Http2FrameReader {
  /** Stream position of the next byte. */
  position: number;
  failure: Http2ReadFailure | undefined;
  /** Bytes passed over while hunting for a boundary (before the first, after a `resync()`). */
  huntedBytes = 0;
  /** Gap bytes skipped exactly (inside DATA or unknown frames) without losing the frame boundary. */
  gapBytesSkipped = 0;
  /** Frames read (headers complete). */
  frames = 0;

  private phase: Phase;
  private maxFrameSize: number;
  private readonly maxHeaderBlockBytes: number;
  private readonly huntMinFrames: number;
  private readonly huntMaxFrameSize: number;
  /** The first frame must be SETTINGS (after a preface). */
  private expectSettings: boolean;
  private prefaceMatched = 0;

  private readonly head = Buffer.alloc(HTTP2_FRAME_HEADER_BYTES);
  private headFill = 0;
  private readonly scratch = Buffer.alloc(SCRATCH_BYTES);
  private scratchFill = 0;

  // The frame being read.
  private frameStart = 0;
  private type = 0;
  private flags = 0;
  private streamId = 0;
  private length = 0;
  /** Payload bytes still to come (all phases of the frame). */
  private left = 0;
  private prefixLen = 0;
  private padLen = 0;
  private bodyLen = 0;
  private bodyLeft = 0;
  private body = Body.Skip;
  private settingValues: Http2Setting[] | undefined;

  // The open header block: its stream (0 = none) and what it belongs to.
  private blockStream = 0;
  private blockIsPush = false;
  private blockEndStream = false;
  private blockPromised = 0;
  private block: Buffer | undefined;
  private blockLen = 0;
  /** The block when it is one whole frame inside the chunk being read. */
  private blockView: Uint8Array | undefined;

  constructor(private readonly handler: Http2FrameHandler, options: Http2ReaderOptions) {
    this.position = options.pos ?? 0;
    this.maxHeaderBlockBytes = options.maxHeaderBlockBytes ?? HTTP2_DEFAULT_MAX_HEADER_BLOCK;
    this.huntMinFrames = Math.max(1, options.huntMinFrames ?? 2);
    this.huntMaxFrameSize = Math.min(HTTP2_MAX_FRAME_SIZE_LIMIT, options.huntMaxFrameSize ?? HTTP2_DEFAULT_MAX_FRAME_SIZE);
    const fromStart = options.start === 'client-preface' || options.start === 'server-preface';
    this.maxFrameSize = Math.min(HTTP2_MAX_FRAME_SIZE_LIMIT, options.maxFrameSize ?? (fromStart ? HTTP2_DEFAULT_MAX_FRAME_SIZE : HTTP2_MAX_FRAME_SIZE_LIMIT));
    this.expectSettings = fromStart;
    this.phase = options.start === 'client-preface' ? Phase.Preface : options.start === 'hunt' ? Phase.Hunt : Phase.Header;
  }

  /** The reader stopped (connection error or a gap it could not skip); see `failure`. */
  get failed(): boolean {
    return this.phase === Phase.Failed;
  }

  /** Still looking for a provable boundary. */
  get hunting(): boolean {
    return this.phase === Phase.Hunt;
  }

  /**
   * The other side advertised SETTINGS_MAX_FRAME_SIZE `n`: frames up to it
   * are accepted from now on. Never lowers the bound (which side's SETTINGS
   * took effect first is not always visible in a capture).
   */
  allowFrameSize(n: number): void {
    if (n > this.maxFrameSize) this.maxFrameSize = Math.min(n, HTTP2_MAX_FRAME_SIZE_LIMIT);
  }

  /** After a failure: hunt for a provable boundary again (the caller knows what state, e.g. HPACK, it lost). */
  resync(): void {
    this.resetFrameState();
    this.failure = undefined;
    this.expectSettings = false;
    this.maxFrameSize = HTTP2_MAX_FRAME_SIZE_LIMIT;
    this.phase = Phase.Hunt;
  }

  /** Bytes the reader holds (partial frame header, control payload, header block). */
  bufferedBytes(): number {
    return this.headFill + this.scratchFill + this.blockLen;
  }

  /** The next contiguous bytes of the direction. Returns false once the reader has failed. */
  push(data: Uint8Array): boolean {
    let i = 0;
    const end = data.length;
    while (i < end) {
      switch (this.phase) {
        case Phase.Failed:
          this.position += end - i;
          return false;
        case Phase.Hunt: {
          const at = findFrameBoundary(data, i, this.huntMinFrames, this.huntMaxFrameSize);
          const skip = (at < 0 ? end : at) - i;
          this.huntedBytes += skip;
          this.position += skip;
          i += skip;
          if (at >= 0) this.phase = Phase.Header;
          break;
        }
        case Phase.Preface: {
          while (i < end && this.prefaceMatched < HTTP2_CLIENT_PREFACE.length) {
            if (data[i] !== HTTP2_CLIENT_PREFACE[this.prefaceMatched]) {
              this.fail('bad-preface', this.position - this.prefaceMatched);
              break;
            }
            i++;
            this.position++;
            this.prefaceMatched++;
          }
          if (this.prefaceMatched === HTTP2_CLIENT_PREFACE.length) {
            this.phase = Phase.Header;
            this.handler.preface();
          }
          break;
        }
        case Phase.Header: {
          if (this.headFill === 0 && end - i >= HTTP2_FRAME_HEADER_BYTES) {
            this.position += HTTP2_FRAME_HEADER_BYTES;
            i += HTTP2_FRAME_HEADER_BYTES;
            this.startFrame(data, i - HTTP2_FRAME_HEADER_BYTES);
          } else {
            const n = Math.min(HTTP2_FRAME_HEADER_BYTES - this.headFill, end - i);
            for (let k = 0; k < n; k++) this.head[this.headFill + k] = data[i + k]!;
            this.headFill += n;
            this.position += n;
            i += n;
            if (this.headFill === HTTP2_FRAME_HEADER_BYTES) {
              this.headFill = 0;
              this.startFrame(this.head, 0);
            }
          }
          break;
        }
        case Phase.PadLength: {
          this.padLen = data[i]!;
          i++;
          this.position++;
          this.left--;
          if (this.padLen > this.left - this.prefixLen) {
            this.fail('bad-padding', this.frameStart);
            break;
          }
          this.afterPadLength();
          break;
        }
        case Phase.Prefix: {
          const n = Math.min(this.prefixLen - this.scratchFill, end - i);
          for (let k = 0; k < n; k++) this.scratch[this.scratchFill + k] = data[i + k]!;
          this.scratchFill += n;
          this.left -= n;
          this.position += n;
          i += n;
          if (this.scratchFill === this.prefixLen) {
            this.scratchFill = 0;
            this.afterPrefix();
          }
          break;
        }
        case Phase.Body: {
          const n = Math.min(this.bodyLeft, end - i);
          this.bodyLeft -= n;
          this.left -= n;
          this.position += n;
          if (this.body === Body.Data) {
            if (n > 0) this.handler.data(this.streamId, data.subarray(i, i + n));
          } else if (this.body === Body.Fragment) {
            this.takeFragment(data, i, n);
          } else if (this.body === Body.Settings) {
            this.takeSettings(data, i, n);
          }
          i += n;
          if (this.phase === Phase.Body && this.bodyLeft === 0) this.afterBody();
          break;
        }
        case Phase.Padding: {
          const n = Math.min(this.left, end - i);
          this.left -= n;
          this.position += n;
          i += n;
          if (this.left === 0) this.endFrame();
          break;
        }
      }
    }
    return this.phase !== Phase.Failed;
  }

  /**
   * `bytes` of the direction moved but were not captured. Skipped exactly
   * when they fall inside the data or padding of a DATA frame, or inside an
   * unknown frame's payload or GOAWAY debug data (the next frame boundary is
   * known and no decoder state is lost); anywhere else the reader fails with
   * `gap`. While hunting, a gap is just more bytes passed over.
   */
  gap(bytes: number): boolean {
    if (bytes <= 0) return this.phase !== Phase.Failed;
    const at = this.position;
    this.position += bytes;
    if (this.phase === Phase.Failed) return false;
    if (this.phase === Phase.Hunt) {
      this.huntedBytes += bytes;
      return true;
    }
    const skippable = (this.phase === Phase.Body && (this.body === Body.Data || this.body === Body.Skip)) || this.phase === Phase.Padding;
    if (!skippable || bytes > this.left) {
      this.fail('gap', at);
      return false;
    }
    this.gapBytesSkipped += bytes;
    this.left -= bytes;
    if (this.phase === Phase.Body) {
      const lost = Math.min(bytes, this.bodyLeft);
      this.bodyLeft -= lost;
      if (this.body === Body.Data && lost > 0) this.handler.dataGap(this.streamId, lost);
      if (this.bodyLeft === 0) {
        // The rest of the gap, if any, ate padding (afterBody moves there).
        this.afterBody();
        return true;
      }
    } else if (this.left === 0) this.endFrame();
    return true;
  }

  private startFrame(b: Uint8Array, o: number): void {
    const length = (b[o]! << 16) | (b[o + 1]! << 8) | b[o + 2]!;
    const type = b[o + 3]!;
    const flags = b[o + 4]!;
    // The reserved bit is ignored on receipt (§4.1).
    const streamId = ((b[o + 5]! & 0x7f) * 0x1000000) + ((b[o + 6]! << 16) | (b[o + 7]! << 8) | b[o + 8]!);
    this.frameStart = this.position - HTTP2_FRAME_HEADER_BYTES;
    this.type = type;
    this.flags = flags;
    this.streamId = streamId;
    this.length = length;
    this.left = length;
    this.frames++;
    const T = Http2FrameType;
    const padded = (flags & Http2Flag.PADDED) !== 0 && (type === T.DATA || type === T.HEADERS || type === T.PUSH_PROMISE);
    this.padLen = 0;
    this.prefixLen = 0;
    switch (type) {
      case T.HEADERS:
        if ((flags & Http2Flag.PRIORITY) !== 0) this.prefixLen = 5;
        break;
      case T.PUSH_PROMISE:
      case T.PRIORITY:
      case T.RST_STREAM:
      case T.WINDOW_UPDATE:
        this.prefixLen = type === T.PRIORITY ? 5 : 4;
        break;
      case T.PING:
      case T.GOAWAY:
        this.prefixLen = 8;
        break;
    }
    const problem = this.checkHeader() ?? (length < this.prefixLen + (padded ? 1 : 0) ? 'frame-size' : undefined);
    if (problem !== undefined) {
      this.fail(problem, this.frameStart);
      return;
    }
    this.expectSettings = false;
    this.handler.frame(type, flags, streamId, length);
    if (padded) {
      this.phase = Phase.PadLength;
      return;
    }
    this.afterPadLength();
  }

  /** What a receiver would reject from the header alone, or undefined. */
  private checkHeader(): Http2FailureReason | undefined {
    const T = Http2FrameType;
    const { type, flags, streamId, length } = this;
    if (length > this.maxFrameSize) return 'frame-size';
    if (this.expectSettings && (type !== T.SETTINGS || (flags & Http2Flag.ACK) !== 0)) return 'settings-expected';
    if (this.blockStream !== 0) {
      if (type !== T.CONTINUATION || streamId !== this.blockStream) return 'continuation-expected';
    } else if (type === T.CONTINUATION) return 'unexpected-continuation';
    switch (type) {
      case T.DATA:
      case T.HEADERS:
      case T.PUSH_PROMISE:
      case T.CONTINUATION:
        return streamId === 0 ? 'stream-id' : undefined;
      case T.PRIORITY:
        if (streamId === 0) return 'stream-id';
        return length !== 5 ? 'frame-size' : undefined;
      case T.RST_STREAM:
        if (streamId === 0) return 'stream-id';
        return length !== 4 ? 'frame-size' : undefined;
      case T.SETTINGS:
        if (streamId !== 0) return 'stream-id';
        if ((flags & Http2Flag.ACK) !== 0 && length !== 0) return 'frame-size';
        return length % 6 !== 0 ? 'frame-size' : undefined;
      case T.PING:
        if (streamId !== 0) return 'stream-id';
        return length !== 8 ? 'frame-size' : undefined;
      case T.GOAWAY:
        if (streamId !== 0) return 'stream-id';
        return length < 8 ? 'frame-size' : undefined;
      case T.WINDOW_UPDATE:
        return length !== 4 ? 'frame-size' : undefined;
      default:
        return undefined;
    }
  }

  private afterPadLength(): void {
    if (this.prefixLen > 0) {
      this.scratchFill = 0;
      this.phase = Phase.Prefix;
      return;
    }
    this.afterPrefix();
  }

  private afterPrefix(): void {
    const T = Http2FrameType;
    const s = this.scratch;
    const bodyLen = this.left - this.padLen;
    this.bodyLen = bodyLen;
    this.bodyLeft = bodyLen;
    switch (this.type) {
      case T.DATA:
        this.body = Body.Data;
        break;
      case T.HEADERS:
        this.openBlock(false, 0);
        break;
      case T.PUSH_PROMISE:
        this.openBlock(true, s.readUInt32BE(0) & 0x7fffffff);
        break;
      case T.CONTINUATION:
        this.body = Body.Fragment;
        break;
      case T.SETTINGS:
        this.body = Body.Settings;
        this.settingValues = [];
        break;
      case T.PRIORITY: {
        const dep = s.readUInt32BE(0);
        this.handler.priority(this.streamId, dep & 0x7fffffff, (dep & 0x80000000) !== 0, s[4]! + 1);
        this.body = Body.Skip;
        break;
      }
      case T.RST_STREAM:
        this.handler.rstStream(this.streamId, s.readUInt32BE(0));
        this.body = Body.Skip;
        break;
      case T.PING:
        this.handler.ping((this.flags & Http2Flag.ACK) !== 0, s.subarray(0, 8));
        this.body = Body.Skip;
        break;
      case T.GOAWAY:
        this.handler.goaway(s.readUInt32BE(0) & 0x7fffffff, s.readUInt32BE(4), bodyLen);
        this.body = Body.Skip;
        break;
      case T.WINDOW_UPDATE:
        this.handler.windowUpdate(this.streamId, s.readUInt32BE(0) & 0x7fffffff);
        this.body = Body.Skip;
        break;
      default:
        this.body = Body.Skip;
    }
    this.phase = Phase.Body;
    if (bodyLen === 0) this.afterBody();
  }

  private openBlock(push: boolean, promised: number): void {
    this.body = Body.Fragment;
    this.blockStream = this.streamId;
    this.blockIsPush = push;
    this.blockPromised = promised;
    this.blockEndStream = !push && (this.flags & Http2Flag.END_STREAM) !== 0;
    this.blockLen = 0;
  }

  private takeFragment(data: Uint8Array, i: number, n: number): void {
    // The common case: a whole block in one frame, whole in this chunk: a view, no copy.
    if (this.blockLen === 0 && n === this.bodyLen && this.type !== Http2FrameType.CONTINUATION && (this.flags & Http2Flag.END_HEADERS) !== 0) {
      this.blockView = data.subarray(i, i + n);
      return;
    }
    if (n === 0) return;
    const need = this.blockLen + n;
    if (need > this.maxHeaderBlockBytes) {
      this.fail('header-block-too-large', this.frameStart);
      return;
    }
    if (this.block === undefined || this.block.length < need) {
      const grown = Buffer.allocUnsafe(Math.min(this.maxHeaderBlockBytes, Math.max(need, 2 * (this.block?.length ?? 512))));
      if (this.block !== undefined) this.block.copy(grown, 0, 0, this.blockLen);
      this.block = grown;
    }
    for (let k = 0; k < n; k++) this.block[this.blockLen + k] = data[i + k]!;
    this.blockLen = need;
  }

  private takeSettings(data: Uint8Array, i: number, n: number): void {
    for (let k = 0; k < n; k++) {
      this.scratch[this.scratchFill++] = data[i + k]!;
      if (this.scratchFill < 6) continue;
      this.scratchFill = 0;
      const id = this.scratch.readUInt16BE(0);
      const value = this.scratch.readUInt32BE(2);
      if (!validSetting(id, value)) {
        this.fail('bad-setting', this.frameStart);
        return;
      }
      this.settingValues!.push({ id, value });
    }
  }

  private afterBody(): void {
    const T = Http2FrameType;
    if (this.type === T.SETTINGS) {
      const values = this.settingValues ?? [];
      this.settingValues = undefined;
      this.handler.settings((this.flags & Http2Flag.ACK) !== 0, values);
    } else if (this.body === Body.Fragment && (this.flags & Http2Flag.END_HEADERS) !== 0) {
      const block = this.blockView ?? (this.block === undefined ? EMPTY : this.block.subarray(0, this.blockLen));
      const stream = this.blockStream;
      this.blockView = undefined;
      this.blockStream = 0;
      this.blockLen = 0;
      if (this.blockIsPush) this.handler.pushPromise(stream, this.blockPromised, block);
      else this.handler.headers(stream, this.blockEndStream, block);
      // Keep a small buffer for the next block; let a big one go.
      if (this.block !== undefined && this.block.length > 16 * 1024) this.block = undefined;
    }
    if (this.left > 0) {
      this.phase = Phase.Padding;
      return;
    }
    this.endFrame();
  }

  private endFrame(): void {
    if (this.type === Http2FrameType.DATA) this.handler.dataEnd(this.streamId, (this.flags & Http2Flag.END_STREAM) !== 0);
    this.phase = Phase.Header;
  }

  private resetFrameState(): void {
    this.headFill = 0;
    this.scratchFill = 0;
    this.blockStream = 0;
    this.blockLen = 0;
    this.blockView = undefined;
    this.settingValues = undefined;
    this.left = 0;
  }

  private fail(reason: Http2FailureReason, pos: number): void {
    this.failure = { reason, pos };
    this.resetFrameState();
    this.block = undefined;
    this.phase = Phase.Failed;
  }
}

const EMPTY = new Uint8Array(0);
