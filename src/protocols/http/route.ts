// http.route for paths seen on the wire (HTTP/1 and HTTP/2). The
// route is a metric attribute, so it must have bounded cardinality: a raw id
// never survives. User patterns ("/users/:id", "/files/*") are tried first;
// otherwise a heuristic replaces the segments that look like values.

/** Segments kept before the rest of a path collapses into "*". */
export const MAX_ROUTE_SEGMENTS = 8;
/** A segment longer than this is a value, whatever it looks like. */
const MAX_SEGMENT_LENGTH = 40;

interface CompiledPattern {
  readonly route: string;
  /** Literal segments, ":name" (one non-empty segment) or a final "*" (one or more segments, possibly empty). */
  readonly segments: readonly string[];
}

export class RouteMatcher {
  private readonly patterns: readonly CompiledPattern[];

  constructor(patterns: readonly string[] = []) {
    this.patterns = patterns
      .filter((p) => p.startsWith('/'))
      .map((p) => ({ route: p, segments: p.split('/').slice(1) }));
  }

  /** The route of `path` (no query), or undefined when there is none to give. */
  route(path: string): string | undefined {
    if (!path.startsWith('/')) return undefined;
    const segments = path.split('/').slice(1);
    for (const p of this.patterns) if (matches(p.segments, segments)) return p.route;
    return heuristicRoute(segments);
  }
}

function matches(pattern: readonly string[], segments: readonly string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    if (p === '*' && i === pattern.length - 1) return segments.length > i;
    const s = segments[i];
    if (s === undefined) return false;
    if (p.startsWith(':') && p.length > 1) {
      if (s === '') return false;
      continue;
    }
    if (p !== s) return false;
  }
  return pattern.length === segments.length;
}

function heuristicRoute(segments: readonly string[]): string {
  const out: string[] = [];
  for (let i = 0; i < segments.length; i++) {
    if (i === MAX_ROUTE_SEGMENTS) {
      out.push('*');
      break;
    }
    out.push(placeholder(segments[i]!) ?? segments[i]!);
  }
  return `/${out.join('/')}`;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const HEX = /^[0-9a-f]{16,}$/i;
const DATE = /^\d{4}-\d{2}-\d{2}([T_ ]?\d{2}:?\d{2}(:?\d{2}(\.\d+)?)?Z?)?$/;
const EMAIL = /^[^@/]+@[^@/]+\.[^@/]+$/;
const INTEGER = /^[+-]?\d+$/;
/** What a literal path word is made of: unreserved characters (RFC 3986 §2.3) and a few sub-delims. */
const WORD = /^[A-Za-z0-9_.~-]+$/;
/** A version or a word ending in a small number: "v1", "v2.1", "oauth2", "s3". */
const SHORT_TOKEN = /^[A-Za-z][A-Za-z-]*\d{1,2}(\.\d{1,2})*$/;

/** The placeholder a value-like segment becomes, undefined for a literal. */
export function placeholder(segment: string): string | undefined {
  if (segment === '') return undefined;
  if (INTEGER.test(segment)) return '{id}';
  if (UUID.test(segment)) return '{uuid}';
  if (DATE.test(segment)) return '{date}';
  if (EMAIL.test(segment)) return '{email}';
  if (HEX.test(segment)) return '{hash}';
  if (segment.length > MAX_SEGMENT_LENGTH) return '{token}';
  // Percent-encoded or otherwise unusual bytes: a value, not a route word.
  if (!WORD.test(segment)) return '{param}';
  const digits = countDigits(segment);
  if (digits === 0) return undefined;
  if (SHORT_TOKEN.test(segment) || (segment.length <= 3 && digits === 1)) return undefined;
  // Mixed letters and digits: an opaque token or an id with a prefix ("user123", "ord_8f2k").
  return segment.length >= 16 ? '{token}' : '{id}';
}

function countDigits(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) n++;
  }
  return n;
}
