import { fixedOffsetHrTime } from '../../src/otel/spans';
import test from 'ava';
import { SpanKind, SpanStatusCode, TraceFlags } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MAX_SPAN_ATTRIBUTES, recordToSpan, toHrTime } from '../../src/otel/spans';
import { traceRecord } from './fixtures';

const OFFSET = 1_700_000_000_000_000_000n; // wall - monotonic
const ctx = { toHrTime: fixedOffsetHrTime(OFFSET), scope: { name: 'ebpf-otel-sidecar', version: '9.9.9' } };
const resource = resourceFromAttributes({ 'service.name': 'svc' });

test('HrTime conversion is exact to the nanosecond', (t) => {
  t.deepEqual(toHrTime(1_700_000_000_123_456_789n), [1_700_000_000, 123_456_789]);
  t.deepEqual(toHrTime(999_999_999n), [0, 999_999_999]);
  t.deepEqual(toHrTime(4_102_444_800_000_000_001n), [4_102_444_800, 1], 'year 2100, 1 ns');
});

test('a server record becomes a SERVER span with exact ids, times, attributes and a remote parent', (t) => {
  const tr = traceRecord(
    {
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
      parentSpanId: 'b7ad6b7169203331',
      traceState: 'vendor=a,ot=th:8',
    },
    { startNs: 86_400_123_456_789, endNs: 86_400_135_802_467 },
  );
  const s = recordToSpan(tr, resource, ctx);
  t.is(s.name, 'GET /users/:id');
  t.is(s.kind, SpanKind.SERVER);
  const sc = s.spanContext();
  t.is(sc.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
  t.is(sc.spanId, '00f067aa0ba902b7');
  t.is(sc.traceFlags, TraceFlags.SAMPLED);
  t.is(sc.traceState?.serialize(), 'vendor=a,ot=th:8');
  t.deepEqual(s.startTime, [1_700_000_000 + 86_400, 123_456_789]);
  t.deepEqual(s.endTime, [1_700_000_000 + 86_400, 135_802_467]);
  t.deepEqual(s.duration, [0, 12_345_678]);
  t.deepEqual(s.parentSpanContext && { ...s.parentSpanContext, traceState: undefined }, {
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: 'b7ad6b7169203331',
    traceFlags: TraceFlags.SAMPLED,
    isRemote: true,
    traceState: undefined,
  });
  t.deepEqual(s.attributes, { 'http.request.method': 'GET', 'http.route': '/users/:id', 'http.response.status_code': 200 });
  t.deepEqual(s.status, { code: SpanStatusCode.UNSET });
  t.is(s.resource, resource);
  t.deepEqual(s.instrumentationScope, { name: 'ebpf-otel-sidecar', version: '9.9.9' });
  t.deepEqual(s.events, []);
  t.deepEqual(s.links, []);
  t.true(s.ended);
  t.is(s.droppedAttributesCount, 0);
  t.is(s.droppedEventsCount, 0);
  t.is(s.droppedLinksCount, 0);
});

test('a failed client record: CLIENT, ERROR with message, error.type, local parent', (t) => {
  const tr = traceRecord(
    { parentSpanId: '1111111111111111' },
    { kind: 'client', status: 'error', statusMessage: 'HTTP 503', errorType: '503', name: 'GET' },
  );
  const s = recordToSpan(tr, resource, ctx);
  t.is(s.kind, SpanKind.CLIENT);
  t.deepEqual(s.status, { code: SpanStatusCode.ERROR, message: 'HTTP 503' });
  t.is(s.attributes['error.type'], '503');
  t.false(s.parentSpanContext!.isRemote);
  const noMessage = recordToSpan(traceRecord({}, { status: 'error' }), resource, ctx);
  t.deepEqual(noMessage.status, { code: SpanStatusCode.ERROR });
});

test('a root has no parent; an end before the start is clamped', (t) => {
  const s = recordToSpan(traceRecord({}, { startNs: 5000, endNs: 4000 }), resource, ctx);
  t.is(s.parentSpanContext, undefined);
  t.deepEqual(s.endTime, s.startTime);
  t.deepEqual(s.duration, [0, 0]);
});

test('attributes beyond the limit are dropped and counted', (t) => {
  const many: Record<string, number> = {};
  for (let i = 0; i < MAX_SPAN_ATTRIBUTES + 5; i++) many[`a${i}`] = i;
  const s = recordToSpan(traceRecord({}, { attributes: many }), resource, ctx);
  t.is(Object.keys(s.attributes).length, MAX_SPAN_ATTRIBUTES);
  t.is(s.droppedAttributesCount, 5);
});
