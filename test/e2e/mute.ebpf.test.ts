// Unknown traffic muted in the kernel, end to end with real eBPF: one Python
// process talks HTTP/1.1 on a keep-alive connection and pseudo-random bytes
// on a raw TCP connection to itself. The agent's user-space half is wired as
// the run command wires it, with a sink that keeps records instead of
// exporting them, and a tap on the capture events. The HTTP records stay
// exact; the raw connection ships only what was sent before the mute; the
// kernel counts the rest as not shipped, and the close totals stay exact.

import * as path from 'node:path';
import { AgentPipeline, type TelemetrySink } from '../../src/agent/pipeline';
import { CaptureEngine } from '../../src/capture/capture-engine';
import type { CloseEvent, OpenEvent } from '../../src/capture/events';
import { openKernelSession } from '../../src/capture/kernel-session';
import { ProcFs } from '../../src/util/procfs';
import { ConnectionTracker } from '../../src/correlate/connection-tracker';
import { TraceGraph } from '../../src/correlate/trace-graph';
import type { TraceRecord } from '../../src/correlate/trace-record';
import { protocolsById } from '../../src/protocols/registry';
import { silentLogger } from '../../src/util/log';
import { ROOT, startWorkload } from '../helpers/agent';
import { ebpfTest } from '../helpers/ebpf';
import { waitFor } from '../native/support';

const PY = '/usr/bin/python3';
const WORKLOAD = path.join(ROOT, 'test', 'e2e', 'programs', 'mixed_traffic.py');

ebpfTest.serial('a process streaming unknown bytes beside HTTP: HTTP records exact, the unknown connection muted after its first syscall, close totals exact', async (t) => {
  const w = await startWorkload(PY, [WORKLOAD]);
  const records: TraceRecord[] = [];
  const opens = new Map<number, OpenEvent>();
  const closes = new Map<number, CloseEvent>();
  /** Data events that reached JS, per connection: "dir size". */
  const shipped = new Map<number, string[]>();
  const sink: TelemetrySink = { record: (r) => void records.push(...r), shutdown: async () => {} };
  const tracker = new ConnectionTracker({ protocols: protocolsById(undefined), protocolOptions: { routes: [], captureQuery: false } }, silentLogger);
  const pipeline = new AgentPipeline(tracker, new TraceGraph({ decide: () => true }), sink, {
    muteConnections: (ids) => engine.muteConnections(ids),
  });
  const engine = new CaptureEngine(
    { selectors: [{ kind: 'pid', pid: w.pid }] },
    { openSession: openKernelSession, procfs: new ProcFs(), logger: silentLogger },
    (e) => {
      if (e.type === 'open') opens.set(e.connId, e);
      else if (e.type === 'close') closes.set(e.connId, e);
      else if (e.type === 'data') shipped.set(e.connId, [...(shipped.get(e.connId) ?? []), `${e.dir} ${e.size}`]);
      pipeline.onEvent(e);
    },
    () => pipeline.flush(),
  );
  try {
    engine.start();
    w.go();
    t.true(await waitFor(() => w.lines.length >= 2, 10_000), 'step 1 done');
    const rawPort = (JSON.parse(w.lines[1]!) as { raw_port: number }).raw_port;
    // Both ends of the raw connection are ignored at their first chunk and muted.
    t.true(await waitFor(() => engine.stats().muteRequests === 2, 5000), `mute requests: ${engine.stats().muteRequests}`);
    w.go();
    const result = (await w.result()) as { phase1: number; phase2: number; reply: number; port: number };
    const raw = [...opens.values()].filter((o) => o.tuple.localPort === rawPort || o.tuple.remotePort === rawPort);
    t.is(raw.length, 2);
    t.true(await waitFor(() => raw.every((o) => closes.has(o.connId)), 5000), 'both raw ends closed');
    await engine.drainAndStop();
    await pipeline.shutdown(Number(process.hrtime.bigint()));

    const { phase1, phase2, reply, port } = result;
    const client = raw.find((o) => o.role === 'client')!;
    const server = raw.find((o) => o.role === 'server')!;
    t.deepEqual(shipped.get(client.connId), [`egress ${phase1}`], 'only the syscall before the mute reached user space');
    t.deepEqual(shipped.get(server.connId), [`ingress ${phase1}`]);
    t.like(closes.get(client.connId), { bytesSent: phase1 + phase2, bytesRecv: reply });
    t.like(closes.get(server.connId), { bytesSent: reply, bytesRecv: phase1 + phase2 });
    const s = engine.stats();
    t.like(s, { muteRequests: 2, muteRequestsFailed: 0 });
    t.like(s.kernel, { conn_muted: 2, muted_bytes: 2 * (phase2 + reply), events_lost: 0, bytes_truncated: 0 });
    t.true(s.kernel.muted_syscalls >= 4, `${s.kernel.muted_syscalls} muted syscalls`);

    const http = records.map(({ record: r }) => [
      r.kind,
      r.name,
      r.attributes['url.path'] ?? r.attributes['url.full'],
      r.attributes['http.response.status_code'],
      r.attributes['http.response.body.size'],
    ]);
    const url = (p: string) => `http://127.0.0.1:${port}${p}`;
    t.deepEqual(http.filter((r) => r[0] === 'client'), [
      ['client', 'GET', url('/items/1'), 200, 11],
      ['client', 'GET', url('/chunked'), 200, 19],
      ['client', 'GET', url('/items/2'), 200, 11],
    ]);
    t.deepEqual(http.filter((r) => r[0] === 'server'), [
      ['server', 'GET /items/{id}', '/items/1', 200, 11],
      ['server', 'GET /chunked', '/chunked', 200, 19],
      ['server', 'GET /items/{id}', '/items/2', 200, 11],
    ]);
    t.true(records.every((r) => r.record.status === 'unset'));
  } finally {
    engine.stop();
    w.child.kill();
  }
});
