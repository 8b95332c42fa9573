// A real OTLP receiver for tests: gRPC (TraceService/Export,
// MetricsService/Export and LogsService/Export, grpc-js on 127.0.0.1:0) and
// OTLP/HTTP protobuf (POST /v1/traces, /v1/metrics, /v1/logs on another port).
// Requests are decoded with the official opentelemetry-proto schema (the
// .proto files shipped by @elastic/mockotlpserver, loaded with protobufjs,
// plus LogRecord.event_name, which they predate), not with the serializer
// under test. It can be told to fail the next N calls with a gRPC status
// (optionally with RetryInfo) or an HTTP status (optionally with Retry-After).
// Spans are counted always; with `keepSpans: false` they are only counted
// (decoded, but not turned into objects or kept), for benchmarks that receive
// millions of them.

import * as http from 'node:http';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import * as protobuf from 'protobufjs';

export type Signal = 'traces' | 'metrics' | 'logs';
export type Transport = 'grpc' | 'http';

export type AttrValue = string | number | boolean | null | AttrValue[] | { [k: string]: AttrValue };
export type Attrs = Record<string, AttrValue>;

export interface ReceivedSpan {
  readonly resource: Attrs;
  readonly scope: { readonly name: string; readonly version: string };
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string;
  readonly traceState: string;
  readonly flags: number;
  readonly name: string;
  /** OTLP SpanKind: 2 SERVER, 3 CLIENT. */
  readonly kind: number;
  readonly startTimeUnixNano: bigint;
  readonly endTimeUnixNano: bigint;
  readonly attributes: Attrs;
  readonly droppedAttributesCount: number;
  readonly events: number;
  readonly links: number;
  /** OTLP StatusCode: 0 UNSET, 1 OK, 2 ERROR. */
  readonly status: { readonly code: number; readonly message: string };
  readonly transport: Transport;
}

export interface ReceivedLog {
  readonly resource: Attrs;
  readonly scope: { readonly name: string; readonly version: string };
  readonly timeUnixNano: bigint;
  readonly observedTimeUnixNano: bigint;
  readonly severityNumber: number;
  readonly severityText: string;
  readonly eventName: string;
  /** null when the record has none. */
  readonly body: AttrValue;
  readonly attributes: Attrs;
  readonly droppedAttributesCount: number;
  readonly flags: number;
  /** Hex, '' when absent. */
  readonly traceId: string;
  readonly spanId: string;
  readonly transport: Transport;
}

export interface ReceivedHistogram {
  readonly count: number;
  readonly sum: number | undefined;
  readonly min: number | undefined;
  readonly max: number | undefined;
  readonly bucketCounts: number[];
  readonly explicitBounds: number[];
}

export interface ReceivedPoint {
  readonly resource: Attrs;
  readonly scope: { readonly name: string; readonly version: string };
  readonly metric: { readonly name: string; readonly unit: string; readonly description: string; readonly type: 'histogram' | 'sum' | 'gauge' | 'other' };
  /** OTLP AggregationTemporality: 1 DELTA, 2 CUMULATIVE (0 for gauges). */
  readonly temporality: number;
  readonly monotonic: boolean;
  readonly attributes: Attrs;
  readonly value: number | undefined;
  readonly histogram: ReceivedHistogram | undefined;
  readonly startTimeUnixNano: bigint;
  readonly timeUnixNano: bigint;
  /** Index of the export call that carried it. */
  readonly call: number;
}

export interface ReceivedCall {
  readonly signal: Signal;
  readonly transport: Transport;
  readonly atMs: number;
  /** 'ok', or the gRPC status code / HTTP status sent back. */
  readonly outcome: 'ok' | number;
  /** Request headers (HTTP) or metadata (gRPC), lowercased keys. */
  readonly headers: Readonly<Record<string, string>>;
}

export interface Failure {
  /** gRPC status code for gRPC calls (default UNAVAILABLE). */
  readonly grpcCode?: number;
  /** RetryInfo.retry_delay to attach, in ms. */
  readonly retryDelayMillis?: number;
  /** HTTP status for OTLP/HTTP calls (default 503). */
  readonly httpStatus?: number;
  /** Retry-After header, in seconds. */
  readonly retryAfterSeconds?: number;
  /** Only calls of this signal fail (default: any). */
  readonly signal?: Signal;
  readonly message?: string;
}

const PROTO_DIR = path.dirname(require.resolve('@elastic/mockotlpserver/package.json'));

function loadSchema(): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : path.join(PROTO_DIR, target));
  root.loadSync(
    [
      'opentelemetry/proto/collector/trace/v1/trace_service.proto',
      'opentelemetry/proto/collector/metrics/v1/metrics_service.proto',
      'opentelemetry/proto/collector/logs/v1/logs_service.proto',
    ],
    { keepCase: false },
  );
  // LogRecord.event_name = 12 (opentelemetry-proto 1.5.0): newer than the shipped schema.
  const logRecord = root.lookupType('opentelemetry.proto.logs.v1.LogRecord');
  if (!logRecord.fields['eventName']) logRecord.add(new protobuf.Field('eventName', 12, 'string'));
  // google.rpc.Status and RetryInfo, for failures with details (googleapis field numbers).
  protobuf.parse(
    `syntax = "proto3";
     package testrpc;
     message Any { string type_url = 1; bytes value = 2; }
     message Duration { int64 seconds = 1; int32 nanos = 2; }
     message Status { int32 code = 1; string message = 2; repeated Any details = 3; }
     message RetryInfo { Duration retry_delay = 1; }`,
    root,
  );
  root.resolveAll();
  return root;
}

const schema = loadSchema();
const T = {
  traceReq: schema.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest'),
  traceRes: schema.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse'),
  metricsReq: schema.lookupType('opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest'),
  metricsRes: schema.lookupType('opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceResponse'),
  logsReq: schema.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest'),
  logsRes: schema.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceResponse'),
  status: schema.lookupType('testrpc.Status'),
  retryInfo: schema.lookupType('testrpc.RetryInfo'),
};

const TO_OBJECT: protobuf.IConversionOptions = { longs: String, enums: Number, defaults: true, oneofs: true, arrays: true };

/** An ExportTraceServiceRequest decoded with the official schema, as a plain object (every field, defaults included). */
export function decodeTraceRequest(bytes: Uint8Array): Record<string, unknown> {
  return T.traceReq.toObject(T.traceReq.decode(Buffer.from(bytes)), TO_OBJECT);
}

/** A serialized ExportTraceServiceResponse (with partial_success when given). */
export function traceResponse(partialSuccess?: { rejectedSpans: number; errorMessage: string }): Buffer {
  return Buffer.from(T.traceRes.encode(T.traceRes.create(partialSuccess ? { partialSuccess } : {})).finish());
}

/** An ExportLogsServiceRequest decoded with the official schema (and event_name), as a plain object. */
export function decodeLogsRequest(bytes: Uint8Array): Record<string, unknown> {
  return T.logsReq.toObject(T.logsReq.decode(Buffer.from(bytes)), TO_OBJECT);
}

/** A serialized ExportLogsServiceResponse (with partial_success when given). */
export function logsResponse(partialSuccess?: { rejectedLogRecords: number; errorMessage: string }): Buffer {
  return Buffer.from(T.logsRes.encode(T.logsRes.create(partialSuccess ? { partialSuccess } : {})).finish());
}

/** Serialized google.rpc.Status carrying a RetryInfo. */
export function statusWithRetryInfo(code: number, message: string, retryDelayMillis: number): Buffer {
  const seconds = Math.floor(retryDelayMillis / 1000);
  const nanos = Math.round((retryDelayMillis - seconds * 1000) * 1e6);
  const info = T.retryInfo.encode(T.retryInfo.create({ retryDelay: { seconds, nanos } })).finish();
  return Buffer.from(
    T.status.encode(T.status.create({ code, message, details: [{ typeUrl: 'type.googleapis.com/google.rpc.RetryInfo', value: info }] })).finish(),
  );
}

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function anyValue(v: Obj | null | undefined): AttrValue {
  if (!v || !v['value']) return null;
  const which = v['value'] as string;
  const x = v[which];
  switch (which) {
    case 'stringValue':
    case 'boolValue':
    case 'doubleValue':
      return x;
    case 'intValue':
      return Number(x);
    case 'arrayValue':
      return ((x?.values ?? []) as Obj[]).map(anyValue);
    case 'kvlistValue':
      return attrs(x?.values ?? []);
    case 'bytesValue':
      return Buffer.from(x).toString('hex');
    default:
      return null;
  }
}

function attrs(list: Obj[]): Attrs {
  const out: Attrs = {};
  for (const kv of list) out[kv['key']] = anyValue(kv['value']);
  return out;
}

const hex = (b: Uint8Array | undefined): string => (b ? Buffer.from(b).toString('hex') : '');

export interface ReceiverOptions {
  /** Keep every span in `spans` (default true); false: only count them. */
  readonly keepSpans?: boolean;
  /** Ports to listen on (default: free ones), e.g. a stopped receiver's, to play a collector coming back. */
  readonly grpcPort?: number;
  readonly httpPort?: number;
  /** gRPC over TLS with this key and certificate; with `clientCa`, clients must present a certificate it signed. */
  readonly grpcTls?: { readonly key: Buffer; readonly cert: Buffer; readonly clientCa?: Buffer };
  /** gRPC on this Unix socket instead of a TCP port. */
  readonly grpcSocketPath?: string;
}

export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  /** Spans received since start or reset, kept or not. */
  spansReceived = 0;
  /** The same, per OTLP SpanKind (index 2: SERVER, 3: CLIENT). */
  readonly spansReceivedByKind: number[] = [0, 0, 0, 0, 0, 0];
  readonly points: ReceivedPoint[] = [];
  readonly logs: ReceivedLog[] = [];
  readonly calls: ReceivedCall[] = [];
  /** Every export request body as received (decompressed), for checks on every exported byte. */
  readonly bodies: Buffer[] = [];
  private failures: { remaining: number; failure: Failure }[] = [];
  private partials: { rejectedSpans: number; errorMessage: string }[] = [];
  private logPartials: { rejectedLogRecords: number; errorMessage: string }[] = [];
  private waiters: (() => void)[] = [];

  private constructor(
    private readonly grpcServer: grpc.Server,
    private readonly httpServer: http.Server,
    readonly grpcPort: number,
    readonly httpPort: number,
    private readonly keepSpans: boolean,
    private readonly grpcScheme: 'http' | 'https' | 'unix',
    private readonly grpcSocketPath?: string,
  ) {}

  /** Starts both servers on 127.0.0.1, on the ports given or free ones. */
  static async start(opts: ReceiverOptions = {}): Promise<OtlpReceiver> {
    const grpcServer = new grpc.Server();
    const httpServer = http.createServer();
    const tls = opts.grpcTls;
    const credentials = tls
      ? grpc.ServerCredentials.createSsl(tls.clientCa ?? null, [{ private_key: tls.key, cert_chain: tls.cert }], tls.clientCa !== undefined)
      : grpc.ServerCredentials.createInsecure();
    const address = opts.grpcSocketPath !== undefined ? `unix://${opts.grpcSocketPath}` : `127.0.0.1:${opts.grpcPort ?? 0}`;
    const grpcPort = await new Promise<number>((resolve, reject) =>
      grpcServer.bindAsync(address, credentials, (err, port) => (err ? reject(err) : resolve(port))),
    );
    await new Promise<void>((resolve) => httpServer.listen(opts.httpPort ?? 0, '127.0.0.1', resolve));
    const httpPort = (httpServer.address() as { port: number }).port;
    const scheme = opts.grpcSocketPath !== undefined ? 'unix' : tls ? 'https' : 'http';
    const r = new OtlpReceiver(grpcServer, httpServer, grpcPort, httpPort, opts.keepSpans ?? true, scheme, opts.grpcSocketPath);
    r.install();
    return r;
  }

  /** gRPC endpoint: http:// (plaintext), https:// (with grpcTls) or unix:// (with grpcSocketPath). */
  get grpcUrl(): string {
    return this.grpcScheme === 'unix' ? `unix://${this.grpcSocketPath}` : `${this.grpcScheme}://127.0.0.1:${this.grpcPort}`;
  }

  /** OTLP/HTTP base URL (append v1/traces, v1/metrics or v1/logs, as OTEL_EXPORTER_OTLP_ENDPOINT does). */
  get httpUrl(): string {
    return `http://127.0.0.1:${this.httpPort}`;
  }

  /** The next `count` calls (of `failure.signal`, if given) fail as described. */
  failNext(count: number, failure: Failure = {}): void {
    this.failures.push({ remaining: count, failure });
  }

  /** The next trace exports that succeed answer with these partial_success values, one each. */
  respondPartially(...partials: { rejectedSpans: number; errorMessage: string }[]): void {
    this.partials.push(...partials);
  }

  /** The next log exports that succeed answer with these partial_success values, one each. */
  respondLogsPartially(...partials: { rejectedLogRecords: number; errorMessage: string }[]): void {
    this.logPartials.push(...partials);
  }

  /** Resolves once `predicate` holds (checked after every call), or rejects after `timeoutMs`. */
  async waitFor(predicate: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (calls: ${JSON.stringify(this.calls.map((c) => c.outcome))})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 100));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async waitForSpans(n: number, timeoutMs = 10_000): Promise<ReceivedSpan[]> {
    await this.waitFor(() => this.spans.length >= n, timeoutMs, `${n} spans`);
    return this.spans;
  }

  async waitForLogs(n: number, timeoutMs = 10_000): Promise<ReceivedLog[]> {
    await this.waitFor(() => this.logs.length >= n, timeoutMs, `${n} log records`);
    return this.logs;
  }

  async waitForCalls(n: number, timeoutMs = 10_000, signal?: Signal): Promise<ReceivedCall[]> {
    const calls = () => this.calls.filter((c) => signal === undefined || c.signal === signal);
    await this.waitFor(() => calls().length >= n, timeoutMs, `${n} calls`);
    return calls();
  }

  /**
   * Points of metric `name` (and `where`, when given), from the latest call
   * that carried such points: with `where`, another agent's later export does
   * not hide them.
   */
  latestPoints(name: string, where: (p: ReceivedPoint) => boolean = () => true): ReceivedPoint[] {
    const of = this.points.filter((p) => p.metric.name === name && where(p));
    if (of.length === 0) return [];
    const last = of[of.length - 1]!.call;
    return of.filter((p) => p.call === last);
  }

  reset(): void {
    this.spans.length = 0;
    this.spansReceived = 0;
    this.spansReceivedByKind.fill(0);
    this.points.length = 0;
    this.logs.length = 0;
    this.calls.length = 0;
    this.bodies.length = 0;
    this.failures = [];
    this.partials = [];
    this.logPartials = [];
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.grpcServer.tryShutdown(() => resolve()));
    this.grpcServer.forceShutdown();
    this.httpServer.closeAllConnections();
    await new Promise<void>((resolve) => this.httpServer.close(() => resolve()));
  }

  private takeFailure(signal: Signal): Failure | undefined {
    const f = this.failures.find((x) => x.remaining > 0 && (x.failure.signal === undefined || x.failure.signal === signal));
    if (!f) return undefined;
    f.remaining--;
    if (f.remaining === 0) this.failures = this.failures.filter((x) => x !== f);
    return f.failure;
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const fn of w) fn();
  }

  private install(): void {
    const raw = <A>(x: A) => x;
    const services: Record<Signal, string> = {
      traces: 'opentelemetry.proto.collector.trace.v1.TraceService',
      metrics: 'opentelemetry.proto.collector.metrics.v1.MetricsService',
      logs: 'opentelemetry.proto.collector.logs.v1.LogsService',
    };
    for (const signal of ['traces', 'metrics', 'logs'] as const) {
      const svc = services[signal];
      const definition: grpc.ServiceDefinition = {
        Export: {
          path: `/${svc}/Export`,
          requestStream: false,
          responseStream: false,
          requestSerialize: raw,
          requestDeserialize: raw,
          responseSerialize: raw,
          responseDeserialize: raw,
        },
      };
      this.grpcServer.addService(definition, {
        Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(call.metadata.getMap())) headers[k] = String(v);
          const failure = this.takeFailure(signal);
          if (failure) {
            const code = failure.grpcCode ?? grpc.status.UNAVAILABLE;
            const metadata = new grpc.Metadata();
            const message = failure.message ?? `test failure ${grpc.status[code]}`;
            if (failure.retryDelayMillis !== undefined) metadata.set('grpc-status-details-bin', statusWithRetryInfo(code, message, failure.retryDelayMillis));
            this.calls.push({ signal, transport: 'grpc', atMs: Date.now(), outcome: code, headers });
            callback({ code, details: message, metadata });
            this.notify();
            return;
          }
          try {
            this.ingest(signal, 'grpc', call.request);
          } catch (e) {
            this.calls.push({ signal, transport: 'grpc', atMs: Date.now(), outcome: grpc.status.INVALID_ARGUMENT, headers });
            callback({ code: grpc.status.INVALID_ARGUMENT, details: String(e) });
            this.notify();
            return;
          }
          this.calls.push({ signal, transport: 'grpc', atMs: Date.now(), outcome: 'ok', headers });
          callback(null, this.response(signal));
          this.notify();
        },
      });
    }

    this.httpServer.on('request', (req, res) => {
      const signal = ({ '/v1/traces': 'traces', '/v1/metrics': 'metrics', '/v1/logs': 'logs' } as Record<string, Signal>)[req.url ?? ''];
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = String(v);
        if (!signal || req.method !== 'POST') {
          res.writeHead(404).end();
          return;
        }
        const failure = this.takeFailure(signal);
        if (failure) {
          const statusCode = failure.httpStatus ?? 503;
          this.calls.push({ signal, transport: 'http', atMs: Date.now(), outcome: statusCode, headers });
          const h: Record<string, string> = {};
          if (failure.retryAfterSeconds !== undefined) h['retry-after'] = String(failure.retryAfterSeconds);
          res.writeHead(statusCode, h).end();
          this.notify();
          return;
        }
        let body = Buffer.concat(chunks);
        try {
          if (req.headers['content-encoding'] === 'gzip') body = zlib.gunzipSync(body);
          if (req.headers['content-type'] !== 'application/x-protobuf') throw new Error(`content-type ${req.headers['content-type']}`);
          this.ingest(signal, 'http', body);
        } catch (e) {
          this.calls.push({ signal, transport: 'http', atMs: Date.now(), outcome: 400, headers });
          res.writeHead(400).end(String(e));
          this.notify();
          return;
        }
        this.calls.push({ signal, transport: 'http', atMs: Date.now(), outcome: 'ok', headers });
        res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end(this.response(signal));
        this.notify();
      });
    });
  }

  private response(signal: Signal): Buffer {
    if (signal === 'metrics') return Buffer.from(T.metricsRes.encode(T.metricsRes.create({})).finish());
    if (signal === 'logs') return logsResponse(this.logPartials.shift());
    return traceResponse(this.partials.shift());
  }

  private countSpan(kind: number): void {
    this.spansReceived++;
    if (kind >= 0 && kind < this.spansReceivedByKind.length) this.spansReceivedByKind[kind]!++;
  }

  private ingest(signal: Signal, transport: Transport, body: Buffer): void {
    this.bodies.push(body);
    if (signal === 'traces' && !this.keepSpans) {
      // Decoding without toObject costs a third as much: enough to count.
      const req = T.traceReq.decode(body) as unknown as { resourceSpans: { scopeSpans: { spans: { kind: number }[] }[] }[] };
      for (const rs of req.resourceSpans) {
        for (const ss of rs.scopeSpans) {
          for (const s of ss.spans) this.countSpan(s.kind);
        }
      }
      return;
    }
    if (signal === 'traces') {
      const req = T.traceReq.toObject(T.traceReq.decode(body), TO_OBJECT) as Obj;
      for (const rs of req['resourceSpans'] as Obj[]) {
        const resource = attrs(rs['resource']?.attributes ?? []);
        for (const ss of rs['scopeSpans'] as Obj[]) {
          const scope = { name: ss['scope']?.name ?? '', version: ss['scope']?.version ?? '' };
          for (const s of ss['spans'] as Obj[]) {
            this.countSpan(s['kind']);
            this.spans.push({
              resource,
              scope,
              traceId: hex(s['traceId']),
              spanId: hex(s['spanId']),
              parentSpanId: hex(s['parentSpanId']),
              traceState: s['traceState'] ?? '',
              flags: s['flags'] ?? 0,
              name: s['name'],
              kind: s['kind'],
              startTimeUnixNano: BigInt(s['startTimeUnixNano']),
              endTimeUnixNano: BigInt(s['endTimeUnixNano']),
              attributes: attrs(s['attributes']),
              droppedAttributesCount: s['droppedAttributesCount'] ?? 0,
              events: (s['events'] ?? []).length,
              links: (s['links'] ?? []).length,
              status: { code: s['status']?.code ?? 0, message: s['status']?.message ?? '' },
              transport,
            });
          }
        }
      }
      return;
    }
    if (signal === 'logs') {
      const req = T.logsReq.toObject(T.logsReq.decode(body), TO_OBJECT) as Obj;
      for (const rl of req['resourceLogs'] as Obj[]) {
        const resource = attrs(rl['resource']?.attributes ?? []);
        for (const sl of rl['scopeLogs'] as Obj[]) {
          const scope = { name: sl['scope']?.name ?? '', version: sl['scope']?.version ?? '' };
          for (const l of sl['logRecords'] as Obj[]) {
            this.logs.push({
              resource,
              scope,
              timeUnixNano: BigInt(l['timeUnixNano']),
              observedTimeUnixNano: BigInt(l['observedTimeUnixNano']),
              severityNumber: l['severityNumber'],
              severityText: l['severityText'],
              eventName: l['eventName'],
              body: anyValue(l['body']),
              attributes: attrs(l['attributes']),
              droppedAttributesCount: l['droppedAttributesCount'],
              flags: l['flags'],
              traceId: hex(l['traceId']),
              spanId: hex(l['spanId']),
              transport,
            });
          }
        }
      }
      return;
    }
    const call = this.calls.length;
    const req = T.metricsReq.toObject(T.metricsReq.decode(body), TO_OBJECT) as Obj;
    for (const rm of req['resourceMetrics'] as Obj[]) {
      const resource = attrs(rm['resource']?.attributes ?? []);
      for (const sm of rm['scopeMetrics'] as Obj[]) {
        const scope = { name: sm['scope']?.name ?? '', version: sm['scope']?.version ?? '' };
        for (const m of sm['metrics'] as Obj[]) {
          const which = m['data'] as string;
          const type = which === 'histogram' ? 'histogram' : which === 'sum' ? 'sum' : which === 'gauge' ? 'gauge' : 'other';
          const data = m[which] ?? {};
          const metric = { name: m['name'], unit: m['unit'] ?? '', description: m['description'] ?? '', type } as const;
          for (const dp of (data['dataPoints'] ?? []) as Obj[]) {
            const isHist = type === 'histogram';
            this.points.push({
              resource,
              scope,
              metric,
              temporality: data['aggregationTemporality'] ?? 0,
              monotonic: data['isMonotonic'] ?? false,
              attributes: attrs(dp['attributes']),
              value: isHist ? undefined : dp['value'] === 'asInt' ? Number(dp['asInt']) : dp['asDouble'],
              histogram: isHist
                ? {
                    count: Number(dp['count']),
                    sum: dp['sum'] ?? undefined,
                    min: dp['min'] ?? undefined,
                    max: dp['max'] ?? undefined,
                    bucketCounts: (dp['bucketCounts'] as string[]).map(Number),
                    explicitBounds: dp['explicitBounds'] as number[],
                  }
                : undefined,
              startTimeUnixNano: BigInt(dp['startTimeUnixNano']),
              timeUnixNano: BigInt(dp['timeUnixNano']),
              call,
            });
          }
        }
      }
    }
  }
}
