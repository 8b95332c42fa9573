import test from 'ava';
import { TraceGraph, type PeerKey, type RequestStart } from '../../src/correlate/trace-graph';
import type { Sampling } from '../../src/correlate/trace-record';
import type { L7Record } from '../../src/protocols/types';

const all: Sampling = { decide: () => true };

let peers: Record<number, PeerKey> = {};

function graph(p: Record<number, PeerKey> = {}, sampling = all, opts = {}) {
  peers = p;
  return new TraceGraph(sampling, undefined, opts);
}

function start(connId: number, kind: 'server' | 'client', tid: number, extra: Partial<RequestStart> = {}): RequestStart {
  const peer = peers[connId];
  return { connId, tgid: 100, kind, sequence: 0, pos: 0, startNs: 1000, tid, ...(peer ? { peer } : {}), ...extra };
}

function record(connId: number, kind: 'server' | 'client', extra: Partial<L7Record> = {}): L7Record {
  return {
    protocol: 'http1', kind, connId, tgid: 100, startNs: 1000, endNs: 2000, name: 'GET', attributes: {}, status: 'unset',
    sequence: 0, measurements: [], ...extra,
  };
}

test('thread per request: a client call from the serving thread is its child; from another thread, a root', (t) => {
  const g = graph();
  g.started(start(1, 'server', 5));
  g.started(start(2, 'client', 5));
  g.started(start(3, 'client', 6));
  const c1 = g.completed(record(2, 'client'));
  const c2 = g.completed(record(3, 'client'));
  const s = g.completed(record(1, 'server'));
  t.is(c1.traceId, s.traceId);
  t.is(c1.parentSpanId, s.spanId);
  t.is(c2.parentSpanId, undefined, 'a thread that serves nothing has no parent');
  t.not(c2.traceId, s.traceId);
  t.is(s.parentSpanId, undefined);
  t.like(g.stats.linked, { thread: 1, root: 2 });
});

test('after the server request ends, the thread parents nothing', (t) => {
  const g = graph();
  g.started(start(1, 'server', 5));
  const s = g.completed(record(1, 'server'));
  g.started(start(2, 'client', 5));
  const c = g.completed(record(2, 'client'));
  t.is(c.parentSpanId, undefined);
  t.not(c.traceId, s.traceId);
});

test('an event loop: link only with exactly one server request in flight in the process', (t) => {
  const g = graph();
  g.started(start(1, 'server', 7));
  g.started(start(2, 'server', 7)); // same thread, concurrently: multiplexing
  g.started(start(3, 'client', 7));
  t.is(g.completed(record(3, 'client')).parentSpanId, undefined, 'two in flight: ambiguous, left a root');
  t.is(g.stats.ambiguous, 1);
  g.completed(record(2, 'server'));
  g.started(start(4, 'client', 7));
  const c = g.completed(record(4, 'client'));
  const s = g.completed(record(1, 'server'));
  t.is(c.parentSpanId, s.spanId);
  t.is(g.stats.linked.event_loop, 1);
});

const CLIENT_END: PeerKey = { netns: 9, localAddr: '127.0.0.1', localPort: 40000, remoteAddr: '127.0.0.1', remotePort: 8080, sawStart: true };
const SERVER_END: PeerKey = { netns: 9, localAddr: '127.0.0.1', localPort: 8080, remoteAddr: '127.0.0.1', remotePort: 40000, sawStart: true };

test('both ends seen: the server span is the child of the client span at the same stream position', (t) => {
  const g = graph({ 1: CLIENT_END, 2: SERVER_END });
  for (const [seq, pos] of [[0, 0], [1, 120]] as const) {
    g.started(start(1, 'client', 5, { sequence: seq, pos, tgid: 100 }));
    g.started(start(2, 'server', 8, { sequence: seq, pos, tgid: 200 }));
  }
  const s0 = g.completed(record(2, 'server', { tgid: 200 }));
  const s1 = g.completed(record(2, 'server', { tgid: 200, sequence: 1 }));
  const c0 = g.completed(record(1, 'client'));
  const c1 = g.completed(record(1, 'client', { sequence: 1 }));
  t.is(s0.parentSpanId, c0.spanId);
  t.is(s0.traceId, c0.traceId);
  t.is(s1.parentSpanId, c1.spanId);
  t.not(c0.traceId, c1.traceId, 'keep-alive requests are separate traces');
  t.is(g.stats.linked.peer, 2);
});

test('a tuple reused by a new connection: the old client ending does not take away the new one', (t) => {
  // Connection 1 ends late (its record completes after connection 3, same tuple, started at position 0).
  const g = graph({ 1: CLIENT_END, 3: { ...CLIENT_END }, 4: SERVER_END });
  g.started(start(1, 'client', 5));
  g.started(start(3, 'client', 5));
  g.completed(record(1, 'client'));
  g.started(start(4, 'server', 8, { tgid: 200 }));
  const c3 = g.completed(record(3, 'client'));
  const s4 = g.completed(record(4, 'server', { tgid: 200 }));
  t.is(s4.parentSpanId, c3.spanId);
  t.is(s4.traceId, c3.traceId);
});

test('no peer link when positions differ, namespaces differ, or a connection was joined mid-stream', (t) => {
  for (const [clientEnd, serverEnd, pos] of [
    [CLIENT_END, SERVER_END, 7],
    [CLIENT_END, { ...SERVER_END, netns: 10 }, 0],
    [CLIENT_END, { ...SERVER_END, sawStart: false }, 0],
    [{ ...CLIENT_END, sawStart: false }, SERVER_END, 0],
  ] as const) {
    const g = graph({ 1: clientEnd, 2: serverEnd });
    g.started(start(1, 'client', 5));
    g.started(start(2, 'server', 8, { pos }));
    t.is(g.completed(record(2, 'server')).parentSpanId, undefined);
  }
});

// HTTP/2-style ends: both joined mid-stream, requests named by their stream id.
const H2_CLIENT_END: PeerKey = { ...CLIENT_END, sawStart: false };
const H2_SERVER_END: PeerKey = { ...SERVER_END, sawStart: false };

test('by stream id: both ends joined mid-stream, the server span is the child of the client span with its stream id', (t) => {
  const g = graph({ 1: H2_CLIENT_END, 2: H2_SERVER_END });
  // Positions differ (the ends attached at different bytes): the stream id is what matches.
  g.started(start(1, 'client', 5, { peerId: 7, pos: 300 }));
  g.started(start(2, 'server', 8, { tgid: 200, peerId: 7, pos: 41 }));
  const s = g.completed(record(2, 'server', { tgid: 200 }));
  const c = g.completed(record(1, 'client'));
  t.is(s.parentSpanId, c.spanId);
  t.is(s.traceId, c.traceId);
  t.is(g.stats.linked.peer, 1);
});

test('by stream id: the same id on another tuple or in another namespace does not link', (t) => {
  for (const serverEnd of [{ ...H2_SERVER_END, remotePort: 40001 }, { ...H2_SERVER_END, netns: 10 }]) {
    const g = graph({ 1: H2_CLIENT_END, 2: serverEnd });
    g.started(start(1, 'client', 5, { peerId: 1 }));
    g.started(start(2, 'server', 8, { tgid: 200, peerId: 1 }));
    t.is(g.completed(record(2, 'server', { tgid: 200 })).parentSpanId, undefined);
    t.is(g.stats.linked.peer, 0);
  }
});

test('by position: still needs both ends seen from the start, even when the other ends are mid-stream HTTP/2-style', (t) => {
  const g = graph({ 1: H2_CLIENT_END, 2: H2_SERVER_END });
  g.started(start(1, 'client', 5, { pos: 0 }));
  g.started(start(2, 'server', 8, { tgid: 200, pos: 0 }));
  t.is(g.completed(record(2, 'server', { tgid: 200 })).parentSpanId, undefined);
  t.is(g.stats.linked.peer, 0);
});

test('a stream id never matches a stream position of the same number, either way round', (t) => {
  for (const [client, server] of [
    [{ peerId: 1, pos: 1 }, { pos: 1 }],
    [{ pos: 1 }, { peerId: 1, pos: 1 }],
    [{ peerId: 0, pos: 0 }, { pos: 0 }], // not a stream id: never registered, so never meets position 0
    [{ pos: 0 }, { peerId: 0, pos: 0 }],
  ] as const) {
    const g = graph({ 1: CLIENT_END, 2: SERVER_END }); // seen from the start: positions alone would match
    g.started(start(1, 'client', 5, client));
    g.started(start(2, 'server', 8, { tgid: 200, ...server }));
    t.is(g.completed(record(2, 'server', { tgid: 200 })).parentSpanId, undefined, JSON.stringify([client, server]));
    t.is(g.stats.linked.peer, 0);
  }
});

test('by stream id: a new connection on the tuple does not link to a request of the old one that ended', (t) => {
  const g = graph({ 1: H2_CLIENT_END, 3: { ...H2_SERVER_END } });
  g.started(start(1, 'client', 5, { peerId: 1 }));
  g.completed(record(1, 'client'));
  // The same tuple again, its client end not traced: stream 1 of the new connection has no client span.
  g.started(start(3, 'server', 8, { tgid: 200, peerId: 1 }));
  t.is(g.completed(record(3, 'server', { tgid: 200 })).parentSpanId, undefined);
  t.is(g.stats.linked.peer, 0);
});

test('by stream id: the old request ending late does not take away a new connection\'s request with its id', (t) => {
  const g = graph({ 1: H2_CLIENT_END, 3: { ...H2_CLIENT_END }, 4: H2_SERVER_END });
  g.started(start(1, 'client', 5, { peerId: 1 }));
  g.started(start(3, 'client', 5, { peerId: 1 }));
  g.completed(record(1, 'client'));
  g.started(start(4, 'server', 8, { tgid: 200, peerId: 1 }));
  const c3 = g.completed(record(3, 'client'));
  const s4 = g.completed(record(4, 'server', { tgid: 200 }));
  t.is(s4.parentSpanId, c3.spanId);
  t.is(g.stats.linked.peer, 1);
});

test('by stream id: interleaved streams each link to their own client request', (t) => {
  const g = graph({ 1: H2_CLIENT_END, 2: H2_SERVER_END });
  // Client streams 1, 3, 5 are sequences 0, 1, 2 on both ends; the server reads their HEADERS as 5, 1, 3.
  for (const id of [1, 3, 5]) g.started(start(1, 'client', 5, { sequence: (id - 1) / 2, peerId: id, pos: id * 100 }));
  for (const id of [5, 1, 3]) g.started(start(2, 'server', 8, { tgid: 200, sequence: (id - 1) / 2, peerId: id, pos: 9 + id }));
  const servers = [5, 1, 3].map((id) => [id, g.completed(record(2, 'server', { tgid: 200, sequence: (id - 1) / 2 }))] as const);
  const clients = new Map([1, 3, 5].map((id) => [id, g.completed(record(1, 'client', { sequence: (id - 1) / 2 }))] as const));
  for (const [id, s] of servers) {
    t.is(s.parentSpanId, clients.get(id)!.spanId, `stream ${id}`);
    t.is(s.traceId, clients.get(id)!.traceId, `stream ${id}`);
  }
  t.is(new Set([...clients.values()].map((c) => c.traceId)).size, 3, 'each stream its own trace');
  t.is(g.stats.linked.peer, 3);
  t.is(g.stats.linked.root, 3);
});

test('a carried traceparent wins over the peer', (t) => {
  const g = graph({ 1: CLIENT_END, 2: SERVER_END });
  g.started(start(1, 'client', 5));
  const carried = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1 };
  g.started(start(2, 'server', 8, { traceContext: carried }));
  const s = g.completed(record(2, 'server'));
  t.is(s.traceId, carried.traceId);
  t.is(s.parentSpanId, carried.spanId);
});

test('a client call carrying traceparent takes its ids and infers no parent', (t) => {
  const g = graph();
  g.started(start(1, 'server', 5));
  const carried = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1 };
  g.started(start(2, 'client', 5, { traceContext: carried }));
  const c = g.completed(record(2, 'client'));
  t.is(c.spanId, carried.spanId);
  t.is(c.parentSpanId, undefined);
});

test('children follow their parent sampling decision', (t) => {
  const g = graph({}, { decide: () => false });
  g.started(start(1, 'server', 5));
  g.started(start(2, 'client', 5));
  t.false(g.completed(record(2, 'client')).sampled);
  t.false(g.completed(record(1, 'server')).sampled);
});

test('abandoned and stale server requests parent nothing', (t) => {
  const g = graph();
  g.started(start(1, 'server', 5));
  g.abandoned(1, 0);
  g.started(start(2, 'client', 5));
  t.is(g.completed(record(2, 'client')).parentSpanId, undefined);
  const h = graph({}, all, { staleNs: 100 });
  h.started(start(1, 'server', 5, { startNs: 0 }));
  h.expire(1000);
  h.started(start(2, 'client', 5, { startNs: 1000 }));
  t.is(h.completed(record(2, 'client')).parentSpanId, undefined);
});

test('a record whose start was not seen still gets valid ids', (t) => {
  const g = graph();
  const r = g.completed(record(1, 'server'));
  t.regex(r.traceId, /^[0-9a-f]{32}$/);
  t.is(g.stats.lateStarts, 1);
});

test('pending entries are bounded', (t) => {
  const g = graph({}, all, { maxPending: 3 });
  for (let i = 0; i < 5; i++) g.started(start(i, 'client', 5));
  t.is(g.pendingCount(), 3);
  t.is(g.stats.evicted, 2);
});

test('every start is accounted for: recorded, abandoned, expired, connection evicted, process exited, over the bound, or pending', (t) => {
  const g = graph({}, all, { maxPending: 4, staleNs: 100 });
  const outcomes = () => {
    const s = g.stats;
    return { started: s.started, recorded: s.recorded, abandoned: s.abandoned, expired: s.expired, connectionEvicted: s.connectionEvicted, processExited: s.processExited, evicted: s.evicted, pending: g.pendingCount(), lateStarts: s.lateStarts };
  };
  g.started(start(1, 'server', 5, { startNs: 0 })); // recorded
  g.started(start(1, 'server', 5, { startNs: 0 })); // the same start again: counted once
  g.completed(record(1, 'server'));
  g.started(start(2, 'client', 5, { startNs: 10 })); // abandoned
  g.abandoned(2, 0);
  g.abandoned(2, 0); // twice: counted once
  g.started(start(3, 'client', 5, { startNs: 20 })); // its connection evicted
  g.started(start(3, 'client', 5, { startNs: 20, sequence: 1 }));
  g.connectionEvicted(3);
  g.started(start(4, 'server', 6, { startNs: 30, tgid: 200 })); // its process exited
  g.processExited(200);
  g.started(start(5, 'client', 7, { startNs: 40 })); // expires
  g.expire(141);
  g.completed(record(4, 'server', { tgid: 200 })); // its record after all: a late start, not a second outcome
  for (let i = 0; i < 6; i++) g.started(start(10 + i, 'client', 8, { startNs: 200 })); // two over the bound of 4, four pending
  t.deepEqual(outcomes(), { started: 12, recorded: 1, abandoned: 1, expired: 1, connectionEvicted: 2, processExited: 1, evicted: 2, pending: 4, lateStarts: 1 });
  const s = g.stats;
  t.is(s.started, s.recorded + s.abandoned + s.expired + s.connectionEvicted + s.processExited + s.evicted + g.pendingCount());
});

test('request keys never collide: ids out of the numeric key range keep their own entries', (t) => {
  // 1 * 2^21 + 2^21 would be 2 * 2^21 + 0 if the key were numeric for every pair.
  const pairs: Array<[number, number]> = [[2, 0], [1, 2 ** 21], [2 ** 32, 0], [0, 2 ** 32 * 2 ** 21], [3, 1.5], [3, 1]];
  const g = graph();
  for (const [connId, sequence] of pairs) g.started(start(connId, 'client', 7, { sequence }));
  t.is(g.pendingCount(), pairs.length);
  const spans = new Set<string>();
  for (const [connId, sequence] of pairs) {
    spans.add(g.completed(record(connId, 'client', { sequence })).spanId);
    t.is(g.stats.lateStarts, 0, `${connId}:${sequence} found its own start`);
  }
  t.is(spans.size, pairs.length);
  t.is(g.pendingCount(), 0);
});

test('the process identity handed on is the record\'s own, whatever process came before', (t) => {
  const g = graph();
  const tgids = [100, 100, 200, 100, 300, 300, 200];
  tgids.forEach((tgid, i) => g.started(start(i + 1, 'server', i, { tgid })));
  tgids.forEach((tgid, i) => t.is(g.completed(record(i + 1, 'server', { tgid })).process.tgid, tgid));
});

test('a root record has no parent and no trace state, a carried one keeps its state', (t) => {
  const g = graph();
  g.started(start(1, 'server', 5, { traceContext: { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), traceFlags: 1, traceState: 'k=v' } }));
  g.started(start(2, 'server', 6, { tgid: 101 }));
  const carried = g.completed(record(1, 'server'));
  const root = g.completed(record(2, 'server', { tgid: 101 }));
  t.is(carried.traceState, 'k=v');
  t.is(carried.parentSpanId, 'b'.repeat(16));
  t.is(root.traceState, undefined);
  t.is(root.parentSpanId, undefined);
  t.not(root.traceId, carried.traceId);
});
