// The socket capture's user-space path after capture (the agent builds it in
// features/socket-capture.ts; its tests drive it alone):
//   capture events -> connection tracker (streams, protocols) -> L7 records
//   -> trace graph (ids, parents, sampling) -> telemetry (spans, metrics, export)

import type { CaptureEvent } from '../capture/events';
import type { ConnectionTracker, TrackerStats } from '../correlate/connection-tracker';
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
  /** Connections muted from their ciphertext whose TLS plaintext is parsed now: their data is wanted again. */
  unmuteConnections?(connIds: readonly number[]): void;
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

// Each kind of signal in its own time order; comparators made once, not per flush.
const byTsNs = (a: { tsNs: number }, b: { tsNs: number }) => a.tsNs - b.tsNs;
const byStartNs = (a: RequestStart, b: RequestStart) => a.startNs - b.startNs;
const byAtNs = (a: { atNs: number }, b: { atNs: number }) => a.atNs - b.atNs;
const byEndNs = (a: L7Record, b: L7Record) => a.endNs - b.endNs;

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
    const { starts, abandons, ignored, evicted, unignored, links } = this.tracker.takeSignals();
    if (ignored.length > 0) this.capture?.muteConnections(ignored);
    if (unignored.length > 0) this.capture?.unmuteConnections?.(unignored);
    const exits = this.exits;
    this.exits = [];
    if (records.length === 0 && starts.length === 0 && abandons.length === 0 && exits.length === 0 && evicted.length === 0 && links.length === 0) return;
    // The timeline: each list sorted by its time (stable), then merged. At the
    // same instant ends (abandons, evictions, records, in that order) come
    // before process exits, exits before runtime marks, and marks before
    // starts (a mark names the request its connection's next starts work
    // for). Merging instead of sorting one list of wrappers: no object per signal.
    exits.sort(byTsNs);
    links.sort(byAtNs);
    starts.sort(byStartNs);
    abandons.sort(byAtNs);
    evicted.sort(byAtNs);
    records.sort(byEndNs);
    const linked: TraceRecord[] = [];
    let a = 0;
    let v = 0;
    let r = 0;
    let x = 0;
    let l = 0;
    let s = 0;
    for (;;) {
      // The earliest head; ties go to the first list in timeline order.
      let t = Infinity;
      let next = -1;
      if (a < abandons.length) (t = abandons[a]!.atNs), (next = 0);
      if (v < evicted.length && evicted[v]!.atNs < t) (t = evicted[v]!.atNs), (next = 1);
      if (r < records.length && records[r]!.endNs < t) (t = records[r]!.endNs), (next = 2);
      if (x < exits.length && exits[x]!.tsNs < t) (t = exits[x]!.tsNs), (next = 3);
      if (l < links.length && links[l]!.atNs < t) (t = links[l]!.atNs), (next = 5);
      if (s < starts.length && starts[s]!.startNs < t) (t = starts[s]!.startNs), (next = 4);
      if (next === -1) {
        // Only non-finite times are left (or nothing): in list order.
        if (a < abandons.length) next = 0;
        else if (v < evicted.length) next = 1;
        else if (r < records.length) next = 2;
        else if (x < exits.length) next = 3;
        else if (l < links.length) next = 5;
        else if (s < starts.length) next = 4;
        else break;
      }
      switch (next) {
        case 0: {
          const abandon = abandons[a++]!;
          this.graph.abandoned(abandon.connId, abandon.sequence);
          break;
        }
        case 1:
          this.graph.connectionEvicted(evicted[v++]!.connId);
          break;
        case 2: {
          const record = records[r++]!;
          this.byProtocol[record.protocol] = (this.byProtocol[record.protocol] ?? 0) + 1;
          linked.push(this.graph.completed(record));
          break;
        }
        case 3:
          this.graph.processExited(exits[x++]!.tgid);
          break;
        case 5:
          this.graph.link(links[l++]!);
          break;
        default:
          this.graph.started(starts[s++]!);
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
