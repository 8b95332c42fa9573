// PostgreSQL frontend/backend protocol 3.x (PostgreSQL documentation,
// "Frontend/Backend Protocol", chapters "Message Flow" and "Message
// Formats"): the facts the reader, the detector and the session share.
//
// Every message but the first of a connection is a type byte and an Int32
// length that counts itself but not the type byte. The first messages a
// client sends (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest)
// have no type byte: an Int32 length, then an Int32 code.

/** Codes of the untyped first messages. */
export const PG_PROTOCOL_3_0 = 196608; // 3 << 16
/** Newest minor version a StartupMessage may ask for (3.2: PostgreSQL 18). */
export const PG_MAX_MINOR = 2;
export const PG_SSL_REQUEST = 80877103;
export const PG_GSSENC_REQUEST = 80877104;
export const PG_CANCEL_REQUEST = 80877102;

/** Frontend message types (what a client sends). */
export const enum PgFront {
  Bind = 0x42, // B
  Close = 0x43, // C
  Describe = 0x44, // D
  Execute = 0x45, // E
  FunctionCall = 0x46, // F
  Flush = 0x48, // H
  Parse = 0x50, // P
  Query = 0x51, // Q
  Sync = 0x53, // S
  Terminate = 0x58, // X
  CopyData = 0x64, // d
  CopyDone = 0x63, // c
  CopyFail = 0x66, // f
  /** PasswordMessage, SASLInitialResponse, SASLResponse, GSSResponse: skipped, never kept. */
  Password = 0x70, // p
}

/** Backend message types (what a server sends). */
export const enum PgBack {
  ParseComplete = 0x31, // 1
  BindComplete = 0x32, // 2
  CloseComplete = 0x33, // 3
  NotificationResponse = 0x41, // A
  CommandComplete = 0x43, // C
  DataRow = 0x44, // D
  ErrorResponse = 0x45, // E
  CopyInResponse = 0x47, // G
  CopyOutResponse = 0x48, // H
  EmptyQueryResponse = 0x49, // I
  BackendKeyData = 0x4b, // K
  NoticeResponse = 0x4e, // N
  Authentication = 0x52, // R
  ParameterStatus = 0x53, // S
  RowDescription = 0x54, // T
  FunctionCallResponse = 0x56, // V
  CopyBothResponse = 0x57, // W
  ReadyForQuery = 0x5a, // Z
  CopyDone = 0x63, // c
  CopyData = 0x64, // d
  NoData = 0x6e, // n
  PortalSuspended = 0x73, // s
  ParameterDescription = 0x74, // t
  NegotiateProtocolVersion = 0x76, // v
}

/** The single-byte answers to SSLRequest / GSSENCRequest. */
export const PG_ANSWER_SSL = 0x53; // S: TLS follows
export const PG_ANSWER_GSS = 0x47; // G: GSSAPI encryption follows
export const PG_ANSWER_NO = 0x4e; // N: go on in clear

/** Bytes of a typed message header (type and length). */
export const PG_TYPED_HEADER = 5;
/** Bytes of an untyped message header (length and code). */
export const PG_UNTYPED_HEADER = 8;
/** The server refuses a message longer than 1 GiB (PQ_LARGE_MESSAGE_LIMIT); anything larger is not this protocol. */
export const PG_MAX_MESSAGE_LENGTH = 0x40000000;
/** The server refuses a startup packet longer than this (MAX_STARTUP_PACKET_LENGTH). */
export const PG_MAX_STARTUP_LENGTH = 10000;
/** A CancelRequest: length, code, process id, secret key of 4 bytes (3.0) up to 256 bytes (3.2). */
export const PG_MIN_CANCEL_LENGTH = 16;
export const PG_MAX_CANCEL_LENGTH = 12 + 256;

const FRONT = new Uint8Array(256);
for (const c of 'BCDEFHPQSXdcfp') FRONT[c.charCodeAt(0)] = 1;
const BACK = new Uint8Array(256);
for (const c of '123ACDEGHIKNRSTVWZcdnstv') BACK[c.charCodeAt(0)] = 1;

export function isFrontType(t: number): boolean {
  return FRONT[t] === 1;
}

export function isBackType(t: number): boolean {
  return BACK[t] === 1;
}

/** Index of the NUL ending the C string at `from` before `end`, or -1. */
export function cstringEnd(b: Uint8Array, from: number, end: number): number {
  for (let i = from; i < end; i++) if (b[i] === 0) return i;
  return -1;
}

export function readI32(b: Uint8Array, o: number): number {
  return (b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!;
}

export function readI16(b: Uint8Array, o: number): number {
  const v = (b[o]! << 8) | b[o + 1]!;
  return v >= 0x8000 ? v - 0x10000 : v;
}
