// A Redis command and its reply to a database call (src/protocols/db):
// semantic-conventions docs/db/redis.md (v1.44, development status) on top
// of the general database span rules. See README.md "Records".

import { errorMessageFor, type DbCall, type QueryTextMode } from '../db/semantics';
import { hasCredentials, isCommandName, isContainer, isKeyArgument, keySpecOf, type RedisKeySpec } from './commands';
import { RespType, type RespTop } from './resp';

/** A command parsed whole, waiting for its reply. */
export interface RedisCommand {
  readonly sequence: number;
  readonly pos: number;
  readonly startNs: number;
  /** First word, upper case; undefined when the first element is not a plausible name. */
  readonly name: string | undefined;
  /** db.operation.name: the name, and the subcommand for container commands (CLIENT SETNAME). */
  readonly operation: string | undefined;
  readonly queryText: string | undefined;
  /** The first argument as text, when the session needs it (SELECT's index, HELLO's version). */
  readonly argument: string | undefined;
  /** Arguments after the name. */
  readonly arguments: number;
  /** db.stored_procedure.name (EVALSHA's digest, FCALL's function). */
  readonly procedure: string | undefined;
  /** Bytes this entry holds (the session's bound). */
  readonly bytes: number;
}

/** Which elements of a command to keep, decided element by element as the reader meets them. */
export class RedisKeepPolicy {
  private name: string | undefined;
  private spec: RedisKeySpec | undefined;
  private decided = false;

  constructor(private readonly mode: QueryTextMode) {}

  reset(): void {
    this.decided = false;
    this.name = undefined;
    this.spec = undefined;
  }

  /** The name of the command being read, once its first element is whole. */
  nameOf(top: RespTop): string | undefined {
    if (!this.decided) {
      this.decided = true;
      this.name = nameOf(top);
      this.spec = this.name === undefined ? undefined : keySpecOf(this.name);
    }
    return this.name;
  }

  keep(top: RespTop, index: number, length: number): number {
    if (index === 0) return 33; // a name is at most 32 bytes: one more says it is not one
    const name = this.nameOf(top);
    if (name === undefined) return 0;
    if (index === 1 && (isContainer(name) || NEEDS_ARGUMENT.has(name))) return 64;
    // A script's or function's key count: the keys follow it.
    if (index === 2 && NUMKEYS.has(name)) return 12;
    if (this.mode === 'off') return 0;
    if (this.mode === 'raw' && !hasCredentials(name)) return length;
    return isKey(name, this.spec, index, top) ? length : 0;
  }
}

/** Commands whose first argument the session or the record reads. */
const NEEDS_ARGUMENT = new Set(['SELECT', 'HELLO', 'EVALSHA', 'EVALSHA_RO', 'FCALL', 'FCALL_RO']);
const PROCEDURES = new Set(['EVALSHA', 'EVALSHA_RO', 'FCALL', 'FCALL_RO']);
/** `<command> <script|digest|function> <numkeys> <key>... <arg>...` */
const NUMKEYS = new Set(['EVAL', 'EVAL_RO', 'EVALSHA', 'EVALSHA_RO', 'FCALL', 'FCALL_RO']);

/**
 * Whether argument `index` is a key, or for scripts and functions, shown
 * like one: the digest or function name (never a script's text), the key
 * count and the `numkeys` keys after it.
 */
function isKey(name: string, spec: RedisKeySpec | undefined, index: number, top: RespTop): boolean {
  if (!NUMKEYS.has(name)) return isKeyArgument(spec, index, top.size);
  if (index === 1) return PROCEDURES.has(name);
  if (index === 2) return true;
  if (top.tracked < 3 || top.elementType[2] !== RespType.bulk || !top.whole(2)) return false;
  const n = Number(top.text(2));
  return Number.isInteger(n) && index < 3 + n;
}

/** Upper-case name from element 0, or undefined when it is not a whole bulk string holding a plausible name. */
function nameOf(top: RespTop): string | undefined {
  if (top.tracked < 1 || top.elementType[0] !== RespType.bulk || !top.whole(0)) return undefined;
  const at = top.keptStart[0]!;
  const end = at + top.keptLength[0]!;
  if (!isCommandName(top.bytes, at, end)) return undefined;
  return internedName(top.bytes, at, end);
}

// Command names as written, to their upper-case strings: a direct-mapped
// table (a collision is a miss, never a wrong name), so that the names of a
// busy connection cost a byte comparison, not a string each.
const NAME_SLOTS = 256;
const nameBytes: (Buffer | undefined)[] = new Array<Buffer | undefined>(NAME_SLOTS).fill(undefined);
const nameStrings: string[] = new Array<string>(NAME_SLOTS).fill('');

function internedName(b: Buffer, from: number, to: number): string {
  const n = to - from;
  const h = (n * 31 + b[from]! * 7 + b[to - 1]! * 3 + b[from + (n >> 1)]!) & (NAME_SLOTS - 1);
  const kept = nameBytes[h];
  if (kept !== undefined && kept.length === n) {
    let same = true;
    for (let i = 0; i < n; i++) {
      if (kept[i] !== b[from + i]) {
        same = false;
        break;
      }
    }
    if (same) return nameStrings[h]!;
  }
  const name = upper(b.toString('latin1', from, to));
  nameBytes[h] = Buffer.from(b.subarray(from, to));
  nameStrings[h] = name;
  return name;
}

/** Upper case without allocating for names already so (most clients send upper case). */
function upper(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x61 && c <= 0x7a) return s.toUpperCase();
  }
  return s;
}

/** The command the reader just finished (request side). */
export function commandOf(top: RespTop, mode: QueryTextMode, sequence: number, pos: number, startNs: number, policy?: RedisKeepPolicy): RedisCommand {
  const isArray = top.type === RespType.array || top.type === RespType.inline;
  const name = !isArray ? undefined : policy !== undefined ? policy.nameOf(top) : nameOf(top);
  const args = isArray ? Math.max(0, top.size - 1) : 0;
  let operation = name;
  let sub = 1;
  if (name !== undefined && isContainer(name) && args >= 1 && top.elementType[1] === RespType.bulk && top.whole(1)) {
    const at = top.keptStart[1]!;
    if (isCommandName(top.bytes, at, at + top.keptLength[1]!)) {
      operation = `${name} ${upper(top.text(1))}`;
      sub = 2;
    }
  }
  const argument = name !== undefined && NEEDS_ARGUMENT.has(name) && args >= 1 && top.whole(1) ? top.text(1, 'utf8') : undefined;
  const queryText = operation === undefined || mode === 'off' ? undefined : queryTextOf(top, mode, name!, operation, sub);
  return {
    sequence,
    pos,
    startNs,
    name,
    operation,
    queryText,
    argument,
    arguments: args,
    procedure: name !== undefined && PROCEDURES.has(name) ? argument : undefined,
    bytes: 96 + (queryText?.length ?? 0) * 2,
  };
}

/**
 * db.query.text in the syntax of redis-cli: `sanitized` is the operation and
 * the key arguments as written, every other argument `?`; `raw` every
 * argument as written, except for commands that can carry credentials,
 * which are always sanitized. Arguments past what the reader kept (its byte
 * budget, the tracked element count) end the text.
 */
function queryTextOf(top: RespTop, mode: QueryTextMode, name: string, operation: string, sub: number): string {
  const spec = keySpecOf(name);
  const raw = mode === 'raw' && !hasCredentials(name);
  let text = raw ? top.text(0, 'utf8') + (sub === 2 ? ` ${top.text(1, 'utf8')}` : '') : operation;
  for (let i = sub; i < top.size; i++) {
    if (i >= top.tracked) break;
    const t = top.elementType[i];
    if (raw || isKey(name, spec, i, top)) {
      if (t !== RespType.bulk || top.keptLength[i]! < top.elementSize[i]!) {
        // Not kept whole (byte budget or a capture gap): the text stops here rather than show part of an argument.
        if (top.keptLength[i] === 0 && top.elementSize[i] !== 0) break;
        text += ` ${top.text(i, 'utf8')}`;
        break;
      }
      text += ` ${top.text(i, 'utf8')}`;
    } else text += ' ?';
  }
  return text;
}

/** The error prefix (semconv db.response.status_code): the first word when it is an upper-case token. */
export function errorPrefix(message: string): string | undefined {
  let end = 0;
  while (end < message.length && end < 32) {
    const c = message.charCodeAt(end);
    if (!((c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39 && end > 0) || c === 0x5f || c === 0x2d)) break;
    end++;
  }
  if (end === 0 || (end < message.length && message.charCodeAt(end) !== 0x20)) return undefined;
  return message.slice(0, end);
}

export function isErrorReply(top: RespTop): boolean {
  return top.type === RespType.error || top.type === RespType.bulkError;
}

/** Keyless commands whose collection replies are data. */
const ROW_COMMANDS = new Set(['KEYS', 'SCAN', 'RANDOMKEY']);

type Call = { -readonly [K in keyof DbCall]: DbCall[K] };

/** The fields every record of `cmd` has (absent, not undefined, when unknown). */
function baseCall(cmd: RedisCommand, namespace: string | undefined): Call {
  const c: Call = { system: 'redis' };
  if (namespace !== undefined) c.namespace = namespace;
  if (cmd.operation !== undefined) c.operation = cmd.operation;
  if (cmd.queryText !== undefined) c.queryText = cmd.queryText;
  if (cmd.procedure !== undefined) c.extra = { 'db.stored_procedure.name': cmd.procedure };
  return c;
}

/** The call for `cmd` answered by `reply` (the reader's top), on a connection whose database index is `namespace`. */
export function callOf(cmd: RedisCommand, reply: RespTop, namespace: string | undefined, mode: QueryTextMode, batchSize: number | undefined): DbCall {
  const c = baseCall(cmd, namespace);
  if (isErrorReply(reply)) {
    const prefix = errorPrefix(reply.line);
    if (prefix !== undefined) c.statusCode = prefix;
    c.errorType = prefix ?? '_OTHER';
    // Redis quotes the arguments it echoes: user data.
    c.statusMessage = errorMessageFor(mode, reply.line);
    return c;
  }
  // Elements of a collection reply (maps: entries) of a command that reads data (keyed commands, KEYS, SCAN):
  // HELLO's map, EXEC's replies, a subscribe confirmation are not rows.
  if (
    !reply.isNull &&
    cmd.name !== undefined &&
    (keySpecOf(cmd.name) !== undefined || ROW_COMMANDS.has(cmd.name)) &&
    (reply.type === RespType.array || reply.type === RespType.set || reply.type === RespType.map)
  ) {
    c.returnedRows = reply.size;
  }
  if (batchSize !== undefined) c.batchSize = batchSize;
  return c;
}

/** The call for a command that got no reply (`timeout`, `connection_closed`). */
export function unansweredCall(cmd: RedisCommand, namespace: string | undefined, why: 'timeout' | 'connection_closed'): DbCall {
  const c = baseCall(cmd, namespace);
  c.errorType = why;
  return c;
}
