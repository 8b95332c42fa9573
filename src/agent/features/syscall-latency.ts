// Syscall latency: the kernel's per-(process, syscall, errno) histograms,
// read before every metric collection, become ebpf_otel.syscall.duration
// under each process's resource; slow calls become OTLP log records.
//
// A process's exec and exit retire its meter. The calls it made since the
// last read must land in that meter first, so this feature holds both until
// the end of the batch that carried them, after one read for the whole
// batch: one read per batch with lifecycle events, not one per event. What
// this leaves: the calls a new program makes between its exec and the end
// of that batch (the loader's first calls, within one poll interval) count
// toward the program before it, because the kernel keys histograms by
// process, not by program.

import type { SyscallCaptureOptions } from '../../capture/capture-engine';
import { SyscallCollector } from '../../capture/syscall-collector';
import { HOST_SYSCALL_ARCH, syscallName } from '../../capture/syscall-names';
import type { AgentHealth, AgentMetric } from '../../otel/metrics';
import { slowSyscallLog } from '../../otel/slow-syscall-log';
import { SyscallMetricsRecorder } from '../../otel/syscall-duration';
import type { AgentContext, AgentFeature, Release } from '../feature';

export interface SyscallLatencyOptions {
  /** ebpf_otel.syscall.duration (needs a metric exporter). */
  readonly metrics: boolean;
  /** (syscall, errno) series per process before otel.metric.overflow. */
  readonly maxSeries: number;
  /** The kernel side: slow-call threshold and rate, histogram bound. */
  readonly capture: SyscallCaptureOptions;
}

export const SYSCALL_LATENCY_METRICS: readonly AgentMetric[] = [
  { field: 'syscallsUnmeasuredByReason', name: 'ebpf_otel.syscall.unmeasured', kind: 'counter', unit: '{syscall}', description: 'Syscalls of traced processes missing from ebpf_otel.syscall.duration, per reason (table_full, no_start, compat).', attribute: 'ebpf_otel.reason' },
  { field: 'slowSyscalls', name: 'ebpf_otel.syscall.slow_calls', kind: 'counter', unit: '{syscall}', description: 'Syscalls over the --slow threshold reported by the kernel.' },
  { field: 'slowSyscallsDropped', name: 'ebpf_otel.syscall.slow_calls_dropped', kind: 'counter', unit: '{syscall}', description: 'Syscalls over the --slow threshold not reported because of the kernel rate limit.' },
];

/**
 * The feature, or none: without a metric exporter the histograms would go
 * nowhere, so the kernel side runs only for slow calls; without either,
 * the syscalls group is not loaded (every syscall on the host pays for it).
 */
export function syscallLatency(o: SyscallLatencyOptions, ctx: AgentContext): AgentFeature | undefined {
  const { telemetry, logger } = ctx;
  const metricsOn = o.metrics && telemetry.metrics.enabled;
  const slowOn = (o.capture.slowNs ?? 0) > 0;
  if (!metricsOn && !slowOn) return undefined;
  let slowSyscalls = 0;
  const collector = new SyscallCollector({
    readSyscallHistograms: () => ctx.engine().readSyscallHistograms(),
    deleteSyscallHistograms: (keys) => ctx.engine().deleteSyscallHistograms(keys),
    isSelected: (tgid) => ctx.engine().isSelected(tgid),
  });
  const recorder = metricsOn ? new SyscallMetricsRecorder(telemetry, HOST_SYSCALL_ARCH, o.maxSeries) : undefined;
  /** Exec and exit holds waiting for the read at the end of their batch. */
  let held: Release[] = [];
  const collect = () => {
    if (!recorder) return;
    try {
      recorder.record(collector.collect());
    } catch (err) {
      logger.warnOnce('syscall-metrics-read', `cannot read the kernel's syscall histograms: ${(err as Error).message}`);
    }
  };
  if (recorder) telemetry.beforeMetricCollection(collect);
  return {
    name: 'syscall latency',
    groups: { syscalls: true },
    capture: { syscalls: o.capture },
    healthMetrics: SYSCALL_LATENCY_METRICS,
    onSlowSyscall(e) {
      slowSyscalls++;
      // A log record, not a span event: src/otel/slow-syscall-log.ts says why.
      telemetry.emitLog(slowSyscallLog(e, HOST_SYSCALL_ARCH));
      logger.debug(`slow syscall: pid ${e.tgid} tid ${e.tid} ${e.comm} ${syscallName(e.nr, HOST_SYSCALL_ARCH)} ${e.durationNs} ns`);
    },
    onLifecycle(e, hold) {
      if (!recorder) return;
      if (e.type === 'exit') collector.processExited(e.tgid);
      held.push(hold());
    },
    afterBatch() {
      if (held.length === 0) return;
      const release = held;
      held = [];
      collect();
      for (const r of release) r();
    },
    health(): AgentHealth {
      const k = ctx.engine().stats().kernel;
      return {
        syscallsUnmeasuredByReason: { table_full: k.syslat_map_full, no_start: k.syslat_no_start, compat: k.syslat_compat },
        slowSyscalls,
        slowSyscallsDropped: k.slow_dropped,
      };
    },
    summary() {
      const k = ctx.engine().stats().kernel;
      return [
        `syscalls: ${k.syslat_no_start} exits without a recorded entry, ${k.syslat_map_full} calls not counted (histogram table full), ` +
          `${k.syslat_compat} compat calls not measured; slow calls: ${slowSyscalls} reported, ${k.slow_dropped} over the rate limit`,
      ];
    },
  };
}
