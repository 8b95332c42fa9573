import test from 'ava';
import type { CloseEvent, OpenEvent, SocketTuple } from '../../src/capture/events';
import type { ConnectionEntry } from '../../src/capture/kernel-tables';
import { FlowAccounting, peerOfConnection, type ProtocolDecision } from '../../src/network/flows';

const TUPLE: SocketTuple = { family: 'inet', transport: 'tcp', localAddr: '10.0.0.1', localPort: 40000, remoteAddr: '10.0.0.2', remotePort: 5432 };

function entry(connId: number, sent: number, recv: number, over: Partial<ConnectionEntry> = {}): ConnectionEntry {
  return { tgid: 10, fd: 3, connId, bytesSent: sent, bytesRecv: recv, role: 'client', netns: 1, tuple: TUPLE, ...over };
}

function close(connId: number, sent: number, recv: number, over: Partial<CloseEvent> = {}): CloseEvent {
  return { type: 'close', tgid: 10, tid: 10, comm: 'app', cgroupId: 0n, fd: 3, connId, tsNs: 1, netns: 1, role: 'client', reason: 'close', tuple: TUPLE, bytesSent: sent, bytesRecv: recv, ...over };
}

function open(connId: number): OpenEvent {
  return { type: 'open', tgid: 10, tid: 10, comm: 'app', cgroupId: 0n, fd: 3, connId, tsNs: 1, netns: 1, role: 'client', reason: 'connect', tuple: TUPLE };
}

test('peers: client by the peer\'s port, server by the local port, unknown role by address only', (t) => {
  t.deepEqual(peerOfConnection('client', TUPLE), { role: 'client', address: '10.0.0.2', port: 5432, overflow: false });
  t.deepEqual(peerOfConnection('server', TUPLE), { role: 'server', address: '10.0.0.2', port: 40000, overflow: false });
  t.deepEqual(peerOfConnection('unknown', TUPLE), { role: undefined, address: '10.0.0.2', port: undefined, overflow: false });
});

test('bytes per read are the increments since the last read; the close event carries the last ones; counted once', (t) => {
  const f = new FlowAccounting();
  f.onEvent(open(1));
  t.deepEqual(f.read([entry(1, 0, 0)]), [], 'nothing moved yet');
  const a = f.read([entry(1, 100, 2000)]);
  t.like(a[0], { tgid: 10, bytesSent: 100, bytesRecv: 2000, connections: 1, protocol: undefined });
  t.like(f.read([entry(1, 150, 2000)])[0], { bytesSent: 50, bytesRecv: 0, connections: 0 });
  f.onEvent(close(1, 170, 2100));
  const last = f.read([]);
  t.like(last[0], { bytesSent: 20, bytesRecv: 100, connections: 0 });
  t.is(f.stats.connections, 0);
  t.is(f.stats.vanished, 0);
});

test('a connection that lived between two reads is counted whole from its close event, zero bytes included', (t) => {
  const f = new FlowAccounting();
  f.onEvent(close(5, 10, 20));
  f.onEvent(close(6, 0, 0));
  t.deepEqual(
    f.read([]).map((o) => [o.bytesSent, o.bytesRecv, o.connections]),
    [[10, 20, 1], [0, 0, 1]],
  );
});

test('the protocol is asked when the bytes are first accounted, waits while undecided, then is frozen', (t) => {
  const decisions = new Map<number, ProtocolDecision>([[1, { decided: false }]]);
  const f = new FlowAccounting({ protocolOf: (id) => decisions.get(id) ?? { decided: false }, maxHoldReads: 2 });
  t.deepEqual(f.read([entry(1, 10, 0)]), [], 'held: the tracker is still deciding');
  decisions.set(1, { decided: true, protocol: 'http' });
  t.like(f.read([entry(1, 30, 5)])[0], { protocol: 'http', bytesSent: 30, bytesRecv: 5, connections: 1 });
  // Frozen: what the tracker says later does not move the connection.
  decisions.set(1, { decided: true });
  t.like(f.read([entry(1, 40, 5)])[0], { protocol: 'http', bytesSent: 10 });
});

test('undecided past the hold, or ignored: accounted without a protocol, never a guessed one', (t) => {
  const f = new FlowAccounting({ protocolOf: (id) => (id === 2 ? { decided: true } : { decided: false }), maxHoldReads: 1 });
  t.deepEqual(f.read([entry(1, 5, 0)]), []);
  const out = f.read([entry(1, 5, 0), entry(2, 7, 0)]);
  t.deepEqual(
    out.map((o) => [o.bytesSent, o.protocol]),
    [[5, undefined], [7, undefined]],
  );
  t.is(f.stats.undecided, 1);
});

test('a close decides whatever the tracker says: the increments are not held', (t) => {
  const f = new FlowAccounting({ protocolOf: () => ({ decided: false }) });
  f.onEvent(close(3, 1, 1));
  t.like(f.read([])[0], { bytesSent: 1, bytesRecv: 1, protocol: undefined });
});

test('a process that exited: its entries stay in the kernel table; the next read is their last', (t) => {
  const f = new FlowAccounting();
  f.read([entry(1, 10, 10), entry(2, 1, 1, { tgid: 11 })]);
  f.onEvent({ type: 'exit', tgid: 10, ppid: 1, tsNs: 2, cgroupId: 0n, comm: 'app', exitCode: 0, signal: undefined });
  t.like(f.read([entry(1, 15, 10), entry(2, 1, 1, { tgid: 11 })])[0], { bytesSent: 5 });
  // Still in the table, unchanged or not: done with.
  t.deepEqual(f.read([entry(1, 99, 99), entry(2, 1, 1, { tgid: 11 })]), []);
  t.is(f.stats.connections, 1);
  // A connection of the dead process first seen now is its last state too, not a new connection's.
  t.like(f.read([entry(3, 4, 4), entry(2, 1, 1, { tgid: 11 })])[0], { bytesSent: 4, connections: 1 });
  t.is(f.stats.connections, 1);
});

test('a connection gone from the table without a close is forgotten after two reads, counted', (t) => {
  const f = new FlowAccounting();
  f.read([entry(1, 10, 10)]);
  f.read([]);
  t.is(f.stats.connections, 1, 'its close event may still be on its way');
  f.read([]);
  t.is(f.stats.connections, 0);
  t.is(f.stats.vanished, 1);
});

test('a close after the read that saw it last: only what is left', (t) => {
  const f = new FlowAccounting();
  f.read([entry(1, 10, 10)]);
  f.onEvent(close(1, 10, 12));
  // The kernel emits the close, then deletes the entry: a read in between still shows it; not counted again.
  const out = f.read([entry(1, 10, 12)]);
  t.is(out.length, 1);
  t.like(out[0], { bytesSent: 0, bytesRecv: 2 });
  t.deepEqual(f.read([]), []);
});
