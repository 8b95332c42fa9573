// The HTTP/1.x session of one connection: two directions (each an llhttp
// parser), the stitcher that pairs their messages, and the record builder.

import {
  newProtocolStats,
  type Chunk,
  type ConnectionInfo,
  type L7Record,
  type ProtocolSession,
  type SessionObserver,
  type Side,
} from '../types';
import type { Http1Options } from './config';
import { Http1Direction, type Http1DirectionKind, type Http1DirectionListener, type Http1HeadParsing, type Http1Limits } from './direction';
import { headerTables } from './header-names';
import type { Http1Message } from './message';
import { buildRecord, traceContextOf, type Http1RecordContext } from './record';
import { httpParseCaches, routeMatcher } from '../http/semantics';
import { Http1Stitcher, type Http1Outcome } from './stitcher';
import { HTTP1_COUNTERS, type Http1Stats } from './counters';

export const HTTP1_DEFAULT_LIMITS: Http1Limits = {
  maxHeaderBytes: 64 * 1024,
  maxHeaderCount: 256,
  maxTargetBytes: 8 * 1024,
  maxHeldBytes: 64 * 1024,
  maxKeptValue: 1024,
  maxKeptLines: 8,
  maxCapturedValue: 256,
  maxCapturedLines: 16,
};

export class Http1Session implements ProtocolSession, Http1DirectionListener {
  readonly stats = newProtocolStats(HTTP1_COUNTERS) as Http1Stats;
  private readonly requests: Http1Direction;
  private readonly responses: Http1Direction;
  private readonly stitcher: Http1Stitcher;
  private readonly context: Http1RecordContext;
  private out: L7Record[] = [];
  /** The connection switched protocols (101, CONNECT 2xx): nothing more is HTTP/1. */
  private protocolSwitched = false;
  private closed = false;

  constructor(
    conn: ConnectionInfo,
    private readonly requestSide: Side,
    options: Http1Options,
    private readonly observer?: SessionObserver,
    /** 'llhttp': every head through llhttp (the reference the fast path is tested against). */
    heads: Http1HeadParsing = 'fast',
  ) {
    const limits = limitsFor(options);
    const names = headerTables(options);
    this.context = {
      conn,
      kind: requestSide === 'ingress' ? 'server' : 'client',
      routes: routeMatcher(options.routes),
      caches: httpParseCaches(options),
      onCacheReset: () => this.stats.parseCacheResets++,
      captureQuery: options.captureQuery === true,
      requestHeaders: names.request.attributes,
      responseHeaders: names.response.attributes,
    };
    this.requests = new Http1Direction('request', this, this.stats, limits, conn.sawStart, names.request, heads);
    this.responses = new Http1Direction('response', this, this.stats, limits, conn.sawStart, names.response, heads);
    this.stitcher = new Http1Stitcher(
      this.stats,
      (o) => this.emit(o),
      () => this.responses.activity,
      conn.sawStart,
      observer,
      traceContextOf,
    );
  }

  onChunk(chunk: Chunk, out: L7Record[]): void {
    if (this.closed || chunk.data.length === 0) return;
    this.out = out;
    this.stitcher.nowNs = chunk.endNs;
    if (chunk.side === this.requestSide) {
      this.stitcher.requestWatermark(chunk.startNs);
      this.requests.feed(chunk);
    } else this.responses.feed(chunk);
    this.settle(chunk.endNs);
  }

  onGap(side: Side, pos: number, bytes: number, atNs: number, out: L7Record[]): void {
    if (this.closed) return;
    this.out = out;
    this.stitcher.nowNs = atNs;
    (side === this.requestSide ? this.requests : this.responses).gap(pos, bytes, atNs);
    this.settle(atNs);
  }

  expire(nowNs: number, timeoutNs: number, out: L7Record[]): void {
    if (this.closed) return;
    this.out = out;
    this.stitcher.nowNs = nowNs;
    this.stitcher.expire(nowNs, timeoutNs);
  }

  close(atNs: number, out: L7Record[]): void {
    if (this.closed) return;
    this.out = out;
    this.stitcher.nowNs = atNs;
    // A response delimited by the close completes here (RFC 9112 §6.3 item 8).
    this.responses.finish();
    this.stitcher.close(atNs);
    this.closed = true;
    this.requests.free();
    this.responses.free();
  }

  dispose(): void {
    if (this.closed) return;
    this.closed = true;
    this.requests.free();
    this.responses.free();
  }

  bufferedBytes(): number {
    return this.requests.bufferedBytes() + this.responses.bufferedBytes() + this.stitcher.bufferedBytes();
  }

  /** Follow-ups that need a parser other than the one that just ran. */
  private settle(atNs: number): void {
    for (let rounds = 0; rounds < 4; rounds++) {
      if (this.protocolSwitched) {
        this.requests.stop();
        this.responses.stop();
        this.handOff();
        return;
      }
      if (this.stitcher.framingLost) {
        this.stitcher.framingLost = false;
        this.responses.loseSync(atNs);
        continue;
      }
      if (this.stitcher.declined) {
        this.stitcher.declined = false;
        this.requests.resume();
        continue;
      }
      return;
    }
  }

  /**
   * Tells the correlate layer where the next protocol starts on each side and
   * hands it the bytes the directions hold from there on. Once only.
   */
  private handOff(): void {
    const by = this.stitcher.switchedBy;
    if (by === undefined || this.observer?.protocolSwitched === undefined) return;
    this.stitcher.switchedBy = undefined;
    const req = this.requests.handOff();
    const res = this.responses.handOff();
    const responseSide: Side = this.requestSide === 'ingress' ? 'egress' : 'ingress';
    // The 101's Upgrade names the protocol switched to; a request offering one protocol only names it too. CONNECT: not said.
    const token = by.request.method === 'CONNECT' ? undefined : (by.response.upgradeTo[0] ?? (by.request.upgradeTo.length === 1 ? by.request.upgradeTo[0] : undefined));
    const upgrade = token?.split(',')[0]!.trim().toLowerCase();
    const from = { [this.requestSide]: req.from, [responseSide]: res.from } as Record<Side, number | undefined>;
    const held = [...req.held.map((h) => ({ ...h, side: this.requestSide })), ...res.held.map((h) => ({ ...h, side: responseSide }))]
      .sort((a, b) => a.startNs - b.startNs)
      .map((h) => ({ side: h.side, data: h.data, pos: h.pos, startNs: h.startNs, endNs: h.endNs, syscallStart: h.pos === from[h.side], tid: h.tid }));
    this.observer.protocolSwitched({ upgrade: upgrade === '' ? undefined : upgrade, from, held });
  }

  private emit(o: Http1Outcome): void {
    this.stats.records++;
    if (o.request.incomplete !== undefined) this.stats.requestsTruncated++;
    this.out.push(buildRecord(this.context, o));
  }

  // --- Http1DirectionListener ---------------------------------------------

  begin(kind: Http1DirectionKind, m: Http1Message): void {
    if (kind === 'request') this.stitcher.requestBegin(m);
    else this.stitcher.responseBegin(m);
  }

  headers(kind: Http1DirectionKind, m: Http1Message): 0 | 1 | 2 {
    if (kind === 'request') {
      this.stitcher.requestHeaders(m);
      return 0;
    }
    return this.stitcher.responseHeaders(m);
  }

  complete(kind: Http1DirectionKind, m: Http1Message): void {
    if (kind === 'request') this.stitcher.requestComplete(m);
    else this.stitcher.responseComplete(m);
  }

  lost(kind: Http1DirectionKind, inFlight: Http1Message | undefined, atNs: number): void {
    if (kind === 'request') this.stitcher.requestLost(inFlight, atNs);
    else this.stitcher.responseLost();
  }

  switched(): void {
    this.protocolSwitched = true;
  }
}

function limitsFor(options: Http1Options): Http1Limits {
  const max = options.maxBufferedBytes;
  if (max === undefined || max <= 0) return HTTP1_DEFAULT_LIMITS;
  return {
    ...HTTP1_DEFAULT_LIMITS,
    maxHeaderBytes: Math.min(HTTP1_DEFAULT_LIMITS.maxHeaderBytes, max),
    maxTargetBytes: Math.min(HTTP1_DEFAULT_LIMITS.maxTargetBytes, max),
    maxHeldBytes: Math.min(HTTP1_DEFAULT_LIMITS.maxHeldBytes, max),
  };
}
