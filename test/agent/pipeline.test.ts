import test from 'ava';
import { AgentPipeline, type TelemetrySink } from '../../src/agent/pipeline';
import { decodeBatch, newDecodeStats } from '../../src/capture/decode';
import type { CaptureEvent } from '../../src/capture/events';
import { ConnectionTracker } from '../../src/correlate/connection-tracker';
import { TraceGraph } from '../../src/correlate/trace-graph';
import type { TraceRecord } from '../../src/correlate/trace-record';
import { silentLogger } from '../../src/util/log';
import { lineProtocol } from '../helpers/line-protocol';
import { batch, connRecord as connRecordOf, dataRecord, procRecord, type TupleSpec } from '../helpers/records';

function setup() {
  const exported: TraceRecord[] = [];
  const sink: TelemetrySink = { record: (r) => void exported.push(...r), shutdown: async () => {} };
  const tracker = new ConnectionTracker({ protocols: [lineProtocol] }, silentLogger);
  const graph = new TraceGraph({ decide: () => true });
  const pipeline = new AgentPipeline(tracker, graph, sink);
  const feed = (records: Buffer[]) => {
    const events: CaptureEvent[] = [];
    decodeBatch(batch(records), (e) => events.push(e), newDecodeStats());
    for (const e of events) pipeline.onEvent(e);
    pipeline.flush();
  };
  return { exported, feed, graph };
}

const pos: Record<string, number> = {};

/**
 * An open or close record; an open starts both streams of its connection at
 * position 0, as the kernel does (the tests run in one process and share the
 * counters, so each connection's positions restart where it opens).
 */
function connRecord(spec: Parameters<typeof connRecordOf>[0]): Buffer {
  if ((spec?.type ?? 'open') === 'open') for (const dir of [1, 2]) delete pos[`${spec?.connId ?? 1}:${dir}`];
  return connRecordOf(spec);
}
function data(connId: number, dir: 1 | 2, text: string, t: number, tid: number, tgid = 100, tuple?: TupleSpec) {
  const key = `${connId}:${dir}`;
  const p = pos[key] ?? 0;
  pos[key] = p + text.length;
  return dataRecord({ connId, dir, pos: p, payload: Buffer.from(text), tsEnter: t, tsExit: t + 1, tid, tgid, ...(tuple ? { tuple } : {}) });
}

test('in one batch: a call during a server request is its child; a call after it ended is not', (t) => {
  const { exported, feed } = setup();
  feed([
    connRecord({ type: 'open', connId: 1, role: 2, reason: 2 }),
    connRecord({ type: 'open', connId: 2, role: 1, reason: 1 }),
    connRecord({ type: 'open', connId: 3, role: 1, reason: 1 }),
    data(1, 2, 'REQ s\n', 100, 5),
    data(2, 1, 'REQ during\n', 200, 5),
    data(2, 2, 'RES ok\n', 300, 5),
    data(1, 1, 'RES ok\n', 400, 5),
    data(3, 1, 'REQ after\n', 500, 5),
    data(3, 2, 'RES ok\n', 600, 5),
  ]);
  const by = Object.fromEntries(exported.map((r) => [r.record.name, r]));
  t.is(by.during!.parentSpanId, by.s!.spanId);
  t.is(by.during!.traceId, by.s!.traceId);
  t.is(by.after!.parentSpanId, undefined, 'the server request had ended: no parent');
});

test('two processes, both ends of one connection: the server span is the client span child, whatever the batch order, even when both close in the same batch', (t) => {
  const { exported, feed } = setup();
  const client: TupleSpec = { localPort: 40000, remotePort: 8080 };
  const server: TupleSpec = { localPort: 8080, remotePort: 40000 };
  feed([
    connRecord({ type: 'open', connId: 1, role: 1, reason: 1, tgid: 100, tuple: client }),
    connRecord({ type: 'open', connId: 2, role: 2, reason: 2, tgid: 200, tuple: server }),
    // The server's read reached the ring before the client's write (another CPU).
    data(2, 2, 'REQ x\n', 150, 9, 200, server),
    data(1, 1, 'REQ x\n', 100, 5, 100, client),
    data(2, 1, 'RES ok\n', 300, 9, 200, server),
    data(1, 2, 'RES ok\n', 350, 5, 100, client),
    connRecord({ type: 'close', connId: 1, role: 1, reason: 16, tgid: 100, tuple: client }),
    connRecord({ type: 'close', connId: 2, role: 2, reason: 16, tgid: 200, tuple: server }),
  ]);
  const c = exported.find((r) => r.record.kind === 'client')!;
  const s = exported.find((r) => r.record.kind === 'server')!;
  t.is(s.parentSpanId, c.spanId);
  t.is(s.traceId, c.traceId);
});

test('a server process exits in the batch that ends its last request: the request keeps the parent it started with', (t) => {
  const { exported, feed, graph } = setup();
  const client: TupleSpec = { localPort: 40001, remotePort: 8081 };
  const server: TupleSpec = { localPort: 8081, remotePort: 40001 };
  // Batch 1: both ends start the request (the ids and the peer link are decided here).
  feed([
    connRecord({ type: 'open', connId: 11, role: 1, reason: 1, tgid: 100, tuple: client }),
    connRecord({ type: 'open', connId: 12, role: 2, reason: 2, tgid: 200, tuple: server }),
    data(11, 1, 'REQ last\n', 100, 5, 100, client),
    data(12, 2, 'REQ last\n', 150, 9, 200, server),
  ]);
  // Batch 2: the responses, then the server process exits (its fds closed by the exit, no close()).
  feed([
    data(12, 1, 'RES ok\n', 300, 9, 200, server),
    data(11, 2, 'RES ok\n', 350, 5, 100, client),
    connRecord({ type: 'close', connId: 11, role: 1, reason: 16, tgid: 100, tuple: client }),
    procRecord({ type: 'exit', tgid: 200, tsNs: 400 }),
  ]);
  const c = exported.find((r) => r.record.kind === 'client')!;
  const s = exported.find((r) => r.record.kind === 'server')!;
  t.truthy(s, 'the server record');
  t.is(s.parentSpanId, c.spanId);
  t.is(s.traceId, c.traceId);
  t.is(graph.stats.lateStarts, 0);
});

test('one flush replays its signals in time order: at one instant abandons, evictions, records, then exits, then runtime marks, then starts; lists in any order', (t) => {
  const calls: string[] = [];
  const rec = (connId: number, endNs: number) => ({ protocol: 'line', kind: 'server', connId, tgid: 100, startNs: 0, endNs, name: `r${connId}`, attributes: {}, status: 'unset', sequence: 0, measurements: [] });
  const st = (connId: number, startNs: number) => ({ connId, tgid: 100, kind: 'server', sequence: 0, pos: 0, startNs, tid: 1 });
  const tracker = {
    onEvent() {},
    take: () => [rec(3, 50), rec(1, 20), rec(2, 20)],
    takeSignals: () => ({
      starts: [st(9, 20), st(7, 10), st(8, 20)],
      abandons: [{ connId: 5, sequence: 0, atNs: 20 }],
      ignored: [],
      unignored: [],
      evicted: [{ connId: 6, atNs: 20 }, { connId: 4, atNs: 5 }],
      links: [{ clientConnId: 12, atNs: 20 }, { clientConnId: 11, atNs: 15 }],
    }),
  };
  const graph = {
    started: (s: { connId: number }) => void calls.push(`start ${s.connId}`),
    abandoned: (connId: number) => void calls.push(`abandon ${connId}`),
    connectionEvicted: (connId: number) => void calls.push(`evicted ${connId}`),
    processExited: (tgid: number) => void calls.push(`exit ${tgid}`),
    link: (l: { clientConnId: number }) => void calls.push(`link ${l.clientConnId}`),
    completed: (r: { connId: number }) => (calls.push(`record ${r.connId}`), { record: r }),
  };
  const linked: unknown[] = [];
  const pipeline = new AgentPipeline(tracker as never, graph as never, { record: (r) => void linked.push(...r), shutdown: async () => {} });
  pipeline.onEvent({ type: 'exit', tgid: 42, tsNs: 20 } as never);
  pipeline.onEvent({ type: 'exit', tgid: 41, tsNs: 60 } as never);
  pipeline.flush();
  t.deepEqual(calls, [
    'evicted 4', 'start 7', 'link 11',
    'abandon 5', 'evicted 6', 'record 1', 'record 2', 'exit 42', 'link 12', 'start 9', 'start 8',
    'record 3', 'exit 41',
  ]);
  t.is(linked.length, 3);
});
