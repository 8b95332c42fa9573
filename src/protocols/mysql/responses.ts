// Server packets of the command phase: OK, ERR, EOF, and the parts of a
// COM_QUERY payload before its text. Pure readers over a packet's head.

import { PayloadReader, SESSION_TRACK_SCHEMA, Status, utf8 } from './wire';

export interface MysqlOk {
  readonly affectedRows: number;
  readonly status: number;
  /** The schema the session state tracker reported (USE, COM_INIT_DB), when it did. */
  readonly schema?: string;
}

/**
 * An OK packet (header 0x00, or 0xfe ending a result set under
 * CLIENT_DEPRECATE_EOF). `sessionTrack`: whether CLIENT_SESSION_TRACK is known
 * to be on (then info and state changes are length-encoded); unknown or off,
 * the state is not read.
 */
export function parseOk(head: Uint8Array, sessionTrack: boolean): MysqlOk | undefined {
  const r = new PayloadReader(head);
  r.skip(1);
  const affectedRows = r.lenenc();
  r.lenenc();
  const status = r.u16();
  r.u16();
  if (r.bad) return undefined;
  if (!sessionTrack || (status & Status.SESSION_STATE_CHANGED) === 0 || r.remaining === 0) return { affectedRows, status };
  r.lenencBytes();
  const state = r.lenencBytes();
  if (r.bad || state === undefined) return { affectedRows, status };
  const s = new PayloadReader(state);
  let schema: string | undefined;
  while (s.remaining > 0 && !s.bad) {
    const type = s.u8();
    const data = s.lenencBytes();
    if (data === undefined) break;
    if (type === SESSION_TRACK_SCHEMA) {
      const name = new PayloadReader(data).lenencBytes();
      if (name !== undefined) schema = utf8(name);
    }
  }
  return schema !== undefined ? { affectedRows, status, schema } : { affectedRows, status };
}

export interface MysqlErr {
  readonly code: number;
  readonly sqlState?: string;
  readonly message: string;
}

/** An ERR packet: code, `#` and SQLSTATE (CLIENT_PROTOCOL_41), message. */
export function parseErr(head: Uint8Array): MysqlErr | undefined {
  if (head.length < 3) return undefined;
  const code = head[1]! | (head[2]! << 8);
  if (head.length >= 9 && head[3] === 0x23) {
    return { code, sqlState: utf8(head.subarray(4, 9)), message: utf8(head.subarray(9)) };
  }
  return { code, message: utf8(head.subarray(3)) };
}

/** Status flags of an EOF packet (0xfe, warnings, status), or of an OK. */
export function eofStatus(head: Uint8Array): number {
  return head.length >= 5 ? head[3]! | (head[4]! << 8) : 0;
}

/**
 * Where a COM_QUERY's text starts. With CLIENT_QUERY_ATTRIBUTES (MySQL 8.0.23+)
 * an attribute block comes first: parameter count, parameter set count (1),
 * then for parameters a NULL bitmap, the new-params flag, types and names,
 * and the values. `attributes`: true when the capability is on, undefined when
 * unknown (joined mid-stream: a block is recognised by its first bytes, which
 * text never starts with). Returns -1 when the block cannot be read from the head.
 */
export function queryTextStart(head: Uint8Array, attributes: boolean | undefined): number {
  if (attributes === false) return 1;
  if (attributes === undefined) {
    // Text starts with a printable byte or whitespace; a block with a parameter count < 0x20 and set count 1 does not.
    const c = head[1];
    if (c === undefined || c >= 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || head[2] !== 1) return 1;
  }
  const r = new PayloadReader(head);
  r.skip(1);
  const params = r.lenenc();
  r.lenenc();
  if (params > 0) {
    const nulls = r.pos;
    r.skip((params + 7) >> 3);
    const bind = r.u8();
    if (bind !== 1) return -1;
    const types: number[] = [];
    for (let i = 0; i < params && !r.bad; i++) {
      types.push(r.u8());
      r.u8();
      r.lenencBytes();
    }
    for (let i = 0; i < params && !r.bad; i++) {
      if ((head[nulls + (i >> 3)]! & (1 << (i & 7))) !== 0) continue;
      skipBinaryValue(r, types[i]!);
    }
  }
  return r.bad ? -1 : r.pos;
}

/** Skips one value of the binary protocol by its field type. */
function skipBinaryValue(r: PayloadReader, type: number): void {
  switch (type) {
    case 0x01: // TINY
      r.skip(1);
      return;
    case 0x02: // SHORT
    case 0x0d: // YEAR
      r.skip(2);
      return;
    case 0x03: // LONG
    case 0x09: // INT24
    case 0x04: // FLOAT
      r.skip(4);
      return;
    case 0x05: // DOUBLE
    case 0x08: // LONGLONG
      r.skip(8);
      return;
    case 0x06: // NULL
      return;
    case 0x07: // TIMESTAMP
    case 0x0a: // DATE
    case 0x0b: // TIME
    case 0x0c: // DATETIME
      r.skip(r.u8());
      return;
    default: // strings, decimals, blobs, JSON, BIT, ENUM, SET, GEOMETRY
      r.lenencBytes();
  }
}

