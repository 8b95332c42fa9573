// eBPF: the kernel tables user space reads whole (conn_info, tcp_peers),
// through the real addon: record sizes as the TypeScript layout says, rows
// for a selected process's real connections, deletion by process.

import { spawn } from 'node:child_process';
import { decodeConnections, decodeTcpPeers } from '../../src/capture/kernel-tables';
import { ConnRecordLayout, TcpPeerRecordLayout } from '../../src/capture/layout';
import { loadNativeBinding } from '../../src/capture/native-binding';
import { ebpfTest } from '../helpers/ebpf';
import { openSession } from './support';

const PY = '/usr/bin/python3';

ebpfTest.serial('record sizes: what the addon was built with is what the TypeScript layout reads', (t) => {
  const { layout } = loadNativeBinding();
  t.is(layout.connRecordBytes, ConnRecordLayout.size);
  t.is(layout.tcpPeerRecordBytes, TcpPeerRecordLayout.size);
});

ebpfTest.serial('without the tcp group its tables are not even created: reads are empty, deletes a no-op', (t) => {
  const binding = loadNativeBinding();
  binding.ensureTracefs();
  const session = openSession(binding);
  try {
    t.is(session.readTcpPeers().length, 0);
    t.is(session.deleteTcpPeers([1, 2]), 0);
    t.is(session.readConnections().length, 0);
  } finally {
    session.close();
  }
});

ebpfTest.serial('a selected process\'s connections and TCP keys are in the tables; its keys go by tgid', async (t) => {
  const binding = loadNativeBinding();
  binding.ensureTracefs();
  // Started first, selected before it connects: it waits for a line on stdin.
  const script = `
import socket, sys
l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(1)
sys.stdin.readline()
c = socket.create_connection(l.getsockname()); a, _ = l.accept()
c.sendall(b'x' * 100); a.recv(100); a.sendall(b'y' * 7); c.recv(7)
try:
    socket.create_connection(('127.0.0.1', 1))
except ConnectionRefusedError:
    pass
print(l.getsockname()[1], flush=True)
sys.stdin.readline()
`;
  const child = spawn(PY, ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  const session = openSession(binding, { groups: { sockets: true, syscalls: false, tcp: true, tls: false } });
  try {
    session.selectTgid(child.pid!, true);
    session.attachAll();
    session.start();
    const port = new Promise<number>((resolve) => child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
    child.stdin!.write('go\n');
    const listening = await port;
    const stats = { malformed: 0 };
    const conns = decodeConnections(session.readConnections(), stats).filter((c) => c.tgid === child.pid);
    t.deepEqual(
      conns.map((c) => [c.role, c.bytesSent, c.bytesRecv, c.role === 'server' ? c.tuple.localPort : c.tuple.remotePort]).sort(),
      [['client', 100, 7, listening], ['server', 7, 100, listening]],
    );
    const peers = decodeTcpPeers(session.readTcpPeers(), stats).filter((p) => p.tgid === child.pid);
    t.deepEqual(
      peers.map((p) => [p.kind, p.role, p.port, p.attempts, p.established, p.failed, p.err]).sort(),
      [
        ['failure', 'client', 1, 0, 0, 1, 111],
        ['peer', 'client', 1, 1, 0, 0, 0],
        ['peer', 'client', listening, 1, 1, 0, 0],
        ['peer', 'server', listening, 0, 1, 0, 0],
      ],
    );
    t.is(stats.malformed, 0);
    t.is(session.deleteTcpPeers([child.pid!]), 4);
    t.deepEqual(decodeTcpPeers(session.readTcpPeers(), stats).filter((p) => p.tgid === child.pid), []);
  } finally {
    child.kill();
    session.close();
  }
});
