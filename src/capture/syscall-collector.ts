// Reads the kernel's syscall histograms and hands out what each selected
// process did since the last read, keeping the kernel table clean:
//
//   - a process that exited (processExited) is read one last time, then its
//     entries are deleted;
//   - entries of a process that is not selected are held back one read (a
//     process the kernel selected at exec is confirmed by user space a moment
//     later), then deleted unreported if it is still not selected;
//   - everything else is diffed against the previous read (nothing in the
//     kernel is ever reset, so nothing is lost between a read and a reset).
//
// The source is injected (the capture engine in production, a fake in tests).

import { SyscallHistogramDiffer, type SyscallDelta, type SyscallHistogram } from './syscall-histograms';

export interface SyscallSource {
  readSyscallHistograms(): SyscallHistogram[];
  deleteSyscallHistograms(keys: readonly SyscallHistogram[]): number;
  isSelected(tgid: number): boolean;
}

export interface SyscallCollectorStats {
  /** Reads of the kernel table. */
  reads: number;
  /** Kernel entries at the last read. */
  entries: number;
  /** Entries deleted after their process's final read. */
  deleted: number;
  /** Entries of processes no longer selected, deleted without being reported. */
  discarded: number;
  /** Reads that failed (logged by the caller). */
  readErrors: number;
}

export class SyscallCollector {
  readonly stats: SyscallCollectorStats = { reads: 0, entries: 0, deleted: 0, discarded: 0, readErrors: 0 };
  private readonly differ = new SyscallHistogramDiffer();
  /** Exited since the last read: their next read is their last. */
  private exited = new Set<number>();
  /** Not selected at the last read: deleted if still not selected at this one. */
  private unselected = new Set<number>();

  constructor(private readonly source: SyscallSource) {}

  /** The process is gone: its entries are read once more, then deleted. */
  processExited(tgid: number): void {
    this.exited.add(tgid);
  }

  /** Whether a read is due for exited processes. */
  get pendingExits(): number {
    return this.exited.size;
  }

  /** What each process did since the last read. Throws what the source throws (counted). */
  collect(): SyscallDelta[] {
    let current: SyscallHistogram[];
    try {
      current = this.source.readSyscallHistograms();
    } catch (err) {
      this.stats.readErrors++;
      throw err;
    }
    this.stats.reads++;
    this.stats.entries = current.length;
    const exited = this.exited;
    this.exited = new Set();
    const unselectedBefore = this.unselected;
    this.unselected = new Set();

    const report: SyscallHistogram[] = [];
    const final: SyscallHistogram[] = [];
    const discard: SyscallHistogram[] = [];
    for (const h of current) {
      if (exited.has(h.tgid)) {
        report.push(h);
        final.push(h);
      } else if (this.source.isSelected(h.tgid)) {
        report.push(h);
      } else if (unselectedBefore.has(h.tgid)) {
        discard.push(h);
      } else {
        this.unselected.add(h.tgid);
      }
    }
    const deltas = this.differ.diff(report);
    const gone = [...final, ...discard];
    if (gone.length > 0) {
      this.source.deleteSyscallHistograms(gone);
      for (const h of gone) this.differ.forget(h);
      this.stats.deleted += final.length;
      this.stats.discarded += discard.length;
    }
    return deltas;
  }
}
