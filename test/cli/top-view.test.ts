import test from 'ava';
import { TCP_LIFETIME_BUCKETS } from '../../src/capture/layout';
import { humanBytes, intervalJson, peerLabel, renderTable, TopTable } from '../../src/cli/top-view';
import { emptyTcpCounts, OVERFLOW_PEER, type FlowObservation, type NetworkInterval, type Peer } from '../../src/network/types';

const db = { role: 'client' as const, address: '10.0.0.2', port: 5432, overflow: false };
const web = { role: 'server' as const, address: '10.0.0.7', port: 8080, overflow: false };

const flow = (tgid: number, peer: Peer, sent: number, recv: number, connections = 0): FlowObservation => ({
  tgid,
  peer,
  transport: 'tcp',
  protocol: undefined,
  bytesSent: sent,
  bytesRecv: recv,
  connections,
});

const interval = (i: Partial<NetworkInterval>): NetworkInterval => ({ tcp: [], flows: [], exited: [], ...i });

test('rows per (process, peer): interval increments beside totals, sorted by interval bytes then totals', (t) => {
  const table = new TopTable((pid) => `p${pid}`);
  table.apply(interval({ flows: [flow(1, db, 100, 100, 1), flow(2, web, 10, 10, 1)] }));
  table.apply(
    interval({
      flows: [flow(2, web, 500, 0)],
      tcp: [{ tgid: 1, peer: db, counts: { ...emptyTcpCounts(TCP_LIFETIME_BUCKETS), failures: { ECONNREFUSED: 2 }, attempts: 2 } }],
    }),
  );
  const rows = table.sorted();
  t.deepEqual(rows.map((r) => [r.pid, r.comm, r.interval.bytesSent, r.total.bytesSent]), [[2, 'p2', 500, 510], [1, 'p1', 0, 100]]);
  t.deepEqual(rows[1]!.total.failures, { ECONNREFUSED: 2 });
  t.deepEqual(table.activeRows().map((r) => r.pid), [2, 1], 'process 1 had failures in the interval');
  table.apply(interval({}));
  t.deepEqual(table.activeRows(), []);
  t.is(table.size, 2);
});

test('a process that exited shows its last interval, then its rows go', (t) => {
  const table = new TopTable(() => 'x');
  table.apply(interval({ flows: [flow(1, db, 5, 5)], exited: [1] }));
  t.is(table.activeRows().length, 1);
  table.apply(interval({}));
  t.is(table.size, 0);
});

test('labels and sizes for a terminal', (t) => {
  t.is(peerLabel(db), '10.0.0.2:5432');
  t.is(peerLabel({ ...db, address: 'fd00::2' }), '[fd00::2]:5432');
  t.is(peerLabel(web), '10.0.0.7 -> :8080');
  t.is(peerLabel({ role: undefined, address: '10.0.0.9', port: undefined, overflow: false }), '10.0.0.9');
  t.is(peerLabel(OVERFLOW_PEER), '(other peers)');
  t.is(humanBytes(1023), '1023 B');
  t.is(humanBytes(1536), '1.5 KiB');
  t.is(humanBytes(300 * 1024 * 1024), '300 MiB');
});

test('the table: a header, rows by rate, a line for rows that do not fit, failure reasons', (t) => {
  const table = new TopTable((pid) => `proc${pid}`);
  table.apply(
    interval({
      flows: [flow(1, db, 2048, 1024, 1), flow(1, web, 1, 1, 1), flow(3, db, 0, 0, 1)],
      tcp: [{ tgid: 3, peer: db, counts: { ...emptyTcpCounts(TCP_LIFETIME_BUCKETS), failures: { ETIMEDOUT: 1 }, resetsRecv: 2 } }],
    }),
  );
  const lines = renderTable(table.sorted(), 2, 2);
  t.is(lines.length, 4, 'the failures line names only the rows shown');
  t.regex(lines[0]!, /^PID +COMM +ROLE +PEER +PROTO +TX\/s +RX\/s +TX +RX +CONN +FAIL +RST-TX +RST-RX +RETR$/);
  t.regex(lines[1]!, /^1 +proc1 +client 10\.0\.0\.2:5432 +- +1\.0 KiB +512 B +2\.0 KiB +1\.0 KiB +1 +0 +0 +0 +0$/);
  t.regex(lines[2]!, /^1 +proc1 +server 10\.0\.0\.7 -> :8080/);
  t.is(lines[3], '... 1 more rows');
  const all = renderTable(table.sorted(), 2, 10);
  t.is(all[all.length - 1], 'failures: ETIMEDOUT 1');
});

test('--json: one object per interval with that interval\'s increments, exact numbers', (t) => {
  const table = new TopTable(() => 'app');
  table.apply(interval({ flows: [flow(1, db, 123456789, 42, 1), flow(1, OVERFLOW_PEER, 1, 2)] }));
  const o = intervalJson(table.activeRows(), new Date(Date.UTC(2026, 0, 2, 3, 4, 5)), 1.002);
  t.deepEqual(o, {
    time: '2026-01-02T03:04:05.000Z',
    intervalSeconds: 1.002,
    peers: [
      {
        pid: 1,
        comm: 'app',
        role: 'client',
        address: '10.0.0.2',
        port: 5432,
        protocols: [],
        bytesSent: 123456789,
        bytesReceived: 42,
        connections: 1,
        attempts: 0,
        established: 0,
        failures: {},
        resetsSent: 0,
        resetsReceived: 0,
        retransmits: 0,
        closed: 0,
      },
      {
        pid: 1,
        comm: 'app',
        role: null,
        overflow: true,
        protocols: [],
        bytesSent: 1,
        bytesReceived: 2,
        connections: 0,
        attempts: 0,
        established: 0,
        failures: {},
        resetsSent: 0,
        resetsReceived: 0,
        retransmits: 0,
        closed: 0,
      },
    ],
  });
});
