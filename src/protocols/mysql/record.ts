// A finished MySQL command to its L7Record, through the shared database
// record builder (../db/semantics.ts): the statement's facts from the SQL
// helper (../db/sql.ts), the schema, the user, row counts and the error.

import { dbRecord, errorMessageFor, queryTextFor, type DbCall, type DbOptions } from '../db/semantics';
import { sqlFacts } from '../db/sql';
import type { CallKind, ConnectionInfo, L7Record, SpanAttributes } from '../types';
import type { MysqlSystem } from './handshake';

/** What a session knows of one finished command. */
export interface MysqlOutcome {
  readonly sequence: number;
  readonly startNs: number;
  readonly endNs: number;
  /** The statement text: COM_QUERY's, the prepare's, or the prepared statement an execute ran (undefined: never seen). */
  readonly sql: string | undefined;
  readonly namespace: string | undefined;
  readonly user: string | undefined;
  readonly command: number;
  /** Rows of its result sets, when counted exactly. */
  readonly rows: number | undefined;
  /** Affected rows reported by its OK packets. */
  readonly affected: number | undefined;
  readonly resultSets: number;
  /** The answer's packet boundaries were lost (capture gap): row counts unknown. */
  readonly incomplete: boolean;
  readonly errCode: number | undefined;
  readonly sqlState: string | undefined;
  readonly message: string | undefined;
  /** Given up without an answer. */
  readonly timeout: 'timeout' | 'connection_closed' | undefined;
}

export function mysqlRecord(conn: ConnectionInfo, kind: CallKind, system: MysqlSystem, options: DbOptions, o: MysqlOutcome): L7Record {
  const extra: SpanAttributes = {};
  if (o.user !== undefined) extra['ebpf_otel.db.user'] = o.user;
  if (o.affected !== undefined) extra['ebpf_otel.db.affected_rows'] = o.affected;
  if (o.resultSets > 1) extra['ebpf_otel.db.mysql.result_sets'] = o.resultSets;
  if (o.sqlState !== undefined) extra['ebpf_otel.db.mysql.sqlstate'] = o.sqlState;
  if (o.incomplete) extra['ebpf_otel.db.response.incomplete'] = true;
  const call: { -readonly [K in keyof DbCall]: DbCall[K] } = { system, extra };
  if (o.namespace !== undefined) call.namespace = o.namespace;
  if (o.sql !== undefined) {
    const facts = sqlFacts(o.sql, 'mysql');
    const text = queryTextFor(options.queryText ?? 'sanitized', o.sql, facts);
    if (text !== undefined) call.queryText = text;
    if (facts.operation !== undefined) call.operation = facts.operation;
    if (facts.collection !== undefined) call.collection = facts.collection;
    if (facts.summary !== undefined) call.summary = facts.summary;
    if (facts.batchSize !== undefined) call.batchSize = facts.batchSize;
  }
  if (o.rows !== undefined) call.returnedRows = o.rows;
  if (o.errCode !== undefined) {
    call.statusCode = String(o.errCode);
    call.errorType = String(o.errCode);
    if (o.message !== undefined && o.message !== '') call.statusMessage = errorMessageFor(options.queryText, o.message);
  } else if (o.timeout !== undefined) call.errorType = o.timeout;
  return dbRecord('mysql', conn, kind, call, o.startNs, o.endNs, o.sequence);
}
