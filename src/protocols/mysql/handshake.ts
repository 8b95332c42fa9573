// The connection phase: the server's initial handshake (protocol version 10)
// and the client's HandshakeResponse41 (or its short form, the SSL request).
// Auth data is skipped by its length and never kept.

import { Cap, PayloadReader, isPrintableAscii, utf8 } from './wire';

/** `other_sql` (the conventions' fallback) when nothing the agent saw says which server it is. */
export type MysqlSystem = 'mysql' | 'mariadb' | 'other_sql';

export interface MysqlGreeting {
  readonly serverVersion: string;
  readonly system: MysqlSystem;
  /** The server's capabilities (low 32 bits). */
  readonly capabilities: number;
  /** MariaDB's extended capabilities (0 for MySQL). */
  readonly mariaCapabilities: number;
}

export interface MysqlLogin {
  readonly capabilities: number;
  readonly mariaCapabilities: number;
  /** A 32-byte response with CLIENT_SSL: TLS follows, the real response comes inside it. */
  readonly sslRequest: boolean;
  readonly user?: string;
  readonly database?: string;
}

/** Shortest initial handshake: version byte, 1-char version + NUL, id, 8 bytes of auth data, filler, 2 capability bytes. */
export const GREETING_MIN_BYTES = 1 + 2 + 4 + 8 + 1 + 2;
/** Longest accepted (servers send about 80-120 bytes). */
export const GREETING_MAX_BYTES = 1024;
const MAX_VERSION_BYTES = 128;

/** MariaDB 10.x and 11.x announce themselves `5.5.5-<version>-MariaDB...` (replication compatibility); later ones may drop the prefix. */
export function systemOf(version: string): MysqlSystem {
  return version.startsWith('5.5.5-') || /mariadb/i.test(version) ? 'mariadb' : 'mysql';
}

/**
 * Parses an initial handshake payload (protocol version 10). Undefined when
 * the bytes are not one: version byte, a printable NUL-terminated version,
 * CLIENT_PROTOCOL_41 set, the filler byte zero.
 */
export function parseGreeting(payload: Uint8Array): MysqlGreeting | undefined {
  if (payload.length < GREETING_MIN_BYTES || payload.length > GREETING_MAX_BYTES || payload[0] !== 10) return undefined;
  const r = new PayloadReader(payload);
  r.skip(1);
  const version = r.nulTerminated();
  if (version === undefined || version.length === 0 || version.length > MAX_VERSION_BYTES || !isPrintableAscii(version)) return undefined;
  r.skip(4 + 8);
  if (r.u8() !== 0) return undefined;
  let caps = r.u16();
  let maria = 0;
  if (r.remaining >= 1 + 2 + 2 + 1 + 10) {
    r.skip(1 + 2);
    caps |= r.u16() << 16;
    r.skip(1 + 6);
    const ext = r.u32();
    // MariaDB's extended capabilities sit in the reserved bytes, when it clears CLIENT_MYSQL.
    if ((caps & Cap.LONG_PASSWORD) === 0) maria = ext;
  }
  if (r.bad || (caps & Cap.PROTOCOL_41) === 0) return undefined;
  const serverVersion = utf8(version);
  return { serverVersion, system: systemOf(serverVersion), capabilities: caps >>> 0, mariaCapabilities: maria >>> 0 };
}

/** Length of an SSL request: capabilities, max packet, charset, 23 filler bytes. */
export const SSL_REQUEST_BYTES = 32;
const MAX_NAME_BYTES = 256;

/**
 * Parses a HandshakeResponse41. Undefined when it is not one (no
 * CLIENT_PROTOCOL_41, or fields running past the payload). The user and
 * database are kept (bounded); the auth response is skipped unread.
 */
export function parseLogin(payload: Uint8Array): MysqlLogin | undefined {
  if (payload.length < SSL_REQUEST_BYTES) return undefined;
  const r = new PayloadReader(payload);
  const caps = r.u32();
  if ((caps & Cap.PROTOCOL_41) === 0) return undefined;
  r.skip(4 + 1 + 19);
  const maria = (caps & Cap.LONG_PASSWORD) === 0 ? r.u32() : (r.skip(4), 0);
  if (payload.length === SSL_REQUEST_BYTES) {
    return (caps & Cap.SSL) !== 0 ? { capabilities: caps >>> 0, mariaCapabilities: maria >>> 0, sslRequest: true } : undefined;
  }
  const user = r.nulTerminated();
  if (user === undefined || user.length > MAX_NAME_BYTES) return undefined;
  // The auth response: skipped by its length, never read.
  if ((caps & Cap.PLUGIN_AUTH_LENENC_CLIENT_DATA) !== 0) r.skip(r.lenenc());
  else if ((caps & Cap.SECURE_CONNECTION) !== 0) r.skip(r.u8());
  else r.nulTerminated();
  if (r.bad) return undefined;
  let database: string | undefined;
  if ((caps & Cap.CONNECT_WITH_DB) !== 0 && r.remaining > 0) {
    const db = r.nulTerminated();
    if (db === undefined || db.length > MAX_NAME_BYTES) return undefined;
    if (db.length > 0) database = utf8(db);
  }
  const login: { -readonly [K in keyof MysqlLogin]: MysqlLogin[K] } = { capabilities: caps >>> 0, mariaCapabilities: maria >>> 0, sslRequest: false };
  if (user.length > 0) login.user = utf8(user);
  if (database !== undefined) login.database = database;
  return login;
}

/**
 * COM_CHANGE_USER: user, auth response, schema. Only user and schema are
 * returned; the auth response is skipped unread.
 */
export function parseChangeUser(payload: Uint8Array, caps: number): { user?: string; database?: string } | undefined {
  const r = new PayloadReader(payload);
  r.skip(1);
  const user = r.nulTerminated();
  if (user === undefined || user.length > MAX_NAME_BYTES) return undefined;
  if ((caps & Cap.SECURE_CONNECTION) !== 0) r.skip(r.u8());
  else r.nulTerminated();
  const db = r.remaining > 0 ? r.nulTerminated() : new Uint8Array(0);
  if (r.bad || db === undefined || db.length > MAX_NAME_BYTES) return undefined;
  const out: { user?: string; database?: string } = {};
  if (user.length > 0) out.user = utf8(user);
  if (db.length > 0) out.database = utf8(db);
  return out;
}
