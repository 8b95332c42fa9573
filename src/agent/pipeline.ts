// The agent's user-space path after capture, in one place so the CLI, the
// benchmarks and the tests drive exactly the same code:
//   capture events -> connection tracker (streams, protocols) -> L7 records
//   -> trace linker (ids, parents, sampling) -> telemetry (spans, metrics, export)

import type { CaptureEvent } from '../capture/events';
import type { ConnectionTracker, TrackerStats } from '../correlate/connection-tracker';
import type { LinkerStats, TraceLinker } from '../correlate/trace-linker';
import type { TraceRecord } from '../correlate/trace-record';

/** Where linked records go: spans, metrics, exporters. */
export interface TelemetrySink {
  /** Takes ownership of the array. Must not throw; must not block. */
  record(records: TraceRecord[]): void;
  /** Flushes everything pending, bounded by its own timeout. */
  shutdown(): Promise<void>;
}

export interface PipelineStats {
  readonly tracker: TrackerStats;
  readonly linker: Readonly<LinkerStats>;
  readonly recordsByProtocol: Readonly<Record<string, number>>;
}

export class AgentPipeline {
  private readonly byProtocol: Record<string, number> = {};

  constructor(
    private readonly tracker: ConnectionTracker,
    private readonly linker: TraceLinker,
    private readonly telemetry: TelemetrySink,
  ) {}

  /** One capture event (called by the capture engine's sink). */
  onEvent(e: CaptureEvent): void {
    this.tracker.onEvent(e);
  }

  /** Hands what the batch produced to telemetry: once per batch, not per event. */
  flush(): void {
    const records = this.tracker.take();
    if (records.length === 0) return;
    const linked = new Array<TraceRecord>(records.length);
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!;
      this.byProtocol[r.protocol] = (this.byProtocol[r.protocol] ?? 0) + 1;
      linked[i] = this.linker.link(r);
    }
    this.telemetry.record(linked);
  }

  /** Periodic: requests past their timeout become error records. */
  tick(nowNs: number): void {
    this.tracker.tick(nowNs);
    this.flush();
  }

  /** Ends every connection, flushes their records, then telemetry. */
  async shutdown(nowNs: number): Promise<void> {
    this.tracker.closeAll(nowNs);
    this.flush();
    await this.telemetry.shutdown();
  }

  stats(): PipelineStats {
    return { tracker: this.tracker.stats(), linker: { ...this.linker.stats }, recordsByProtocol: { ...this.byProtocol } };
  }
}
