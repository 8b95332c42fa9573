// `run`'s syscall metrics: the kernel histograms, read before every metric
// collection, become ebpf_otel.syscall.duration under each process's resource.
//
// A process's exec and exit retire its meter (telemetry.processExec /
// processExited). The calls it made since the last read must land in that
// meter first, so those two are deferred to the end of the batch that
// carried the event, after one read for the whole batch: one read per batch
// with lifecycle events, not one per event. What this leaves: the calls a
// new program makes between its exec and the end of that batch (the loader's
// first calls, within one poll interval) count toward the program before it,
// because the kernel keys histograms by process, not by program.

import type { CaptureEvent } from '../capture/events';
import type { SyscallCollector } from '../capture/syscall-collector';
import type { SyscallMetricsRecorder } from '../otel/syscall-duration';
import type { Logger } from '../util/log';

export class SyscallMetrics {
  private deferred: (() => void)[] = [];

  constructor(
    private readonly collector: SyscallCollector,
    private readonly recorder: SyscallMetricsRecorder,
    private readonly logger: Logger,
  ) {}

  /**
   * An exec or exit: `retire` (the telemetry call for it) runs after the read
   * at the end of this batch. Returns false for other events.
   */
  deferLifecycle(e: CaptureEvent, retire: () => void): boolean {
    if (e.type !== 'exec' && e.type !== 'exit') return false;
    if (e.type === 'exit') this.collector.processExited(e.tgid);
    this.deferred.push(retire);
    return true;
  }

  /** After each batch: if it carried execs or exits, read, then retire their meters. */
  afterBatch(): void {
    if (this.deferred.length === 0) return;
    const retire = this.deferred;
    this.deferred = [];
    this.collect();
    for (const r of retire) r();
  }

  /** Reads the kernel histograms and records what moved since the last read. */
  collect(): void {
    try {
      this.recorder.record(this.collector.collect());
    } catch (err) {
      this.logger.warnOnce('syscall-metrics-read', `cannot read the kernel's syscall histograms: ${(err as Error).message}`);
    }
  }
}
