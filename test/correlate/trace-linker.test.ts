import test from 'ava';
import { TraceLinker } from '../../src/correlate/trace-linker';
import type { Sampling } from '../../src/correlate/trace-record';
import type { L7Record } from '../../src/protocols/types';

const base: L7Record = {
  protocol: 'http1', kind: 'server', connId: 1, tgid: 10, startNs: 1, endNs: 2, name: 'GET', attributes: {},
  status: 'unset', sequence: 0, measurements: [],
};
const ctx = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1, traceState: 'k=v' };

test('server span with a carried traceparent is its child, in its trace', (t) => {
  const r = new TraceLinker({ decide: () => true }).link({ ...base, traceContext: ctx });
  t.is(r.traceId, ctx.traceId);
  t.is(r.parentSpanId, ctx.spanId);
  t.regex(r.spanId, /^[0-9a-f]{16}$/);
  t.not(r.spanId, ctx.spanId);
  t.is(r.traceState, 'k=v');
});

test('client span with a carried traceparent takes its trace id and span id', (t) => {
  const r = new TraceLinker({ decide: () => true }).link({ ...base, kind: 'client', traceContext: ctx });
  t.is(r.traceId, ctx.traceId);
  t.is(r.spanId, ctx.spanId);
  t.is(r.parentSpanId, undefined);
});

test('no context: a new root per record, never reused across records', (t) => {
  const linker = new TraceLinker({ decide: () => true });
  const a = linker.link(base);
  const b = linker.link({ ...base, sequence: 1 });
  t.regex(a.traceId, /^[0-9a-f]{32}$/);
  t.not(a.traceId, b.traceId);
  t.is(a.parentSpanId, undefined);
  t.is(linker.stats.roots, 2);
});

test('sampling sees the carried flag and the trace id', (t) => {
  const seen: [string, boolean | undefined][] = [];
  const sampling: Sampling = { decide: (id, parent) => (seen.push([id, parent]), parent ?? false) };
  const linker = new TraceLinker(sampling);
  t.true(linker.link({ ...base, traceContext: ctx }).sampled);
  t.false(linker.link({ ...base, traceContext: { ...ctx, traceFlags: 0 } }).sampled);
  t.false(linker.link(base).sampled);
  t.deepEqual(seen.slice(0, 2), [[ctx.traceId, true], [ctx.traceId, false]]);
  t.is(linker.stats.sampledOut, 2);
});
