// ebpf_otel.syscall.duration: the kernel's syscall latency histograms as an
// OpenTelemetry histogram per traced process (the process is the resource).
//
//   unit s; attributes syscall.name (the host table's name, e.g. read) and,
//   on failed calls only, error.type (the errno name, e.g. ENOENT);
//   explicit boundaries = the kernel's powers of two (2^10 .. 2^36 ns) in
//   seconds, so every kernel bucket is exactly one OTel bucket;
//   min is not known (not sent); max only when known for the interval.
//
// Cardinality: syscall names x errnos per process, bounded by maxSeries
// (then folded into otel.metric.overflow=true and counted, as for every
// instrument).

import { errnoName, syscallName, type SyscallArch } from '../capture/syscall-names';
import { SYSLAT_BOUNDS_SECONDS, type SyscallDelta } from '../capture/syscall-histograms';
import type { ProcessIdentity } from '../correlate/trace-record';
import type { Attributes, InstrumentSpec } from '../protocols/types';
import type { AggregatedHistogram } from './histograms';

export const SYSCALL_DURATION = 'ebpf_otel.syscall.duration';
export const SYSCALL_NAME_ATTRIBUTE = 'syscall.name';
export const ERROR_TYPE_ATTRIBUTE = 'error.type';
/** Default bound on (syscall, errno) series per process. */
export const DEFAULT_SYSCALL_MAX_SERIES = 1000;

/**
 * Linux's kernel-internal restart codes (include/linux/errno.h, not in the
 * uapi headers): sys_exit sees them for a call interrupted by a signal,
 * before the kernel turns them into EINTR or restarts the call.
 */
const KERNEL_ERRNO_NAMES: Readonly<Record<number, string>> = {
  512: 'ERESTARTSYS',
  513: 'ERESTARTNOINTR',
  514: 'ERESTARTNOHAND',
  516: 'ERESTART_RESTARTBLOCK',
};

/** The errno name of a failed call as sys_exit saw it: the uapi names, then the kernel's restart codes. */
export function syscallErrorName(errno: number): string {
  return KERNEL_ERRNO_NAMES[errno] ?? errnoName(errno);
}

export function syscallDurationInstrument(maxSeries: number = DEFAULT_SYSCALL_MAX_SERIES): InstrumentSpec {
  return {
    name: SYSCALL_DURATION,
    unit: 's',
    description: 'Duration of system calls made by the process, from entry to exit, per syscall and, for failed calls, errno.',
    boundaries: SYSLAT_BOUNDS_SECONDS,
    maxSeries,
  };
}

/** A delta as the histogram's aggregate: ns to seconds, same buckets. */
export function toAggregate(d: SyscallDelta): AggregatedHistogram {
  return { counts: d.buckets, count: d.count, sum: d.sumNs / 1e9, max: d.maxNs === undefined ? undefined : d.maxNs / 1e9 };
}

export interface SyscallMetricsSink {
  recordAggregated(process: ProcessIdentity, instrument: InstrumentSpec, attributes: Attributes, agg: AggregatedHistogram): void;
}

/** Records deltas into the metrics pipeline; one attribute object per (syscall, errno), reused. */
export class SyscallMetricsRecorder {
  private readonly instrument: InstrumentSpec;
  private readonly attributes = new Map<number, Map<number, Attributes>>();
  private cached = 0;

  constructor(
    private readonly sink: SyscallMetricsSink,
    private readonly arch: SyscallArch | undefined,
    maxSeries: number = DEFAULT_SYSCALL_MAX_SERIES,
  ) {
    this.instrument = syscallDurationInstrument(maxSeries);
  }

  record(deltas: readonly SyscallDelta[]): void {
    for (const d of deltas) this.sink.recordAggregated({ tgid: d.tgid }, this.instrument, this.attributesOf(d.nr, d.err), toAggregate(d));
  }

  private attributesOf(nr: number, err: number): Attributes {
    let byErr = this.attributes.get(nr);
    let attrs = byErr?.get(err);
    if (attrs !== undefined) return attrs;
    attrs =
      err === 0
        ? { [SYSCALL_NAME_ATTRIBUTE]: syscallName(nr, this.arch) }
        : { [SYSCALL_NAME_ATTRIBUTE]: syscallName(nr, this.arch), [ERROR_TYPE_ATTRIBUTE]: syscallErrorName(err) };
    // sys_enter sees whatever number a process passes to syscall(2): the
    // cache is capped, past it attribute objects are built per delta.
    if (this.cached < MAX_CACHED_ATTRIBUTE_SETS) {
      if (byErr === undefined) this.attributes.set(nr, (byErr = new Map()));
      byErr.set(err, attrs);
      this.cached++;
    }
    return attrs;
  }
}

const MAX_CACHED_ATTRIBUTE_SETS = 4096;
