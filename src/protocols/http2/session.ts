// The HTTP/2 session of one connection: a frame reader and an HPACK decoder
// per direction, the streams in flight (bounded), one record per
// client-initiated stream. See README.md "Sessions".

import {
  newProtocolStats,
  type Chunk,
  type CommonProtocolOptions,
  type ConnectionInfo,
  type L7Record,
  type ProtocolSession,
  type SessionObserver,
  type Side,
} from '../types';
import { httpParseCaches, routeMatcher } from '../http/semantics';
import { parseTraceContext } from '../http/trace-context';
import { HTTP2_COUNTERS, type Http2Stats } from './counters';
import { Http2FrameReader, type Http2FrameHandler, type Http2Setting } from './frames';
import { decodeGrpcMessage, GrpcMessageCounter, isGrpcContentType } from './grpc';
import { HPACK_FIELD_UNKNOWN, HpackDecoder, HpackFieldList } from './hpack';
import { buildStreamRecord, type Http2RecordContext, type Http2Ending } from './record';
import { Http2Head, Http2Stream } from './stream';
import { Http2FrameType, Http2SettingId, HTTP2_FRAME_HEADER_BYTES } from './wire';

/** Streams in flight per connection: far above SETTINGS_MAX_CONCURRENT_STREAMS defaults (100 to 250); past it new streams are not followed. */
export const HTTP2_MAX_STREAMS = 1024;
/** Longest grpc-message kept (the span's status message). */
const MAX_STATUS_MESSAGE = 256;
/** What a stream costs beside the bytes its reader holds (for the memory bound). */
const STREAM_COST = 512;

export type Http2Options = CommonProtocolOptions;

/** One direction: its reader, its decoder, and the timing of the bytes it is reading. */
class Direction implements Http2FrameHandler {
  readonly reader: Http2FrameReader;
  readonly decoder: HpackDecoder;
  /**
   * The chunk being pushed: its stream position, the reader's position at
   * its first byte (they differ after a protocol switch), its times, and the
   * start time of the one before (a frame header may straddle them).
   */
  chunkPos = 0;
  chunkReaderPos = 0;
  chunkStartNs = 0;
  chunkEndNs = 0;
  prevStartNs = 0;
  tid = 0;
  /** Where (stream position) and when the current frame began. */
  framePos = 0;
  frameStartNs = 0;

  constructor(
    private readonly session: Http2Session,
    readonly isRequest: boolean,
    sawStart: boolean,
  ) {
    this.reader = new Http2FrameReader(this, {
      start: sawStart ? (isRequest ? 'client-preface' : 'server-preface') : 'hunt',
    });
    this.decoder = new HpackDecoder(sawStart ? {} : { unsynced: true });
  }

  preface(): void {}
  frame(type: number): void {
    // A header block's start is its HEADERS frame's, not a CONTINUATION's.
    if (type === Http2FrameType.CONTINUATION) return;
    const at = this.reader.position - HTTP2_FRAME_HEADER_BYTES;
    this.framePos = this.chunkPos - (this.chunkReaderPos - at);
    this.frameStartNs = at >= this.chunkReaderPos ? this.chunkStartNs : this.prevStartNs;
  }
  data(streamId: number, bytes: Uint8Array): void {
    this.session.data(this, streamId, bytes);
  }
  dataGap(streamId: number, bytes: number): void {
    this.session.dataGap(this, streamId, bytes);
  }
  dataEnd(streamId: number, endStream: boolean): void {
    if (endStream) this.session.endStream(this, streamId);
  }
  headers(streamId: number, endStream: boolean, block: Uint8Array): void {
    this.session.headers(this, streamId, endStream, block);
  }
  pushPromise(_streamId: number, _promised: number, block: Uint8Array): void {
    this.session.pushPromise(this, block);
  }
  priority(): void {}
  rstStream(streamId: number, errorCode: number): void {
    this.session.rstStream(this, streamId, errorCode);
  }
  settings(ack: boolean, values: readonly Http2Setting[]): void {
    if (!ack) this.session.settings(this, values);
  }
  ping(): void {}
  goaway(lastStreamId: number): void {
    this.session.goaway(this, lastStreamId);
  }
  windowUpdate(): void {}
}

const fields = new HpackFieldList();

export class Http2Session implements ProtocolSession {
  readonly stats = newProtocolStats(HTTP2_COUNTERS) as Http2Stats;
  private readonly requests: Direction;
  private readonly responses: Direction;
  private readonly streams = new Map<number, Http2Stream>();
  /** Highest client stream id met: a HEADERS on a higher one opens a stream (ids only grow, RFC 9113 §5.1.1). */
  private highestStream = 0;
  /** Streams opened so far (each stream's `order`). */
  private opened = 0;
  /** Joined mid-stream or resynced: the next request HEADERS may belong to a stream opened before. */
  private unproven: boolean;
  /** The first stream opened since the attach or the last resync: a client stream below it, not followed, was opened before. */
  private firstFollowed = 0;
  /** Streams counted in streamsBeforeAttach (each once, whichever of its header blocks is met first). */
  private readonly countedBefore = new Set<number>();
  private readonly sawStart: boolean;
  private readonly context: Http2RecordContext;
  private out: L7Record[] = [];
  private closed = false;

  constructor(
    conn: ConnectionInfo,
    private readonly requestSide: Side,
    options: Http2Options,
    private readonly observer?: SessionObserver,
  ) {
    this.unproven = !conn.sawStart;
    this.sawStart = conn.sawStart;
    this.requests = new Direction(this, true, conn.sawStart);
    this.responses = new Direction(this, false, conn.sawStart);
    const stats = this.stats;
    this.context = {
      conn,
      kind: requestSide === 'ingress' ? 'server' : 'client',
      onCacheReset: () => stats.parseCacheResets++,
      caches: httpParseCaches(options),
      // HTTP/2 takes no route patterns yet: the heuristic.
      routes: routeMatcher(undefined),
    };
  }

  onChunk(chunk: Chunk, out: L7Record[]): void {
    if (this.closed || chunk.data.length === 0) return;
    this.out = out;
    const d = chunk.side === this.requestSide ? this.requests : this.responses;
    d.prevStartNs = d.chunkStartNs;
    d.chunkPos = chunk.pos;
    d.chunkReaderPos = d.reader.position;
    d.chunkStartNs = chunk.startNs;
    d.chunkEndNs = chunk.endNs;
    d.tid = chunk.tid ?? 0;
    const hunted = d.reader.huntedBytes;
    const opened = this.opened;
    if (!d.reader.push(chunk.data)) this.readerFailed(d, chunk.endNs);
    if (d.reader.huntedBytes !== hunted) this.passedOver(d, d.reader.huntedBytes - hunted, opened);
  }

  /**
   * A hunting reader passed over `bytes` of `d`: frames of the streams in
   * flight before (opened before `opened`) may have been among them, as
   * after a gap.
   */
  private passedOver(d: Direction, bytes: number, opened: number): void {
    this.stats.bytesSkipped += bytes;
    for (const s of this.streams.values()) if (s.order < opened) this.taint(s, d);
  }

  private taint(s: Http2Stream, d: Direction): void {
    s.tainted = true;
    if (d.isRequest) {
      s.requestBodyLost = true;
      if (s.grpcRequest !== undefined) s.grpcRequest.lost = true;
    } else {
      s.responseBodyLost = true;
      if (s.grpcResponse !== undefined) s.grpcResponse.lost = true;
    }
  }

  onGap(side: Side, _pos: number, bytes: number, atNs: number, out: L7Record[]): void {
    if (this.closed) return;
    this.out = out;
    const d = side === this.requestSide ? this.requests : this.responses;
    d.chunkEndNs = atNs;
    const hunted = d.reader.huntedBytes;
    const opened = this.opened;
    if (!d.reader.gap(bytes)) this.readerFailed(d, atNs);
    if (d.reader.huntedBytes !== hunted) this.passedOver(d, d.reader.huntedBytes - hunted, opened);
  }

  /**
   * Streams waiting longer than the timeout without a response head are
   * given up. A stream whose response has begun stays (a long-lived
   * streaming call ends when it ends), within the stream bound.
   */
  expire(nowNs: number, timeoutNs: number, out: L7Record[]): void {
    if (this.closed) return;
    this.out = out;
    for (const s of this.streams.values()) {
      if (s.response === undefined && nowNs - s.lastNs > timeoutNs) this.finish(s, nowNs, 'timeout');
    }
  }

  close(atNs: number, out: L7Record[]): void {
    if (this.closed) return;
    this.out = out;
    for (const s of this.streams.values()) this.finish(s, atNs, 'connection_closed');
    this.closed = true;
  }

  dispose(): void {
    this.closed = true;
    this.streams.clear();
  }

  bufferedBytes(): number {
    return this.requests.reader.bufferedBytes() + this.responses.reader.bufferedBytes() + this.streams.size * STREAM_COST;
  }

  /** HPACK counters of both decoders, summed (the tracker exports them with the session's stats). */
  private syncHpackStats(): void {
    const a = this.requests.decoder.stats;
    const b = this.responses.decoder.stats;
    this.stats.hpackUnknownFields = a.unknownReferences + b.unknownReferences;
    this.stats.hpackErrors = a.errors + b.errors;
  }

  // --- frames -----------------------------------------------------------------

  headers(d: Direction, streamId: number, endStream: boolean, block: Uint8Array): void {
    const head = this.decode(d, block);
    if (d.isRequest) this.requestHeaders(d, streamId, endStream, head);
    else this.responseHeaders(d, streamId, endStream, head);
  }

  pushPromise(d: Direction, block: Uint8Array): void {
    // Decoded for the table's sake only: pushed streams are not followed.
    this.decode(d, block);
    this.stats.pushedStreams++;
  }

  private requestHeaders(d: Direction, streamId: number, endStream: boolean, head: Http2Head): void {
    const known = this.streams.get(streamId);
    if (known !== undefined) {
      // Request trailers.
      known.lastNs = d.chunkEndNs;
      if (endStream) this.endStream(d, streamId);
      return;
    }
    if ((streamId & 1) === 0 || streamId <= this.highestStream) return;
    this.highestStream = streamId;
    // Joined mid-stream (or after a resync), the first stream met may be a
    // trailer of one opened before: only a block that names its method
    // opens a stream then.
    const unproven = this.unproven;
    this.unproven = false;
    if (unproven && head.method === undefined) {
      this.openedBefore(streamId);
      return;
    }
    if (unproven) this.firstFollowed = streamId;
    if (head.method === undefined && head.undecoded) {
      // Nothing of it known, not even that it is a request head.
      this.stats.streamsUnknown++;
      return;
    }
    if (this.streams.size >= HTTP2_MAX_STREAMS) {
      this.stats.streamsOverLimit++;
      return;
    }
    const grpc = isGrpcContentType(head.contentType);
    const s = new Http2Stream(streamId, (streamId - 1) / 2, d.frameStartNs, head, grpc, this.opened++);
    s.lastNs = d.chunkEndNs;
    s.traceContext = head.traceparent !== undefined ? parseTraceContext(head.traceparent, head.tracestate ?? []) : undefined;
    this.streams.set(streamId, s);
    this.observer?.requestStarted({
      sequence: s.sequence,
      pos: d.framePos,
      startNs: s.startNs,
      tid: d.tid,
      peerId: streamId,
      ...(s.traceContext !== undefined ? { traceContext: s.traceContext } : {}),
    });
    if (endStream) this.endStream(d, streamId);
  }

  private responseHeaders(d: Direction, streamId: number, endStream: boolean, head: Http2Head): void {
    const s = this.streams.get(streamId);
    if (s === undefined) {
      if ((streamId & 1) === 0) return;
      // Seen from the start, stream 1 answered before any request HEADERS is an h2c upgrade's (its request was HTTP/1.1).
      if (this.sawStart && streamId === 1) return;
      // Above every stream met, or below the first one followed since the
      // attach (or resync): opened before. Else already recorded, or not followed.
      if (streamId > this.highestStream || streamId < this.firstFollowed) this.openedBefore(streamId);
      return;
    }
    s.lastNs = d.chunkEndNs;
    if (s.response === undefined) {
      // Interim 1xx heads come before the final one (RFC 9113 §8.1).
      if (head.status !== undefined && head.status < 200) return;
      s.response = head;
      if (!s.grpc && isGrpcContentType(head.contentType)) {
        // The request's content-type was not known (mid-stream): the response
        // says gRPC. Its messages are counted from here; the request's were
        // not followed.
        s.grpc = true;
        s.grpcResponse = new GrpcMessageCounter();
      }
    } else s.trailers = head;
    if (endStream) this.endStream(d, streamId);
  }

  data(d: Direction, streamId: number, bytes: Uint8Array): void {
    const s = this.streams.get(streamId);
    if (s === undefined) return;
    s.lastNs = d.chunkEndNs;
    if (d.isRequest) {
      s.requestBody += bytes.length;
      s.grpcRequest?.data(bytes);
    } else {
      s.responseBody += bytes.length;
      s.grpcResponse?.data(bytes);
    }
  }

  dataGap(d: Direction, streamId: number, bytes: number): void {
    const s = this.streams.get(streamId);
    if (s === undefined) return;
    if (d.isRequest) {
      s.requestBody += bytes;
      s.requestBodyLost = true;
      s.grpcRequest?.gap(bytes);
    } else {
      s.responseBody += bytes;
      s.responseBodyLost = true;
      s.grpcResponse?.gap(bytes);
    }
  }

  endStream(d: Direction, streamId: number): void {
    const s = this.streams.get(streamId);
    if (s === undefined) return;
    if (d.isRequest) {
      s.requestEnded = true;
      s.grpcRequest?.end();
      return;
    }
    s.responseEnded = true;
    s.grpcResponse?.end();
    // The response is whole: the record is made now, whether or not the
    // request finished (a server may answer early and reset the rest).
    this.finish(s, d.chunkEndNs, undefined);
  }

  rstStream(d: Direction, streamId: number, errorCode: number): void {
    const s = this.streams.get(streamId);
    if (s === undefined) return;
    s.resetCode = errorCode;
    s.resetByRequester = d.isRequest;
    this.finish(s, d.chunkEndNs, 'reset');
  }

  settings(d: Direction, values: readonly Http2Setting[]): void {
    const other = d.isRequest ? this.responses : this.requests;
    for (const v of values) {
      // This side will accept frames this large from the other one.
      if (v.id === Http2SettingId.MAX_FRAME_SIZE) other.reader.allowFrameSize(v.value);
      // The other side's encoder may now use a table up to this size; until
      // the ACK is matched the limit is not known for certain: unknown.
      else if (v.id === Http2SettingId.HEADER_TABLE_SIZE && v.value !== other.decoder.maxTableSize) other.decoder.setTableSizeLimit(undefined);
    }
  }

  goaway(d: Direction, lastStreamId: number): void {
    // From the server: streams above lastStreamId were not and will not be processed (§6.8).
    if (d.isRequest) return;
    for (const s of this.streams.values()) if (s.id > lastStreamId) this.finish(s, d.chunkEndNs, 'refused');
  }

  // --- internals --------------------------------------------------------------

  /** A stream opened before the attach (or a resync) was met: counted once, however many of its blocks come. */
  private openedBefore(streamId: number): void {
    if (this.countedBefore.has(streamId)) return;
    // Bounded: past it a stream may be counted twice, never missed.
    if (this.countedBefore.size >= HTTP2_MAX_STREAMS) this.countedBefore.clear();
    this.countedBefore.add(streamId);
    this.stats.streamsBeforeAttach++;
  }

  private decode(d: Direction, block: Uint8Array): Http2Head {
    const buf = Buffer.isBuffer(block) ? block : Buffer.from(block.buffer, block.byteOffset, block.byteLength);
    const r = d.decoder.decode(buf, fields);
    const head = new Http2Head();
    if (r !== 'ok') {
      head.undecoded = true;
      this.syncHpackStats();
      return head;
    }
    for (let i = 0; i < fields.count; i++) {
      const name = fields.names[i];
      if (name === undefined) {
        if ((fields.flags[i]! & HPACK_FIELD_UNKNOWN) !== 0) head.unknown++;
        continue;
      }
      const value = fields.values[i];
      if (value === undefined) {
        if ((fields.flags[i]! & HPACK_FIELD_UNKNOWN) !== 0) head.unknown++;
        continue;
      }
      take(head, name, value);
    }
    this.syncHpackStats();
    return head;
  }

  /** The stream is over (`ending` undefined: its response ended whole): its record, then forget it. */
  private finish(s: Http2Stream, atNs: number, ending: Http2Ending | undefined): void {
    this.streams.delete(s.id);
    if (s.tainted && (ending === 'timeout' || ending === 'connection_closed')) {
      // Its end may have been in the bytes a gap took: no outcome is known.
      this.stats.streamsDropped++;
      this.observer?.requestAbandoned(s.sequence, atNs);
      return;
    }
    this.stats.records++;
    if (ending === 'timeout' || ending === 'connection_closed') this.stats.requestsWithoutResponse++;
    this.out.push(buildStreamRecord(this.context, s, atNs, ending));
  }

  /**
   * A reader stopped. After a capture gap outside a DATA payload (a large
   * write or read cut by the capture bound) the frames it took are unknown:
   * the streams in flight stay, tainted (their counts of that side inexact;
   * a record only from an end actually seen: END_STREAM, RST_STREAM,
   * GOAWAY; given up without a record at close or timeout). After a
   * connection error (bytes no conforming peer sends) nothing of the
   * streams is trusted: they are dropped. Either way the direction's HPACK
   * table is lost and the reader hunts for a provable frame boundary.
   */
  private readerFailed(d: Direction, atNs: number): void {
    // A header block over our bound is not the peer's fault: like a gap, what it held is unknown, the rest is not.
    const reason = d.reader.failure?.reason;
    const gap = reason === 'gap' || reason === 'header-block-too-large';
    if (gap) {
      if (reason === 'gap') this.stats.gapsUnskippable++;
      else this.stats.headerBlocksOverBound++;
      for (const s of this.streams.values()) this.taint(s, d);
    } else {
      this.stats.parseErrors++;
      for (const s of this.streams.values()) {
        this.stats.streamsDropped++;
        this.observer?.requestAbandoned(s.sequence, atNs);
      }
      this.streams.clear();
    }
    // Frames of the lost span may have opened streams: the next one met must be proven new again.
    this.unproven = true;
    d.decoder.lostBlock();
    d.reader.resync();
  }
}

/** Copies the fields records use (names are lower case in HTTP/2, RFC 9113 §8.2.1). */
function take(h: Http2Head, name: string, value: string): void {
  if (name.charCodeAt(0) === 0x3a /* : */) {
    switch (name) {
      case ':method':
        h.method = value;
        return;
      case ':path':
        h.path = value;
        return;
      case ':scheme':
        h.scheme = value;
        return;
      case ':authority':
        h.authority = value;
        return;
      case ':status':
        h.status = value.length === 3 ? statusOf(value) : undefined;
        return;
    }
    return;
  }
  switch (name) {
    case 'content-type':
      h.contentType = value;
      return;
    case 'user-agent':
      h.userAgent = value;
      return;
    case 'grpc-status':
      h.grpcStatus = value;
      return;
    case 'grpc-message':
      h.grpcMessage = decodeGrpcMessage(value, MAX_STATUS_MESSAGE);
      return;
    case 'grpc-timeout':
      h.grpcTimeout = value;
      return;
    case 'traceparent':
      (h.traceparent ??= []).push(value);
      return;
    case 'tracestate':
      (h.tracestate ??= []).push(value);
      return;
  }
}

function statusOf(v: string): number | undefined {
  const a = v.charCodeAt(0) - 0x30;
  const b = v.charCodeAt(1) - 0x30;
  const c = v.charCodeAt(2) - 0x30;
  if (a < 1 || a > 5 || b < 0 || b > 9 || c < 0 || c > 9) return undefined;
  return a * 100 + b * 10 + c;
}
