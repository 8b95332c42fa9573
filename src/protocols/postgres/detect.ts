// Recognises PostgreSQL (protocol 3.x): a client's first message from the
// start of a connection, and, joined mid-stream, a syscall's bytes that are
// whole messages and nothing else. See README.md "Detection".

import type { ConnectionInfo, Detection, Side } from '../types';
import {
  cstringEnd, PG_CANCEL_REQUEST, PG_GSSENC_REQUEST, PG_MAX_CANCEL_LENGTH, PG_MAX_MINOR, PG_MAX_STARTUP_LENGTH, PG_MIN_CANCEL_LENGTH,
  PG_PROTOCOL_3_0, PG_SSL_REQUEST, PG_TYPED_HEADER, PG_UNTYPED_HEADER, readI16, readI32,
} from './wire';

/** What the first untyped message of a client is. */
export type PgStartKind = 'startup' | 'ssl' | 'gssenc' | 'cancel';

/**
 * The first message of a client: 'more' while it could still be one, 'no'
 * when it cannot. A StartupMessage must be whole and well formed (name/value
 * C strings, a `user`, the closing NUL) before it matches: 8 bytes of
 * length and version alone are too weak a proof.
 */
export function classifyStart(b: Uint8Array): PgStartKind | 'more' | 'no' {
  if (b.length < 4) return prefixCouldStart(b) ? 'more' : 'no';
  const length = readI32(b, 0);
  if (length < PG_UNTYPED_HEADER || length > PG_MAX_STARTUP_LENGTH) return 'no';
  if (b.length < PG_UNTYPED_HEADER) return 'more';
  const code = readI32(b, 4);
  if (code === PG_SSL_REQUEST) return length === 8 ? 'ssl' : 'no';
  if (code === PG_GSSENC_REQUEST) return length === 8 ? 'gssenc' : 'no';
  if (code === PG_CANCEL_REQUEST) return length >= PG_MIN_CANCEL_LENGTH && length <= PG_MAX_CANCEL_LENGTH ? (b.length >= length ? 'cancel' : 'more') : 'no';
  if (code >>> 16 !== PG_PROTOCOL_3_0 >>> 16 || (code & 0xffff) > PG_MAX_MINOR) return 'no';
  if (b.length < length) return 'more';
  return startupParameters(b, length) !== undefined ? 'startup' : 'no';
}

/** Whether 1 to 3 bytes can begin a startup-style length (at most PG_MAX_STARTUP_LENGTH: the high bytes are 0). */
function prefixCouldStart(b: Uint8Array): boolean {
  if (b.length >= 1 && b[0] !== 0) return false;
  if (b.length >= 2 && b[1] !== 0) return false;
  if (b.length >= 3 && b[2]! > (PG_MAX_STARTUP_LENGTH >> 8)) return false;
  return true;
}

/**
 * The name/value pairs of a whole StartupMessage of `length` bytes, or
 * undefined when it is not one: pairs of non-empty printable names and
 * values, a closing NUL exactly at the end, a `user` among them.
 */
export function startupParameters(b: Uint8Array, length: number): Map<string, string> | undefined {
  const out = new Map<string, string>();
  let p = PG_UNTYPED_HEADER;
  const end = length;
  while (p < end - 1) {
    const n = cstringEnd(b, p, end);
    if (n <= p) return undefined;
    const v = cstringEnd(b, n + 1, end);
    if (v < 0) return undefined;
    for (let i = p; i < n; i++) if (b[i]! < 0x20 || b[i] === 0x7f) return undefined;
    out.set(Buffer.from(b.buffer, b.byteOffset + p, n - p).toString('latin1'), Buffer.from(b.buffer, b.byteOffset + n + 1, v - n - 1).toString('utf8'));
    p = v + 1;
  }
  if (p !== end - 1 || b[end - 1] !== 0) return undefined;
  return out.has('user') ? out : undefined;
}

/**
 * Checks the frontend message at `p` as one a client sends after startup,
 * whole inside `b[..end)`: returns the position after it, -1 when it is not
 * one, -2 when it runs past `end`. Copy, password and function-call
 * messages are refused: they prove nothing (a CopyData holds any bytes).
 */
export function checkFrontMessage(b: Uint8Array, p: number, end: number): number {
  if (p + PG_TYPED_HEADER > end) return end - p >= 1 && !isProvingFront(b[p]!) ? -1 : -2;
  const type = b[p]!;
  if (!isProvingFront(type)) return -1;
  const length = readI32(b, p + 1);
  if (length < 4) return -1;
  const q = p + PG_TYPED_HEADER;
  const next = p + 1 + length;
  if (next > end) return -2;
  switch (type) {
    case 0x53: // S Sync
    case 0x48: // H Flush
    case 0x58: // X Terminate
      return length === 4 ? next : -1;
    case 0x51: // Q Query: one C string, exactly
      return length > 4 && cstringEnd(b, q, next) === next - 1 ? next : -1;
    case 0x50: { // P Parse: name, query, parameter type count and OIDs
      const n = cstringEnd(b, q, next);
      if (n < 0) return -1;
      const s = cstringEnd(b, n + 1, next);
      if (s < 0 || s + 3 > next) return -1;
      const count = readI16(b, s + 1);
      return count >= 0 && s + 3 + count * 4 === next ? next : -1;
    }
    case 0x42: // B Bind
      return checkBind(b, q, next) ? next : -1;
    case 0x45: { // E Execute: portal, max rows
      const n = cstringEnd(b, q, next);
      return n >= 0 && n + 5 === next && readI32(b, n + 1) >= 0 ? next : -1;
    }
    case 0x44: // D Describe
    case 0x43: // C Close
      return length > 5 && (b[q] === 0x53 || b[q] === 0x50) && cstringEnd(b, q + 1, next) === next - 1 ? next : -1;
    default:
      return -1;
  }
}

function isProvingFront(t: number): boolean {
  return t === 0x53 || t === 0x48 || t === 0x58 || t === 0x51 || t === 0x50 || t === 0x42 || t === 0x45 || t === 0x44 || t === 0x43;
}

function checkBind(b: Uint8Array, q: number, next: number): boolean {
  const portal = cstringEnd(b, q, next);
  if (portal < 0) return false;
  const stmt = cstringEnd(b, portal + 1, next);
  if (stmt < 0) return false;
  let p = stmt + 1;
  if (p + 2 > next) return false;
  const formats = readI16(b, p);
  p += 2;
  if (formats < 0 || p + formats * 2 > next) return false;
  for (let i = 0; i < formats; i++, p += 2) if (readI16(b, p) !== 0 && readI16(b, p) !== 1) return false;
  if (p + 2 > next) return false;
  const params = readI16(b, p);
  p += 2;
  if (params < 0 || (formats > 1 && formats !== params)) return false;
  for (let i = 0; i < params; i++) {
    if (p + 4 > next) return false;
    const len = readI32(b, p);
    p += 4;
    if (len < -1) return false;
    if (len > 0) p += len;
    if (p > next) return false;
  }
  if (p + 2 > next) return false;
  const results = readI16(b, p);
  p += 2;
  if (results < 0 || p + results * 2 !== next) return false;
  for (let i = 0; i < results; i++, p += 2) if (readI16(b, p) !== 0 && readI16(b, p) !== 1) return false;
  return true;
}

/**
 * Checks the backend message at `p` (as for checkFrontMessage). CopyData
 * and FunctionCallResponse prove nothing and are refused; so are the
 * authentication exchange's messages.
 */
export function checkBackMessage(b: Uint8Array, p: number, end: number): number {
  if (p + PG_TYPED_HEADER > end) return end - p >= 1 && !isProvingBack(b[p]!) ? -1 : -2;
  const type = b[p]!;
  if (!isProvingBack(type)) return -1;
  const length = readI32(b, p + 1);
  if (length < 4) return -1;
  const q = p + PG_TYPED_HEADER;
  const next = p + 1 + length;
  if (next > end) return -2;
  switch (type) {
    case 0x31: // 1 ParseComplete
    case 0x32: // 2 BindComplete
    case 0x33: // 3 CloseComplete
    case 0x6e: // n NoData
    case 0x73: // s PortalSuspended
    case 0x49: // I EmptyQueryResponse
    case 0x63: // c CopyDone
      return length === 4 ? next : -1;
    case 0x5a: // Z ReadyForQuery
      return length === 5 && (b[q] === 0x49 || b[q] === 0x54 || b[q] === 0x45) ? next : -1;
    case 0x43: // C CommandComplete: an upper-case tag
      return length > 5 && b[q]! >= 0x41 && b[q]! <= 0x5a && cstringEnd(b, q, next) === next - 1 ? next : -1;
    case 0x44: { // D DataRow
      if (length < 6) return -1;
      const n = readI16(b, q);
      let r = q + 2;
      if (n < 0) return -1;
      for (let i = 0; i < n; i++) {
        if (r + 4 > next) return -1;
        const len = readI32(b, r);
        r += 4;
        if (len < -1) return -1;
        if (len > 0) r += len;
        if (r > next) return -1;
      }
      return r === next ? next : -1;
    }
    case 0x54: { // T RowDescription
      if (length < 6) return -1;
      const n = readI16(b, q);
      let r = q + 2;
      if (n < 0) return -1;
      for (let i = 0; i < n; i++) {
        const e = cstringEnd(b, r, next);
        if (e < 0) return -1;
        r = e + 1 + 18;
        if (r > next) return -1;
      }
      return r === next ? next : -1;
    }
    case 0x74: { // t ParameterDescription
      if (length < 6) return -1;
      const n = readI16(b, q);
      return n >= 0 && q + 2 + n * 4 === next ? next : -1;
    }
    case 0x45: // E ErrorResponse
    case 0x4e: // N NoticeResponse
      return checkFields(b, q, next) ? next : -1;
    case 0x53: { // S ParameterStatus
      const n = cstringEnd(b, q, next);
      return n > q && cstringEnd(b, n + 1, next) === next - 1 ? next : -1;
    }
    case 0x41: { // A NotificationResponse
      if (length < 10) return -1;
      const n = cstringEnd(b, q + 4, next);
      return n >= 0 && cstringEnd(b, n + 1, next) === next - 1 ? next : -1;
    }
    case 0x47: // G CopyInResponse
    case 0x48: // H CopyOutResponse
    case 0x57: { // W CopyBothResponse
      if (length < 7 || b[q]! > 1) return -1;
      const n = readI16(b, q + 1);
      return n >= 0 && q + 3 + n * 2 === next ? next : -1;
    }
    default:
      return -1;
  }
}

function isProvingBack(t: number): boolean {
  switch (t) {
    case 0x31: case 0x32: case 0x33: case 0x6e: case 0x73: case 0x49: case 0x63: case 0x5a: case 0x43: case 0x44:
    case 0x54: case 0x74: case 0x45: case 0x4e: case 0x53: case 0x41: case 0x47: case 0x48: case 0x57:
      return true;
    default:
      return false;
  }
}

/** ErrorResponse / NoticeResponse fields: (upper-case or letter code, C string)*, then a NUL exactly at the end. */
function checkFields(b: Uint8Array, q: number, next: number): boolean {
  let r = q;
  let fields = 0;
  while (r < next - 1) {
    const code = b[r]!;
    if (!((code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a))) return false;
    const e = cstringEnd(b, r + 1, next);
    if (e < 0) return false;
    r = e + 1;
    fields++;
  }
  return fields > 0 && r === next - 1 && b[r] === 0;
}

/**
 * Whether `b` is whole messages and nothing else, each passing `check`:
 * 'yes', 'more' (every message so far passes and the last runs past the
 * end), or 'no'. At least one message.
 */
export function tiles(b: Uint8Array, check: (b: Uint8Array, p: number, end: number) => number): 'yes' | 'more' | 'no' {
  let p = 0;
  if (b.length === 0) return 'more';
  while (p < b.length) {
    const next = check(b, p, b.length);
    if (next === -1) return 'no';
    if (next === -2) return 'more';
    p = next;
  }
  return 'yes';
}

const NO = { result: 'no' } as const;
const MORE = { result: 'more' } as const;

/**
 * From a connection's start: a client's first message (on egress a client,
 * on ingress a server: requests are on that side). Joined mid-stream: the
 * chunk is whole frontend messages, or whole backend messages, and not both
 * readings (a `S`, `D`, `C` or `E` message is either): the side that carries
 * frontend messages carries requests. A syscall that ends inside a message
 * proves nothing.
 */
export function detectPostgres(side: Side, data: Uint8Array, conn: ConnectionInfo): Detection {
  const other: Side = side === 'egress' ? 'ingress' : 'egress';
  if (conn.sawStart) {
    const s = classifyStart(data);
    if (s === 'more') return MORE;
    if (s === 'no') return NO;
    return { result: 'match', requestSide: side };
  }
  const front = tiles(data, checkFrontMessage) === 'yes';
  const back = tiles(data, checkBackMessage) === 'yes';
  if (front && !back) return { result: 'match', requestSide: side };
  if (back && !front) return { result: 'match', requestSide: other };
  if (front && back && conn.role !== 'unknown') {
    // Both readings hold: the socket's role says which end the process is.
    const requests: Side = conn.role === 'client' ? 'egress' : 'ingress';
    return { result: 'match', requestSide: requests };
  }
  // A mid-stream first syscall may also be a client's first message, when the open was missed.
  const s = classifyStart(data);
  if (s === 'startup' || s === 'ssl' || s === 'gssenc' || s === 'cancel') return { result: 'match', requestSide: side };
  return NO;
}
