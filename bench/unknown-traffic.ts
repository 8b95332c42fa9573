// What unknown traffic costs the agent, with and without kernel muting,
// measured side by side in one run with real eBPF.
//
//   node dist/bench/unknown-traffic.js [--seconds N] [--rounds N] [--chunk BYTES] [--json]
//
// A Python process streams pseudo-random bytes (a binary magic, then noise:
// no protocol recognises them) over a TCP connection to itself, one sendall
// of --chunk bytes after another, for --seconds. It is traced by the agent's
// user-space half built as the run command builds it, in this process, with
// a sink that drops records. Arms, alternated within each round:
//   ship  the tracker ignores the connection but nobody tells the kernel
//         (the behaviour before kernel muting): every syscall still ships;
//   mute  the run command's wiring: the ignored connection is muted.
// Reported per arm (median over rounds): data events and payload bytes that
// reached JS per second, native batches per second, this process's CPU (poll
// thread, decode, tracker; all threads) per second of streaming, the stream's
// own throughput, and the bytes the kernel did not ship.
//
// Needs root and the build (make build). Streamer and agent share this
// machine's CPUs.

import { runMain } from './main';
import { parseArgs } from 'node:util';
import { createAgent } from '../src/agent/agent';
import { parseRunArgs } from '../src/cli/run-command';
import { silentLogger } from '../src/util/log';
import { startWorkload } from '../test/helpers/agent';

export type Arm = 'ship' | 'mute';

const STREAMER = `
import json, os, socket, sys, threading, time
seconds, size = float(sys.argv[1]), int(sys.argv[2])
listener = socket.create_server(("127.0.0.1", 0))
print(json.dumps({"pid": os.getpid()}), flush=True)
sys.stdin.readline()
client = socket.create_connection(listener.getsockname())
server, _ = listener.accept()
received = 0
def drain():
    global received
    while True:
        b = server.recv(1 << 16)
        if not b:
            break
        received += len(b)
reader = threading.Thread(target=drain)
reader.start()
chunk = b"\\x00RAW" + os.urandom(size - 4)
writes, end = 0, time.monotonic() + seconds
while time.monotonic() < end:
    client.sendall(chunk)
    writes += 1
client.close()
reader.join()
server.close()
print(json.dumps({"bytes": received, "writes": writes}), flush=True)
`;

export interface ArmResult {
  readonly arm: Arm;
  readonly wallSeconds: number;
  /** Bytes the streamer moved (received by its reader). */
  readonly streamBytes: number;
  readonly dataEvents: number;
  /** Bytes the syscalls behind those events moved, and the part of them captured. */
  readonly shippedBytes: number;
  readonly payloadBytes: number;
  readonly batches: number;
  readonly cpuSeconds: number;
  readonly mutedBytes: number;
  readonly eventsLost: number;
}

export async function runArm(arm: Arm, seconds: number, chunk: number): Promise<ArmResult> {
  const w = await startWorkload('/usr/bin/python3', ['-c', STREAMER, String(seconds), String(chunk)]);
  let dataEvents = 0;
  let shippedBytes = 0;
  let payloadBytes = 0;
  // The agent run builds, spans to nowhere (console off, no endpoint), no TCP programs: only the socket capture differs between arms.
  const options = parseRunArgs(['--pid', String(w.pid), '--no-tcp-metrics', '--no-flow-metrics'], { env: {} });
  if (options === 'help') throw new Error('unreachable');
  const agent = createAgent(
    { ...options, capture: { ...options.capture, rescanMs: 0 } },
    {
      logger: silentLogger,
      env: { OTEL_TRACES_EXPORTER: 'none', OTEL_METRICS_EXPORTER: 'none', OTEL_LOGS_EXPORTER: 'none' },
      mute: arm === 'mute',
      tap: (e) => {
        if (e.type !== 'data') return;
        dataEvents++;
        shippedBytes += e.size;
        payloadBytes += e.data.length;
      },
    },
  );
  const engine = agent.engine;
  try {
    await agent.start();
    const batches0 = engine.stats().batchesDelivered;
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    w.go();
    const result = (await w.result()) as { bytes: number };
    const wallSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    await agent.stop();
    const cpu = process.cpuUsage(cpu0);
    const s = engine.stats();
    return {
      arm,
      wallSeconds,
      streamBytes: result.bytes,
      dataEvents,
      shippedBytes,
      payloadBytes,
      batches: s.batchesDelivered - batches0,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      mutedBytes: s.kernel.muted_bytes,
      eventsLost: s.kernel.events_lost + s.recordsDropped,
    };
  } finally {
    await agent.stop();
    w.child.kill();
  }
}

export interface ArmSummary {
  readonly arm: Arm;
  readonly eventsPerSecond: number;
  readonly payloadMBPerSecond: number;
  readonly batchesPerSecond: number;
  readonly cpuPerSecond: number;
  readonly streamMBPerSecond: number;
  readonly mutedMB: number;
  readonly eventsLost: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

export function summarize(runs: readonly ArmResult[]): ArmSummary[] {
  return (['ship', 'mute'] as const).map((arm) => {
    const rs = runs.filter((r) => r.arm === arm);
    const per = (f: (r: ArmResult) => number) => median(rs.map((r) => f(r) / r.wallSeconds));
    return {
      arm,
      eventsPerSecond: per((r) => r.dataEvents),
      payloadMBPerSecond: per((r) => r.payloadBytes / 1e6),
      batchesPerSecond: per((r) => r.batches),
      cpuPerSecond: per((r) => r.cpuSeconds),
      streamMBPerSecond: per((r) => r.streamBytes / 1e6),
      mutedMB: median(rs.map((r) => r.mutedBytes / 1e6)),
      eventsLost: rs.reduce((a, r) => a + r.eventsLost, 0),
    };
  });
}

export function formatTable(summary: readonly ArmSummary[]): string {
  const head = 'arm    events/s to JS   payload MB/s to JS   batches/s   agent CPU s/s   stream MB/s   muted MB   lost';
  const rows = summary.map(
    (s) =>
      `${s.arm.padEnd(6)} ${s.eventsPerSecond.toFixed(0).padStart(14)}   ${s.payloadMBPerSecond.toFixed(1).padStart(18)}   ` +
      `${s.batchesPerSecond.toFixed(0).padStart(9)}   ${s.cpuPerSecond.toFixed(3).padStart(13)}   ${s.streamMBPerSecond.toFixed(0).padStart(11)}   ` +
      `${s.mutedMB.toFixed(0).padStart(8)}   ${String(s.eventsLost).padStart(4)}`,
  );
  return [head, ...rows].join('\n');
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '5' },
      rounds: { type: 'string', default: '3' },
      chunk: { type: 'string', default: '16384' },
      json: { type: 'boolean', default: false },
    },
  });
  const seconds = Number(values.seconds);
  const rounds = Number(values.rounds);
  const chunk = Number(values.chunk);
  if (!(seconds > 0)) throw new Error(`--seconds takes a positive number, got ${values.seconds}`);
  if (!(Number.isInteger(rounds) && rounds > 0)) throw new Error(`--rounds takes a positive integer, got ${values.rounds}`);
  if (!(Number.isInteger(chunk) && chunk >= 8)) throw new Error(`--chunk takes an integer of at least 8, got ${values.chunk}`);
  const runs: ArmResult[] = [];
  for (let i = 0; i < rounds; i++) {
    // Alternate which arm goes first so drift hits both alike.
    const order: Arm[] = i % 2 === 0 ? ['ship', 'mute'] : ['mute', 'ship'];
    for (const arm of order) runs.push(await runArm(arm, seconds, chunk));
  }
  const summary = summarize(runs);
  process.stdout.write((values.json ? JSON.stringify({ runs, summary }, null, 2) : formatTable(summary)) + '\n');
  return 0;
}

if (require.main === module) runMain(main);
