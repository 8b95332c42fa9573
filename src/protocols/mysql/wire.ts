// MySQL client/server protocol constants and field readers (MySQL source
// documentation "Client/Server Protocol"; MariaDB's "Client/Server
// Protocol" pages for its extensions). Pure functions over byte views.

/** A packet's header: 3-byte little-endian payload length, 1-byte sequence id. */
export const MYSQL_HEADER_BYTES = 4;
/** A payload of this length continues in the next packet (payloads of 16 MiB and more are split). */
export const MYSQL_MAX_PACKET = 0xffffff;

/** Command bytes (the first payload byte of a packet the client sends with sequence id 0). */
export const Command = {
  SLEEP: 0x00,
  QUIT: 0x01,
  INIT_DB: 0x02,
  QUERY: 0x03,
  FIELD_LIST: 0x04,
  CREATE_DB: 0x05,
  DROP_DB: 0x06,
  REFRESH: 0x07,
  SHUTDOWN: 0x08,
  STATISTICS: 0x09,
  PROCESS_INFO: 0x0a,
  CONNECT: 0x0b,
  PROCESS_KILL: 0x0c,
  DEBUG: 0x0d,
  PING: 0x0e,
  TIME: 0x0f,
  DELAYED_INSERT: 0x10,
  CHANGE_USER: 0x11,
  BINLOG_DUMP: 0x12,
  TABLE_DUMP: 0x13,
  CONNECT_OUT: 0x14,
  REGISTER_SLAVE: 0x15,
  STMT_PREPARE: 0x16,
  STMT_EXECUTE: 0x17,
  STMT_SEND_LONG_DATA: 0x18,
  STMT_CLOSE: 0x19,
  STMT_RESET: 0x1a,
  SET_OPTION: 0x1b,
  STMT_FETCH: 0x1c,
  DAEMON: 0x1d,
  BINLOG_DUMP_GTID: 0x1e,
  RESET_CONNECTION: 0x1f,
  /** MariaDB 10.2+: an array of parameter sets for one prepared statement. */
  STMT_BULK_EXECUTE: 0xfa,
} as const;

/** Capability flags (the low 32 bits; MariaDB's extended ones are `<< 32`, kept apart). */
export const Cap = {
  /** MariaDB servers clear it ("CLIENT_MYSQL"): then the handshake carries MariaDB's extended capabilities. */
  LONG_PASSWORD: 0x1,
  CONNECT_WITH_DB: 0x8,
  COMPRESS: 0x20,
  LOCAL_FILES: 0x80,
  PROTOCOL_41: 0x200,
  SSL: 0x800,
  SECURE_CONNECTION: 0x8000,
  MULTI_STATEMENTS: 0x10000,
  MULTI_RESULTS: 0x20000,
  PLUGIN_AUTH: 0x80000,
  CONNECT_ATTRS: 0x100000,
  PLUGIN_AUTH_LENENC_CLIENT_DATA: 0x200000,
  SESSION_TRACK: 0x800000,
  DEPRECATE_EOF: 0x1000000,
  OPTIONAL_RESULTSET_METADATA: 0x2000000,
  ZSTD_COMPRESSION: 0x4000000,
  QUERY_ATTRIBUTES: 0x8000000,
} as const;

/** MariaDB's extended capabilities (bits 32.. of the 64-bit set, here as a 32-bit word). */
export const MariaCap = {
  PROGRESS: 0x1,
  COM_MULTI: 0x2,
  STMT_BULK_OPERATIONS: 0x4,
  EXTENDED_METADATA: 0x8,
  CACHE_METADATA: 0x10,
  BULK_UNIT_RESULTS: 0x20,
} as const;

/** Server status flags (OK and EOF packets). */
export const Status = {
  IN_TRANS: 0x1,
  AUTOCOMMIT: 0x2,
  MORE_RESULTS_EXISTS: 0x8,
  CURSOR_EXISTS: 0x40,
  LAST_ROW_SENT: 0x80,
  PS_OUT_PARAMS: 0x1000,
  SESSION_STATE_CHANGED: 0x4000,
} as const;

/** Session state tracker entry types (OK packet, CLIENT_SESSION_TRACK). */
export const SESSION_TRACK_SCHEMA = 0x01;

/** First payload byte of a server packet. */
export const OK_HEADER = 0x00;
export const LOCAL_INFILE_HEADER = 0xfb;
export const EOF_HEADER = 0xfe;
export const ERR_HEADER = 0xff;
/** MariaDB's progress report travels as an ERR packet with this code (MARIADB_CLIENT_PROGRESS); it ends nothing. */
export const PROGRESS_ERROR_CODE = 0xffff;

/** A cursor over a payload view; reads past the end set `bad` and return 0 / undefined instead of throwing. */
export class PayloadReader {
  pos = 0;
  bad = false;

  constructor(readonly buf: Uint8Array) {}

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  u8(): number {
    if (this.pos + 1 > this.buf.length) return this.fail();
    return this.buf[this.pos++]!;
  }

  u16(): number {
    if (this.pos + 2 > this.buf.length) return this.fail();
    const v = this.buf[this.pos]! | (this.buf[this.pos + 1]! << 8);
    this.pos += 2;
    return v;
  }

  u32(): number {
    if (this.pos + 4 > this.buf.length) return this.fail();
    const b = this.buf;
    const p = this.pos;
    this.pos += 4;
    return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16)) + b[p + 3]! * 0x1000000;
  }

  /**
   * Length-encoded integer: < 0xfb itself, 0xfc + 2 bytes, 0xfd + 3, 0xfe + 8.
   * 0xfb (NULL) and 0xff are not integers: `bad`. Values past 2^53 lose precision (never met as counts).
   */
  lenenc(): number {
    const first = this.u8();
    if (this.bad) return 0;
    if (first < 0xfb) return first;
    if (first === 0xfc) return this.u16();
    if (first === 0xfd) {
      const lo = this.u16();
      return lo + this.u8() * 0x10000;
    }
    if (first === 0xfe) {
      const lo = this.u32();
      return lo + this.u32() * 0x100000000;
    }
    return this.fail();
  }

  skip(n: number): void {
    if (n < 0 || this.pos + n > this.buf.length) {
      this.fail();
      return;
    }
    this.pos += n;
  }

  /** Bytes up to a NUL (consumed, not included); `bad` without one. */
  nulTerminated(): Uint8Array | undefined {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) {
      this.fail();
      return undefined;
    }
    const v = this.buf.subarray(this.pos, end);
    this.pos = end + 1;
    return v;
  }

  /** A length-encoded string. */
  lenencBytes(): Uint8Array | undefined {
    const n = this.lenenc();
    if (this.bad || this.pos + n > this.buf.length) {
      this.fail();
      return undefined;
    }
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  rest(): Uint8Array {
    const v = this.buf.subarray(this.pos);
    this.pos = this.buf.length;
    return v;
  }

  private fail(): 0 {
    this.bad = true;
    this.pos = this.buf.length;
    return 0;
  }
}

const decoder = new TextDecoder('utf-8', { fatal: false });

/** UTF-8 text of a view (invalid sequences become U+FFFD: never a crash). */
export function utf8(b: Uint8Array): string {
  return decoder.decode(b);
}

/** Whether every byte of `b` is printable ASCII. */
export function isPrintableAscii(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) {
    const x = b[i]!;
    if (x < 0x20 || x > 0x7e) return false;
  }
  return true;
}
