// A PostgreSQL call (one simple Query, or one Execute) to its L7 record by
// the shared database rules (../db/semantics.ts): what is PostgreSQL's here
// is where each attribute comes from on the wire.

import type { CallKind, ConnectionInfo, L7Record, SpanAttributes } from '../types';
import { dbRecord, errorMessageFor, queryTextFor, type DbCall, type DbOptions } from '../db/semantics';
import { sqlFacts } from '../db/sql';

/** Span attribute: the user name of the StartupMessage (db.user left the conventions; not a metric attribute). */
export const ATTR_PG_USER = 'ebpf_otel.db.user';
/** Span attribute: the response's end was lost to a capture gap (its outcome and rows unknown, the span ends at the last response byte seen); as MySQL's. */
export const ATTR_PG_RESPONSE_INCOMPLETE = 'ebpf_otel.db.response.incomplete';
/** Span attribute: rows an INSERT, UPDATE, DELETE or MERGE changed (its CommandComplete tag); the conventions name none; as MySQL's. */
export const ATTR_PG_AFFECTED_ROWS = 'ebpf_otel.db.affected_rows';

export interface PgRecordContext {
  readonly conn: ConnectionInfo;
  readonly kind: CallKind;
  readonly options: DbOptions;
  /** From the StartupMessage: `database` (defaults to the user), `user`. */
  database: string | undefined;
  user: string | undefined;
}

/** What a call gathered from its request to its end. */
export class PgCall {
  /** Rows sent back (DataRow messages), CopyData rows by the `COPY n` tag. */
  rows = 0;
  /** It returned a result (a RowDescription came for it, or rows, or a SELECT, FETCH or COPY tag): only then are rows recorded. */
  resultSet = false;
  /** Rows the tags of SELECT, FETCH and COPY reported, summed (the count when DataRows were lost), and whether one came. */
  taggedRows = 0;
  sawRowTag = false;
  /** Part of the response was lost to a capture gap: DataRows not all counted, statements not all seen. */
  responseLost = false;
  /** The end of the response was never seen: the client's next request proved it over. */
  endUnseen = false;
  /** Rows an INSERT/UPDATE/DELETE/MERGE reported in its tag, summed. */
  affected = 0;
  /** Whether a tag with an affected-row count came. */
  sawAffected = false;
  /** CommandComplete and EmptyQueryResponse messages (statements a Query ran). */
  completed = 0;
  /** The first CommandComplete tag's command (`SELECT`, `CREATE TABLE`): the operation when the text is unknown. */
  tagCommand: string | undefined;
  /** An ErrorResponse ended it. */
  failed = false;
  /** Its SQLSTATE (`C` field) and message (`M`). */
  errorCode: string | undefined;
  errorMessage: string | undefined;
  /** The last time a response byte for it moved (for the timeout). */
  lastNs: number;

  constructor(
    readonly sequence: number,
    readonly startNs: number,
    /** The SQL text as sent; undefined when not known (statement never seen, text lost). */
    readonly sql: string | undefined,
    /** An execution of a statement the agent never saw. */
    readonly unknownStatement: boolean,
  ) {
    this.lastNs = startNs;
  }

  /** Takes a CommandComplete tag (`SELECT 5`, `INSERT 0 3`, `COPY 10000`, `CREATE TABLE`). */
  tag(tag: string): void {
    this.completed++;
    const space = tag.lastIndexOf(' ');
    const count = space > 0 ? digits(tag, space + 1) : -1;
    const hasCount = count >= 0;
    let command = hasCount ? tag.slice(0, space) : tag;
    // INSERT's tag is `INSERT oid rows`.
    if (command.startsWith('INSERT ')) command = 'INSERT';
    this.tagCommand ??= command;
    if (!hasCount) return;
    switch (command) {
      case 'COPY':
        this.rows += count;
        this.taggedRows += count;
        this.sawRowTag = true;
        this.resultSet = true;
        break;
      case 'SELECT':
      case 'FETCH':
        this.taggedRows += count;
        this.sawRowTag = true;
        this.resultSet = true;
        break;
      case 'INSERT':
      case 'UPDATE':
      case 'DELETE':
      case 'MERGE':
        this.affected += count;
        this.sawAffected = true;
        break;
    }
  }
}

/** The decimal number `s` holds from `from` to its end, or -1 (none, or not only digits). */
function digits(s: string, from: number): number {
  if (from >= s.length || s.length - from > 15) return -1;
  let n = 0;
  for (let i = from; i < s.length; i++) {
    const d = s.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/** How a call ended without its response (no SQLSTATE). */
export type PgEnding = 'timeout' | 'connection_closed';

/** The record of a call that ended at `endNs`. */
export function buildPgRecord(ctx: PgRecordContext, c: PgCall, endNs: number, ending?: PgEnding): L7Record {
  let operation: string | undefined;
  let collection: string | undefined;
  let summary: string | undefined;
  let queryText: string | undefined;
  if (c.sql !== undefined) {
    const facts = sqlFacts(c.sql, 'postgresql');
    operation = facts.operation;
    collection = facts.collection;
    summary = facts.summary;
    queryText = queryTextFor(ctx.options.queryText, c.sql, facts);
  } else operation = c.tagCommand;
  // Built field by field (no spreads): one object per record on the hot path.
  const call: { -readonly [K in keyof DbCall]: DbCall[K] } = { system: 'postgresql' };
  if (ctx.database !== undefined) call.namespace = ctx.database;
  if (operation !== undefined) call.operation = operation;
  if (collection !== undefined) call.collection = collection;
  if (summary !== undefined) call.summary = summary;
  if (queryText !== undefined) call.queryText = queryText;
  if (c.errorCode !== undefined) call.statusCode = c.errorCode;
  // error.type: the SQLSTATE (the conventions' advice for a database error), '_OTHER' for an ErrorResponse without one.
  if (c.failed) call.errorType = c.errorCode ?? '_OTHER';
  else if (ending !== undefined) call.errorType = ending;
  // M quotes values (`invalid input syntax for type integer: "..."`): scrubbed unless the raw text is exported.
  if (c.errorMessage !== undefined) call.statusMessage = errorMessageFor(ctx.options.queryText, c.errorMessage);
  const failed = c.failed || ending !== undefined;
  // Rows are known only for a call that ran to its end; after a lost part of the response, only from the tags.
  if (!failed && !c.responseLost && c.completed > 0 && (c.resultSet || c.rows > 0)) call.returnedRows = c.rows;
  if (!failed && c.responseLost && c.sawRowTag) call.returnedRows = c.taggedRows;
  if (c.completed >= 2 && !c.responseLost) call.batchSize = c.completed;
  if (ctx.user !== undefined || c.sawAffected || c.endUnseen) {
    const extra: SpanAttributes = {};
    if (ctx.user !== undefined) extra[ATTR_PG_USER] = ctx.user;
    if (c.sawAffected) extra[ATTR_PG_AFFECTED_ROWS] = c.affected;
    if (c.endUnseen) extra[ATTR_PG_RESPONSE_INCOMPLETE] = true;
    call.extra = extra;
  }
  return dbRecord('postgres', ctx.conn, ctx.kind, call, c.startNs, endNs, c.sequence);
}
