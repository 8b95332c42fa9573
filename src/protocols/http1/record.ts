// Turns a stitched request/response into the L7 record, per the stable
// OpenTelemetry HTTP semantic conventions (spans: docs/http/http-spans.md,
// metrics: docs/http/http-metrics.md). Every value comes from bytes that were
// captured or from the connection; nothing is guessed.

import type { Attributes, CallKind, CarriedTraceContext, ConnectionInfo, InstrumentSpec, L7Record, RecordMeasurement, SpanAttributes } from '../types';
import type { Http1Message } from './message';
import type { RouteMatcher } from '../http/route';
import type { Http1Outcome } from './stitcher';
import { parseTraceContext } from '../http/trace-context';
import { BoundedCache } from '../http/bounded-cache';
import type { Http1Stats } from './counters';

/** Methods the conventions call known (RFC 9110 and PATCH); others are reported as _OTHER. */
const KNOWN_METHODS = new Set(['CONNECT', 'DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT', 'TRACE']);

const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10] as const;
const SIZE_BUCKETS = [0, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864] as const;

function instrument(name: string, unit: string, description: string, boundaries: readonly number[]): InstrumentSpec {
  return { name, unit, description, boundaries };
}

export const HTTP1_INSTRUMENTS = {
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

export interface Http1RecordContext {
  readonly conn: ConnectionInfo;
  readonly kind: CallKind;
  readonly routes: RouteMatcher;
  readonly captureQuery: boolean;
  /** Span attribute keys of captured request / response headers, by capture index (header-names.ts). */
  readonly requestHeaders: readonly string[];
  readonly responseHeaders: readonly string[];
  readonly caches: Http1ParseCaches;
  /** Where a cache that emptied itself is counted. */
  readonly stats: Http1Stats;
}

/** host[:port] as parsed from a Host header or a target (shared by every record that sent the same text: never mutated). */
interface Authority {
  readonly host: string;
  readonly port: number | undefined;
  readonly text: string;
}

/** Where a request was sent, from its target and Host header (RFC 9112 §3.2, §3.3). */
interface Target {
  /** Path without the query, when the target has one. */
  path: string | undefined;
  query: string | undefined;
  /** host[:port] as sent (absolute-form or authority-form target, else the Host header). */
  authority: Authority | undefined;
  /** Userinfo was present in an absolute-form target (redacted in url.full). */
  userinfo: boolean;
}

/** Entries of each parse cache: far more distinct routes and hosts than a service has, few enough to stay small. */
export const HTTP1_CACHE_ENTRIES = 1024;

/**
 * Parses that depend on their input text only, shared by the sessions of one
 * configuration: the route of a path and the parsed Host header. Keyed by the
 * text itself, so a hit can only return what parsing that text gives.
 */
export class Http1ParseCaches {
  readonly routes = new BoundedCache<string>(HTTP1_CACHE_ENTRIES);
  /** null: the text is not an authority. */
  readonly authorities = new BoundedCache<Authority | null>(HTTP1_CACHE_ENTRIES);
  /** Metric attributes and span names of recent records (see metricAttributesOf). */
  readonly metricSets: (MetricAttributeSlot | undefined)[] = new Array<MetricAttributeSlot | undefined>(METRIC_SLOTS).fill(undefined);
}

/** Slots of the metric attribute table: a direct-mapped table never grows, a collision is a miss. */
const METRIC_SLOTS = 64;

/**
 * The values a record's metric attributes (and span name) are made of, and
 * what they make. `attributes` is frozen and shared by every record with the
 * same values: the metrics layer can tell a set it has seen by the object.
 */
interface MetricAttributeSlot {
  readonly server: boolean;
  /** url.scheme https: the connection is TLS. */
  readonly encrypted: boolean;
  readonly method: string;
  readonly status: number | undefined;
  readonly route: string | undefined;
  readonly version: string;
  /** Client only (server metrics do not carry server.*): undefined for a server. */
  readonly serverAddress: string | undefined;
  readonly serverPort: number | undefined;
  readonly errorType: string | undefined;
  readonly attributes: Attributes;
  readonly name: string;
}

/** Why the request was not parsed to its end (message.ts `Http1Incomplete`); absent when it was. */
export const ATTR_REQUEST_INCOMPLETE = 'ebpf_otel.http.request.incomplete';
/** The request-target was not captured whole (too long to keep, or cut): url.path, url.query, url.full and http.route are absent. */
export const ATTR_TARGET_TRUNCATED = 'ebpf_otel.http.target_truncated';

export function buildRecord(ctx: Http1RecordContext, o: Http1Outcome): L7Record {
  const req = o.request;
  const res = o.response;
  const server = ctx.kind === 'server';
  const known = KNOWN_METHODS.has(req.method);
  const method = known ? req.method : '_OTHER';
  const target = parseTarget(ctx, req);
  const route = server && target.path !== undefined ? routeOf(ctx, target.path) : undefined;
  const version = res?.version || req.version;
  const status = res?.headersDone ? res.statusCode : undefined;

  let errorType: string | undefined = o.giveUp;
  // A request the agent could not parse whole and the server rejected (4xx): the rejection is the error.
  const rejectedAt = req.incomplete !== undefined ? 400 : server ? 500 : 400;
  if (errorType === undefined && status !== undefined && status >= rejectedAt) errorType = String(status);

  // Where the request went: the Host header (or the target's authority); clients fall back to the peer.
  let serverAddress = target.authority?.host;
  const encrypted = ctx.conn.encrypted;
  let serverPort = target.authority?.port ?? (target.authority !== undefined ? (encrypted ? 443 : 80) : undefined);
  if (!server && serverAddress === undefined) {
    serverAddress = ctx.conn.remoteAddr;
    serverPort = ctx.conn.remotePort;
  }

  const a: SpanAttributes = { 'http.request.method': method };
  // Captured headers early: V8 keeps an object's fast properties when keys
  // computed at run time are added while it has few properties, not after
  // (then every consumer walks a dictionary). Order does not matter for the
  // span attribute limit: at most 2 x maxCapturedLines of them.
  if (ctx.requestHeaders.length > 0) addHeaders(a, ctx.requestHeaders, req);
  if (res !== undefined && ctx.responseHeaders.length > 0) addHeaders(a, ctx.responseHeaders, res);
  if (!known) a['http.request.method_original'] = req.method;
  if (server && target.path !== undefined) a['url.path'] = target.path;
  a['url.scheme'] = encrypted ? 'https' : 'http';
  if (ctx.captureQuery && target.query !== undefined) a['url.query'] = redactQuery(target.query);
  if (!server) {
    const full = urlFull(ctx, target);
    if (full !== undefined) a['url.full'] = full;
  }
  if (status !== undefined) a['http.response.status_code'] = status;
  if (route !== undefined) a['http.route'] = route;
  if (version !== '') a['network.protocol.version'] = version;
  if (serverAddress !== undefined) a['server.address'] = serverAddress;
  if (serverPort !== undefined) a['server.port'] = serverPort;
  if (server) {
    a['client.address'] = ctx.conn.remoteAddr;
    a['client.port'] = ctx.conn.remotePort;
  }
  a['network.peer.address'] = ctx.conn.remoteAddr;
  a['network.peer.port'] = ctx.conn.remotePort;
  if (req.userAgent.length === 1 && !req.overlong?.includes('user-agent')) a['user_agent.original'] = req.userAgent[0]!;
  // Body sizes: exact byte counts (gaps inside a body included) of messages received whole; none is 0.
  const requestBody = req.complete ? req.bodyBytes : undefined;
  const switched = status === 101 || (req.method === 'CONNECT' && status !== undefined && status >= 200 && status < 300);
  const responseBody = res?.complete && !switched ? res.bodyBytes : undefined;
  if (requestBody !== undefined) a['http.request.body.size'] = requestBody;
  if (responseBody !== undefined) a['http.response.body.size'] = responseBody;
  if (errorType !== undefined) a['error.type'] = errorType;
  // Not parsed to its end: why, and whether the target was cut (then url.* and http.route are absent, never guessed).
  if (req.incomplete !== undefined) a[ATTR_REQUEST_INCOMPLETE] = req.incomplete;
  if (req.target === undefined) a[ATTR_TARGET_TRUNCATED] = true;

  const metric = metricAttributesOf(ctx.caches, server, encrypted, method, status, route, version, server ? undefined : serverAddress, server ? undefined : serverPort, errorType);
  const m = metric.attributes;

  const instruments = server ? HTTP1_INSTRUMENTS.server : HTTP1_INSTRUMENTS.client;
  const measurements: RecordMeasurement[] = [
    { instrument: instruments.duration, value: Math.max(0, o.endNs - req.startNs) / 1e9, attributes: m },
  ];
  if (requestBody !== undefined) measurements.push({ instrument: instruments.requestBody, value: requestBody, attributes: m });
  if (responseBody !== undefined) measurements.push({ instrument: instruments.responseBody, value: responseBody, attributes: m });

  // Trace context only from a head parsed whole (a later traceparent line could have made it invalid).
  const traceContext = req.headersDone ? traceContextOf(req) : undefined;
  return {
    protocol: 'http1',
    kind: ctx.kind,
    connId: ctx.conn.connId,
    tgid: ctx.conn.tgid,
    startNs: req.startNs,
    endNs: o.endNs,
    name: metric.name,
    attributes: a,
    status: errorType !== undefined ? 'error' : 'unset',
    ...(errorType !== undefined ? { errorType } : {}),
    ...(traceContext !== undefined ? { traceContext } : {}),
    sequence: req.index,
    measurements,
  };
}

/**
 * The shared metric attributes (and span name) for these values: from the
 * slot their values hash to when it holds exactly them, else made and put
 * there. Every value is compared, so a record never gets another's set.
 */
function metricAttributesOf(
  caches: Http1ParseCaches,
  server: boolean,
  encrypted: boolean,
  method: string,
  status: number | undefined,
  route: string | undefined,
  version: string,
  serverAddress: string | undefined,
  serverPort: number | undefined,
  errorType: string | undefined,
): MetricAttributeSlot {
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
  // Metric attributes: bounded cardinality only (no path, no peer; the Host header is
  // client-controlled, so server.* is kept for client metrics only, where it is required).
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

/** The W3C trace context a request carried, if valid (headers too long to keep are not used). */
export function traceContextOf(req: Http1Message): CarriedTraceContext | undefined {
  if (req.overlong?.includes('traceparent')) return undefined;
  return parseTraceContext(req.traceparent, req.overlong?.includes('tracestate') ? [] : req.tracestate);
}

/**
 * http.{request,response}.header.<name>: every line of the header, in order
 * (the conventions' array form). Only from a head received whole; a header
 * with a line that could not be kept is absent (message.ts `captured`).
 */
function addHeaders(a: SpanAttributes, keys: readonly string[], m: Http1Message): void {
  const captured = m.captured;
  if (captured === undefined || !m.headersDone) return;
  for (let i = 0; i < keys.length; i++) {
    const lines = captured[i];
    if (lines) a[keys[i]!] = lines;
  }
}

const ABSOLUTE = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^#]*)/;

function routeOf(ctx: Http1RecordContext, path: string): string | undefined {
  const cached = ctx.caches.routes.get(path);
  if (cached !== undefined) return cached;
  const route = ctx.routes.route(path);
  if (route !== undefined && ctx.caches.routes.set(path, route)) ctx.stats.parseCacheResets++;
  return route;
}

/** parseAuthority through the cache (Host headers repeat on every request). */
function authorityOf(ctx: Http1RecordContext, text: string): Authority | undefined {
  const cached = ctx.caches.authorities.get(text);
  if (cached !== undefined) return cached ?? undefined;
  const authority = parseAuthority(text);
  if (ctx.caches.authorities.set(text, authority ?? null)) ctx.stats.parseCacheResets++;
  return authority;
}

function parseTarget(ctx: Http1RecordContext, req: Http1Message): Target {
  const t = req.target;
  const hostHeader = req.host.length === 1 && !req.overlong?.includes('host') ? authorityOf(ctx, req.host[0]!) : undefined;
  const out: Target = { path: undefined, query: undefined, authority: undefined, userinfo: false };
  if (t === undefined || t === '') {
    out.authority = hostHeader;
    return out;
  }
  if (t.charCodeAt(0) === 0x2f /* / */) {
    splitQuery(t, out);
    out.authority = hostHeader;
    return out;
  }
  if (req.method === 'CONNECT') {
    out.authority = authorityOf(ctx, t);
    return out;
  }
  const abs = ABSOLUTE.exec(t);
  if (abs !== null) {
    // absolute-form: the target's authority wins over Host (RFC 9112 §3.2.2).
    let auth = abs[2]!;
    const at = auth.lastIndexOf('@');
    out.userinfo = at >= 0;
    if (out.userinfo) auth = auth.slice(at + 1);
    out.authority = parseAuthority(auth);
    const rest = abs[3]! === '' ? '/' : abs[3]!;
    if (rest.startsWith('/')) splitQuery(rest, out);
    return out;
  }
  // asterisk-form ("OPTIONS *") has no path.
  out.authority = hostHeader;
  return out;
}

function splitQuery(t: string, out: Target): void {
  const q = t.indexOf('?');
  if (q < 0) {
    out.path = t;
    return;
  }
  out.path = t.slice(0, q);
  if (q + 1 < t.length) out.query = t.slice(q + 1);
}

const REG_NAME = /^[A-Za-z0-9._~!$&'()*+,;=%-]+$/;
const IPV6 = /^\[([0-9A-Fa-f:.]+)\]$/;

/** host[:port] (RFC 3986 §3.2.2-3.2.3); undefined when it is not one. */
function parseAuthority(text: string): Authority | undefined {
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

function redactQuery(query: string): string {
  return query
    .split('&')
    .map((kv) => {
      const eq = kv.indexOf('=');
      return eq > 0 && SENSITIVE_QUERY.has(kv.slice(0, eq)) ? `${kv.slice(0, eq)}=REDACTED` : kv;
    })
    .join('&');
}

/** url.full of a client span: scheme, the authority as sent (or the peer), path and, if captured, query. */
function urlFull(ctx: Http1RecordContext, target: Target): string | undefined {
  if (target.path === undefined) return undefined;
  let authority: string;
  if (target.authority !== undefined) {
    authority = `${target.userinfo ? 'REDACTED:REDACTED@' : ''}${target.authority.text.toLowerCase()}`;
  } else {
    const addr = ctx.conn.remoteAddr.includes(':') ? `[${ctx.conn.remoteAddr}]` : ctx.conn.remoteAddr;
    authority = `${addr}:${ctx.conn.remotePort}`;
  }
  const query = ctx.captureQuery && target.query !== undefined ? `?${redactQuery(target.query)}` : '';
  return `${ctx.conn.encrypted ? 'https' : 'http'}://${authority}${target.path}${query}`;
}
