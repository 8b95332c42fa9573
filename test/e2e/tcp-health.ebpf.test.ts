// TCP health and flows, end to end with real eBPF: a Python process that is
// its own client and server on loopback (a refused connect, an HTTP
// exchange, a connection its server resets, a stream of unknown bytes the
// agent mutes), the real CLI (`ebpf-otel run --pid P`, `ebpf-otel top`), and
// the OTLP gRPC receiver decoding with the official schema. Exact metric
// names, units, attributes and values; an unselected process yields nothing.

import * as path from 'node:path';
import anyTest from 'ava';
import { ebpfTest } from '../helpers/ebpf';
import { ROOT, sleep, startAgent, startWorkload, type Workload } from '../helpers/agent';
import type { ReceivedPoint } from '../helpers/otlp-receiver';
import { useOtlpReceiver } from '../helpers/use-otlp-receiver';

const test = ebpfTest.serial;
const PY = '/usr/bin/python3';
const PROGRAM = path.join(ROOT, 'test', 'e2e', 'programs', 'tcp_health.py');

interface Hello {
  pid: number;
  closed_port: number;
  http_port: number;
  reset_port: number;
  muted_port: number;
}
interface Result {
  refused: boolean;
  http_response_ok: boolean;
  reset: boolean;
  errors: string[];
  request: number;
  response: number;
  reset_msg: number;
  muted_up: number;
  muted_down: number;
}

const otlp = useOtlpReceiver(anyTest);

async function workload(): Promise<Workload & { ports: Hello }> {
  const w = await startWorkload(PY, [PROGRAM]);
  return Object.assign(w, { ports: w.hello as unknown as Hello });
}

/** "name {attributes, keys sorted}" -> value (sums) or the point (histograms), for one process. */
function pointsOf(pid: number, prefix: string): Map<string, ReceivedPoint> {
  const out = new Map<string, ReceivedPoint>();
  const names = new Set(otlp.receiver.points.filter((p) => p.metric.name.startsWith(prefix)).map((p) => p.metric.name));
  for (const name of names) {
    for (const p of otlp.receiver.latestPoints(name, (x) => x.resource['process.pid'] === pid)) {
      const attrs = Object.fromEntries(Object.entries(p.attributes).sort(([a], [b]) => a.localeCompare(b)));
      out.set(`${name} ${JSON.stringify(attrs)}`, p);
    }
  }
  return out;
}

const key = (name: string, attrs: Record<string, unknown>) =>
  `${name} ${JSON.stringify(Object.fromEntries(Object.entries(attrs).sort(([a], [b]) => a.localeCompare(b))))}`;

const peer = (port: number) => ({ 'network.transport': 'tcp', 'network.type': 'ipv4', 'network.peer.address': '127.0.0.1', 'network.peer.port': port });
const served = (port: number) => ({ 'network.transport': 'tcp', 'network.type': 'ipv4', 'network.peer.address': '127.0.0.1', 'server.port': port });

test('run --pid: refused connect, reset both ways, exact flow bytes per peer and direction (HTTP and a muted unknown stream); an unselected process yields nothing', async (t) => {
  const w = await workload();
  const other = await workload(); // same program, never selected
  const { http_port: hp, reset_port: rp, muted_port: mp, closed_port: cp } = w.ports;
  let stderr = '';
  let r: Result;
  try {
    const agent = await startAgent(['run', '--pid', String(w.pid)], { env: otlp.env() });
    w.go();
    other.go();
    r = (await w.result()) as unknown as Result;
    const o = (await other.result()) as unknown as Result;
    t.deepEqual([r.refused, r.http_response_ok, r.reset, r.errors], [true, true, true, []], 'the workload did what the test expects');
    t.deepEqual([o.refused, o.reset, o.errors], [true, true, []]);
    await sleep(300);
    const stopped = await agent.stop();
    stderr = stopped.stderr;
    t.is(stopped.code, 0);
  } finally {
    w.child.kill();
    other.child.kill();
  }
  t.log(stderr.split('\n').filter((l) => /captured|muted/.test(l)).join('\n'));

  const tcp = pointsOf(w.pid, 'ebpf_otel.tcp.connection.');
  const sums = (prefix: string) =>
    Object.fromEntries([...tcp, ...pointsOf(w.pid, 'ebpf_otel.network.flow.')].filter(([k]) => k.startsWith(prefix)).map(([k, p]) => [k, p.value]));
  const sumPoint = [...tcp.values()].find((p) => p.metric.type === 'sum')!;
  t.like(sumPoint, { monotonic: true, temporality: 2 });

  // Client side: one handshake per connect; the refused one failed with its errno.
  t.deepEqual(sums('ebpf_otel.tcp.connection.attempts'), {
    [key('ebpf_otel.tcp.connection.attempts', peer(cp))]: 1,
    [key('ebpf_otel.tcp.connection.attempts', peer(hp))]: 1,
    [key('ebpf_otel.tcp.connection.attempts', peer(rp))]: 1,
    [key('ebpf_otel.tcp.connection.attempts', peer(mp))]: 1,
  });
  t.deepEqual(sums('ebpf_otel.tcp.connection.failures'), {
    [key('ebpf_otel.tcp.connection.failures', { ...peer(cp), 'error.type': 'ECONNREFUSED' })]: 1,
  });
  // Established: completed handshakes (client) and accepted connections (server, by its port).
  t.deepEqual(sums('ebpf_otel.tcp.connection.established'), {
    [key('ebpf_otel.tcp.connection.established', peer(hp))]: 1,
    [key('ebpf_otel.tcp.connection.established', peer(rp))]: 1,
    [key('ebpf_otel.tcp.connection.established', peer(mp))]: 1,
    [key('ebpf_otel.tcp.connection.established', served(hp))]: 1,
    [key('ebpf_otel.tcp.connection.established', served(rp))]: 1,
    [key('ebpf_otel.tcp.connection.established', served(mp))]: 1,
  });
  // The server's SO_LINGER 0 close: sent by the server end, received by the client end; no other reset.
  t.deepEqual(sums('ebpf_otel.tcp.connection.resets'), {
    [key('ebpf_otel.tcp.connection.resets', { ...peer(rp), 'network.io.direction': 'receive' })]: 1,
    [key('ebpf_otel.tcp.connection.resets', { ...served(rp), 'network.io.direction': 'transmit' })]: 1,
  });
  // Every established connection ended: one lifetime each, both ends.
  const durations = [...tcp].filter(([k]) => k.startsWith('ebpf_otel.tcp.connection.duration '));
  t.deepEqual(
    durations.map(([k, p]) => [k, p.histogram!.count]).sort(),
    [peer(hp), peer(rp), peer(mp), served(hp), served(rp), served(mp)].map((a) => [key('ebpf_otel.tcp.connection.duration', a), 1]).sort(),
  );
  for (const [, p] of durations) {
    t.is(p.metric.unit, 's');
    t.true(p.histogram!.sum! > 0 && p.histogram!.sum! < 60, `lifetime ${p.histogram!.sum} s`);
    t.is(p.histogram!.explicitBounds[0], 16384 / 1e9);
  }
  const failures = tcp.get(key('ebpf_otel.tcp.connection.failures', { ...peer(cp), 'error.type': 'ECONNREFUSED' }))!;
  t.deepEqual(failures.metric, {
    name: 'ebpf_otel.tcp.connection.failures',
    unit: '{connection}',
    type: 'sum',
    description: 'TCP handshakes that failed (client role), by error.type: the socket error (ECONNREFUSED, ETIMEDOUT, ...), or aborted when the process closed the socket first.',
  });

  // Flows: true byte counts per peer and direction; HTTP named, the muted unknown stream not, its bytes all there.
  const http = { 'network.protocol.name': 'http' };
  const io = (a: Record<string, unknown>, dir: 'transmit' | 'receive') => key('ebpf_otel.network.flow.io', { ...a, 'network.io.direction': dir });
  t.deepEqual(sums('ebpf_otel.network.flow.io'), {
    [io({ ...peer(hp), ...http }, 'transmit')]: r.request,
    [io({ ...peer(hp), ...http }, 'receive')]: r.response,
    [io({ ...served(hp), ...http }, 'receive')]: r.request,
    [io({ ...served(hp), ...http }, 'transmit')]: r.response,
    [io(peer(rp), 'transmit')]: r.reset_msg,
    [io(served(rp), 'receive')]: r.reset_msg,
    [io(peer(mp), 'transmit')]: r.muted_up,
    [io(peer(mp), 'receive')]: r.muted_down,
    [io(served(mp), 'receive')]: r.muted_up,
    [io(served(mp), 'transmit')]: r.muted_down,
  });
  const conn = (a: Record<string, unknown>) => key('ebpf_otel.network.flow.connections', a);
  t.deepEqual(sums('ebpf_otel.network.flow.connections'), {
    [conn({ ...peer(hp), ...http })]: 1,
    [conn({ ...served(hp), ...http })]: 1,
    [conn(peer(rp))]: 1,
    [conn(served(rp))]: 1,
    [conn(peer(mp))]: 1,
    [conn(served(mp))]: 1,
  });
  const ioPoint = pointsOf(w.pid, 'ebpf_otel.network.flow.').get(io(peer(mp), 'transmit'))!;
  t.is(ioPoint.metric.unit, 'By');
  // The muted stream really was muted: its bytes above were counted in the kernel, not shipped.
  const muted = /muted (\d+) connections of unknown protocol, (\d+) bytes not shipped/.exec(stderr);
  t.truthy(muted, stderr);
  t.true(Number(muted![1]) >= 2 && Number(muted![2]) > 300_000, muted![0]);

  // The unselected process: not one point.
  t.deepEqual(
    otlp.receiver.points.filter((p) => p.resource['process.pid'] === other.pid).map((p) => p.metric.name),
    [],
  );
});

test('top --json: one object per interval, exact bytes per peer, failures and resets, no payload captured', async (t) => {
  const w = await workload();
  const { http_port: hp, reset_port: rp, muted_port: mp, closed_port: cp } = w.ports;
  let lines: string[] = [];
  try {
    const agent = await startAgent(['top', '--pid', String(w.pid), '--json', '--interval', '500ms']);
    w.go();
    const r = (await w.result()) as unknown as Result;
    t.deepEqual(r.errors, []);
    // The exit is settled at the next interval; one more shows it was.
    await sleep(1500);
    const stopped = await agent.stop();
    t.is(stopped.code, 0);
    lines = stopped.lines;
    const intervals = lines.map((l) => JSON.parse(l) as { time: string; intervalSeconds: number; peers: Record<string, unknown>[] });
    t.true(intervals.length >= 2, `${intervals.length} intervals`);
    for (const i of intervals) {
      t.regex(i.time, /^\d{4}-\d\d-\d\dT/);
      t.true(i.intervalSeconds > 0.3 && i.intervalSeconds < 2, `interval ${i.intervalSeconds}`);
    }
    // Summed over the intervals: the increments of each (process, role, peer).
    const totals = new Map<string, Record<string, number | Record<string, number>>>();
    for (const i of intervals) {
      for (const p of i.peers) {
        t.is(p['pid'], w.pid);
        t.is(p['comm'], 'python3');
        t.deepEqual(p['protocols'], [], 'no payload: no protocol is known');
        const k = `${p['role']} ${p['port']}`;
        const acc = totals.get(k) ?? {};
        for (const f of ['bytesSent', 'bytesReceived', 'connections', 'attempts', 'established', 'resetsSent', 'resetsReceived', 'closed'] as const) {
          acc[f] = ((acc[f] as number | undefined) ?? 0) + (p[f] as number);
        }
        const failures = (acc['failures'] ?? {}) as Record<string, number>;
        for (const [e, n] of Object.entries(p['failures'] as Record<string, number>)) failures[e] = (failures[e] ?? 0) + n;
        acc['failures'] = failures;
        totals.set(k, acc);
      }
    }
    const row = (sent: number, recv: number, extra: Record<string, unknown> = {}) => ({
      bytesSent: sent,
      bytesReceived: recv,
      connections: 1,
      attempts: 0,
      established: 1,
      resetsSent: 0,
      resetsReceived: 0,
      closed: 1,
      failures: {},
      ...extra,
    });
    t.deepEqual(Object.fromEntries(totals), {
      [`client ${cp}`]: { ...row(0, 0), connections: 0, established: 0, closed: 0, attempts: 1, failures: { ECONNREFUSED: 1 } },
      [`client ${hp}`]: row(r.request, r.response, { attempts: 1 }),
      [`server ${hp}`]: row(r.response, r.request),
      [`client ${rp}`]: row(r.reset_msg, 0, { attempts: 1, resetsReceived: 1 }),
      [`server ${rp}`]: row(0, r.reset_msg, { resetsSent: 1 }),
      [`client ${mp}`]: row(r.muted_up, r.muted_down, { attempts: 1 }),
      [`server ${mp}`]: row(r.muted_down, r.muted_up),
    });
    t.regex(stopped.stderr, /intervals; data events 0 \(payload is never captured\)/);
  } finally {
    w.child.kill();
  }
});

test('peer failure class: an idle keep-alive pool closed by the server is connections that ended, never failed connects or resets', async (t) => {
  const w = await startWorkload(PY, [path.join(ROOT, 'test', 'e2e', 'programs', 'idle_pool.py')]);
  const port = w.hello.port as number;
  try {
    const agent = await startAgent(['run', '--pid', String(w.pid)], { env: otlp.env() });
    w.go();
    const r = await w.result();
    t.deepEqual(r, { responses: 5, closed_by_server: 5, errors: [] }, 'the pool did what the test expects');
    await sleep(300);
    t.is((await agent.stop()).code, 0);
  } finally {
    w.child.kill();
  }
  const tcp = pointsOf(w.pid, 'ebpf_otel.tcp.connection.');
  const sums = (name: string) => Object.fromEntries([...tcp].filter(([k]) => k.startsWith(name + ' ')).map(([k, p]) => [k, p.value]));
  t.deepEqual(sums('ebpf_otel.tcp.connection.attempts'), { [key('ebpf_otel.tcp.connection.attempts', peer(port))]: 5 });
  t.deepEqual(sums('ebpf_otel.tcp.connection.established'), {
    [key('ebpf_otel.tcp.connection.established', peer(port))]: 5,
    [key('ebpf_otel.tcp.connection.established', served(port))]: 5,
  });
  t.deepEqual(sums('ebpf_otel.tcp.connection.failures'), {}, 'no failed connect');
  t.deepEqual(sums('ebpf_otel.tcp.connection.resets'), {}, 'no reset either way');
  const durations = [...tcp].filter(([k]) => k.startsWith('ebpf_otel.tcp.connection.duration '));
  t.deepEqual(
    durations.map(([k, p]) => [k, p.histogram!.count]).sort(),
    [peer(port), served(port)].map((a) => [key('ebpf_otel.tcp.connection.duration', a), 5]).sort(),
    'five lifetimes at each end',
  );
});
