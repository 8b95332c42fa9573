// The MySQL/MariaDB session of one connection: the packet readers of both
// directions, the connection phase (handshake, login, auth), the commands
// waiting for their responses (in order: the protocol answers in order), and
// the records. See README.md for the rules.

import { newProtocolStats, type Chunk, type ConnectionInfo, type L7Record, type ProtocolSession, type SessionObserver, type Side } from '../types';
import type { DbOptions } from '../db/semantics';
import { MYSQL_COUNTERS, type MysqlStats } from './counters';
import { provableCommand } from './detect';
import { parseChangeUser, parseGreeting, parseLogin, type MysqlSystem } from './handshake';
import { MysqlPacketReader, type MysqlPacket, type MysqlPacketSink } from './packets';
import { mysqlRecord, type MysqlOutcome } from './record';
import { eofStatus, parseErr, parseOk, queryTextStart } from './responses';
import { Cap, Command, EOF_HEADER, ERR_HEADER, LOCAL_INFILE_HEADER, MYSQL_HEADER_BYTES, MYSQL_MAX_PACKET, MariaCap, OK_HEADER, PROGRESS_ERROR_CODE, Status, utf8 } from './wire';

/** Statement text kept per command (longer ones are cut here; the record bounds the exported text again). */
export const MYSQL_MAX_QUERY_BYTES = 32 * 1024;
/** Server packet bytes kept (ERR messages, OK session state, column counts). */
const RESPONSE_KEEP = 1024;
/** Prepared statements remembered per connection. */
export const MYSQL_MAX_STATEMENTS = 1024;
/** Commands waiting for responses per connection. */
const MAX_PENDING = 64;
/** Every pending command is a small object; counted in bufferedBytes. */
const PENDING_COST = 256;

type Phase = 'greeting' | 'login' | 'auth' | 'command' | 'stopped';

/** What the response of a pending command expects next. */
type Stage =
  | 'first' // OK, ERR, LOCAL INFILE request or a column count
  | 'columns' // column definitions
  | 'columnsEof' // the EOF after them (without CLIENT_DEPRECATE_EOF)
  | 'rows' // rows until EOF/OK (or ERR)
  | 'prepare' // COM_STMT_PREPARE_OK or ERR
  | 'defs' // the prepare's parameter and column definitions, each group with its EOF
  | 'okErr' // one OK, ERR or EOF packet
  | 'single' // any one packet (COM_STATISTICS answers with text)
  | 'untilEof' // packets until an EOF or ERR (COM_FIELD_LIST)
  | 'infile' // the client sends the file, then the server answers OK/ERR
  | 'auth' // COM_CHANGE_USER: auth exchange until OK or ERR
  | 'lost'; // packet boundaries lost in a gap: ends at the next command or the close

interface Pending {
  readonly command: number;
  /** Record sequence; -1 when the command makes no record. */
  readonly sequence: number;
  readonly pos: number;
  readonly startNs: number;
  /** Statement text (COM_QUERY, COM_STMT_PREPARE, the statement an execute runs). */
  sql: string | undefined;
  readonly stmtId: number;
  /** db.namespace when the command was sent. */
  readonly namespace: string | undefined;
  /** COM_INIT_DB's schema, COM_CHANGE_USER's. */
  readonly target: string | undefined;
  readonly targetUser: string | undefined;
  expectSeq: number;
  stage: Stage;
  begun: boolean;
  columnsLeft: number;
  /** COM_STMT_PREPARE: definition groups still to read (parameters, columns). */
  defs: number[];
  /** The prepare's statement id, once its OK came. */
  preparedId: number;
  rows: number;
  resultSets: number;
  /** Result sets with columns (rows are counted only for these). */
  rowSets: number;
  affected: number | undefined;
  errCode: number | undefined;
  sqlState: string | undefined;
  message: string | undefined;
  lastNs: number;
  /** The response's schema change (session state tracker). */
  schema: string | undefined;
  /** The execute asked for a cursor (rows come with COM_STMT_FETCH). */
  readonly cursor: boolean;
}

const other = (s: Side): Side => (s === 'egress' ? 'ingress' : 'egress');

export class MysqlSession implements ProtocolSession {
  readonly stats = newProtocolStats(MYSQL_COUNTERS) as MysqlStats;
  private readonly requests: MysqlPacketReader;
  private readonly responses: MysqlPacketReader;
  private readonly responseSide: Side;
  private readonly kind: 'client' | 'server';
  private phase: Phase;
  // Joined mid-stream, the greeting that names the server was not seen: neither mysql nor mariadb is known.
  private system: MysqlSystem = 'other_sql';
  /** Capabilities both ends use; undefined when the login was not seen. */
  private caps: number | undefined;
  private mariaCaps = 0;
  /** CLIENT_DEPRECATE_EOF, known from the login or learned from a result set. */
  private deprecateEof: boolean | undefined;
  private serverCaps: number | undefined;
  private serverMariaCaps = 0;
  private user: string | undefined;
  private namespace: string | undefined;
  /** Sequence id the connection phase expects next from either side. */
  private loginSeq = 0;
  private readonly pending: Pending[] = [];
  private readonly statements = new Map<number, string>();
  private lastPrepared: number | undefined;
  private nextSequence = 0;
  /** End of the last response chunk (a lost response ends there). */
  private lastResponseNs = 0;
  /** The request side lost a boundary: responses must not be paired with commands from before until both resync. */
  private requestsUnknown = false;
  private out: L7Record[] = [];
  private closed = false;
  private readonly requestSink: MysqlPacketSink = { packet: (p) => this.onRequest(p) };
  private readonly responseSink: MysqlPacketSink = { packet: (p) => this.onResponse(p) };

  constructor(
    private readonly conn: ConnectionInfo,
    private readonly requestSide: Side,
    private readonly options: DbOptions,
    private readonly observer?: SessionObserver,
  ) {
    this.responseSide = other(requestSide);
    this.kind = requestSide === 'ingress' ? 'server' : 'client';
    const max = options.maxBufferedBytes;
    const keep = max !== undefined && max > 0 ? Math.max(64, Math.min(MYSQL_MAX_QUERY_BYTES, max)) : MYSQL_MAX_QUERY_BYTES;
    // Seen from its start: the handshake at position 0. TLS plaintext: the login (sequence 2) first. Mid-stream: hunt.
    const start = conn.sawStart ? 0 : undefined;
    this.requests = new MysqlPacketReader(this.requestSink, keep, start);
    this.responses = new MysqlPacketReader(this.responseSink, Math.min(RESPONSE_KEEP, keep), start);
    if (!conn.sawStart) this.phase = 'command';
    else if (conn.encrypted) {
      this.phase = 'login';
      this.loginSeq = 2;
    } else this.phase = 'greeting';
  }

  onChunk(chunk: Chunk, out: L7Record[]): void {
    if (this.closed || this.phase === 'stopped' || chunk.data.length === 0) return;
    this.out = out;
    if (chunk.side === this.requestSide) {
      if (!this.requests.synced && !this.huntRequest(chunk)) {
        this.stats.bytesSkipped += chunk.data.length;
        this.requests.position = chunk.pos + chunk.data.length;
        return;
      }
      this.stats.bytesSkipped += this.requests.push(chunk);
    } else {
      this.lastResponseNs = chunk.endNs;
      for (const p of this.pending) if (p.begun) p.lastNs = chunk.endNs;
      if (!this.responses.synced && !this.huntResponse(chunk)) {
        this.stats.bytesSkipped += chunk.data.length;
        this.responses.position = chunk.pos + chunk.data.length;
        return;
      }
      this.stats.bytesSkipped += this.responses.push(chunk);
    }
  }

  onGap(side: Side, _pos: number, bytes: number, atNs: number, out: L7Record[]): void {
    if (this.closed || this.phase === 'stopped') return;
    this.out = out;
    if (side === this.requestSide) {
      if (this.requests.gap(bytes)) return;
      // A command may have been lost whole: later responses cannot be paired by order until both sides resync.
      this.requestsUnknown = true;
      if (this.phase !== 'command') this.stop();
      return;
    }
    this.lastResponseNs = Math.max(this.lastResponseNs, atNs);
    if (this.responses.gap(bytes)) return;
    if (this.phase !== 'command') return this.stop();
    this.responseLost();
  }

  expire(nowNs: number, timeoutNs: number, out: L7Record[]): void {
    if (this.closed) return;
    this.out = out;
    let expired = false;
    while (this.pending.length > 0) {
      const p = this.pending[0]!;
      const since = p.begun ? p.lastNs : p.startNs;
      if (nowNs - since <= timeoutNs) break;
      this.pending.shift();
      expired = true;
      if (p.stage === 'lost') this.finish(p, p.lastNs);
      else this.giveUp(p, nowNs, 'timeout');
    }
    // A late answer must not be taken for the next command's.
    if (expired) this.responses.lose();
  }

  close(atNs: number, out: L7Record[]): void {
    if (this.closed) return;
    this.out = out;
    for (const p of this.pending.splice(0)) {
      if (p.stage === 'lost') this.finish(p, p.lastNs);
      else this.giveUp(p, atNs, 'connection_closed');
    }
    this.dispose();
  }

  dispose(): void {
    this.closed = true;
    this.pending.length = 0;
    this.statements.clear();
    this.requests.free();
    this.responses.free();
  }

  bufferedBytes(): number {
    return this.requests.bufferedBytes() + this.responses.bufferedBytes() + this.pending.length * PENDING_COST;
  }

  // --- resynchronising ------------------------------------------------------

  /** A request chunk that starts a syscall and is one provable command, exactly. */
  private huntRequest(c: Chunk): boolean {
    if (!c.syscallStart || this.phase !== 'command' || c.data.length < MYSQL_HEADER_BYTES + 1) return false;
    const d = c.data;
    const len = d[0]! | (d[1]! << 8) | (d[2]! << 16);
    if (d[3] !== 0 || MYSQL_HEADER_BYTES + len !== d.length || !provableCommand(d.subarray(MYSQL_HEADER_BYTES), len)) return false;
    if (this.requestsUnknown) {
      // Commands sent before the lost bytes: their answers can no longer be told from the lost commands' ones.
      this.requestsUnknown = false;
      this.abandonAll(c.startNs);
      this.responses.lose();
    }
    this.requests.syncAt(c.pos);
    return true;
  }

  /**
   * A response chunk that starts a syscall after the first command waiting
   * began, whose first packet has the sequence id and kind that command
   * expects as far as the chunk shows them (a piece of a syscall shorter than
   * a header is taken: the packet's sequence id is checked when it is read).
   */
  private huntResponse(c: Chunk): boolean {
    const p = this.pending[0];
    if (p === undefined || p.begun || !c.syscallStart || c.startNs < p.startNs) return false;
    const d = c.data;
    if (d.length >= MYSQL_HEADER_BYTES && (d[3] !== p.expectSeq || (d[0] === 0 && d[1] === 0 && d[2] === 0))) return false;
    if (d.length > MYSQL_HEADER_BYTES) {
      const first = d[MYSQL_HEADER_BYTES]!;
      const fits =
        first === OK_HEADER ||
        first === ERR_HEADER ||
        p.stage === 'single' ||
        (p.stage === 'first' && (first === LOCAL_INFILE_HEADER || (first >= 1 && first < 0xfb))) ||
        (p.stage === 'okErr' && first === EOF_HEADER);
      if (!fits) return false;
    }
    this.responses.syncAt(c.pos);
    return true;
  }

  // --- requests -------------------------------------------------------------

  private onRequest(p: MysqlPacket): void {
    switch (this.phase) {
      case 'login':
        return this.onLogin(p);
      case 'auth':
        // Auth continuation (plugin data): skipped unread.
        if (p.seq === this.loginSeq) this.loginSeq = (p.lastSeq + 1) & 0xff;
        return;
      case 'command':
        return this.onCommandPacket(p);
      default:
        // The client spoke before the server's handshake: not this protocol as parsed.
        this.stats.parseErrors++;
        return this.stop();
    }
  }

  private onLogin(p: MysqlPacket): void {
    const login = p.seq === this.loginSeq ? parseLogin(p.head) : undefined;
    if (login === undefined) {
      this.stats.parseErrors++;
      return this.stop();
    }
    if (login.sslRequest) {
      this.stats.tlsUpgrades++;
      // TLS from here on both sides: detection starts over there (the probes' plaintext, or TLS claimed as ciphertext).
      this.phase = 'stopped';
      this.observer?.protocolSwitched?.({
        upgrade: undefined,
        from: { [this.requestSide]: this.requests.position, [this.responseSide]: this.responses.position } as Record<Side, number>,
        held: [],
      });
      this.requests.lose();
      this.responses.lose();
      return;
    }
    this.caps = this.serverCaps === undefined ? login.capabilities : login.capabilities & this.serverCaps;
    this.mariaCaps = this.serverCaps === undefined ? login.mariaCapabilities : login.mariaCapabilities & this.serverMariaCaps;
    // The greeting was not seen (it came before TLS): a client answers with its flags masked by the server's,
    // and only MariaDB servers clear CLIENT_LONG_PASSWORD ("CLIENT_MYSQL") or offer extended capabilities.
    if (this.serverCaps === undefined && (login.mariaCapabilities !== 0 || (login.capabilities & Cap.LONG_PASSWORD) === 0)) this.system = 'mariadb';
    this.deprecateEof = (this.caps & Cap.DEPRECATE_EOF) !== 0;
    this.user = login.user;
    this.namespace = login.database;
    this.loginSeq = (p.lastSeq + 1) & 0xff;
    this.phase = 'auth';
  }

  private onCommandPacket(p: MysqlPacket): void {
    const head = this.pending[0];
    // Only LOCAL INFILE content and COM_CHANGE_USER's auth exchange continue a command from the client.
    if (head !== undefined && (head.stage === 'infile' || head.stage === 'auth') && p.seq === head.expectSeq) {
      head.expectSeq = (p.lastSeq + 1) & 0xff;
      if (head.stage === 'infile' && p.length === 0) head.stage = 'okErr';
      return;
    }
    if (p.seq !== 0) {
      this.stats.parseErrors++;
      this.requests.lose();
      this.requestsUnknown = true;
      return;
    }
    // A client sends its next command after reading the whole answer: a lost answer ended before it.
    while (this.pending.length > 0 && this.pending[0]!.stage === 'lost') {
      const lost = this.pending.shift()!;
      this.finish(lost, lost.lastNs);
    }
    if (p.length === 0 || p.head.length === 0) {
      this.stats.parseErrors++;
      return;
    }
    const command = p.head[0]!;
    switch (command) {
      case Command.QUIT:
        return;
      case Command.STMT_CLOSE:
        if (p.head.length >= 5) this.statements.delete(u32(p.head, 1));
        return;
      case Command.STMT_SEND_LONG_DATA:
        return;
      case Command.BINLOG_DUMP:
      case Command.BINLOG_DUMP_GTID:
      case Command.REGISTER_SLAVE:
        this.stats.unsupportedConnections++;
        return this.stop();
      default:
        break;
    }
    if (this.pending.length >= MAX_PENDING) {
      this.stats.pipelinedGivenUp++;
      this.abandonAll(p.startNs);
      this.responses.lose();
      return;
    }
    let sql: string | undefined;
    let stmtId = -1;
    let target: string | undefined;
    let targetUser: string | undefined;
    let stage: Stage = 'okErr';
    let records = false;
    let cursor = false;
    switch (command) {
      case Command.QUERY: {
        const at = queryTextStart(p.head, this.caps === undefined ? undefined : (this.caps & Cap.QUERY_ATTRIBUTES) !== 0);
        sql = at < 0 ? undefined : this.text(p, at);
        stage = 'first';
        records = true;
        break;
      }
      case Command.STMT_PREPARE:
        sql = this.text(p, 1);
        stage = 'prepare';
        records = true;
        break;
      case Command.STMT_EXECUTE:
      case Command.STMT_BULK_EXECUTE: {
        if (p.head.length >= 5) {
          stmtId = u32(p.head, 1);
          // MariaDB: -1 runs the statement prepared last (pipelined prepare + execute).
          const id = stmtId === 0xffffffff ? this.lastPrepared : stmtId;
          sql = id === undefined ? undefined : this.statements.get(id);
        }
        if (sql === undefined) this.stats.statementsUnknown++;
        cursor = command === Command.STMT_EXECUTE && p.head.length >= 6 && (p.head[5]! & 0x07) !== 0;
        stage = 'first';
        records = true;
        break;
      }
      case Command.STMT_FETCH:
      case Command.PROCESS_INFO:
        stage = command === Command.STMT_FETCH ? 'rows' : 'first';
        break;
      case Command.INIT_DB:
        target = utf8(p.head.subarray(1));
        break;
      case Command.CHANGE_USER: {
        const cu = parseChangeUser(p.head, this.caps ?? Cap.SECURE_CONNECTION);
        target = cu?.database;
        targetUser = cu?.user;
        stage = 'auth';
        break;
      }
      case Command.STATISTICS:
        stage = 'single';
        break;
      case Command.FIELD_LIST:
        stage = 'untilEof';
        break;
      default:
        break;
    }
    const sequence = records ? this.nextSequence++ : -1;
    const pending: Pending = {
      command,
      sequence,
      pos: p.pos,
      startNs: p.startNs,
      sql,
      stmtId,
      namespace: this.namespace,
      target,
      targetUser,
      expectSeq: (p.lastSeq + 1) & 0xff,
      stage,
      begun: false,
      columnsLeft: 0,
      defs: [],
      preparedId: -1,
      rows: 0,
      resultSets: 0,
      rowSets: 0,
      affected: undefined,
      errCode: undefined,
      sqlState: undefined,
      message: undefined,
      lastNs: p.endNs,
      schema: undefined,
      cursor,
    };
    this.pending.push(pending);
    if (records) this.observer?.requestStarted({ sequence, pos: p.pos, startNs: p.startNs, tid: p.tid });
  }

  /** Statement text from `at` in the head; counted when cut short. */
  private text(p: MysqlPacket, at: number): string {
    if (p.head.length < p.length || p.lost) this.stats.queryTextTruncated++;
    return utf8(p.head.subarray(at));
  }

  // --- responses ------------------------------------------------------------

  private onResponse(p: MysqlPacket): void {
    switch (this.phase) {
      case 'greeting':
        return this.onGreeting(p);
      case 'login':
        // An ERR instead of a handshake (host not allowed, too many connections): nothing to follow.
        this.stats.loginFailures += p.head[0] === ERR_HEADER ? 1 : 0;
        return this.stop();
      case 'auth':
        return this.onAuthResponse(p);
      case 'command':
        return this.onCommandResponse(p);
      default:
        return;
    }
  }

  private onGreeting(p: MysqlPacket): void {
    const g = p.seq === 0 ? parseGreeting(p.head) : undefined;
    if (g === undefined) {
      this.stats.parseErrors++;
      return this.stop();
    }
    this.system = g.system;
    this.serverCaps = g.capabilities;
    this.serverMariaCaps = g.mariaCapabilities;
    this.loginSeq = 1;
    this.phase = 'login';
  }

  private onAuthResponse(p: MysqlPacket): void {
    if (p.seq !== this.loginSeq) {
      this.stats.sequenceMismatches++;
      return this.stop();
    }
    this.loginSeq = (p.lastSeq + 1) & 0xff;
    const first = p.head[0];
    if (first === OK_HEADER && p.length >= 7) {
      this.enterCommandPhase(p);
      return;
    }
    if (first === ERR_HEADER) {
      this.stats.loginFailures++;
      return this.stop();
    }
    // Auth switch (0xfe) or more data (0x01): the exchange goes on.
  }

  private enterCommandPhase(p: MysqlPacket): void {
    const caps = this.caps ?? 0;
    if ((caps & (Cap.COMPRESS | Cap.ZSTD_COMPRESSION | Cap.OPTIONAL_RESULTSET_METADATA)) !== 0) {
      this.stats.unsupportedConnections++;
      return this.stop();
    }
    const ok = parseOk(p.head, (caps & Cap.SESSION_TRACK) !== 0);
    if (ok?.schema !== undefined) this.namespace = ok.schema;
    this.phase = 'command';
  }

  private onCommandResponse(p: MysqlPacket): void {
    const q = this.pending[0];
    if (q === undefined) {
      this.stats.unpairedResponses++;
      this.responses.lose();
      return;
    }
    if (p.seq !== q.expectSeq) {
      // A prepare's metadata may end without the EOF the session could not rule out: the packet is the next command's.
      if (q.stage === 'defs' && q.defs.length === 0 && q.columnsLeft === 0) {
        this.pending.shift();
        this.finish(q, q.lastNs);
        return this.onCommandResponse(p);
      }
      this.stats.sequenceMismatches++;
      this.abandonAll(p.endNs);
      this.responses.lose();
      return;
    }
    q.expectSeq = (p.lastSeq + 1) & 0xff;
    q.begun = true;
    q.lastNs = p.endNs;
    const h = p.head;
    const first = h.length > 0 ? h[0]! : -1;
    switch (q.stage) {
      case 'first':
        return this.onFirst(q, p, first);
      case 'columns':
        if (--q.columnsLeft === 0) q.stage = this.deprecateEof === true ? 'rows' : 'columnsEof';
        return;
      case 'columnsEof':
        if (first === EOF_HEADER && p.length < 9) {
          this.deprecateEof = false;
          // A cursor was opened: the rows come with COM_STMT_FETCH.
          if (q.cursor && (eofStatus(h) & Status.CURSOR_EXISTS) !== 0) return this.done(q, p.endNs);
          q.stage = 'rows';
          return;
        }
        if (this.deprecateEof === undefined) {
          // Joined mid-stream: no EOF after the definitions, so CLIENT_DEPRECATE_EOF is on.
          this.deprecateEof = true;
          q.stage = 'rows';
          return this.onRows(q, p, first);
        }
        return this.malformed(q, p);
      case 'rows':
        return this.onRows(q, p, first);
      case 'prepare':
        return this.onPrepare(q, p, first);
      case 'defs':
        return this.onDefs(q, p, first);
      case 'okErr':
        if (first === ERR_HEADER) return this.error(q, p);
        if (first === OK_HEADER || first === EOF_HEADER) {
          if (first === OK_HEADER) this.applyOk(q, h);
          return this.done(q, p.endNs);
        }
        return this.malformed(q, p);
      case 'single':
        return this.done(q, p.endNs);
      case 'untilEof':
        if (first === ERR_HEADER) return this.error(q, p);
        if (first === EOF_HEADER && p.length < 9) return this.done(q, p.endNs);
        return;
      case 'infile':
        // The server speaks while the client sends the file: only an ERR (it refused).
        if (first === ERR_HEADER) return this.error(q, p);
        return this.malformed(q, p);
      case 'auth':
        if (first === OK_HEADER && p.length >= 7) {
          if (q.targetUser !== undefined) this.user = q.targetUser;
          this.namespace = q.target;
          this.statements.clear();
          this.applyOk(q, h);
          return this.done(q, p.endNs);
        }
        if (first === ERR_HEADER) return this.error(q, p);
        return; // auth switch / more data
      case 'lost':
        return;
    }
  }

  private onFirst(q: Pending, p: MysqlPacket, first: number): void {
    const h = p.head;
    if (first === OK_HEADER && p.length >= 7) {
      q.resultSets++;
      const status = this.applyOk(q, h);
      if ((status & Status.MORE_RESULTS_EXISTS) === 0) this.done(q, p.endNs);
      return;
    }
    if (first === ERR_HEADER) {
      if (this.isProgress(h)) return;
      return this.error(q, p);
    }
    if (first === LOCAL_INFILE_HEADER) {
      this.stats.localInfile++;
      q.stage = 'infile';
      return;
    }
    // A column count (length-encoded, < 0xfb as a first byte or 0xfc/0xfd prefixed).
    let columns = -1;
    if (first > 0 && first < 0xfb) columns = first;
    else if (first === 0xfc && h.length >= 3) columns = h[1]! | (h[2]! << 8);
    else if (first === 0xfd && h.length >= 4) columns = h[1]! | (h[2]! << 8) | (h[3]! << 16);
    if (columns <= 0) return this.malformed(q, p);
    q.resultSets++;
    q.rowSets++;
    const headerLen = first < 0xfb ? 1 : first === 0xfc ? 3 : 4;
    // MariaDB's metadata cache (execute only): one byte says whether the definitions follow.
    const skipDefs = (this.mariaCaps & MariaCap.CACHE_METADATA) !== 0 && q.command !== Command.QUERY && p.length > headerLen && h[headerLen] === 0;
    if (skipDefs) q.stage = this.deprecateEof === true ? 'rows' : 'columnsEof';
    else {
      q.columnsLeft = columns;
      q.stage = 'columns';
    }
  }

  private onRows(q: Pending, p: MysqlPacket, first: number): void {
    if (first === EOF_HEADER && p.length < MYSQL_MAX_PACKET && (this.deprecateEof === true || p.length < 9)) {
      const status = p.length < 9 ? eofStatus(p.head) : (parseOk(p.head, false)?.status ?? 0);
      if ((status & Status.MORE_RESULTS_EXISTS) !== 0) q.stage = 'first';
      else this.done(q, p.endNs);
      return;
    }
    if (first === ERR_HEADER) {
      if (this.isProgress(p.head)) return;
      return this.error(q, p);
    }
    q.rows++;
  }

  private onPrepare(q: Pending, p: MysqlPacket, first: number): void {
    if (first === ERR_HEADER) return this.error(q, p);
    if (first !== OK_HEADER || p.head.length < 9) return this.malformed(q, p);
    const h = p.head;
    const id = u32(h, 1);
    const columns = h[5]! | (h[6]! << 8);
    const params = h[7]! | (h[8]! << 8);
    q.preparedId = id;
    q.defs = [params, columns].filter((n) => n > 0);
    if (q.defs.length === 0) return this.done(q, p.endNs);
    q.columnsLeft = q.defs.shift()!;
    q.stage = 'defs';
  }

  private onDefs(q: Pending, p: MysqlPacket, first: number): void {
    if (q.columnsLeft > 0) {
      q.columnsLeft--;
      if (q.columnsLeft === 0 && this.deprecateEof === true) this.nextDefs(q, p.endNs);
      return;
    }
    // The EOF after a group (without CLIENT_DEPRECATE_EOF, or not known yet).
    if (first === EOF_HEADER && p.length < 9) {
      this.deprecateEof = false;
      this.nextDefs(q, p.endNs);
      return;
    }
    if (this.deprecateEof === undefined && q.defs.length > 0) {
      this.deprecateEof = true;
      q.columnsLeft = q.defs.shift()! - 1;
      if (q.columnsLeft === 0) this.nextDefs(q, p.endNs);
      return;
    }
    this.malformed(q, p);
  }

  private nextDefs(q: Pending, endNs: number): void {
    const next = q.defs.shift();
    if (next === undefined) return this.done(q, endNs);
    q.columnsLeft = next;
  }

  private applyOk(q: Pending, h: Uint8Array): number {
    const ok = parseOk(h, this.caps !== undefined && (this.caps & Cap.SESSION_TRACK) !== 0);
    if (ok === undefined) return 0;
    q.affected = (q.affected ?? 0) + ok.affectedRows;
    if (ok.schema !== undefined) q.schema = ok.schema;
    return ok.status;
  }

  private isProgress(h: Uint8Array): boolean {
    return (this.mariaCaps & MariaCap.PROGRESS) !== 0 && h.length >= 3 && (h[1]! | (h[2]! << 8)) === PROGRESS_ERROR_CODE;
  }

  private error(q: Pending, p: MysqlPacket): void {
    const e = parseErr(p.head);
    if (e !== undefined) {
      q.errCode = e.code;
      q.sqlState = e.sqlState;
      q.message = e.message;
    }
    this.done(q, p.endNs);
  }

  /** A packet that cannot come next in this response: the command is given up and both sides resync. */
  private malformed(_q: Pending, p: MysqlPacket): void {
    this.stats.parseErrors++;
    this.abandonAll(p.endNs);
    this.responses.lose();
  }

  /** The response of the first pending command is complete. */
  private done(q: Pending, endNs: number): void {
    this.pending.shift();
    this.finish(q, endNs);
  }

  /** Applies a finished command to the session and makes its record (or says there is none). */
  private finish(q: Pending, endNs: number): void {
    const failed = q.errCode !== undefined;
    if (!failed) {
      if (q.command === Command.INIT_DB && q.stage !== 'lost') this.namespace = q.target;
      // USE through COM_QUERY: only when the server's session state says so.
      if (q.schema !== undefined) this.namespace = q.schema;
      if (q.command === Command.STMT_PREPARE && q.preparedId >= 0 && q.sql !== undefined) this.remember(q.preparedId, q.sql);
      if (q.command === Command.RESET_CONNECTION) this.statements.clear();
    }
    if (q.sequence < 0) return;
    if (q.command === Command.STMT_PREPARE && !failed) {
      // A prepare that worked makes no record: its executions do, each with its text.
      this.observer?.requestAbandoned(q.sequence, endNs);
      return;
    }
    if (q.stage === 'lost') this.stats.responsesIncomplete++;
    this.stats.records++;
    const outcome: MysqlOutcome = {
      sequence: q.sequence,
      startNs: q.startNs,
      endNs,
      sql: q.sql,
      namespace: q.namespace,
      user: this.user,
      command: q.command,
      rows: q.rowSets > 0 && q.stage !== 'lost' && q.command !== Command.STMT_PREPARE ? q.rows : undefined,
      affected: q.affected,
      resultSets: q.resultSets,
      incomplete: q.stage === 'lost',
      errCode: q.errCode,
      sqlState: q.sqlState,
      message: q.message,
      timeout: undefined,
    };
    this.out.push(mysqlRecord(this.conn, this.kind, this.system, this.options, outcome));
  }

  private remember(id: number, sql: string): void {
    this.lastPrepared = id;
    if (!this.statements.has(id) && this.statements.size >= MYSQL_MAX_STATEMENTS) {
      // The oldest prepared first (insertion order).
      const oldest = this.statements.keys().next().value as number;
      this.statements.delete(oldest);
      this.stats.statementsEvicted++;
    }
    this.statements.set(id, sql);
  }

  /** A command given up without a response (timeout, close): an error record, or nothing for commands without records. */
  private giveUp(q: Pending, atNs: number, why: 'timeout' | 'connection_closed'): void {
    if (q.sequence < 0) return;
    this.stats.requestsWithoutResponse++;
    this.stats.records++;
    this.out.push(
      mysqlRecord(this.conn, this.kind, this.system, this.options, {
        sequence: q.sequence,
        startNs: q.startNs,
        endNs: atNs,
        sql: q.sql,
        namespace: q.namespace,
        user: this.user,
        command: q.command,
        rows: undefined,
        affected: undefined,
        resultSets: 0,
        incomplete: false,
        errCode: undefined,
        sqlState: undefined,
        message: undefined,
        timeout: why,
      }),
    );
  }

  /** The response reader lost its boundaries inside the first command's answer. */
  private responseLost(): void {
    const q = this.pending[0];
    if (q === undefined) return;
    if (!q.begun) {
      this.abandonAll(this.lastResponseNs);
      return;
    }
    // The first command keeps its record (its answer began); commands sent after it cannot be paired any more.
    for (const r of this.pending.splice(1)) this.abandon(r, this.lastResponseNs);
    q.stage = 'lost';
    q.lastNs = this.lastResponseNs;
  }

  private abandonAll(atNs: number): void {
    for (const q of this.pending.splice(0)) this.abandon(q, atNs);
  }

  private abandon(q: Pending, atNs: number): void {
    if (q.sequence >= 0) this.observer?.requestAbandoned(q.sequence, atNs);
  }

  /** Nothing more on this connection is parsed. */
  private stop(): void {
    this.phase = 'stopped';
    this.abandonAll(this.lastResponseNs);
    this.requests.lose();
    this.responses.lose();
  }
}

function u32(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16)) + b[at + 3]! * 0x1000000;
}
