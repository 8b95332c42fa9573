// gRPC peers other than grpc-js, for the gRPC peer tests: Debian's
// python3-grpcio (gRPC C-core, its own HPACK encoder) and grpc-go from
// golang-google-grpc-dev (golang.org/x/net/http2's HPACK), each a server and
// a client with the contract of test/e2e/programs/grpc_node.js (hello line,
// "go" on stdin). What each call is on the wire, for the assertions: its
// path, status, message and the sizes of its messages.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { startWorkload, type Workload } from './agent';
import { PROGRAMS } from './tls';
import { goProgram } from './go-build';

/** Debian's interpreter: python3-grpcio is installed for it, not for another python3 on PATH. */
export const DEBIAN_PYTHON = '/usr/bin/python3';
export const GRPC_PYTHON = path.join(PROGRAMS, 'grpc_python.py');
const GO_GRPC_SOURCE = path.join(PROGRAMS, 'go', 'grpc');
/** The grpc-go server/client, built once per test process: GOPATH mode against Debian's sources, offline (go-build.ts). */
export function goGrpcBinary(): Promise<string> {
  return goProgram(GO_GRPC_SOURCE, { debianGopath: true });
}

export function startPythonGrpcServer(): Promise<Workload> {
  return startWorkload(DEBIAN_PYTHON, [GRPC_PYTHON, 'server']);
}

/** A python client that waits for go() before making PEER_CALLS to 127.0.0.1:port. */
export function startPythonGrpcClient(port: number): Promise<Workload> {
  return startWorkload(DEBIAN_PYTHON, [GRPC_PYTHON, 'client', `127.0.0.1:${port}`]);
}

export async function startGoGrpcServer(): Promise<Workload> {
  return startWorkload(await goGrpcBinary(), ['server']);
}

/** A Go client that waits for go() before making PEER_CALLS to 127.0.0.1:port. */
export async function startGoGrpcClient(port: number): Promise<Workload> {
  return startWorkload(await goGrpcBinary(), ['client', `127.0.0.1:${port}`]);
}

/** One call as the wire carries it. */
export interface PeerCall {
  readonly path: string;
  /** The gRPC status name the server answers. */
  readonly status: string;
  /** The grpc-message the server sends ('' when none). */
  readonly message: string;
  /** Message sizes (bytes, length prefixes excluded) each way; the responses of a call the client gave up on are not counted. */
  readonly requests: readonly number[];
  readonly responses: readonly number[];
  /** The deadline the client gave the call, in seconds. */
  readonly timeoutS: number;
}

const UNARY = '/test.echo.Echo/Unary';

/** The size of test.echo.Msg `fields` as proto3 encodes them (text: field 1; count, fail_code, delay_ms: 3-5, varints). */
export function msgSize(fields: { text?: string; count?: number; fail_code?: number; delay_ms?: number }): number {
  const varint = (n: number) => (n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : 4);
  let n = 0;
  if (fields.text !== undefined) n += 1 + varint(Buffer.byteLength(fields.text)) + Buffer.byteLength(fields.text);
  for (const v of [fields.count, fields.fail_code, fields.delay_ms]) if (v !== undefined) n += 1 + varint(v);
  return n;
}

/**
 * The size of the grpc-js server's echo of `fields`: it encodes every field
 * of the request it decoded with proto-loader's defaults (an empty string or
 * bytes, a zero int32: 2 bytes each), those of grpc/echo.proto's Msg.
 */
export function grpcJsEchoSize(fields: { text?: string; count?: number; fail_code?: number; delay_ms?: number }): number {
  const proto = fs.readFileSync(path.join(PROGRAMS, 'grpc', 'echo.proto'), 'utf8');
  const msg = /message Msg \{([^}]*)\}/.exec(proto)![1]!;
  const all = [...msg.matchAll(/^\s*(?:string|bytes|int32)\s+(\w+)\s*=\s*\d+;/gm)].map((m) => m[1]!);
  const unset = all.filter((name) => !(name in fields));
  return msgSize(fields) + 2 * unset.length;
}

/**
 * The calls grpc_python.py's and the Go program's clients make, in order,
 * answered by a raw-bytes server (which echoes a request's bytes) or by the
 * grpc-js one.
 */
export function peerCalls(server: 'raw' | 'grpc-js'): readonly PeerCall[] {
  const ok = server === 'raw' ? msgSize({ text: 'ok' }) : grpcJsEchoSize({ text: 'ok' });
  return [{ path: UNARY, status: 'OK', message: '', requests: [msgSize({ text: 'ok' })], responses: [ok], timeoutS: 10 }, ...PEER_CALLS.slice(1)];
}

/** The calls grpc_python.py's and the Go program's clients make, in order, to a raw-bytes server. */
export const PEER_CALLS: readonly PeerCall[] = [
  { path: UNARY, status: 'OK', message: '', requests: [msgSize({ text: 'ok' })], responses: [msgSize({ text: 'ok' })], timeoutS: 10 },
  { path: UNARY, status: 'NOT_FOUND', message: 'failed on purpose', requests: [msgSize({ text: 'missing', fail_code: 5 })], responses: [], timeoutS: 10 },
  {
    path: '/test.echo.Echo/ServerStream',
    status: 'OK',
    message: '',
    requests: [msgSize({ text: 's', count: 3 })],
    responses: ['s-0', 's-1', 's-2'].map((text) => msgSize({ text })),
    timeoutS: 10,
  },
];

/**
 * grpc_node.js's `mix` scenario against grpc_python.py's server (which echoes
 * a request's bytes and encodes only the fields it sets), in order. The
 * deadline call: 100 ms for an answer after 500 ms.
 */
export const NODE_MIX_CALLS: readonly PeerCall[] = [
  PEER_CALLS[0]!,
  PEER_CALLS[1]!,
  { path: UNARY, status: 'DEADLINE_EXCEEDED', message: 'Deadline Exceeded', requests: [msgSize({ text: 'slow', delay_ms: 500 })], responses: [], timeoutS: 0.1 },
  PEER_CALLS[2]!,
  {
    path: '/test.echo.Echo/ClientStream',
    status: 'OK',
    message: '',
    requests: ['c0', 'c1', 'c2', 'c3'].map((text) => msgSize({ text })),
    responses: [msgSize({ count: 4 })],
    timeoutS: 10,
  },
  { path: '/test.echo.Echo/Bidi', status: 'OK', message: '', requests: ['b0', 'b1'].map((text) => msgSize({ text })), responses: ['b0', 'b1'].map((text) => msgSize({ text })), timeoutS: 10 },
];

/** What a raw-bytes peer (client result or server line) reports of a call. */
export interface PeerReport {
  readonly path: string;
  readonly code: number;
  readonly details?: string;
  readonly requests: number[];
  readonly responses: number[];
}

const STATUS_CODES: Record<string, number> = { OK: 0, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5 };

/** `call` as a raw-bytes peer reports it (`details` only from a client). */
export function expectedReport(call: PeerCall, withDetails: boolean): PeerReport {
  const r = { path: call.path, code: STATUS_CODES[call.status]!, requests: [...call.requests], responses: [...call.responses] };
  return withDetails ? { ...r, details: call.message } : r;
}
