import test from 'ava';
import { LINK_PROOF_SETS, TraceGraph, type RequestStart, type RuntimeLink } from '../../src/correlate/trace-graph';
import type { L7Record } from '../../src/protocols/types';

// Runtime marks (nginx, Go, the Node.js preload): a mark names the SERVER
// request in flight on a server connection; the CLIENT requests started
// next on the marked connection are its children, and nothing else is.

function graph(onRuleOff?: (tgid: number, rule: string, why: string) => void) {
  return new TraceGraph({ decide: () => true }, undefined, onRuleOff ? { onRuleOff } : {});
}

function start(connId: number, kind: 'server' | 'client', sequence: number, startNs: number, extra: Partial<RequestStart> = {}): RequestStart {
  return { connId, tgid: 100, kind, sequence, pos: 0, startNs, tid: 1, ...extra };
}

function record(connId: number, kind: 'server' | 'client', sequence: number, extra: Partial<L7Record> = {}): L7Record {
  return { protocol: 'http1', kind, connId, tgid: 100, startNs: 0, endNs: 0, name: 'GET', attributes: {}, status: 'unset', sequence, measurements: [], ...extra };
}

function mark(rule: RuntimeLink['rule'], serverConnId: number, clientConnId: number, extra: Partial<RuntimeLink> = {}): RuntimeLink {
  return { atNs: 0, tgid: 100, rule, op: 'set', serverConnId, clientConnId, serverRole: 'server', clientRole: 'client', serverFd: 10, clientFd: 20, ...extra };
}

test('a mark links the next client requests on its connection to the request in flight on the server connection', (t) => {
  const g = graph();
  // Two server connections with a request each in flight, one upstream connection used for both in turn (nginx keep-alive).
  g.started(start(1, 'server', 0, 10));
  g.started(start(2, 'server', 0, 11));
  g.link(mark('nginx', 2, 9));
  g.started(start(9, 'client', 0, 12));
  const c1 = g.completed(record(9, 'client', 0));
  g.link(mark('nginx', 1, 9));
  g.started(start(9, 'client', 1, 13));
  const c2 = g.completed(record(9, 'client', 1));
  const s1 = g.completed(record(1, 'server', 0));
  const s2 = g.completed(record(2, 'server', 0));
  t.is(c1.parentSpanId, s2.spanId);
  t.is(c1.traceId, s2.traceId);
  t.is(c2.parentSpanId, s1.spanId);
  t.is(c2.traceId, s1.traceId);
  t.is(g.stats.linked.nginx, 2);
  t.is(g.stats.runtime.nginx.sets, 2);
});

test('a mark stays for later requests on the connection while its request is in flight (two queries of one handler)', (t) => {
  const g = graph();
  g.started(start(1, 'server', 0, 10));
  g.link(mark('go', 1, 9));
  g.started(start(9, 'client', 0, 12));
  g.started(start(9, 'client', 1, 13));
  const a = g.completed(record(9, 'client', 0));
  const b = g.completed(record(9, 'client', 1));
  const s = g.completed(record(1, 'server', 0));
  t.is(a.parentSpanId, s.spanId);
  t.is(b.parentSpanId, s.spanId);
});

test('after the request it named ended, the marked connection starts roots (counted ended)', (t) => {
  const g = graph();
  g.started(start(1, 'server', 0, 10));
  g.link(mark('node', 1, 9));
  g.completed(record(1, 'server', 0));
  g.started(start(9, 'client', 0, 20));
  t.is(g.completed(record(9, 'client', 0)).parentSpanId, undefined);
  t.is(g.stats.runtime.node.rejected.ended, 1);
});

test('a clear: the connection works for no request, even with a single one in flight (no event-loop guess)', (t) => {
  const g = graph();
  g.started(start(1, 'server', 0, 10));
  g.link(mark('node', 1, 9));
  g.link(mark('node', 0, 9, { op: 'clear', serverFd: -1, serverRole: 'unknown' }));
  g.started(start(9, 'client', 0, 12));
  t.is(g.completed(record(9, 'client', 0)).parentSpanId, undefined);
  t.is(g.stats.runtime.node.clears, 1);
  t.is(g.stats.linked.event_loop, 0);
});

test('node: a connection never marked keeps the event-loop rule; nginx and go: a root, counted unmarked', (t) => {
  for (const rule of ['node', 'nginx', 'go'] as const) {
    const g = graph();
    g.started(start(1, 'server', 0, 10, { tgid: 100 }));
    g.link(mark(rule, 1, 9));
    g.started(start(8, 'client', 0, 12));
    const c = g.completed(record(8, 'client', 0));
    const s = g.completed(record(1, 'server', 0));
    if (rule === 'node') {
      t.is(c.parentSpanId, s.spanId, rule);
      t.is(g.stats.linked.thread + g.stats.linked.event_loop, 1, rule);
    } else {
      t.is(c.parentSpanId, undefined, rule);
      t.is(g.stats.runtime[rule].rejected.unmarked, 1, rule);
    }
  }
});

test('several requests in flight on the server connection (pipelining, HTTP/2): ambiguous, no link', (t) => {
  const g = graph();
  g.started(start(1, 'server', 0, 10));
  g.started(start(1, 'server', 1, 11));
  g.link(mark('nginx', 1, 9));
  g.started(start(9, 'client', 0, 12));
  t.is(g.completed(record(9, 'client', 0)).parentSpanId, undefined);
  t.is(g.stats.runtime.nginx.rejected.ambiguous, 1);
});

test('no request in flight on the server connection: the old mark is replaced by nothing', (t) => {
  const g = graph();
  g.started(start(1, 'server', 0, 10));
  g.link(mark('nginx', 1, 9));
  g.completed(record(1, 'server', 0));
  g.started(start(2, 'server', 0, 11));
  g.link(mark('nginx', 3, 9));
  g.started(start(9, 'client', 0, 12));
  t.is(g.completed(record(9, 'client', 0)).parentSpanId, undefined);
  t.is(g.stats.runtime.nginx.rejected.no_request, 1);
});

test('a first mark naming a fd that is no socket switches the rule off for the process, logged once', (t) => {
  const off: string[] = [];
  const g = graph((tgid, rule, why) => off.push(`${tgid} ${rule} ${why}`));
  g.started(start(1, 'server', 0, 10));
  g.link(mark('nginx', 0, 9, { serverFd: 4242 }));
  g.link(mark('nginx', 1, 9));
  g.started(start(9, 'client', 0, 12));
  t.is(g.completed(record(9, 'client', 0)).parentSpanId, undefined);
  t.deepEqual(off, ['100 nginx server fd 4242 is not a followed TCP socket']);
  t.is(g.stats.runtime.nginx.checksFailed, 1);
  t.is(g.stats.runtime.nginx.rejected.not_socket, 1);
  t.is(g.stats.runtime.nginx.rejected.rule_off, 1);
  t.is(g.stats.linked.nginx, 0);
});

test('a wrong role during the proof switches the rule off; after the proof it is only counted', (t) => {
  const g1 = graph();
  g1.link(mark('go', 1, 9, { serverRole: 'client' }));
  t.is(g1.stats.runtime.go.checksFailed, 1);

  const g2 = graph();
  for (let i = 0; i < LINK_PROOF_SETS; i++) {
    g2.started(start(1, 'server', i, 10 + i));
    g2.link(mark('go', 1, 9));
    g2.completed(record(1, 'server', i));
  }
  g2.link(mark('go', 1, 9, { clientRole: 'server' }));
  t.is(g2.stats.runtime.go.checksFailed, 0);
  t.is(g2.stats.runtime.go.rejected.wrong_role, 1);
  g2.started(start(1, 'server', 99, 100));
  g2.link(mark('go', 1, 9));
  g2.started(start(9, 'client', 0, 101));
  const c = g2.completed(record(9, 'client', 0));
  const s = g2.completed(record(1, 'server', 99));
  t.is(c.parentSpanId, s.spanId);
});

test('a traceparent on the client request wins over a mark', (t) => {
  const g = graph();
  g.started(start(1, 'server', 0, 10));
  g.link(mark('nginx', 1, 9));
  const traceContext = { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), traceFlags: 1 };
  g.started(start(9, 'client', 0, 12, { traceContext }));
  const c = g.completed(record(9, 'client', 0));
  t.is(c.traceId, traceContext.traceId);
  t.is(c.spanId, traceContext.spanId);
});

test('a process exit forgets its marks', (t) => {
  const g = graph();
  g.started(start(1, 'server', 0, 10));
  g.link(mark('nginx', 1, 9));
  g.processExited(100);
  g.started(start(1, 'server', 1, 20));
  g.started(start(9, 'client', 0, 21, { tid: 2 }));
  t.is(g.completed(record(9, 'client', 0)).parentSpanId, undefined);
  t.is(g.stats.linked.nginx, 0);
});

test('a process known to run Go takes no thread guess before its first mark; an exec into another program restores the rules', (t) => {
  const g = graph();
  g.processRuntime(100, 'go');
  g.started(start(1, 'server', 0, 10));
  g.started(start(9, 'client', 0, 11));
  t.is(g.completed(record(9, 'client', 0)).parentSpanId, undefined, 'the thread rule would have linked it');
  t.is(g.stats.runtime.go.rejected.unmarked, 1);
  g.processRuntime(100, undefined);
  g.started(start(9, 'client', 1, 12));
  const c = g.completed(record(9, 'client', 1));
  const s = g.completed(record(1, 'server', 0));
  t.is(c.parentSpanId, s.spanId);
  t.is(g.stats.linked.thread, 1);
});
