import { fixedOffsetHrTime } from '../../src/otel/spans';
import test from 'ava';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { ConsolePrinter, formatDuration, formatSpanLine, formatTraceTree } from '../../src/otel/console';
import { recordToSpan } from '../../src/otel/spans';
import { sleep, traceRecord } from './fixtures';
import { harness } from './harness';

// 2023-11-14T22:13:20Z at monotonic 0.
const ctx = { toHrTime: fixedOffsetHrTime(1_700_000_000_000_000_000n), scope: { name: 's', version: '1' } };
const frontend = resourceFromAttributes({ 'service.name': 'frontend' });
const backend = resourceFromAttributes({ 'service.name': 'backend' });
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';

function span(spanId: string, parent: string | undefined, kind: 'server' | 'client', name: string, startNs: number, endNs: number, res = frontend, error?: string) {
  return recordToSpan(
    traceRecord(
      { traceId: TRACE, spanId, ...(parent ? { parentSpanId: parent } : {}) },
      { kind, name, startNs, endNs, ...(error ? { status: 'error' as const, statusMessage: error } : {}) },
    ),
    res,
    ctx,
  );
}

test('one readable line per span', (t) => {
  const s = span('00f067aa0ba902b7', undefined, 'server', 'GET /users/:id', 4_512_000_000, 4_524_345_678);
  t.is(formatSpanLine(s), '22:13:24.512Z  frontend  SERVER  GET /users/:id  OK  12.345ms  trace=4bf92f35 span=00f067aa');
  const e = span('1111111111111111', undefined, 'client', 'GET', 0, 1_000, backend, 'HTTP 503');
  t.is(formatSpanLine(e), '22:13:20.000Z  backend  CLIENT  GET  ERROR HTTP 503  0.001ms  trace=4bf92f35 span=11111111');
});

test('durations are exact milliseconds with 3 decimals', (t) => {
  t.is(formatDuration(0n), '0.000ms');
  t.is(formatDuration(999n), '0.000ms');
  t.is(formatDuration(1_234_567n), '1.234ms');
  t.is(formatDuration(90_000_000_000n), '90000.000ms');
});

test('a trace as an indented tree; orphans at the top level', (t) => {
  const spans = [
    span('cccccccccccccccc', 'bbbbbbbbbbbbbbbb', 'server', 'GET /price', 12_000_000, 22_300_000, backend),
    span('aaaaaaaaaaaaaaaa', undefined, 'server', 'GET /checkout', 0, 45_201_000),
    span('dddddddddddddddd', 'aaaaaaaaaaaaaaaa', 'client', 'POST', 25_000_000, 45_000_000, frontend, 'HTTP 500'),
    span('bbbbbbbbbbbbbbbb', 'aaaaaaaaaaaaaaaa', 'client', 'GET', 10_000_000, 22_100_000),
    span('eeeeeeeeeeeeeeee', 'ffffffffffffffff', 'server', 'GET /late', 30_000_000, 31_000_000, backend),
  ];
  t.deepEqual(formatTraceTree(TRACE, spans), [
    'trace 4bf92f3577b34da6a3ce929d0e0e4736  5 spans  45.201ms',
    '├─ SERVER frontend GET /checkout  45.201ms',
    '│  ├─ CLIENT frontend GET  12.100ms',
    '│  │  └─ SERVER backend GET /price  10.300ms',
    '│  └─ CLIENT frontend POST  20.000ms  ERROR HTTP 500',
    '└─ SERVER backend GET /late  1.000ms',
  ]);
});

test('nested children and the omitted count', (t) => {
  const spans = [
    span('aaaaaaaaaaaaaaaa', undefined, 'server', 'GET /a', 0, 10_000_000),
    span('bbbbbbbbbbbbbbbb', 'aaaaaaaaaaaaaaaa', 'client', 'GET', 1_000_000, 9_000_000),
    span('cccccccccccccccc', 'bbbbbbbbbbbbbbbb', 'server', 'GET /b', 2_000_000, 8_000_000, backend),
  ];
  t.deepEqual(formatTraceTree(TRACE, spans, 2), [
    'trace 4bf92f3577b34da6a3ce929d0e0e4736  5 spans  10.000ms  (2 spans not shown)',
    '└─ SERVER frontend GET /a  10.000ms',
    '   └─ CLIENT frontend GET  8.000ms',
    '      └─ SERVER backend GET /b  6.000ms',
  ]);
});

test('the tree is printed once the trace has been quiet; single spans print no tree', async (t) => {
  const lines: string[] = [];
  const p = new ConsolePrinter({ write: (l) => lines.push(l), quietMillis: 60 });
  p.onSpan(span('aaaaaaaaaaaaaaaa', undefined, 'server', 'GET /a', 0, 10_000_000));
  await sleep(20);
  p.onSpan(span('bbbbbbbbbbbbbbbb', 'aaaaaaaaaaaaaaaa', 'client', 'GET', 1_000_000, 9_000_000));
  const lone = recordToSpan(traceRecord({ traceId: '0'.repeat(31) + '1' }), frontend, ctx);
  p.onSpan(lone);
  t.is(lines.length, 3, 'span lines only, so far');
  await sleep(250);
  t.is(lines.length, 6);
  t.regex(lines[3]!, /^trace 4bf92f35.* 2 spans/);
  t.is(p.stats.treesPrinted, 1);
  t.is(p.heldTraces, 0);
});

test('bounded: the oldest trace is printed early, extra spans are left out and counted', (t) => {
  const lines: string[] = [];
  const p = new ConsolePrinter({ write: (l) => lines.push(l), quietMillis: 60_000, maxTraces: 2, maxSpansPerTrace: 2 });
  const tr = (traceId: string, spanId: string, parent?: string) =>
    recordToSpan(traceRecord({ traceId, spanId, ...(parent ? { parentSpanId: parent } : {}) }), frontend, ctx);
  const [a, b, c] = ['a'.repeat(32), 'b'.repeat(32), 'c'.repeat(32)];
  p.onSpan(tr(a, '1'.repeat(16)));
  p.onSpan(tr(a, '2'.repeat(16), '1'.repeat(16)));
  p.onSpan(tr(a, '3'.repeat(16), '1'.repeat(16)));
  p.onSpan(tr(b, '4'.repeat(16)));
  t.is(p.stats.spansNotInTree, 1);
  p.onSpan(tr(c, '5'.repeat(16)));
  t.is(p.stats.treesPrintedEarly, 1);
  t.is(p.heldTraces, 2);
  t.true(lines.some((l) => l.startsWith(`trace ${a}  3 spans`) && l.includes('(1 spans not shown)')));
  p.flush();
  t.is(p.heldTraces, 0);
});

test('console mode through Telemetry when no endpoint is set', async (t) => {
  const { telemetry, lines } = await harness(t, 'none');
  t.truthy(telemetry.console);
  telemetry.record([traceRecord({ spanId: '00f067aa0ba902b7' }), traceRecord({ sampled: false })]);
  t.is(lines.length, 1);
  t.regex(lines[0]!, /  shop  SERVER  GET \/users\/:id  OK  12\.345ms  trace=4bf92f35 span=00f067aa$/);
});
