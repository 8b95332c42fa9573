// Gives each L7 record its place in a trace.
//
// What links a record, strongest first:
// 1. A W3C traceparent the request carried (parsed and validated by the
//    protocol). A SERVER span becomes the child of the carried span id, in
//    the carried trace. A CLIENT span takes the carried trace id and span id:
//    that is the id the downstream server sees as its parent. The context
//    applies to that one request only, never to later ones on the connection.
// 2. Nothing: a new trace, this span its root.
// A missing parent is acceptable; a wrong one never is.

import type { L7Record } from '../protocols/types';
import { newSpanId, newTraceId } from './ids';
import type { ProcessIdentity, Sampling, TraceRecord } from './trace-record';

export interface LinkerStats {
  /** Records that joined a trace from a carried traceparent. */
  carriedContext: number;
  roots: number;
  sampledOut: number;
}

export class TraceLinker {
  readonly stats: LinkerStats = { carriedContext: 0, roots: 0, sampledOut: 0 };

  constructor(
    private readonly sampling: Sampling,
    private readonly identify: (tgid: number) => ProcessIdentity = (tgid) => ({ tgid }),
  ) {}

  link(record: L7Record): TraceRecord {
    const process = this.identify(record.tgid);
    const carried = record.traceContext;
    let out: TraceRecord;
    if (carried) {
      this.stats.carriedContext++;
      const sampled = this.sampling.decide(carried.traceId, (carried.traceFlags & 1) === 1);
      const traceState = carried.traceState !== undefined ? { traceState: carried.traceState } : {};
      out =
        record.kind === 'server'
          ? { record, traceId: carried.traceId, spanId: newSpanId(), parentSpanId: carried.spanId, sampled, process, ...traceState }
          : { record, traceId: carried.traceId, spanId: carried.spanId, sampled, process, ...traceState };
    } else {
      this.stats.roots++;
      const traceId = newTraceId();
      out = { record, traceId, spanId: newSpanId(), sampled: this.sampling.decide(traceId, undefined), process };
    }
    if (!out.sampled) this.stats.sampledOut++;
    return out;
  }
}
