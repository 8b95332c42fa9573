// `ebpf-otel capture`: prints what the kernel captured, one line per event.

import { CaptureEngine, type CaptureOptions } from '../capture/capture-engine';
import { WallClock } from '../capture/clock';
import type { CaptureEvent } from '../capture/events';
import { openKernelSession, resolveCgroupV2 } from '../capture/kernel-session';
import { MAX_PAYLOAD } from '../capture/layout';
import { ProcFs } from '../util/procfs';
import { ConnectionTable } from '../correlate/connection-table';
import type { Logger } from '../util/log';
import { SELECTOR_OPTIONS, UsageError, durationSeconds, nonNegativeInt, parse, selectorsFrom } from '../config/flags';
import { toCaptureJson, toCaptureText } from './capture-format';
import { LineWriter } from './output';
import { runUntilSignal } from './lifecycle';

export const CAPTURE_USAGE = `usage: ebpf-otel capture [selectors] [--json] [--capture-bytes N] [--duration 30s]
selectors (at least one; a process matching any is captured):
  --pid N          a process id (repeatable); its forked children too
  --exe NAME       executable name or glob, e.g. python3, 'node*' (repeatable);
                   processes started later are picked up
  --port N         processes listening on TCP port N (repeatable)
  --cgroup PATH    processes in a cgroup v2 directory (repeatable)
  --container ID   processes of a container (repeatable)
  --all            every process but the agent`;

export async function captureCommand(argv: string[], logger: Logger): Promise<number> {
  const { values } = parse(argv, {
    ...SELECTOR_OPTIONS,
    json: { type: 'boolean' },
    'capture-bytes': { type: 'string' },
    duration: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(CAPTURE_USAGE + '\n');
    return 0;
  }
  const selectors = selectorsFrom(values);
  if (selectors.length === 0) throw new UsageError('capture needs a selector\n' + CAPTURE_USAGE);
  const options: CaptureOptions = {
    selectors,
    ...(values['capture-bytes'] !== undefined
      ? { captureBytes: nonNegativeInt('--capture-bytes', values['capture-bytes'], MAX_PAYLOAD) }
      : {}),
  };
  const duration = values.duration !== undefined ? durationSeconds('--duration', values.duration) : undefined;
  return runCapture(options, { json: values.json ?? false, duration }, logger);
}

export interface CaptureRunOptions {
  readonly json: boolean;
  readonly duration: number | undefined;
  /** Called once every probe is attached. */
  readonly onReady?: () => void | Promise<void>;
}

export async function runCapture(options: CaptureOptions, run: CaptureRunOptions, logger: Logger): Promise<number> {
  const out = new LineWriter(process.stdout, logger);
  const clock = new WallClock();
  const connections = new ConnectionTable(logger);
  const print = (e: CaptureEvent) => {
    if (run.json) {
      if (e.type === 'open' || e.type === 'data' || e.type === 'close') out.line(JSON.stringify(toCaptureJson(e, clock)));
    } else out.line(toCaptureText(e, clock));
  };
  const engine = new CaptureEngine(
    options,
    { openSession: openKernelSession, procfs: new ProcFs(), logger, resolveCgroup: resolveCgroupV2 },
    (e) => {
      print(e);
      const implied = connections.apply(e);
      if (implied) for (const c of implied) print(c);
    },
  );
  const programs = engine.start();
  logger.debug(`attached ${programs.length} programs: ${programs.join(', ')}`);
  process.stderr.write('ebpf-otel: ready\n');
  await run.onReady?.();
  await runUntilSignal(run.duration);
  await engine.drainAndStop();
  await new Promise((r) => setImmediate(r));
  await out.end();
  const s = engine.stats();
  logger.info(
    `captured ${s.kernel.events_sent} events, lost ${s.kernel.events_lost} in the kernel ring buffer, ` +
      `${s.recordsDropped} behind the native queue, ${out.dropped} output lines dropped, ` +
      `${s.kernel.bytes_truncated} bytes truncated`,
  );
  return 0;
}

