import test from 'ava';
import { decodeTcpPeers } from '../../src/capture/kernel-tables';
import { connectErrorType, TcpHealthDiff } from '../../src/network/tcp-health';
import { tcpPeerRecord, type TcpPeerFields } from '../helpers/kernel-tables';

const read = (...records: TcpPeerFields[]) => decodeTcpPeers(Buffer.concat(records.map(tcpPeerRecord)), { malformed: 0 });

test('increments between reads, per key; keys without increments give nothing', (t) => {
  const d = new TcpHealthDiff();
  const first = d.diff(read({ tgid: 1, attempts: 2, established: 1, buckets: { 3: 1 }, closed: 1, lifetimeSumNs: 100_000 }));
  t.is(first.length, 1);
  t.like(first[0]!.counts, { attempts: 2, established: 1, closed: 1, lifetimeSumNs: 100_000 });
  t.is(first[0]!.counts.lifetimeBuckets[3], 1);
  t.deepEqual(first[0]!.peer, { role: 'client', address: '10.0.0.2', port: 5432, overflow: false });
  const second = d.diff(read({ tgid: 1, attempts: 5, established: 1, buckets: { 3: 1 }, closed: 1, lifetimeSumNs: 100_000, resetsRecv: 1 }));
  t.like(second[0]!.counts, { attempts: 3, established: 0, closed: 0, resetsRecv: 1, lifetimeSumNs: 0 });
  t.is(second[0]!.counts.lifetimeBuckets[3], 0);
  t.deepEqual(d.diff(read({ tgid: 1, attempts: 5, established: 1, buckets: { 3: 1 }, closed: 1, lifetimeSumNs: 100_000, resetsRecv: 1 })), []);
});

test('failure keys become failures by error type; the overflow key\'s failures have lost theirs', (t) => {
  const d = new TcpHealthDiff();
  const out = d.diff(
    read(
      { tgid: 1, kind: 'failure', err: 111, failed: 2 },
      { tgid: 1, kind: 'failure', err: 110, failed: 1 },
      { tgid: 1, kind: 'failure', err: 0, failed: 1 },
      { tgid: 1, kind: 'overflow', failed: 4, resetsSent: 1 },
    ),
  );
  t.deepEqual(
    out.map((o) => o.counts.failures),
    [{ ECONNREFUSED: 2 }, { ETIMEDOUT: 1 }, { aborted: 1 }, { _OTHER: 4 }],
  );
  t.true(out[3]!.peer.overflow);
  t.is(out[3]!.counts.resetsSent, 1);
  t.is(connectErrorType(113), 'EHOSTUNREACH');
});

test('a key that went backwards was recreated: its counters count whole, and it is counted', (t) => {
  const d = new TcpHealthDiff();
  d.diff(read({ tgid: 1, attempts: 10 }));
  const out = d.diff(read({ tgid: 1, attempts: 2 }));
  t.is(out[0]!.counts.attempts, 2);
  t.is(d.restarted, 1);
});

test('forgotten processes start from zero; keys gone from the table are forgotten', (t) => {
  const d = new TcpHealthDiff();
  d.diff(read({ tgid: 1, attempts: 3 }, { tgid: 2, attempts: 3 }));
  t.is(d.keys, 2);
  d.forget(new Set([1]));
  t.is(d.keys, 1);
  t.is(d.diff(read({ tgid: 1, attempts: 3 }))[0]!.counts.attempts, 3);
  t.is(d.keys, 1, 'tgid 2 is gone from the read');
});
