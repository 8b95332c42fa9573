// Unknown traffic muted in the kernel, end to end with real eBPF: one Python
// process talks HTTP/1.1 on a keep-alive connection and pseudo-random bytes
// on a raw TCP connection to itself. The agent is the one `run` builds
// (createAgent), exporting spans over OTLP/gRPC to a real receiver, with a
// tap on the capture events. The HTTP spans stay exact; the raw connection ships only what was sent before the mute; the
// kernel counts the rest as not shipped, and the close totals stay exact.

import * as path from 'node:path';
import { createAgent } from '../../src/agent/agent';
import type { CloseEvent, OpenEvent } from '../../src/capture/events';
import { parseRunArgs } from '../../src/cli/run-command';
import { silentLogger } from '../../src/util/log';
import { ROOT, startWorkload } from '../helpers/agent';
import { OtlpReceiver } from '../helpers/otlp-receiver';
import { ebpfTest } from '../helpers/ebpf';
import { waitFor } from '../native/support';

const PY = '/usr/bin/python3';
const WORKLOAD = path.join(ROOT, 'test', 'e2e', 'programs', 'mixed_traffic.py');

ebpfTest.serial('a process streaming unknown bytes beside HTTP: HTTP records exact, the unknown connection muted after its first syscall, close totals exact', async (t) => {
  const w = await startWorkload(PY, [WORKLOAD]);
  const receiver = await OtlpReceiver.start();
  const opens = new Map<number, OpenEvent>();
  const closes = new Map<number, CloseEvent>();
  /** Data events that reached JS, per connection: "dir size". */
  const shipped = new Map<number, string[]>();
  const options = parseRunArgs(['--pid', String(w.pid), '--otlp-endpoint', receiver.grpcUrl, '--otlp-protocol', 'grpc', '--no-tcp-metrics', '--no-flow-metrics'], { env: {} });
  if (options === 'help') throw new Error('unreachable');
  const agent = createAgent(options, {
    logger: silentLogger,
    env: { OTEL_METRICS_EXPORTER: 'none' },
    tap: (e) => {
      if (e.type === 'open') opens.set(e.connId, e);
      else if (e.type === 'close') closes.set(e.connId, e);
      else if (e.type === 'data') shipped.set(e.connId, [...(shipped.get(e.connId) ?? []), `${e.dir} ${e.size}`]);
    },
  });
  const engine = agent.engine;
  try {
    await agent.start();
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
    await agent.stop();

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

    const spans = [...receiver.spans].sort((a, b) => (a.startTimeUnixNano < b.startTimeUnixNano ? -1 : 1));
    const http = spans.map((r) => [
      r.kind === 3 ? 'client' : r.kind === 2 ? 'server' : String(r.kind),
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
    t.true(spans.every((r) => r.status.code === 0));
  } finally {
    await agent.stop();
    w.child.kill();
    await receiver.close();
  }
});
