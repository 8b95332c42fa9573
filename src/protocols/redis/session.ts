// The Redis session of one connection: a RESP reader per direction, the
// commands waiting for replies in order (Redis answers in order, pipelined
// or not), and the connection state that changes what a value means
// (RESP2/RESP3, subscribe mode, MONITOR, MULTI, the selected database).
// The rules: README.md "Sessions".

import { dbRecord, type DbCall, type DbOptions, type QueryTextMode } from '../db/semantics';
import { newProtocolStats, type CallKind, type Chunk, type ConnectionInfo, type L7Record, type ProtocolSession, type SessionObserver, type Side } from '../types';
import { PUBSUB_MESSAGES, SUBSCRIBE_REPLIES } from './commands';
import { REDIS_COUNTERS, type RedisStats } from './counters';
import { classifyCommand } from './detect';
import { callOf, commandOf, isErrorReply, RedisKeepPolicy, unansweredCall, type RedisCommand } from './record';
import { RespReader, RespType, type RespListener, type RespTop } from './resp';

/** Commands waiting for replies that are recorded; past it, commands are given up (their replies still consumed in order). */
export const REDIS_MAX_PENDING = 1024;
/** Bytes the waiting commands may hold when the options set no bound. */
export const REDIS_DEFAULT_MAX_BUFFERED = 1024 * 1024;
/** A command's name is whole within this many bytes of its start (`*<n>\r\n$<len>\r\n` and 32 bytes), or it is not a command. */
const HUNT_HOLD_BYTES = 64;

/** Replies owed to commands that will not be recorded (given up, timed out): consumed in order, `count` of them. */
interface Skipped {
  count: number;
}

type Waiting = RedisCommand | Skipped;

function isSkipped(w: Waiting): w is Skipped {
  return (w as RedisCommand).sequence === undefined;
}

const EMPTY = Buffer.alloc(0);
const SUBSCRIBE_FAMILY = new Set(SUBSCRIBE_REPLIES.values());

export class RedisSession implements ProtocolSession {
  readonly stats = newProtocolStats(REDIS_COUNTERS) as RedisStats;
  private readonly kind: CallKind;
  private readonly mode: QueryTextMode;
  private readonly maxBytes: number;
  private readonly requests: RespReader;
  private readonly replies: RespReader;
  private readonly policy: RedisKeepPolicy;
  /** Waiting commands, oldest at `head`. */
  private waiting: Waiting[] = [];
  private head = 0;
  private recorded = 0;
  private waitingBytes = 0;
  private sequence = 0;
  private out: L7Record[] = [];
  private chunk: Chunk | undefined;
  /** Where and when the command being read began. */
  private commandPos = 0;
  private commandNs = 0;
  /** A side reads only from a place it knows is a value boundary. */
  private requestsSynced: boolean;
  private repliesSynced: boolean;
  /** db.namespace: the database index, when known. */
  private namespace: string | undefined;
  private resp3 = false;
  /** RESP2 subscribe mode: arrays named message/pmessage/smessage are deliveries, not replies. */
  private subscribed = false;
  private monitoring = false;
  /** Inside MULTI: commands answered QUEUED, and whether one was a SELECT (its index is then not known after EXEC). */
  private queued = -1;
  private selectQueued = false;
  /** Subscribe confirmations still owed to a recorded command of that family (one per channel after the first). */
  private owed = new Map<string, number>();
  private closed = false;
  /** Pieces of a syscall's bytes held while hunting (the command name not yet whole). */
  private held: Chunk[] = [];
  private heldBytes = 0;

  constructor(
    private readonly conn: ConnectionInfo,
    private readonly requestSide: Side,
    options: DbOptions,
    private readonly observer?: SessionObserver,
  ) {
    this.kind = requestSide === 'ingress' ? 'server' : 'client';
    this.mode = options.queryText ?? 'sanitized';
    this.maxBytes = options.maxBufferedBytes !== undefined && options.maxBufferedBytes > 0 ? options.maxBufferedBytes : REDIS_DEFAULT_MAX_BUFFERED;
    this.policy = new RedisKeepPolicy(this.mode);
    this.requestsSynced = conn.sawStart;
    this.repliesSynced = conn.sawStart;
    // Redis starts every connection on database 0; joined mid-stream, only a SELECT seen says which.
    this.namespace = conn.sawStart ? '0' : undefined;
    const self = this;
    const requestListener: RespListener = {
      valueBegin(pos) {
        self.commandPos = pos;
        self.commandNs = self.chunk!.startNs;
        self.policy.reset();
      },
      valueEnd() {
        self.commandEnd();
      },
      keep(index, length) {
        return self.policy.keep(self.requests.top, index, length);
      },
      malformed() {
        self.malformed();
      },
    };
    const replyListener: RespListener = {
      valueBegin() {},
      valueEnd() {
        self.replyEnd(self.replies.top);
      },
      keep(index, length) {
        // Enough of the first elements to tell a pub/sub delivery or confirmation.
        return index < 3 ? Math.min(length, 16) : 0;
      },
      malformed() {
        self.malformed();
      },
    };
    this.requests = new RespReader(requestListener, true);
    // A reply's first three elements tell a pub/sub delivery or confirmation; nothing else of it is kept.
    this.replies = new RespReader(replyListener, false, 3);
    this.held = [];
    if (!conn.sawStart) {
      this.requests.stop();
      this.replies.stop();
    }
  }

  onChunk(chunk: Chunk, out: L7Record[]): void {
    if (this.closed || chunk.data.length === 0) return;
    this.out = out;
    this.chunk = chunk;
    if (chunk.side === this.requestSide) {
      if (!this.requestsSynced) {
        this.hunt(chunk);
        return;
      }
      this.requests.feed(chunk.data, 0, chunk.pos);
    } else {
      if (!this.repliesSynced) {
        // Replies are read from a syscall start after the first command seen since the loss: earlier ones answered commands never seen.
        const first = this.firstRecorded();
        if (!chunk.syscallStart || first === undefined || chunk.endNs < first.startNs || !isTypeByte(chunk.data[0]!)) {
          this.stats.bytesSkipped += chunk.data.length;
          return;
        }
        this.repliesSynced = true;
        this.replies.resume();
      }
      this.replies.feed(chunk.data, 0, chunk.pos);
    }
    this.chunk = undefined;
  }

  /**
   * Joined mid-stream or after a loss: a command array where a syscall began
   * proves a boundary. A syscall's bytes may come in pieces: the few bytes
   * before its command name is whole are held until it is.
   */
  private hunt(chunk: Chunk): void {
    if (chunk.syscallStart) this.dropHeld();
    else if (this.held.length === 0) {
      this.stats.bytesSkipped += chunk.data.length;
      return;
    }
    this.held.push({ ...chunk, data: Buffer.from(chunk.data) });
    this.heldBytes += chunk.data.length;
    const c = classifyCommand(this.held.length === 1 ? chunk.data : Buffer.concat(this.held.map((h) => h.data)));
    if (c === 'more' && this.heldBytes <= HUNT_HOLD_BYTES) return;
    if (c !== 'whole' && c !== 'prefix') {
      this.dropHeld();
      return;
    }
    const held = this.held;
    this.held = [];
    this.heldBytes = 0;
    this.requestsSynced = true;
    this.requests.resume();
    for (const h of held) {
      this.chunk = h;
      this.requests.feed(h.data, 0, h.pos);
    }
  }

  private dropHeld(): void {
    this.stats.bytesSkipped += this.heldBytes;
    this.held = [];
    this.heldBytes = 0;
  }

  /** A gap can end a value (its last bytes were a body's): times come from the gap. */
  private atGap(atNs: number): void {
    this.chunk = { side: this.requestSide, data: EMPTY, pos: 0, startNs: atNs, endNs: atNs, syscallStart: false };
  }

  onGap(side: Side, pos: number, bytes: number, atNs: number, out: L7Record[]): void {
    if (this.closed) return;
    this.out = out;
    if (side === this.requestSide) {
      if (!this.requestsSynced) return;
      this.atGap(atNs);
      if (!this.requests.skip(pos, bytes)) this.lose(atNs);
    } else {
      if (!this.repliesSynced) return;
      this.atGap(atNs);
      if (!this.replies.skip(pos, bytes)) this.lose(atNs);
    }
    this.chunk = undefined;
  }

  expire(nowNs: number, timeoutNs: number, out: L7Record[]): void {
    if (this.closed) return;
    this.out = out;
    for (let i = this.head; i < this.waiting.length; i++) {
      const w = this.waiting[i]!;
      if (isSkipped(w)) continue;
      if (nowNs - w.startNs <= timeoutNs) break;
      // Its reply may still come: the slot stays, so later replies still pair in order.
      this.waiting[i] = { count: 1 };
      this.release(w);
      this.forgetState(w.name);
      this.stats.requestsWithoutResponse++;
      this.emit(w, unansweredCall(w, this.namespace, 'timeout'), nowNs);
    }
  }

  close(atNs: number, out: L7Record[]): void {
    if (this.closed) return;
    this.out = out;
    for (let i = this.head; i < this.waiting.length; i++) {
      const w = this.waiting[i]!;
      if (isSkipped(w)) continue;
      this.stats.requestsWithoutResponse++;
      this.emit(w, unansweredCall(w, this.namespace, 'connection_closed'), atNs);
    }
    this.free();
  }

  dispose(): void {
    this.free();
  }

  bufferedBytes(): number {
    return this.waitingBytes + this.heldBytes;
  }

  private free(): void {
    this.closed = true;
    this.waiting = [];
    this.head = 0;
    this.recorded = 0;
    this.waitingBytes = 0;
    this.held = [];
    this.heldBytes = 0;
    this.requests.stop();
    this.replies.stop();
  }

  private firstRecorded(): RedisCommand | undefined {
    for (let i = this.head; i < this.waiting.length; i++) {
      const w = this.waiting[i]!;
      if (!isSkipped(w)) return w;
    }
    return undefined;
  }

  // --- requests ---------------------------------------------------------------

  private commandEnd(): void {
    const top = this.requests.top;
    const sequence = this.sequence++;
    if (this.recorded >= REDIS_MAX_PENDING || this.waitingBytes >= this.maxBytes) {
      this.stats.pipelinedGivenUp++;
      this.forgetState(commandOf(top, 'off', sequence, this.commandPos, this.commandNs).name);
      this.skipOne();
      return;
    }
    const cmd = commandOf(top, this.mode, sequence, this.commandPos, this.commandNs, this.policy);
    this.waiting.push(cmd);
    this.recorded++;
    this.waitingBytes += cmd.bytes;
    this.observer?.requestStarted({ sequence, pos: cmd.pos, startNs: cmd.startNs, tid: this.chunk?.tid ?? 0 });
  }

  /** A command whose reply will not be read changes what is known of the connection. */
  private forgetState(name: string | undefined): void {
    if (name === 'SELECT' || name === 'RESET' || name === 'EXEC' || name === undefined) this.namespace = undefined;
  }

  private skipOne(): void {
    const last = this.waiting.length > this.head ? this.waiting[this.waiting.length - 1]! : undefined;
    if (last !== undefined && isSkipped(last)) last.count++;
    else this.waiting.push({ count: 1 });
  }

  // --- replies ----------------------------------------------------------------

  private replyEnd(top: RespTop): void {
    const endNs = this.chunk?.endNs ?? 0;
    if (top.type === RespType.push) {
      this.pushOrConfirmation(top, endNs);
      return;
    }
    if (this.monitoring && top.type === RespType.simple && isDigit(top.lineByte())) {
      // MONITOR streams "<time> [<db> <client>] <command>" lines.
      this.stats.pushMessages++;
      return;
    }
    if (!this.resp3 && top.type === RespType.array && (top.size === 3 || top.size === 4) && top.elementType[0] === RespType.bulk) {
      // RESP2 pub/sub: only in subscribe mode (or answering a subscribe-family command) is such an array not an ordinary reply.
      const first = top.text(0);
      if (this.subscribed && PUBSUB_MESSAGES.has(first)) {
        this.stats.pushMessages++;
        return;
      }
      if (top.size === 3 && SUBSCRIBE_FAMILY.has(first) && (this.subscribed || (this.owed.get(first) ?? 0) > 0 || this.headAwaits(first))) {
        this.pushOrConfirmation(top, endNs);
        return;
      }
    }
    this.answer(top, endNs);
  }

  /** Whether the oldest waiting command is of the subscribe family whose confirmations are named `kind`. */
  private headAwaits(kind: string): boolean {
    const w = this.head < this.waiting.length ? this.waiting[this.head]! : undefined;
    return w !== undefined && !isSkipped(w) && w.name !== undefined && SUBSCRIBE_REPLIES.get(w.name) === kind;
  }

  /** A RESP3 push, or a RESP2 subscribe-family confirmation: the reply of a waiting command of that family, else not a reply. */
  private pushOrConfirmation(top: RespTop, endNs: number): void {
    const kind = top.tracked >= 1 && top.elementType[0] === RespType.bulk ? top.text(0) : '';
    if (SUBSCRIBE_FAMILY.has(kind)) {
      // Count of subscriptions left (third element): 0 ends RESP2 subscribe mode.
      if (kind.endsWith('unsubscribe') && top.tracked >= 3 && top.elementType[2] === RespType.integer && top.elementSize[2] === 0) this.subscribed = false;
      else if (!kind.endsWith('unsubscribe')) this.subscribed = true;
      const owed = this.owed.get(kind) ?? 0;
      if (owed > 0) {
        this.owed.set(kind, owed - 1);
        this.stats.pushMessages++;
        return;
      }
      if (this.headAwaits(kind)) {
        const w = this.waiting[this.head] as RedisCommand;
        if (w.arguments > 1) this.owed.set(kind, w.arguments - 1);
        this.answer(top, endNs);
        return;
      }
    }
    this.stats.pushMessages++;
  }

  /** The reply of the oldest waiting command. */
  private answer(top: RespTop, endNs: number): void {
    if (this.head >= this.waiting.length) {
      this.stats.unpairedResponses++;
      return;
    }
    const w = this.waiting[this.head]!;
    if (isSkipped(w)) {
      if (--w.count === 0) this.shift();
      this.track(undefined, top);
      return;
    }
    this.shift();
    this.release(w);
    const batch = this.track(w, top);
    this.emit(w, callOf(w, top, this.namespace, this.mode, batch), endNs);
  }

  /** Connection state the reply changes; returns EXEC's batch size. */
  private track(cmd: RedisCommand | undefined, top: RespTop): number | undefined {
    if (top.type === RespType.simple && top.lineIs('QUEUED')) {
      if (this.queued >= 0) this.queued++;
      if (cmd?.name === 'SELECT') this.selectQueued = true;
      return undefined;
    }
    if (cmd === undefined) return undefined;
    const error = isErrorReply(top);
    switch (cmd.name) {
      case 'SELECT':
        if (!error && top.type === RespType.simple && top.lineIs('OK')) this.namespace = isIndex(cmd.argument) ? cmd.argument : undefined;
        break;
      case 'HELLO':
        if (top.type === RespType.map) this.resp3 = true;
        else if (top.type === RespType.array) this.resp3 = false;
        break;
      case 'RESET':
        if (top.type === RespType.simple && top.lineIs('RESET')) {
          this.namespace = '0';
          this.resp3 = false;
          this.subscribed = false;
          this.monitoring = false;
          this.queued = -1;
          this.selectQueued = false;
        }
        break;
      case 'MONITOR':
        if (!error) this.monitoring = true;
        break;
      case 'MULTI':
        if (!error) {
          this.queued = 0;
          this.selectQueued = false;
        }
        break;
      case 'EXEC':
      case 'DISCARD': {
        const n = this.queued;
        if (cmd.name === 'EXEC' && this.selectQueued) this.namespace = undefined;
        this.queued = -1;
        this.selectQueued = false;
        return cmd.name === 'EXEC' && n >= 0 ? n : undefined;
      }
    }
    // A RESP3 reply type says the connection speaks RESP3 (HELLO may not have been seen).
    if (top.type === RespType.map || top.type === RespType.set || top.type === RespType.null || top.type === RespType.double || top.type === RespType.boolean) {
      this.resp3 = true;
    }
    return undefined;
  }

  private shift(): void {
    this.head++;
    if (this.head === this.waiting.length) {
      this.waiting.length = 0;
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.waiting.length) {
      this.waiting = this.waiting.slice(this.head);
      this.head = 0;
    }
  }

  private release(w: RedisCommand): void {
    this.recorded--;
    this.waitingBytes -= w.bytes;
  }

  private emit(w: RedisCommand, call: DbCall, endNs: number): void {
    this.stats.records++;
    this.out.push(dbRecord('redis', this.conn, this.kind, call, w.startNs, endNs, w.sequence));
  }

  // --- losing the place -------------------------------------------------------

  private malformed(): void {
    this.stats.parseErrors++;
    this.lose(this.chunk?.endNs ?? 0);
  }

  /**
   * A side lost its place (malformed bytes, a gap outside a value body): how
   * many commands or replies went by unseen is not known, so the waiting
   * commands are dropped (never recorded with a guessed reply) and both
   * sides start over as after a mid-stream attach.
   */
  private lose(atNs: number): void {
    for (let i = this.head; i < this.waiting.length; i++) {
      const w = this.waiting[i]!;
      if (isSkipped(w)) continue;
      this.stats.commandsDropped++;
      this.observer?.requestAbandoned(w.sequence, atNs);
    }
    this.waiting = [];
    this.head = 0;
    this.recorded = 0;
    this.waitingBytes = 0;
    this.owed.clear();
    this.requestsSynced = false;
    this.repliesSynced = false;
    this.requests.stop();
    this.replies.stop();
  }
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isIndex(s: string | undefined): s is string {
  return s !== undefined && /^(0|[1-9][0-9]{0,4})$/.test(s);
}

/** A byte a RESP reply can start with. */
function isTypeByte(b: number): boolean {
  switch (b) {
    case RespType.simple:
    case RespType.error:
    case RespType.integer:
    case RespType.bulk:
    case RespType.array:
    case RespType.null:
    case RespType.boolean:
    case RespType.double:
    case RespType.bigNumber:
    case RespType.bulkError:
    case RespType.verbatim:
    case RespType.map:
    case RespType.set:
    case RespType.attribute:
    case RespType.push:
      return true;
    default:
      return false;
  }
}
