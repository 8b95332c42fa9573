// The HTTP/2 session goldens (test/fixtures/http2-sessions/<case>/): each
// case is a real capture (capture.jsonl, recorded by record-sessions.mjs)
// seen from one end, whole or cut the way the agent meets connections: joined
// after a point (mid-stream attach), a read's tail lost to the capture bound
// (a gap). generate-session-fixtures.ts writes events.jsonl from these;
// golden.test.ts checks the files are what these builders make and replays
// them against expected.json (written and checked by hand: see the README).

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ConnectionInfo, Side } from '../../../src/protocols/types';
import type { ReplayCase, ReplayEvent } from '../../helpers/protocol-replay';

export const SESSION_FIXTURES = path.resolve(__dirname, '../../../../test/fixtures/http2-sessions');

/** A read's duration in these cases: the proxy stamped its end; chunks are given 1 µs. */
const READ_NS = 1000;

interface CaptureRead {
  readonly side: Side;
  readonly pos: number;
  readonly atNs: number;
  readonly data: Buffer;
}

export interface RecordedCapture {
  readonly serverPort: number;
  readonly clientPort: number;
  /** The reads in order, `marks` by name: the index of the first read after the mark. */
  readonly reads: readonly CaptureRead[];
  readonly marks: Readonly<Record<string, number>>;
}

export function loadRecorded(name: string): RecordedCapture {
  const lines = fs.readFileSync(path.join(SESSION_FIXTURES, name, 'capture.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const head = lines[0]!.conn as { serverPort: number; clientPort: number };
  const reads: CaptureRead[] = [];
  const marks: Record<string, number> = {};
  for (const l of lines.slice(1)) {
    if (typeof l.mark === 'string') marks[l.mark] = reads.length;
    else reads.push({ side: l.side as Side, pos: l.pos as number, atNs: l.atNs as number, data: Buffer.from(l.data as string, 'base64') });
  }
  return { serverPort: head.serverPort, clientPort: head.clientPort, reads, marks };
}

export type End = 'server' | 'client';

function connOf(c: RecordedCapture, end: End, sawStart: boolean, roleKnown: boolean): ConnectionInfo {
  const server = end === 'server';
  return {
    connId: server ? 1 : 2,
    tgid: server ? 100 : 200,
    role: roleKnown ? end : 'unknown',
    sawStart,
    encrypted: false,
    transport: 'tcp',
    localAddr: '127.0.0.1',
    localPort: server ? c.serverPort : c.clientPort,
    remoteAddr: '127.0.0.1',
    remotePort: server ? c.clientPort : c.serverPort,
  };
}

/** The capture's ingress (client to server) as the end sees it: the server reads it, the client writes it. */
const sideAt = (end: End, s: Side): Side => (end === 'server' ? s : s === 'ingress' ? 'egress' : 'ingress');

export interface CaseSpec {
  /** The recorded capture (a directory of SESSION_FIXTURES holding capture.jsonl). */
  readonly capture: string;
  readonly end: End;
  /** Joined at this mark: the reads before it are not seen, sawStart false. */
  readonly attachAt?: string;
  /** Reads (by index in the capture) kept only up to `keep` bytes, the rest a gap: the capture bound. */
  readonly cut?: ReadonlyArray<{ readonly read: number; readonly keep: number }>;
  /** expire(now, timeout) right after a read (by index): `now` that many ns after the read's end. */
  readonly expire?: ReadonlyArray<{ readonly afterRead: number; readonly laterNs: number; readonly timeoutNs: number }>;
  /** The agent never saw the connect or accept either (joined cases): the role is 'unknown'. */
  readonly roleUnknown?: boolean;
  /** Close the session after the last read (the connection's end as the tracker reports it). */
  readonly close?: boolean;
}

export function buildCase(name: string, spec: CaseSpec): ReplayCase {
  const c = loadRecorded(spec.capture);
  const from = spec.attachAt !== undefined ? c.marks[spec.attachAt] : 0;
  if (from === undefined) throw new Error(`${name}: no mark ${spec.attachAt}`);
  const events: ReplayEvent[] = [];
  let last = 0;
  c.reads.forEach((r, i) => {
    if (i < from) return;
    const side = sideAt(spec.end, r.side);
    // The server's reads are stamped at their end; the client's writes as taking READ_NS from the same instant.
    const startNs = side === 'egress' ? r.atNs - READ_NS : r.atNs;
    const endNs = r.atNs;
    last = endNs;
    const cut = spec.cut?.find((x) => x.read === i);
    const keep = cut !== undefined ? cut.keep : r.data.length;
    if (keep > 0) events.push({ kind: 'chunk', chunk: { side, pos: r.pos, startNs, endNs, syscallStart: true, data: r.data.subarray(0, keep) } });
    if (keep < r.data.length) events.push({ kind: 'gap', side, pos: r.pos + keep, bytes: r.data.length - keep, atNs: endNs });
    for (const x of spec.expire ?? []) if (x.afterRead === i) events.push({ kind: 'expire', now: endNs + x.laterNs, timeout: x.timeoutNs });
  });
  if (spec.close !== false) events.push({ kind: 'close', atNs: last + 1_000_000 });
  return { name, session: { conn: connOf(c, spec.end, from === 0, spec.roleUnknown !== true) }, events };
}

/** The cases: name to how it is built. */
export const SESSION_CASES: Readonly<Record<string, CaseSpec>> = {
  'grpc-unary': { capture: 'grpc-unary', end: 'server' },
  'grpc-unary-client': { capture: 'grpc-unary', end: 'client' },
  'grpc-errors': { capture: 'grpc-errors', end: 'server' },
  'grpc-errors-client': { capture: 'grpc-errors', end: 'client' },
  'grpc-deadline': { capture: 'grpc-deadline', end: 'server' },
  'grpc-deadline-client': { capture: 'grpc-deadline', end: 'client' },
  // The tracker's idle sweep 50 ms after the call's request (timeout 30 ms), before the client's RST: no response head, so it times out.
  'grpc-deadline-expire': { capture: 'grpc-deadline', end: 'server', expire: [{ afterRead: 3, laterNs: 50_000_000, timeoutNs: 30_000_000 }] },
  'grpc-streaming': { capture: 'grpc-streaming', end: 'server' },
  'grpc-concurrent': { capture: 'grpc-concurrent', end: 'server' },
  // The capture bound inside DATA: the tails of the two 42 KB reads (request and response DATA of stream 11) lost, skipped exactly.
  'grpc-concurrent-gap-data': { capture: 'grpc-concurrent', end: 'server', cut: [{ read: 3, keep: 42471 - 5000 }, { read: 4, keep: 42349 - 3000 }] },
  // A gap over the response heads of streams 3-11 and their DATA: every stream tainted, recorded from the trailers seen after the resync.
  'grpc-concurrent-gap-heads': { capture: 'grpc-concurrent', end: 'server', cut: [{ read: 4, keep: 9 + 95 }] },
  // A gap over the trailers of streams 5-11: their ends never seen, dropped at close.
  'grpc-concurrent-gap-trailers': { capture: 'grpc-concurrent', end: 'server', cut: [{ read: 5, keep: 35 + 11 }] },
  'grpc-big-metadata': { capture: 'grpc-big-metadata', end: 'server' },
  'grpc-long-lived': { capture: 'grpc-long-lived', end: 'server' },
  // A sweep (timeout 50 ms) 100 ms after the ServerStream's second message: its response has begun, so it stays and ends as in grpc-long-lived.
  'grpc-long-lived-expire': { capture: 'grpc-long-lived', end: 'server', expire: [{ afterRead: 11, laterNs: 100_000_000, timeoutNs: 50_000_000 }] },
  'grpc-attach': { capture: 'grpc-long-lived', end: 'server', attachAt: 'attach' },
  'grpc-attach-client': { capture: 'grpc-long-lived', end: 'client', attachAt: 'attach' },
  'h2-peer': { capture: 'h2-attach', end: 'server' },
  'h2-attach': { capture: 'h2-attach', end: 'server', attachAt: 'attach' },
  'h2-attach-client': { capture: 'h2-attach', end: 'client', attachAt: 'attach' },
  // Joined with the role unknown too (accept and connect both before the agent): the header blocks say which side asks.
  'grpc-attach-role-unknown': { capture: 'grpc-long-lived', end: 'server', attachAt: 'attach', roleUnknown: true },
  'h2-attach-role-unknown': { capture: 'h2-attach', end: 'server', attachAt: 'attach', roleUnknown: true },
  'h2-attach-client-role-unknown': { capture: 'h2-attach', end: 'client', attachAt: 'attach', roleUnknown: true },
  'nghttp-padding': { capture: 'nghttp-padding', end: 'server' },
  'node-eviction': { capture: 'node-eviction', end: 'server' },
  'node-huge-headers': { capture: 'node-huge-headers', end: 'server' },
  'node-header-block-over-bound': { capture: 'node-header-block-over-bound', end: 'server' },
  'node-resets': { capture: 'node-resets', end: 'server' },
  'node-goaway': { capture: 'node-goaway', end: 'server' },
  'node-push': { capture: 'node-push', end: 'server' },
  'node-interim-trailers': { capture: 'node-interim-trailers', end: 'server' },
  'node-over-limit': { capture: 'node-over-limit', end: 'server' },
};
