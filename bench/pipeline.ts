// Replays recorded native batches through the agent's user-space path and
// measures its cost: CaptureEngine.onBatch (decode) -> ConnectionTracker ->
// TraceGraph -> AgentPipeline -> Telemetry (spans, metrics) -> OTLP protobuf
// serialization. Nothing is sent over the network: spans are encoded as the
// agent encodes them (otlp-encode.ts) and the span transport drops the bytes;
// metrics are serialized with @opentelemetry/otlp-transformer, as the official
// metric exporters do, and dropped.
//
//   node --expose-gc dist/bench/pipeline.js [--seconds N] [--scenario NAME[,NAME]] [--json]
//                                           [--stage-seconds 1.5] [--stage-rounds 3] [--no-stages]
//                                           [--stages-scenario keepalive]
//
// Each scenario is a stream of ~256 KiB batches framed as the native reader
// frames them, built once up front: one data event per syscall with exact
// stream positions, open and close events for every connection. The stream is
// replayed whole, again and again, until the time is up; between replays its
// connection ids and timestamps are shifted (outside the measured CPU time) so
// every replay is a fresh set of connections later in time.
// The HTTP/1 scenarios' bytes are generated; http2 and grpc replay connections
// recorded between real peers (bench/record-h2-traffic.mjs), so their HPACK
// dynamic tables are used as those peers use them. The figures are
// per CPU second of the whole process (process.cpuUsage: GC threads included),
// after one unmeasured warm-up replay per scenario.
//
// Then the budget per stage (--stages-scenario's stream, --stage-seconds of CPU per
// stage and round, --stage-rounds rounds, stages alternated within a round):
// prefixes of the same path run over the same batches, each built from the
// components' public constructors, and a stage's cost is the difference of
// its prefix and the one before (median over rounds of the per-round
// differences). For an HTTP/1 stream, the parse prefix replaces HTTP/1's
// record builder by one that returns a record built once (for http2 and grpc
// parse and record are one stage); the export prefix sends to an OTLP/gRPC sink in
// its own process (bench/targets/otlp-sink.ts), so the sender's work is all
// that is measured. GC share: main-thread GC pauses (PerformanceObserver 'gc')
// over the prefix's CPU time.

import { runMain } from './main';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import * as readline from 'node:readline';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { parseArgs } from 'node:util';
import { ExportResultCode } from '@opentelemetry/core';
import { ProtobufMetricsSerializer } from '@opentelemetry/otlp-transformer';
import { AggregationTemporality, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { createAgent } from '../src/agent/agent';
import { AgentPipeline, type TelemetrySink } from '../src/agent/pipeline';
import { decodeBatch, newDecodeStats } from '../src/capture/decode';
import { ConnectionTracker } from '../src/correlate/connection-tracker';
import { TraceGraph } from '../src/correlate/trace-graph';
import { loadOtelConfig } from '../src/otel/config';
import { shouldSample } from '../src/otel/sampler';
import { createTelemetry } from '../src/otel/telemetry';
import { protocolsById } from '../src/protocols/registry';
import { newProtocolStats, type ProtocolDefinition } from '../src/protocols/types';
import type { RunOptions } from '../src/config/run-config';
import type { KernelSession } from '../src/capture/capture-engine';
import {
  BATCH_RECORD_HEADER,
  ConnEventLayout as C,
  ConnReason,
  DataEventLayout as D,
  DataSource,
  Direction,
  EventType,
  Role,
} from '../src/capture/layout';
import { WallClock } from '../src/capture/clock';
import { ProcFs } from '../src/util/procfs';
import { parseRunArgs } from '../src/cli/run-command';
import type { Exporter, MetricExporter } from '../src/otel/export';
import type { OtlpExportResult } from '../src/otel/otlp-transport';
import { silentLogger } from '../src/util/log';
import { batch, connRecord, dataRecord, type TupleSpec } from '../test/helpers/records';

// ------------------------------------------------------------------ streams

/** A recorded capture: batches as the native reader hands them over. */
export interface Stream {
  readonly name: string;
  readonly batches: Buffer[];
  /** L7 records one replay must produce. */
  readonly records: number;
  /** Captured payload bytes in one replay. */
  readonly payloadBytes: number;
  /** Kernel records (events) in one replay. */
  readonly events: number;
  /** Highest connection id used (replays shift ids by this). */
  readonly maxConnId: number;
  /** Time covered by one replay, ns (replays shift timestamps by more). */
  readonly spanNs: number;
}

const BATCH_BYTES = 256 * 1024;
const ALIGN = (n: number) => (n + 7) & ~7;

/** One syscall's worth of bytes on a connection. */
type Write = { readonly dir: 1 | 2; readonly bytes: Buffer };
/** One exchange: the syscalls it takes, in order, and the records it yields. */
type Exchange = { readonly writes: Write[]; readonly records: number };

interface ConnPlan {
  readonly role: 1 | 2;
  readonly tgid: number;
  readonly exchanges: Exchange[];
}

class StreamBuilder {
  private readonly batches: Buffer[] = [];
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private records = 0;
  private payloadBytes = 0;
  private events = 0;
  private now = 1_000_000_000;
  private nextConnId = 1;

  constructor(private readonly name: string) {}

  private push(r: Buffer): void {
    const framed = BATCH_RECORD_HEADER + ALIGN(r.length);
    if (this.pendingBytes + framed > BATCH_BYTES) this.cut();
    this.pending.push(r);
    this.pendingBytes += framed;
    this.events++;
  }

  private cut(): void {
    if (this.pending.length === 0) return;
    this.batches.push(batch(this.pending));
    this.pending = [];
    this.pendingBytes = 0;
  }

  /**
   * Runs `plans` with `concurrency` connections open at a time, one exchange
   * per connection in turn, so batches interleave many connections.
   */
  run(plans: ConnPlan[], concurrency: number): void {
    interface Live {
      plan: ConnPlan;
      connId: number;
      fd: number;
      tuple: TupleSpec;
      pos: { 1: number; 2: number };
      next: number;
    }
    const freeFds: number[] = [];
    for (let fd = concurrency + 10; fd > 10; fd--) freeFds.push(fd);
    let port = 30000;
    const queue = [...plans];
    const live: Live[] = [];
    const open = () => {
      const plan = queue.shift();
      if (!plan) return;
      const fd = freeFds.pop()!;
      const ephemeral = port++;
      const tuple: TupleSpec =
        plan.role === Role.Server
          ? { local: [10, 0, 0, 1], localPort: 8080, remote: [10, 0, 1, (ephemeral % 250) + 1], remotePort: ephemeral }
          : { local: [10, 0, 0, 1], localPort: ephemeral, remote: [10, 0, 2, 7], remotePort: 9090 };
      const c: Live = { plan, connId: this.nextConnId++, fd, tuple, pos: { 1: 0, 2: 0 }, next: 0 };
      this.push(
        connRecord({
          type: 'open',
          tgid: plan.tgid,
          fd,
          connId: c.connId,
          ts: this.tick(),
          role: plan.role,
          reason: plan.role === Role.Server ? ConnReason.Accept : ConnReason.Connect,
          tuple,
          comm: 'app',
        }),
      );
      live.push(c);
    };
    while (live.length < concurrency && queue.length > 0) open();
    while (live.length > 0) {
      for (let i = 0; i < live.length; ) {
        const c = live[i]!;
        const ex = c.plan.exchanges[c.next++]!;
        for (const w of ex.writes) {
          const tsEnter = this.tick();
          const tsExit = tsEnter + 3_000;
          const ingress = w.dir === Direction.Ingress;
          this.push(
            dataRecord({
              tgid: c.plan.tgid,
              tid: c.plan.tgid + (c.fd % 4),
              fd: c.fd,
              connId: c.connId,
              tsEnter,
              tsExit,
              pos: c.pos[w.dir],
              dir: w.dir,
              role: c.plan.role,
              source: ingress ? DataSource.Read : DataSource.Write,
              tuple: c.tuple,
              comm: 'app',
              payload: w.bytes,
            }),
          );
          c.pos[w.dir] += w.bytes.length;
          this.payloadBytes += w.bytes.length;
        }
        this.records += ex.records;
        if (c.next < c.plan.exchanges.length) {
          i++;
          continue;
        }
        this.push(
          connRecord({
            type: 'close',
            tgid: c.plan.tgid,
            fd: c.fd,
            connId: c.connId,
            ts: this.tick(),
            role: c.plan.role,
            reason: ConnReason.CloseSyscall,
            tuple: c.tuple,
            comm: 'app',
            bytesSent: c.pos[Direction.Egress],
            bytesRecv: c.pos[Direction.Ingress],
          }),
        );
        freeFds.push(c.fd);
        live.splice(i, 1);
        open();
      }
    }
  }

  private tick(): number {
    this.now += 20_000;
    return this.now;
  }

  build(): Stream {
    this.cut();
    return {
      name: this.name,
      batches: this.batches,
      records: this.records,
      payloadBytes: this.payloadBytes,
      events: this.events,
      maxConnId: this.nextConnId - 1,
      spanNs: this.now,
    };
  }
}

// ------------------------------------------------------------------ HTTP/1 bytes

const PATHS = ['/api/users/1842', '/api/orders?limit=20&page=3', '/api/cart/items', '/health', '/api/products/sku-77312/reviews'];

function requestHead(method: string, path: string, host: string, extra = ''): string {
  // About 200 bytes: a typical client's headers.
  return (
    `${method} ${path} HTTP/1.1\r\n` +
    `Host: ${host}\r\n` +
    'User-Agent: okhttp/4.12.0\r\n' +
    'Accept: application/json\r\n' +
    'Accept-Encoding: gzip\r\n' +
    'Connection: keep-alive\r\n' +
    'X-Request-Id: 6f1c2a9e-41d7-4b0e-9c1b-3f4e8a7d2c15\r\n' +
    extra +
    '\r\n'
  );
}

function jsonBody(i: number): string {
  return JSON.stringify({ id: i, name: `item-${i}`, price: 19.99, tags: ['a', 'b'], ok: true });
}

function response(status: number, body: string): string {
  const reason = ({ 200: 'OK', 201: 'Created', 404: 'Not Found' } as Record<number, string>)[status] ?? 'Internal Server Error';
  return (
    `HTTP/1.1 ${status} ${reason}\r\n` +
    'Content-Type: application/json\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    'Date: Wed, 25 Nov 2026 15:00:00 GMT\r\n' +
    'Connection: keep-alive\r\n' +
    '\r\n' +
    body
  );
}

const b = (s: string) => Buffer.from(s, 'latin1');

/** The request side's direction for a role: a server reads requests, a client writes them. */
function sides(role: 1 | 2): { req: 1 | 2; res: 1 | 2 } {
  return role === Role.Server ? { req: Direction.Ingress, res: Direction.Egress } : { req: Direction.Egress, res: Direction.Ingress };
}

function keepAliveGet(i: number, role: 1 | 2 = Role.Server, status = 200): Exchange {
  const { req, res } = sides(role);
  return {
    writes: [
      { dir: req, bytes: b(requestHead('GET', PATHS[i % PATHS.length]!, 'shop.internal:8080')) },
      { dir: res, bytes: b(response(status, status === 200 ? jsonBody(i) : '{"error":"x"}')) },
    ],
    records: 1,
  };
}

function post(i: number): Exchange {
  const body = JSON.stringify({ sku: `sku-${i}`, quantity: 2, note: 'deliver after 6pm' });
  const head = requestHead('POST', '/api/cart/items', 'shop.internal:8080', `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n`);
  return {
    writes: [
      { dir: Direction.Ingress, bytes: b(head + body) },
      { dir: Direction.Egress, bytes: b(response(201, '{"created":true}')) },
    ],
    records: 1,
  };
}

/** `depth` requests in one write; one write per response. */
function pipelined(i: number, depth: number): Exchange {
  let reqs = '';
  const writes: Write[] = [];
  for (let k = 0; k < depth; k++) reqs += requestHead('GET', PATHS[(i + k) % PATHS.length]!, 'shop.internal:8080');
  writes.push({ dir: Direction.Ingress, bytes: b(reqs) });
  for (let k = 0; k < depth; k++) writes.push({ dir: Direction.Egress, bytes: b(response(200, jsonBody(i + k))) });
  return { writes, records: depth };
}

/** A chunked response: the head, then one write per chunk, then the last chunk. */
function chunked(i: number, chunks: number): Exchange {
  const writes: Write[] = [{ dir: Direction.Ingress, bytes: b(requestHead('GET', '/api/orders/export', 'shop.internal:8080')) }];
  writes.push({
    dir: Direction.Egress,
    bytes: b('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n'),
  });
  for (let k = 0; k < chunks; k++) {
    const piece = JSON.stringify(Array.from({ length: 6 }, (_, j) => ({ order: i * 100 + k * 6 + j, total: 42.5, state: 'shipped' })));
    writes.push({ dir: Direction.Egress, bytes: b(`${Buffer.byteLength(piece).toString(16)}\r\n${piece}\r\n`) });
  }
  writes.push({ dir: Direction.Egress, bytes: b('0\r\n\r\n') });
  return { writes, records: 1 };
}

function plans(n: number, perConn: number, role: 1 | 2, tgid: number, make: (i: number) => Exchange): ConnPlan[] {
  const out: ConnPlan[] = [];
  let i = 0;
  for (let c = 0; c < n; c++) out.push({ role, tgid, exchanges: Array.from({ length: perConn }, () => make(i++)) });
  return out;
}

/** Processes that exist, so resources are read from a real /proc as in production. */
const SERVER_TGID = process.pid;
const OTHER_TGID = process.ppid;

export const SCENARIOS: Record<string, () => Stream> = {
  /** Many keep-alive connections, one GET and one response per exchange. */
  'keepalive': () => {
    const s = new StreamBuilder('keepalive');
    s.run(plans(300, 20, Role.Server, SERVER_TGID, (i) => keepAliveGet(i)), 200);
    return s.build();
  },
  /** Four requests per read, one write per response. */
  'pipelined': () => {
    const s = new StreamBuilder('pipelined');
    s.run(plans(150, 10, Role.Server, SERVER_TGID, (i) => pipelined(i, 4)), 100);
    return s.build();
  },
  /** Chunked responses of 8 chunks, one write each. */
  'chunked': () => {
    const s = new StreamBuilder('chunked');
    s.run(plans(300, 10, Role.Server, SERVER_TGID, (i) => chunked(i, 8)), 100);
    return s.build();
  },
  /** Two processes; GETs (some 404/500), POSTs, pipelined, chunked, and outbound client calls. */
  'mixed': () => {
    const s = new StreamBuilder('mixed');
    const mix = (i: number): Exchange => {
      switch (i % 10) {
        case 0: return post(i);
        case 1: return pipelined(i, 3);
        case 2: return chunked(i, 4);
        case 3: return keepAliveGet(i, Role.Server, 404);
        case 4: return keepAliveGet(i, Role.Server, 500);
        default: return keepAliveGet(i);
      }
    };
    const all = [
      ...plans(120, 20, Role.Server, SERVER_TGID, mix),
      ...plans(60, 20, Role.Server, OTHER_TGID, mix),
      ...plans(60, 20, Role.Client, SERVER_TGID, (i) => keepAliveGet(i, Role.Client)),
    ];
    // Interleave the kinds of connection instead of running them one after another.
    all.sort((x, y) => hash(all.indexOf(x)) - hash(all.indexOf(y)));
    s.run(all, 150);
    return s.build();
  },
  /**
   * HTTP/2 recorded from a Node http2 client and server (h2c, 8 streams in
   * flight, small JSON, bench/fixtures/http2/http2): 16 server and 8 client
   * connections of 250 streams, all open at once.
   */
  'http2': () => {
    const s = new StreamBuilder('http2');
    s.run(recordedPlans('http2', 16, 8), 24);
    return s.build();
  },
  /** gRPC recorded from grpc-js (unary calls with a deadline, 8 in flight), as `http2`. */
  'grpc': () => {
    const s = new StreamBuilder('grpc');
    s.run(recordedPlans('grpc', 16, 8), 24);
    return s.build();
  },
  /** As `http2` and `grpc` with one stream in flight: each request and answer its own syscalls. */
  'http2-serial': () => {
    const s = new StreamBuilder('http2-serial');
    s.run(recordedPlans('http2-serial', 16, 8), 24);
    return s.build();
  },
  'grpc-serial': () => {
    const s = new StreamBuilder('grpc-serial');
    s.run(recordedPlans('grpc-serial', 16, 8), 24);
    return s.build();
  },
  /**
   * Redis recorded from node-redis against redis-server (bench/fixtures/redis/redis:
   * 250 commands a connection, each awaited: a write and a read each; strings,
   * hashes, lists, counters), as `http2`: 16 server and 8 client connections.
   */
  'redis': () => {
    const s = new StreamBuilder('redis');
    s.run(recordedPlans('redis', 16, 8), 24);
    return s.build();
  },
  /**
   * MySQL recorded from mysql2 against MariaDB 10.11 (bench/fixtures/mysql/mysql):
   * 250 calls a connection, text SELECTs by key and by name, executions of one
   * prepared statement, INSERTs and UPDATEs; one call at a time, each request
   * and answer a syscall of its own.
   */
  'mysql': () => {
    const s = new StreamBuilder('mysql');
    s.run(recordedPlans('mysql', 16, 8), 24);
    return s.build();
  },
  /**
   * PostgreSQL recorded from node-postgres against PostgreSQL 15
   * (bench/fixtures/postgres/postgres): startup, then 250 calls one at a time
   * (simple SELECTs and INSERTs with literals, a named prepared statement
   * executed again and again), as `http2`: 16 server and 8 client connections.
   */
  'postgres': () => {
    const s = new StreamBuilder('postgres');
    s.run(recordedPlans('postgres', 16, 8), 24);
    return s.build();
  },
};

// ------------------------------------------------------------------ HTTP/2 and gRPC bytes

/**
 * Connections recorded between real peers by bench/record-h2-traffic.mjs
 * (bench/fixtures/http2/<name>/) or test/protocols/redis/record-fixtures.ts
 * --bench (bench/fixtures/redis/redis/) or test/protocols/mysql (bench/fixtures/mysql/mysql/): each connection's reads in order, as the
 * side that reads requests saw them, and the streams (records) it carried.
 */
interface RecordedConnection {
  readonly reads: { readonly request: boolean; readonly bytes: Buffer }[];
  readonly streams: number;
}

const FIXTURES = path.resolve(__dirname, '../..', 'bench', 'fixtures');

/** Scenarios replaying recorded connections, by the fixtures folder they come from (bench/fixtures/<folder>/<name>). */
const RECORDED_FOLDERS: Record<string, string> = { http2: 'http2', grpc: 'http2', 'http2-serial': 'http2', 'grpc-serial': 'http2', redis: 'redis', mysql: 'mysql', postgres: 'postgres' };

/** Scenarios of recorded (not HTTP/1) connections: the parse and record stages are not split for them. */
const RECORDED_SCENARIOS = new Set(Object.keys(RECORDED_FOLDERS));

/** The recorded traffic of a scenario: bench/fixtures/http2/<name>/, or bench/fixtures/<name>/<name>/ for other protocols. */
function recorded(name: string): RecordedConnection[] {
  const dir = path.join(FIXTURES, RECORDED_FOLDERS[name]!, name);
  const meta = JSON.parse(fs.readFileSync(path.join(dir, 'case.json'), 'utf8')) as { connections: { streams: number }[] };
  const conns: RecordedConnection[] = meta.connections.map((c) => ({ reads: [], streams: c.streams }));
  for (const line of fs.readFileSync(path.join(dir, 'events.jsonl'), 'utf8').split('\n')) {
    if (line === '') continue;
    const e = JSON.parse(line) as { conn: number; side: 'ingress' | 'egress'; data: string };
    conns[e.conn]!.reads.push({ request: e.side === 'ingress', bytes: Buffer.from(e.data, 'base64') });
  }
  return conns;
}

/**
 * One recorded connection as seen by `role`: a server reads what the client
 * sent and writes the answers, a client the other way round. Every syscall is
 * one of the proxy's reads; the connection's records come with its last one.
 */
function replayed(c: RecordedConnection, role: 1 | 2, tgid: number): ConnPlan {
  const { req, res } = sides(role);
  const exchanges = c.reads.map((r, i): Exchange => ({
    writes: [{ dir: r.request ? req : res, bytes: r.bytes }],
    records: i === c.reads.length - 1 ? c.streams : 0,
  }));
  return { role, tgid, exchanges };
}

/**
 * `servers` server and `clients` client connections, each a replay of one of
 * the recorded connections in turn, interleaved; the StreamBuilder gives each
 * its own connection id, fd and ports.
 */
function recordedPlans(name: string, servers: number, clients: number): ConnPlan[] {
  const conns = recorded(name);
  const all: ConnPlan[] = [];
  for (let i = 0; i < servers; i++) all.push(replayed(conns[i % conns.length]!, Role.Server, i % 3 === 2 ? OTHER_TGID : SERVER_TGID));
  for (let i = 0; i < clients; i++) all.push(replayed(conns[i % conns.length]!, Role.Client, SERVER_TGID));
  const order = all.map((_, i) => i).sort((x, y) => hash(x) - hash(y));
  return order.map((i) => all[i]!);
}

function hash(i: number): number {
  return Math.imul(i ^ 0x9e3779b9, 0x85ebca6b) >>> 0;
}

/** Shifts every record's connection id and timestamps in place (the next replay). */
function shift(batches: Buffer[], connIds: number, ns: number): void {
  const dc = BigInt(connIds);
  const dt = BigInt(ns);
  for (const buf of batches) {
    for (let off = 0; off + BATCH_RECORD_HEADER <= buf.length; ) {
      const len = buf.readUInt32LE(off);
      const r = off + BATCH_RECORD_HEADER;
      const type = buf.readUInt32LE(r);
      if (type === EventType.Data) {
        buf.writeBigUInt64LE(buf.readBigUInt64LE(r + D.conn_id) + dc, r + D.conn_id);
        buf.writeBigUInt64LE(buf.readBigUInt64LE(r + D.ts_enter_ns) + dt, r + D.ts_enter_ns);
        buf.writeBigUInt64LE(buf.readBigUInt64LE(r + D.ts_exit_ns) + dt, r + D.ts_exit_ns);
      } else if (type === EventType.Open || type === EventType.Close) {
        buf.writeBigUInt64LE(buf.readBigUInt64LE(r + C.conn_id) + dc, r + C.conn_id);
        buf.writeBigUInt64LE(buf.readBigUInt64LE(r + C.ts_ns) + dt, r + C.ts_ns);
      }
      off = r + ALIGN(len);
    }
  }
}

// ------------------------------------------------------------------ the agent, minus the kernel

/** Stands in for the native session: replay calls onBatch directly. */
export class ReplaySession implements KernelSession {
  selectTgid(): void {}
  selectCgroup(): void {}
  setExecNames(): void {}
  attachAll(): string[] {
    return [];
  }
  /** Nothing to mute in a replay: the recorded batches are what they are. */
  setConnectionModes(connIds: readonly number[]): number {
    return connIds.length;
  }
  start(): void {}
  stats() {
    return { kernel: [], batchesDelivered: 0, recordsDelivered: 0, batchesDropped: 0, recordsDropped: 0, bytesDropped: 0 };
  }
  close(): void {}
}

interface SerializedCounts {
  spanBytes: number;
  metricRequests: number;
  metricBytes: number;
}

/**
 * The agent `run` builds (src/agent/agent.ts), with a replay for the kernel,
 * transports that drop what they are given, no TCP/flow tables to read (a
 * replay has none) and no tick timer: replayed times are not the clock's.
 */
function assemble() {
  const counts: SerializedCounts = { spanBytes: 0, metricRequests: 0, metricBytes: 0 };
  const ok = { code: ExportResultCode.SUCCESS };
  const spanExporter: Exporter<Buffer, OtlpExportResult> = {
    export(request, done) {
      counts.spanBytes += request.length;
      done(ok);
    },
    shutdown: async () => {},
  };
  const metricExporter: MetricExporter = {
    export(rm: ResourceMetrics, done) {
      const bytes = ProtobufMetricsSerializer.serializeRequest(rm);
      counts.metricRequests++;
      counts.metricBytes += bytes?.length ?? 0;
      done(ok);
    },
    selectAggregationTemporality: () => AggregationTemporality.CUMULATIVE,
    shutdown: async () => {},
  };
  // An OTLP endpoint makes both signals "otlp"; the injected exporters replace the transports.
  const options = parseRunArgs(
    ['--all', '--no-tcp-metrics', '--no-flow-metrics', '--otlp-endpoint', 'http://127.0.0.1:4318', '--otlp-protocol', 'http/protobuf', '--metric-interval', '1s'],
    { env: {} },
  );
  if (options === 'help') throw new Error('unreachable');
  const agent = createAgent(options, {
    logger: silentLogger,
    env: {},
    openSession: () => new ReplaySession(),
    procfs: new ProcFs(),
    // The agent's clock: replayed times are converted as captured ones are.
    clock: new WallClock(),
    agentPid: 1,
    telemetry: { spanExporter, metricExporter },
    tickMs: 0,
    // The end of a replay: every connection still open ends after the last recorded event.
    monotonicNs: () => Number.MAX_SAFE_INTEGER,
  });
  return { agent, counts };
}

// ------------------------------------------------------------------ measurement

export interface ScenarioResult {
  readonly scenario: string;
  readonly replays: number;
  readonly records: number;
  readonly expectedRecords: number;
  readonly spansSerialized: number;
  readonly spanBytes: number;
  readonly metricRequests: number;
  readonly events: number;
  readonly payloadBytes: number;
  readonly cpuSeconds: number;
  readonly wallSeconds: number;
  readonly recordsPerCpuSecond: number;
  readonly payloadBytesPerCpuSecond: number;
  readonly heapGrowthPerMillionRecords: number;
  readonly spansDropped: number;
}

const gc: () => void = (() => {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) return g;
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
})();

const cpuNow = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** Lets timers and promise callbacks run between batches, as between native deliveries. */
const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Replays `stream` for about `seconds` of CPU time (whole replays only) through a fresh agent. */
export async function runScenario(stream: Stream, seconds: number): Promise<ScenarioResult> {
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  const { agent, counts } = assemble();
  await agent.start();
  let cpu = 0;
  let replays = 0;
  const wallStart = process.hrtime.bigint();
  const budget = seconds;
  let shiftCpu = 0;
  while (replays === 0 || cpu < budget) {
    if (replays > 0) {
      const s0 = cpuNow();
      shift(stream.batches, stream.maxConnId, stream.spanNs);
      shiftCpu += cpuNow() - s0;
    }
    const c0 = cpuNow();
    for (const batchBuf of stream.batches) {
      agent.replay(batchBuf);
      await yieldToLoop();
    }
    cpu += cpuNow() - c0;
    replays++;
  }
  const c0 = cpuNow();
  await agent.stop();
  cpu += cpuNow() - c0;
  const wallSeconds = Number(process.hrtime.bigint() - wallStart) / 1e9 - shiftCpu;
  // Restore the stream's ids and times for the next run.
  shift(stream.batches, -stream.maxConnId * (replays - 1), -stream.spanNs * (replays - 1));
  const p = agent.sockets.stats();
  const records = Object.values(p.recordsByProtocol).reduce((a, n) => a + n, 0);
  const health = agent.telemetry.health();
  gc();
  const heapAfter = process.memoryUsage().heapUsed;
  return {
    scenario: stream.name,
    replays,
    records,
    expectedRecords: stream.records * replays,
    spansSerialized: health.spans.exported,
    spanBytes: counts.spanBytes,
    metricRequests: counts.metricRequests,
    events: stream.events * replays,
    payloadBytes: stream.payloadBytes * replays,
    cpuSeconds: cpu,
    wallSeconds,
    recordsPerCpuSecond: records / cpu,
    payloadBytesPerCpuSecond: (stream.payloadBytes * replays) / cpu,
    heapGrowthPerMillionRecords: ((heapAfter - heapBefore) / Math.max(1, records)) * 1e6,
    spansDropped: health.spans.droppedQueueFull + health.spans.droppedShutdown + health.spans.failed,
  };
}

function fmt(r: ScenarioResult): string {
  const mb = (n: number) => (n / 1e6).toFixed(1);
  return (
    `${r.scenario.padEnd(10)} ${Math.round(r.recordsPerCpuSecond).toString().padStart(8)} records/s/core  ` +
    `${mb(r.payloadBytesPerCpuSecond).padStart(6)} MB/s payload  ` +
    `heap ${(r.heapGrowthPerMillionRecords / 1e6).toFixed(2).padStart(6)} MB/1M records  ` +
    `records ${r.records}/${r.expectedRecords}${r.records === r.expectedRecords ? '' : ' MISMATCH'}  ` +
    `spans ${r.spansSerialized} (${mb(r.spanBytes)} MB OTLP)  cpu ${r.cpuSeconds.toFixed(2)} s`
  );
}

// ------------------------------------------------------------------ budget per stage

interface StageRun {
  feed(batch: Buffer): void;
  end(): Promise<void>;
  /** Spans the telemetry dropped or failed to export (a stage that did less work than its records ask). */
  lostSpans?(): number;
  /** The span queue is filling: wait for the exporter before the next batch (a replay outruns a real transport). */
  busy?(): boolean;
}

interface Prefix {
  /** The stage this prefix adds to the one before. */
  readonly stage: string;
  make(): Promise<StageRun>;
}

/** Claims every connection and keeps nothing: the tracker's streams without a parser. */
const PASS_THROUGH: ProtocolDefinition = {
  id: 'bench-pass-through',
  networkProtocolName: 'bench',
  maxDetectBytes: 16,
  instruments: [],
  detect: (side) => ({ result: 'match', requestSide: side }),
  createSession: () => ({
    stats: newProtocolStats(),
    onChunk() {},
    onGap() {},
    expire() {},
    close() {},
    dispose() {},
    bufferedBytes: () => 0,
  }),
};

const HTTP1_RECORD = require('../src/protocols/http1/record') as { buildRecord?: (...args: unknown[]) => unknown };

/**
 * HTTP/1 with its record builder replaced by one returning the first record it
 * built: the parser and stitcher run, the record is not built. Undefined when
 * the module no longer has that builder (then parse and record are one stage).
 */
function withoutRecords<T>(run: () => T): T | undefined {
  const real = HTTP1_RECORD.buildRecord;
  if (typeof real !== 'function') return undefined;
  let once: unknown;
  HTTP1_RECORD.buildRecord = (...args: unknown[]) => (once ??= real(...args));
  try {
    return run();
  } finally {
    HTTP1_RECORD.buildRecord = real;
  }
}

const END_NS = Number.MAX_SAFE_INTEGER;

function runOptions(endpoint: string, protocol: string): RunOptions {
  const o = parseRunArgs(['--all', '--otlp-endpoint', endpoint, '--otlp-protocol', protocol, '--metric-interval', '1s'], { env: {} });
  if (o === 'help') throw new Error('unreachable');
  return o;
}

function tracker(options: RunOptions, protocols: readonly ProtocolDefinition[]): ConnectionTracker {
  return new ConnectionTracker({ protocols, protocolOptions: options.protocolOptions, requestTimeoutNs: options.requestTimeoutNs }, silentLogger);
}

function decodeInto(sink: (e: Parameters<Parameters<typeof decodeBatch>[1]>[0]) => void): (batch: Buffer) => void {
  const stats = newDecodeStats();
  return (batch) => decodeBatch(batch, sink, stats);
}

/** decode -> tracker, records and signals taken after each batch and dropped. */
function trackerRun(t: ConnectionTracker): StageRun {
  const decode = decodeInto((e) => t.onEvent(e));
  return {
    feed(batch) {
      decode(batch);
      t.take();
      t.takeSignals();
    },
    async end() {
      t.closeAll(END_NS);
      t.take();
      t.takeSignals();
    },
  };
}

/** decode -> tracker -> trace graph -> `sink` (telemetry, or nothing). */
function pipelineRun(options: RunOptions, sink: TelemetrySink, sampler = loadOtelConfig({}, options.otel).sampler): StageRun {
  const t = tracker(options, protocolsById(options.protocols));
  const graph = new TraceGraph({ decide: (traceId, parent) => shouldSample(sampler, traceId, parent) });
  const p = new AgentPipeline(t, graph, sink);
  const decode = decodeInto((e) => p.onEvent(e));
  return {
    feed(batch) {
      decode(batch);
      p.flush();
    },
    end: () => p.shutdown(END_NS),
  };
}

const ok = { code: ExportResultCode.SUCCESS };
const droppingMetrics: MetricExporter = {
  export(rm: ResourceMetrics, done) {
    ProtobufMetricsSerializer.serializeRequest(rm);
    done(ok);
  },
  selectAggregationTemporality: () => AggregationTemporality.CUMULATIVE,
  shutdown: async () => {},
};
const droppingSpans: Exporter<Buffer, OtlpExportResult> = { export: (_r, done) => done(ok), shutdown: async () => {} };

function telemetryRun(options: RunOptions, env: Record<string, string>, exporters: { spanExporter?: typeof droppingSpans; metricExporter?: MetricExporter }): StageRun {
  const config = loadOtelConfig(env, options.otel, options.otelFile);
  const telemetry = createTelemetry(config, { clock: new WallClock(), logger: silentLogger, procfs: new ProcFs(), ...exporters });
  const lostSpans = () => {
    const s = telemetry.health().spans;
    return s.droppedQueueFull + s.droppedShutdown + s.failed;
  };
  const busy = () => telemetry.health().spans.queued > config.batch.maxQueueSize / 2;
  return { ...pipelineRun(options, telemetry, config.sampler), lostSpans, busy };
}

/** Starts bench/targets/otlp-sink.js; resolves with its URL and a stop function. */
export async function startSink(): Promise<{ url: string; stop(): void }> {
  const child = spawn(process.execPath, [path.join(__dirname, 'targets', 'otlp-sink.js')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`otlp-sink exited ${code}`)));
  });
  return { url: `http://127.0.0.1:${(JSON.parse(line) as { port: number }).port}`, stop: () => child.kill('SIGTERM') };
}

/** `http1`: the stream is HTTP/1, whose record builder the parse prefix can replace. */
function prefixes(sinkUrl: string, http1Stream: boolean): Prefix[] {
  const dropping = runOptions('http://127.0.0.1:4318', 'http/protobuf');
  const http1 = protocolsById(dropping.protocols);
  const out: Prefix[] = [
    { stage: 'decode', make: async () => ({ feed: decodeInto(() => {}), end: async () => {} }) },
    { stage: 'tracking and streams', make: async () => trackerRun(tracker(dropping, [PASS_THROUGH])) },
  ];
  if (http1Stream && HTTP1_RECORD.buildRecord !== undefined) {
    out.push({
      stage: 'parse',
      make: async () => {
        const run = trackerRun(tracker(dropping, http1));
        return { feed: (b) => withoutRecords(() => run.feed(b)), end: () => withoutRecords(() => run.end())! };
      },
    });
  }
  out.push(
    { stage: out.length === 3 ? 'record' : 'parse + record', make: async () => trackerRun(tracker(dropping, http1)) },
    { stage: 'trace graph', make: async () => pipelineRun(dropping, { record() {}, shutdown: async () => {} }) },
    { stage: 'metrics', make: async () => telemetryRun(dropping, { OTEL_TRACES_EXPORTER: 'none' }, { metricExporter: droppingMetrics }) },
    { stage: 'encode', make: async () => telemetryRun(dropping, {}, { spanExporter: droppingSpans, metricExporter: droppingMetrics }) },
    // The real transports (spans and metrics), to a sink that decodes nothing.
    { stage: 'export', make: async () => telemetryRun(runOptions(sinkUrl, 'grpc'), {}, {}) },
  );
  return out;
}

export interface StageResult {
  readonly stage: string;
  /** Median over rounds of the prefix's CPU ns per record of the stream. */
  readonly cumulativeNsPerRecord: number;
  /** Median over rounds of (this prefix - the one before), ns per record. */
  readonly nsPerRecord: number;
  /** Main-thread GC pauses over the wall time of the prefix's replays (median over rounds). */
  readonly gcShare: number;
  /** Main-thread GC pause time per record, ns (median over rounds). */
  readonly gcNsPerRecord: number;
  readonly rounds: number;
  /** Spans dropped or failed over all rounds: that prefix did less than the whole work. */
  readonly lostSpans: number;
}

/** GC pauses seen while runStages runs. */
const gcPauses: { start: number; duration: number }[] = [];

/** Replays `stream` through `p` for about `seconds` of CPU (whole replays); CPU ns per stream record and GC share. */
interface PrefixRun {
  nsPerRecord: number;
  gcShare: number;
  gcNsPerRecord: number;
  lostSpans: number;
}

async function measurePrefix(stream: Stream, p: Prefix, seconds: number): Promise<PrefixRun> {
  gc();
  const run = await p.make();
  const t0 = performance.now();
  let cpu = 0;
  let wallMs = 0;
  let replays = 0;
  while (replays === 0 || cpu < seconds) {
    if (replays > 0) shift(stream.batches, stream.maxConnId, stream.spanNs);
    const w0 = performance.now();
    const c0 = cpuNow();
    for (const b of stream.batches) {
      run.feed(b);
      await yieldToLoop();
      // Waiting on timers costs next to no CPU; the exporter's work meanwhile is the stage's.
      while (run.busy?.()) await new Promise((r) => setTimeout(r, 10));
    }
    cpu += cpuNow() - c0;
    wallMs += performance.now() - w0;
    replays++;
  }
  const w0 = performance.now();
  const c0 = cpuNow();
  await run.end();
  cpu += cpuNow() - c0;
  wallMs += performance.now() - w0;
  shift(stream.batches, -stream.maxConnId * (replays - 1), -stream.spanNs * (replays - 1));
  // GC entries are delivered after the fact: let the observer catch up.
  await new Promise((r) => setTimeout(r, 20));
  const t1 = performance.now();
  const gcMs = gcPauses.filter((g) => g.start >= t0 && g.start < t1).reduce((a, g) => a + g.duration, 0);
  gcPauses.length = 0;
  const records = stream.records * replays;
  return { nsPerRecord: (cpu * 1e9) / records, gcShare: gcMs / wallMs, gcNsPerRecord: (gcMs * 1e6) / records, lostSpans: run.lostSpans?.() ?? 0 };
}

export async function runStages(stream: Stream, seconds: number, rounds: number): Promise<StageResult[]> {
  const sink = await startSink();
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcPauses.push({ start: e.startTime, duration: e.duration });
  });
  observer.observe({ entryTypes: ['gc'] });
  try {
    const ps = prefixes(sink.url, !RECORDED_SCENARIOS.has(stream.name));
    // One unmeasured pass: every prefix's code warm before any is measured.
    for (const p of ps) await measurePrefix(stream, p, 0);
    const per: PrefixRun[][] = ps.map(() => []);
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < ps.length; i++) per[i]!.push(await measurePrefix(stream, ps[i]!, seconds));
    }
    return ps.map((p, i) => ({
      stage: p.stage,
      cumulativeNsPerRecord: median(per[i]!.map((x) => x.nsPerRecord)),
      nsPerRecord: median(per[i]!.map((x, r) => x.nsPerRecord - (i > 0 ? per[i - 1]![r]!.nsPerRecord : 0))),
      gcShare: median(per[i]!.map((x) => x.gcShare)),
      gcNsPerRecord: median(per[i]!.map((x) => x.gcNsPerRecord)),
      rounds,
      lostSpans: per[i]!.reduce((a, x) => a + x.lostSpans, 0),
    }));
  } finally {
    observer.disconnect();
    sink.stop();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function fmtStages(stages: readonly StageResult[], stream: string, seconds: number): string {
  const rows = stages.map(
    (s) =>
      `  ${s.stage.padEnd(22)} ${s.nsPerRecord.toFixed(0).padStart(9)}  ${s.cumulativeNsPerRecord.toFixed(0).padStart(10)}  ` +
      `${s.gcNsPerRecord.toFixed(0).padStart(12)}  ${(s.gcShare * 100).toFixed(1).padStart(7)}%` +
      (s.lostSpans > 0 ? `  (${s.lostSpans} spans dropped or failed: less work than the records ask)` : ''),
  );
  return (
    `budget per stage (${stream}; method: prefixes of the pipeline over the same batches, differences of CPU time; ` +
    `${stages[0]?.rounds ?? 0} rounds x ${seconds} s CPU per prefix, alternated, medians; ` +
    `a stage's ns/record is the median of per-round differences, so the column need not add up to the cumulative one exactly; ` +
    `GC of each prefix as a whole: main-thread GC pause time per record and over the replays' wall time):\n` +
    `  ${'stage'.padEnd(22)} ${'ns/record'.padStart(9)}  ${'cumulative'.padStart(10)}  ${'GC ns/record'.padStart(12)}  ${'GC share'.padStart(8)}\n` +
    rows.join('\n') +
    '\n'
  );
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '5' },
      scenario: { type: 'string' },
      'stage-seconds': { type: 'string', default: '1.5' },
      'stage-rounds': { type: 'string', default: '3' },
      'no-stages': { type: 'boolean', default: false },
      'stages-scenario': { type: 'string', default: 'keepalive' },
      json: { type: 'boolean', default: false },
    },
  });
  const seconds = Number(values.seconds);
  if (!(seconds > 0)) throw new Error(`--seconds takes a positive number, got ${values.seconds}`);
  const names = values.scenario ? values.scenario.split(',') : Object.keys(SCENARIOS);
  for (const n of names) if (!SCENARIOS[n]) throw new Error(`unknown scenario ${n}; known: ${Object.keys(SCENARIOS).join(', ')}`);
  const streams = names.map((n) => SCENARIOS[n]!());
  const results: ScenarioResult[] = [];
  for (const s of streams) {
    // One unmeasured replay through a throwaway agent first: JIT, module and
    // /proc caches are then warm, and one-time allocations stay out of the heap figure.
    await runScenario(s, 0);
    const r = await runScenario(s, seconds);
    results.push(r);
    if (!values.json) process.stdout.write(fmt(r) + '\n');
  }
  let stages: StageResult[] | undefined;
  if (!values['no-stages']) {
    const stageSeconds = Number(values['stage-seconds']);
    const stageRounds = Number(values['stage-rounds']);
    if (!(stageSeconds > 0) || !(stageRounds >= 1)) throw new Error('--stage-seconds and --stage-rounds take positive numbers');
    const name = values['stages-scenario'];
    if (!SCENARIOS[name]) throw new Error(`unknown scenario ${name}; known: ${Object.keys(SCENARIOS).join(', ')}`);
    const staged = streams.find((s) => s.name === name) ?? SCENARIOS[name]!();
    stages = await runStages(staged, stageSeconds, stageRounds);
    if (!values.json) process.stdout.write(fmtStages(stages, staged.name, stageSeconds));
  }
  if (values.json) {
    const byScenario = Object.fromEntries(results.map((r) => [r.scenario, r]));
    process.stdout.write(JSON.stringify(stages ? { ...byScenario, stages } : byScenario, null, 2) + '\n');
  }
  return results.every((r) => r.records === r.expectedRecords && r.spansDropped === 0) ? 0 : 1;
}

if (require.main === module) runMain(main);
