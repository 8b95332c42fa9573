// HTTP semantics that do not depend on the wire syntax (RFC 9110 and the
// stable OpenTelemetry HTTP semantic conventions, spans:
// docs/http/http-spans.md, metrics: docs/http/http-metrics.md): known
// methods, the instruments, authorities, query redaction, status errors, and
// the caches of parses and metric attribute sets that the sessions of one
// configuration share. HTTP/1 and HTTP/2 records are made by these same rules.

import type { Attributes, InstrumentSpec } from '../types';
import { BoundedCache } from './bounded-cache';
import { RouteMatcher } from './route';

/** Methods the conventions call known (RFC 9110 and PATCH); others are reported as _OTHER. */
export const KNOWN_HTTP_METHODS: ReadonlySet<string> = new Set(['CONNECT', 'DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT', 'TRACE']);

const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10] as const;
const SIZE_BUCKETS = [0, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864] as const;

function instrument(name: string, unit: string, description: string, boundaries: readonly number[]): InstrumentSpec {
  return { name, unit, description, boundaries };
}

export const HTTP_INSTRUMENTS = {
  server: {
    duration: instrument('http.server.request.duration', 's', 'Duration of HTTP server requests.', DURATION_BUCKETS),
    requestBody: instrument('http.server.request.body.size', 'By', 'Size of HTTP server request bodies.', SIZE_BUCKETS),
    responseBody: instrument('http.server.response.body.size', 'By', 'Size of HTTP server response bodies.', SIZE_BUCKETS),
  },
  client: {
    duration: instrument('http.client.request.duration', 's', 'Duration of HTTP client requests.', DURATION_BUCKETS),
    requestBody: instrument('http.client.request.body.size', 'By', 'Size of HTTP client request bodies.', SIZE_BUCKETS),
    responseBody: instrument('http.client.response.body.size', 'By', 'Size of HTTP client response bodies.', SIZE_BUCKETS),
  },
} as const;

/** host[:port] as parsed from a Host header, a target or :authority (shared by every record that sent the same text: never mutated). */
export interface Authority {
  readonly host: string;
  readonly port: number | undefined;
  /** The text it was parsed from, as sent. */
  readonly text: string;
}

const REG_NAME = /^[A-Za-z0-9._~!$&'()*+,;=%-]+$/;
const IPV6 = /^\[([0-9A-Fa-f:.]+)\]$/;

/** host[:port] (RFC 3986 §3.2.2-3.2.3), the host lower-cased; undefined when it is not one. */
export function parseAuthority(text: string): Authority | undefined {
  let host = text;
  let port: number | undefined;
  const colon = text.lastIndexOf(':');
  if (colon >= 0 && !text.endsWith(']')) {
    const p = text.slice(colon + 1);
    if (!/^\d{1,5}$/.test(p) || Number(p) > 65535) return undefined;
    port = Number(p);
    host = text.slice(0, colon);
  }
  const v6 = IPV6.exec(host);
  if (v6 !== null) return { host: v6[1]!, port, text };
  if (host === '' || !REG_NAME.test(host)) return undefined;
  return { host: host.toLowerCase(), port, text };
}

/** Query parameters whose values the conventions ask to redact (signatures in pre-signed URLs). */
const SENSITIVE_QUERY = new Set(['AWSAccessKeyId', 'Signature', 'sig', 'X-Goog-Signature']);

/** The query (without `?`) with the values of SENSITIVE_QUERY parameters replaced by `REDACTED`. */
export function redactQuery(query: string): string {
  return query
    .split('&')
    .map((kv) => {
      const eq = kv.indexOf('=');
      return eq > 0 && SENSITIVE_QUERY.has(kv.slice(0, eq)) ? `${kv.slice(0, eq)}=REDACTED` : kv;
    })
    .join('&');
}

/** error.type from a status alone: servers' 5xx, clients' 4xx and 5xx, as the status code's string; else undefined. */
export function httpStatusError(server: boolean, status: number | undefined): string | undefined {
  return status !== undefined && status >= (server ? 500 : 400) ? String(status) : undefined;
}

/** Entries of each parse cache: far more distinct routes and hosts than a service has, few enough to stay small. */
export const HTTP_CACHE_ENTRIES = 1024;

/** Slots of the metric attribute table: a direct-mapped table never grows, a collision is a miss. */
const METRIC_SLOTS = 64;

/** The values a record's metric attributes and span name are made of. */
export interface HttpMetricKey {
  readonly server: boolean;
  /** url.scheme https: the connection is TLS. */
  readonly encrypted: boolean;
  /** As recorded: `_OTHER` for an unknown method. */
  readonly method: string;
  readonly status: number | undefined;
  readonly route: string | undefined;
  /** network.protocol.version; '' when unknown (then absent). */
  readonly version: string;
  /** Client only (server metrics do not carry server.*): undefined for a server. */
  readonly serverAddress: string | undefined;
  readonly serverPort: number | undefined;
  readonly errorType: string | undefined;
}

/**
 * A slot of the metric attribute table: its key and what it makes.
 * `attributes` is frozen and shared by every record with the same values: the
 * metrics layer can tell a set it has seen by the object.
 */
interface MetricAttributeSlot extends HttpMetricKey {
  readonly attributes: Attributes;
  readonly name: string;
}

/**
 * Parses that depend on their input text only, shared by the sessions of one
 * configuration: the route of a path and the parsed authority. Keyed by the
 * text itself, so a hit can only return what parsing that text gives.
 */
export class HttpParseCaches {
  readonly routes = new BoundedCache<string>(HTTP_CACHE_ENTRIES);
  /** null: the text is not an authority. */
  readonly authorities = new BoundedCache<Authority | null>(HTTP_CACHE_ENTRIES);
  /** Metric attributes and span names of recent records (see httpMetricAttributes). */
  readonly metricSets: (MetricAttributeSlot | undefined)[] = new Array<MetricAttributeSlot | undefined>(METRIC_SLOTS).fill(undefined);
}

/**
 * One set of parse caches per options object: the tracker passes the same one
 * to all its sessions, so they share the caches (a cached route depends on the
 * options' patterns), and two agents in one process never share one.
 */
const caches = new WeakMap<object, HttpParseCaches>();

export function httpParseCaches(options: object): HttpParseCaches {
  let c = caches.get(options);
  if (c === undefined) caches.set(options, (c = new HttpParseCaches()));
  return c;
}

/** One matcher per route list (the tracker passes the same options to every session). */
const matchers = new WeakMap<readonly string[], RouteMatcher>();
const HEURISTIC_ONLY = new RouteMatcher();

export function routeMatcher(routes: readonly string[] | undefined): RouteMatcher {
  if (routes === undefined || routes.length === 0) return HEURISTIC_ONLY;
  let m = matchers.get(routes);
  if (m === undefined) matchers.set(routes, (m = new RouteMatcher(routes)));
  return m;
}

/**
 * The route of `path` through the cache (`routes` must be the matcher of the
 * options `caches` belongs to). `onReset` is called when the cache emptied
 * itself to make room (the caller counts it; pass a function made once, not
 * per call).
 */
export function routeOf(caches: HttpParseCaches, routes: RouteMatcher, path: string, onReset: () => void): string | undefined {
  const cached = caches.routes.get(path);
  if (cached !== undefined) return cached;
  const route = routes.route(path);
  if (route !== undefined && caches.routes.set(path, route)) onReset();
  return route;
}

/** parseAuthority through the cache (Host headers and :authority repeat on every request); `onReset` as for routeOf. */
export function authorityOf(caches: HttpParseCaches, text: string, onReset: () => void): Authority | undefined {
  const cached = caches.authorities.get(text);
  if (cached !== undefined) return cached ?? undefined;
  const authority = parseAuthority(text);
  if (caches.authorities.set(text, authority ?? null)) onReset();
  return authority;
}

/**
 * The frozen metric attributes and the span name for these values: from the
 * slot they hash to when it holds exactly them, else made and put there.
 * Every value is compared, so a record never gets another's set. Metric
 * attributes have bounded cardinality only (no path, no peer; the Host header
 * is client-controlled, so pass server.* for clients only, where it is
 * required). The span name is `{method} {route}` with a route, else
 * `{method}`; `HTTP` for `_OTHER`.
 */
export function httpMetricAttributes(
  caches: HttpParseCaches,
  server: boolean,
  encrypted: boolean,
  method: string,
  status: number | undefined,
  route: string | undefined,
  version: string,
  serverAddress: string | undefined,
  serverPort: number | undefined,
  errorType: string | undefined,
): { readonly attributes: Attributes; readonly name: string } {
  const h = ((status ?? 0) * 31 + (route?.length ?? 0) * 7 + method.length * 3 + (serverPort ?? 0) + (errorType?.length ?? 0) + (server ? 1 : 0) + (encrypted ? 2 : 0)) & (METRIC_SLOTS - 1);
  const slot = caches.metricSets[h];
  if (
    slot !== undefined &&
    slot.server === server &&
    slot.encrypted === encrypted &&
    slot.method === method &&
    slot.status === status &&
    slot.route === route &&
    slot.version === version &&
    slot.serverAddress === serverAddress &&
    slot.serverPort === serverPort &&
    slot.errorType === errorType
  ) {
    return slot;
  }
  const m: Attributes = { 'http.request.method': method };
  if (status !== undefined) m['http.response.status_code'] = status;
  if (route !== undefined) m['http.route'] = route;
  m['url.scheme'] = encrypted ? 'https' : 'http';
  if (version !== '') m['network.protocol.version'] = version;
  if (serverAddress !== undefined) m['server.address'] = serverAddress;
  if (serverPort !== undefined) m['server.port'] = serverPort;
  if (errorType !== undefined) m['error.type'] = errorType;
  const spanMethod = method === '_OTHER' ? 'HTTP' : method;
  const made: MetricAttributeSlot = {
    server,
    encrypted,
    method,
    status,
    route,
    version,
    serverAddress,
    serverPort,
    errorType,
    attributes: Object.freeze(m),
    name: route !== undefined ? `${spanMethod} ${route}` : spanMethod,
  };
  caches.metricSets[h] = made;
  return made;
}
