import test from 'ava';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import type { TraceRecord } from '../../src/correlate/trace-record';
import { EncodedItems } from '../../src/otel/encoded-items';
import { SpanEncoder } from '../../src/otel/otlp-encode';
import { fixedOffsetClock, recordToSpan } from '../../src/otel/spans';
import { decodeTraceRequest } from '../helpers/otlp-receiver';
import { hexId, traceRecord } from './fixtures';

const SCOPE = { name: 'ebpf-otel-sidecar', version: '1.2.3' };
const clock = fixedOffsetClock(1_700_000_000_000_000_000n);

const shop = resourceFromAttributes({ 'service.name': 'shop', 'process.pid': 1 });
const billing = resourceFromAttributes({ 'service.name': 'billing', 'process.pid': 2 });
const mail = resourceFromAttributes({ 'service.name': 'mail', 'process.pid': 3, 'k8s.pod.name': 'mail-0' });

/** What the SDK serializer makes of these records, decoded with the official schema. */
function sdkDecoded(items: readonly [TraceRecord, Resource][]) {
  const spans = items.map(([tr, res]) => recordToSpan(tr, res, { toHrTime: clock.toHrTime, scope: SCOPE }));
  return decodeTraceRequest(ProtobufTraceSerializer.serializeRequest(spans)!);
}

test('requests taken from the byte queue hold exactly the items queued, each under its own resource, across ring growth and compaction', (t) => {
  const enc = new SpanEncoder(SCOPE, clock);
  const queue = new EncodedItems();
  const pending: [TraceRecord, Resource][] = [];
  const resources = [shop, billing, mail];
  let n = 0;
  const append = (count: number) => {
    for (let i = 0; i < count; i++, n++) {
      // Runs of one resource and single items of others; now and then an item of 20 KiB.
      const res = n % 7 < 4 ? shop : resources[n % 3]!;
      const attributes: Record<string, string | number> = { 'http.request.method': 'GET', 'seq': n, 'who': (res.attributes['service.name'] as string) + n };
      if (n % 50 === 0) attributes['big'] = 'x'.repeat(20_000);
      const tr = traceRecord({ spanId: hexId(8, n + 1) }, { name: `op ${n}`, attributes });
      t.true(enc.append(queue, tr, res));
      pending.push([tr, res]);
    }
  };
  const take = (count: number) => {
    const batch = enc.request(queue, count);
    t.is(batch.count, count);
    t.deepEqual(decodeTraceRequest(batch.bytes), sdkDecoded(pending.splice(0, count)));
    batch.release();
    t.is(queue.count, pending.length);
  };
  append(300); // past the ring's first size
  take(1);
  take(123);
  append(500);
  take(400); // the head passes half the buffer: the next append moves the rest to the front
  append(3);
  take(pending.length - 5);
  append(1);
  take(pending.length);
  t.is(queue.count, 0);
  // The queue works on after emptying.
  append(2);
  take(2);
});

test('an item that cannot be encoded leaves nothing in the queue', (t) => {
  const enc = new SpanEncoder(SCOPE, clock);
  const queue = new EncodedItems();
  const good = traceRecord({ spanId: 'aaaaaaaaaaaaaaaa' });
  t.true(enc.append(queue, good, shop));
  const bytes = queue.w.pos;
  t.false(enc.append(queue, traceRecord({ parentSpanId: 'not hex at all!!' }), billing));
  t.false(enc.append(queue, traceRecord({}, { startNs: -1 }), billing));
  t.is(queue.count, 1);
  t.is(queue.w.pos, bytes, 'no bytes of the refused items remain');
  const batch = enc.request(queue, 1);
  t.deepEqual(decodeTraceRequest(batch.bytes), sdkDecoded([[good, shop]]));
});

test('a burst does not pin its memory: an emptied queue gives a large buffer back', (t) => {
  const enc = new SpanEncoder(SCOPE, clock);
  const queue = new EncodedItems();
  for (let i = 0; i < 100; i++) enc.append(queue, traceRecord({}, { attributes: { blob: 'y'.repeat(60_000) } }), shop);
  t.true(queue.w.buf.length > 4 * 1024 * 1024);
  enc.request(queue, 60).release();
  t.true(queue.w.buf.length > 4 * 1024 * 1024, 'kept while items are queued');
  queue.clear();
  t.is(queue.count, 0);
  t.true(queue.w.buf.length <= 64 * 1024);
});
