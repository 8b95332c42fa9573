import test from 'ava';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import type { TraceRecord } from '../../src/correlate/trace-record';
import { decodePartialSuccess } from '../../src/otel/otlp-common';
import { SpanEncoder } from '../../src/otel/otlp-encode';
import { ProtoWriter } from '../../src/util/protobuf';
import { fixedOffsetClock, MAX_SPAN_ATTRIBUTES, recordToSpan } from '../../src/otel/spans';
import { decodeTraceRequest, traceResponse } from '../helpers/otlp-receiver';
import { traceRecord } from './fixtures';

const SCOPE = { name: 'ebpf-otel-sidecar', version: '9.9.9' };

/** Both encodings of `records`, decoded with the official schema. */
function bothDecoded(records: TraceRecord[], resources: Resource[], offsetNs: bigint) {
  const clock = fixedOffsetClock(offsetNs);
  const encoded = new SpanEncoder(SCOPE, clock).encode(records, resources);
  const ours = decodeTraceRequest(encoded.bytes);
  encoded.release();
  const spans = records.map((tr, i) => recordToSpan(tr, resources[i]!, { toHrTime: clock.toHrTime, scope: SCOPE }));
  const sdk = decodeTraceRequest(ProtobufTraceSerializer.serializeRequest(spans)!);
  return { ours, sdk, spans: encoded.count, invalid: encoded.invalid };
}

const shop = resourceFromAttributes({
  'service.name': 'shop',
  'process.pid': 4242,
  'process.command_args': ['python3', 'shop.py', '--port', '8080'],
  'host.name': 'test-host',
  'ratio': 0.25,
  'debug': false,
});
const billing = resourceFromAttributes({ 'service.name': 'billing', 'process.pid': 4343, 'service.namespace': 'Zürich' });

function many(n: number, prefix = 'a'): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  for (let i = 0; i < n; i++) out[`${prefix}.${i}`] = i % 2 === 0 ? `v${i}` : i;
  return out;
}

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';

const RECORDS: [TraceRecord, Resource][] = [
  // Server span, parent remote, tracestate, every value type, unicode.
  [
    traceRecord(
      { traceId: TRACE, spanId: '00f067aa0ba902b7', parentSpanId: 'b7ad6b7169203331', traceState: 'vendor=x , other=y' },
      {
        name: 'GET /ünïcödé/{id}',
        startNs: 123_456_789_012,
        endNs: 123_469_134_690,
        attributes: {
          'http.request.method': 'GET',
          'url.path': '/ünïcödé/😀',
          'http.response.status_code': 200,
          'server.port': 0,
          'negative': -1,
          'min': -(2 ** 63),
          'big': 2 ** 40,
          'beyond.int64': 2 ** 64,
          'ratio': 0.125,
          'nan': Number.NaN,
          'flag': true,
          'off': false,
          'empty': '',
          'lone.surrogate': 'a\ud800b',
          'long': 'x'.repeat(300),
        },
      },
    ),
    shop,
  ],
  // Client span, error with a message and error.type added, parent local.
  [
    traceRecord(
      { traceId: TRACE, spanId: '1111111111111111', parentSpanId: '00f067aa0ba902b7' },
      { kind: 'client', name: 'GET', status: 'error', statusMessage: 'HTTP 503 — unavailable', errorType: '503', startNs: 123_460_000_000, endNs: 123_465_000_001 },
    ),
    shop,
  ],
  // Another resource in between: grouped by resource in order of first appearance.
  [traceRecord({ traceId: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' }, { tgid: 4343, status: 'error', errorType: 'timeout' }), billing],
  // Root span, error without message, error.type already right.
  [
    traceRecord({ traceId: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB' }, { status: 'error', errorType: '500', statusMessage: '', attributes: { 'error.type': '500', 'http.response.status_code': 500 } }),
    shop,
  ],
  // Over the limit: 140 attributes, error.type to add (dropped: 12 + 1).
  [traceRecord({}, { status: 'error', errorType: 'x', attributes: many(140) }), billing],
  // Exactly at the limit with error.type to add: it is dropped.
  [traceRecord({}, { status: 'error', errorType: 'x', attributes: many(MAX_SPAN_ATTRIBUTES) }), shop],
  // error.type among the first 128 with another value: replaced in place.
  [traceRecord({}, { status: 'error', errorType: 'new', attributes: { ...many(3), 'error.type': 'old', ...many(130, 'b') } }), shop],
  // error.type past the limit: dropped with the rest, and the new value too.
  [traceRecord({}, { status: 'error', errorType: 'new', attributes: { ...many(MAX_SPAN_ATTRIBUTES), 'error.type': 'old' } }), shop],
  // Longer than 2^32 ns: the duration's high half counts.
  [traceRecord({}, { startNs: 10_000_000_000, endNs: 20_000_000_007 }), billing],
  // Unsampled, end before start (clamped), a span over 16 KiB (three-byte length).
  [traceRecord({ sampled: false }, { startNs: 5_000_000_000, endNs: 4_000_000_000, attributes: { 'big.value': 'é'.repeat(9000) } }), billing],
];

test('encodes what the SDK serializer makes of recordToSpan, field for field, decoded with the official schema', (t) => {
  const records = RECORDS.map(([r]) => r);
  const resources = RECORDS.map(([, res]) => res);
  const TWO_32 = 1n << 32n;
  // Wall start 5 ns below a 2^32 boundary: start + duration carries into the high half.
  const carrying = 400_000_000n * TWO_32 + ((TWO_32 - 5n - (123_456_789_012n % TWO_32)) % TWO_32);
  for (const offset of [1_700_000_000_000_000_000n, 1_764_000_004_294_967_295n, carrying, 0n]) {
    const { ours, sdk, spans, invalid } = bothDecoded(records, resources, offset);
    t.is(spans, RECORDS.length);
    t.is(invalid, 0);
    t.deepEqual(ours, sdk, `offset ${offset}`);
  }
});

test('the decoded request has the values spans.ts means (not only the SDK\'s)', (t) => {
  const { ours } = bothDecoded(
    RECORDS.map(([r]) => r),
    RECORDS.map(([, res]) => res),
    1_700_000_000_000_000_000n,
  );
  const rs = ours['resourceSpans'] as any[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  t.is(rs.length, 2);
  t.deepEqual(rs.map((r) => r.scopeSpans[0].spans.length), [6, 4]);
  t.deepEqual(rs[0].scopeSpans[0].scope, { name: 'ebpf-otel-sidecar', version: '9.9.9', attributes: [], droppedAttributesCount: 0 });
  const [server, client] = rs[0].scopeSpans[0].spans;
  t.is(Buffer.from(server.traceId).toString('hex'), TRACE);
  t.is(server.traceState, 'vendor=x,other=y');
  t.is(server.flags, 0x301);
  t.is(server.kind, 2);
  t.is(server.startTimeUnixNano, String(1_700_000_000_000_000_000n + 123_456_789_012n));
  t.is(server.endTimeUnixNano, String(1_700_000_000_000_000_000n + 123_469_134_690n));
  t.is(client.flags, 0x101);
  t.deepEqual(client.status, { message: 'HTTP 503 — unavailable', code: 2 });
  const limited = rs[1].scopeSpans[0].spans[1];
  t.is(limited.attributes.length, MAX_SPAN_ATTRIBUTES);
  t.is(limited.droppedAttributesCount, 13);
  const unsampled = rs[1].scopeSpans[0].spans[3];
  t.is(unsampled.flags, 0x100);
  t.is(unsampled.endTimeUnixNano, unsampled.startTimeUnixNano);
});

test('a batch over 2 MiB moves its resource length out to four bytes and still decodes', (t) => {
  const records: TraceRecord[] = [];
  for (let i = 0; i < 40; i++) records.push(traceRecord({}, { attributes: { blob: String(i).padEnd(60_000, '.') } }));
  const resources = records.map(() => shop);
  const { ours, sdk, spans } = bothDecoded(records, resources, 1_700_000_000_000_000_000n);
  t.is(spans, 40);
  t.deepEqual(ours, sdk);
});

test('records with malformed ids or times are left out and counted; the rest of the batch goes', (t) => {
  const good = traceRecord({ spanId: 'aaaaaaaaaaaaaaaa' });
  const bad = [
    traceRecord({ traceId: 'xyz' }),
    traceRecord({ traceId: 'g'.repeat(32) }),
    traceRecord({ spanId: '123' }),
    traceRecord({ parentSpanId: 'zzzzzzzzzzzzzzzz' }),
    traceRecord({}, { startNs: 1.5 }),
    traceRecord({}, { startNs: -10 }),
  ];
  const enc = new SpanEncoder(SCOPE, fixedOffsetClock(0n));
  const out = enc.encode([bad[0]!, good, ...bad.slice(1)], Array(7).fill(shop));
  t.is(out.count, 1);
  t.is(out.invalid, 6);
  const spans = (decodeTraceRequest(out.bytes)['resourceSpans'] as any[])[0].scopeSpans[0].spans; // eslint-disable-line @typescript-eslint/no-explicit-any
  t.deepEqual(spans.map((s: { spanId: Uint8Array }) => Buffer.from(s.spanId).toString('hex')), ['aaaaaaaaaaaaaaaa']);
});

test('encoded buffers are lent: reused after release, never while lent', (t) => {
  const enc = new SpanEncoder(SCOPE, fixedOffsetClock(0n));
  const a = enc.encode([traceRecord({ spanId: 'aaaaaaaaaaaaaaaa' })], [shop]);
  const copy = Buffer.from(a.bytes);
  const b = enc.encode([traceRecord({ spanId: 'bbbbbbbbbbbbbbbb' })], [shop]);
  t.deepEqual(a.bytes, copy, 'a second batch does not write over a lent one');
  t.not(a.bytes.buffer, b.bytes.buffer);
  a.release();
  a.release();
  b.release();
  const c = enc.encode([traceRecord({ spanId: 'cccccccccccccccc' })], [shop]);
  t.true(c.bytes.buffer === b.bytes.buffer || c.bytes.buffer === a.bytes.buffer, 'a released buffer is reused');
});

test('ProtoWriter: varints of the int64 range and back-patched lengths of every size', (t) => {
  const w = new ProtoWriter(4);
  for (const [v, hex] of [
    [0, '00'],
    [127, '7f'],
    [128, '8001'],
    [2 ** 32 - 1, 'ffffffff0f'],
    [2 ** 32, '8080808010'],
    [2 ** 53, '8080808080808010'],
    [-1, 'ffffffffffffffffff01'],
    [-(2 ** 63), '80808080808080808001'],
  ] as const) {
    w.reset();
    w.varint64(v);
    t.is(w.buf.subarray(0, w.pos).toString('hex'), hex, String(v));
  }
  for (const len of [0, 127, 128, 16383, 16384, 2_097_152]) {
    for (const reserve of [1, 2, 3]) {
      w.reset();
      w.byte(0xaa);
      const at = w.begin(reserve);
      w.raw(Buffer.alloc(len, 7));
      w.end(at, reserve);
      w.ensure(1);
      w.byte(0xbb);
      const out = w.buf.subarray(0, w.pos);
      const lenBytes = len < 128 ? 1 : len < 16384 ? 2 : len < 2_097_152 ? 3 : 4;
      t.is(out.length, 2 + lenBytes + len, `len ${len} reserve ${reserve}`);
      t.is(out[0], 0xaa);
      t.is(out[out.length - 1], 0xbb);
      t.is(out[1 + lenBytes], len > 0 ? 7 : 0xbb);
    }
  }
});

test('partial success is read from the response; empty or malformed responses mean none', (t) => {
  t.deepEqual(decodePartialSuccess(traceResponse({ rejectedSpans: 3, errorMessage: 'too old' })), { rejected: 3, errorMessage: 'too old' });
  t.deepEqual(decodePartialSuccess(traceResponse({ rejectedSpans: 0, errorMessage: 'slow down' })), { rejected: 0, errorMessage: 'slow down' });
  t.is(decodePartialSuccess(traceResponse()), undefined);
  t.is(decodePartialSuccess(traceResponse({ rejectedSpans: 0, errorMessage: '' })), undefined);
  t.is(decodePartialSuccess(Buffer.from([0x0a, 0x05, 0x08])), undefined, 'truncated');
});
