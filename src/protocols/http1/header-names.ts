// The header names a direction looks for: those records use (Host,
// traceparent, ...) and those the user asked to capture as
// http.{request,response}.header.<name> span attributes. Resolved once per
// options object: redaction is applied here, so the parser never sees a
// redacted name as captured and makes no per-header policy decision.

import { DEFAULT_REDACTED_HEADERS } from '../types';
import type { Http1Options } from './config';

/** Header names whose values records use. */
export type Http1KeptHeader = 'host' | 'user-agent' | 'traceparent' | 'tracestate' | 'content-length' | 'transfer-encoding' | 'upgrade';
const KEPT: readonly Http1KeptHeader[] = ['host', 'user-agent', 'traceparent', 'tracestate', 'content-length', 'transfer-encoding', 'upgrade'];

export interface Http1HeaderName {
  /** Lower case. */
  readonly name: string;
  readonly bytes: Uint8Array;
  /** Records use its value. */
  readonly kept: Http1KeptHeader | undefined;
  /** Index in the direction's captured names; -1 when not captured. */
  readonly capture: number;
}

/** The names one direction (requests or responses) matches, by length. */
export interface Http1HeaderTable {
  readonly byLength: readonly (readonly Http1HeaderName[] | undefined)[];
  /** Length of the longest name (a longer header name is never copied whole). */
  readonly longest: number;
  /** Span attribute key of each captured name, by capture index. */
  readonly attributes: readonly string[];
}

export interface Http1HeaderTables {
  readonly request: Http1HeaderTable;
  readonly response: Http1HeaderTable;
}

/**
 * A header name as a token in lower case, or undefined when it cannot be one
 * (RFC 9110 §5.1: field-name = token; llhttp rejects other names, so such a
 * name could never match).
 */
function tokenName(name: string): string | undefined {
  const n = name.toLowerCase();
  return /^[!#$%&'*+\-.^_`|~0-9a-z]+$/.test(n) ? n : undefined;
}

function table(captured: readonly string[], attributePrefix: string): Http1HeaderTable {
  const byLength: Http1HeaderName[][] = [];
  const attributes: string[] = [];
  const capture = new Map<string, number>();
  for (const n of captured) {
    if (capture.has(n)) continue;
    capture.set(n, attributes.length);
    attributes.push(`${attributePrefix}${n}`);
  }
  const names = new Set<string>([...KEPT, ...capture.keys()]);
  let longest = 0;
  for (const name of names) {
    const kept = (KEPT as readonly string[]).includes(name) ? (name as Http1KeptHeader) : undefined;
    (byLength[name.length] ??= []).push({ name, bytes: Buffer.from(name, 'latin1'), kept, capture: capture.get(name) ?? -1 });
    longest = Math.max(longest, name.length);
  }
  return { byLength, longest, attributes };
}

/** Kept names only: what a session without header capture matches. */
export const HTTP1_DEFAULT_HEADER_TABLES: Http1HeaderTables = { request: table([], ''), response: table([], '') };

/** One resolution per options object (the tracker passes the same options to every session). */
const resolved = new WeakMap<Http1Options, Http1HeaderTables>();

/** The tables for `options`: captured names minus redacted ones (redaction wins). */
export function headerTables(options: Http1Options): Http1HeaderTables {
  const c = options.captureHeaders;
  if (c === undefined || (c.request.length === 0 && c.response.length === 0)) return HTTP1_DEFAULT_HEADER_TABLES;
  let t = resolved.get(options);
  if (t !== undefined) return t;
  const redacted = new Set<string>();
  for (const n of options.redactHeaders ?? DEFAULT_REDACTED_HEADERS) redacted.add(n.toLowerCase());
  const allowed = (names: readonly string[]): string[] => {
    const out: string[] = [];
    for (const n of names) {
      const name = tokenName(n);
      if (name !== undefined && !redacted.has(name)) out.push(name);
    }
    return out;
  };
  t = {
    request: table(allowed(c.request), 'http.request.header.'),
    response: table(allowed(c.response), 'http.response.header.'),
  };
  resolved.set(options, t);
  return t;
}
