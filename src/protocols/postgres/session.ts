// The PostgreSQL session of one connection: a message reader per direction,
// the startup exchange, the prepared statements and portals the client
// made, and the queue of frontend messages still waiting for their
// responses (the server answers in order). One record per simple Query and
// per Execute. See README.md "Sessions".

import {
  newProtocolStats,
  type Chunk,
  type ConnectionInfo,
  type L7Record,
  type ProtocolSession,
  type SessionObserver,
  type Side,
} from '../types';
import type { DbOptions } from '../db/semantics';
import { PG_COUNTERS, type PgStats } from './counters';
import { checkBackMessage, checkFrontMessage, startupParameters } from './detect';
import { PgMessageReader, PgReaderState, type PgMessage, type PgMessageSink } from './reader';
import { buildPgRecord, PgCall, type PgEnding, type PgRecordContext } from './record';
import {
  cstringEnd, PG_ANSWER_GSS, PG_ANSWER_NO, PG_ANSWER_SSL, PG_CANCEL_REQUEST, PG_GSSENC_REQUEST, PG_MAX_STARTUP_LENGTH, PG_SSL_REQUEST,
  PG_UNTYPED_HEADER, PgBack, PgFront, readI32,
} from './wire';

export type PgOptions = DbOptions;

/** Named prepared statements (and portals) kept per connection, and the bytes of their texts. */
export const PG_MAX_STATEMENTS = 1024;
export const PG_MAX_STATEMENT_BYTES = 4 * 1024 * 1024;
/** Longest Query or Parse text kept by default (maxBufferedBytes lowers it). */
export const PG_MAX_QUERY_BYTES = 1024 * 1024;
/** Frontend messages waiting for their responses before the session stops following new ones. */
export const PG_MAX_PENDING = 4096;
/** What a Bind, Describe, Close or Execute keeps: its names (NAMEDATALEN is 64). */
const NAMES_PREFIX = 256;
/** What an ErrorResponse or NoticeResponse keeps (its fields; the message is bounded by the record builder). */
const ERROR_PREFIX = 4096;
/** What a pending message costs beside its texts (for the memory bound). */
const PENDING_COST = 64;

const enum Op {
  Parse,
  Bind,
  Describe,
  Execute,
  Close,
  Sync,
  Query,
  FunctionCall,
}

interface Pending {
  readonly op: Op;
  /** Query and Execute: the call it records. */
  readonly call: PgCall | undefined;
  /** Describe of a statement: its ParameterDescription came, its RowDescription or NoData is next. */
  described?: boolean;
}

const enum Phase {
  /** Seen from its start: the client's first (untyped) message is next. */
  Start,
  /** An SSLRequest or GSSENCRequest waits for its one-byte answer. */
  Answer,
  /** StartupMessage sent: authentication and parameters until the first ReadyForQuery. */
  Auth,
  Ready,
  /** The bytes are no longer this protocol's (TLS, GSSAPI, a cancel connection). */
  Done,
}

/** A statement or portal: its SQL, undefined when the agent never saw it or lost its text. */
interface StatementRef {
  readonly sql: string | undefined;
}

const UNKNOWN: StatementRef = { sql: undefined };

/** One direction's reader and the sink the session gives it. */
class Direction implements PgMessageSink {
  readonly reader: PgMessageReader;
  constructor(
    private readonly session: PgSession,
    readonly front: boolean,
    start: PgReaderState,
  ) {
    this.reader = new PgMessageReader(this, start, front ? checkFrontMessage : checkBackMessage);
  }
  keep(type: number, bodyLength: number): number {
    return this.session.keep(this.front, type, bodyLength);
  }
  message(m: PgMessage): void {
    if (this.front) this.session.frontMessage(m);
    else this.session.backMessage(m);
  }
  tailFound(last: PgMessage, ready: PgMessage): void {
    this.session.tailFound(last, ready);
  }
}

export class PgSession implements ProtocolSession {
  readonly stats = newProtocolStats(PG_COUNTERS) as PgStats;
  private readonly front: Direction;
  private readonly back: Direction;
  private readonly context: PgRecordContext;
  private readonly maxQueryBytes: number;
  private phase: Phase;
  /** Requests can be paired with responses (false after a mid-stream attach or a loss, until a ReadyForQuery proves a boundary). */
  private paired: boolean;
  /** Frontend messages that started before this time are not followed (they may be answered before the pairing began). */
  private pairedSinceNs = -1;
  private readonly pending: Pending[] = [];
  /** An ErrorResponse ended an extended-query batch whose Sync has not been read: the server skips everything until it. */
  private discardUntilSync = false;
  /** Where the messages of the extended-query batch leading to the next Execute began. */
  private groupOpen = false;
  private groupPos = 0;
  private groupStartNs = 0;
  private readonly statements = new Map<string, StatementRef>();
  private readonly portals = new Map<string, StatementRef>();
  private statementBytes = 0;
  /** When the last response byte moved (or was lost). */
  private lastBackNs = 0;
  /** The client sent a request while an earlier one waited for its ReadyForQuery: it pipelines. */
  private pipelined = false;
  private sequence = 0;
  private out: L7Record[] = [];
  private closed = false;
  /** The chunk being read (a protocol switch hands on what follows the switch in it). */
  private chunk: Chunk | undefined;

  constructor(
    conn: ConnectionInfo,
    private readonly requestSide: Side,
    options: PgOptions,
    private readonly observer?: SessionObserver,
  ) {
    const start = conn.sawStart;
    this.phase = start ? Phase.Start : Phase.Ready;
    this.paired = start;
    this.front = new Direction(this, true, start ? PgReaderState.Untyped : PgReaderState.Hunt);
    this.back = new Direction(this, false, start ? PgReaderState.Typed : PgReaderState.Hunt);
    this.maxQueryBytes = Math.min(PG_MAX_QUERY_BYTES, options.maxBufferedBytes !== undefined && options.maxBufferedBytes > 0 ? options.maxBufferedBytes : PG_MAX_QUERY_BYTES);
    this.context = {
      conn,
      kind: requestSide === 'ingress' ? 'server' : 'client',
      options: { ...options, queryText: options.queryText ?? 'sanitized' },
      database: undefined,
      user: undefined,
    };
  }

  onChunk(chunk: Chunk, out: L7Record[]): void {
    if (this.closed || chunk.data.length === 0) return;
    this.out = out;
    this.chunk = chunk;
    const d = chunk.side === this.requestSide ? this.front : this.back;
    const hunted = d.reader.huntedBytes;
    d.reader.push(chunk);
    if (d === this.back) this.lastBackNs = chunk.endNs;
    this.afterRead(d, hunted);
    this.chunk = undefined;
  }

  onGap(side: Side, _pos: number, bytes: number, atNs: number, out: L7Record[]): void {
    if (this.closed) return;
    this.out = out;
    const d = side === this.requestSide ? this.front : this.back;
    const hunted = d.reader.huntedBytes;
    const wasHunting = d.reader.state === PgReaderState.Hunt;
    d.reader.gap(bytes, atNs);
    if (d === this.back) this.lastBackNs = atNs;
    // A gap over a message boundary: what the lost messages asked or answered is unknown.
    if (!wasHunting && d.reader.state === PgReaderState.Hunt) {
      if (d === this.back && this.canFindTail()) {
        // One response in flight (a large result read in pieces larger than the capture bound): its end is found by its ReadyForQuery.
        for (const p of this.pending) if (p.call !== undefined) p.call.responseLost = true;
        this.stats.responsesCut++;
        d.reader.tailHunt();
      } else this.losePairing(atNs);
    }
    this.afterRead(d, hunted);
  }

  private afterRead(d: Direction, hunted: number): void {
    if (d.reader.failed) {
      d.reader.failed = false;
      this.stats.parseErrors++;
      this.losePairing(this.chunk?.endNs ?? 0);
    }
    if (d.reader.huntedBytes !== hunted) this.stats.bytesSkipped += d.reader.huntedBytes - hunted;
  }

  /** Calls waiting longer than the timeout without a response byte are given up (the pairing with them). */
  expire(nowNs: number, timeoutNs: number, out: L7Record[]): void {
    if (this.closed) return;
    this.out = out;
    const head = this.pending[0];
    if (head === undefined) return;
    const call = this.firstCall();
    if (call === undefined || nowNs - call.lastNs <= timeoutNs) return;
    // The server answers in order: the first waiting call is the one not answered; the later ones wait behind it.
    this.giveUpAll(nowNs, 'timeout');
    this.unpair();
  }

  close(atNs: number, out: L7Record[]): void {
    if (this.closed) return;
    this.out = out;
    this.giveUpAll(atNs, 'connection_closed');
    this.closed = true;
    this.front.reader.stop();
    this.back.reader.stop();
  }

  dispose(): void {
    this.closed = true;
    this.pending.length = 0;
    this.statements.clear();
    this.portals.clear();
    this.front.reader.stop();
    this.back.reader.stop();
  }

  bufferedBytes(): number {
    return this.front.reader.bufferedBytes() + this.back.reader.bufferedBytes() + this.statementBytes + this.pending.length * PENDING_COST;
  }

  // --- what the readers keep ----------------------------------------------------

  keep(front: boolean, type: number, bodyLength: number): number {
    if (front) {
      switch (type) {
        case 0:
          return bodyLength <= PG_MAX_STARTUP_LENGTH ? bodyLength : 0;
        case PgFront.Query:
          return bodyLength <= this.maxQueryBytes ? bodyLength : 0;
        case PgFront.Parse:
          // Over the bound: the name only (its text is lost).
          return bodyLength <= this.maxQueryBytes ? bodyLength : NAMES_PREFIX;
        case PgFront.Bind:
        case PgFront.Describe:
        case PgFront.Close:
        case PgFront.Execute:
          return NAMES_PREFIX;
        default:
          // Password and SASL messages, CopyData, FunctionCall arguments: never kept.
          return 0;
      }
    }
    switch (type) {
      case PgBack.ErrorResponse:
      case PgBack.NoticeResponse:
        return ERROR_PREFIX;
      case PgBack.CommandComplete:
      case PgBack.ParameterStatus:
        return NAMES_PREFIX;
      case PgBack.ReadyForQuery:
        return 1;
      case PgBack.Authentication:
        return 4;
      default:
        return 0;
    }
  }

  // --- frontend ---------------------------------------------------------------

  frontMessage(m: PgMessage): void {
    if (this.phase === Phase.Done) return;
    if (m.type === 0) return this.untyped(m);
    if (this.phase !== Phase.Ready) return; // Password and SASL messages during authentication: skipped unread.
    const followed = this.paired && m.startNs > this.pairedSinceNs;
    if (followed && startsGroup(m.type, this.groupOpen)) this.nextRequest(m);
    switch (m.type) {
      case PgFront.Query: {
        this.groupOpen = false;
        const end = m.whole ? cstringEnd(m.body, 0, m.body.length) : -1;
        const sql = end >= 0 ? textOf(m.body, 0, end) : undefined;
        if (sql === undefined) this.stats.queryTextsLost++;
        if (!followed) return this.notFollowed(true);
        this.push(Op.Query, this.startCall(m, m.pos, m.startNs, sql, false));
        return;
      }
      case PgFront.Parse: {
        this.openGroup(m);
        const n = cstringEnd(m.body, 0, m.body.length);
        if (n < 0) return this.frontParseError();
        const name = textOf(m.body, 0, n);
        const s = m.whole ? cstringEnd(m.body, n + 1, m.body.length) : -1;
        const sql = s >= 0 ? textOf(m.body, n + 1, s) : undefined;
        if (sql === undefined) this.stats.queryTextsLost++;
        this.defineStatement(name, sql);
        if (followed) this.push(Op.Parse, undefined);
        return;
      }
      case PgFront.Bind: {
        this.openGroup(m);
        const portal = cstringEnd(m.body, 0, m.body.length);
        const stmt = portal >= 0 ? cstringEnd(m.body, portal + 1, m.body.length) : -1;
        if (stmt < 0) {
          // Names longer than a server accepts: what it binds is unknown.
          this.stats.parseErrors++;
        } else this.definePortal(textOf(m.body, 0, portal), this.statements.get(textOf(m.body, portal + 1, stmt)) ?? UNKNOWN);
        if (followed) this.push(Op.Bind, undefined);
        return;
      }
      case PgFront.Describe:
        this.openGroup(m);
        if (followed) this.push(Op.Describe, undefined);
        return;
      case PgFront.Close: {
        this.openGroup(m);
        const n = cstringEnd(m.body, 1, m.body.length);
        if (n > 0) {
          const name = textOf(m.body, 1, n);
          if (m.body[0] === 0x53) this.dropStatement(name);
          else this.portals.delete(name);
        }
        if (followed) this.push(Op.Close, undefined);
        return;
      }
      case PgFront.Execute: {
        this.openGroup(m);
        this.groupOpen = false;
        const n = cstringEnd(m.body, 0, m.body.length);
        const ref = n >= 0 ? this.portals.get(textOf(m.body, 0, n)) : undefined;
        if (!followed) return this.notFollowed(true);
        if (this.discardUntilSync) {
          this.stats.executesSkipped++;
          return;
        }
        const known = ref !== undefined && ref.sql !== undefined;
        this.push(Op.Execute, this.startCall(m, this.groupPos, this.groupStartNs, known ? ref.sql : undefined, !known));
        return;
      }
      case PgFront.Sync:
        this.groupOpen = false;
        if (!followed) return;
        this.discardUntilSync = false;
        this.push(Op.Sync, undefined);
        return;
      case PgFront.FunctionCall:
        this.groupOpen = false;
        if (!followed) return this.notFollowed(false);
        this.stats.functionCalls++;
        this.push(Op.FunctionCall, undefined);
        return;
      default:
        // Flush, Terminate, CopyData, CopyDone, CopyFail, password messages: no response of their own.
        return;
    }
  }

  /**
   * The client starts a new request (or terminates). If it has never
   * pipelined on this connection and the response before was cut by a
   * capture gap without its end seen, this request, sent after the last
   * response byte, proves that response over (a client that does not
   * pipeline waits for the ReadyForQuery): its call is recorded without an
   * outcome, and the response side reads on from its position. Otherwise a
   * request while another waits means the client pipelines.
   */
  private nextRequest(m: PgMessage): void {
    const waiting = this.pending.some((p) => p.op === Op.Sync || p.op === Op.Query || p.op === Op.FunctionCall);
    if (!waiting) return;
    if (this.back.reader.state === PgReaderState.TailHunt && !this.pipelined && m.startNs >= this.lastBackNs && this.canFindTail()) {
      const group: PgCall[] = [];
      while (this.pending.length > 0) {
        const p = this.pending.shift()!;
        if (p.call !== undefined) group.push(p.call);
        if (p.op === Op.Sync || p.op === Op.Query || p.op === Op.FunctionCall) break;
      }
      this.discardUntilSync = false;
      if (group.length === 1) {
        group[0]!.endUnseen = true;
        this.emit(group[0]!, this.lastBackNs);
      } else {
        for (const c of group) {
          this.stats.requestsDropped++;
          this.observer?.requestAbandoned(c.sequence, this.lastBackNs);
        }
      }
      this.back.reader.resume();
      return;
    }
    this.pipelined = true;
  }

  private untyped(m: PgMessage): void {
    if (this.phase !== Phase.Start && this.phase !== Phase.Ready) return;
    if (m.length < PG_UNTYPED_HEADER) return this.frontParseError();
    const code = readI32(m.body, 0);
    switch (code) {
      case PG_SSL_REQUEST:
      case PG_GSSENC_REQUEST:
        this.stats.sslRequests++;
        this.phase = Phase.Answer;
        this.back.reader.expect(PgReaderState.Answer);
        // After an `N` the client sends its StartupMessage in clear.
        this.front.reader.expect(PgReaderState.Untyped);
        return;
      case PG_CANCEL_REQUEST:
        this.stats.cancelRequests++;
        this.finishProtocol();
        return;
      default: {
        // The parameters from the body (startupParameters reads a whole message from its length word).
        const whole = Buffer.allocUnsafe(m.length);
        whole.writeInt32BE(m.length, 0);
        m.body.copy(whole, 4);
        const params = m.whole ? startupParameters(whole, m.length) : undefined;
        if (params === undefined) return this.frontParseError();
        this.context.user = params.get('user');
        this.context.database = params.get('database') || this.context.user;
        this.phase = Phase.Auth;
        return;
      }
    }
  }

  /** Bytes no client sends where they came: the session stops (the connection is not followed further). */
  private frontParseError(): void {
    this.stats.parseErrors++;
    this.losePairing(this.chunk?.endNs ?? 0);
    this.front.reader.hunt();
  }

  private notFollowed(call: boolean): void {
    if (call) this.stats.requestsBeforeSync++;
  }

  private openGroup(m: PgMessage): void {
    if (this.groupOpen) return;
    this.groupOpen = true;
    this.groupPos = m.pos;
    this.groupStartNs = m.startNs;
  }

  private startCall(m: PgMessage, pos: number, startNs: number, sql: string | undefined, unknown: boolean): PgCall {
    const call = new PgCall(this.sequence++, startNs, sql, unknown);
    this.observer?.requestStarted({ sequence: call.sequence, pos, startNs, tid: m.tid });
    return call;
  }

  private push(op: Op, call: PgCall | undefined): void {
    if (this.pending.length >= PG_MAX_PENDING) {
      // A client that never reads its answers: stop pairing rather than grow.
      if (call !== undefined) this.observer?.requestAbandoned(call.sequence, call.startNs);
      this.losePairing(call?.startNs ?? 0);
      this.stats.requestsDropped += call !== undefined ? 1 : 0;
      return;
    }
    this.pending.push({ op, call });
  }

  private defineStatement(name: string, sql: string | undefined): void {
    this.dropStatement(name);
    const bytes = sql?.length ?? 0;
    if (name !== '' && (this.statements.size >= PG_MAX_STATEMENTS || this.statementBytes + bytes > PG_MAX_STATEMENT_BYTES)) {
      this.stats.statementsOverBound++;
      return;
    }
    this.statements.set(name, sql === undefined ? UNKNOWN : { sql });
    this.statementBytes += bytes;
  }

  private dropStatement(name: string): void {
    const old = this.statements.get(name);
    if (old === undefined) return;
    this.statementBytes -= old.sql?.length ?? 0;
    this.statements.delete(name);
  }

  private definePortal(name: string, ref: StatementRef): void {
    if (name !== '' && !this.portals.has(name) && this.portals.size >= PG_MAX_STATEMENTS) {
      this.stats.statementsOverBound++;
      return;
    }
    this.portals.set(name, ref);
  }

  /** Whether the answers in flight end at one ReadyForQuery (one Sync, Query or FunctionCall waits): then that one ends them all. */
  private canFindTail(): boolean {
    if (!this.paired || this.phase !== Phase.Ready) return false;
    let groups = 0;
    for (const p of this.pending) if (p.op === Op.Sync || p.op === Op.Query || p.op === Op.FunctionCall) groups++;
    return groups === 1;
  }

  /**
   * A tail hunt found the ReadyForQuery that ends the one response group in
   * flight and the message before it. With one call in the group, that
   * message is its outcome (CommandComplete: its tag; ErrorResponse: its
   * error; EmptyQueryResponse, PortalSuspended); otherwise which call ended
   * how is unknown: the calls are dropped.
   */
  tailFound(last: PgMessage, ready: PgMessage): void {
    const group: PgCall[] = [];
    while (this.pending.length > 0) {
      const p = this.pending.shift()!;
      if (p.call !== undefined) group.push(p.call);
      if (p.op === Op.Sync || p.op === Op.Query || p.op === Op.FunctionCall) break;
    }
    this.discardUntilSync = false;
    const call = group.length === 1 ? group[0]! : undefined;
    const outcome = last.type === PgBack.CommandComplete || last.type === PgBack.ErrorResponse || last.type === PgBack.EmptyQueryResponse || last.type === PgBack.PortalSuspended;
    if (call === undefined || !outcome) {
      for (const c of group) {
        this.stats.requestsDropped++;
        this.observer?.requestAbandoned(c.sequence, ready.endNs);
      }
      return;
    }
    if (last.type === PgBack.CommandComplete) call.tag(tagOf(last));
    else if (last.type === PgBack.ErrorResponse) {
      const fields = errorFields(last);
      call.failed = true;
      call.errorCode = fields.code;
      call.errorMessage = fields.message;
    } else call.completed++;
    this.emit(call, ready.endNs);
  }

  // --- backend ----------------------------------------------------------------

  backMessage(m: PgMessage): void {
    if (this.phase === Phase.Done) return;
    if (m.answer) return this.answer(m);
    switch (m.type) {
      case PgBack.NoticeResponse:
        this.stats.notices++;
        return;
      case PgBack.NotificationResponse:
        this.stats.notifications++;
        return;
      case PgBack.ParameterStatus:
        return;
    }
    if (this.phase === Phase.Auth || this.phase === Phase.Start) {
      if (m.type === PgBack.ErrorResponse) {
        this.stats.startupErrors++;
        this.finishProtocol();
      } else if (m.type === PgBack.ReadyForQuery) this.phase = Phase.Ready;
      return;
    }
    if (this.phase !== Phase.Ready) return;
    if (!this.paired) {
      // Joined mid-stream (or after a loss): a ReadyForQuery proves the server waits for the client; what follows pairs.
      if (m.type === PgBack.ReadyForQuery) {
        this.paired = true;
        this.pairedSinceNs = m.endNs;
      }
      return;
    }
    const head = this.pending[0];
    const call = head?.call;
    if (call !== undefined) call.lastNs = m.endNs;
    switch (m.type) {
      case PgBack.ParseComplete:
        return this.expectHead(head, Op.Parse, m);
      case PgBack.BindComplete:
        return this.expectHead(head, Op.Bind, m);
      case PgBack.CloseComplete:
        return this.expectHead(head, Op.Close, m);
      case PgBack.ParameterDescription:
        if (head?.op !== Op.Describe || head.described === true) return this.mismatch(m);
        head.described = true;
        return;
      case PgBack.NoData:
        return this.expectHead(head, Op.Describe, m);
      case PgBack.RowDescription:
        if (head?.op === Op.Describe) {
          this.pending.shift();
          // The rows of the Execute that follows the Describe in its batch have columns.
          for (const p of this.pending) {
            if (p.op === Op.Execute) {
              p.call!.resultSet = true;
              break;
            }
            if (p.op === Op.Sync) break;
          }
          return;
        }
        if (head?.op !== Op.Query) return this.mismatch(m);
        call!.resultSet = true;
        return;
      case PgBack.DataRow:
        if (call === undefined) return this.mismatch(m);
        call.rows++;
        return;
      case PgBack.CopyInResponse:
      case PgBack.CopyOutResponse:
      case PgBack.CopyBothResponse:
      case PgBack.CopyData:
      case PgBack.CopyDone:
        if (call === undefined) return this.mismatch(m);
        return;
      case PgBack.CommandComplete:
      case PgBack.EmptyQueryResponse:
      case PgBack.PortalSuspended:
        if (call === undefined) return this.mismatch(m);
        if (m.type === PgBack.CommandComplete) call.tag(tagOf(m));
        else call.completed++;
        if (head!.op === Op.Execute) {
          this.pending.shift();
          this.emit(call, m.endNs);
        }
        return;
      case PgBack.FunctionCallResponse:
        if (head?.op !== Op.FunctionCall) return this.mismatch(m);
        return;
      case PgBack.ErrorResponse:
        return this.error(m);
      case PgBack.ReadyForQuery:
        if (head === undefined || (head.op !== Op.Sync && head.op !== Op.Query && head.op !== Op.FunctionCall)) return this.mismatch(m);
        this.pending.shift();
        if (head.op === Op.Query) this.emit(head.call!, m.endNs);
        return;
      default:
        // Authentication, BackendKeyData, NegotiateProtocolVersion after startup: not where a server sends them.
        return this.mismatch(m);
    }
  }

  private answer(m: PgMessage): void {
    if (this.phase !== Phase.Answer) return this.mismatch(m);
    switch (m.type) {
      case PG_ANSWER_NO:
        this.phase = Phase.Start;
        return;
      case PG_ANSWER_SSL:
        // TLS from here: the next protocol is whatever detection finds (the TLS records, or the plaintext once the library is probed).
        return this.switchTo(m, true);
      case PG_ANSWER_GSS:
        // GSSAPI encryption: nobody parses it.
        return this.switchTo(m, false);
      default:
        // An ErrorResponse from a server too old for the request, or not this protocol.
        this.stats.parseErrors++;
        this.finishProtocol();
        return;
    }
  }

  /** Hands the connection on after an accepted SSLRequest (`handOn`) or GSSENCRequest (not followable). */
  private switchTo(m: PgMessage, handOn: boolean): void {
    this.phase = Phase.Done;
    this.front.reader.stop();
    this.back.reader.stop();
    if (this.observer?.protocolSwitched === undefined) return;
    const responseSide: Side = this.requestSide === 'ingress' ? 'egress' : 'ingress';
    const backFrom = m.pos + 1;
    const frontFrom = this.front.reader.position;
    const held: Chunk[] = [];
    const c = this.chunk;
    // The rest of the answer's chunk is the next protocol's already.
    if (c !== undefined && c.side === responseSide && c.pos + c.data.length > backFrom) {
      const data = Buffer.from(c.data.subarray(backFrom - c.pos));
      held.push({ side: responseSide, data, pos: backFrom, startNs: c.startNs, endNs: c.endNs, syscallStart: true, ...(c.tid !== undefined ? { tid: c.tid } : {}) });
    }
    const from = handOn
      ? ({ [this.requestSide]: frontFrom, [responseSide]: backFrom } as Record<Side, number>)
      : ({ egress: undefined, ingress: undefined } as Record<Side, number | undefined>);
    this.observer.protocolSwitched({ upgrade: undefined, from, held });
  }

  /** The connection carries nothing more to follow (a cancel request, a refused startup). */
  private finishProtocol(): void {
    this.phase = Phase.Done;
    this.front.reader.stop();
    this.back.reader.stop();
  }

  private expectHead(head: Pending | undefined, op: Op, m: PgMessage): void {
    if (head?.op !== op) return this.mismatch(m);
    this.pending.shift();
  }

  /**
   * An ErrorResponse. In a simple Query it belongs to the query (the
   * ReadyForQuery ends it). In an extended-query batch the server skips
   * every message until the Sync: the first Execute from the failed message
   * on carries the error (its statement failed to parse, bind or run), the
   * other Executes up to the Sync never ran (not recorded, counted).
   */
  private error(m: PgMessage): void {
    const head = this.pending[0];
    const fields = errorFields(m);
    if (head === undefined || head.op === Op.Sync) {
      // A FATAL between calls, or a failure at Sync (a deferred constraint at the implicit commit).
      this.stats.errorsWithoutRequest++;
      return;
    }
    if (head.op === Op.Query) {
      const call = head.call!;
      if (!call.failed) {
        call.failed = true;
        call.errorCode = fields.code;
        call.errorMessage = fields.message;
      }
      return;
    }
    if (head.op === Op.FunctionCall) {
      this.stats.errorsWithoutRequest++;
      return;
    }
    let owner: PgCall | undefined;
    let sawSync = false;
    while (this.pending.length > 0) {
      const p = this.pending[0]!;
      if (p.op === Op.Sync) {
        sawSync = true;
        break;
      }
      this.pending.shift();
      if (p.op !== Op.Execute) continue;
      if (owner === undefined) {
        owner = p.call!;
        owner.failed = true;
        owner.errorCode = fields.code;
        owner.errorMessage = fields.message;
        this.emit(owner, m.endNs);
      } else {
        this.stats.executesSkipped++;
        this.observer?.requestAbandoned(p.call!.sequence, m.endNs);
      }
    }
    if (owner === undefined) this.stats.errorsWithoutRequest++;
    if (!sawSync) this.discardUntilSync = true;
  }

  /** A response that does not fit the request it would answer: the pairing is lost. */
  private mismatch(m: PgMessage): void {
    this.stats.unpairedResponses++;
    this.losePairing(m.endNs);
  }

  /** Every call in flight is dropped (its outcome unknown); pairing starts again at the next ReadyForQuery. */
  private losePairing(atNs: number): void {
    for (const p of this.pending) {
      if (p.call === undefined) continue;
      this.stats.requestsDropped++;
      this.observer?.requestAbandoned(p.call.sequence, atNs);
    }
    this.pending.length = 0;
    this.unpair();
  }

  private unpair(): void {
    if (this.phase === Phase.Ready) this.paired = false;
    this.discardUntilSync = false;
    this.groupOpen = false;
  }

  /**
   * Every call in flight becomes a record of how it ended without its
   * response; one whose response was partly lost may have ended in the lost
   * bytes: given up without a record.
   */
  private giveUpAll(atNs: number, ending: PgEnding): void {
    for (const p of this.pending) {
      if (p.call === undefined) continue;
      if (p.call.responseLost) {
        this.stats.requestsDropped++;
        this.observer?.requestAbandoned(p.call.sequence, atNs);
        continue;
      }
      this.stats.requestsWithoutResponse++;
      this.emit(p.call, atNs, ending);
    }
    this.pending.length = 0;
  }

  private firstCall(): PgCall | undefined {
    for (const p of this.pending) if (p.call !== undefined) return p.call;
    return undefined;
  }

  private emit(call: PgCall, endNs: number, ending?: PgEnding): void {
    if (call.unknownStatement) this.stats.unknownStatements++;
    this.stats.records++;
    this.out.push(buildPgRecord(this.context, call, endNs, ending));
  }
}

/** Whether a frontend message of `type` begins a new request (a Query, the first message of an extended batch, a FunctionCall) or ends the session (Terminate). */
function startsGroup(type: number, groupOpen: boolean): boolean {
  switch (type) {
    case PgFront.Query:
    case PgFront.FunctionCall:
    case PgFront.Terminate:
      return true;
    case PgFront.Parse:
    case PgFront.Bind:
    case PgFront.Describe:
    case PgFront.Close:
    case PgFront.Execute:
      return !groupOpen;
    default:
      return false;
  }
}

function textOf(b: Buffer, from: number, to: number): string {
  return b.toString('utf8', from, to);
}

function tagOf(m: PgMessage): string {
  const n = cstringEnd(m.body, 0, m.body.length);
  return textOf(m.body, 0, n < 0 ? m.body.length : n);
}

/** SQLSTATE (`C`) and message (`M`) of an ErrorResponse. */
function errorFields(m: PgMessage): { code: string | undefined; message: string | undefined } {
  const b = m.body;
  let code: string | undefined;
  let message: string | undefined;
  let p = 0;
  while (p < b.length && b[p] !== 0) {
    const field = b[p]!;
    const e = cstringEnd(b, p + 1, b.length);
    const end = e < 0 ? b.length : e;
    if (field === 0x43 /* C */ && e >= 0) code = textOf(b, p + 1, end);
    else if (field === 0x4d /* M */) message = textOf(b, p + 1, end);
    if (e < 0) break;
    p = e + 1;
  }
  // A SQLSTATE is five characters of digits and upper-case letters.
  if (code !== undefined && !/^[0-9A-Z]{5}$/.test(code)) code = undefined;
  return { code, message };
}
