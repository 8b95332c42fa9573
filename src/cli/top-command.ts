// `ebpf-otel top`: a live view of the selected processes' TCP health and
// flows per peer, refreshed every interval. On a terminal the screen is
// redrawn in place; piped, one plain block per interval is appended; with
// --json, one JSON object per interval. No payload is captured: every
// connection is muted in the kernel from its start, which still counts its
// bytes (and opens and closes), so no data event ever reaches user space.

import { CaptureEngine, CAPTURE_DEFAULTS, type CaptureOptions } from '../capture/capture-engine';
import { openKernelSession, resolveCgroupV2 } from '../capture/kernel-session';
import { ProcFs } from '../util/procfs';
import { NetworkCollector } from '../network/collector';
import type { Logger } from '../util/log';
import { SELECTOR_OPTIONS, UsageError, durationSeconds, nonNegativeInt, parse, selectorsFrom } from '../config/flags';
import { runUntilSignal } from './lifecycle';
import { LineWriter } from './output';
import { intervalJson, renderTable, TopTable } from './top-view';

export const TOP_USAGE = `usage: ebpf-otel top [selectors] [--interval 1s] [--json] [--max-peers N] [--duration 30s]
Live TCP health and flows per process and peer: bytes sent and received
(per second and in total), connections, failed connects, resets sent and
received, retransmits; sorted by bytes. No payload is captured.
selectors (at least one): --pid N, --exe NAME, --port N, --cgroup PATH, --container ID, --all
  --interval 1s     refresh period (at least 100ms)
  --json            one JSON object per interval (that interval's increments) instead of a table
  --max-peers N     peers per process shown apart (default 100); the rest as "(other peers)"
  --duration 30s    stop after this long (default: until SIGINT/SIGTERM)`;

export interface TopOptions {
  readonly capture: CaptureOptions;
  readonly intervalSeconds: number;
  readonly json: boolean;
  readonly maxPeersPerProcess: number;
  readonly duration: number | undefined;
}

export function parseTopArgs(argv: string[]): TopOptions | 'help' {
  const { values } = parse(argv, {
    ...SELECTOR_OPTIONS,
    interval: { type: 'string' },
    json: { type: 'boolean' },
    'max-peers': { type: 'string' },
    duration: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) return 'help';
  const selectors = selectorsFrom(values);
  if (selectors.length === 0) throw new UsageError('top needs a selector\n' + TOP_USAGE);
  const intervalSeconds = values.interval !== undefined ? durationSeconds('--interval', values.interval) : 1;
  if (intervalSeconds < 0.1) throw new UsageError(`--interval must be at least 100ms, got ${JSON.stringify(values.interval)}`);
  return {
    capture: {
      selectors,
      // Byte counts, opens and closes only: no data event, no payload.
      byteCountsOnly: true,
      captureBytes: 0,
      groups: { ...CAPTURE_DEFAULTS.groups, sockets: true, tcp: true },
    },
    intervalSeconds,
    json: values.json ?? false,
    maxPeersPerProcess: values['max-peers'] !== undefined ? nonNegativeInt('--max-peers', values['max-peers'], 100_000) : 100,
    duration: values.duration !== undefined ? durationSeconds('--duration', values.duration) : undefined,
  };
}

export async function topCommand(argv: string[], logger: Logger): Promise<number> {
  const opts = parseTopArgs(argv);
  if (opts === 'help') {
    process.stdout.write(TOP_USAGE + '\n');
    return 0;
  }
  return runTop(opts, logger);
}

export async function runTop(opts: TopOptions, logger: Logger): Promise<number> {
  const out = new LineWriter(process.stdout, logger);
  const procfs = new ProcFs();
  const tty = process.stdout.isTTY === true && !opts.json;
  // A process's name, as the kernel last reported it (exec, connection events), else /proc.
  const comms = new Map<number, string>();
  const table = new TopTable((pid) => comms.get(pid) ?? procfs.comm(pid) ?? '?');
  let network: NetworkCollector | undefined;
  const engine = new CaptureEngine(
    opts.capture,
    { openSession: openKernelSession, procfs, logger, resolveCgroup: resolveCgroupV2 },
    (e) => {
      if ('comm' in e && e.comm !== '' && e.type !== 'fork') comms.set(e.tgid, e.comm);
      network?.onEvent(e);
    },
  );
  network = new NetworkCollector(
    { readTcpPeers: () => engine.readTcpPeers(), readConnections: () => engine.readConnections(), deleteTcpPeers: (t) => engine.deleteTcpPeers(t) },
    { tcp: true, flows: true, maxPeersPerProcess: opts.maxPeersPerProcess },
  );
  const programs = engine.start();
  logger.debug(`attached ${programs.length} programs: ${programs.join(', ')}`);
  process.stderr.write('ebpf-otel: ready\n');

  let last = process.hrtime.bigint();
  const draw = () => {
    const now = process.hrtime.bigint();
    const seconds = Number(now - last) / 1e9;
    last = now;
    const interval = network!.collect();
    table.apply(interval);
    for (const pid of interval.exited) comms.delete(pid);
    const at = new Date();
    if (opts.json) {
      out.line(JSON.stringify(intervalJson(table.activeRows(), at, round(seconds))));
    } else if (tty) {
      const rows = process.stdout.rows ?? 24;
      const lines = renderTable(table.sorted(), seconds, Math.max(1, rows - 4));
      // Home, clear, then the frame: one write, so the screen never shows half a frame.
      process.stdout.write(`\x1b[H\x1b[2J${header(at, opts, table.size)}\n${lines.join('\n')}\n`);
    } else {
      const rows = table.activeRows();
      out.line(header(at, opts, table.size));
      for (const l of renderTable(rows, seconds, rows.length)) out.line(l);
      out.line('');
    }
  };
  const timer = setInterval(() => {
    try {
      draw();
    } catch (err) {
      logger.warnOnce('top-draw', `cannot read the kernel tables: ${(err as Error).message}`);
    }
  }, opts.intervalSeconds * 1000);
  try {
    await runUntilSignal(opts.duration);
  } finally {
    clearInterval(timer);
    await engine.drainAndStop();
    await out.end();
  }
  const s = engine.stats();
  const n = network.stats();
  logger.info(
    `${n.collects} intervals; data events ${s.kernel.data_events} (payload is never captured); TCP events ignored for want of an owner ${s.kernel.tcp_unowned}, folded ${s.kernel.tcp_peer_folded}, ` +
      `lost ${s.kernel.tcp_peer_lost + s.kernel.tcp_owner_failed}; peers folded ${n.peersFolded}; connections vanished ${n.flows.vanished}; ` +
      `${out.dropped} output lines dropped`,
  );
  return 0;
}

function header(at: Date, opts: TopOptions, rows: number): string {
  return `ebpf-otel top  ${at.toISOString()}  every ${opts.intervalSeconds}s  ${rows} peers`;
}

function round(seconds: number): number {
  return Math.round(seconds * 1000) / 1000;
}
