// Recognises a Redis command where a syscall's bytes begin: a RESP array of
// bulk strings (`*<n>\r\n$<len>\r\n<name>\r\n...`) whose first element is a
// plausible command name, every element present checked whole. This is what
// every client sends (RESP2 and RESP3 alike: HELLO 3 is itself such an
// array). Replies are never enough: `+OK\r\n` or `:1\r\n` prove little, and
// the side that carries commands says which end is the client. Inline
// commands (`PING\r\n`) are not detected: a line of words is what HTTP/1,
// SMTP and many text protocols also send. See README.md "Detection".

import type { ConnectionInfo, Detection, Side } from '../types';
import { isCommandName, REDIS_MAX_NAME } from './commands';

/** Bytes detection looks at: a command longer than this is recognised by its name and the element headers before the cut. */
export const REDIS_MAX_DETECT_BYTES = 1024;

/** Elements a command may declare (Redis refuses more than 1024*1024 before AUTH; after, INT_MAX). */
const MAX_ELEMENTS = 2 ** 31 - 1;
/** Bulk length a command may declare (proto-max-bulk-len is at most 4 GiB - 1 on 64-bit builds... we accept up to 2^32). */
const MAX_BULK = 2 ** 32;

export type CommandStart =
  /** The whole array is in `data`. */
  | 'whole'
  /** The name is whole and every element header before the end is valid; the array goes on past the end. */
  | 'prefix'
  /** Too few bytes to see the name. */
  | 'more'
  | 'no';

const CR = 0x0d;
const LF = 0x0a;

/** Reads `<digits>\r\n` at `at`: [value, next] or 'more' / 'no'. */
function header(b: Uint8Array, at: number, max: number): [number, number] | 'more' | 'no' {
  let v = 0;
  let i = at;
  for (; i < b.length; i++) {
    const c = b[i]!;
    if (c === CR) break;
    if (c < 0x30 || c > 0x39 || i - at >= 10) return 'no';
    if (i === at && c === 0x30 && max !== MAX_BULK) return 'no'; // counts start at 1; lengths may be 0
    v = v * 10 + (c - 0x30);
  }
  if (i >= b.length) return 'more';
  if (i === at || v > max) return 'no';
  if (i + 1 >= b.length) return 'more';
  if (b[i + 1] !== LF) return 'no';
  return [v, i + 2];
}

/** Whether `data` starts with a command array (see CommandStart). */
export function classifyCommand(b: Uint8Array): CommandStart {
  if (b.length === 0) return 'more';
  if (b[0] !== 0x2a) return 'no';
  const h = header(b, 1, MAX_ELEMENTS);
  if (typeof h === 'string') return h;
  const [count, first] = h;
  let p = first;
  for (let k = 0; k < count; k++) {
    if (p >= b.length) return k === 0 ? 'more' : 'prefix';
    if (b[p] !== 0x24) return 'no';
    const l = header(b, p + 1, MAX_BULK);
    if (l === 'no') return 'no';
    if (l === 'more') return k === 0 ? 'more' : 'prefix';
    const [len, body] = l;
    const end = body + len;
    if (k === 0 && len > REDIS_MAX_NAME) return 'no';
    if (k === 0) {
      if (end + 2 > b.length) return 'more';
      if (!isCommandName(b, body, end)) return 'no';
    }
    if (end >= b.length) return 'prefix';
    if (b[end] !== CR) return 'no';
    if (end + 1 >= b.length) return 'prefix';
    if (b[end + 1] !== LF) return 'no';
    p = end + 2;
  }
  return 'whole';
}

/**
 * The side carrying a command array carries requests. A prefix is enough
 * once detection has seen all it will (a 100 MB SET); before that, more.
 */
export function detectRedis(side: Side, data: Uint8Array, _conn: ConnectionInfo): Detection {
  const c = classifyCommand(data);
  if (c === 'whole' || (c === 'prefix' && data.length >= REDIS_MAX_DETECT_BYTES)) return { result: 'match', requestSide: side };
  return c === 'no' ? { result: 'no' } : { result: 'more' };
}
