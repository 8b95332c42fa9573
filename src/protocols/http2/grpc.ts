// gRPC over HTTP/2 (the gRPC "PROTOCOL-HTTP2" wire spec): which streams are
// gRPC, the 5-byte message prefixes (counted, never decompressed), status
// names, grpc-timeout. Records follow the OpenTelemetry RPC semantic
// conventions (release-candidate form, semantic-conventions v1.38 and later:
// rpc.system.name, rpc.method, rpc.response.status_code).

/** gRPC status codes by number (statuscodes.md); a code outside them is reported as its decimal string. */
export const GRPC_STATUS_NAMES: readonly string[] = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
];

export const GRPC_CANCELLED = 1;
export const GRPC_DEADLINE_EXCEEDED = 4;
export const GRPC_UNIMPLEMENTED = 12;

/** Statuses that make a SERVER span an error (the conventions' gRPC server list). */
const SERVER_ERRORS = new Set([2, 4, 12, 13, 14, 15]);

export function grpcStatusName(code: number): string {
  return GRPC_STATUS_NAMES[code] ?? String(code);
}

/** Whether a status makes the span an error: any but OK for a CLIENT, the server list for a SERVER. */
export function grpcStatusIsError(server: boolean, code: number): boolean {
  return server ? SERVER_ERRORS.has(code) : code !== 0;
}

/** `application/grpc`, `application/grpc+proto`, `application/grpc;...` (case-insensitive). */
export function isGrpcContentType(v: string | undefined): boolean {
  if (v === undefined || v.length < 16) return false;
  if (v.slice(0, 16).toLowerCase() !== 'application/grpc') return false;
  if (v.length === 16) return true;
  const c = v.charCodeAt(16);
  return c === 0x2b /* + */ || c === 0x3b /* ; */;
}

/** grpc-status: 1 to 10 ASCII digits (a non-negative int32); undefined otherwise. */
export function parseGrpcStatus(v: string | undefined): number | undefined {
  if (v === undefined || v.length === 0 || v.length > 10) return undefined;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return undefined;
  }
  const n = Number(v);
  return n <= 0x7fffffff ? n : undefined;
}

/** Seconds per unit, or (negative) units per second: dividing keeps 9995m exactly 9.995. */
const TIMEOUT_UNITS: Readonly<Record<string, number>> = { H: 3600, M: 60, S: 1, m: -1e3, u: -1e6, n: -1e9 };

/** grpc-timeout (`TimeoutValue TimeoutUnit`, at most 8 digits) in seconds; undefined when malformed. */
export function parseGrpcTimeout(v: string | undefined): number | undefined {
  if (v === undefined || v.length < 2 || v.length > 9) return undefined;
  const unit = TIMEOUT_UNITS[v[v.length - 1]!];
  if (unit === undefined) return undefined;
  for (let i = 0; i < v.length - 1; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return undefined;
  }
  const n = Number(v.slice(0, -1));
  return unit > 0 ? n * unit : n / -unit;
}

/**
 * grpc-message is percent-encoded UTF-8 (PROTOCOL-HTTP2.md, "Status-Message"):
 * decoded, a `%` not followed by two hex digits kept as is (the spec asks
 * receivers to decode leniently), then cut to `max` characters.
 */
export function decodeGrpcMessage(v: string, max: number): string {
  let text = v;
  if (v.includes('%')) {
    const bytes: number[] = [];
    for (let i = 0; i < v.length; i++) {
      const c = v.charCodeAt(i);
      if (c === 0x25 && i + 2 < v.length && isHex(v.charCodeAt(i + 1)) && isHex(v.charCodeAt(i + 2))) {
        bytes.push(parseInt(v.slice(i + 1, i + 3), 16));
        i += 2;
      } else bytes.push(c & 0xff);
    }
    text = Buffer.from(bytes).toString('utf8');
  }
  return text.length > max ? text.slice(0, max) : text;
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/**
 * `rpc.method` from `:path` `/package.Service/Method`: the path without its
 * leading slash when it has exactly that shape, else undefined (the
 * conventions then call it `_OTHER`).
 */
export function grpcMethodOf(path: string): string | undefined {
  if (path.length < 4 || path.charCodeAt(0) !== 0x2f) return undefined;
  const slash = path.indexOf('/', 1);
  if (slash <= 1 || slash === path.length - 1 || path.indexOf('/', slash + 1) >= 0) return undefined;
  for (let i = 1; i < path.length; i++) {
    const c = path.charCodeAt(i);
    // No query, fragment, space or control byte in a method path.
    if (c <= 0x20 || c === 0x3f || c === 0x23 || c >= 0x7f) return undefined;
  }
  return path.slice(1);
}

/**
 * Length-prefixed messages of one direction of one stream (1 byte
 * compressed flag, 4 bytes big-endian length, the message): counted and
 * sized, never decoded. A gap inside a message is skipped exactly; one in a
 * prefix loses the framing (counts then unknown).
 */
export class GrpcMessageCounter {
  messages = 0;
  /** Message bytes, prefixes excluded. */
  bytes = 0;
  compressed = false;
  /** The framing was lost (a gap in a prefix, or a flag byte that is not 0 or 1): counts are not exact. */
  lost = false;
  /** Prefix bytes read of the current prefix (0-5). */
  private fill = 0;
  private length = 0;
  /** Message bytes still to pass. */
  private left = 0;

  data(b: Uint8Array): void {
    if (this.lost) return;
    let i = 0;
    const end = b.length;
    while (i < end) {
      if (this.left > 0) {
        const n = Math.min(this.left, end - i);
        this.left -= n;
        i += n;
        continue;
      }
      const byte = b[i++]!;
      if (this.fill === 0) {
        if (byte > 1) {
          this.lost = true;
          return;
        }
        if (byte === 1) this.compressed = true;
        this.length = 0;
      } else {
        this.length = this.length * 256 + byte;
      }
      if (++this.fill === 5) {
        this.fill = 0;
        this.messages++;
        this.bytes += this.length;
        this.left = this.length;
      }
    }
  }

  gap(bytes: number): void {
    if (this.lost) return;
    if (this.fill === 0 && bytes <= this.left) this.left -= bytes;
    else this.lost = true;
  }

  /** The direction ended: a message cut short leaves the counts inexact. */
  end(): void {
    if (this.fill !== 0 || this.left !== 0) this.lost = true;
  }
}
