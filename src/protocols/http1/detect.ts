// Recognises the first line of an HTTP/1.x message (RFC 9112 §3 request-line,
// §4 status-line). Used by detect() and to pick the chunks where a side may
// (re)start parsing after joining mid-stream, an error or a gap.

/** Methods a request line may start with (RFC 9110 §9, RFC 5789 PATCH, WebDAV and the other HTTP methods llhttp knows). */
const METHODS = [
  'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH',
  'COPY', 'LOCK', 'MKCOL', 'MOVE', 'PROPFIND', 'PROPPATCH', 'SEARCH', 'UNLOCK', 'BIND', 'REBIND', 'UNBIND', 'ACL',
  'REPORT', 'MKACTIVITY', 'CHECKOUT', 'MERGE', 'M-SEARCH', 'NOTIFY', 'SUBSCRIBE', 'UNSUBSCRIBE', 'PURGE',
  'MKCALENDAR', 'LINK', 'UNLINK', 'SOURCE', 'QUERY',
] as const;

const METHOD_BYTES = METHODS.map((m) => Buffer.from(`${m} `, 'latin1'));

export type LineClass = 'match' | 'more' | 'no';

const SP = 0x20;
const CR = 0x0d;

/** A request-target byte: visible ASCII (RFC 9112 §3.2 forms are all made of these). */
function isTargetByte(b: number): boolean {
  return b > 0x20 && b < 0x7f;
}

/**
 * Whether `data` starts with `method SP request-target SP HTTP/1.x CR`.
 * `more`: a prefix of such a line (a few more bytes could decide).
 * `limit`: a target still running at this many bytes is accepted as long as it
 * is origin-form ("/..."): request lines longer than a detection window exist.
 */
export function classifyRequestLine(data: Uint8Array, limit = Infinity): LineClass {
  let i = 0;
  let prefix = false;
  let method: Buffer | undefined;
  for (const m of METHOD_BYTES) {
    const n = Math.min(m.length, data.length);
    let same = true;
    for (let k = 0; k < n; k++) {
      if (data[k] !== m[k]) {
        same = false;
        break;
      }
    }
    if (!same) continue;
    if (data.length < m.length) prefix = true;
    else {
      method = m;
      break;
    }
  }
  if (method === undefined) return prefix ? 'more' : 'no';
  i = method.length;
  if (i >= data.length) return 'more';
  const targetStart = i;
  const first = data[i]!;
  // origin-form "/...", asterisk-form "*", absolute-form "http://..." or authority-form "host:port" (CONNECT).
  if (!(first === 0x2f || first === 0x2a || isAlnum(first))) return 'no';
  while (i < data.length && isTargetByte(data[i]!)) i++;
  if (i >= data.length) {
    return i >= limit && first === 0x2f ? 'match' : 'more';
  }
  if (data[i] !== SP || i === targetStart) return 'no';
  return matchVersion(data, i + 1, CR);
}

/** Whether `data` starts with `HTTP/1.x SP 3DIGIT (SP | CR)`. */
export function classifyStatusLine(data: Uint8Array): LineClass {
  const v = matchVersion(data, 0, SP);
  if (v !== 'match') return v;
  for (let k = 9; k < 12; k++) {
    if (k >= data.length) return 'more';
    const b = data[k]!;
    if (b < 0x30 || b > 0x39) return 'no';
  }
  if (data[9] === 0x30) return 'no'; // status codes are 100..999
  if (data.length === 12) return 'more';
  return data[12] === SP || data[12] === CR ? 'match' : 'no';
}

const HTTP1 = Buffer.from('HTTP/1.', 'latin1');

/** "HTTP/1.0" or "HTTP/1.1" at `at`, followed by `next`. */
function matchVersion(data: Uint8Array, at: number, next: number): LineClass {
  for (let k = 0; k < HTTP1.length; k++) {
    if (at + k >= data.length) return 'more';
    if (data[at + k] !== HTTP1[k]) return 'no';
  }
  const minor = at + HTTP1.length;
  if (minor >= data.length) return 'more';
  if (data[minor] !== 0x30 && data[minor] !== 0x31) return 'no';
  if (minor + 1 >= data.length) return 'more';
  return data[minor + 1] === next ? 'match' : 'no';
}

function isAlnum(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
}
