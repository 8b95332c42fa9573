import test from 'ava';
import { WallClock } from '../../src/capture/clock';
import { decodeBatch, newDecodeStats } from '../../src/capture/decode';
import type { CaptureEvent } from '../../src/capture/events';
import { toCaptureJson, toCaptureText } from '../../src/cli/capture-format';
import { batch, connRecord, dataRecord } from '../helpers/records';

const clock = new WallClock({ monotonicNs: () => 0n, wallNs: () => 1_700_000_000_000_000_000n, monotonicMs: () => 0 });

function one(record: Buffer): CaptureEvent {
  let e: CaptureEvent | undefined;
  decodeBatch(batch([record]), (x) => (e = x), newDecodeStats());
  return e!;
}

test('capture --json: exactly the documented fields', (t) => {
  const v6 = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
  const e = one(
    dataRecord({
      tgid: 10, tid: 11, fd: 4, connId: 7, tsExit: 2_500, dir: 1, role: 1, comm: 'curl', payload: Buffer.from('hi'),
      size: 9, flags: 1, tuple: { family: 10, local: v6, remote: v6, localPort: 5000, remotePort: 80 },
    }),
  );
  if (e.type !== 'data') return t.fail();
  t.deepEqual(toCaptureJson(e, clock), {
    type: 'data', ts: '1700000000000002500', pid: 10, tid: 11, comm: 'curl', fd: 4, conn: '7', role: 'client',
    dir: 'egress', local: '[::1]:5000', remote: '[::1]:80', size: 9, data: Buffer.from('hi').toString('base64'), truncated: true,
  });
  const open = one(connRecord({ type: 'open', connId: 7, role: 2, reason: 2, ts: 100 }));
  if (open.type !== 'open') return t.fail();
  t.deepEqual(Object.keys(toCaptureJson(open, clock)), [
    'type', 'ts', 'pid', 'tid', 'comm', 'fd', 'conn', 'role', 'reason', 'local', 'remote', 'size', 'data', 'truncated',
  ]);
  t.is(toCaptureJson(open, clock).reason, 'accept');
});

test('capture text line is readable and escapes binary', (t) => {
  const e = one(dataRecord({ connId: 3, dir: 2, role: 2, payload: Buffer.from('GET /\r\n\x00'), comm: 'python3', tgid: 5 }));
  const line = toCaptureText(e, clock);
  t.regex(line, /^\d\d:\d\d:\d\d\.\d{6} 5\/python3 conn=3 server ingress 127\.0\.0\.1:8080 <- 127\.0\.0\.1:40000 8B "GET \/\.\.\."$/);
});
