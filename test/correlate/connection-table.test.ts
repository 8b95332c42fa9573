import test from 'ava';
import { decodeBatch, newDecodeStats } from '../../src/capture/decode';
import type { CaptureEvent } from '../../src/capture/events';
import { ConnectionTable } from '../../src/correlate/connection-table';
import { createLogger } from '../../src/util/log';
import { batch, connRecord, dataRecord, procRecord } from '../helpers/records';

function events(records: Buffer[]): CaptureEvent[] {
  const out: CaptureEvent[] = [];
  decodeBatch(batch(records), (e) => out.push(e), newDecodeStats());
  return out;
}

test('byte totals, close, and closes implied by process exit', (t) => {
  const table = new ConnectionTable(createLogger('error', () => {}));
  const evs = events([
    connRecord({ type: 'open', tgid: 10, connId: 1, fd: 3 }),
    connRecord({ type: 'open', tgid: 10, connId: 2, fd: 4 }),
    connRecord({ type: 'open', tgid: 11, connId: 3, fd: 3 }),
    dataRecord({ tgid: 10, connId: 1, dir: 1, payload: Buffer.from('hello') }),
    dataRecord({ tgid: 10, connId: 1, dir: 2, size: 100, payload: Buffer.from('x') }),
    connRecord({ type: 'close', tgid: 10, connId: 2, fd: 4 }),
    procRecord({ type: 'exit', tgid: 10 }),
  ]);
  const implied = evs.flatMap((e) => table.apply(e) ?? []);
  t.is(implied.length, 1);
  t.like(implied[0], { type: 'close', connId: 1, reason: 'exit', bytesSent: 5, bytesRecv: 100, fd: 3 });
  t.like(table.stats(), { open: 1, closedByExit: 1, evicted: 0 });
});

test('bounded: the oldest connection is evicted, counted and logged once', (t) => {
  const lines: string[] = [];
  const table = new ConnectionTable(createLogger('warn', (l) => lines.push(l)), 2);
  for (const e of events([1, 2, 3, 4].map((id) => connRecord({ type: 'open', connId: id })))) table.apply(e);
  t.like(table.stats(), { open: 2, evicted: 2 });
  t.is(table.get(1), undefined);
  t.truthy(table.get(4));
  t.is(lines.length, 1);
  t.regex(lines[0]!, /connection table full/);
});

test('data without a seen open creates the connection (selected mid-connection)', (t) => {
  const table = new ConnectionTable(createLogger('error', () => {}));
  for (const e of events([dataRecord({ connId: 9, role: 0, payload: Buffer.from('abc') })])) table.apply(e);
  t.like(table.get(9), { role: 'unknown', bytesSent: 3 });
  t.is(table.stats().implicitOpens, 1);
});
