// Pairs requests with responses on one HTTP/1.x connection. Responses come in
// request order (RFC 9112 §9.3.2), so while both directions have been parsed
// without loss the n-th final response answers the n-th request. After any
// loss (joining mid-stream, a parse error, a gap that framing cannot cover)
// the count is unknown, and pairing resumes only at a "quiet point" that
// proves which request the next response answers. The rule is written out in
// README.md; in short, a response S is paired with request R after a loss only if
//   1. R was parsed from its first byte and S from its first byte;
//   2. S began at or after R began;
//   3. when R began, no other request was outstanding and no response was in flight;
//   4. the response direction moved no bytes (captured, skipped or lost) from
//      R's first byte until S's first byte;
//   5. if the request direction lost bytes before R, the response direction
//      moved bytes after that loss and before R began (the lost request was answered).
// What cannot be paired for certain is dropped and counted, never guessed.
//
// Bounds: requests held while they wait are bounded by count and by bytes.
// Past either, a request is given up but keeps its place in line as a number
// (a run of given-up requests costs the same whatever its length), so the
// responses that answer given-up requests are consumed in order and lockstep
// holds: everything else is still paired. A given-up HEAD or CONNECT would
// leave the next response framed on a guess, so that one costs lockstep, which
// comes back at the next quiet point.

import type { CarriedTraceContext, SessionObserver } from '../types';
import type { Http1Stats } from './counters';
import type { Http1Activity, Http1Message } from './message';

/** A request waiting for its response. */
export interface Http1Pending {
  readonly givenUp: false;
  readonly message: Http1Message;
  /** Condition 3 held when it began. */
  readonly quiet: boolean;
  /** Began after a loss: may only be paired at a quiet point. */
  needsQuiet: boolean;
  /** When the request direction last lost bytes before it began (condition 5). */
  readonly debtFromNs: number | undefined;
  /**
   * Its outcome is out (a timeout record, or given up and abandoned). An
   * expired request stays in line so that its late response, if one comes,
   * is dropped instead of answering the next request.
   */
  ended: boolean;
  /** Reported to the observer (its head is parsed): it must end in a record or an abandon. */
  started: boolean;
  /** What it counts against the byte bound: MESSAGE_COST, plus its strings once `costed`. */
  cost: number;
  /** Its strings are final (head ended or cut) and counted in `cost`. */
  costed: boolean;
}

/**
 * Requests given up by the bounds, in a row: they keep their place in line
 * (each will be answered by one response, which is consumed and dropped) but
 * hold nothing. None is HEAD or CONNECT (their answers are framed differently).
 */
interface Http1GivenUp {
  readonly givenUp: true;
  count: number;
  /** startNs of the first and of the last in the row. */
  readonly firstNs: number;
  lastNs: number;
  needsQuiet: boolean;
}

type Slot = Http1Pending | Http1GivenUp;

const isGivenUp = (s: Slot): s is Http1GivenUp => s.givenUp;

/** A response exchange: any interim (1xx) responses, then the final one. */
interface Exchange {
  readonly startNs: number;
  /** Response-direction activity before its first byte (conditions 4 and 5). */
  readonly before: Http1Activity;
  final: Http1Message | undefined;
  request: Http1Pending | undefined;
  decided: boolean;
  /** Decided: no request can be paired with it for certain. */
  dropped: boolean;
  /** Its body framing was chosen without knowing the request (HEAD and CONNECT change it). */
  guessed: boolean;
  /** Decided: it answers a request given up by the bounds (already counted). */
  answeredGivenUp?: boolean;
}

export type Http1GiveUp = 'timeout' | 'connection_closed';

/** What the stitcher concludes about one request. */
export interface Http1Outcome {
  readonly request: Http1Message;
  /** The final response (head at least), when one was received. */
  readonly response: Http1Message | undefined;
  readonly endNs: number;
  readonly giveUp?: Http1GiveUp;
}

/** Requests kept waiting at most (a generous count); past it a request is given up but keeps its place. */
export const MAX_PENDING = 1024;
/** Bytes of waiting requests and responses kept at most (their strings plus MESSAGE_COST each); past it, the same. */
export const MAX_PENDING_BYTES = 512 * 1024;
/** What a kept message costs beyond its strings (the message, its arrays, the stitcher's entry), for the byte bound. */
export const MESSAGE_COST = 512;
/** Complete responses kept waiting for their request at most. */
export const MAX_WAITING = 64;

export class Http1Stitcher {
  private pending: Slot[] = [];
  /** Requests kept in `pending` (given-up rows not counted) and what they cost. */
  private kept = 0;
  private keptBytes = 0;
  /** What the waiting responses cost. */
  private waitingBytes = 0;
  /** Complete responses whose request is not decided yet (their request may not be parsed yet). */
  private waiting: Exchange[] = [];
  /** The exchange the response direction is in. */
  private current: Exchange | undefined;
  /** Both directions have been in step since the last quiet point (or the connection start). */
  private certain: boolean;
  /** Latest loss on the request direction not yet followed by a quiet point. */
  private requestDebtNs: number | undefined;
  /** startNs of the latest request-direction chunk: no request can still begin before it. */
  private requestWatermarkNs = -Infinity;
  /** An upgrade (or CONNECT) request waits for its answer; the request direction holds its bytes. */
  private upgradeRequest: Http1Message | undefined;

  /** Set for the session: the held upgrade request was answered without a protocol switch. */
  declined = false;
  /** Set for the session: the upgrade request and the answer that switched protocols. */
  switchedBy: { readonly request: Http1Message; readonly response: Http1Message } | undefined;
  /** Time of what is being processed (for abandons). */
  nowNs = 0;
  /** Set for the session: a response was framed on a wrong guess; the response direction must resync. */
  framingLost = false;

  constructor(
    private readonly stats: Http1Stats,
    private readonly emit: (o: Http1Outcome) => void,
    /** The response direction's latest activity. */
    private readonly responseActivity: () => Http1Activity,
    fromStart: boolean,
    private readonly observer: SessionObserver | undefined,
    private readonly traceContextOf: (m: Http1Message) => CarriedTraceContext | undefined,
  ) {
    this.certain = fromStart;
  }

  // --- request direction ------------------------------------------------

  requestBegin(m: Http1Message): void {
    const quiet = this.pending.length === 0 && this.current === undefined;
    if (this.kept >= MAX_PENDING || this.keptBytes + MESSAGE_COST > MAX_PENDING_BYTES) {
      this.giveUpInLine(m, !this.certain);
      this.pump();
      return;
    }
    const entry: Http1Pending = {
      givenUp: false,
      message: m,
      quiet,
      needsQuiet: !this.certain,
      debtFromNs: this.requestDebtNs,
      ended: false,
      started: false,
      cost: MESSAGE_COST,
      costed: false,
    };
    this.pending.push(entry);
    this.kept++;
    this.keptBytes += entry.cost;
    this.pump();
  }

  requestHeaders(m: Http1Message): void {
    const last = this.pending[this.pending.length - 1];
    const entry = last !== undefined && !isGivenUp(last) && last.message === m ? last : this.findPending(m);
    if (entry !== undefined && !entry.started && this.keep(entry)) this.start(entry, true);
    this.pump();
  }

  /**
   * The strings of the newest request are known (its head ended or was cut):
   * the byte bound is checked again. False when it was given up instead.
   */
  private keep(entry: Http1Pending): boolean {
    if (entry.costed) return true;
    const cost = MESSAGE_COST + entry.message.keptBytes();
    if (entry === this.pending[this.pending.length - 1] && !entry.ended && this.keptBytes - entry.cost + cost > MAX_PENDING_BYTES) {
      this.pending.pop();
      this.unkeep(entry);
      this.giveUpInLine(entry.message, entry.needsQuiet);
      return false;
    }
    this.keptBytes += cost - entry.cost;
    entry.cost = cost;
    entry.costed = true;
    return true;
  }

  requestComplete(m: Http1Message): void {
    if (m.upgrade) this.upgradeRequest = m;
  }

  /**
   * The request direction lost bytes at `atNs`; `inFlight` is the request cut
   * (its `incomplete` says why). It keeps its place: the next response in line
   * answers it as surely as any other, so it can still become a record.
   */
  requestLost(inFlight: Http1Message | undefined, atNs: number): void {
    if (inFlight !== undefined) {
      const entry = this.findPending(inFlight);
      // Started now, without trace context (header lines after the cut are unknown).
      if (entry !== undefined && !entry.ended && this.keep(entry)) this.start(entry, false);
    }
    this.certain = false;
    this.requestDebtNs = atNs;
    this.pump();
  }

  /** A request-direction chunk starting at `startNs` is about to be parsed. */
  requestWatermark(startNs: number): void {
    if (startNs > this.requestWatermarkNs) this.requestWatermarkNs = startNs;
    this.pump();
  }

  // --- response direction -----------------------------------------------

  responseBegin(m: Http1Message): void {
    this.current ??= {
      startNs: m.startNs,
      before: m.before,
      final: undefined,
      request: undefined,
      decided: false,
      dropped: false,
      guessed: false,
    };
  }

  /** The head of a response: how its body is framed (0 per headers, 1 none, 2 none and a protocol switch). */
  responseHeaders(m: Http1Message): 0 | 1 | 2 {
    const ex = this.current;
    if (ex === undefined) return 0;
    if (isInterim(m.statusCode)) return 1;
    ex.final = m;
    this.pump();
    const req = ex.decided && !ex.dropped ? ex.request?.message : undefined;
    if (req === undefined) {
      ex.guessed = true;
      return 0;
    }
    if (req.method === 'HEAD') return 1;
    if (req.method === 'CONNECT' && m.statusCode >= 200 && m.statusCode < 300) return 2;
    return 0;
  }

  responseComplete(m: Http1Message): void {
    const ex = this.current;
    if (ex === undefined || isInterim(m.statusCode) || ex.final !== m) return;
    this.current = undefined;
    this.answerUpgrade(ex, m);
    if (ex.decided) this.finish(ex);
    else {
      this.waiting.push(ex);
      this.waitingBytes += MESSAGE_COST + m.keptBytes();
      if (this.waiting.length > MAX_WAITING || this.waitingBytes > MAX_PENDING_BYTES) {
        // Dropped undecided: the request it answers may still come, so lockstep cannot be trusted.
        this.shiftWaiting();
        this.stats.unpairedResponses++;
        this.loseCertainty();
      }
      this.pump();
    }
  }

  /** The response direction lost bytes at `atNs`: the exchange in flight is dropped. */
  responseLost(): void {
    const ex = this.current;
    this.current = undefined;
    if (ex !== undefined) {
      if (ex.final !== undefined && !ex.answeredGivenUp) this.stats.unpairedResponses++;
      if (ex.decided && !ex.dropped && ex.request !== undefined) this.giveUp(ex.request);
    }
    this.loseCertainty();
    this.pump();
  }

  // --- time and end -------------------------------------------------------

  expire(nowNs: number, timeoutNs: number): void {
    for (let i = 0; i < this.pending.length; ) {
      const e = this.pending[i]!;
      if (isGivenUp(e)) {
        // Given up already; they keep their place so that their responses are consumed in order.
        if (nowNs - e.firstNs <= timeoutNs) break;
        i++;
        continue;
      }
      if (nowNs - e.message.startNs <= timeoutNs) break;
      if (e.ended) {
        i++;
        continue;
      }
      // Still arriving, or its response is: not waiting yet.
      if (!(e.message.complete || e.message.incomplete !== undefined) || (i === 0 && this.current !== undefined && !this.current.decided)) break;
      if (this.certainlyUnanswered(e, i)) {
        e.ended = true;
        this.stats.requestsWithoutResponse++;
        this.emit({ request: e.message, response: undefined, endNs: nowNs, giveUp: 'timeout' });
        i++;
      } else this.dropPending(i);
    }
    while (this.waiting.length > 0 && nowNs - this.waiting[0]!.startNs > timeoutNs) {
      this.shiftWaiting();
      this.stats.unpairedResponses++;
      // Its request may still come: lockstep cannot be trusted.
      this.loseCertainty();
    }
  }

  /** The connection ended at `atNs` (after the response direction completed what the close delimits). */
  close(atNs: number): void {
    const ex = this.current;
    this.current = undefined;
    if (ex !== undefined) {
      const req = ex.decided && !ex.dropped ? ex.request : undefined;
      if (req !== undefined && !req.ended) {
        this.stats.requestsWithoutResponse++;
        this.emit({ request: req.message, response: ex.final, endNs: atNs, giveUp: 'connection_closed' });
      } else if (ex.final !== undefined && !ex.answeredGivenUp) this.stats.unpairedResponses++;
    }
    this.pending.forEach((e, i) => {
      if (isGivenUp(e) || e.ended) return;
      if (this.certainlyUnanswered(e, i)) {
        this.stats.requestsWithoutResponse++;
        this.emit({ request: e.message, response: undefined, endNs: atNs, giveUp: 'connection_closed' });
      } else this.giveUp(e);
    });
    this.pending = [];
    this.kept = 0;
    this.keptBytes = 0;
    this.stats.unpairedResponses += this.waiting.length;
    this.waiting = [];
    this.waitingBytes = 0;
  }

  bufferedBytes(): number {
    // Kept strings, from the running sums (constant time: called after every event).
    let n = this.keptBytes - this.kept * MESSAGE_COST + this.waitingBytes - this.waiting.length * MESSAGE_COST;
    // The newest request's strings while its head is being parsed.
    const last = this.pending[this.pending.length - 1];
    if (last !== undefined && !isGivenUp(last) && !last.costed) n += last.message.keptBytes();
    n += this.current?.final?.keptBytes() ?? 0;
    return n;
  }

  // --- pairing --------------------------------------------------------------

  /** Decides what can be decided, oldest response first. */
  private pump(): void {
    for (;;) {
      const waiting = this.waiting[0];
      const ex = waiting ?? (this.current?.final !== undefined && !this.current.decided ? this.current : undefined);
      if (ex === undefined || !this.decide(ex)) return;
      if (ex === waiting) {
        this.shiftWaiting();
        this.finish(ex);
      }
    }
  }

  /** Pairs `ex` with a request or drops it; false when that must wait for the request direction. */
  private decide(ex: Exchange): boolean {
    for (;;) {
      const head = this.pending[0];
      if (head === undefined) {
        // No request began before this response: none can any more once the request direction is past it.
        if (this.requestWatermarkNs > ex.startNs) return this.dropExchange(ex);
        return false;
      }
      if (isGivenUp(head)) {
        if (ex.startNs < head.firstNs || (head.count === 1 && ex.startNs < head.lastNs)) {
          // The response began before the request: it answers one we did not see.
          if (!head.needsQuiet) this.loseCertainty();
          return this.dropExchange(ex);
        }
        if (head.needsQuiet) {
          // Given up, and not provably answered in order any more: out of line (counted when given up).
          this.pending.shift();
          continue;
        }
        // In lockstep: this response answers the first of the row; it is consumed, nothing is recorded.
        if (--head.count === 0) this.pending.shift();
        ex.decided = true;
        ex.dropped = true;
        ex.answeredGivenUp = true;
        return true;
      }
      if (ex.startNs < head.message.startNs) {
        // The response began before the request: it answers one we did not see.
        if (!head.needsQuiet) this.loseCertainty();
        return this.dropExchange(ex);
      }
      if (!head.message.headersDone && head.message.incomplete === undefined) return false;
      if (head.needsQuiet && !quietPoint(head, ex)) {
        // Not provably answered by this response nor (conditions only get harder) by a later one.
        this.dropPending(0);
        continue;
      }
      this.pending.shift();
      this.unkeep(head);
      ex.request = head;
      ex.decided = true;
      if (head.needsQuiet) {
        this.certain = true;
        if (this.requestDebtNs === head.debtFromNs) this.requestDebtNs = undefined;
        head.needsQuiet = false;
      }
      if (ex.guessed && framedWrong(head.message, ex.final!)) {
        // The body was framed as if the request were not HEAD/CONNECT: what followed is misparsed.
        this.dropExchangeRequest(ex);
        this.loseCertainty();
        this.framingLost = true;
      }
      return true;
    }
  }

  private finish(ex: Exchange): void {
    const req = ex.request;
    if (ex.answeredGivenUp) return;
    if (ex.dropped || req === undefined || req.ended) {
      this.stats.unpairedResponses++;
      return;
    }
    this.emit({ request: req.message, response: ex.final, endNs: ex.final!.lastByteNs });
  }

  private answerUpgrade(ex: Exchange, m: Http1Message): void {
    const up = this.upgradeRequest;
    if (up === undefined || ex.startNs < up.startNs) return;
    this.upgradeRequest = undefined;
    const switched = m.statusCode === 101 || (ex.request?.message === up && up.method === 'CONNECT' && m.statusCode >= 200 && m.statusCode < 300);
    if (!switched) this.declined = true;
    else this.switchedBy = { request: up, response: m };
  }

  private dropExchange(ex: Exchange): true {
    ex.decided = true;
    ex.dropped = true;
    return true;
  }

  /** The request of a decided exchange is gone: the exchange is dropped, the request given up. */
  private dropExchangeRequest(ex: Exchange): void {
    if (ex.request !== undefined && !ex.dropped) this.giveUp(ex.request);
    ex.dropped = true;
  }

  private dropPending(i: number): void {
    const [e] = this.pending.splice(i, 1);
    if (e === undefined || isGivenUp(e)) return;
    this.unkeep(e);
    this.giveUp(e);
  }

  private findPending(m: Http1Message): Http1Pending | undefined {
    for (let i = this.pending.length - 1; i >= 0; i--) {
      const e = this.pending[i]!;
      if (!isGivenUp(e) && e.message === m) return e;
    }
    return undefined;
  }

  private unkeep(e: Http1Pending): void {
    this.kept--;
    this.keptBytes -= e.cost;
  }

  private shiftWaiting(): void {
    const ex = this.waiting.shift();
    if (ex !== undefined) this.waitingBytes -= MESSAGE_COST + (ex.final?.keptBytes() ?? 0);
  }

  /** Tells the observer the request began (once); the trace context only from a head parsed whole. */
  private start(e: Http1Pending, headParsed: boolean): void {
    if (e.started || this.observer === undefined) return;
    e.started = true;
    const m = e.message;
    const traceContext = headParsed ? this.traceContextOf(m) : undefined;
    // Two literal shapes rather than a spread (which builds the object key by key).
    this.observer.requestStarted(
      traceContext !== undefined
        ? { sequence: m.index, pos: m.pos, startNs: m.startNs, tid: m.tid, traceContext }
        : { sequence: m.index, pos: m.pos, startNs: m.startNs, tid: m.tid },
    );
  }

  /**
   * A request past the bounds: given up (counted, never a record) but kept in
   * line as a number. A HEAD or CONNECT changes how its answer is framed, which
   * a number does not say: that one also costs lockstep.
   */
  private giveUpInLine(m: Http1Message, needsQuiet: boolean): void {
    this.stats.pipelinedGivenUp++;
    if (m.method === 'HEAD' || m.method === 'CONNECT') {
      // Its answer will be framed on a guess: from its place on, pairing waits for a quiet point.
      needsQuiet = true;
      this.certain = false;
    }
    const last = this.pending[this.pending.length - 1];
    if (last !== undefined && isGivenUp(last) && last.needsQuiet === needsQuiet) {
      last.count++;
      last.lastNs = m.startNs;
    } else this.pending.push({ givenUp: true, count: 1, firstNs: m.startNs, lastNs: m.startNs, needsQuiet });
  }

  /** A request that will never have a record (unless expire() already gave it one): counted, abandoned. */
  private giveUp(e: Http1Pending): void {
    if (e.ended) return;
    e.ended = true;
    this.stats.requestsWithoutResponse++;
    if (e.started) this.observer?.requestAbandoned(e.message.index, this.nowNs);
  }

  private loseCertainty(): void {
    this.certain = false;
    for (const e of this.pending) e.needsQuiet = true;
  }

  /** No response to `e` has begun and none can be in a part we did not see (for give-ups). */
  private certainlyUnanswered(e: Http1Pending, index: number): boolean {
    if (!e.message.headersDone && e.message.incomplete === undefined) return false;
    if (!e.needsQuiet) return true;
    const act = this.responseActivity();
    return (
      index === 0 &&
      e.quiet &&
      act.endNs < e.message.startNs &&
      (e.debtFromNs === undefined || act.startNs >= e.debtFromNs)
    );
  }
}

function isInterim(status: number): boolean {
  return status >= 100 && status < 200 && status !== 101;
}

/** Conditions 3 to 5 of the quiet point for request `r` and response exchange `ex` (1 and 2 hold already). */
function quietPoint(r: Http1Pending, ex: Exchange): boolean {
  return (
    r.quiet &&
    ex.before.endNs < r.message.startNs &&
    (r.debtFromNs === undefined || ex.before.startNs >= r.debtFromNs)
  );
}

/** A response framed without knowing its request, and the request changes the framing. */
function framedWrong(req: Http1Message, res: Http1Message): boolean {
  if (req.method === 'HEAD') return res.bodyKind !== 'none';
  if (req.method === 'CONNECT') return res.statusCode >= 200 && res.statusCode < 300;
  return false;
}
