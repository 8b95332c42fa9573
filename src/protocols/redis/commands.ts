// What a record needs to know of a Redis command: its name (one word, or two
// for container commands such as CLIENT SETNAME), which of its arguments are
// keys (kept in the sanitized db.query.text; everything else becomes `?`),
// and which carry credentials (never recorded, whatever the mode). Key
// positions follow Redis's own key specs (`COMMAND INFO`: first key, last
// key, step); commands not listed here have every argument sanitized.

/** Where the keys are: argument indexes first..last (negative: from the end, -1 the last argument) every `step`. 0 = the command itself. */
export interface RedisKeySpec {
  readonly first: number;
  readonly last: number;
  readonly step: number;
}

const ONE: RedisKeySpec = { first: 1, last: 1, step: 1 };
const ALL: RedisKeySpec = { first: 1, last: -1, step: 1 };
const PAIRS: RedisKeySpec = { first: 1, last: -1, step: 2 };
const TWO: RedisKeySpec = { first: 1, last: 2, step: 1 };
const ALL_BUT_LAST: RedisKeySpec = { first: 1, last: -2, step: 1 };
/** A container's subcommand naming a key as its first argument (OBJECT ENCODING key). */
const SUB_ONE: RedisKeySpec = { first: 2, last: 2, step: 1 };

const KEYS = new Map<string, RedisKeySpec>();
function keys(spec: RedisKeySpec, names: string): void {
  for (const n of names.split(' ')) KEYS.set(n, spec);
}

keys(ONE, 'GET SET SETNX SETEX PSETEX GETSET GETDEL GETEX APPEND STRLEN INCR DECR INCRBY DECRBY INCRBYFLOAT GETRANGE SETRANGE SUBSTR LCS');
keys(ONE, 'HGET HSET HMSET HSETNX HGETALL HDEL HEXISTS HINCRBY HINCRBYFLOAT HKEYS HVALS HLEN HMGET HSTRLEN HRANDFIELD HSCAN');
keys(ONE, 'LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP LLEN LRANGE LINDEX LSET LREM LTRIM LINSERT LPOS');
keys(ONE, 'SADD SREM SMEMBERS SISMEMBER SMISMEMBER SCARD SPOP SRANDMEMBER SSCAN');
keys(ONE, 'ZADD ZREM ZRANGE ZREVRANGE ZRANGEBYSCORE ZREVRANGEBYSCORE ZRANGEBYLEX ZREVRANGEBYLEX ZSCORE ZMSCORE ZINCRBY ZCARD ZCOUNT ZLEXCOUNT');
keys(ONE, 'ZRANK ZREVRANK ZREMRANGEBYSCORE ZREMRANGEBYRANK ZREMRANGEBYLEX ZPOPMIN ZPOPMAX ZRANDMEMBER ZSCAN');
keys(ONE, 'EXPIRE PEXPIRE EXPIREAT PEXPIREAT EXPIRETIME PEXPIRETIME TTL PTTL PERSIST TYPE DUMP RESTORE');
keys(ONE, 'XADD XRANGE XREVRANGE XLEN XTRIM XDEL XACK XCLAIM XAUTOCLAIM XPENDING XSETID');
keys(ONE, 'SETBIT GETBIT BITCOUNT BITPOS BITFIELD BITFIELD_RO PFADD GEOADD GEODIST GEOHASH GEOPOS GEOSEARCH SORT SORT_RO');
keys(ALL, 'MGET DEL EXISTS UNLINK TOUCH WATCH SINTER SUNION SDIFF SINTERSTORE SUNIONSTORE SDIFFSTORE PFCOUNT PFMERGE');
keys(PAIRS, 'MSET MSETNX');
keys(TWO, 'RENAME RENAMENX COPY SMOVE RPOPLPUSH LMOVE BRPOPLPUSH BLMOVE GEOSEARCHSTORE ZRANGESTORE');
keys(ALL_BUT_LAST, 'BLPOP BRPOP BZPOPMIN BZPOPMAX');
keys(SUB_ONE, 'OBJECT MEMORY XINFO XGROUP');

/** Commands whose first argument names a subcommand: the operation is both words (Redis documents them so: `CLIENT SETNAME`). */
const CONTAINERS = new Set([
  'ACL', 'CLIENT', 'CLUSTER', 'COMMAND', 'CONFIG', 'FUNCTION', 'LATENCY', 'MEMORY', 'MODULE', 'OBJECT', 'PUBSUB', 'SCRIPT', 'SLOWLOG', 'XGROUP', 'XINFO',
]);

/** Commands whose arguments may hold credentials: their text is the sanitized one even in `raw` mode (AUTH, HELLO ... AUTH, ACL SETUSER, CONFIG SET requirepass, MIGRATE ... AUTH). */
const CREDENTIALS = new Set(['AUTH', 'HELLO', 'ACL', 'CONFIG', 'MIGRATE']);

/** Names Redis and its modules use: a letter, then letters, digits, `.`, `_`, `-` (JSON.SET, FT.SEARCH, BF.ADD); at most this long. */
export const REDIS_MAX_NAME = 32;

/** Whether b[from..to) is a plausible command name. */
export function isCommandName(b: Uint8Array, from: number, to: number): boolean {
  const n = to - from;
  if (n < 1 || n > REDIS_MAX_NAME) return false;
  const c = b[from]! | 0x20;
  if (c < 0x61 || c > 0x7a) return false;
  for (let i = from + 1; i < to; i++) {
    const x = b[i]!;
    const l = x | 0x20;
    if (!((l >= 0x61 && l <= 0x7a) || (x >= 0x30 && x <= 0x39) || x === 0x2e || x === 0x5f || x === 0x2d)) return false;
  }
  return true;
}

export function isContainer(name: string): boolean {
  return CONTAINERS.has(name);
}

export function hasCredentials(name: string): boolean {
  return CREDENTIALS.has(name);
}

/** Whether argument `index` (1 = the first after the command name) of a command with `count` elements in all is a key. */
export function isKeyArgument(spec: RedisKeySpec | undefined, index: number, count: number): boolean {
  if (spec === undefined || index < spec.first) return false;
  const last = spec.last >= 0 ? spec.last : count + spec.last;
  return index <= last && (index - spec.first) % spec.step === 0;
}

export function keySpecOf(name: string): RedisKeySpec | undefined {
  return KEYS.get(name);
}

/** Subscribe-family commands: their confirmations are arrays (RESP2) or pushes (RESP3) named after them in lower case. */
export const SUBSCRIBE_REPLIES: ReadonlyMap<string, string> = new Map([
  ['SUBSCRIBE', 'subscribe'],
  ['PSUBSCRIBE', 'psubscribe'],
  ['SSUBSCRIBE', 'ssubscribe'],
  ['UNSUBSCRIBE', 'unsubscribe'],
  ['PUNSUBSCRIBE', 'punsubscribe'],
  ['SUNSUBSCRIBE', 'sunsubscribe'],
]);

/** First elements of a pub/sub message delivery (not a reply to anything). */
export const PUBSUB_MESSAGES: ReadonlySet<string> = new Set(['message', 'pmessage', 'smessage']);
