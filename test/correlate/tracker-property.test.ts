// The whole connection tracker under arbitrary traffic: interleavings of
// arbitrary bytes (HTTP/1 pieces, line-protocol pieces, noise) in both
// directions of several connections, lost and truncated events, reordering,
// closes, ticks and process exits. It never throws, never hangs, forgets
// every connection it is told is gone, and every request it started ends in
// exactly one record or one abandon: nothing is lost without a count.

import test from 'ava';
import * as fc from 'fast-check';
import { decodeBatch, newDecodeStats } from '../../src/capture/decode';
import type { CaptureEvent } from '../../src/capture/events';
import { ConnectionTracker } from '../../src/correlate/connection-tracker';
import { http1Protocol } from '../../src/protocols/http1';
import { silentLogger } from '../../src/util/log';
import { lineProtocol } from '../helpers/line-protocol';
import { batch, connRecord, dataRecord, procRecord } from '../helpers/records';

const PIECES = [
  'GET / HTTP/1.1\r\nHost: a\r\n\r\n',
  'POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello',
  'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
  'HTTP/1.1 204 No Content\r\n\r\n',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
  'HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n',
  'GET /u HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
  'CONNECT h:1 HTTP/1.1\r\n\r\n',
  'HTTP/1.1 200 Connection Established\r\n\r\n',
  'HEAD / HTTP/1.0\r\n\r\n',
  'REQ a\n',
  'RES ok\n',
  '\r\n',
  'HTTP/1.1 ',
  'Content-Length: 99999999999\r\n',
];

type Op =
  | { readonly op: 'open'; readonly conn: number; readonly role: 1 | 2 }
  | { readonly op: 'data'; readonly conn: number; readonly dir: 1 | 2; readonly bytes: Buffer; readonly lost: number; readonly truncate: number }
  | { readonly op: 'close'; readonly conn: number }
  | { readonly op: 'tick'; readonly advanceMs: number }
  | { readonly op: 'exit' }
  | { readonly op: 'swap' };

const bytes = fc.oneof(
  fc.constantFrom(...PIECES).map((s) => Buffer.from(s, 'latin1')),
  fc.array(fc.constantFrom(...PIECES), { minLength: 1, maxLength: 4 }).map((a) => Buffer.from(a.join(''), 'latin1')),
  fc.uint8Array({ minLength: 1, maxLength: 64 }).map((u) => Buffer.from(u)),
  fc.tuple(fc.constantFrom(...PIECES), fc.nat(40)).map(([s, n]) => Buffer.from(s.slice(0, Math.max(1, n)), 'latin1')),
);

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ op: fc.constant('open' as const), conn: fc.integer({ min: 1, max: 3 }), role: fc.constantFrom(1 as const, 2 as const) }) },
  {
    weight: 10,
    arbitrary: fc.record({
      op: fc.constant('data' as const),
      conn: fc.integer({ min: 1, max: 3 }),
      dir: fc.constantFrom(1 as const, 2 as const),
      bytes,
      // Bytes moved before this event that never arrived (a lost event), and bytes of it not captured.
      lost: fc.oneof({ weight: 5, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 100 }) }),
      truncate: fc.oneof({ weight: 5, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 100 }) }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('close' as const), conn: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('tick' as const), advanceMs: fc.integer({ min: 0, max: 3000 }) }) },
  { weight: 1, arbitrary: fc.constant({ op: 'exit' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'swap' as const }) },
);

/** Plays `ops` through a tracker; returns the tracker and what it emitted. */
function play(ops: readonly Op[], maxConnections = 8) {
  const tracker = new ConnectionTracker({ protocols: [http1Protocol, lineProtocol], requestTimeoutNs: 1e9, maxConnections }, silentLogger);
  let peak = 0;
  const records = new Map<string, number>();
  const starts = new Set<string>();
  const abandons = new Map<string, number>();
  let problems: string[] = [];
  const collect = () => {
    for (const r of tracker.take()) {
      const k = `${r.connId}/${r.sequence}`;
      records.set(k, (records.get(k) ?? 0) + 1);
    }
    const s = tracker.takeSignals();
    for (const x of s.starts) {
      const k = `${x.connId}/${x.sequence}`;
      if (starts.has(k)) problems.push(`started twice: ${k}`);
      starts.add(k);
    }
    for (const a of s.abandons) {
      const k = `${a.connId}/${a.sequence}`;
      abandons.set(k, (abandons.get(k) ?? 0) + 1);
    }
  };
  // Connection ids are never reused: a reopen is a new connection.
  let nextId = 1;
  const live = new Map<number, { id: number; pos: number[] }>();
  let t = 1_000_000;
  let pending: Buffer[] = [];
  const flush = () => {
    const events: CaptureEvent[] = [];
    decodeBatch(batch(pending), (e) => events.push(e), newDecodeStats());
    pending = [];
    for (const e of events) {
      tracker.onEvent(e);
      peak = Math.max(peak, tracker.stats().connections);
    }
    collect();
  };
  for (const o of ops) {
    t += 1000;
    switch (o.op) {
      case 'open': {
        const id = nextId++;
        if (live.has(o.conn)) pending.push(connRecord({ type: 'close', connId: live.get(o.conn)!.id, ts: t }));
        live.set(o.conn, { id, pos: [0, 0] });
        pending.push(connRecord({ type: 'open', connId: id, role: o.role, reason: o.role === 1 ? 1 : 2, ts: t }));
        break;
      }
      case 'data': {
        let c = live.get(o.conn);
        if (c === undefined) {
          // Data on a connection the agent never saw open: joined mid-stream.
          c = { id: nextId++, pos: [7, 7] };
          live.set(o.conn, c);
        }
        const i = o.dir - 1;
        c.pos[i] = c.pos[i]! + o.lost;
        const captured = o.bytes.subarray(0, Math.max(0, o.bytes.length - o.truncate));
        pending.push(dataRecord({ connId: c.id, dir: o.dir, pos: c.pos[i]!, payload: captured, size: o.bytes.length, tsEnter: t, tsExit: t + 10, tid: 100 + o.conn }));
        c.pos[i] = c.pos[i]! + o.bytes.length;
        break;
      }
      case 'close': {
        const c = live.get(o.conn);
        if (c !== undefined) pending.push(connRecord({ type: 'close', connId: c.id, ts: t }));
        live.delete(o.conn);
        break;
      }
      case 'swap':
        if (pending.length >= 2) [pending[pending.length - 1], pending[pending.length - 2]] = [pending[pending.length - 2]!, pending[pending.length - 1]!];
        break;
      case 'exit':
        pending.push(procRecord({ type: 'exit', tgid: 100, tsNs: t }));
        live.clear();
        break;
      case 'tick':
        flush();
        t += o.advanceMs * 1e6;
        tracker.tick(t);
        collect();
        break;
    }
  }
  flush();
  tracker.closeAll(t + 1);
  collect();
  problems = [
    ...problems,
    ...[...starts].filter((k) => (records.get(k) ?? 0) + (abandons.get(k) ?? 0) !== 1).map((k) => `start ${k}: ${records.get(k) ?? 0} records, ${abandons.get(k) ?? 0} abandons`),
    ...[...records.keys()].filter((k) => !starts.has(k)).map((k) => `record ${k} never started`),
  ];
  return { tracker, problems, peak, counts: { records: [...records.values()].reduce((a, n) => a + n, 0), abandons: [...abandons.values()].reduce((a, n) => a + n, 0) } };
}

test('arbitrary traffic: never throws or hangs, forgets every connection, every started request ends exactly once', (t) => {
  // What the runs reached, so the property is not vacuous: records, abandons, timeouts, switches and ignored connections all happen.
  const reached = { records: 0, abandons: 0, ignored: 0, expired: 0, switched: 0 };
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      const t0 = Date.now();
      const { tracker, problems, counts } = play(ops);
      reached.records += counts.records;
      reached.abandons += counts.abandons;
      const s = tracker.stats();
      reached.ignored += s.undetected;
      reached.switched += Object.values(s.switched).reduce((a, n) => a + n, 0);
      reached.expired += Object.values(s.protocol).reduce((a, p) => a + p.requestsWithoutResponse, 0);
      if (problems.length > 0) throw new Error(problems.join('; '));
      return s.connections === 0 && tracker.take().length === 0 && Date.now() - t0 < 2000;
    }),
    { numRuns: 400, seed: 20261206 },
  );
  for (const [k, v] of Object.entries(reached)) t.true(v > 0, `${k}: ${v}`);
});

test('more connections than the table holds: evictions are counted and the table never passes its bound', (t) => {
  let evicted = 0;
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      // An evicted connection's requests end in neither (the trace graph ages them out): only the bound is checked here.
      const { tracker, peak } = play(ops, 2);
      evicted += tracker.stats().evicted;
      return peak <= 2 && tracker.stats().connections === 0;
    }),
    { numRuns: 300, seed: 20261206 },
  );
  t.true(evicted > 0, `evicted ${evicted}`);
});
