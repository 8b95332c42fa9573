import test from 'ava';
import { ProtobufLogsSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import { LogEncoder } from '../../src/otel/log-encode';
import { MAX_LOG_ATTRIBUTES, SEVERITY_NUMBER, type LogRecord, type LogValue, type ObservedLogRecord } from '../../src/otel/log-record';
import { decodePartialSuccess } from '../../src/otel/otlp-common';
import { fixedOffsetClock } from '../../src/otel/spans';
import { decodeLogsRequest, logsResponse } from '../helpers/otlp-receiver';

type SdkLogRecord = Parameters<typeof ProtobufLogsSerializer.serializeRequest>[0][number];

const SCOPE = { name: 'ebpf-otel-sidecar', version: '9.9.9' };
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';

const shop = resourceFromAttributes({ 'service.name': 'shop', 'process.pid': 4242, 'process.command_args': ['python3', 'shop.py'] });
const billing = resourceFromAttributes({ 'service.name': 'billing', 'process.pid': 4343 });

function many(n: number): Record<string, LogValue> {
  const out: Record<string, LogValue> = {};
  for (let i = 0; i < n; i++) out[`a.${i}`] = i % 2 === 0 ? `v${i}` : i;
  return out;
}

const log = (overrides: Partial<LogRecord> = {}): LogRecord => ({ tgid: 4242, timeNs: 123_456_789_012, severity: 'WARN', ...overrides });

const LOGS: [ObservedLogRecord, Resource][] = [
  // An event with every field, a structured body and trace context, sampled.
  [
    {
      record: log({
        eventName: 'ebpf_otel.syscall.slow',
        body: { syscall: 'read', 'duration.ns': 1_203_000_000, fd: { kind: 'file', path: '/var/lib/ünïcödé' } },
        attributes: { 'syscall.name': 'read', 'thread.id': 4250, 'error.type': 'EAGAIN', ratio: 0.5, ok: false, raw: new Uint8Array([1, 2, 255]), list: ['a', 1, true] },
        traceId: TRACE,
        spanId: '00f067aa0ba902b7',
        sampled: true,
      }),
      observedNs: 123_999_000_000,
    },
    shop,
  ],
  // Another resource in between: grouped by resource in order of first appearance.
  [{ record: log({ tgid: 4343, severity: 'ERROR', body: 'connect refused', traceId: TRACE }), observedNs: 124_000_000_000 }, billing],
  // Minimal: no body, no attributes, no event name; trace context unsampled.
  [{ record: log({ severity: 'INFO', traceId: TRACE, spanId: '1111111111111111', sampled: false }), observedNs: 124_000_000_001 }, shop],
  // Every severity's number and text; a number and an array as bodies.
  ...(['TRACE', 'DEBUG', 'FATAL'] as const).map((severity, i): [ObservedLogRecord, Resource] => [
    { record: log({ severity, body: i === 0 ? 42 : i === 1 ? [1.5, 'x'] : 'é'.repeat(9000), timeNs: 10_000_000_000 + i }), observedNs: 20_000_000_000 },
    billing,
  ]),
];

/** The SDK's ReadableLogRecord for one of ours: what a LogRecord with the same fields would be. */
function sdkRecord(o: ObservedLogRecord, resource: Resource, offsetNs: bigint): SdkLogRecord {
  const clock = fixedOffsetClock(offsetNs);
  const r = o.record;
  const all = Object.entries(r.attributes ?? {});
  const kept = Object.fromEntries(all.slice(0, MAX_LOG_ATTRIBUTES));
  return {
    hrTime: clock.toHrTime(r.timeNs),
    hrTimeObserved: clock.toHrTime(o.observedNs),
    severityNumber: SEVERITY_NUMBER[r.severity],
    severityText: r.severity,
    ...(r.body !== undefined ? { body: r.body } : {}),
    ...(r.eventName !== undefined ? { eventName: r.eventName } : {}),
    ...(r.traceId !== undefined ? { spanContext: { traceId: r.traceId, spanId: r.spanId ?? '', traceFlags: r.sampled ? 1 : 0 } } : {}),
    resource,
    instrumentationScope: SCOPE,
    attributes: kept,
    droppedAttributesCount: all.length - Object.keys(kept).length,
  } as SdkLogRecord;
}

function bothDecoded(logs: [ObservedLogRecord, Resource][], offsetNs: bigint) {
  const encoded = new LogEncoder(SCOPE, fixedOffsetClock(offsetNs)).encode(
    logs.map(([o]) => o),
    logs.map(([, r]) => r),
  );
  const ours = decodeLogsRequest(encoded.bytes);
  encoded.release();
  const sdk = decodeLogsRequest(ProtobufLogsSerializer.serializeRequest(logs.map(([o, r]) => sdkRecord(o, r, offsetNs)))!);
  return { ours, sdk, count: encoded.count, invalid: encoded.invalid };
}

test('encodes what the SDK serializer makes of the same log records, decoded with the official schema', (t) => {
  // A span-less record has no span id: the SDK writes an empty one, which decodes as absent, like ours.
  for (const offset of [1_700_000_000_000_000_000n, 1_764_000_004_294_967_295n, 0n]) {
    const { ours, sdk, count, invalid } = bothDecoded(LOGS, offset);
    t.is(count, LOGS.length);
    t.is(invalid, 0);
    t.deepEqual(ours, sdk, `offset ${offset}`);
  }
});

test('attributes beyond the limit are dropped and counted, as the SDK LogRecord limits them', (t) => {
  const { ours, sdk } = bothDecoded([[{ record: log({ attributes: many(140) }), observedNs: 1 }, shop]], 1_700_000_000_000_000_000n);
  t.deepEqual(ours, sdk);
  const record = (ours['resourceLogs'] as any[])[0].scopeLogs[0].logRecords[0]; // eslint-disable-line @typescript-eslint/no-explicit-any
  t.is(record.attributes.length, MAX_LOG_ATTRIBUTES);
  t.is(record.droppedAttributesCount, 12);
});

test('the decoded request has the values the log record means (field numbers checked against the schema, not only the SDK)', (t) => {
  const { ours } = bothDecoded(LOGS, 1_700_000_000_000_000_000n);
  const rl = ours['resourceLogs'] as any[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  t.is(rl.length, 2);
  t.deepEqual(rl.map((r) => r.scopeLogs[0].logRecords.length), [2, 4]);
  t.deepEqual(rl[0].scopeLogs[0].scope, { name: 'ebpf-otel-sidecar', version: '9.9.9', attributes: [], droppedAttributesCount: 0 });
  t.is(rl[0].resource.attributes.find((a: { key: string }) => a.key === 'service.name').value.stringValue, 'shop');
  const [slow, minimal] = rl[0].scopeLogs[0].logRecords;
  t.is(slow.timeUnixNano, String(1_700_000_000_000_000_000n + 123_456_789_012n));
  t.is(slow.observedTimeUnixNano, String(1_700_000_000_000_000_000n + 123_999_000_000n));
  t.is(slow.severityNumber, 13);
  t.is(slow.severityText, 'WARN');
  t.is(slow.eventName, 'ebpf_otel.syscall.slow');
  t.is(Buffer.from(slow.traceId).toString('hex'), TRACE);
  t.is(Buffer.from(slow.spanId).toString('hex'), '00f067aa0ba902b7');
  t.is(slow.flags, 1, 'sampled');
  const body = slow.body.kvlistValue.values;
  t.deepEqual(
    body.map((kv: any) => [kv.key, kv.value.value]), // eslint-disable-line @typescript-eslint/no-explicit-any
    [
      ['syscall', 'stringValue'],
      ['duration.ns', 'intValue'],
      ['fd', 'kvlistValue'],
    ],
  );
  t.is(body[1].value.intValue, '1203000000');
  t.is(body[2].value.kvlistValue.values[1].value.stringValue, '/var/lib/ünïcödé');
  const attr = (name: string) => slow.attributes.find((a: { key: string }) => a.key === name).value;
  t.is(attr('thread.id').intValue, '4250');
  t.is(attr('ratio').doubleValue, 0.5);
  t.is(attr('ok').boolValue, false);
  t.deepEqual(Buffer.from(attr('raw').bytesValue), Buffer.from([1, 2, 255]));
  t.is(attr('list').arrayValue.values.length, 3);
  t.is(minimal.severityNumber, 9);
  t.is(minimal.flags, 0, 'unsampled: no flags');
  t.is(minimal.eventName, '');
  t.is(minimal.body, null);
  t.deepEqual(minimal.attributes, []);
  const [error] = rl[1].scopeLogs[0].logRecords;
  t.is(error.severityNumber, 17);
  t.is(error.body.stringValue, 'connect refused');
  t.is(Buffer.from(error.traceId).toString('hex'), TRACE);
  t.is(error.spanId.length, 0, 'a trace without a span');
  t.deepEqual(
    rl[1].scopeLogs[0].logRecords.slice(1).map((r: { severityNumber: number; severityText: string }) => [r.severityNumber, r.severityText]),
    [
      [1, 'TRACE'],
      [5, 'DEBUG'],
      [21, 'FATAL'],
    ],
  );
});

test('records with malformed ids, times or severities are left out and counted; the rest of the batch goes', (t) => {
  const good: ObservedLogRecord = { record: log({ eventName: 'good' }), observedNs: 5 };
  const bad: ObservedLogRecord[] = [
    { record: log({ traceId: 'xyz' }), observedNs: 5 },
    { record: log({ traceId: 'g'.repeat(32) }), observedNs: 5 },
    { record: log({ traceId: TRACE, spanId: '123' }), observedNs: 5 },
    { record: log({ spanId: '00f067aa0ba902b7' }), observedNs: 5 },
    { record: log({ timeNs: 1.5 }), observedNs: 5 },
    { record: log({ timeNs: -10 }), observedNs: 5 },
    { record: log(), observedNs: Number.NaN },
    { record: log({ severity: 'NOTICE' as never }), observedNs: 5 },
  ];
  const enc = new LogEncoder(SCOPE, fixedOffsetClock(0n));
  const out = enc.encode([bad[0]!, good, ...bad.slice(1)], Array(bad.length + 1).fill(shop));
  t.is(out.count, 1);
  t.is(out.invalid, bad.length);
  const records = (decodeLogsRequest(out.bytes)['resourceLogs'] as any[])[0].scopeLogs[0].logRecords; // eslint-disable-line @typescript-eslint/no-explicit-any
  t.deepEqual(records.map((r: { eventName: string }) => r.eventName), ['good']);
});

test('a log record over 16 KiB moves its length out to three bytes and still decodes', (t) => {
  const big: ObservedLogRecord = { record: log({ body: 'x'.repeat(70_000), attributes: { path: '/a'.repeat(10_000) } }), observedNs: 9 };
  const { ours, sdk, count } = bothDecoded([[big, shop]], 1_700_000_000_000_000_000n);
  t.is(count, 1);
  t.deepEqual(ours, sdk);
});

test('partial success of a logs response: rejected_log_records and the message', (t) => {
  t.deepEqual(decodePartialSuccess(logsResponse({ rejectedLogRecords: 4, errorMessage: 'too old' })), { rejected: 4, errorMessage: 'too old' });
  t.is(decodePartialSuccess(logsResponse()), undefined);
  t.is(decodePartialSuccess(logsResponse({ rejectedLogRecords: 0, errorMessage: '' })), undefined);
});
