// `ebpf-otel syscalls`: a live, top-like view of the selected processes'
// syscalls, from the kernel's latency histograms: per process, syscalls by
// total time spent in them over the last interval. Redraws in place on a
// terminal; appends one block per interval when piped; --json prints one
// object per interval. With --slow, each call over the threshold prints as a
// line as it comes.

import { CaptureEngine, SYSCALL_DEFAULTS, type CaptureOptions } from '../capture/capture-engine';
import { WallClock } from '../capture/clock';
import type { SlowSyscallEvent } from '../capture/events';
import { openKernelSession, resolveCgroupV2 } from '../capture/kernel-session';
import { ProcFs } from '../util/procfs';
import { SyscallCollector } from '../capture/syscall-collector';
import { HOST_SYSCALL_ARCH } from '../capture/syscall-names';
import type { Logger } from '../util/log';
import { SELECTOR_OPTIONS, UsageError, durationSeconds, parse, positiveInt, selectorsFrom } from '../config/flags';
import { LineWriter } from './output';
import { runUntilSignal } from './lifecycle';
import { intervalJson, intervalText, renderInterval, slowSyscallJson, slowSyscallText, summarize } from './syscalls-format';

export const SYSCALLS_USAGE = `usage: ebpf-otel syscalls [selectors] [options]
selectors (at least one): --pid N, --exe NAME, --port N, --cgroup PATH, --container ID, --all
options:
  --interval 1s       refresh period (default 1s)
  --json              one JSON object per interval (and per slow call) instead of the table
  --top N             syscalls shown per process (default 15; --json lists all)
  --slow DURATION     print each call slower than this as it returns (e.g. 40ms), with what its fd named
  --slow-rate N       at most N slow-call lines per second per CPU (default ${SYSCALL_DEFAULTS.slowPerSecond}; the rest are counted)
  --duration 30s      stop after this long (default: until SIGINT/SIGTERM)
p50/p99 are the upper bounds of the log2 buckets holding those calls.`;

export interface SyscallsOptions {
  readonly capture: CaptureOptions;
  readonly intervalMs: number;
  readonly json: boolean;
  readonly top: number;
  readonly duration: number | undefined;
}

export function parseSyscallsArgs(argv: string[]): SyscallsOptions | 'help' {
  const { values } = parse(argv, {
    ...SELECTOR_OPTIONS,
    interval: { type: 'string' },
    json: { type: 'boolean' },
    top: { type: 'string' },
    slow: { type: 'string' },
    'slow-rate': { type: 'string' },
    duration: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) return 'help';
  const selectors = selectorsFrom(values);
  if (selectors.length === 0) throw new UsageError('syscalls needs a selector\n' + SYSCALLS_USAGE);
  const intervalMs = values.interval !== undefined ? Math.round(durationSeconds('--interval', values.interval) * 1000) : 1000;
  if (intervalMs < 100) throw new UsageError(`--interval must be at least 100ms, got ${values.interval}`);
  const slowNs = values.slow !== undefined ? Math.round(durationSeconds('--slow', values.slow) * 1e9) : 0;
  if (values.slow !== undefined && slowNs <= 0) throw new UsageError(`--slow must be longer than 0, got ${values.slow}`);
  return {
    capture: {
      selectors,
      groups: { sockets: false, syscalls: true, tcp: false, tls: false, links: false },
      syscalls: {
        slowNs,
        ...(values['slow-rate'] !== undefined ? { slowPerSecond: positiveInt('--slow-rate', values['slow-rate'], 1_000_000) } : {}),
      },
    },
    intervalMs,
    json: values.json ?? false,
    top: values.top !== undefined ? positiveInt('--top', values.top, 10_000) : 15,
    duration: values.duration !== undefined ? durationSeconds('--duration', values.duration) : undefined,
  };
}

export async function syscallsCommand(argv: string[], logger: Logger): Promise<number> {
  const opts = parseSyscallsArgs(argv);
  if (opts === 'help') {
    process.stdout.write(SYSCALLS_USAGE + '\n');
    return 0;
  }
  return runSyscalls(opts, logger);
}

export async function runSyscalls(opts: SyscallsOptions, logger: Logger): Promise<number> {
  const out = new LineWriter(process.stdout, logger);
  const tty = process.stdout.isTTY === true && !opts.json;
  const clock = new WallClock();
  const procfs = new ProcFs();
  const arch = HOST_SYSCALL_ARCH;
  // Names of processes seen, kept after they exit for their last interval; bounded by the selection.
  const comms = new Map<number, string>();
  const commOf = (pid: number) => {
    let c = comms.get(pid);
    if (c === undefined) {
      c = procfs.comm(pid);
      if (c !== undefined) comms.set(pid, c);
    }
    return c;
  };
  const exitedSinceDraw: number[] = [];
  let slowPrinted = 0;
  const onSlow = (e: SlowSyscallEvent) => {
    slowPrinted++;
    const wall = clock.toWallNs(e.tsEnterNs);
    out.line(opts.json ? JSON.stringify(slowSyscallJson(e, wall, arch)) : slowSyscallText(e, wall, arch));
  };
  const engine = new CaptureEngine(
    opts.capture,
    { openSession: openKernelSession, procfs, logger, resolveCgroup: resolveCgroupV2, onSlowSyscall: onSlow },
    (e) => {
      if (e.type === 'exit') {
        comms.set(e.tgid, e.comm);
        collector.processExited(e.tgid);
        exitedSinceDraw.push(e.tgid);
      } else if (e.type === 'exec') {
        comms.set(e.tgid, e.comm);
      }
    },
  );
  const collector = new SyscallCollector(engine);
  let last = Date.now();
  const draw = () => {
    const now = Date.now();
    let deltas;
    try {
      deltas = collector.collect();
    } catch (err) {
      logger.warnOnce('syscalls-read', `cannot read the kernel's syscall histograms: ${(err as Error).message}`);
      return;
    }
    const processes = summarize(deltas, arch, commOf);
    const at = new Date(now);
    const intervalMs = now - last;
    last = now;
    if (opts.json) {
      out.line(JSON.stringify(intervalJson(processes, { at, intervalMs })));
    } else {
      out.line(renderInterval(intervalText(processes, { at, intervalMs, top: opts.top }), tty));
    }
    // Exited processes had their last interval: their names can go.
    for (const pid of exitedSinceDraw.splice(0)) comms.delete(pid);
  };

  const programs = engine.start();
  logger.debug(`attached ${programs.length} programs: ${programs.join(', ')}`);
  process.stderr.write('ebpf-otel: ready\n');
  const timer = setInterval(draw, opts.intervalMs);
  try {
    await runUntilSignal(opts.duration);
  } finally {
    clearInterval(timer);
    // The last partial interval, from the histograms as stop() read them.
    await engine.drainAndStop();
    draw();
    await out.end();
  }
  const s = engine.stats();
  logger.info(
    `syscalls: ${collector.stats.reads} reads, ${s.kernel.syslat_no_start} exits without a recorded entry, ` +
      `${s.kernel.syslat_map_full} calls not counted (histogram table full), ${s.kernel.syslat_compat} compat calls not measured; ` +
      `slow calls: ${slowPrinted} printed, ${s.kernel.slow_dropped} over the rate limit, ${s.kernel.events_lost} lost in the ring buffer; ` +
      `${out.dropped} output lines dropped`,
  );
  return 0;
}
