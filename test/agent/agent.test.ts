// The agent as `run` builds it (createAgent), on a kernel session without a
// kernel: how its features are wired to the capture and to each other, and
// in which order a process's meters retire.

import test, { type ExecutionContext } from 'ava';
import { AggregationTemporality } from '@opentelemetry/sdk-metrics';
import { createAgent, type Agent, type AgentDeps } from '../../src/agent/agent';
import { parseRunArgs } from '../../src/cli/run-command';
import type { TraceRecord } from '../../src/correlate/trace-record';
import { PROTOCOLS } from '../../src/protocols/registry';
import { FakeProc } from '../helpers/fake-proc';
import { FakeKernelSession, fakeKernelDeps } from '../helpers/fake-session';
import { lineProtocol } from '../helpers/line-protocol';
import { batch, connRecord, dataRecord, procRecord } from '../helpers/records';

const REGISTRY = [...PROTOCOLS, lineProtocol];

interface Built {
  readonly agent: Agent;
  readonly session: FakeKernelSession;
  /** What reached telemetry, in order: 'record <name>', 'exec <tgid>', 'exit <tgid>'. */
  readonly log: string[];
  /** The records themselves. */
  readonly records: TraceRecord[];
  now: number;
}

/** The agent of `run` with these flags, a fake kernel and /proc, OTLP to nowhere (metrics on: the network feature loads). */
function build(t: ExecutionContext, flags: string[], deps: Partial<AgentDeps> = {}): Built {
  const fp = new FakeProc();
  t.teardown(() => fp.cleanup());
  fp.add({ pid: 100, exe: 'usr/bin/app', cmdline: ['app'] });
  fp.add({ pid: 102, exe: 'usr/bin/app', cmdline: ['app'] });
  const options = parseRunArgs(['--pid', '100', '--pid', '102', '--otlp-endpoint', 'http://127.0.0.1:9', '--otlp-timeout', '100ms', ...flags], { env: {}, protocols: REGISTRY });
  if (options === 'help') throw new Error('unreachable');
  const session = new FakeKernelSession();
  const built: Built = { agent: undefined as unknown as Agent, session, log: [], records: [], now: 0 };
  const agent = createAgent(
    { ...options, capture: { ...options.capture, rescanMs: 0 } },
    {
      ...fakeKernelDeps(session, fp.proc, REGISTRY),
      nowMs: () => built.now,
      ...deps,
      // Nothing reaches a collector: the spans and meters of these tests are read where they enter telemetry.
      telemetry: {
        spanExporter: { export: (_r, done) => done({ code: 0 }), shutdown: async () => {} },
        metricExporter: { export: (_r, done) => done({ code: 0 }), selectAggregationTemporality: () => AggregationTemporality.CUMULATIVE, shutdown: async () => {} },
      },
    },
  );
  const record = agent.telemetry.record.bind(agent.telemetry);
  agent.telemetry.record = (rs: readonly TraceRecord[]) => {
    for (const r of rs) built.log.push(`record ${r.record.name}`);
    built.records.push(...rs);
    record(rs);
  };
  const exited = agent.telemetry.processExited.bind(agent.telemetry);
  agent.telemetry.processExited = (p, info) => {
    built.log.push(`exit ${typeof p === 'number' ? p : p.tgid}`);
    exited(p, info);
  };
  const exec = agent.telemetry.processExec.bind(agent.telemetry);
  agent.telemetry.processExec = (p) => {
    built.log.push(`exec ${typeof p === 'number' ? p : p.tgid}`);
    exec(p);
  };
  (built as { agent: Agent }).agent = agent;
  return built;
}

const pos: Record<string, number> = {};
function data(connId: number, dir: 1 | 2, text: string, t: number, tid = 5, tgid = 100) {
  const key = `${connId}:${dir}`;
  const p = pos[key] ?? 0;
  pos[key] = p + text.length;
  return dataRecord({ connId, dir, pos: p, payload: Buffer.from(text), tsEnter: t, tsExit: t + 1, tid, tgid });
}

test('connections the tracker ignores are muted through the session once per batch; in-flight data stays ignored', async (t) => {
  const { agent, session, log } = build(t, ['--protocols', 'line']);
  await agent.start();
  agent.replay(
    batch([
      connRecord({ type: 'open', connId: 11, role: 2, reason: 2 }),
      connRecord({ type: 'open', connId: 12, role: 1, reason: 1 }),
      connRecord({ type: 'open', connId: 13, role: 1, reason: 1 }),
      data(11, 2, 'REQ kept\n', 100),
      data(12, 1, '\x00\x01binary', 110, 6),
      data(13, 1, '\x16\x03tls', 120, 7),
      data(11, 1, 'RES ok\n', 130),
    ]),
  );
  t.deepEqual(session.calls, [[[12, 13], 1]], 'one call for the batch, mode muted, only the ignored connections');
  // Sent before the mute took effect: still ignored, never asked again.
  agent.replay(batch([data(12, 1, 'REQ not a request\n', 140, 6), data(12, 2, 'RES ok\n', 150, 6)]));
  t.is(session.calls.length, 1);
  t.deepEqual(log, ['record kept']);
  t.like(agent.engine.stats(), { muteRequests: 2, muteRequestsFailed: 0 });
  await agent.stop();
  t.true(session.closed);
});

test('after a burst of connections ends, the agent releases free memory on its tick, then once more 5 s later, then not for a minute', async (t) => {
  const released: number[] = [];
  const b = build(t, ['--protocols', 'line'], { releaseMemory: () => (released.push(b.now), { trimmed: true }) });
  const { agent } = b;
  await agent.start();
  const ids = Array.from({ length: 200 }, (_, i) => 1000 + i);
  const tickAt = (s: number) => {
    b.now = s * 1000;
    agent.tick(s * 1e9);
  };
  agent.replay(batch(ids.map((connId) => connRecord({ type: 'open', connId, role: 2, reason: 2 }))));
  tickAt(1);
  t.is(agent.sockets.connectionsOpen(), 200);
  agent.replay(batch(ids.slice(0, 100).map((connId) => connRecord({ type: 'close', connId }))));
  tickAt(2);
  t.deepEqual(released, [], 'half of the peak: not over');
  agent.replay(batch(ids.slice(100).map((connId) => connRecord({ type: 'close', connId }))));
  tickAt(3);
  tickAt(4);
  tickAt(8);
  t.is(agent.sockets.connectionsOpen(), 0);
  t.deepEqual(released, [3000, 8000]);
  // A second burst within the minute waits for it.
  agent.replay(batch(ids.map((connId) => connRecord({ type: 'open', connId: connId + 1000, role: 2, reason: 2 }))));
  tickAt(10);
  agent.replay(batch(ids.map((connId) => connRecord({ type: 'close', connId: connId + 1000 }))));
  tickAt(11);
  tickAt(62);
  tickAt(63);
  t.deepEqual(released, [3000, 8000, 63_000]);
  await agent.stop();
});

test('once start-up has settled, a quiet agent releases free memory once', async (t) => {
  const released: number[] = [];
  const b = build(t, ['--protocols', 'line'], { releaseMemory: () => (released.push(b.now), { trimmed: true }) });
  const { agent } = b;
  await agent.start();
  for (let s = 1; s <= 30; s++) {
    b.now = s * 1000;
    agent.tick(s * 1e9);
  }
  t.deepEqual(released, [4000], '3 s after the first tick, never again');
  await agent.stop();
});

test('without the network tables, an exit retires its meters at the end of its batch, after the batch records', async (t) => {
  const { agent, log } = build(t, ['--protocols', 'line', '--no-tcp-metrics', '--no-flow-metrics']);
  await agent.start();
  t.deepEqual(agent.features.map((f) => f.name), ['socket capture', 'tls', 'linking']);
  agent.replay(
    batch([
      connRecord({ type: 'open', connId: 21, role: 2, reason: 2 }),
      data(21, 2, 'REQ a\n', 100),
      procRecord({ type: 'exit', tgid: 100, tsNs: 150 }),
      data(21, 1, 'RES ok\n', 200),
    ]),
  );
  t.deepEqual(log, ['record a', 'exit 100'], 'the record that ended after the exit event still goes first');
  await agent.stop();
  t.deepEqual(log, ['record a', 'exit 100']);
});

test('with the network tables, an exit waits for their next read: at most every 100 ms after a batch, or the next tick; at stop, before the final flush', async (t) => {
  const b = build(t, ['--protocols', 'line']);
  const { agent, log } = b;
  await agent.start();
  t.deepEqual(agent.features.map((f) => f.name), ['TCP health and flows', 'socket capture', 'tls', 'linking']);
  b.now = 50;
  agent.tick(1);
  b.now = 60;
  agent.replay(batch([connRecord({ type: 'open', connId: 31, role: 2, reason: 2 }), data(31, 2, 'REQ a\n', 100), data(31, 1, 'RES ok\n', 110), procRecord({ type: 'exit', tgid: 100, tsNs: 150 })]));
  t.deepEqual(log, ['record a'], 'held: the tables were read 10 ms ago');
  b.now = 100;
  agent.replay(batch([]));
  t.deepEqual(log, ['record a'], 'still held 50 ms after the read');
  b.now = 160;
  agent.replay(batch([]));
  t.deepEqual(log, ['record a', 'exit 100'], 'released by the read 100 ms after the last');

  agent.replay(batch([procRecord({ type: 'exec', tgid: 102, tsNs: 400 }), procRecord({ type: 'exit', tgid: 102, tsNs: 500 })]));
  t.deepEqual(log.slice(2), ['exec 102'], 'an exec is not held by the network; the exit is');
  await agent.stop();
  t.deepEqual(log.slice(2), ['exec 102', 'exit 102'], 'released by the last read at stop');
});

test('with syscall metrics, exec and exit wait for the histogram read at the end of their batch', async (t) => {
  const { agent, log } = build(t, ['--protocols', 'line', '--no-tcp-metrics', '--no-flow-metrics', '--syscall-metrics']);
  t.deepEqual(agent.features.map((f) => f.name), ['socket capture', 'syscall latency', 'tls', 'linking']);
  await agent.start();
  agent.replay(batch([procRecord({ type: 'exec', tgid: 100, tsNs: 100 }), connRecord({ type: 'open', connId: 41, role: 2, reason: 2 }), data(41, 2, 'REQ a\n', 200), data(41, 1, 'RES ok\n', 210)]));
  t.deepEqual(log, ['record a', 'exec 100']);
  await agent.stop();
});

// Failure classes our peers' users report, each as a test named after it.

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

test('peer failure class: two requests on one keep-alive connection never share a trace unless a header says so', async (t) => {
  const { agent, records } = build(t, []);
  await agent.start();
  agent.replay(
    batch([
      // A server connection: three requests, the second carrying a traceparent.
      connRecord({ type: 'open', connId: 151, role: 2, reason: 2 }),
      data(151, 2, 'GET /a HTTP/1.1\r\nHost: s\r\n\r\n', 100),
      data(151, 1, 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', 110),
      data(151, 2, `GET /b HTTP/1.1\r\nHost: s\r\ntraceparent: ${TRACEPARENT}\r\n\r\n`, 200),
      data(151, 1, 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', 210),
      data(151, 2, 'GET /c HTTP/1.1\r\nHost: s\r\n\r\n', 300),
      data(151, 1, 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', 310),
      // A client connection of a thread serving nothing: two calls.
      connRecord({ type: 'open', connId: 152, role: 1, reason: 1, tuple: { localPort: 40001, remotePort: 9000 } }),
      data(152, 1, 'GET /x HTTP/1.1\r\nHost: up\r\n\r\n', 400, 9),
      data(152, 2, 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', 410, 9),
      data(152, 1, 'GET /y HTTP/1.1\r\nHost: up\r\n\r\n', 500, 9),
      data(152, 2, 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', 510, 9),
    ]),
  );
  const by = (path: string) => records.find((r) => r.record.attributes['url.path'] === path || String(r.record.attributes['url.full']).endsWith(path))!;
  const [a, b, c, x, y] = ['/a', '/b', '/c', '/x', '/y'].map(by);
  t.is(a!.parentSpanId, undefined);
  t.is(c!.parentSpanId, undefined);
  t.is(b!.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
  t.is(b!.parentSpanId, '00f067aa0ba902b7');
  t.is(x!.parentSpanId, undefined);
  t.is(y!.parentSpanId, undefined);
  t.is(new Set([a, b, c, x, y].map((r) => r!.traceId)).size, 5, 'five traces');
  await agent.stop();
});

test('peer failure class: a process that exits mid-request leaves no pending state', async (t) => {
  const { agent, records } = build(t, []);
  await agent.start();
  agent.replay(
    batch([
      connRecord({ type: 'open', connId: 161, role: 2, reason: 2 }),
      data(161, 2, 'GET /slow HTTP/1.1\r\nHost: s\r\n\r\n', 100),
      connRecord({ type: 'open', connId: 162, role: 1, reason: 1, tuple: { localPort: 40002, remotePort: 9000 } }),
      data(162, 1, 'GET /dep HTTP/1.1\r\nHost: up\r\n\r\n', 150),
    ]),
  );
  t.is(agent.sockets.stats().pendingRequests, 2);
  t.is(agent.sockets.stats().tracker.connections, 2);
  agent.replay(batch([procRecord({ type: 'exit', tgid: 100, tsNs: 300 })]));
  const s = agent.sockets.stats();
  t.is(s.pendingRequests, 0, 'the trace graph forgot both');
  t.is(s.tracker.connections, 0, 'the tracker forgot both connections');
  t.deepEqual(
    records.map((r) => [r.record.kind, r.record.attributes['url.path'] ?? r.record.attributes['url.full'], r.record.status, r.record.errorType ?? null]),
    [
      ['server', '/slow', 'error', 'connection_closed'],
      ['client', 'http://up/dep', 'error', 'connection_closed'],
    ],
  );
  t.is(records[1]!.parentSpanId, records[0]!.spanId, 'the call made while serving stays the child of its server request');
  await agent.stop();
});

test('the exit summary reconciles request starts with records: recorded + given up by reason', async (t) => {
  const { agent } = build(t, ['--protocols', 'line', '--no-tcp-metrics', '--no-flow-metrics']);
  await agent.start();
  agent.replay(
    batch([
      connRecord({ type: 'open', connId: 51, role: 2, reason: 2 }),
      connRecord({ type: 'open', connId: 52, role: 1, reason: 1 }),
      data(51, 2, 'REQ a\n', 100),
      data(51, 1, 'RES ok\n', 110), // a: recorded
      data(51, 2, 'REQ b\nREQ c\n', 120),
      data(51, 1, 'GONE\n', 130), // b: abandoned by the parser
      data(51, 1, 'RES ok\n', 140), // c: recorded
      data(51, 2, 'REQ d\n', 150), // d: pending until the stop ends it
      data(52, 1, 'REQ e\n', 160, 6),
      data(52, 2, 'GONE\n', 170, 6), // e: abandoned by the parser
    ]),
  );
  const requests = () => agent.summary().filter((l) => l.startsWith('requests:') || l.startsWith('records:'));
  t.deepEqual(requests(), [
    'records: line 2; muted 0 connections of unknown protocol, 0 bytes not shipped',
    'requests: started 5 = recorded 2 + given up 3 (abandoned by the parser 2, expired without a record 0, connection evicted 0, process exited 0, ' +
      "over the trace graph's bound 0, still pending 1); records 2 = 2 started + 0 whose start was not seen",
  ]);
  await agent.stop();
  t.deepEqual(requests(), [
    'records: line 3; muted 0 connections of unknown protocol, 0 bytes not shipped',
    'requests: started 5 = recorded 3 + given up 2 (abandoned by the parser 2, expired without a record 0, connection evicted 0, process exited 0, ' +
      "over the trace graph's bound 0, still pending 0); records 3 = 3 started + 0 whose start was not seen",
  ]);
});

test('the kernel groups loaded are the features that have work: tcp unless turned off, syscalls only for metrics or slow calls, tls where uprobes are', async (t) => {
  const groupsOf = async (flags: string[]) => {
    const { agent, session } = build(t, flags);
    await agent.start();
    await agent.stop();
    return { groups: session.options!.groups, tcpPeerEntries: session.options!.tcpPeerEntries, slowNs: session.options!.syscalls.slowNs };
  };
  t.deepEqual(await groupsOf([]), { groups: { sockets: true, syscalls: false, tcp: true, tls: true, links: true }, tcpPeerEntries: 8192, slowNs: 0 });
  t.deepEqual((await groupsOf(['--no-tls'])).groups, { sockets: true, syscalls: false, tcp: true, tls: false, links: true });
  t.deepEqual((await groupsOf(['--no-linking'])).groups, { sockets: true, syscalls: false, tcp: true, tls: true, links: false });
  t.deepEqual((await groupsOf(['--no-tcp-metrics', '--tcp-table-size', '512'])).groups, { sockets: true, syscalls: false, tcp: false, tls: true, links: true });
  t.is((await groupsOf(['--tcp-table-size', '512'])).tcpPeerEntries, 512);
  t.deepEqual((await groupsOf(['--syscall-metrics'])).groups, { sockets: true, syscalls: true, tcp: true, tls: true, links: true });
  t.deepEqual(await groupsOf(['--slow', '40ms', '--no-tcp-metrics']), { groups: { sockets: true, syscalls: true, tcp: false, tls: true, links: true }, tcpPeerEntries: 8192, slowNs: 40e6 });
});
