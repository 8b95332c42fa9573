// PostgreSQL protocol messages for tests, built from the documented formats
// (PostgreSQL docs, "Message Formats"): the frontend messages a raw client
// sends (what `pg` never does: pipelined batches, a cancel request) and the
// backend messages session tests answer with.

function typed(type: string, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const head = Buffer.alloc(5);
  head[0] = type.charCodeAt(0);
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

const cstr = (s: string): Buffer => Buffer.from(`${s}\0`, 'utf8');
const i16 = (n: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
};
const i32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};

export const front = {
  startup(params: Record<string, string>): Buffer {
    const body = Buffer.concat([i32(196608), ...Object.entries(params).flatMap(([k, v]) => [cstr(k), cstr(v)]), Buffer.from([0])]);
    return Buffer.concat([i32(body.length + 4), body]);
  },
  sslRequest: (): Buffer => Buffer.concat([i32(8), i32(80877103)]),
  gssencRequest: (): Buffer => Buffer.concat([i32(8), i32(80877104)]),
  cancel: (pid: number, key: number): Buffer => Buffer.concat([i32(16), i32(80877102), i32(pid), i32(key)]),
  query: (sql: string): Buffer => typed('Q', cstr(sql)),
  parse: (name: string, sql: string): Buffer => typed('P', cstr(name), cstr(sql), i16(0)),
  /** Text-format parameters (null for SQL NULL). */
  bind(portal: string, statement: string, values: readonly (string | null)[]): Buffer {
    const params = values.map((v) => (v === null ? i32(-1) : Buffer.concat([i32(Buffer.byteLength(v)), Buffer.from(v)])));
    return typed('B', cstr(portal), cstr(statement), i16(0), i16(values.length), ...params, i16(0));
  },
  describe: (kind: 'S' | 'P', name: string): Buffer => typed('D', Buffer.from(kind), cstr(name)),
  execute: (portal: string, maxRows = 0): Buffer => typed('E', cstr(portal), i32(maxRows)),
  close: (kind: 'S' | 'P', name: string): Buffer => typed('C', Buffer.from(kind), cstr(name)),
  sync: (): Buffer => typed('S'),
  flush: (): Buffer => typed('H'),
  terminate: (): Buffer => typed('X'),
  password: (pw: string): Buffer => typed('p', cstr(pw)),
};

export const back = {
  authOk: (): Buffer => typed('R', i32(0)),
  authCleartext: (): Buffer => typed('R', i32(3)),
  parameterStatus: (name: string, value: string): Buffer => typed('S', cstr(name), cstr(value)),
  backendKeyData: (pid: number, key: number): Buffer => typed('K', i32(pid), i32(key)),
  ready: (status: 'I' | 'T' | 'E' = 'I'): Buffer => typed('Z', Buffer.from(status)),
  parseComplete: (): Buffer => typed('1'),
  bindComplete: (): Buffer => typed('2'),
  closeComplete: (): Buffer => typed('3'),
  noData: (): Buffer => typed('n'),
  rowDescription(names: readonly string[]): Buffer {
    return typed('T', i16(names.length), ...names.flatMap((n) => [cstr(n), Buffer.alloc(18)]));
  },
  dataRow(values: readonly string[]): Buffer {
    return typed('D', i16(values.length), ...values.flatMap((v) => [i32(Buffer.byteLength(v)), Buffer.from(v)]));
  },
  commandComplete: (tag: string): Buffer => typed('C', cstr(tag)),
  error(code: string, message: string): Buffer {
    return typed('E', cstr('SERROR'), cstr('VERROR'), cstr(`C${code}`), cstr(`M${message}`), Buffer.from([0]));
  },
  notice: (message: string): Buffer => typed('N', cstr('SNOTICE'), cstr('C00000'), cstr(`M${message}`), Buffer.from([0])),
  /** The one-byte answer to an SSLRequest / GSSENCRequest. */
  answer: (c: 'S' | 'N' | 'G'): Buffer => Buffer.from(c),
};
