// Recognises HTTP/2 (RFC 9113): the connection prefaces (§3.4) from the
// start of a connection, and frame boundaries that can be proven in bytes
// that do not start at a known boundary (mid-stream attach, after a gap).
// The resync rule and why it does not fire on other bytes: README.md,
// "Resynchronising".

import type { ConnectionInfo, Detection, Side } from '../types';
import {
  HTTP2_CLIENT_PREFACE, HTTP2_DEFAULT_MAX_FRAME_SIZE, HTTP2_FRAME_HEADER_BYTES, Http2Flag, Http2FrameType, validSetting,
} from './wire';

export type Http2Class = 'match' | 'more' | 'no';

/** Whether `data` starts with the client connection preface. */
export function classifyClientPreface(data: Uint8Array): Http2Class {
  const n = Math.min(data.length, HTTP2_CLIENT_PREFACE.length);
  for (let k = 0; k < n; k++) if (data[k] !== HTTP2_CLIENT_PREFACE[k]) return 'no';
  return n === HTTP2_CLIENT_PREFACE.length ? 'match' : 'more';
}

/**
 * Whether `data` starts with a server connection preface: a SETTINGS frame
 * without ACK on stream 0, at most 16384 bytes, whose values are all in
 * range. `more` until the whole frame is there.
 */
export function classifyServerPreface(data: Uint8Array): Http2Class {
  const fixed = [-1, -1, -1, Http2FrameType.SETTINGS, 0, 0, 0, 0, 0];
  const n = Math.min(data.length, HTTP2_FRAME_HEADER_BYTES);
  for (let k = 0; k < n; k++) if (fixed[k]! >= 0 && data[k] !== fixed[k]) return 'no';
  if (n >= 3) {
    const length = (data[0]! << 16) | (data[1]! << 8) | data[2]!;
    if (length > HTTP2_DEFAULT_MAX_FRAME_SIZE || length % 6 !== 0) return 'no';
    const end = HTTP2_FRAME_HEADER_BYTES + length;
    for (let p = HTTP2_FRAME_HEADER_BYTES; p + 6 <= Math.min(end, data.length); p += 6) {
      if (!validSetting(readU16(data, p), readU32(data, p + 2))) return 'no';
    }
    if (data.length >= end) return 'match';
  }
  return 'more';
}

/** Flags each known type defines (§6); a sender leaves the others unset (§4.1). */
const DEFINED_FLAGS = [0x09, 0x2d, 0x00, 0x00, 0x01, 0x0c, 0x01, 0x00, 0x00, 0x04];
/** Error codes of §7 (NO_ERROR .. HTTP_1_1_REQUIRED). */
const MAX_ERROR_CODE = 0xd;

/**
 * Checks the frame starting at `p` as a frame a conforming sender could have
 * written, whole inside `data[..end)`: stricter than the reader (unknown
 * types, undefined flags and the reserved bit are refused here). `open` is
 * the stream of a header block still waiting for CONTINUATION (0: none).
 * Returns the position after the frame and the new `open` packed as
 * [next, open], or undefined.
 */
function checkStrictFrame(data: Uint8Array, p: number, end: number, maxFrameSize: number, open: number): [number, number] | undefined {
  if (p + HTTP2_FRAME_HEADER_BYTES > end) return undefined;
  const length = (data[p]! << 16) | (data[p + 1]! << 8) | data[p + 2]!;
  const type = data[p + 3]!;
  const flags = data[p + 4]!;
  if (type > Http2FrameType.CONTINUATION || (flags & ~DEFINED_FLAGS[type]!) !== 0) return undefined;
  if ((data[p + 5]! & 0x80) !== 0) return undefined;
  const stream = readU32(data, p + 5);
  const q = p + HTTP2_FRAME_HEADER_BYTES;
  const next = q + length;
  if (length > maxFrameSize || next > end) return undefined;
  const T = Http2FrameType;
  if (open !== 0 ? type !== T.CONTINUATION || stream !== open : type === T.CONTINUATION) return undefined;
  const needsStream = type === T.DATA || type === T.HEADERS || type === T.PRIORITY || type === T.RST_STREAM || type === T.PUSH_PROMISE || type === T.CONTINUATION;
  const needsZero = type === T.SETTINGS || type === T.PING || type === T.GOAWAY;
  if ((needsStream && stream === 0) || (needsZero && stream !== 0)) return undefined;
  let pad = 0;
  let at = q;
  if ((flags & Http2Flag.PADDED) !== 0) {
    if (length < 1) return undefined;
    pad = data[q]!;
    at++;
  }
  const room = next - at - pad;
  if (room < 0) return undefined;
  let nextOpen = open;
  switch (type) {
    case T.HEADERS:
      if ((flags & Http2Flag.PRIORITY) !== 0) {
        if (room < 5 || (readU32(data, at) & 0x7fffffff) === stream) return undefined;
      }
      nextOpen = (flags & Http2Flag.END_HEADERS) !== 0 ? 0 : stream;
      break;
    case T.PUSH_PROMISE: {
      if (room < 4) return undefined;
      const promised = readU32(data, at);
      if (promised === 0 || (promised & 0x80000001) !== 0) return undefined;
      nextOpen = (flags & Http2Flag.END_HEADERS) !== 0 ? 0 : stream;
      break;
    }
    case T.CONTINUATION:
      nextOpen = (flags & Http2Flag.END_HEADERS) !== 0 ? 0 : stream;
      break;
    case T.PRIORITY:
      if (length !== 5 || (readU32(data, q) & 0x7fffffff) === stream) return undefined;
      break;
    case T.RST_STREAM:
      if (length !== 4 || readU32(data, q) > MAX_ERROR_CODE) return undefined;
      break;
    case T.SETTINGS:
      if (length % 6 !== 0 || ((flags & Http2Flag.ACK) !== 0 && length !== 0)) return undefined;
      for (let s = q; s < next; s += 6) if (!validSetting(readU16(data, s), readU32(data, s + 2))) return undefined;
      break;
    case T.PING:
      if (length !== 8) return undefined;
      break;
    case T.GOAWAY:
      if (length < 8 || (data[q]! & 0x80) !== 0 || readU32(data, q + 4) > MAX_ERROR_CODE) return undefined;
      break;
    case T.WINDOW_UPDATE: {
      if (length !== 4) return undefined;
      const inc = readU32(data, q);
      if (inc === 0 || inc > 0x7fffffff) return undefined;
      break;
    }
  }
  return [next, nextOpen];
}

/**
 * The first offset at or after `from` where a frame boundary is proven: from
 * there, at least `minFrames` frames that pass the strict check follow one
 * another and the last one ends exactly at the end of `data` (one chunk: a
 * syscall's bytes). -1 when no offset qualifies. Linear in practice: a
 * position whose chain was refused is not walked again.
 */
export function findFrameBoundary(data: Uint8Array, from: number, minFrames: number, maxFrameSize = HTTP2_DEFAULT_MAX_FRAME_SIZE): number {
  const end = data.length;
  let dead: Uint8Array | undefined;
  for (let o = from; o + minFrames * HTTP2_FRAME_HEADER_BYTES <= end; o++) {
    if (dead !== undefined && dead[o - from] === 1) continue;
    let p = o;
    let open = 0;
    let count = 0;
    while (p < end) {
      if (dead !== undefined && dead[p - from] === 1) break;
      const r = checkStrictFrame(data, p, end, maxFrameSize, open);
      if (r === undefined) break;
      p = r[0];
      open = r[1];
      count++;
    }
    if (p === end) {
      if (count >= minFrames) return o;
      continue;
    }
    // Every frame start on this refused chain leads to the same refusal.
    dead ??= new Uint8Array(end - from + 1);
    for (let s = o; s < p;) {
      dead[s - from] = 1;
      const len = (data[s]! << 16) | (data[s + 1]! << 8) | data[s + 2]!;
      s += HTTP2_FRAME_HEADER_BYTES + len;
    }
    dead[p - from] = 1;
  }
  return -1;
}

/** Whether frames chain from `at` exactly to the end of `data`, at least `minFrames` of them (the rule of findFrameBoundary at one offset). */
export function provesFrameBoundaryAt(data: Uint8Array, at: number, minFrames: number, maxFrameSize = HTTP2_DEFAULT_MAX_FRAME_SIZE): boolean {
  let p = at;
  let open = 0;
  let count = 0;
  while (p < data.length) {
    const r = checkStrictFrame(data, p, data.length, maxFrameSize, open);
    if (r === undefined) return false;
    p = r[0];
    open = r[1];
    count++;
  }
  return count >= minFrames;
}

/** Frames a mid-stream detection needs (see README "Resynchronising"). */
export const HTTP2_DETECT_MIN_FRAMES = 2;

/**
 * Detection on the first bytes of one side (`data` starts a syscall).
 * From the start of a connection: the client preface (the side carrying it
 * carries requests: egress on a client, ingress on a server) or a server
 * preface (the other side carries requests). Joined mid-stream: a frame
 * boundary proven at the syscall start (the whole chunk is frames), and the
 * connection's role known, since frames alone do not tell who the client is.
 */
export function detectHttp2(side: Side, data: Uint8Array, conn: ConnectionInfo): Detection {
  const client = classifyClientPreface(data);
  if (client === 'match') return { result: 'match', requestSide: side };
  if (conn.sawStart) {
    const server = classifyServerPreface(data);
    if (server === 'match') return { result: 'match', requestSide: side === 'egress' ? 'ingress' : 'egress' };
    return client === 'more' || server === 'more' ? { result: 'more' } : { result: 'no' };
  }
  if (client === 'more') return { result: 'more' };
  if (conn.role === 'unknown') return { result: 'no' };
  if (!provesFrameBoundaryAt(data, 0, HTTP2_DETECT_MIN_FRAMES)) return { result: 'no' };
  return { result: 'match', requestSide: conn.role === 'server' ? 'ingress' : 'egress' };
}

function readU16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}

function readU32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}
