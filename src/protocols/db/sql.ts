// What a SQL text says, for database client spans: the text with its literals
// and comments scrubbed (db.query.text), the operation, the one table it names
// if it names exactly one, and the query summary (db.query.summary, also the
// span name). One pass over the text feeds both the scrubber and a small
// statement state machine; results are cached by text, since prepared
// statements and ORMs repeat the same few texts.
//
// Conventions followed: OpenTelemetry semantic conventions v1.44.0 (checked
// against main at 384d661, 2026-08-20: editorial changes only), docs/db/database-spans.md
// "Sanitization of db.query.text" and "Generating a summary of the query",
// docs/db/sql.md, docs/db/postgresql.md, docs/db/mysql.md. Note: sql.md says
// db.operation.name and db.collection.name "SHOULD NOT be extracted from
// db.query.text"; the summary is the attribute meant to be parsed from it.
// `operation` and `collection` are still given (conservatively) for callers
// that choose to use them.
//
// The rules and limits are in README.md (section "SQL text").

export type SqlDialect = 'postgresql' | 'mysql'; // mysql also covers MariaDB

export interface SqlFacts {
  /** The text with every literal replaced by `?` (strings, numbers, hex/bit literals, booleans, dollar-quoted bodies,
   *  IN-lists of literals collapsed to `IN (?)`), comments removed, whitespace runs kept as they were. Never contains a literal of the input. */
  readonly sanitized: string;
  /** db.operation.name, as written (no case normalization, per semconv; runs of spaces in multi-word names made one):
   *  the statement's operation (SELECT, INSERT, CREATE TABLE, BEGIN, ...); for two or more statements
   *  `BATCH <op>` when they all share one, else `BATCH`. Undefined when not known. */
  readonly operation?: string;
  /** db.collection.name: set only when the statement names exactly one table (as written, schema-qualified if it was). */
  readonly collection?: string;
  /** db.query.summary per the semconv "Generating a summary of the query" rules (<= 255 chars), undefined when it cannot be built. */
  readonly summary?: string;
  /** db.operation.batch.size: the number of statements when the text holds two or more (semconv: one protocol message
   *  carrying several operations is a batch); absent otherwise. */
  readonly batchSize?: number;
  /** db.stored_procedure.name: the procedure of a single `CALL name(...)`, as written. */
  readonly storedProcedure?: string;
}

/** The summary's limit (semconv: truncate to 255 characters, never inside an operation or target). */
export const SUMMARY_MAX_CHARS = 255;
/** Cached texts per dialect at most (a text is cached when seen the second time); the cache empties itself at this bound (and counts it). */
export const SQL_CACHE_ENTRIES = 1024;
/** Total characters of cached texts per dialect at most: a few huge unique texts must not pin much memory. */
export const SQL_CACHE_CHARS = 1 << 20;
/** Texts longer than this are not cached (a bulk INSERT with inlined values is unique anyway). */
export const SQL_CACHE_MAX_TEXT = 16 * 1024;

// ---------------------------------------------------------------------------
// Cache

/** Slots of the doorkeeper: hashes of texts seen once and not cached (yet). */
export const SQL_DOORKEEPER_SLOTS = 4096;

// A text is cached the second time it is seen, not the first: clients that
// inline their values (psycopg2, mysql2's query(), the CLIs) send texts that
// never repeat, and caching each would only churn the cache (and promote
// garbage to the old generation). The doorkeeper remembers a hash per slot;
// a collision can only admit a text early, never return a wrong result.
class FactsCache {
  readonly entries = new Map<string, SqlFacts>();
  private readonly seen = new Int32Array(SQL_DOORKEEPER_SLOTS);
  chars = 0;
  resets = 0;

  store(sql: string, facts: SqlFacts): void {
    if (sql.length > SQL_CACHE_MAX_TEXT) return;
    const h = textHash(sql);
    const slot = h & (SQL_DOORKEEPER_SLOTS - 1);
    if (this.seen[slot] !== h) {
      this.seen[slot] = h;
      return;
    }
    if (this.entries.size >= SQL_CACHE_ENTRIES || this.chars + sql.length > SQL_CACHE_CHARS) {
      this.entries.clear();
      this.chars = 0;
      this.resets++;
    }
    this.entries.set(sql, facts);
    this.chars += sql.length;
  }
}

/** FNV-1a over the UTF-16 units, never 0 (0 marks an empty doorkeeper slot). */
function textHash(s: string): number {
  let h = 0x811c9dc5 | 0;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h === 0 ? 1 : h;
}

const caches = { postgresql: new FactsCache(), mysql: new FactsCache() };

export interface SqlCacheStats {
  /** Times a dialect's cache reached its bound and was emptied: many distinct texts, each scanned afresh. */
  readonly resets: number;
  /** Texts cached now, both dialects. */
  readonly entries: number;
}

/** The facts cache's counters (for a health metric); cumulative since the process started. */
export function sqlCacheStats(): SqlCacheStats {
  return {
    resets: caches.postgresql.resets + caches.mysql.resets,
    entries: caches.postgresql.entries.size + caches.mysql.entries.size,
  };
}

/** Pure; results for repeated texts come from a bounded cache (prepared statements repeat). */
export function sqlFacts(sql: string, dialect: SqlDialect): SqlFacts {
  const cache = caches[dialect];
  const hit = cache.entries.get(sql);
  if (hit !== undefined) return hit;
  const facts = computeSqlFacts(sql, dialect);
  cache.store(sql, facts);
  return facts;
}

/** sqlFacts without the cache (tests and the benchmark's uncached arm). */
export function computeSqlFacts(sql: string, dialect: SqlDialect): SqlFacts {
  const builder = BUILDER;
  builder.reset(sql, dialect === 'mysql');
  const sanitized = scan(sql, dialect === 'mysql', builder);
  return builder.finish(sanitized);
}

// ---------------------------------------------------------------------------
// Characters

const C_WS = 1;
const C_WORD_START = 2;
const C_WORD = 4;
const C_DIGIT = 8;
const C_HEX = 16;

const CLS = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  let f = 0;
  if (c === 0x20 || (c >= 0x09 && c <= 0x0d)) f |= C_WS;
  const letter = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
  if (letter || c === 0x5f) f |= C_WORD_START | C_WORD;
  if (c >= 0x30 && c <= 0x39) f |= C_DIGIT | C_WORD | C_HEX;
  if ((c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66)) f |= C_HEX;
  if (c === 0x24) f |= C_WORD; // `$` continues identifiers in both dialects (and starts them in MySQL)
  CLS[c] = f;
}

// Non-ASCII characters are identifier characters in both PostgreSQL and MySQL.
const isWordChar = (c: number): boolean => c >= 128 || (CLS[c]! & C_WORD) !== 0;
const isWordStart = (c: number): boolean => c >= 128 || (CLS[c]! & C_WORD_START) !== 0;
const isDigit = (c: number): boolean => c < 128 && (CLS[c]! & C_DIGIT) !== 0;
const isWs = (c: number): boolean => c < 128 && (CLS[c]! & C_WS) !== 0;

const Q1 = 0x27; // '
const Q2 = 0x22; // "
const BT = 0x60; // `
const BS = 0x5c; // \
const DOLLAR = 0x24;
const DOT = 0x2e;
const MINUS = 0x2d;

// ---------------------------------------------------------------------------
// Keywords, recognized without allocating: a hash of the upper-cased word, then a compare.

const enum K {
  None, SELECT, INSERT, UPDATE, DELETE, MERGE, REPLACE, WITH, RECURSIVE, FROM, JOIN, STRAIGHT_JOIN, INTO, USING,
  ONLY, LATERAL, IN, TRUE, FALSE, NULL, END, IS, NOT, DISTINCT, AS, DUAL, ON,
  WHERE, GROUP, ORDER, HAVING, LIMIT, OFFSET, WINDOW, UNION, INTERSECT, EXCEPT, RETURNING, FOR, SET, VALUES, FETCH,
  AND, OR, THEN, ELSE, WHEN, CASE, BETWEEN, LIKE, BY, RETURN, SIMILAR, ANY, ALL, SOME, INTERVAL,
  IGNORE, LOW_PRIORITY, DELAYED, HIGH_PRIORITY, QUICK,
  CREATE, ALTER, DROP, TRUNCATE, TABLE, VIEW, INDEX, SEQUENCE, SCHEMA, DATABASE, FUNCTION, PROCEDURE, TRIGGER, TYPE,
  EXTENSION, ROLE, USER, EVENT, DOMAIN, MATERIALIZED, TEMP, TEMPORARY, UNLOGGED, GLOBAL, LOCAL, UNIQUE, CONCURRENTLY, IF, EXISTS, RULE,
  BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE, START, TRANSACTION, ABORT, SHOW, USE, CALL, EXPLAIN, ANALYZE, VERBOSE, COPY,
  GRANT, REVOKE, LOCK, UNLOCK, DISCARD, RESET, DEALLOCATE, PREPARE, EXECUTE, LISTEN, NOTIFY, UNLISTEN, VACUUM, DESCRIBE, DESC,
  DO, FLUSH, KILL, CHECKPOINT, REFRESH, CLUSTER, REINDEX, COMMENT, RENAME, OPTIMIZE,
}

/** Keyword flags. */
const F_RESERVED = 1; // never a table name where one is expected
const F_UNARY = 2; // an expression may start after it: a following `-5` is a signed literal
const F_CLAUSE = 4; // ends a FROM / UPDATE table list
const F_UTILITY = 8; // a statement that starts with it is a single operation without targets
const F_OBJECT = 16; // an object type after CREATE / ALTER / DROP
const F_MODIFIER = 32; // skipped between CREATE and the object type

const KEYWORDS: readonly (readonly [string, K, number])[] = [
  ['SELECT', K.SELECT, F_RESERVED | F_UNARY | F_CLAUSE], ['INSERT', K.INSERT, F_RESERVED], ['UPDATE', K.UPDATE, F_RESERVED],
  ['DELETE', K.DELETE, F_RESERVED], ['MERGE', K.MERGE, F_RESERVED], ['REPLACE', K.REPLACE, F_MODIFIER],
  ['WITH', K.WITH, F_RESERVED], ['RECURSIVE', K.RECURSIVE, F_MODIFIER], ['FROM', K.FROM, F_RESERVED | F_UNARY],
  ['JOIN', K.JOIN, F_RESERVED], ['STRAIGHT_JOIN', K.STRAIGHT_JOIN, F_RESERVED], ['INTO', K.INTO, F_RESERVED],
  ['USING', K.USING, F_RESERVED], ['ONLY', K.ONLY, F_RESERVED], ['LATERAL', K.LATERAL, F_RESERVED],
  ['IN', K.IN, F_RESERVED | F_UNARY], ['TRUE', K.TRUE, F_RESERVED], ['FALSE', K.FALSE, F_RESERVED],
  ['NULL', K.NULL, F_RESERVED], ['END', K.END, F_RESERVED | F_UTILITY], ['IS', K.IS, F_RESERVED | F_UNARY],
  ['NOT', K.NOT, F_RESERVED | F_UNARY], ['DISTINCT', K.DISTINCT, F_RESERVED | F_UNARY], ['AS', K.AS, F_RESERVED],
  ['DUAL', K.DUAL, F_RESERVED], ['ON', K.ON, F_RESERVED | F_UNARY],
  ['WHERE', K.WHERE, F_RESERVED | F_UNARY | F_CLAUSE], ['GROUP', K.GROUP, F_RESERVED | F_CLAUSE],
  ['ORDER', K.ORDER, F_RESERVED | F_CLAUSE], ['HAVING', K.HAVING, F_RESERVED | F_UNARY | F_CLAUSE],
  ['LIMIT', K.LIMIT, F_RESERVED | F_UNARY | F_CLAUSE], ['OFFSET', K.OFFSET, F_RESERVED | F_UNARY | F_CLAUSE],
  ['WINDOW', K.WINDOW, F_RESERVED | F_CLAUSE], ['UNION', K.UNION, F_RESERVED | F_CLAUSE],
  ['INTERSECT', K.INTERSECT, F_RESERVED | F_CLAUSE], ['EXCEPT', K.EXCEPT, F_RESERVED | F_CLAUSE],
  ['RETURNING', K.RETURNING, F_RESERVED | F_UNARY | F_CLAUSE], ['FOR', K.FOR, F_RESERVED | F_CLAUSE],
  ['SET', K.SET, F_RESERVED | F_CLAUSE | F_UTILITY], ['VALUES', K.VALUES, F_RESERVED | F_CLAUSE],
  ['FETCH', K.FETCH, F_RESERVED | F_CLAUSE],
  ['AND', K.AND, F_RESERVED | F_UNARY], ['OR', K.OR, F_RESERVED | F_UNARY | F_MODIFIER], ['THEN', K.THEN, F_RESERVED | F_UNARY],
  ['ELSE', K.ELSE, F_RESERVED | F_UNARY], ['WHEN', K.WHEN, F_RESERVED | F_UNARY], ['CASE', K.CASE, F_RESERVED | F_UNARY],
  ['BETWEEN', K.BETWEEN, F_RESERVED | F_UNARY], ['LIKE', K.LIKE, F_RESERVED | F_UNARY], ['BY', K.BY, F_RESERVED | F_UNARY],
  ['RETURN', K.RETURN, F_UNARY], ['SIMILAR', K.SIMILAR, F_UNARY], ['ANY', K.ANY, F_UNARY], ['ALL', K.ALL, F_UNARY],
  ['SOME', K.SOME, F_UNARY], ['INTERVAL', K.INTERVAL, F_UNARY],
  ['IGNORE', K.IGNORE, 0], ['LOW_PRIORITY', K.LOW_PRIORITY, 0], ['DELAYED', K.DELAYED, 0],
  ['HIGH_PRIORITY', K.HIGH_PRIORITY, 0], ['QUICK', K.QUICK, 0],
  ['CREATE', K.CREATE, F_RESERVED], ['ALTER', K.ALTER, F_RESERVED], ['DROP', K.DROP, F_RESERVED],
  ['TRUNCATE', K.TRUNCATE, F_RESERVED], ['TABLE', K.TABLE, F_OBJECT], ['VIEW', K.VIEW, F_OBJECT],
  ['INDEX', K.INDEX, F_OBJECT], ['SEQUENCE', K.SEQUENCE, F_OBJECT], ['SCHEMA', K.SCHEMA, F_OBJECT],
  ['DATABASE', K.DATABASE, F_OBJECT], ['FUNCTION', K.FUNCTION, F_OBJECT], ['PROCEDURE', K.PROCEDURE, F_OBJECT],
  ['TRIGGER', K.TRIGGER, F_OBJECT], ['TYPE', K.TYPE, F_OBJECT], ['EXTENSION', K.EXTENSION, F_OBJECT],
  ['ROLE', K.ROLE, F_OBJECT], ['USER', K.USER, F_OBJECT], ['EVENT', K.EVENT, F_OBJECT], ['DOMAIN', K.DOMAIN, F_OBJECT],
  ['MATERIALIZED', K.MATERIALIZED, 0], ['TEMP', K.TEMP, F_MODIFIER], ['TEMPORARY', K.TEMPORARY, F_MODIFIER],
  ['UNLOGGED', K.UNLOGGED, F_MODIFIER], ['GLOBAL', K.GLOBAL, F_MODIFIER], ['LOCAL', K.LOCAL, F_MODIFIER],
  ['UNIQUE', K.UNIQUE, F_MODIFIER], ['CONCURRENTLY', K.CONCURRENTLY, 0], ['IF', K.IF, 0], ['EXISTS', K.EXISTS, F_UNARY],
  ['RULE', K.RULE, F_OBJECT],
  ['BEGIN', K.BEGIN, F_UTILITY], ['COMMIT', K.COMMIT, F_UTILITY], ['ROLLBACK', K.ROLLBACK, F_UTILITY],
  ['SAVEPOINT', K.SAVEPOINT, F_UTILITY], ['RELEASE', K.RELEASE, F_UTILITY], ['START', K.START, 0],
  ['TRANSACTION', K.TRANSACTION, 0], ['ABORT', K.ABORT, F_UTILITY], ['SHOW', K.SHOW, F_UTILITY], ['USE', K.USE, 0],
  ['CALL', K.CALL, 0], ['EXPLAIN', K.EXPLAIN, 0], ['ANALYZE', K.ANALYZE, F_UTILITY], ['VERBOSE', K.VERBOSE, 0],
  ['COPY', K.COPY, 0], ['GRANT', K.GRANT, F_UTILITY], ['REVOKE', K.REVOKE, F_UTILITY], ['LOCK', K.LOCK, F_UTILITY],
  ['UNLOCK', K.UNLOCK, F_UTILITY], ['DISCARD', K.DISCARD, F_UTILITY], ['RESET', K.RESET, F_UTILITY],
  ['DEALLOCATE', K.DEALLOCATE, F_UTILITY], ['PREPARE', K.PREPARE, F_UTILITY], ['EXECUTE', K.EXECUTE, F_UTILITY],
  ['LISTEN', K.LISTEN, F_UTILITY], ['NOTIFY', K.NOTIFY, F_UTILITY], ['UNLISTEN', K.UNLISTEN, F_UTILITY],
  ['VACUUM', K.VACUUM, F_UTILITY], ['DESCRIBE', K.DESCRIBE, F_UTILITY], ['DESC', K.DESC, F_UTILITY],
  ['DO', K.DO, F_UTILITY], ['FLUSH', K.FLUSH, F_UTILITY], ['KILL', K.KILL, F_UTILITY],
  ['CHECKPOINT', K.CHECKPOINT, F_UTILITY], ['REFRESH', K.REFRESH, F_UTILITY], ['CLUSTER', K.CLUSTER, F_UTILITY],
  ['REINDEX', K.REINDEX, F_UTILITY], ['COMMENT', K.COMMENT, F_UTILITY], ['RENAME', K.RENAME, F_UTILITY],
  ['OPTIMIZE', K.OPTIMIZE, F_UTILITY],
];

const MAX_KEYWORD = 13;
const KW_FLAGS = new Uint8Array(KEYWORDS.length + 1);
// Open addressing over the hash of the upper-cased word: slot -> keyword id (0: empty), verified by comparing.
const KW_SLOTS = 512;
const KW_TABLE = new Uint8Array(KW_SLOTS);
const KW_TEXT: string[] = [];
const kwHashOf = (word: string): number => {
  let h = 0;
  for (let i = 0; i < word.length; i++) h = (Math.imul(h, 31) + word.charCodeAt(i)) | 0;
  return h;
};
for (const [word, id, flags] of KEYWORDS) {
  KW_FLAGS[id] = flags;
  KW_TEXT[id] = word;
  let slot = kwHashOf(word) & (KW_SLOTS - 1);
  while (KW_TABLE[slot] !== 0) slot = (slot + 1) & (KW_SLOTS - 1);
  KW_TABLE[slot] = id;
}

/** The keyword spelled (in any case) by sql[start, end), or K.None. */
function keywordAt(sql: string, start: number, end: number): K {
  const len = end - start;
  if (len > MAX_KEYWORD || len < 2) return K.None;
  let h = 0;
  for (let i = start; i < end; i++) {
    let c = sql.charCodeAt(i);
    if (c >= 0x61 && c <= 0x7a) c -= 0x20;
    else if (!((c >= 0x41 && c <= 0x5a) || c === 0x5f)) return K.None;
    h = (Math.imul(h, 31) + c) | 0;
  }
  for (let slot = h & (KW_SLOTS - 1); ; slot = (slot + 1) & (KW_SLOTS - 1)) {
    const id = KW_TABLE[slot]!;
    if (id === 0) return K.None;
    const word = KW_TEXT[id]!;
    if (word.length !== len) continue;
    let i = 0;
    for (; i < len; i++) {
      let c = sql.charCodeAt(start + i);
      if (c >= 0x61 && c <= 0x7a) c -= 0x20;
      if (c !== word.charCodeAt(i)) break;
    }
    if (i === len) return id as K;
  }
}

const flagsOf = (k: K): number => KW_FLAGS[k]!;

// ---------------------------------------------------------------------------
// Literal scanners: each returns the index just past the literal, or -1 when it
// is not terminated before the end of the text.

/** '...' with '' for a quote (PostgreSQL standard strings, standard_conforming_strings on). */
function endOfStandardString(sql: string, open: number): number {
  let j = open + 1;
  for (;;) {
    const k = sql.indexOf("'", j);
    if (k < 0) return -1;
    if (sql.charCodeAt(k + 1) !== Q1) return k + 1;
    j = k + 2;
  }
}

/** A string quoted by `quote` where a backslash escapes the next character and a doubled quote is a quote
 *  (MySQL '...' and "...", PostgreSQL E'...'). */
function endOfEscapedString(sql: string, open: number, quote: number): number {
  const n = sql.length;
  for (let j = open + 1; j < n; j++) {
    const c = sql.charCodeAt(j);
    if (c === BS) j++;
    else if (c === quote) {
      if (sql.charCodeAt(j + 1) !== quote) return j + 1;
      j++;
    }
  }
  return -1;
}

/** A quoted identifier ("..." PostgreSQL, `...` MySQL); a doubled quote is a quote. */
function endOfQuotedIdentifier(sql: string, open: number, quote: number): number {
  const q = quote === Q2 ? '"' : '`';
  let j = open + 1;
  for (;;) {
    const k = sql.indexOf(q, j);
    if (k < 0) return -1;
    if (sql.charCodeAt(k + 1) !== quote) return k + 1;
    j = k + 2;
  }
}

/** PostgreSQL $tag$...$tag$ at `open`: the end, -1 if unterminated, -2 if `open` does not start a dollar quote. */
function endOfDollarString(sql: string, open: number): number {
  const n = sql.length;
  let j = open + 1;
  if (j < n && sql.charCodeAt(j) !== DOLLAR) {
    const c = sql.charCodeAt(j);
    if (!isWordStart(c)) return -2;
    j++;
    while (j < n) {
      const d = sql.charCodeAt(j);
      if (d === DOLLAR || !isWordChar(d)) break;
      j++;
    }
    if (j >= n || sql.charCodeAt(j) !== DOLLAR) return -2;
  }
  if (j >= n) return -2; // a lone `$` at the end
  const tag = sql.slice(open, j + 1);
  const close = sql.indexOf(tag, j + 1);
  return close < 0 ? -1 : close + tag.length;
}

/** A number at `i` (a digit, or `.` and a digit): decimal with fraction and exponent, 0x / 0o / 0b, `_` between
 *  digits (PostgreSQL 16). Returns its end. */
function endOfNumber(sql: string, i: number): number {
  const n = sql.length;
  const c0 = sql.charCodeAt(i);
  if (c0 === 0x30 && i + 2 < n + 1) {
    const x = sql.charCodeAt(i + 1) | 0x20;
    const radix = x === 0x78 ? 16 : x === 0x62 ? 2 : x === 0x6f ? 8 : 0;
    if (radix !== 0) {
      let j = i + 2;
      while (j < n) {
        const c = sql.charCodeAt(j);
        const ok = radix === 16 ? c < 128 && (CLS[c]! & C_HEX) !== 0 : c >= 0x30 && c < 0x30 + radix;
        if (ok || (c === 0x5f && j > i + 2)) j++;
        else break;
      }
      if (j > i + 2) return j;
    }
  }
  let j = digitsEnd(sql, i);
  if (j < n && sql.charCodeAt(j) === DOT) {
    const after = sql.charCodeAt(j + 1);
    // `1.` is a number too, but `1..` (a range in some syntaxes) and `1.x` keep the dot.
    if (isDigit(after)) j = digitsEnd(sql, j + 1);
    else if (j > i && !(j + 1 < n && (isWordChar(after) || after === DOT))) j++;
  }
  if (j < n && (sql.charCodeAt(j) | 0x20) === 0x65) {
    let k = j + 1;
    const s = sql.charCodeAt(k);
    if (s === 0x2b || s === MINUS) k++;
    if (isDigit(sql.charCodeAt(k))) j = digitsEnd(sql, k);
  }
  return j;
}

/** The end of a run of digits at `j`, with single `_` between digits (PostgreSQL 16: 1_000_000). */
function digitsEnd(sql: string, j: number): number {
  const n = sql.length;
  const from = j;
  while (j < n) {
    const c = sql.charCodeAt(j);
    if (isDigit(c) || (c === 0x5f && j > from && isDigit(sql.charCodeAt(j + 1)))) j++;
    else break;
  }
  return j;
}

/** One-letter string prefixes: PostgreSQL E (escapes), B X N (bit, hex, national); MySQL X B N. */
function prefixedStringKind(sql: string, start: number, end: number, mysql: boolean): number {
  // Returns 0 when sql[start, end) followed by sql[end] does not begin a prefixed string; 1 for a standard
  // quoted body starting at `end`, 2 for an escaped one (E'' or MySQL), 3 for PostgreSQL U&'.
  const next = sql.charCodeAt(end);
  if (mysql) {
    if (next !== Q1 && next !== Q2) return 0;
    const c = sql.charCodeAt(start);
    if (c === 0x5f && end - start > 1) return 2; // _charset'...' introducer
    if (end - start !== 1) return 0;
    const l = c | 0x20;
    return (l === 0x78 || l === 0x62 || l === 0x6e) && next === Q1 ? 2 : 0;
  }
  if (end - start !== 1) return 0;
  const l = sql.charCodeAt(start) | 0x20;
  if (next === Q1) return l === 0x65 ? 2 : l === 0x62 || l === 0x78 || l === 0x6e ? 1 : 0;
  if (l === 0x75 && next === 0x26 && sql.charCodeAt(end + 1) === Q1) return 3;
  return 0;
}

/** The end of a literal element at `j` (as in an IN list), or -1 when `j` does not start a complete literal. */
function literalEnd(sql: string, j: number, mysql: boolean): number {
  const n = sql.length;
  let c = sql.charCodeAt(j);
  if (c === MINUS) {
    const d = sql.charCodeAt(j + 1);
    if (!(isDigit(d) || (d === DOT && isDigit(sql.charCodeAt(j + 2))))) return -1;
    j++;
    c = d;
  }
  if (isDigit(c) || (c === DOT && isDigit(sql.charCodeAt(j + 1)))) {
    const e = endOfNumber(sql, j);
    return e < n && isWordChar(sql.charCodeAt(e)) ? -1 : e;
  }
  if (c === Q1) return mysql ? endOfEscapedString(sql, j, Q1) : endOfStandardString(sql, j);
  if (c === Q2) return mysql ? endOfEscapedString(sql, j, Q2) : -1;
  if (c === DOLLAR && !mysql) {
    const e = endOfDollarString(sql, j);
    return e < 0 ? -1 : e;
  }
  if (isWordStart(c) || (mysql && c === DOLLAR)) {
    let e = j + 1;
    while (e < n && isWordChar(sql.charCodeAt(e))) e++;
    const kind = prefixedStringKind(sql, j, e, mysql);
    if (kind === 1) return endOfStandardString(sql, e);
    if (kind === 2) return endOfEscapedString(sql, e, sql.charCodeAt(e));
    if (kind === 3) return endOfStandardString(sql, e + 1);
    const k = keywordAt(sql, j, e);
    return k === K.TRUE || k === K.FALSE ? e : -1;
  }
  return -1;
}

/** `IN (lit, lit, ...)` after the word IN ending at `j`: the index of the closing parenthesis, or -1. */
function literalInListEnd(sql: string, j: number, mysql: boolean): number {
  const n = sql.length;
  while (j < n && isWs(sql.charCodeAt(j))) j++;
  if (sql.charCodeAt(j) !== 0x28) return -1;
  j++;
  for (;;) {
    while (j < n && isWs(sql.charCodeAt(j))) j++;
    const e = literalEnd(sql, j, mysql);
    if (e < 0) return -1;
    j = e;
    while (j < n && isWs(sql.charCodeAt(j))) j++;
    const c = sql.charCodeAt(j);
    if (c === 0x29) return j;
    if (c !== 0x2c) return -1;
    j++;
  }
}

// ---------------------------------------------------------------------------
// The scanner: copies the text, replacing literals and removing comments, and
// hands every significant token to the statement builder.

const enum T { Name, Word, Literal, Param, Open, Close, Comma, Semi, Other }

// What the previous significant token was, for a `-` before a number: an operand
// (then `-` is binary and stays) or not (then `-5` is one signed literal).
const P_OPERATOR = 0;
const P_OPERAND = 1;

function scan(sql: string, mysql: boolean, b: StatementBuilder): string {
  const n = sql.length;
  let out = '';
  let copied = 0; // sql[0, copied) is accounted for in `out`
  let depth = 0;
  let prev = P_OPERATOR;
  let i = 0;

  const replace = (start: number, end: number): void => {
    out += sql.slice(copied, start) + '?';
    copied = end;
  };
  const rest = (start: number): string => {
    // An unterminated string, quoted identifier or comment: nothing after it may leak.
    b.token(T.Literal, start, n, K.None, depth);
    return out + sql.slice(copied, start) + '?';
  };

  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c < 128 && (CLS[c]! & C_WS) !== 0) {
      i++;
      continue;
    }
    // -- words (first: the commonest): keywords, names, prefixed strings, TRUE/FALSE, IN lists
    if (isWordStart(c) || (mysql && c === DOLLAR)) {
      let e = i + 1;
      while (e < n && isWordChar(sql.charCodeAt(e))) e++;
      const kind = prefixedStringKind(sql, i, e, mysql);
      if (kind !== 0) {
        const body = kind === 3 ? e + 1 : e;
        const end = kind === 2 ? endOfEscapedString(sql, body, sql.charCodeAt(body)) : endOfStandardString(sql, body);
        if (end < 0) return rest(i);
        replace(i, end);
        b.token(T.Literal, i, end, K.None, depth);
        prev = P_OPERAND;
        i = end;
        continue;
      }
      if (sql.charCodeAt(e) === DOT && e + 1 < n) {
        const w = nameEnd(sql, i, mysql);
        if (w < 0) return rest(i);
        b.token(T.Name, i, w, K.None, depth);
        prev = P_OPERAND;
        i = w;
        continue;
      }
      const k = keywordAt(sql, i, e);
      if (k === K.TRUE || k === K.FALSE) {
        replace(i, e);
        b.token(T.Literal, i, e, K.None, depth);
        prev = P_OPERAND;
        i = e;
        continue;
      }
      if (k === K.IN) {
        const close = literalInListEnd(sql, e, mysql);
        if (close >= 0) {
          const open = sql.indexOf('(', e);
          out += sql.slice(copied, open + 1) + '?';
          copied = close;
          b.token(T.Word, i, e, k, depth);
          b.token(T.Open, open, open + 1, K.None, depth + 1);
          b.token(T.Literal, open + 1, close, K.None, depth + 1);
          b.token(T.Close, close, close + 1, K.None, depth);
          prev = P_OPERAND;
          i = close + 1;
          continue;
        }
      }
      b.token(T.Word, i, e, k, depth);
      prev = k !== K.None && (flagsOf(k) & F_UNARY) !== 0 ? P_OPERATOR : P_OPERAND;
      i = e;
      continue;
    }
    // -- comments ------------------------------------------------------------
    let commentEnd = -1;
    if (c === MINUS && sql.charCodeAt(i + 1) === MINUS) {
      // MySQL needs whitespace or a control character after `--` (else `1--1` is 1 - -1). A bare `--` ending
      // the text stays: it hides nothing, and removing it could not be repeated stably (`--#x` -> `--` -> ``).
      if (!mysql || (i + 2 < n && sql.charCodeAt(i + 2) <= 0x20)) {
        const nl = sql.indexOf('\n', i + 2);
        commentEnd = nl < 0 ? n : nl;
      }
    } else if (c === 0x23 && mysql) {
      const nl = sql.indexOf('\n', i + 1);
      commentEnd = nl < 0 ? n : nl;
    } else if (c === 0x2f && sql.charCodeAt(i + 1) === 0x2a) {
      commentEnd = mysql ? endOfMysqlBlockComment(sql, i) : endOfNestedBlockComment(sql, i);
      if (commentEnd < 0) return rest(i);
    }
    if (commentEnd >= 0) {
      out += sql.slice(copied, i);
      copied = commentEnd;
      // MySQL `--#x` + newline is minus, minus, comment: without the comment, `--` + newline would read as one.
      if (mysql && out.charCodeAt(out.length - 1) === MINUS && out.charCodeAt(out.length - 2) === MINUS) out = spacedMinuses(out);
      if (commentEnd >= n) {
        out = out.trimEnd(); // a trailing comment (sqlcommenter) leaves no trailing blank
      } else if (out.length === 0) {
        while (copied < n && isWs(sql.charCodeAt(copied))) copied++; // nor a leading one
      } else if (!isWs(out.charCodeAt(out.length - 1)) && !isWs(sql.charCodeAt(commentEnd))) {
        out += ' '; // `a/**/b` must not become `ab`, nor `-/**/-` a new comment
      }
      i = commentEnd;
      continue;
    }
    // -- strings, quoted identifiers ---------------------------------------------
    if (c === Q1 || (c === Q2 && mysql)) {
      const e = mysql ? endOfEscapedString(sql, i, c) : endOfStandardString(sql, i);
      if (e < 0) return rest(i);
      replace(i, e);
      b.token(T.Literal, i, e, K.None, depth);
      prev = P_OPERAND;
      i = e;
      continue;
    }
    if (c === Q2 || (c === BT && mysql)) {
      const e = nameEnd(sql, i, mysql);
      if (e < 0) return rest(i);
      b.token(T.Name, i, e, K.None, depth);
      prev = P_OPERAND;
      i = e;
      continue;
    }
    // -- numbers, signed numbers ---------------------------------------------------
    const numberStart = (c >= 0x30 && c <= 0x39) || (c === DOT && prev === P_OPERATOR && isDigit(sql.charCodeAt(i + 1)));
    const signed = c === MINUS && prev === P_OPERATOR &&
      (isDigit(sql.charCodeAt(i + 1)) || (sql.charCodeAt(i + 1) === DOT && isDigit(sql.charCodeAt(i + 2))));
    if (numberStart || signed) {
      const from = signed ? i + 1 : i;
      const e = endOfNumber(sql, from);
      if (mysql && e < n && isWordChar(sql.charCodeAt(e))) {
        // MySQL identifiers may start with digits (`1st_table`, `0x1g`): a name, not a number.
        if (signed) {
          b.token(T.Other, i, i + 1, K.None, depth);
          i++;
          continue;
        }
        const w = nameEnd(sql, i, mysql);
        if (w < 0) return rest(i);
        b.token(T.Name, i, w, K.None, depth);
        prev = P_OPERAND;
        i = w;
        continue;
      }
      replace(i, e);
      b.token(T.Literal, i, e, K.None, depth);
      prev = P_OPERAND;
      i = e;
      continue;
    }
    // -- PostgreSQL $1 parameters and $tag$ strings ---------------------------------
    if (c === DOLLAR) {
      if (isDigit(sql.charCodeAt(i + 1))) {
        let e = i + 2;
        while (e < n && isDigit(sql.charCodeAt(e))) e++;
        b.token(T.Param, i, e, K.None, depth);
        prev = P_OPERAND;
        i = e;
        continue;
      }
      const e = endOfDollarString(sql, i);
      if (e === -1) return rest(i);
      if (e >= 0) {
        replace(i, e);
        b.token(T.Literal, i, e, K.None, depth);
        prev = P_OPERAND;
        i = e;
        continue;
      }
    }
    // -- punctuation, operators -------------------------------------------------
    if (c === 0x28) {
      depth++;
      b.token(T.Open, i, i + 1, K.None, depth);
      prev = P_OPERATOR;
    } else if (c === 0x29) {
      if (depth > 0) depth--;
      b.token(T.Close, i, i + 1, K.None, depth);
      prev = P_OPERAND;
    } else if (c === 0x2c) {
      b.token(T.Comma, i, i + 1, K.None, depth);
      prev = P_OPERATOR;
    } else if (c === 0x3b) {
      b.token(T.Semi, i, i + 1, K.None, depth);
      prev = P_OPERATOR;
    } else if (c === 0x3f) {
      b.token(T.Param, i, i + 1, K.None, depth); // MySQL placeholder (a jsonb operator in PostgreSQL; harmless here)
      prev = P_OPERAND;
    } else {
      b.token(T.Other, i, i + 1, K.None, depth);
      prev = c === 0x5d ? P_OPERAND : P_OPERATOR; // `]` closes an operand (arr[1] - 1)
    }
    i++;
  }
  return copied === 0 ? sql : out + sql.slice(copied);
}

/** `out` with its trailing run of `-` spaced out (`a---` -> `a- - -`), so that no `--` is left to start a comment. */
function spacedMinuses(out: string): string {
  let k = out.length;
  while (k > 0 && out.charCodeAt(k - 1) === MINUS) k--;
  return out.slice(0, k) + '- '.repeat(out.length - k - 1) + '-';
}

/** A name at `i`: words and quoted identifiers joined by dots (`public.users`, `"s"."t"`, `` `db`.`t` ``).
 *  Returns its end, or -1 when a quoted part is not terminated. */
function nameEnd(sql: string, i: number, mysql: boolean): number {
  const n = sql.length;
  const quote = mysql ? BT : Q2;
  let j = i;
  for (;;) {
    const c = sql.charCodeAt(j);
    if (c === quote) {
      j = endOfQuotedIdentifier(sql, j, quote);
      if (j < 0) return -1;
    } else {
      j++;
      while (j < n && isWordChar(sql.charCodeAt(j))) j++;
    }
    if (sql.charCodeAt(j) !== DOT || j + 1 >= n) return j;
    const d = sql.charCodeAt(j + 1);
    if (d !== quote && !isWordChar(d)) return j;
    j++;
  }
}

/** PostgreSQL block comments nest. */
function endOfNestedBlockComment(sql: string, i: number): number {
  const n = sql.length;
  let nesting = 0;
  for (let j = i; j < n - 1; j++) {
    const c = sql.charCodeAt(j);
    if (c === 0x2f && sql.charCodeAt(j + 1) === 0x2a) {
      nesting++;
      j++;
    } else if (c === 0x2a && sql.charCodeAt(j + 1) === 0x2f) {
      nesting--;
      j++;
      if (nesting === 0) return j + 1;
    }
  }
  return -1;
}

/** MySQL block comments do not nest (`/*! ... *\/` and `/*+ ... *\/` included). */
function endOfMysqlBlockComment(sql: string, i: number): number {
  const e = sql.indexOf('*/', i + 2);
  return e < 0 ? -1 : e + 2;
}

// ---------------------------------------------------------------------------
// The statement builder: operation, targets and summary from the token stream.

const MAX_DEPTH = 64;
/** CTE names remembered per statement (more: no summary rather than a CTE taken for a table). */
const MAX_CTES = 32;

const enum E { None, From, Using, Insert, Delete, Ddl, Call, Use, Copy }
const enum Mode { Dml, Stop, DdlHead, StartHead, DdlList }

interface StatementFacts {
  readonly operation: string | undefined;
  readonly summary: string | undefined;
  readonly collection: string | undefined;
  readonly procedure: string | undefined;
}

/** Collection-capable operations: those on one table when they name one. */
const TABLE_OPS = new Set<K>([K.SELECT, K.INSERT, K.UPDATE, K.DELETE, K.REPLACE, K.TRUNCATE, K.COPY, K.TABLE]);

class StatementBuilder {
  private sql = '';
  private mysql = false;
  // the text so far
  private statements = 0;
  private first: StatementFacts | undefined;
  private sameOperation = true;
  private sameSummary = true;
  private sameCollection = true;
  // the statement being read
  private tokens = 0;
  private mode = Mode.Dml;
  private noSplit = false;
  private unsure = false;
  private opCount = 0;
  private mainOp: string | undefined;
  private mainOpKind = K.None;
  private firstOp: string | undefined;
  private firstOpKind = K.None;
  private readonly parts: string[] = []; // [0, partCount) in use: reused, not reallocated, per statement
  private partCount = 0;
  private deepest = 0;
  private partsChars = 0;
  private partsFull = false;
  private opPartIndex = 0;
  private firstTarget: string | undefined;
  private procedure: string | undefined;
  private manyTargets = false;
  private expect = E.None;
  private expectDepth = 0;
  private pendingStart = -1;
  private pendingEnd = -1;
  private ddlVerb = K.None;
  private ddlVerbStart = 0;
  private ddlVerbEnd = 0;
  private ddlStopAfterTarget = false;
  private materializedStart = -1;
  private bodyMayHoldSemicolons = false;
  private readonly opAt = new Uint8Array(MAX_DEPTH);
  private readonly listAt = new Uint8Array(MAX_DEPTH);
  private readonly ctes: string[] = [];
  private inWith = false;
  private withDepth = 0;
  private cteName = false;
  private prevKind = T.Semi;
  private prevKw = K.None;
  private prev2Kw = K.None;

  reset(sql: string, mysql: boolean): void {
    this.sql = sql;
    this.mysql = mysql;
    this.statements = 0;
    this.first = undefined;
    this.sameOperation = this.sameSummary = this.sameCollection = true;
    this.startStatement();
  }

  private startStatement(): void {
    this.tokens = 0;
    this.mode = Mode.Dml;
    this.noSplit = false;
    this.unsure = false;
    this.opCount = 0;
    this.mainOp = this.firstOp = undefined;
    this.mainOpKind = this.firstOpKind = K.None;
    this.partCount = 0;
    this.partsChars = 0;
    this.partsFull = false;
    this.opPartIndex = 0;
    this.firstTarget = this.procedure = undefined;
    this.manyTargets = false;
    this.expect = E.None;
    this.pendingStart = -1;
    this.ddlVerb = K.None;
    this.ddlStopAfterTarget = false;
    this.materializedStart = -1;
    this.bodyMayHoldSemicolons = false;
    for (let d = 0; d <= this.deepest; d++) this.opAt[d] = this.listAt[d] = 0; // (a loop: fill() costs more at these sizes)
    this.deepest = 0;
    if (this.ctes.length !== 0) this.ctes.length = 0;
    this.inWith = false;
    this.cteName = false;
    this.prevKind = T.Semi;
    this.prevKw = this.prev2Kw = K.None;
  }

  token(kind: T, start: number, end: number, kw: K, depth: number): void {
    if (depth >= MAX_DEPTH) {
      this.unsure = true;
      depth = MAX_DEPTH - 1;
    }
    if (depth > this.deepest) this.deepest = depth;
    if (this.pendingStart >= 0) {
      // A name where a table was expected: a table unless a `(` makes it a function (generate_series(...)).
      if (kind !== T.Open) this.target(this.pendingStart, this.pendingEnd);
      this.pendingStart = -1;
    }
    if (kind === T.Semi && depth === 0 && !this.noSplit) {
      this.endStatement();
      this.startStatement();
      return;
    }
    if (this.bodyMayHoldSemicolons && kind === T.Word && kw === K.BEGIN) this.noSplit = true; // BEGIN ATOMIC ... END
    const firstToken = this.tokens === 0;
    this.tokens++;
    if (firstToken) this.statementStart(kind, start, end, kw, depth);
    else if (this.mode !== Mode.Stop) this.next(kind, start, end, kw, depth);
    this.prev2Kw = this.prevKw;
    this.prevKw = kind === T.Word ? kw : K.None;
    this.prevKind = kind;
  }

  private statementStart(kind: T, start: number, end: number, kw: K, depth: number): void {
    if (kind === T.Open) {
      this.next(kind, start, end, kw, depth);
      return;
    }
    if (kind !== T.Word || kw === K.None) {
      this.mode = Mode.Stop; // not a statement we know: no operation, no summary
      return;
    }
    switch (kw) {
      case K.SELECT: case K.INSERT: case K.UPDATE: case K.DELETE: case K.MERGE:
        this.next(kind, start, end, kw, depth);
        return;
      case K.REPLACE:
        if (this.mysql) this.next(kind, start, end, kw, depth);
        else this.mode = Mode.Stop;
        return;
      case K.WITH:
        this.inWith = true;
        this.withDepth = depth;
        this.cteName = true;
        return;
      case K.EXPLAIN:
        this.op(K.EXPLAIN, start, end, depth); // then the explained statement's operations and targets
        return;
      case K.CREATE: case K.ALTER: case K.DROP: case K.TRUNCATE:
        this.mode = Mode.DdlHead;
        this.ddlVerb = kw;
        this.ddlVerbStart = start;
        this.ddlVerbEnd = end;
        return;
      case K.START:
        this.mode = Mode.StartHead;
        this.ddlVerbStart = start;
        this.ddlVerbEnd = end;
        return;
      case K.CALL:
        this.op(kw, start, end, depth);
        this.expectAt(E.Call, depth);
        return;
      case K.USE:
        if (!this.mysql) break;
        this.op(kw, start, end, depth);
        this.expectAt(E.Use, depth);
        return;
      case K.COPY:
        if (this.mysql) break;
        this.op(kw, start, end, depth);
        this.expectAt(E.Copy, depth);
        return;
      default:
        break;
    }
    if ((flagsOf(kw) & F_UTILITY) !== 0 && (kw !== K.END && kw !== K.ABORT || !this.mysql)) {
      this.op(kw, start, end, depth);
    }
    this.mode = Mode.Stop;
  }

  private next(kind: T, start: number, end: number, kw: K, depth: number): void {
    switch (this.mode) {
      case Mode.DdlHead:
        this.ddlHead(kind, start, end, kw, depth);
        return;
      case Mode.StartHead:
        if (kind === T.Word && kw === K.TRANSACTION) this.opText(K.START, this.sql.slice(this.ddlVerbStart, this.ddlVerbEnd) + ' ' + this.sql.slice(start, end), 0);
        this.mode = Mode.Stop;
        return;
      default:
        break;
    }
    const expecting = this.expect !== E.None && depth === this.expectDepth;
    switch (kind) {
      case T.Open:
        this.opAt[depth] = 0;
        this.listAt[depth] = 0;
        // `FROM (a JOIN b ...)`: the table is inside; `USING (id)` is a column list.
        if (this.expect === E.From && this.expectDepth === depth - 1) this.expectDepth = depth;
        else if (expecting || (this.expect !== E.None && this.expectDepth === depth - 1)) this.expect = E.None;
        return;
      case T.Close:
        if (this.expect !== E.None && this.expectDepth > depth) this.expect = E.None;
        return;
      case T.Comma:
        if (this.inWith && depth === this.withDepth) this.cteName = true;
        else if (this.listAt[depth] === 1) {
          this.expect = this.mode === Mode.DdlList ? E.Ddl : E.From;
          this.expectDepth = depth;
        }
        return;
      case T.Name:
      case T.Word:
        break;
      default:
        if (expecting) this.expect = E.None;
        return;
    }
    const flags = kw === K.None ? 0 : flagsOf(kw);
    if (this.cteName && depth === this.withDepth) {
      if (kw === K.RECURSIVE) return;
      this.cteName = false;
      // Bounded: each table name is looked up in this list.
      if (this.ctes.length < MAX_CTES) this.ctes.push(this.sql.slice(start, end).toLowerCase());
      else this.unsure = true;
      return;
    }
    if (expecting) {
      if (this.skipWord(kw)) return;
      if (kind === T.Name || (flags & F_RESERVED) === 0) {
        const e = this.expect;
        if (e === E.Delete) {
          this.unsure = true; // MySQL multi-table DELETE t1, t2 FROM ...: which names are tables is not plain
          this.expect = E.None;
          return;
        }
        if (e === E.From || e === E.Using) {
          this.pendingStart = start;
          this.pendingEnd = end;
          this.expect = E.None;
          return;
        }
        this.target(start, end);
        if (e === E.Call) this.procedure = this.sql.slice(start, end);
        this.expect = E.None;
        if (e === E.Call || e === E.Use || e === E.Copy || (e === E.Ddl && this.ddlStopAfterTarget)) this.mode = Mode.Stop;
        return;
      }
      if (this.expect === E.Ddl) this.mode = Mode.Stop; // CREATE INDEX ON t: no name to give
      this.expect = E.None;
      if (this.mode === Mode.Stop) return;
    }
    if (kind !== T.Word || kw === K.None || this.mode === Mode.DdlList) return;
    switch (kw) {
      case K.SELECT:
        this.op(kw, start, end, depth);
        break;
      case K.INSERT: case K.UPDATE: case K.DELETE: case K.MERGE: case K.REPLACE: {
        // Only where a statement can start: not `ON DUPLICATE KEY UPDATE`, `DO UPDATE`, `FOR UPDATE`,
        // `THEN DELETE`, nor MySQL's INSERT()/REPLACE() string functions.
        const p = this.prevKind;
        const atStart = this.tokens === 1 || p === T.Open || p === T.Close ||
          (p === T.Word && (this.prevKw === K.EXPLAIN || this.prevKw === K.ANALYZE || this.prevKw === K.VERBOSE));
        if (!atStart || this.nextCharIs(end, 0x28)) break;
        if (kw === K.REPLACE && !this.mysql) break;
        this.op(kw, start, end, depth);
        if (kw === K.INSERT || kw === K.REPLACE || kw === K.MERGE) this.expectAt(E.Insert, depth);
        else if (kw === K.UPDATE) {
          this.expectAt(E.From, depth);
          this.listAt[depth] = 1;
        } else this.expectAt(E.Delete, depth);
        break;
      }
      case K.FROM: {
        const owner = this.opAt[depth];
        const distinctFrom = this.prevKw === K.DISTINCT && (this.prev2Kw === K.IS || this.prev2Kw === K.NOT);
        if ((owner === K.SELECT || owner === K.DELETE || owner === K.UPDATE) && !distinctFrom) {
          this.expectAt(E.From, depth);
          this.listAt[depth] = 1;
        }
        break;
      }
      case K.JOIN: case K.STRAIGHT_JOIN:
        this.expectAt(E.From, depth);
        break;
      case K.WITH:
        // A CTE list in a subquery, `(WITH x AS ...`; not `with time zone`, `WITH ROLLUP`, `WITH ORDINALITY`.
        if (this.prevKind === T.Open) {
          this.inWith = true;
          this.withDepth = depth;
          this.cteName = true;
        }
        break;
      case K.USING: {
        const owner = this.opAt[depth];
        if (owner === K.DELETE || owner === K.MERGE) {
          this.expectAt(E.Using, depth);
          this.listAt[depth] = 1;
        }
        break;
      }
      default:
        if ((flags & F_CLAUSE) !== 0) this.listAt[depth] = 0;
        break;
    }
  }

  /** Words passed over where a table name is expected. */
  private skipWord(kw: K): boolean {
    switch (kw) {
      case K.ONLY: case K.LATERAL:
        return true;
      case K.INTO:
        return this.expect === E.Insert;
      case K.IGNORE: case K.LOW_PRIORITY: case K.DELAYED: case K.HIGH_PRIORITY: case K.QUICK:
        return this.mysql && (this.expect === E.Insert || this.expect === E.Delete || this.expect === E.From);
      case K.IF: case K.NOT: case K.EXISTS: case K.CONCURRENTLY:
        return this.expect === E.Ddl;
      default:
        return false;
    }
  }

  /** CREATE / ALTER / DROP [modifiers] <object type>, TRUNCATE [TABLE]. */
  private ddlHead(kind: T, start: number, end: number, kw: K, depth: number): void {
    const verb = this.sql.slice(this.ddlVerbStart, this.ddlVerbEnd);
    if (this.ddlVerb === K.TRUNCATE) {
      if (kind === T.Word && kw === K.TABLE) {
        this.opText(K.TRUNCATE, verb + ' ' + this.sql.slice(start, end), depth);
        this.ddlTargets(false, true, depth);
        return;
      }
      this.opText(K.TRUNCATE, verb, depth);
      this.ddlTargets(false, true, depth);
      this.next(kind, start, end, kw, depth);
      return;
    }
    if (kind !== T.Word || kw === K.None) {
      this.fail(); // CREATE DEFINER=... and the like: give up rather than guess
      return;
    }
    const flags = flagsOf(kw);
    if (kw === K.MATERIALIZED) {
      this.materializedStart = start; // part of the type: MATERIALIZED VIEW
      return;
    }
    if ((flags & F_MODIFIER) !== 0) return; // OR REPLACE, TEMPORARY, UNIQUE, ...
    if ((flags & F_OBJECT) === 0) {
      this.fail();
      return;
    }
    const type = this.materializedStart >= 0 ? this.words(this.materializedStart, end) : this.sql.slice(start, end);
    this.opText(kw === K.TABLE ? K.TABLE : this.ddlVerb, verb + ' ' + type, depth);
    if (this.ddlVerb === K.CREATE && (kw === K.FUNCTION || kw === K.PROCEDURE || kw === K.TRIGGER || kw === K.EVENT || kw === K.RULE)) {
      // The body may hold `;`: MySQL's BEGIN ... END always; PostgreSQL's only in BEGIN ATOMIC (its other bodies are strings).
      if (this.mysql) this.noSplit = true;
      else this.bodyMayHoldSemicolons = true;
    }
    this.ddlTargets(this.ddlVerb !== K.DROP, this.ddlVerb === K.DROP, depth);
  }

  private ddlTargets(stopAfterTarget: boolean, list: boolean, depth: number): void {
    this.mode = list ? Mode.DdlList : Mode.Dml;
    this.ddlStopAfterTarget = stopAfterTarget;
    this.expectAt(E.Ddl, depth);
    if (list) this.listAt[depth] = 1;
  }

  /** The words of sql[start, end) joined by single spaces (a multi-word operation name, semconv). */
  private words(start: number, end: number): string {
    return this.sql.slice(start, end).split(/\s+/).join(' ');
  }

  private fail(): void {
    this.unsure = true;
    this.mode = Mode.Stop;
    if (this.opCount === 0) this.opText(this.ddlVerb, this.sql.slice(this.ddlVerbStart, this.ddlVerbEnd), 0);
  }

  private expectAt(e: E, depth: number): void {
    this.expect = e;
    this.expectDepth = depth;
  }

  private nextCharIs(from: number, c: number): boolean {
    const sql = this.sql;
    let j = from;
    while (j < sql.length && isWs(sql.charCodeAt(j))) j++;
    return sql.charCodeAt(j) === c;
  }

  private op(kw: K, start: number, end: number, depth: number): void {
    this.opText(kw, this.sql.slice(start, end), depth);
    this.opAt[depth] = kw;
  }

  private opText(kw: K, text: string, depth: number): void {
    this.opCount++;
    if (this.firstOp === undefined) {
      this.firstOp = text;
      this.firstOpKind = kw;
    }
    if (depth === 0 && this.mainOp === undefined) {
      this.mainOp = text;
      this.mainOpKind = kw;
    }
    if (depth === this.withDepth) this.inWith = false;
    this.addPart(text);
    this.opPartIndex = this.partCount;
  }

  private target(start: number, end: number): void {
    const text = this.sql.slice(start, end);
    const c = text.charCodeAt(0);
    if (c !== Q2 && c !== BT) {
      if (keywordAt(text, 0, text.length) === K.DUAL) return; // MySQL's dummy table
      if (this.ctes.length !== 0 && this.ctes.includes(text.toLowerCase())) return; // a CTE, not a table
    }
    for (let i = this.opPartIndex; i < this.partCount; i++) if (this.parts[i] === text) return;
    this.addPart(text);
    if (this.firstTarget === undefined) this.firstTarget = text;
    else if (this.firstTarget !== text) this.manyTargets = true;
  }

  private addPart(text: string): void {
    if (this.partsFull) return;
    const chars = this.partsChars + (this.partCount === 0 ? 0 : 1) + text.length;
    if (chars > SUMMARY_MAX_CHARS) {
      this.partsFull = true;
      return;
    }
    this.parts[this.partCount++] = text;
    this.partsChars = chars;
  }

  private summaryText(): string {
    let text = this.parts[0]!;
    for (let i = 1; i < this.partCount; i++) text += ' ' + this.parts[i]!;
    return text;
  }

  private endStatement(): void {
    if (this.tokens === 0) return;
    if (this.pendingStart >= 0) {
      this.target(this.pendingStart, this.pendingEnd);
      this.pendingStart = -1;
    }
    const operation = this.mainOp ?? this.firstOp;
    const kind = this.mainOp !== undefined ? this.mainOpKind : this.firstOpKind;
    const known = operation !== undefined && !this.unsure;
    const facts: StatementFacts = {
      operation,
      summary: known && this.partCount > 0 ? this.summaryText() : undefined,
      collection: known && this.opCount === 1 && !this.manyTargets && TABLE_OPS.has(kind) ? this.firstTarget : undefined,
      procedure: known ? this.procedure : undefined,
    };
    this.statements++;
    if (this.first === undefined) {
      this.first = facts;
      return;
    }
    const f = this.first;
    if (facts.operation === undefined || facts.operation !== f.operation) this.sameOperation = false;
    if (facts.summary === undefined || facts.summary !== f.summary) this.sameSummary = false;
    if (facts.collection === undefined || facts.collection !== f.collection) this.sameCollection = false;
  }

  finish(sanitized: string): SqlFacts {
    this.endStatement();
    const f = this.first;
    this.sql = '';
    if (f === undefined) return { sanitized };
    if (this.statements === 1) return withDefined(sanitized, f.operation, f.collection, f.summary, undefined, f.procedure);
    // Several statements in one text (a simple-query message): a batch, per semconv.
    const operation = this.sameOperation && f.operation !== undefined ? `BATCH ${f.operation}` : 'BATCH';
    const summary = this.sameSummary && f.summary !== undefined && f.summary.length <= SUMMARY_MAX_CHARS - 6 ? `BATCH ${f.summary}` : 'BATCH';
    const collection = this.sameCollection ? f.collection : undefined;
    return withDefined(sanitized, operation, collection, summary, this.statements, undefined);
  }
}

/** A SqlFacts without undefined-valued keys (exactOptionalPropertyTypes, and cheaper to compare in tests). */
function withDefined(sanitized: string, operation: string | undefined, collection: string | undefined,
  summary: string | undefined, batchSize: number | undefined, storedProcedure: string | undefined): SqlFacts {
  const facts: { sanitized: string; operation?: string; collection?: string; summary?: string; batchSize?: number; storedProcedure?: string } = { sanitized };
  if (operation !== undefined) facts.operation = operation;
  if (collection !== undefined) facts.collection = collection;
  if (summary !== undefined) facts.summary = summary;
  if (batchSize !== undefined) facts.batchSize = batchSize;
  if (storedProcedure !== undefined) facts.storedProcedure = storedProcedure;
  return facts;
}

const BUILDER = new StatementBuilder();
