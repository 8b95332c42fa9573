import test from 'ava';
import type { CaptureEvent } from '../../src/capture/events';
import { NetworkCollector, type NetworkSource } from '../../src/network/collector';
import { PeerBound } from '../../src/network/peer-bound';
import { OVERFLOW_PEER } from '../../src/network/types';
import { connRecord, tcpPeerRecord, type ConnFields, type TcpPeerFields } from '../helpers/kernel-tables';

class FakeTables implements NetworkSource {
  tcp: TcpPeerFields[] = [];
  conns: ConnFields[] = [];
  deleted: number[][] = [];
  readTcpPeers(): Buffer {
    return Buffer.concat(this.tcp.map(tcpPeerRecord));
  }
  readConnections(): Buffer {
    return Buffer.concat(this.conns.map(connRecord));
  }
  deleteTcpPeers(tgids: readonly number[]): number {
    this.deleted.push([...tgids]);
    const before = this.tcp.length;
    this.tcp = this.tcp.filter((r) => !tgids.includes(r.tgid));
    return before - this.tcp.length;
  }
}

const exit = (tgid: number): CaptureEvent => ({ type: 'exit', tgid, ppid: 1, tsNs: 1, cgroupId: 0n, comm: 'app', exitCode: 0, signal: undefined });

test('peer bound: the first N peers of a process keep their series, later ones fold, counted; forget starts over', (t) => {
  const b = new PeerBound(2);
  const peer = (port: number) => ({ role: 'client' as const, address: '10.0.0.2', port, overflow: false });
  t.deepEqual(b.admit(1, peer(1)), peer(1));
  t.deepEqual(b.admit(1, peer(2)), peer(2));
  t.is(b.admit(1, peer(3)), OVERFLOW_PEER);
  t.deepEqual(b.admit(1, peer(1)), peer(1), 'admitted stays admitted');
  t.deepEqual(b.admit(2, peer(3)), peer(3), 'per process');
  t.is(b.folded, 1);
  b.forget(1);
  t.deepEqual(b.admit(1, peer(3)), peer(3));
  t.throws(() => new PeerBound(-1), { instanceOf: RangeError });
});

test('one collect: TCP and flow increments, peers bounded per process', (t) => {
  const tables = new FakeTables();
  const c = new NetworkCollector(tables, { tcp: true, flows: true, maxPeersPerProcess: 1 });
  tables.tcp = [{ tgid: 5, port: 80, attempts: 1 }, { tgid: 5, port: 81, attempts: 2 }];
  tables.conns = [{ tgid: 5, connId: 1, sent: 10, remote: ['10.0.0.2', 80] }];
  const i = c.collect();
  t.deepEqual(i.flows.map((f) => [f.peer.port, f.bytesSent]), [[80, 10]]);
  // Port 80 was admitted by the flow; 81 folds.
  t.deepEqual(i.tcp.map((o) => [o.peer.overflow, o.peer.port, o.counts.attempts]), [[false, 80, 1], [true, undefined, 2]]);
  t.is(c.stats().peersFolded, 1);
});

test('an exit is settled at the next collect: last counters reported, then its keys deleted; keys that come back are late', (t) => {
  const tables = new FakeTables();
  const c = new NetworkCollector(tables, { tcp: true, flows: false, maxPeersPerProcess: 10 });
  tables.tcp = [{ tgid: 5, attempts: 1 }, { tgid: 6, attempts: 1 }];
  c.collect();
  tables.tcp = [{ tgid: 5, attempts: 3 }, { tgid: 6, attempts: 1 }];
  c.onEvent(exit(5));
  t.is(c.exitsPending, 1);
  const i = c.collect();
  t.deepEqual(i.exited, [5]);
  t.deepEqual(i.tcp.map((o) => [o.tgid, o.counts.attempts]), [[5, 2]]);
  t.deepEqual(tables.deleted, [[5]]);
  t.is(c.exitsPending, 0);
  // A socket it left behind reset after it exited: deleted, not reported.
  tables.tcp.push({ tgid: 5, resetsSent: 1 });
  t.deepEqual(c.collect().tcp, []);
  t.deepEqual(tables.deleted, [[5], [5]]);
  t.is(c.stats().lateTcpKeys, 1);
  // The pid comes back as a new process: its keys count again.
  c.onEvent({ type: 'exec', tgid: 5, ppid: 1, tsNs: 3, cgroupId: 0n, comm: 'new', filename: '/bin/new', selectedByKernel: false });
  tables.tcp.push({ tgid: 5, attempts: 1 });
  t.deepEqual(c.collect().tcp.map((o) => [o.tgid, o.counts.attempts]), [[5, 1]]);
});

test('families turned off are not read', (t) => {
  const tables = new FakeTables();
  let reads = 0;
  const source: NetworkSource = {
    readTcpPeers: () => (reads++, tables.readTcpPeers()),
    readConnections: () => (reads++, tables.readConnections()),
    deleteTcpPeers: (x) => tables.deleteTcpPeers(x),
  };
  new NetworkCollector(source, { tcp: false, flows: true, maxPeersPerProcess: 1 }).collect();
  t.is(reads, 1);
  new NetworkCollector(source, { tcp: true, flows: false, maxPeersPerProcess: 1 }).collect();
  t.is(reads, 2);
});
