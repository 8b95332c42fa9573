// One HTTP/2 stream to its L7 record: a gRPC call per the OpenTelemetry RPC
// semantic conventions, anything else an HTTP request by the same rules as
// HTTP/1 (src/protocols/http/semantics.ts). Values come from decoded header
// fields, frame counts and the connection; a field HPACK could not resolve
// is left out, never guessed.

import type { Attributes, CallKind, ConnectionInfo, InstrumentSpec, L7Record, RecordMeasurement, SpanAttributes } from '../types';
import {
  authorityOf,
  HTTP_INSTRUMENTS,
  httpMetricAttributes,
  type HttpParseCaches,
  httpStatusError,
  KNOWN_HTTP_METHODS,
  routeOf,
  type Authority,
} from '../http/semantics';
import type { RouteMatcher } from '../http/route';
import { grpcMethodOf, grpcStatusIsError, grpcStatusName, GRPC_UNIMPLEMENTED, parseGrpcStatus, parseGrpcTimeout } from './grpc';
import type { Http2Head, Http2Stream } from './stream';

/** How a stream ended when its response did not end whole. */
export type Http2Ending =
  /** RST_STREAM from either end (Http2Stream.resetCode). */
  | 'reset'
  /** Above the last stream id of the server's GOAWAY: never processed. */
  | 'refused'
  | 'timeout'
  | 'connection_closed';

export interface Http2RecordContext {
  readonly conn: ConnectionInfo;
  readonly kind: CallKind;
  /** Counts a parse cache that emptied itself (made once per session, not per record). */
  readonly onCacheReset: () => void;
  /** The parse caches the sessions of this options object share, and the route matcher (looked up once per session). */
  readonly caches: HttpParseCaches;
  readonly routes: RouteMatcher;
}

/** RFC 9113 §7 error codes, by value. */
const H2_ERRORS: readonly string[] = [
  'NO_ERROR',
  'PROTOCOL_ERROR',
  'INTERNAL_ERROR',
  'FLOW_CONTROL_ERROR',
  'SETTINGS_TIMEOUT',
  'STREAM_CLOSED',
  'FRAME_SIZE_ERROR',
  'REFUSED_STREAM',
  'CANCEL',
  'COMPRESSION_ERROR',
  'CONNECT_ERROR',
  'ENHANCE_YOUR_CALM',
  'INADEQUATE_SECURITY',
  'HTTP_1_1_REQUIRED',
];

export function h2ErrorName(code: number): string {
  return H2_ERRORS[code] ?? `0x${code.toString(16)}`;
}

/** Header fields the decoder could not resolve in this stream's blocks (mid-stream attach): the record says how many. */
export const ATTR_UNKNOWN_FIELDS = 'ebpf_otel.http2.unknown_header_fields';
export const ATTR_GRPC_REQUEST_MESSAGES = 'ebpf_otel.grpc.request.messages';
export const ATTR_GRPC_RESPONSE_MESSAGES = 'ebpf_otel.grpc.response.messages';
export const ATTR_GRPC_REQUEST_BYTES = 'ebpf_otel.grpc.request.bytes';
export const ATTR_GRPC_RESPONSE_BYTES = 'ebpf_otel.grpc.response.bytes';
export const ATTR_GRPC_COMPRESSED = 'ebpf_otel.grpc.compressed';
export const ATTR_GRPC_TIMEOUT = 'ebpf_otel.grpc.timeout';

const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10] as const;

function instrument(name: string, description: string): InstrumentSpec {
  return { name, unit: 's', description, boundaries: DURATION_BUCKETS };
}

export const GRPC_INSTRUMENTS = {
  server: instrument('rpc.server.call.duration', 'Duration of RPCs handled by the server (gRPC, from its first request byte to its last response byte).'),
  client: instrument('rpc.client.call.duration', 'Duration of RPCs made by the client (gRPC, from its first request byte to its last response byte).'),
} as const;

export function buildStreamRecord(ctx: Http2RecordContext, s: Http2Stream, endNs: number, ending: Http2Ending | undefined): L7Record {
  return s.grpc ? grpcRecord(ctx, s, endNs, ending) : httpRecord(ctx, s, endNs, ending);
}

/** error.type of a stream that did not end with a whole response; undefined when it did. */
function endingError(s: Http2Stream, ending: Http2Ending | undefined): string | undefined {
  switch (ending) {
    case undefined:
      return undefined;
    case 'reset':
      return h2ErrorName(s.resetCode ?? 0);
    case 'refused':
      return 'REFUSED_STREAM';
    default:
      return ending;
  }
}

function unknownFields(s: Http2Stream): number {
  return s.request.unknown + (s.response?.unknown ?? 0) + (s.trailers?.unknown ?? 0);
}

/** Where the request went, from :authority; a CLIENT without one falls back to the peer. */
function serverOf(ctx: Http2RecordContext, req: Http2Head, encrypted: boolean): { address: string | undefined; port: number | undefined } {
  const server = ctx.kind === 'server';
  const authority: Authority | undefined = req.authority !== undefined ? authorityOf(ctx.caches, req.authority, ctx.onCacheReset) : undefined;
  if (authority !== undefined) return { address: authority.host, port: authority.port ?? (encrypted ? 443 : 80) };
  if (!server) return { address: ctx.conn.remoteAddr, port: ctx.conn.remotePort };
  return { address: undefined, port: undefined };
}

function peerAttributes(ctx: Http2RecordContext, a: SpanAttributes, address: string | undefined, port: number | undefined): void {
  if (address !== undefined) a['server.address'] = address;
  if (port !== undefined) a['server.port'] = port;
  if (ctx.kind === 'server') {
    a['client.address'] = ctx.conn.remoteAddr;
    a['client.port'] = ctx.conn.remotePort;
  }
  a['network.peer.address'] = ctx.conn.remoteAddr;
  a['network.peer.port'] = ctx.conn.remotePort;
}

function base(ctx: Http2RecordContext, s: Http2Stream, endNs: number, name: string, a: SpanAttributes, errorType: string | undefined, error: boolean, measurements: RecordMeasurement[], statusMessage?: string): L7Record {
  return {
    protocol: 'http2',
    kind: ctx.kind,
    connId: ctx.conn.connId,
    tgid: ctx.conn.tgid,
    startNs: s.startNs,
    endNs,
    name,
    attributes: a,
    status: error ? 'error' : 'unset',
    ...(statusMessage !== undefined && error ? { statusMessage } : {}),
    ...(errorType !== undefined ? { errorType } : {}),
    ...(s.traceContext !== undefined ? { traceContext: s.traceContext } : {}),
    sequence: s.sequence,
    measurements,
  };
}

function httpRecord(ctx: Http2RecordContext, s: Http2Stream, endNs: number, ending: Http2Ending | undefined): L7Record {
  const server = ctx.kind === 'server';
  const req = s.request;
  const res = s.response;
  const caches = ctx.caches;
  const method = req.method === undefined ? undefined : KNOWN_HTTP_METHODS.has(req.method) ? req.method : '_OTHER';
  const scheme = req.scheme === 'http' || req.scheme === 'https' ? req.scheme : ctx.conn.encrypted ? 'https' : 'http';
  const encrypted = scheme === 'https';
  // The path without its query (url.query needs the HTTP options' captureQuery: not offered for HTTP/2 yet).
  let path: string | undefined;
  if (req.path !== undefined && req.path.charCodeAt(0) === 0x2f) {
    const q = req.path.indexOf('?');
    path = q < 0 ? req.path : req.path.slice(0, q);
  }
  const route = server && path !== undefined ? routeOf(caches, ctx.routes, path, ctx.onCacheReset) : undefined;
  const status = res?.status;
  const errorType = endingError(s, ending) ?? httpStatusError(server, status);
  const where = serverOf(ctx, req, encrypted);

  const a: SpanAttributes = {};
  if (method !== undefined) a['http.request.method'] = method;
  if (method === '_OTHER') a['http.request.method_original'] = req.method!;
  if (server && path !== undefined) a['url.path'] = path;
  a['url.scheme'] = scheme;
  if (!server && path !== undefined && req.authority !== undefined) a['url.full'] = `${scheme}://${req.authority.toLowerCase()}${path}`;
  if (status !== undefined) a['http.response.status_code'] = status;
  if (route !== undefined) a['http.route'] = route;
  a['network.protocol.version'] = '2';
  peerAttributes(ctx, a, where.address, where.port);
  if (req.userAgent !== undefined) a['user_agent.original'] = req.userAgent;
  const requestBody = s.requestEnded && !s.requestBodyLost ? s.requestBody : undefined;
  const responseBody = s.responseEnded && !s.responseBodyLost ? s.responseBody : undefined;
  if (requestBody !== undefined) a['http.request.body.size'] = requestBody;
  if (responseBody !== undefined) a['http.response.body.size'] = responseBody;
  if (errorType !== undefined) a['error.type'] = errorType;
  const unknown = unknownFields(s);
  if (unknown > 0) a[ATTR_UNKNOWN_FIELDS] = unknown;

  const metric = httpMetricAttributes(caches, server, encrypted, method ?? '_OTHER', status, route, '2', server ? undefined : where.address, server ? undefined : where.port, errorType);
  const instruments = server ? HTTP_INSTRUMENTS.server : HTTP_INSTRUMENTS.client;
  const measurements: RecordMeasurement[] = [];
  // A request whose method is not known has no metric series: its required attribute is missing.
  if (method !== undefined) {
    const m = metric.attributes;
    measurements.push({ instrument: instruments.duration, value: Math.max(0, endNs - s.startNs) / 1e9, attributes: m });
    if (requestBody !== undefined) measurements.push({ instrument: instruments.requestBody, value: requestBody, attributes: m });
    if (responseBody !== undefined) measurements.push({ instrument: instruments.responseBody, value: responseBody, attributes: m });
  }
  return base(ctx, s, endNs, method === undefined ? 'HTTP' : metric.name, a, errorType, errorType !== undefined, measurements);
}

/** Metric attribute sets of gRPC records, shared by equal values (bounded; emptied when full). */
const grpcMetricSets = new Map<string, Attributes>();
const GRPC_METRIC_SETS = 1024;

function grpcMetricAttributes(server: boolean, method: string | undefined, status: string | undefined, errorType: string | undefined, address: string | undefined, port: number | undefined): Attributes {
  const key = `${server ? 's' : 'c'}\u0000${method ?? ''}\u0000${status ?? ''}\u0000${errorType ?? ''}\u0000${address ?? ''}\u0000${port ?? ''}`;
  let m = grpcMetricSets.get(key);
  if (m !== undefined) return m;
  const made: Attributes = { 'rpc.system.name': 'grpc' };
  if (method !== undefined) made['rpc.method'] = method;
  if (status !== undefined) made['rpc.response.status_code'] = status;
  if (errorType !== undefined) made['error.type'] = errorType;
  if (address !== undefined) made['server.address'] = address;
  if (port !== undefined) made['server.port'] = port;
  m = Object.freeze(made);
  if (grpcMetricSets.size >= GRPC_METRIC_SETS) grpcMetricSets.clear();
  grpcMetricSets.set(key, m);
  return m;
}

function grpcRecord(ctx: Http2RecordContext, s: Http2Stream, endNs: number, ending: Http2Ending | undefined): L7Record {
  const server = ctx.kind === 'server';
  const req = s.request;
  // Trailers carry the status; trailers-only responses carry it in their one HEADERS.
  const statusText = s.trailers !== undefined ? s.trailers.grpcStatus : s.response?.grpcStatus;
  const code = parseGrpcStatus(statusText);
  const statusName = code !== undefined ? grpcStatusName(code) : undefined;
  const statusMessage = s.trailers !== undefined ? s.trailers.grpcMessage : s.response?.grpcMessage;
  // A method the server did not know (UNIMPLEMENTED) or a path not shaped as one is _OTHER (the conventions' rule for unrecognised methods).
  const path = req.path;
  const shaped = path !== undefined ? grpcMethodOf(path) : undefined;
  const method = path === undefined ? undefined : shaped !== undefined && code !== GRPC_UNIMPLEMENTED ? shaped : '_OTHER';

  let errorType: string | undefined;
  let error: boolean;
  if (code !== undefined) {
    error = grpcStatusIsError(server, code);
    if (error) errorType = statusName;
  } else {
    // No status: the call did not end as gRPC defines (reset, refused, closed, timed out, or the status field unknown).
    errorType = endingError(s, ending);
    if (errorType === undefined && s.response?.status !== undefined && s.response.status !== 200) errorType = String(s.response.status);
    error = errorType !== undefined;
  }
  const encrypted = req.scheme === 'https' || (req.scheme === undefined && ctx.conn.encrypted);
  const where = serverOf(ctx, req, encrypted);

  const a: SpanAttributes = { 'rpc.system.name': 'grpc' };
  if (method !== undefined) a['rpc.method'] = method;
  if (method === '_OTHER') a['rpc.method_original'] = path!.charCodeAt(0) === 0x2f ? path!.slice(1) : path!;
  if (statusName !== undefined) a['rpc.response.status_code'] = statusName;
  peerAttributes(ctx, a, where.address, where.port);
  a['network.protocol.name'] = 'http';
  a['network.protocol.version'] = '2';
  if (errorType !== undefined) a['error.type'] = errorType;
  const rq = s.grpcRequest;
  const rs = s.grpcResponse;
  if (rq !== undefined && s.requestEnded && !rq.lost) {
    a[ATTR_GRPC_REQUEST_MESSAGES] = rq.messages;
    a[ATTR_GRPC_REQUEST_BYTES] = rq.bytes;
  }
  if (rs !== undefined && s.responseEnded && !rs.lost) {
    a[ATTR_GRPC_RESPONSE_MESSAGES] = rs.messages;
    a[ATTR_GRPC_RESPONSE_BYTES] = rs.bytes;
  }
  if (rq?.compressed === true || rs?.compressed === true) a[ATTR_GRPC_COMPRESSED] = true;
  const timeout = parseGrpcTimeout(req.grpcTimeout);
  if (timeout !== undefined) a[ATTR_GRPC_TIMEOUT] = timeout;
  const unknown = unknownFields(s);
  if (unknown > 0) a[ATTR_UNKNOWN_FIELDS] = unknown;

  // rpc.method is required on the duration metrics: a call whose path HPACK could not resolve makes no point.
  const measurements: RecordMeasurement[] = [];
  if (method !== undefined) {
    const m = grpcMetricAttributes(server, method, statusName, errorType, server ? undefined : where.address, server ? undefined : where.port);
    measurements.push({ instrument: server ? GRPC_INSTRUMENTS.server : GRPC_INSTRUMENTS.client, value: Math.max(0, endNs - s.startNs) / 1e9, attributes: m });
  }
  const name = method !== undefined && method !== '_OTHER' ? method : 'grpc';
  return base(ctx, s, endNs, name, a, errorType, error, measurements, statusMessage);
}
