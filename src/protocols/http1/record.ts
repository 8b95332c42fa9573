// Turns a stitched request/response into the L7 record, per the stable
// OpenTelemetry HTTP semantic conventions (spans: docs/http/http-spans.md,
// metrics: docs/http/http-metrics.md). Every value comes from bytes that were
// captured or from the connection; nothing is guessed. What is HTTP/1's is
// here (target forms, Host, header capture, requests cut short); the rules
// HTTP/2 records follow too are in ../http/semantics.ts.

import type { CallKind, CarriedTraceContext, ConnectionInfo, L7Record, RecordMeasurement, SpanAttributes } from '../types';
import type { Http1Message } from './message';
import type { RouteMatcher } from '../http/route';
import type { Http1Outcome } from './stitcher';
import { parseTraceContext } from '../http/trace-context';
import {
  authorityOf,
  HTTP_INSTRUMENTS,
  httpMetricAttributes,
  httpStatusError,
  KNOWN_HTTP_METHODS,
  parseAuthority,
  redactQuery,
  routeOf,
  type Authority,
  type HttpParseCaches,
} from '../http/semantics';

export interface Http1RecordContext {
  readonly conn: ConnectionInfo;
  readonly kind: CallKind;
  readonly routes: RouteMatcher;
  readonly captureQuery: boolean;
  /** Span attribute keys of captured request / response headers, by capture index (header-names.ts). */
  readonly requestHeaders: readonly string[];
  readonly responseHeaders: readonly string[];
  readonly caches: HttpParseCaches;
  /** Counts a parse cache that emptied itself (made once per session). */
  readonly onCacheReset: () => void;
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

/** Why the request was not parsed to its end (message.ts `Http1Incomplete`); absent when it was. */
export const ATTR_REQUEST_INCOMPLETE = 'ebpf_otel.http.request.incomplete';
/** The request-target was not captured whole (too long to keep, or cut): url.path, url.query, url.full and http.route are absent. */
export const ATTR_TARGET_TRUNCATED = 'ebpf_otel.http.target_truncated';

export function buildRecord(ctx: Http1RecordContext, o: Http1Outcome): L7Record {
  const req = o.request;
  const res = o.response;
  const server = ctx.kind === 'server';
  const known = KNOWN_HTTP_METHODS.has(req.method);
  const method = known ? req.method : '_OTHER';
  const target = parseTarget(ctx, req);
  const route = server && target.path !== undefined ? routeOf(ctx.caches, ctx.routes, target.path, ctx.onCacheReset) : undefined;
  const version = res?.version || req.version;
  const status = res?.headersDone ? res.statusCode : undefined;

  // A request the agent could not parse whole and the server rejected (4xx): the rejection is the error, as for a client.
  const errorType = o.giveUp ?? httpStatusError(server && req.incomplete === undefined, status);

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

  const metric = httpMetricAttributes(ctx.caches, server, encrypted, method, status, route, version, server ? undefined : serverAddress, server ? undefined : serverPort, errorType);
  const m = metric.attributes;

  const instruments = server ? HTTP_INSTRUMENTS.server : HTTP_INSTRUMENTS.client;
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

function parseTarget(ctx: Http1RecordContext, req: Http1Message): Target {
  const t = req.target;
  const hostHeader = req.host.length === 1 && !req.overlong?.includes('host') ? authorityOf(ctx.caches, req.host[0]!, ctx.onCacheReset) : undefined;
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
    out.authority = authorityOf(ctx.caches, t, ctx.onCacheReset);
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
