// Places every request in a trace, under its true parent when the data says
// which it is, and under none when it does not. Ids are assigned when a
// request starts (its head has been parsed), so a span is never held back
// waiting for its parent, and children started while it runs can name it.
//
// Parents, strongest first:
//  1. traceparent carried by the request (validated by the protocol). SERVER:
//     child of the carried span. CLIENT: takes the carried trace and span id
//     (what the downstream server sees as its parent); no inferred parent.
//  2. SERVER, peer: the agent sees both ends of the TCP connection (the
//     client's tuple is the server's reversed, same network namespace, both
//     opened while the agent watched, so stream positions agree): the server
//     span is the child of the client span whose request began at the same
//     stream position.
//  3. CLIENT, thread: the thread that sends it is serving exactly one SERVER
//     request and has never been seen serving two at once (thread per request).
//  4. CLIENT, event loop: the thread multiplexes requests; link only when the
//     whole process has exactly one SERVER request in flight; otherwise the
//     client span is a root and the ambiguity is counted.
//  5. Nothing: a new trace.
// A missing parent is acceptable; a wrong one never is.

import type { CallKind, CarriedTraceContext, L7Record } from '../protocols/types';
import { newSpanId, newTraceId } from './ids';
import type { ProcessIdentity, Sampling, TraceRecord } from './trace-record';

/** A request whose head the protocol has just parsed. */
export interface RequestStart {
  readonly connId: number;
  readonly tgid: number;
  readonly kind: CallKind;
  readonly sequence: number;
  /** Stream position of the request's first byte on the request side. */
  readonly pos: number;
  readonly startNs: number;
  /** Thread that read (server) or wrote (client) the request head. */
  readonly tid: number;
  readonly traceContext?: CarriedTraceContext;
  /** The connection's tuple, taken when the request started (it may be closed by the time the graph sees this). */
  readonly peer?: PeerKey;
}

/** What the graph needs of a connection for peer matching. */
export interface PeerKey {
  readonly netns: number;
  readonly localAddr: string;
  readonly localPort: number;
  readonly remoteAddr: string;
  readonly remotePort: number;
  /** Both ends count bytes from the connection's start only if the agent saw it start. */
  readonly sawStart: boolean;
}

export type LinkReason = 'traceparent' | 'peer' | 'thread' | 'event_loop' | 'root';

interface Ids {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId?: string;
  readonly traceState?: string;
  readonly sampled: boolean;
  readonly reason: LinkReason;
}

interface InFlight {
  readonly key: string;
  readonly tid: number;
  readonly ids: Ids;
  readonly startNs: number;
}

interface ProcessState {
  /** SERVER requests started and not yet ended, by connId:sequence. */
  readonly inFlight: Map<string, InFlight>;
  /** Threads seen serving two SERVER requests at once. */
  readonly multiplexing: Set<number>;
}

/**
 * How every request start ended, so the starts add up:
 *   started = recorded + abandoned + expired + connectionEvicted + processExited + evicted + pendingCount()
 * and the records: recorded + lateStarts.
 */
export interface TraceGraphStats {
  /** Request starts (a start seen twice counts once): one of the outcomes below, or still pending. */
  started: number;
  /** Starts whose record came. */
  recorded: number;
  /** Starts the protocol gave up (a resync, a bound of its own): no record will come. */
  abandoned: number;
  /** Starts without a record or an abandon for longer than the stale limit. */
  expired: number;
  /** Starts whose connection the connection table evicted (nothing can be concluded of it). */
  connectionEvicted: number;
  /** SERVER starts still in flight when their process's exit was handled. */
  processExited: number;
  readonly linked: Record<LinkReason, number>;
  /** CLIENT requests on a multiplexing thread with more than one SERVER request in flight: left as roots. */
  ambiguous: number;
  /** Records that ended without a start the graph saw (ids assigned at the end instead). */
  lateStarts: number;
  /** Pending entries dropped by the bound. */
  evicted: number;
  sampledOut: number;
}

export interface TraceGraphOptions {
  /** Requests in flight remembered at once (all processes). */
  readonly maxPending?: number;
  /** A SERVER request in flight longer than this no longer parents anything. */
  readonly staleNs?: number;
}

const key = (connId: number, sequence: number) => `${connId}:${sequence}`;

/**
 * The tuple of a connection's client end as a string, from the client end's
 * PeerKey, or from the server end's (`fromServer`: local and remote swap).
 */
function clientTuple(p: PeerKey, fromServer = false): string {
  return fromServer
    ? `${p.netns}|${p.remoteAddr}|${p.remotePort}|${p.localAddr}|${p.localPort}`
    : `${p.netns}|${p.localAddr}|${p.localPort}|${p.remoteAddr}|${p.remotePort}`;
}

interface Pending {
  readonly connId: number;
  readonly ids: Ids;
  readonly tgid: number;
  readonly kind: CallKind;
  readonly startNs: number;
  /** A CLIENT request registered for its server end to find: the client end's tuple and the stream position. */
  readonly peerAt?: { readonly tuple: string; readonly pos: number };
}

export class TraceGraph {
  readonly stats: TraceGraphStats = {
    started: 0,
    recorded: 0,
    abandoned: 0,
    expired: 0,
    connectionEvicted: 0,
    processExited: 0,
    linked: { traceparent: 0, peer: 0, thread: 0, event_loop: 0, root: 0 },
    ambiguous: 0,
    lateStarts: 0,
    evicted: 0,
    sampledOut: 0,
  };
  /** Ids of started requests, by connId:sequence, until their record is made. */
  private readonly pending = new Map<string, Pending>();
  /** CLIENT requests by the client end's tuple, then stream position, for the server end to find. */
  private readonly clientsByPeer = new Map<string, Map<number, Ids>>();
  private readonly processes = new Map<number, ProcessState>();
  private readonly maxPending: number;
  private readonly staleNs: number;

  constructor(
    private readonly sampling: Sampling,
    private readonly identify: (tgid: number) => ProcessIdentity = (tgid) => ({ tgid }),
    options: TraceGraphOptions = {},
  ) {
    this.maxPending = options.maxPending ?? 100_000;
    this.staleNs = options.staleNs ?? 300e9;
  }

  /** A request head was parsed: decide its ids now. */
  started(s: RequestStart): void {
    const k = key(s.connId, s.sequence);
    if (this.pending.has(k)) return;
    this.stats.started++;
    const ids = s.kind === 'server' ? this.serverIds(s) : this.clientIds(s);
    this.stats.linked[ids.reason]++;
    this.bound();
    if (s.kind === 'server') {
      this.pending.set(k, { connId: s.connId, ids, tgid: s.tgid, kind: s.kind, startNs: s.startNs });
      const proc = this.process(s.tgid);
      for (const f of proc.inFlight.values()) if (f.tid === s.tid) proc.multiplexing.add(s.tid);
      proc.inFlight.set(k, { key: k, tid: s.tid, ids, startNs: s.startNs });
    } else if (s.peer?.sawStart) {
      const tuple = clientTuple(s.peer);
      let byPos = this.clientsByPeer.get(tuple);
      if (byPos === undefined) this.clientsByPeer.set(tuple, (byPos = new Map()));
      byPos.set(s.pos, ids);
      this.pending.set(k, { connId: s.connId, ids, tgid: s.tgid, kind: s.kind, startNs: s.startNs, peerAt: { tuple, pos: s.pos } });
    } else {
      this.pending.set(k, { connId: s.connId, ids, tgid: s.tgid, kind: s.kind, startNs: s.startNs });
    }
  }

  /** A request will never become a record (the protocol dropped it): forget it. */
  abandoned(connId: number, sequence: number): void {
    if (this.end(key(connId, sequence))) this.stats.abandoned++;
  }

  /**
   * The connection table evicted a connection: its session is gone, so its
   * pending requests will never end. One pass over the requests in flight
   * (evictions are the table's overflow, not the common case).
   */
  connectionEvicted(connId: number): void {
    for (const [k, p] of this.pending) {
      if (p.connId === connId && this.end(k)) this.stats.connectionEvicted++;
    }
  }

  /** The record of a request: its ids, decided at its start (or now, if its start was not seen). */
  completed(record: L7Record): TraceRecord {
    const k = key(record.connId, record.sequence);
    let entry = this.pending.get(k);
    if (!entry) {
      // Started before this graph existed (or evicted): decide from what the record says.
      this.stats.lateStarts++;
      const ids = record.traceContext
        ? this.fromCarried(record.kind, record.traceContext)
        : this.root();
      this.stats.linked[ids.reason]++;
      entry = { connId: record.connId, ids, tgid: record.tgid, kind: record.kind, startNs: record.startNs };
    } else {
      this.stats.recorded++;
    }
    this.end(k);
    const { ids } = entry;
    if (!ids.sampled) this.stats.sampledOut++;
    return {
      record,
      traceId: ids.traceId,
      spanId: ids.spanId,
      ...(ids.parentSpanId !== undefined ? { parentSpanId: ids.parentSpanId } : {}),
      ...(ids.traceState !== undefined ? { traceState: ids.traceState } : {}),
      sampled: ids.sampled,
      process: this.identify(record.tgid),
    };
  }

  /** Forgets everything of a process that exited. */
  processExited(tgid: number): void {
    const proc = this.processes.get(tgid);
    if (proc) for (const k of proc.inFlight.keys()) if (this.pending.delete(k)) this.stats.processExited++;
    this.processes.delete(tgid);
  }

  /**
   * Forgets requests started longer ago than the stale limit: a SERVER request
   * in flight that long must not parent later calls, and a request whose
   * connection was evicted will never end otherwise.
   */
  expire(nowNs: number): void {
    for (const [k, p] of this.pending) {
      // Insertion order is start order: stop at the first fresh one.
      if (nowNs - p.startNs <= this.staleNs) break;
      if (this.end(k)) this.stats.expired++;
    }
    for (const [tgid, proc] of this.processes) {
      if (proc.inFlight.size === 0 && proc.multiplexing.size === 0) this.processes.delete(tgid);
    }
  }

  pendingCount(): number {
    return this.pending.size;
  }

  private serverIds(s: RequestStart): Ids {
    if (s.traceContext) return this.fromCarried('server', s.traceContext);
    const peer = s.peer;
    if (peer?.sawStart) {
      // The client end's tuple is ours reversed.
      const client = this.clientsByPeer.get(clientTuple(peer, true))?.get(s.pos);
      if (client) return this.child(client, 'peer');
    }
    return this.root();
  }

  private clientIds(s: RequestStart): Ids {
    if (s.traceContext) return this.fromCarried('client', s.traceContext);
    const proc = this.processes.get(s.tgid);
    if (!proc || proc.inFlight.size === 0) return this.root();
    if (!proc.multiplexing.has(s.tid)) {
      let only: InFlight | undefined;
      let n = 0;
      for (const f of proc.inFlight.values()) {
        if (f.tid === s.tid) {
          only = f;
          n++;
        }
      }
      if (n === 1) return this.child(only!.ids, 'thread');
      if (n === 0) return this.root(); // this thread serves nothing: a background job or a handoff
    }
    // An event loop: which request caused this call is not in the syscalls.
    if (proc.inFlight.size === 1) return this.child(proc.inFlight.values().next().value!.ids, 'event_loop');
    this.stats.ambiguous++;
    return this.root();
  }

  private fromCarried(kind: CallKind, c: CarriedTraceContext): Ids {
    const sampled = this.sampling.decide(c.traceId, (c.traceFlags & 1) === 1);
    const traceState = c.traceState !== undefined ? { traceState: c.traceState } : {};
    return kind === 'server'
      ? { traceId: c.traceId, spanId: newSpanId(), parentSpanId: c.spanId, sampled, reason: 'traceparent', ...traceState }
      : { traceId: c.traceId, spanId: c.spanId, sampled, reason: 'traceparent', ...traceState };
  }

  private child(parent: Ids, reason: LinkReason): Ids {
    const traceState = parent.traceState !== undefined ? { traceState: parent.traceState } : {};
    // Same trace, same sampling decision as the parent.
    return { traceId: parent.traceId, spanId: newSpanId(), parentSpanId: parent.spanId, sampled: parent.sampled, reason, ...traceState };
  }

  private root(): Ids {
    const traceId = newTraceId();
    return { traceId, spanId: newSpanId(), sampled: this.sampling.decide(traceId, undefined), reason: 'root' };
  }

  /** Forgets a pending request; false when it was not pending. */
  private end(k: string): boolean {
    const entry = this.pending.get(k);
    if (!entry) return false;
    this.pending.delete(k);
    if (entry.kind === 'server') {
      const proc = this.processes.get(entry.tgid);
      proc?.inFlight.delete(k);
    } else if (entry.peerAt !== undefined) {
      const byPos = this.clientsByPeer.get(entry.peerAt.tuple);
      // Only this request's entry: a later request at the same position (a new connection reusing the tuple) keeps its own.
      if (byPos !== undefined && byPos.get(entry.peerAt.pos) === entry.ids) {
        byPos.delete(entry.peerAt.pos);
        if (byPos.size === 0) this.clientsByPeer.delete(entry.peerAt.tuple);
      }
    }
    return true;
  }

  private bound(): void {
    while (this.pending.size >= this.maxPending) {
      this.end(this.pending.keys().next().value!);
      this.stats.evicted++;
    }
  }

  private process(tgid: number): ProcessState {
    let p = this.processes.get(tgid);
    if (!p) this.processes.set(tgid, (p = { inFlight: new Map(), multiplexing: new Set() }));
    return p;
  }
}
