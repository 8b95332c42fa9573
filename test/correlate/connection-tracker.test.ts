import test from 'ava';
import { decodeBatch, newDecodeStats } from '../../src/capture/decode';
import type { CaptureEvent } from '../../src/capture/events';
import { ConnectionTracker } from '../../src/correlate/connection-tracker';
import { TraceGraph } from '../../src/correlate/trace-graph';
import type { ProtocolDefinition, SessionObserver } from '../../src/protocols/types';
import { silentLogger } from '../../src/util/log';
import { lineProtocol } from '../helpers/line-protocol';
import { batch, connRecord as connRecordOf, dataRecord, procRecord, type DataSpec } from '../helpers/records';

function run(records: Buffer[], opts: Partial<ConstructorParameters<typeof ConnectionTracker>[0]> = {}) {
  const tracker = new ConnectionTracker({ protocols: [lineProtocol], ...opts }, silentLogger);
  const events: CaptureEvent[] = [];
  decodeBatch(batch(records), (e) => events.push(e), newDecodeStats());
  for (const e of events) tracker.onEvent(e);
  return tracker;
}

let pos: Record<string, number> = {};

/**
 * An open or close record; an open starts both streams of its connection at
 * position 0, as the kernel does (the tests run in one process and share the
 * counters, so each connection's positions restart where it opens).
 */
function connRecord(spec: Parameters<typeof connRecordOf>[0]): Buffer {
  if ((spec?.type ?? 'open') === 'open') for (const dir of [1, 2]) delete pos[`${spec?.connId ?? 1}:${dir}`];
  return connRecordOf(spec);
}
function data(connId: number, dir: 1 | 2, text: string, extra: DataSpec = {}): Buffer {
  const key = `${connId}:${dir}`;
  const p = pos[key] ?? 0;
  pos[key] = p + (extra.size ?? text.length);
  return dataRecord({ connId, dir, pos: p, payload: Buffer.from(text), tsEnter: 100 + p, tsExit: 110 + p, ...extra });
}
test.beforeEach(() => {
  pos = {};
});

test('server connection: detection on the first request, records paired in order', (t) => {
  const tracker = run([
    connRecord({ type: 'open', connId: 1, role: 2, reason: 2 }),
    data(1, 2, 'REQ a\n'),
    data(1, 1, 'RES ok\n'),
    data(1, 2, 'REQ b\nREQ c\n'),
    data(1, 1, 'RES ok\nRES bad\n'),
  ]);
  const recs = tracker.take();
  t.deepEqual(recs.map((r) => [r.kind, r.name, r.sequence, r.status]), [
    ['server', 'a', 0, 'unset'],
    ['server', 'b', 1, 'unset'],
    ['server', 'c', 2, 'error'],
  ]);
  t.like(tracker.stats(), { tracking: 1, detected: { line: 1 } });
});

test('detection waits for more bytes when the first ones are a prefix', (t) => {
  const tracker = run([
    connRecord({ type: 'open', connId: 1, role: 1, reason: 1 }),
    data(1, 1, 'RE'),
    data(1, 1, 'Q x\n'),
    data(1, 2, 'RES ok\n'),
  ]);
  t.deepEqual(tracker.take().map((r) => [r.kind, r.name]), [['client', 'x']]);
});

test('an unknown protocol on a connection seen from its start is ignored from then on', (t) => {
  const tracker = run([
    connRecord({ type: 'open', connId: 1, role: 2, reason: 2 }),
    data(1, 2, '\x16\x03\x01 tls hello'),
    data(1, 2, 'REQ late\n'),
    data(1, 1, 'RES ok\n'),
  ]);
  t.deepEqual(tracker.take(), []);
  t.like(tracker.stats(), { ignored: 1, undetected: 1, tracking: 0 });
});

test('a connection joined mid-stream is detected at a later syscall start', (t) => {
  const tracker = run([
    connRecord({ type: 'open', connId: 1, role: 0, reason: 3 }),
    data(1, 2, 'tail of something\n'),
    data(1, 2, 'REQ a\n'),
    data(1, 1, 'RES ok\n'),
  ]);
  t.deepEqual(tracker.take().map((r) => r.name), ['a']);
});

/** The line protocol naming its requests on the wire as HTTP/2 does (stream id 2 * sequence + 1). */
const streamIdProtocol: ProtocolDefinition = {
  ...lineProtocol,
  createSession(conn, requestSide, options, observer?: SessionObserver) {
    return lineProtocol.createSession(conn, requestSide, options, observer && {
      requestStarted: (r) => observer.requestStarted({ ...r, peerId: 2 * r.sequence + 1 }),
      requestAbandoned: (sequence, atNs) => observer.requestAbandoned(sequence, atNs),
    });
  },
};

test('a request\'s peerId reaches the trace graph: both ends joined mid-stream, at different positions, still link', (t) => {
  const tracker = run([
    // Client end (tgid 100) and server end (tgid 200) of one connection, both joined mid-stream.
    connRecord({ type: 'open', connId: 1, tgid: 100, role: 1, reason: 3, tuple: { localPort: 40000, remotePort: 8080 } }),
    connRecord({ type: 'open', connId: 2, tgid: 200, role: 2, reason: 3, tuple: { localPort: 8080, remotePort: 40000 } }),
    data(1, 1, 'tail of something\n', { tgid: 100, role: 1, tuple: { localPort: 40000, remotePort: 8080 } }),
    data(1, 1, 'REQ a\n', { tgid: 100, role: 1, tuple: { localPort: 40000, remotePort: 8080 } }),
    data(2, 2, 'REQ a\n', { tgid: 200, role: 2, tuple: { localPort: 8080, remotePort: 40000 } }),
    data(2, 1, 'RES ok\n', { tgid: 200, role: 2, tuple: { localPort: 8080, remotePort: 40000 } }),
    data(1, 2, 'RES ok\n', { tgid: 100, role: 1, tuple: { localPort: 40000, remotePort: 8080 } }),
  ], { protocols: [streamIdProtocol] });
  const { starts } = tracker.takeSignals();
  t.deepEqual(starts.map((s) => [s.connId, s.kind, s.pos, s.peerId, s.peer?.sawStart]), [
    [1, 'client', 18, 1, false],
    [2, 'server', 0, 1, false],
  ]);
  const g = new TraceGraph({ decide: () => true });
  for (const s of starts) g.started(s);
  const [client, server] = tracker.take().map((r) => g.completed(r)).sort((a, b) => a.record.connId - b.record.connId);
  t.is(server!.parentSpanId, client!.spanId);
  t.is(server!.traceId, client!.traceId);
  t.is(g.stats.linked.peer, 1);
});

test('close gives up pending requests; exit closes what the process held', (t) => {
  const tracker = run([
    connRecord({ type: 'open', connId: 1, role: 2, reason: 2 }),
    data(1, 2, 'REQ a\n'),
    connRecord({ type: 'close', connId: 1, role: 2, reason: 16 }),
    connRecord({ type: 'open', connId: 2, role: 2, reason: 2, tgid: 100 }),
    data(2, 2, 'REQ b\n'),
    procRecord({ type: 'exit', tgid: 100 }),
  ]);
  t.deepEqual(tracker.take().map((r) => [r.name, r.status]), [
    ['a', 'error'],
    ['b', 'error'],
  ]);
  t.is(tracker.stats().connections, 0);
  t.is(tracker.stats().protocol.line!.requestsWithoutResponse, 2);
});

test('tick expires requests past the timeout', (t) => {
  const tracker = run(
    [connRecord({ type: 'open', connId: 1, role: 2, reason: 2 }), data(1, 2, 'REQ slow\n')],
    { requestTimeoutNs: 1000 },
  );
  tracker.tick(500);
  t.deepEqual(tracker.take(), []);
  tracker.tick(5000);
  t.deepEqual(tracker.take().map((r) => [r.name, r.endNs]), [['slow', 5000]]);
});

test('a truncated capture reaches the session as a gap, never as spliced bytes', (t) => {
  const tracker = run([
    connRecord({ type: 'open', connId: 1, role: 2, reason: 2 }),
    data(1, 2, 'REQ a', { size: 50 }),
    data(1, 2, 'REQ b\n'),
    data(1, 1, 'RES ok\n'),
  ]);
  // "REQ a" lost its end in the gap: the line protocol drops it; "b" pairs with the response.
  t.deepEqual(tracker.take().map((r) => r.name), ['b']);
  t.is(tracker.stats().stream.gapBytes, 45);
});

test('the connection bound evicts the oldest state', (t) => {
  const recs: Buffer[] = [];
  for (let i = 1; i <= 5; i++) recs.push(connRecord({ type: 'open', connId: i, role: 2, reason: 2 }), data(i, 2, 'REQ x\n'));
  const tracker = run(recs, { maxConnections: 3 });
  t.like(tracker.stats(), { connections: 3, evicted: 2 });
  t.deepEqual(tracker.take(), [], 'evicted requests are not turned into made-up errors');
});

test('an ignored connection is reported once, while open, so the capture can stop sending its bytes', (t) => {
  const tracker = run([
    connRecord({ type: 'open', connId: 1, role: 2, reason: 2 }),
    connRecord({ type: 'open', connId: 2, role: 1, reason: 1 }),
    connRecord({ type: 'open', connId: 3, role: 1, reason: 1 }),
    connRecord({ type: 'open', connId: 4, role: 0, reason: 3 }),
    data(1, 2, 'REQ a\n'),
    data(2, 1, '\x16\x03\x01 tls hello'),
    data(3, 1, 'PGSQL startup'),
    // Ignored, then closed before anyone took the signal: nothing to mute.
    connRecord({ type: 'close', connId: 3, role: 1, reason: 16 }),
    // Joined mid-stream: ignored only once its detection attempts are spent.
    data(4, 2, 'binary 1'),
    data(4, 2, 'binary 2'),
    data(4, 2, 'binary 3'),
  ]);
  t.deepEqual(tracker.takeSignals().ignored, [2]);
  for (const e of decodeAll([data(2, 1, 'more tls'), data(4, 2, 'binary 4')])) tracker.onEvent(e);
  t.deepEqual(tracker.takeSignals().ignored, [4], 'the fourth attempt spends connection 4’s budget; 2 is not repeated');
  for (const e of decodeAll([data(4, 2, 'binary 5')])) tracker.onEvent(e);
  t.deepEqual(tracker.takeSignals().ignored, []);
  t.like(tracker.stats(), { tracking: 1, ignored: 2, undetected: 3 });
});

function decodeAll(records: Buffer[]): CaptureEvent[] {
  const events: CaptureEvent[] = [];
  decodeBatch(batch(records), (e) => events.push(e), newDecodeStats());
  return events;
}
