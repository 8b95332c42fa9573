// The gRPC and HTTP/2 test programs: a grpc-js echo server and a client that
// runs one scenario on one channel (contract at the top of grpc_node.js), in
// cleartext or over TLS with the test PKI; a Node http2 server
// (http2_node.js); and what each scenario's calls are, as the tests expect
// them.

import path from 'node:path';
import * as protobuf from 'protobufjs';
import type { ExecutionContext } from 'ava';
import { startWorkload, type Workload } from './agent';
import type { Attrs } from './otlp-receiver';
import type { OtlpTestReceiver } from './use-otlp-receiver';
import { PROGRAMS, type TestCertificates } from './tls';

export const GRPC_NODE = path.join(PROGRAMS, 'grpc_node.js');
export const HTTP2_NODE = path.join(PROGRAMS, 'http2_node.js');

export type GrpcScenario = ['unary', number] | ['mix'] | ['errors'] | ['concurrent', number] | ['big'] | ['preattach', number];

/** The grpc-js server; over TLS with the test server certificate when `certs` is given. */
export function startGrpcServer(certs?: TestCertificates): Promise<Workload> {
  return startWorkload(process.execPath, [GRPC_NODE, 'server', ...(certs ? [certs.serverCert, certs.serverKey] : [])]);
}

/**
 * A client that waits for go() before running the scenario against
 * 127.0.0.1:port (over TLS trusting the test CA when `certs` is given).
 * preattach makes its first calls before its hello.
 */
export function startGrpcClient(port: number, scenario: GrpcScenario, certs?: TestCertificates): Promise<Workload> {
  return startWorkload(process.execPath, [GRPC_NODE, 'client', `127.0.0.1:${port}`, ...scenario.map(String), ...(certs ? ['--ca', certs.caCert] : [])]);
}

/** The Node http2 server: cleartext (prior knowledge), or TLS (h2 by ALPN) with the test server certificate. */
export function startHttp2Server(certs?: TestCertificates): Promise<Workload> {
  return startWorkload(process.execPath, [HTTP2_NODE, 'server', ...(certs ? [certs.serverCert, certs.serverKey] : [])]);
}

/** The Node http2 client: CLIENT_CALLS on one session to `base` (http://127.0.0.1:port), after go(). */
export function startHttp2Client(base: string): Promise<Workload> {
  return startWorkload(process.execPath, [HTTP2_NODE, 'client', base]);
}

/** The Node http2 client's user-agent (http2_node.js CLIENT_UA). */
export const HTTP2_CLIENT_UA = 'h2e2e-node-client';

/** What http2_node.js answers (its ROUTES). */
export const HTTP2_BODIES = {
  items: '{"items":["a","b","c"]}',
  item42: '{"id":42}',
  fail: 'unavailable\n',
  missing: 'not found\n',
  bigBytes: 12000,
} as const;

/** grpc_node.js's INTERNAL failure message: 300 characters. */
export const LONG_DETAILS = 'internal failure '.padEnd(300, 'x');

/** A test.echo.Msg (grpc/echo.proto), fields as the programs set them. */
export interface EchoMsg {
  text?: string;
  blob?: Uint8Array;
  count?: number;
  fail_code?: number;
  delay_ms?: number;
  details?: string;
}

// keepCase: the field names as the programs spell them (fail_code, not failCode).
const echoMsg = new protobuf.Root().loadSync(path.join(PROGRAMS, 'grpc', 'echo.proto'), { keepCase: true }).lookupType('test.echo.Msg');

/** The serialized size of a message, each field given written (even at its default): what a gRPC length prefix announces. */
export function echoMsgBytes(m: EchoMsg): number {
  return echoMsg.encode(m).finish().length;
}

/**
 * A message as the server decoded it (proto-loader `defaults: true`: every
 * field set), which is what it echoes: the zero fields are serialized too.
 */
function echoed(m: EchoMsg): EchoMsg {
  return { text: '', blob: new Uint8Array(0), count: 0, fail_code: 0, delay_ms: 0, details: '', ...m };
}

/** One call of a scenario as the wire carries it. */
export interface GrpcCallTruth {
  /** rpc.method as the spec names it ('_OTHER' for an unknown method). */
  readonly method: string;
  /** The full method, `:path` without its '/'. */
  readonly path: string;
  /** grpc-status by name (the deadline's as the server sends it, should its trailers beat the client's RST_STREAM). */
  readonly status: string;
  /** grpc-message, when sent. */
  readonly message?: string;
  readonly requests: readonly EchoMsg[];
  readonly responses: readonly EchoMsg[];
  /** The deadline the client set, in seconds (grpc-timeout rounds it). */
  readonly timeoutS: number;
  /** The messages are larger than the agent captures of a syscall (16 KiB): not counted, either way. */
  readonly uncaptured?: true;
}

const UNARY = 'test.echo.Echo/Unary';
const ok = (m: EchoMsg): GrpcCallTruth => ({ method: UNARY, path: UNARY, status: 'OK', requests: [m], responses: [echoed(m)], timeoutS: 10 });
const failed = (m: EchoMsg, status: string, message = 'failed on purpose'): GrpcCallTruth => ({ method: UNARY, path: UNARY, status, message, requests: [m], responses: [], timeoutS: 10 });
/** The call given a 100 ms deadline the server overruns (500 ms). */
export const DEADLINE_CALL: GrpcCallTruth = { method: UNARY, path: UNARY, status: 'DEADLINE_EXCEEDED', requests: [{ text: 'slow', delay_ms: 500 }], responses: [], timeoutS: 0.1 };

/** Each scenario's calls in the order the client makes them (status codes as grpc-programs.test.ts checks them). */
export function scenarioCalls(scenario: GrpcScenario): GrpcCallTruth[] {
  switch (scenario[0]) {
    case 'unary':
      return Array.from({ length: scenario[1] }, (_, i) => ok({ text: `u${i}` }));
    case 'preattach':
      // The calls after the attach.
      return Array.from({ length: scenario[1] }, (_, i) => ok({ text: `late${i}` }));
    case 'concurrent':
      return Array.from({ length: scenario[1] }, (_, i) => ok({ text: `c${i}`, count: scenario[1] }));
    case 'big': {
      const blob = new Uint8Array(4 * 1024 * 1024);
      for (let i = 0; i < blob.length; i++) blob[i] = i % 251;
      return [{ ...ok({ text: 'big', blob }), uncaptured: true }];
    }
    case 'mix':
      return [
        ok({ text: 'ok' }),
        failed({ text: 'missing', fail_code: 5 }, 'NOT_FOUND'),
        DEADLINE_CALL,
        { method: 'test.echo.Echo/ServerStream', path: 'test.echo.Echo/ServerStream', status: 'OK', requests: [{ text: 's', count: 3 }], responses: [0, 1, 2].map((i) => ({ text: `s-${i}` })), timeoutS: 10 },
        { method: 'test.echo.Echo/ClientStream', path: 'test.echo.Echo/ClientStream', status: 'OK', requests: [0, 1, 2, 3].map((i) => ({ text: `c${i}` })), responses: [{ count: 4 }], timeoutS: 10 },
        { method: 'test.echo.Echo/Bidi', path: 'test.echo.Echo/Bidi', status: 'OK', requests: [{ text: 'b0' }, { text: 'b1' }], responses: [echoed({ text: 'b0' }), echoed({ text: 'b1' })], timeoutS: 10 },
      ];
    case 'errors':
      return [
        failed({ text: 'bad', fail_code: 3 }, 'INVALID_ARGUMENT'),
        failed({ text: 'missing', fail_code: 5 }, 'NOT_FOUND'),
        failed({ text: 'broken', fail_code: 13, details: LONG_DETAILS }, 'INTERNAL', LONG_DETAILS),
        // An empty message to a method the server does not have.
        { method: '_OTHER', path: 'test.echo.Echo/Missing', status: 'UNIMPLEMENTED', message: 'The server does not implement the method /test.echo.Echo/Missing', requests: [{}], responses: [], timeoutS: 10 },
        DEADLINE_CALL,
      ];
  }
}

/**
 * Points of the RPC duration histogram `name` (rpc.server.call.duration or
 * rpc.client.call.duration) for process `pid` in the latest export: each
 * point's attributes checked to be exactly the conventions' set, the counts
 * by "rpc.method status error.type".
 */
export function rpcCallCounts(t: ExecutionContext, otlp: OtlpTestReceiver, name: string, pid: number, port: number): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const p of otlp.receiver.latestPoints(name, (x) => x.resource['process.pid'] === pid)) {
    const a = p.attributes;
    const want: Attrs = { 'rpc.system.name': 'grpc', 'rpc.method': a['rpc.method']! };
    if (a['rpc.response.status_code'] !== undefined) want['rpc.response.status_code'] = a['rpc.response.status_code'];
    if (a['error.type'] !== undefined) want['error.type'] = a['error.type'];
    if (name === 'rpc.client.call.duration') Object.assign(want, { 'server.address': '127.0.0.1', 'server.port': port });
    t.deepEqual(a, want, `${name} point attributes`);
    t.is(p.metric.unit, 's', name);
    counts[`${a['rpc.method']} ${a['rpc.response.status_code'] ?? '-'} ${a['error.type'] ?? '-'}`] = p.histogram!.count;
  }
  return counts;
}
