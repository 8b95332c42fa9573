import test from 'ava';
import { parseTraceContext } from '../../../src/protocols/http/trace-context';

const TP = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

test('a valid traceparent, with tracestate', (t) => {
  t.deepEqual(parseTraceContext([TP], ['rojo=00f067aa0ba902b7', 'congo=t61rcWkgMzE']), {
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: '00f067aa0ba902b7',
    traceFlags: 1,
    traceState: 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE',
  });
  t.deepEqual(parseTraceContext([TP.replace(/-01$/, '-00')], []), {
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: '00f067aa0ba902b7',
    traceFlags: 0,
  });
});

test('anything not strictly version 00 with lowercase non-zero ids is ignored', (t) => {
  for (const bad of [
    TP.toUpperCase(),
    TP.replace(/^00/, '01'),
    TP.replace(/^00/, 'ff'),
    TP.replace('4bf92f3577b34da6a3ce929d0e0e4736', '0'.repeat(32)),
    TP.replace('00f067aa0ba902b7', '0'.repeat(16)),
    `${TP}-extra`,
    TP.slice(0, -1),
    '00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01',
    '',
  ]) {
    t.is(parseTraceContext([bad], []), undefined, bad);
  }
  t.is(parseTraceContext([TP, TP], []), undefined, 'two traceparent headers');
  t.is(parseTraceContext([], ['a=b']), undefined, 'tracestate alone');
});

test('a tracestate over 512 characters or with control bytes is dropped, the traceparent kept', (t) => {
  t.is(parseTraceContext([TP], [`a=${'x'.repeat(511)}`])?.traceState, undefined);
  t.is(parseTraceContext([TP], [`a=${'x'.repeat(510)}`])?.traceState, `a=${'x'.repeat(510)}`);
  t.is(parseTraceContext([TP], ['a=b\x01'])?.traceState, undefined);
  t.truthy(parseTraceContext([TP], ['a=b\x01']));
});
