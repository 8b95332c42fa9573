// Database semantics that do not depend on the wire protocol: the OpenTelemetry
// database conventions (semantic-conventions v1.44.0: docs/db/database-spans.md,
// docs/db/database-metrics.md, docs/db/sql.md, docs/db/redis.md; the span and
// metric parts used here are stable, Redis's are at Development status)
// turned into one record builder, so that PostgreSQL, MySQL/MariaDB and Redis
// records are made by the same rules.
//
// Two deliberate departures, both toward leaking less and telling more:
// - db.operation.name and db.collection.name: the SQL conventions advise not
//   to extract them from the query text; an agent on the wire has no other
//   source, so sql.ts gives them only where the text leaves no doubt (one
//   statement, one table), beside the summary the conventions do derive
//   from text.
// - db.query.text is sanitized even for parameterized statements (the
//   conventions would send those as written): a statement with `$1` can still
//   hold literals, and no user data leaves the host unless the user opts in.

import type { Attributes, CallKind, CommonProtocolOptions, ConnectionInfo, InstrumentSpec, L7Record, RecordMeasurement, SpanAttributes } from '../types';

// The conventions' advice for db.client.operation.duration.
const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10] as const;

export const DB_OPERATION_DURATION: InstrumentSpec = {
  name: 'db.client.operation.duration',
  unit: 's',
  description: 'Duration of database client operations.',
  boundaries: DURATION_BUCKETS,
};

/**
 * The conventions define no server-side database metric; when only the
 * database server is traced its operations are measured under our own name,
 * with the client metric's attributes.
 */
export const DB_SERVER_OPERATION_DURATION: InstrumentSpec = {
  name: 'ebpf_otel.db.server.operation.duration',
  unit: 's',
  description: 'Duration of database operations as the database server answered them (measured at the server: no conventional metric exists).',
  boundaries: DURATION_BUCKETS,
};

export const DB_INSTRUMENTS: readonly InstrumentSpec[] = [DB_OPERATION_DURATION, DB_SERVER_OPERATION_DURATION];

export const QUERY_TEXT_MODES = ['sanitized', 'raw', 'off'] as const;
/** What db.query.text carries: literals replaced by `?` (default), the text as sent (opt-in: user data leaves the host), or nothing. */
export type QueryTextMode = (typeof QUERY_TEXT_MODES)[number];

export interface DbOptions extends CommonProtocolOptions {
  readonly queryText: QueryTextMode;
}

/** The text to export as db.query.text under `mode`; undefined: none. */
export function queryTextFor(mode: QueryTextMode, raw: string, facts: { readonly sanitized: string }): string | undefined {
  return mode === 'sanitized' ? facts.sanitized : mode === 'raw' ? raw : undefined;
}

/** `other_sql`: a MySQL-protocol server the agent could not name (joined mid-stream). */
export type DbSystem = 'postgresql' | 'mysql' | 'mariadb' | 'other_sql' | 'redis';

/** One database call as a protocol session parsed it; dbRecord() makes the record. */
export interface DbCall {
  /** db.system.name. */
  readonly system: DbSystem;
  /** db.namespace: the database (PostgreSQL), schema (MySQL) or database index (Redis) in use. */
  readonly namespace?: string;
  readonly operation?: string;
  /** db.collection.name: only when the call names exactly one. */
  readonly collection?: string;
  /** db.query.summary. */
  readonly summary?: string;
  /** db.query.text, already chosen by the options (queryTextFor or the protocol's own rule). */
  readonly queryText?: string;
  /** db.response.status_code: SQLSTATE, MySQL error number, Redis error prefix. */
  readonly statusCode?: string;
  /** error.type when the call failed: its presence makes the span status error. */
  readonly errorType?: string;
  /** The server's error message (span status message). */
  readonly statusMessage?: string;
  /** db.response.returned_rows. */
  readonly returnedRows?: number;
  /** db.operation.batch.size (recorded from 2 up, as the conventions say). */
  readonly batchSize?: number;
  /** Protocol-specific span attributes (never metric attributes). */
  readonly extra?: SpanAttributes;
}

/**
 * A server error message without the values it quotes. Servers quote user
 * data in their messages (MySQL `Duplicate entry '...' for key '...'` and a
 * syntax error's `near '<the statement from there>' at line 1`, which holds
 * the literals and quotes of its own; PostgreSQL `invalid input syntax for
 * type integer: "..."`; Redis `unknown command '...'`), so every quoted run
 * becomes `'?'` (or `"?"`). A run opens at a quote after the
 * start, a space or `(` and closes at the last quote before ` at line N` (the
 * syntax error form) or else at the first quote followed by the end, a space
 * or punctuation; an apostrophe inside a word (`doesn't`) opens nothing. A
 * run that never closes takes the rest of the message.
 */
export function scrubErrorMessage(message: string): string {
  let out = '';
  let i = 0;
  const n = message.length;
  while (i < n) {
    const c = message[i]!;
    const opens = (c === "'" || c === '"') && (i === 0 || message[i - 1] === ' ' || message[i - 1] === '(');
    if (!opens) {
      out += c;
      i++;
      continue;
    }
    let close = -1;
    if (message.startsWith('near ', i - 5)) {
      const m = /' at line \d+$/.exec(message.slice(i + 1));
      if (m !== null) close = i + 1 + m.index;
    }
    if (close < 0) {
      for (let k = i + 1; k < n; k++) {
        if (message[k] !== c) continue;
        const next = message[k + 1];
        if (next === undefined || /[\s,.;:)]/.test(next)) {
          close = k;
          break;
        }
      }
    }
    out += `${c}?${c}`;
    if (close < 0) break;
    i = close + 1;
  }
  return out;
}

/** The server's error message as exported under `mode`: as sent only when the raw query text is (the message can quote it). */
export function errorMessageFor(mode: QueryTextMode, message: string): string {
  return mode === 'raw' ? message : scrubErrorMessage(message);
}

/** Bounds of exported texts: a bulk INSERT can be megabytes. */
export const DB_QUERY_TEXT_MAX = 8192;
export const DB_STATUS_MESSAGE_MAX = 512;

/** A prefix of `s` of at most `max` UTF-16 units that does not end inside a surrogate pair. */
function bounded(s: string, max: number): string {
  if (s.length <= max) return s;
  const code = s.charCodeAt(max - 1);
  return s.slice(0, code >= 0xd800 && code <= 0xdbff ? max - 1 : max);
}

/** The span name: summary, else `{operation} {collection}`, else operation, else the system (database-spans.md "Name"). */
export function dbSpanName(call: DbCall): string {
  if (call.summary !== undefined) return call.summary;
  if (call.operation !== undefined) return call.collection !== undefined ? `${call.operation} ${call.collection}` : call.operation;
  return call.system;
}

// Metric attribute sets: frozen, shared by every record with the same values,
// found in a direct-mapped table (a collision is a miss, never a wrong set).
const METRIC_SLOTS = 64;

interface MetricSlot {
  readonly system: string;
  readonly namespace: string | undefined;
  readonly operation: string | undefined;
  readonly collection: string | undefined;
  readonly summary: string | undefined;
  readonly statusCode: string | undefined;
  readonly errorType: string | undefined;
  readonly address: string;
  readonly port: number;
  readonly attributes: Attributes;
}

const metricSlots: (MetricSlot | undefined)[] = new Array<MetricSlot | undefined>(METRIC_SLOTS).fill(undefined);

function hashOf(s: string | undefined): number {
  return s === undefined ? 0 : s.length * 31 + s.charCodeAt(0) + s.charCodeAt(s.length - 1);
}

function metricAttributes(call: DbCall, address: string, port: number): Attributes {
  const h =
    (hashOf(call.system) + hashOf(call.namespace) * 3 + hashOf(call.operation) * 5 + hashOf(call.collection) * 7 + hashOf(call.summary) * 11 + hashOf(call.statusCode) * 13 + port) &
    (METRIC_SLOTS - 1);
  const s = metricSlots[h];
  if (
    s !== undefined &&
    s.system === call.system &&
    s.namespace === call.namespace &&
    s.operation === call.operation &&
    s.collection === call.collection &&
    s.summary === call.summary &&
    s.statusCode === call.statusCode &&
    s.errorType === call.errorType &&
    s.address === address &&
    s.port === port
  ) {
    return s.attributes;
  }
  const a: Attributes = { 'db.system.name': call.system };
  if (call.namespace !== undefined) a['db.namespace'] = call.namespace;
  if (call.operation !== undefined) a['db.operation.name'] = call.operation;
  if (call.collection !== undefined) a['db.collection.name'] = call.collection;
  if (call.summary !== undefined) a['db.query.summary'] = call.summary;
  if (call.statusCode !== undefined) a['db.response.status_code'] = call.statusCode;
  if (call.errorType !== undefined) a['error.type'] = call.errorType;
  a['server.address'] = address;
  a['server.port'] = port;
  Object.freeze(a);
  metricSlots[h] = {
    system: call.system,
    namespace: call.namespace,
    operation: call.operation,
    collection: call.collection,
    summary: call.summary,
    statusCode: call.statusCode,
    errorType: call.errorType,
    address,
    port,
    attributes: a,
  };
  return a;
}

/**
 * The record of one call: span name and attributes per the conventions,
 * server.* from the connection (the peer for a client, the process itself
 * for a server), status error exactly when `errorType` is set, and the
 * operation duration with low-cardinality attributes only (no query text,
 * no keys, no user).
 */
export function dbRecord(protocol: string, conn: ConnectionInfo, kind: CallKind, call: DbCall, startNs: number, endNs: number, sequence: number): L7Record {
  const client = kind === 'client';
  const address = client ? conn.remoteAddr : conn.localAddr;
  const port = client ? conn.remotePort : conn.localPort;
  const attributes: SpanAttributes = { 'db.system.name': call.system };
  if (call.namespace !== undefined) attributes['db.namespace'] = call.namespace;
  if (call.operation !== undefined) attributes['db.operation.name'] = call.operation;
  if (call.collection !== undefined) attributes['db.collection.name'] = call.collection;
  if (call.summary !== undefined) attributes['db.query.summary'] = call.summary;
  if (call.queryText !== undefined) attributes['db.query.text'] = bounded(call.queryText, DB_QUERY_TEXT_MAX);
  if (call.statusCode !== undefined) attributes['db.response.status_code'] = call.statusCode;
  if (call.returnedRows !== undefined) attributes['db.response.returned_rows'] = call.returnedRows;
  if (call.batchSize !== undefined && call.batchSize >= 2) attributes['db.operation.batch.size'] = call.batchSize;
  if (call.errorType !== undefined) attributes['error.type'] = call.errorType;
  attributes['server.address'] = address;
  attributes['server.port'] = port;
  if (client) {
    attributes['network.peer.address'] = conn.remoteAddr;
    attributes['network.peer.port'] = conn.remotePort;
  } else {
    attributes['client.address'] = conn.remoteAddr;
    attributes['client.port'] = conn.remotePort;
  }
  if (call.extra !== undefined) Object.assign(attributes, call.extra);
  const measurements: RecordMeasurement[] = [
    { instrument: client ? DB_OPERATION_DURATION : DB_SERVER_OPERATION_DURATION, value: (endNs - startNs) / 1e9, attributes: metricAttributes(call, address, port) },
  ];
  const base = { protocol, kind, connId: conn.connId, tgid: conn.tgid, startNs, endNs, name: dbSpanName(call), attributes, sequence, measurements };
  if (call.errorType === undefined) return { ...base, status: 'unset' };
  // Absent, not undefined, when there is no message: records are compared as JSON-like values.
  return call.statusMessage !== undefined
    ? { ...base, status: 'error', errorType: call.errorType, statusMessage: bounded(call.statusMessage, DB_STATUS_MESSAGE_MAX) }
    : { ...base, status: 'error', errorType: call.errorType };
}
