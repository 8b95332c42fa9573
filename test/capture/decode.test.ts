import test from 'ava';
import fc from 'fast-check';
import { decodeBatch, newDecodeStats } from '../../src/capture/decode';
import type { CaptureEvent } from '../../src/capture/events';
import { DATA_F_TLS, DATA_F_TRUNCATED, DataSource } from '../../src/capture/layout';
import { batch, connRecord, dataRecord, procRecord } from '../helpers/records';
import { ConnectionTable } from '../../src/correlate/connection-table';
import { silentLogger } from '../../src/util/log';

function decodeAll(buf: Buffer) {
  const events: CaptureEvent[] = [];
  const stats = newDecodeStats();
  decodeBatch(buf, (e) => events.push(e), stats);
  return { events, stats };
}

test('data event: every field, payload as a view without copy', (t) => {
  const payload = Buffer.from('GET / HTTP/1.1\r\n\r\n');
  const b = batch([
    dataRecord({
      tgid: 4242, tid: 4243, fd: 7, connId: 99, tsEnter: 123_456_789, tsExit: 123_456_999, pos: 2 ** 40,
      cgroupId: 0xfeedn, netns: 4026532000, dir: 2, role: 1, source: 7, payload,
      tuple: { local: [10, 0, 0, 1], remote: [10, 0, 0, 2], localPort: 51000, remotePort: 80 }, comm: 'curl',
    }),
  ]);
  const { events, stats } = decodeAll(b);
  t.deepEqual(stats, { records: 1, malformed: 0, badFraming: 0 });
  const e = events[0]!;
  if (e.type !== 'data') return t.fail();
  t.like(e, {
    tgid: 4242, tid: 4243, fd: 7, connId: 99, tsEnterNs: 123_456_789, tsExitNs: 123_456_999, pos: 2 ** 40,
    cgroupId: 0xfeedn, netns: 4026532000, size: payload.length, dir: 'ingress', role: 'client', source: 'recvmsg',
    truncated: false, comm: 'curl',
    tuple: { family: 'inet', transport: 'tcp', localAddr: '10.0.0.1', localPort: 51000, remoteAddr: '10.0.0.2', remotePort: 80 },
  });
  t.is(e.data.toString(), payload.toString());
  t.is(e.data.buffer, b.buffer, 'payload is a view into the batch');
});

test('truncated data keeps the true size', (t) => {
  const { events } = decodeAll(batch([dataRecord({ size: 1_048_576, payload: Buffer.alloc(16384, 0x61), flags: 1 })]));
  const e = events[0]!;
  if (e.type !== 'data') return t.fail();
  t.is(e.size, 1_048_576);
  t.is(e.data.length, 16384);
  t.true(e.truncated);
});

test('TLS plaintext: source tls with DATA_F_TLS (truncation still decoded); the flag without the source or the source without the flag is malformed', (t) => {
  const payload = Buffer.from('GET / HTTP/1.1\r\n');
  const { events, stats } = decodeAll(
    batch([
      dataRecord({ source: DataSource.Tls, flags: DATA_F_TLS, pos: 0, payload }),
      dataRecord({ source: DataSource.Tls, flags: DATA_F_TLS | DATA_F_TRUNCATED, size: 100_000, payload }),
      dataRecord({ source: DataSource.Tls, flags: 0, payload }),
      dataRecord({ source: DataSource.Write, flags: DATA_F_TLS, payload }),
    ]),
  );
  t.deepEqual(stats, { records: 4, malformed: 2, badFraming: 0 });
  t.deepEqual(
    events.map((e) => (e.type === 'data' ? [e.source, e.truncated, e.size] : e.type)),
    [
      ['tls', false, payload.length],
      ['tls', true, 100_000],
    ],
  );
});

test('IPv6 and IPv4-mapped addresses', (t) => {
  const v6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
  const loop6 = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
  const mapped = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1];
  const { events } = decodeAll(
    batch([
      dataRecord({ payload: Buffer.from('x'), tuple: { family: 10, local: v6, remote: loop6 } }),
      dataRecord({ payload: Buffer.from('x'), tuple: { family: 10, local: mapped, remote: mapped } }),
    ]),
  );
  const [a, b] = events as [CaptureEvent & { type: 'data' }, CaptureEvent & { type: 'data' }];
  t.is(a.tuple.localAddr, '2001:db8::1');
  t.is(a.tuple.remoteAddr, '::1');
  t.is(a.tuple.family, 'inet6');
  t.is(b.tuple.localAddr, '127.0.0.1');
  t.is(b.tuple.family, 'inet6');
});

test('open, close, exec, fork, exit events', (t) => {
  const { events } = decodeAll(
    batch([
      connRecord({ type: 'open', connId: 3, role: 2, reason: 2 }),
      connRecord({ type: 'close', connId: 3, role: 2, reason: 16, bytesSent: 10, bytesRecv: 20 }),
      procRecord({ type: 'exec', tgid: 300, ppid: 1, flags: 1, comm: 'python3', filename: '/usr/bin/python3' }),
      procRecord({ type: 'fork', tgid: 301, ppid: 300, flags: 1 }),
      procRecord({ type: 'exit', tgid: 300, exitCode: 3 << 8 }),
      procRecord({ type: 'exit', tgid: 301, exitCode: 9 }),
    ]),
  );
  t.deepEqual(
    events.map((e) => e.type),
    ['open', 'close', 'exec', 'fork', 'exit', 'exit'],
  );
  t.like(events[0], { type: 'open', connId: 3, role: 'server', reason: 'accept' });
  t.like(events[1], { type: 'close', reason: 'close', bytesSent: 10, bytesRecv: 20 });
  t.like(events[2], { type: 'exec', tgid: 300, selectedByKernel: true, filename: '/usr/bin/python3', comm: 'python3' });
  t.like(events[3], { type: 'fork', tgid: 301, ppid: 300, selectedByKernel: true });
  t.like(events[4], { type: 'exit', tgid: 300, exitCode: 3, signal: undefined });
  t.like(events[5], { type: 'exit', tgid: 301, exitCode: undefined, signal: 9 });
});

test('malformed records are counted and skipped, the rest decodes', (t) => {
  const unknownType = dataRecord({ payload: Buffer.from('a') });
  unknownType.writeUInt32LE(77, 0);
  const short = dataRecord({ payload: Buffer.from('b') }).subarray(0, 60);
  const capturedTooBig = dataRecord({ payload: Buffer.from('c'), captured: 5000 });
  const capturedOverSize = dataRecord({ payload: Buffer.from('abc'), size: 2 });
  const badFamily = dataRecord({ payload: Buffer.from('d'), tuple: { family: 1 as 2 } });
  const badDir = dataRecord({ payload: Buffer.from('e'), dir: 9 });
  const good = dataRecord({ payload: Buffer.from('ok') });
  const { events, stats } = decodeAll(batch([unknownType, short, capturedTooBig, capturedOverSize, badFamily, badDir, good]));
  t.is(events.length, 1);
  t.deepEqual(stats, { records: 7, malformed: 6, badFraming: 0 });
});

test('broken framing stops the batch without throwing', (t) => {
  const b = batch([dataRecord({ payload: Buffer.from('one') }), dataRecord({ payload: Buffer.from('two') })]);
  b.writeUInt32LE(1 << 30, 0); // first length runs past the end
  const r1 = decodeAll(b);
  t.is(r1.events.length, 0);
  t.is(r1.stats.badFraming, 1);
  const r2 = decodeAll(b.subarray(0, b.length - 3)); // truncated batch
  t.is(r2.stats.badFraming, 1);
});

test('arbitrary bytes never throw', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 700 }), fc.nat(), fc.integer({ min: 0, max: 8 }), (bytes, len, type) => {
      const buf = Buffer.from(bytes);
      // Half the time, make the framing plausible so record decoding is reached.
      if (buf.length >= 12 && len % 2 === 0) {
        buf.writeUInt32LE(len % buf.length, 0);
        buf.writeUInt32LE(type, 8);
      }
      decodeAll(buf);
    }),
    { numRuns: 3000 },
  );
  t.pass();
});

test('a data event reads tuple, comm and cgroupId from its batch; what the connection table took stays when the batch is reused', (t) => {
  const record = (comm: string, cgroupId: bigint, last: number) =>
    dataRecord({ connId: 5, payload: Buffer.from('x'), comm, cgroupId, tuple: { local: [10, 0, 0, 1], remote: [10, 0, 0, last], localPort: 1, remotePort: 2 } });
  const b = batch([record('first', 7n, 2)]);
  const table = new ConnectionTable(silentLogger);
  const { events } = decodeAll(b);
  const e = events[0]!;
  if (e.type !== 'data') return t.fail();
  table.apply(e);
  // The native reader reuses batch memory: overwrite it with another record of the same size.
  batch([record('other', 9n, 3)]).copy(b);
  const c = table.get(5)!;
  t.is(c.comm, 'first');
  t.is(c.cgroupId, 7n);
  t.is(c.tuple.remoteAddr, '10.0.0.2');
});
