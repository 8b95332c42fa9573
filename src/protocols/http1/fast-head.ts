// A strict scanner for the common message head, in JavaScript over the
// captured bytes, so that the usual keep-alive exchange never crosses into
// llhttp (about 25 wasm-to-JS callbacks a request otherwise). It accepts only
// a subset of RFC 9112 that llhttp parses the same way and whose framing is
// settled by the head alone; anything else (and any head not whole in the
// bytes) is left to llhttp from the message's first byte, so the two paths
// give the same messages (test/protocols/http1/fast-head.test.ts runs both).
//
// Accepted, and nothing else:
//   request-line  = method SP origin-form SP "HTTP/1.1" CRLF
//                   (method one of GET HEAD POST PUT DELETE OPTIONS PATCH TRACE;
//                    origin-form "/" then pchar / "/" / "?" only, at most maxTargetBytes)
//   status-line   = "HTTP/1.1" SP 3DIGIT SP reason-phrase CRLF (status 200..599;
//                   reason of SP, HTAB and visible ASCII)
//   field-line    = token ":" OWS value OWS CRLF (value: SP, HTAB, visible ASCII;
//                   no obs-fold, no obs-text, no bare CR or LF)
//   then CRLF; the whole head at most maxHeaderBytes, at most maxHeaderCount lines.
// Refused (left to llhttp): HTTP/1.0 and other versions (other keep-alive
// rules), Transfer-Encoding (chunked framing), Upgrade, Connection and
// Proxy-Connection other than exactly "keep-alive" (llhttp would close or
// switch after the message), Content-Length that is not 1-15 digits or that
// appears twice (llhttp rejects duplicates), a kept header value longer than
// maxKeptValue (llhttp's path marks it overlong by the length of its pieces).

import type { Http1HeaderTable, Http1KeptHeader } from './header-names';
import type { Http1DirectionKind, Http1Limits } from './direction';
import { NO_LINES } from './message';

/** The kept header lines of one scanned head at most (past it: left to llhttp). */
export const MAX_FAST_KEPT = 32;

/** What a scan found: offsets into the scanned bytes, so a refused head allocates nothing. */
export class Http1HeadScan {
  /** Offset just past the head's final CRLF. */
  end = 0;
  /** Requests: the method (one of the accepted ones, as llhttp names it). */
  method = '';
  targetStart = 0;
  targetEnd = 0;
  /** Responses: the status code. */
  status = 0;
  /** Kept header lines: count, then (name, value start, value end) each, values without OWS. */
  kept = 0;
  readonly keptNames: (Http1KeptHeader | undefined)[] = new Array<Http1KeptHeader | undefined>(MAX_FAST_KEPT).fill(undefined);
  readonly keptSpans = new Int32Array(2 * MAX_FAST_KEPT);
}

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HTAB = 0x09;
const COLON = 0x3a;

/** Character classes, one bit each. */
const TOKEN = 1;
const TARGET = 2;
/** Visible ASCII (0x21..0x7e): field values and reason phrases, with SP and HTAB. */
const VCHAR = 4;
const CLASS = new Uint8Array(256);
for (let b = 0x21; b < 0x7f; b++) CLASS[b]! |= VCHAR;
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") CLASS[c.charCodeAt(0)]! |= TOKEN;
// origin-form = absolute-path [ "?" query ]: pchar (unreserved, pct-encoded, sub-delims, ":", "@"), "/" and "?".
for (const c of "-._~!$&'()*+,;=:@/%?0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") CLASS[c.charCodeAt(0)]! |= TARGET;

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE'].map((name) => ({ name, bytes: Buffer.from(name, 'latin1') }));
const HTTP11 = Buffer.from('HTTP/1.1', 'latin1');
const CONNECTION = Buffer.from('connection', 'latin1');
const PROXY_CONNECTION = Buffer.from('proxy-connection', 'latin1');
const KEEP_ALIVE = Buffer.from('keep-alive', 'latin1');

/** data[at..at+name.length) is `name` (lower case), ASCII letters in any case. */
function sameToken(data: Uint8Array, at: number, name: Uint8Array): boolean {
  for (let i = 0; i < name.length; i++) {
    const b = data[at + i]!;
    const c = name[i]!;
    if (b !== c && !(c >= 0x61 && c <= 0x7a && b === c - 0x20)) return false;
  }
  return true;
}

function sameBytes(data: Uint8Array, at: number, bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (data[at + i] !== bytes[i]) return false;
  return true;
}

/**
 * Scans a head starting at `data[off]` (a message start). Returns the offset
 * just past it with `out` filled, or -1: not a head this path takes (or not
 * whole in `data`); llhttp must parse it.
 */
export function scanHead(kind: Http1DirectionKind, data: Uint8Array, off: number, names: Http1HeaderTable, limits: Http1Limits, out: Http1HeadScan): number {
  const n = data.length;
  // Never look past the head bound: a longer head is llhttp's (and its bound's).
  const limit = Math.min(n, off + limits.maxHeaderBytes);
  let i = kind === 'request' ? requestLine(data, off, limit, limits, out) : statusLine(data, off, limit, out);
  if (i < 0) return -1;
  out.kept = 0;
  let lines = 0;
  let contentLength = false;
  const byLength = names.byLength;
  for (;;) {
    if (i + 1 >= limit) return -1;
    if (data[i] === CR) {
      if (data[i + 1] !== LF) return -1;
      out.end = i + 2;
      return out.end;
    }
    if (++lines > limits.maxHeaderCount) return -1;
    // field-name = token, then ":" at once (no whitespace before it).
    const nameStart = i;
    while (i < limit && (CLASS[data[i]!]! & TOKEN) !== 0) i++;
    const nameLen = i - nameStart;
    if (nameLen === 0 || i >= limit || data[i] !== COLON) return -1;
    i++;
    while (i < limit && (data[i] === SP || data[i] === HTAB)) i++;
    const valueStart = i;
    let valueEnd = i;
    for (;;) {
      if (i >= limit) return -1;
      const b = data[i]!;
      if ((CLASS[b]! & VCHAR) !== 0) valueEnd = ++i;
      else if (b === SP || b === HTAB) i++;
      else break;
    }
    if (data[i] !== CR || i + 1 >= limit || data[i + 1] !== LF) return -1;
    const lineEnd = i;
    i += 2;
    // Names llhttp acts on: Connection / Proxy-Connection only as "keep-alive".
    if ((nameLen === 10 && sameToken(data, nameStart, CONNECTION)) || (nameLen === 16 && sameToken(data, nameStart, PROXY_CONNECTION))) {
      if (valueEnd - valueStart !== KEEP_ALIVE.length || !sameToken(data, valueStart, KEEP_ALIVE)) return -1;
      continue;
    }
    const candidates = byLength[nameLen];
    if (candidates === undefined) continue;
    let kept: Http1KeptHeader | undefined;
    for (let c = 0; c < candidates.length; c++) {
      const cand = candidates[c]!;
      if (sameToken(data, nameStart, cand.bytes)) {
        // A captured name would need header capture's rules: llhttp's path has them.
        if (cand.capture >= 0) return -1;
        kept = cand.kept;
        break;
      }
    }
    if (kept === undefined) continue;
    if (kept === 'transfer-encoding' || kept === 'upgrade') return -1;
    if (lineEnd - (nameStart + nameLen + 1) > limits.maxKeptValue) return -1;
    if (kept === 'content-length') {
      if (contentLength) return -1;
      contentLength = true;
      const len = valueEnd - valueStart;
      if (len === 0 || len > 15) return -1;
      for (let k = valueStart; k < valueEnd; k++) if (data[k]! < 0x30 || data[k]! > 0x39) return -1;
    }
    if (out.kept === MAX_FAST_KEPT) return -1;
    out.keptNames[out.kept] = kept;
    out.keptSpans[2 * out.kept] = valueStart;
    out.keptSpans[2 * out.kept + 1] = valueEnd;
    out.kept++;
  }
}

/** method SP origin-form SP HTTP/1.1 CRLF at `off`; the offset after it, or -1. */
function requestLine(data: Uint8Array, off: number, limit: number, limits: Http1Limits, out: Http1HeadScan): number {
  let i = off;
  while (i < limit && i - off < 8 && data[i]! >= 0x41 && data[i]! <= 0x5a) i++;
  if (i >= limit || data[i] !== SP) return -1;
  const len = i - off;
  let method: string | undefined;
  for (let k = 0; k < METHODS.length; k++) {
    const m = METHODS[k]!;
    if (m.bytes.length === len && sameBytes(data, off, m.bytes)) {
      method = m.name;
      break;
    }
  }
  if (method === undefined) return -1;
  i++;
  const targetStart = i;
  if (i >= limit || data[i] !== 0x2f) return -1;
  while (i < limit && (CLASS[data[i]!]! & TARGET) !== 0) i++;
  if (i - targetStart > limits.maxTargetBytes) return -1;
  const targetEnd = i;
  if (i + 11 > limit || data[i] !== SP) return -1;
  i++;
  if (!sameBytes(data, i, HTTP11)) return -1;
  i += HTTP11.length;
  if (data[i] !== CR || data[i + 1] !== LF) return -1;
  out.method = method;
  out.targetStart = targetStart;
  out.targetEnd = targetEnd;
  out.status = 0;
  return i + 2;
}

/** HTTP/1.1 SP 3DIGIT SP reason CRLF at `off` (status 200..599); the offset after it, or -1. */
function statusLine(data: Uint8Array, off: number, limit: number, out: Http1HeadScan): number {
  if (off + 13 > limit || !sameBytes(data, off, HTTP11) || data[off + 8] !== SP || data[off + 12] !== SP) return -1;
  const d0 = data[off + 9]! - 0x30;
  const d1 = data[off + 10]! - 0x30;
  const d2 = data[off + 11]! - 0x30;
  if (d0 < 2 || d0 > 5 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) return -1;
  let i = off + 13;
  while (i < limit && ((CLASS[data[i]!]! & VCHAR) !== 0 || data[i] === SP || data[i] === HTAB)) i++;
  if (i + 1 >= limit || data[i] !== CR || data[i + 1] !== LF) return -1;
  out.status = d0 * 100 + d1 * 10 + d2;
  out.method = '';
  return i + 2;
}

/** Longest value kept for reuse (a few long unique values must not stay pinned by idle connections). */
export const MAX_RECENT_TEXT = 256;

/**
 * The last target and kept values one direction read from scanned heads. A
 * keep-alive connection repeats them on every message: equal bytes give the
 * same string, and the same frozen one-line list, instead of new ones.
 */
export class Http1RecentValues {
  target = '';
  contentLength = '';
  host: readonly string[] = NO_LINES;
  userAgent: readonly string[] = NO_LINES;
}

/** `text` when data[start..end) is exactly its characters (scanned bytes are ASCII), else those bytes as a new string. */
export function recentText(text: string, data: Buffer & LatinSlicer, start: number, end: number): string {
  const n = end - start;
  if (n === text.length) {
    let i = 0;
    while (i < n && text.charCodeAt(i) === data[start + i]) i++;
    if (i === n) return text;
  }
  return data.latin1Slice(start, end);
}

/** `lines` when its one line is data[start..end), else a new frozen one-line list of those bytes. */
export function recentLines(lines: readonly string[], data: Buffer & LatinSlicer, start: number, end: number): readonly string[] {
  const prev = lines.length === 1 ? lines[0]! : '';
  const text = recentText(prev, data, start, end);
  return text === prev && lines.length === 1 ? lines : Object.freeze([text]);
}

/** Buffer's latin1 decoder (present on every Buffer; not in @types/node). */
export interface LatinSlicer {
  latin1Slice(start: number, end: number): string;
}
