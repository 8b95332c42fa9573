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
    case T.DATA:
      // An empty DATA frame carries nothing but END_STREAM: senders do not send one without it.
      if (room === 0 && (flags & Http2Flag.END_STREAM) === 0) return undefined;
      break;
    case T.HEADERS:
      if ((flags & Http2Flag.PRIORITY) !== 0) {
        if (room < 5 || (readU32(data, at) & 0x7fffffff) === stream) return undefined;
      }
      // A complete header block is never empty (a request, response or trailers has a field).
      if ((flags & Http2Flag.END_HEADERS) !== 0 && room === ((flags & Http2Flag.PRIORITY) !== 0 ? 5 : 0)) return undefined;
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
 * A frame boundary proven at or after `from` in one chunk (a syscall's
 * bytes), or -1. Every offset is tried as a frame start; a parse "reaches
 * the end" when frames passing the strict check follow one another and the
 * last one ends exactly at the end of `data`. All the parses that reach the
 * end share a tail (they meet at the end at least); the boundary is where
 * that shared tail starts, and it must hold at least `minFrames` frames.
 * Bytes before it are not claimed by any one parse: two parses that disagree
 * there prove nothing about them. Linear: each position is walked once
 * (an outcome is kept per position whatever header block was open when a
 * parse got there: that can only refuse a boundary or move it later).
 */
export function findFrameBoundary(data: Uint8Array, from: number, minFrames: number, maxFrameSize = HTTP2_DEFAULT_MAX_FRAME_SIZE): number {
  const end = data.length;
  if (end - from < HTTP2_FRAME_HEADER_BYTES) return -1;
  const n = end - from + 1;
  const { state, meet, framesLeft } = scratchFor(n);
  state.fill(0, 0, n);
  state[n - 1] = END;
  meet[n - 1] = end;
  let first = -1;
  let shared = -1;
  const path: number[] = [];
  for (let o = from; o + HTTP2_FRAME_HEADER_BYTES <= end; o++) {
    if (state[o - from] !== 0) continue;
    path.length = 0;
    let p = o;
    let open = 0;
    while (state[p - from] === 0) {
      path.push(p);
      const r = checkStrictFrame(data, p, end, maxFrameSize, open);
      if (r === undefined) {
        state[p - from] = DEAD;
        break;
      }
      p = r[0];
      open = r[1];
    }
    if (state[p - from] === DEAD) {
      for (const q of path) state[q - from] = DEAD;
      continue;
    }
    if (first < 0) {
      first = o;
      shared = o;
      for (let k = 0; k < path.length; k++) {
        const q = path[k]! - from;
        state[q] = END;
        meet[q] = path[k]!;
        framesLeft[q] = path.length - k;
      }
      continue;
    }
    // Another parse reaching the end: the shared tail starts no earlier than where it meets the first.
    const m = meet[p - from]!;
    for (const q of path) {
      state[q - from] = END;
      meet[q - from] = m;
    }
    if (m > shared) shared = m;
  }
  if (first < 0 || shared >= end) return -1;
  return framesLeft[shared - from]! >= minFrames ? shared : -1;
}

// Per position: 0 not walked, DEAD its parse fails, END its parse reaches the end.
const DEAD = 1;
const END = 2;
/** Scratch reused across calls (hunting happens for many connections at once after an attach); larger chunks get their own. */
const SCRATCH_KEPT = 64 * 1024 + 1;
let kept: { state: Uint8Array; meet: Int32Array; framesLeft: Int32Array } | undefined;

/**
 * `state`: per position, 0 / DEAD / END. `meet`: for END positions, where
 * their parse meets the first parse that reached the end (its own positions
 * map to themselves). `framesLeft`: for positions of the first parse, frames
 * from there to the end. Only `state` needs clearing: the others are written
 * before they are read.
 */
function scratchFor(n: number): { state: Uint8Array; meet: Int32Array; framesLeft: Int32Array } {
  if (n > SCRATCH_KEPT) return { state: new Uint8Array(n), meet: new Int32Array(n), framesLeft: new Int32Array(n) };
  kept ??= { state: new Uint8Array(SCRATCH_KEPT), meet: new Int32Array(SCRATCH_KEPT), framesLeft: new Int32Array(SCRATCH_KEPT) };
  return kept;
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
  if (!provesFrameBoundaryAt(data, 0, HTTP2_DETECT_MIN_FRAMES)) return { result: 'no' };
  const other: Side = side === 'egress' ? 'ingress' : 'egress';
  if (conn.role !== 'unknown') return { result: 'match', requestSide: conn.role === 'server' ? 'ingress' : 'egress' };
  // The agent never saw the connect or accept: the header blocks say which side asks.
  const carries = headerBlockSide(data);
  if (carries === undefined) return { result: 'no' };
  return { result: 'match', requestSide: carries === 'requests' ? side : other };
}

/**
 * Whether the HEADERS frames of `data` (whole frames from offset 0, as
 * provesFrameBoundaryAt checked) are requests or responses, from the first
 * field of their header blocks: pseudo-header fields come before all others
 * (RFC 9113 §8.3), and a static-table reference to one is known however late
 * the agent joined: indices 1 to 7 (`:authority`, `:method`, `:path`,
 * `:scheme`) only begin requests, 8 to 14 (`:status`) only responses
 * (RFC 7541 Appendix A). A block that begins otherwise (a dynamic
 * reference, a literal name, trailers) says nothing; blocks that disagree
 * say nothing.
 */
export function headerBlockSide(data: Uint8Array): 'requests' | 'responses' | undefined {
  let said: 'requests' | 'responses' | undefined;
  let p = 0;
  while (p + HTTP2_FRAME_HEADER_BYTES <= data.length) {
    const length = (data[p]! << 16) | (data[p + 1]! << 8) | data[p + 2]!;
    const end = p + HTTP2_FRAME_HEADER_BYTES + length;
    if (end > data.length) break;
    if (data[p + 3] === 0x1 /* HEADERS */) {
      const flags = data[p + 4]!;
      let q = p + HTTP2_FRAME_HEADER_BYTES;
      if ((flags & 0x8) !== 0) q++; // Pad Length
      if ((flags & 0x20) !== 0) q += 5; // PRIORITY fields
      const index = firstFieldStaticIndex(data, q, end);
      const s = index === undefined ? undefined : index >= 1 && index <= 7 ? 'requests' : index >= 8 && index <= 14 ? 'responses' : undefined;
      if (s !== undefined) {
        if (said !== undefined && said !== s) return undefined;
        said = s;
      }
    }
    p = end;
  }
  return said;
}

/** The static-table index the first field representation of a block names (after size updates), or undefined. */
function firstFieldStaticIndex(b: Uint8Array, q: number, end: number): number | undefined {
  // Dynamic table size updates (001xxxxx) may come first (RFC 7541 §4.2).
  while (q < end && (b[q]! & 0xe0) === 0x20) {
    if ((b[q]! & 0x1f) !== 0x1f) q++;
    else {
      q++;
      while (q < end && (b[q]! & 0x80) !== 0) q++;
      q++;
    }
  }
  if (q >= end) return undefined;
  const c = b[q]!;
  // Indexed (1xxxxxxx, 7-bit index), literal with indexing (01xxxxxx, 6-bit),
  // without or never indexed (000xxxxx / 0001xxxx, 4-bit). A full prefix
  // continues in more octets: an index past every pseudo-header's.
  const index = (c & 0x80) !== 0 ? c & 0x7f : (c & 0xc0) === 0x40 ? c & 0x3f : c & 0x0f;
  return index === 0 ? undefined : index;
}

function readU16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}

function readU32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}
