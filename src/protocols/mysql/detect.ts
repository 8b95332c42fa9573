// Recognises MySQL/MariaDB connections. From the connection's start: the
// server's initial handshake (protocol version 10, sequence id 0) on the side
// the traced process reads (a client) or writes (a server). After a TLS
// upgrade whose plaintext the probes hand over: the client's
// HandshakeResponse41 (sequence id 2, CLIENT_SSL). Joined mid-stream: only a
// command that proves itself (see provableCommand).

import type { ConnectionInfo, Detection, Side } from '../types';
import { GREETING_MAX_BYTES, SSL_REQUEST_BYTES, parseGreeting, parseLogin } from './handshake';
import { Cap, Command, MYSQL_HEADER_BYTES } from './wire';

const other = (s: Side): Side => (s === 'egress' ? 'ingress' : 'egress');

/** Longest command payload detection looks at; a longer one (a big INSERT) is still provable from its first bytes. */
export const MYSQL_DETECT_BYTES = 16 * 1024;

/**
 * Whether `payload` (a packet with sequence id 0 and the length `length`)
 * is a command a client sends, proven by its own bytes: COM_QUERY,
 * COM_STMT_PREPARE and COM_INIT_DB with text (their first bytes printable
 * UTF-8 or whitespace, starting as a statement starts), COM_STMT_EXECUTE
 * with a known cursor flag and an iteration count of 1, COM_PING with no
 * payload. Other commands (COM_QUIT, COM_STMT_CLOSE...) prove too little.
 * `queryAttributes`: COM_QUERY carries MySQL 8's attribute block first.
 */
export function provableCommand(payload: Uint8Array, length: number): boolean {
  if (length === 0 || payload.length === 0) return false;
  switch (payload[0]) {
    case Command.QUERY:
    case Command.STMT_PREPARE:
      return length >= 2 && startsLikeSql(payload, 1);
    case Command.INIT_DB:
      return length >= 2 && length <= 257 && isText(payload, 1, payload.length);
    case Command.STMT_EXECUTE:
      // id (4), flags (1: cursor type 0..4, MySQL 8's PARAMETER_COUNT_AVAILABLE 8), iteration count (4) = 1.
      return length >= 10 && payload.length >= 10 && (payload[5]! & ~0x0f) === 0 && payload[6] === 1 && payload[7] === 0 && payload[8] === 0 && payload[9] === 0;
    case Command.PING:
      return length === 1;
    default:
      return false;
  }
}

/** SQL text from `at`: a letter, `(`, `/` (comment), `-`, `#` or whitespace first, then text. */
function startsLikeSql(b: Uint8Array, at: number): boolean {
  if (at >= b.length) return false;
  const c = b[at]!;
  const letter = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
  if (!(letter || c === 0x28 || c === 0x2f || c === 0x2d || c === 0x23 || c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d)) return false;
  return isText(b, at, Math.min(b.length, at + 256));
}

/** Bytes `[from, to)` are printable ASCII, whitespace or UTF-8 lead/continuation bytes. */
function isText(b: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = b[i]!;
    if (c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return false;
    if (c === 0x7f || c === 0xc0 || c === 0xc1 || c >= 0xf5) return false;
  }
  return true;
}

/**
 * One packet of sequence id `seq` tiling `data` exactly (mid-stream proof) or
 * a prefix of one (`more`).
 */
function header(data: Uint8Array): { length: number; seq: number } | undefined {
  if (data.length < MYSQL_HEADER_BYTES) return undefined;
  return { length: data[0]! | (data[1]! << 8) | (data[2]! << 16), seq: data[3]! };
}

export function detectMysql(side: Side, data: Buffer, conn: ConnectionInfo): Detection {
  const h = header(data);
  if (h === undefined) return { result: data.length === 0 ? 'no' : 'more' };
  if (conn.sawStart) {
    if (data.length === MYSQL_HEADER_BYTES && (h.seq === 0 || (conn.encrypted && h.seq === 2))) return { result: 'more' };
    // The initial handshake: the server speaks first.
    if (h.seq === 0 && data.length > MYSQL_HEADER_BYTES && data[MYSQL_HEADER_BYTES] === 10 && h.length <= GREETING_MAX_BYTES) {
      if (data.length < MYSQL_HEADER_BYTES + h.length) return { result: 'more' };
      return parseGreeting(data.subarray(MYSQL_HEADER_BYTES, MYSQL_HEADER_BYTES + h.length)) !== undefined
        ? { result: 'match', requestSide: other(side) }
        : { result: 'no' };
    }
    // TLS plaintext handed over by the probes: it starts with the login the client sent inside TLS.
    if (conn.encrypted && h.seq === 2 && h.length > SSL_REQUEST_BYTES && h.length <= 4096) {
      if (data.length < MYSQL_HEADER_BYTES + h.length) return { result: 'more' };
      const login = parseLogin(data.subarray(MYSQL_HEADER_BYTES, MYSQL_HEADER_BYTES + h.length));
      return login !== undefined && (login.capabilities & Cap.SSL) !== 0 ? { result: 'match', requestSide: side } : { result: 'no' };
    }
    return { result: 'no' };
  }
  // Joined mid-stream: a command that tiles the syscall's bytes exactly.
  if (h.seq !== 0 || h.length === 0) return { result: 'no' };
  const whole = MYSQL_HEADER_BYTES + h.length;
  if (data.length < whole) {
    return data.length < MYSQL_DETECT_BYTES && provableCommand(data.subarray(MYSQL_HEADER_BYTES), h.length) ? { result: 'more' } : { result: 'no' };
  }
  if (data.length !== whole) return { result: 'no' };
  return provableCommand(data.subarray(MYSQL_HEADER_BYTES), h.length) ? { result: 'match', requestSide: side } : { result: 'no' };
}
