// The socket capture's user-space path after capture (the agent builds it in
// features/socket-capture.ts; its tests drive it alone):
//   capture events -> connection tracker (streams, protocols) -> L7 records
//   -> trace graph (ids, parents, sampling) -> telemetry (spans, metrics, export)

import type { CaptureEvent } from '../capture/events';
import type { ConnectionEvicted, ConnectionTracker, RequestAbandon, TrackerStats } from '../correlate/connection-tracker';
import type { RequestStart, TraceGraph, TraceGraphStats } from '../correlate/trace-graph';
import type { TraceRecord } from '../correlate/trace-record';
import type { L7Record } from '../protocols/types';

/**
 * What the pipeline tells the capture, once per flush. It never asks
 * anything back: the capture acts on it or not, and the pipeline's view of
 * the traffic stays the same either way.
 */
export interface CaptureFeedback {
  /** Connections nobody will parse: their data need not be sent any more. */
  muteConnections(connIds: readonly number[]): void;
}

/** Where linked records go: spans, metrics, exporters. */
export interface TelemetrySink {
  /** Takes ownership of the array. Must not throw; must not block. */
  record(records: TraceRecord[]): void;
  /** Flushes everything pending, bounded by its own timeout. */
  shutdown(): Promise<void>;
}

export interface PipelineStats {
  readonly tracker: TrackerStats;
  readonly graph: Readonly<TraceGraphStats>;
  readonly recordsByProtocol: Readonly<Record<string, number>>;
  /** Requests started and not yet ended, as the trace graph holds them. */
  readonly pendingRequests: number;
}

/**
 * One step of a batch's timeline. Ends sort before starts at the same
 * instant; a process exit after the records that end at its instant.
 */
type Step =
  | { readonly t: number; readonly order: 0; readonly record: L7Record }
  | { readonly t: number; readonly order: 0; readonly abandon: RequestAbandon }
  | { readonly t: number; readonly order: 0; readonly evicted: ConnectionEvicted }
  | { readonly t: number; readonly order: 1; readonly exit: number }
  | { readonly t: number; readonly order: 2; readonly start: RequestStart };

export class AgentPipeline {
  private readonly byProtocol: Record<string, number> = {};
  /** Process exits of this batch, replayed in the flush's timeline. */
  private exits: Array<{ tgid: number; tsNs: number }> = [];

  constructor(
    private readonly tracker: ConnectionTracker,
    private readonly graph: TraceGraph,
    private readonly telemetry: TelemetrySink,
    private readonly capture?: CaptureFeedback,
  ) {}

  /** One capture event (called by the capture engine's sink). */
  onEvent(e: CaptureEvent): void {
    this.tracker.onEvent(e);
    // Not at once: records of the batch that ended before the exit (their
    // starts decided in an earlier batch) must still find their ids.
    if (e.type === 'exit') this.exits.push({ tgid: e.tgid, tsNs: e.tsNs });
  }

  /**
   * Hands what the batch produced to telemetry: once per batch, not per event.
   * Request starts, abandons, connection evictions, finished records and
   * process exits are replayed to the trace graph in time order, so a call made after a request
   * ended is never parented to it, the client end of a connection is seen
   * before the server end of the same request (its write began before the
   * read ended), however the ring buffer interleaved the CPUs, and a process
   * that exits in the batch that ends its last request does not take that
   * request's ids with it.
   */
  flush(): void {
    const records = this.tracker.take();
    const { starts, abandons, ignored, evicted } = this.tracker.takeSignals();
    if (ignored.length > 0) this.capture?.muteConnections(ignored);
    const exits = this.exits;
    this.exits = [];
    if (records.length === 0 && starts.length === 0 && abandons.length === 0 && exits.length === 0 && evicted.length === 0) return;
    const steps: Step[] = [];
    for (const x of exits) steps.push({ t: x.tsNs, order: 1, exit: x.tgid });
    for (const start of starts) steps.push({ t: start.startNs, order: 2, start });
    for (const abandon of abandons) steps.push({ t: abandon.atNs, order: 0, abandon });
    for (const e of evicted) steps.push({ t: e.atNs, order: 0, evicted: e });
    for (const record of records) steps.push({ t: record.endNs, order: 0, record });
    steps.sort((a, b) => a.t - b.t || a.order - b.order);
    const linked: TraceRecord[] = [];
    for (const s of steps) {
      if ('start' in s) this.graph.started(s.start);
      else if ('exit' in s) this.graph.processExited(s.exit);
      else if ('abandon' in s) this.graph.abandoned(s.abandon.connId, s.abandon.sequence);
      else if ('evicted' in s) this.graph.connectionEvicted(s.evicted.connId);
      else {
        this.byProtocol[s.record.protocol] = (this.byProtocol[s.record.protocol] ?? 0) + 1;
        linked.push(this.graph.completed(s.record));
      }
    }
    if (linked.length > 0) this.telemetry.record(linked);
  }

  /** Periodic: requests past their timeout become error records. */
  tick(nowNs: number): void {
    this.tracker.tick(nowNs);
    this.graph.expire(nowNs);
    this.flush();
  }

  /** Ends every connection and flushes their records (telemetry flushes later, on its own). */
  end(nowNs: number): void {
    this.tracker.closeAll(nowNs);
    this.flush();
  }

  /** end(), then telemetry's shutdown. */
  async shutdown(nowNs: number): Promise<void> {
    this.end(nowNs);
    await this.telemetry.shutdown();
  }

  stats(): PipelineStats {
    return { tracker: this.tracker.stats(), graph: this.graph.stats, recordsByProtocol: { ...this.byProtocol }, pendingRequests: this.graph.pendingCount() };
  }
}
