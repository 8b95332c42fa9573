import test from 'ava';
import { decodeConnections, decodeTcpPeers, tcpLifetimeBoundsNs } from '../../src/capture/kernel-tables';
import { TCP_LIFETIME_BUCKETS } from '../../src/capture/layout';
import { connRecord, tcpPeerRecord } from '../helpers/kernel-tables';

test('conn_info records: tgid and fd from the key, true byte totals, tuple and role', (t) => {
  const stats = { malformed: 0 };
  const buf = Buffer.concat([
    connRecord({ tgid: 100, fd: 7, connId: 2 ** 40 + 3, sent: 2 ** 33, recv: 12, role: 2, local: ['127.0.0.1', 8080], remote: ['127.0.0.1', 51000] }),
    connRecord({ tgid: 101, connId: 9, role: 0, local: ['::ffff:10.0.0.1', 1], remote: ['fd00::2', 443] }),
  ]);
  const [a, b] = decodeConnections(buf, stats);
  t.like(a, { tgid: 100, fd: 7, connId: 2 ** 40 + 3, bytesSent: 2 ** 33, bytesRecv: 12, role: 'server' });
  t.deepEqual(a!.tuple, { family: 'inet', transport: 'tcp', localAddr: '127.0.0.1', localPort: 8080, remoteAddr: '127.0.0.1', remotePort: 51000 });
  t.like(b, { tgid: 101, role: 'unknown' });
  t.like(b!.tuple, { family: 'inet6', localAddr: '10.0.0.1', remoteAddr: 'fd00::2', remotePort: 443 });
  t.is(stats.malformed, 0);
});

test('a table whose length is not whole records, or a record with an impossible tuple, is counted, not thrown', (t) => {
  const stats = { malformed: 0 };
  t.deepEqual(decodeConnections(Buffer.alloc(95), stats), []);
  const bad = connRecord({ tgid: 1, connId: 1 });
  bad.fill(0, 40, 80); // tuple: family 0
  t.deepEqual(decodeConnections(bad, stats), []);
  t.deepEqual(decodeTcpPeers(Buffer.alloc(10), stats), []);
  t.is(stats.malformed, 3);
});

test('tcp_peers records: peer, failure and overflow keys', (t) => {
  const stats = { malformed: 0 };
  const buf = Buffer.concat([
    tcpPeerRecord({ tgid: 7, role: 1, addr: '10.0.0.2', port: 5432, attempts: 3, established: 2, closed: 2, lifetimeSumNs: 5e9, buckets: { 0: 1, 31: 1 } }),
    tcpPeerRecord({ tgid: 7, kind: 'failure', role: 1, addr: '10.0.0.2', port: 5432, err: 111, failed: 1 }),
    tcpPeerRecord({ tgid: 7, kind: 'overflow', retransmits: 4 }),
    tcpPeerRecord({ tgid: 8, role: 2, addr: '::ffff:192.168.1.9', port: 8080, established: 1 }),
  ]);
  const [peer, failure, overflow, server] = decodeTcpPeers(buf, stats);
  t.like(peer, { tgid: 7, kind: 'peer', role: 'client', peerAddress: '10.0.0.2', port: 5432, attempts: 3, established: 2, closed: 2, lifetimeSumNs: 5e9 });
  t.is(peer!.lifetimeBuckets.length, TCP_LIFETIME_BUCKETS);
  t.is(peer!.lifetimeBuckets[0], 1);
  t.is(peer!.lifetimeBuckets[31], 1);
  t.like(failure, { kind: 'failure', err: 111, failed: 1 });
  t.not(failure!.id, peer!.id, 'a failure key is its own key');
  t.like(overflow, { kind: 'overflow', role: undefined, peerAddress: undefined, port: undefined, retransmits: 4 });
  t.like(server, { role: 'server', peerAddress: '192.168.1.9', port: 8080 });
  t.is(stats.malformed, 0);
});

test('lifetime bounds: 2^14 .. 2^44 ns, one fewer than the buckets', (t) => {
  const b = tcpLifetimeBoundsNs();
  t.is(b.length, TCP_LIFETIME_BUCKETS - 1);
  t.is(b[0], 16384);
  t.is(b[b.length - 1], 2 ** 44);
});
