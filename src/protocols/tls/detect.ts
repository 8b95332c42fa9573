// TLS record header recognition (RFC 8446 section 5.1, RFC 5246 section
// 6.2.1): strict enough that no plaintext protocol is ever taken for TLS.

import type { Detection, Side } from '../types';

/** TLSPlaintext.length may not exceed 2^14; TLSCiphertext (1.2) up to 2^14 + 2048. */
export const TLS_MAX_RECORD_LENGTH = 16384 + 2048;
const HEADER = 5;
/** Record header, handshake type and length, then the hello's legacy_version: what a stream start must show. */
export const TLS_HELLO_PREFIX = HEADER + 4 + 2;

const CHANGE_CIPHER_SPEC = 20;
const APPLICATION_DATA = 23;
const HANDSHAKE = 22;
const CLIENT_HELLO = 1;
const SERVER_HELLO = 2;
/** Smallest hello bodies: version, random, session id length, cipher suite(s), compression. */
const MIN_CLIENT_HELLO = 2 + 32 + 1 + 2 + 2 + 1 + 1;
const MIN_SERVER_HELLO = 2 + 32 + 1 + 2 + 1;

/** What the start of a stream is. */
export type TlsStart = 'no' | 'more' | 'client-hello' | 'server-hello' | 'records';

const MORE = { result: 'more' } as const;
const NO = { result: 'no' } as const;
const CLIENT = { result: 'match', requestSide: 'egress' } as const;
const SERVER = { result: 'match', requestSide: 'ingress' } as const;

/**
 * One record header at `at`: its length, 'more' when cut short, 'no' when
 * not a header; its legacy version must be 3.minMinor to 3.maxMinor.
 */
function recordLength(data: Buffer, at: number, minMinor: number, maxMinor: number): number | 'more' | 'no' {
  const n = data.length - at;
  if (n < 1) return 'more';
  const type = data[at]!;
  if (type < CHANGE_CIPHER_SPEC || type > APPLICATION_DATA) return 'no';
  if (n < 2) return 'more';
  if (data[at + 1] !== 3) return 'no';
  if (n < 3) return 'more';
  const minor = data[at + 2]!;
  if (minor < minMinor || minor > maxMinor) return 'no';
  if (n < HEADER) return 'more';
  const length = data.readUInt16BE(at + 3);
  return length === 0 || length > TLS_MAX_RECORD_LENGTH ? 'no' : length;
}

/**
 * Classifies the first bytes of one side. At a stream start (`sawStart`)
 * only a ClientHello or ServerHello in a handshake record is TLS; joined
 * mid-stream, a run of record headers each where the previous record ends
 * (every one the data reaches) with a TLS 1.0-1.2 record version.
 */
export function classifyTlsStart(data: Buffer, sawStart: boolean): TlsStart {
  if (sawStart) {
    const length = recordLength(data, 0, 0, 4);
    if (length === 'no' || length === 'more') return length;
    if (data[0] !== HANDSHAKE) return 'no';
    // The first record holds a whole hello (the smallest fragment limit is 512 bytes).
    if (length < 4 + MIN_SERVER_HELLO) return 'no';
    if (data.length === HEADER) return 'more';
    const type = data[HEADER]!;
    if (type !== CLIENT_HELLO && type !== SERVER_HELLO) return 'no';
    if (data.length < HEADER + 4) return 'more';
    const body = data.readUIntBE(HEADER + 1, 3);
    if (body < (type === CLIENT_HELLO ? MIN_CLIENT_HELLO : MIN_SERVER_HELLO)) return 'no';
    // A hello larger than one record continues in the next only when this one is full.
    if (body + 4 > length && length < 16384) return 'no';
    if (data.length < HEADER + 5) return 'more';
    // legacy_version of the hello: SSL 3.0 up to TLS 1.2 (TLS 1.3 says 1.2 here).
    if (data[HEADER + 4] !== 3) return 'no';
    if (data.length < TLS_HELLO_PREFIX) return 'more';
    if (data[HEADER + 5]! > 3) return 'no';
    return type === CLIENT_HELLO ? 'client-hello' : 'server-hello';
  }
  let at = 0;
  for (;;) {
    const length = recordLength(data, at, 1, 3);
    if (length === 'no') return 'no';
    if (length === 'more') return at === 0 ? 'more' : 'records';
    at += HEADER + length;
    if (at >= data.length) return 'records';
  }
}

/**
 * A match only on bytes the traced process wrote: a ClientHello makes it the
 * client, a ServerHello the server, records joined mid-stream take the role
 * of the socket. What it read waits (`more`) for what it writes back: a
 * process whose library the agent probes writes no ciphertext the agent sees
 * (the probes tie the connection at that write), so its connection is not
 * claimed from a ClientHello it read before the tie and is never muted or
 * counted as unprobed for it.
 */
export function detectTls(side: Side, data: Buffer, sawStart: boolean, role: 'client' | 'server' | 'unknown'): Detection {
  const start = classifyTlsStart(data, sawStart);
  switch (start) {
    case 'no':
      return NO;
    case 'more':
      return MORE;
    default:
      if (side === 'ingress') return MORE;
      if (start === 'client-hello') return CLIENT;
      if (start === 'server-hello') return SERVER;
      return role === 'client' ? CLIENT : SERVER;
  }
}
