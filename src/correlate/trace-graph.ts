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
//     client's tuple is the server's reversed, same network namespace): the
//     server span is the child of the client span with the same wire id
//     (HTTP/2 stream id: both ends agree whenever the agent attached) or,
//     for a protocol without one, whose request began at the same stream
//     position (both ends opened while the agent watched, so positions agree).
//  3. CLIENT, runtime (nginx, go, node): the process's runtime said which
//     SERVER request the connection works for (a link event: its upstream
//     module, its goroutine, the preload's AsyncLocalStorage) and that request
//     is still in flight. A process whose runtime links (nginx, Go) takes no
//     parent from the rules below: a connection the runtime did not mark, or
//     marked for no request, starts roots. See link().
//  4. CLIENT, thread: the thread that sends it is serving exactly one SERVER
//     request and has never been seen serving two at once (thread per request).
//  5. CLIENT, event loop: the thread multiplexes requests; link only when the
//     whole process has exactly one SERVER request in flight; otherwise the
//     client span is a root and the ambiguity is counted.
//  6. Nothing: a new trace.
// A missing parent is acceptable; a wrong one never is.

import type { LinkEvent, LinkRule } from '../capture/events';
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
  /** The request's id on the wire, the same at both ends (RequestStarted.peerId); absent: matched by `pos`. */
  readonly peerId?: number;
}

/** What the graph needs of a connection for peer matching. */
export interface PeerKey {
  readonly netns: number;
  readonly localAddr: string;
  readonly localPort: number;
  readonly remoteAddr: string;
  readonly remotePort: number;
  /** Both ends count bytes from the connection's start only if the agent saw it start (needed to match by position, not by peerId). */
  readonly sawStart: boolean;
}

export type LinkReason = 'traceparent' | 'peer' | LinkRule | 'thread' | 'event_loop' | 'root';

export const LINK_RULES: readonly LinkRule[] = ['nginx', 'go', 'node'];

/** A runtime named the request a client connection works for (capture's LinkEvent, at its place in the timeline). */
export type RuntimeLink = Pick<LinkEvent, 'tgid' | 'rule' | 'op' | 'serverConnId' | 'clientConnId' | 'serverRole' | 'clientRole' | 'serverFd' | 'clientFd'> & {
  readonly atNs: number;
};

/**
 * Why a runtime's mark linked nothing:
 *   not_socket  an fd it named is no followed TCP socket (with wrong offsets, the fds read are garbage)
 *   wrong_role  its server connection is a client's, or its client connection a server's
 *   no_request  no SERVER request in flight on the server connection
 *   ambiguous   more than one in flight there (HTTP/2 downstream, pipelining): which one is not said
 *   ended       the request it named ended before the CLIENT request started
 *   unmarked    a CLIENT request on a connection the runtime never marked (nginx, Go: a root)
 *   rule_off    the process failed its check (see TraceGraphStats.runtime): marks ignored
 */
export type LinkRejection = 'not_socket' | 'wrong_role' | 'no_request' | 'ambiguous' | 'ended' | 'unmarked' | 'rule_off';
export const LINK_REJECTIONS: readonly LinkRejection[] = ['not_socket', 'wrong_role', 'no_request', 'ambiguous', 'ended', 'unmarked', 'rule_off'];

/** One runtime's marks and what became of them (links themselves are in TraceGraphStats.linked[rule]). */
export interface RuntimeLinkStats {
  sets: number;
  clears: number;
  readonly rejected: Record<LinkRejection, number>;
  /** Processes whose first marks failed the check (an fd not a followed socket, or of the wrong role): the rule is off for them. */
  checksFailed: number;
}

/** A process's first LINK_PROOF_SETS marks must all name followed sockets of the right roles, or its rule is switched off. */
export const LINK_PROOF_SETS = 16;
/** Client connections with a runtime mark, remembered at most (all processes); the oldest is forgotten first. */
const MAX_MARKED_CONNECTIONS = 65536;

/**
 * The ids decided for a request. Always built by ids() with every field set
 * (absent ones undefined), so V8 sees one object shape on the hot path.
 */
interface Ids {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string | undefined;
  readonly traceState: string | undefined;
  readonly sampled: boolean;
  readonly reason: LinkReason;
}

function ids(traceId: string, spanId: string, parentSpanId: string | undefined, traceState: string | undefined, sampled: boolean, reason: LinkReason): Ids {
  return { traceId, spanId, parentSpanId, traceState, sampled, reason };
}

/** A request's key in the graph's tables (see requestKey). */
type RequestKey = number | string;

interface ProcessState {
  /** SERVER requests started and not yet ended, by request key (the pending entry itself). */
  readonly inFlight: Map<RequestKey, Pending>;
  /** Threads seen serving two SERVER requests at once. */
  readonly multiplexing: Set<number>;
  /** The runtime that marks its connections (its first link event's rule); undefined: none seen. */
  rule: LinkRule | undefined;
  /** Marks (SET) checked against LINK_PROOF_SETS so far. */
  proven: number;
  /** Its marks failed the check: ignored from then on. */
  ruleOff: boolean;
  /** Its client connections with a mark (to forget them with the process). */
  readonly marked: Set<number>;
}

/** A runtime's mark on a client connection: the SERVER request it works for (key and ids), or none (a clear, or nothing nameable). */
interface Mark {
  readonly rule: LinkRule;
  readonly tgid: number;
  readonly serverKey: RequestKey | undefined;
  readonly ids: Ids | undefined;
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
  /** Runtime marks, per rule. */
  readonly runtime: Record<LinkRule, RuntimeLinkStats>;
  /** Marks forgotten by the bound on marked connections. */
  marksEvicted: number;
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
  /** A process's runtime marks failed the check and are ignored from now on (for a log line). */
  readonly onRuleOff?: (tgid: number, rule: LinkRule, why: string) => void;
}

function newRuntimeStats(): RuntimeLinkStats {
  return { sets: 0, clears: 0, rejected: Object.fromEntries(LINK_REJECTIONS.map((r) => [r, 0])) as Record<LinkRejection, number>, checksFailed: 0 };
}

const SEQUENCE_RANGE = 2 ** 21;
const CONN_ID_RANGE = 2 ** 32;

/**
 * One key per (connId, sequence): a number while connId * 2^21 + sequence is
 * exact (both non-negative integers in range: connection ids count up from 1,
 * sequences from 0), else a string, never equal to a number. A number key
 * needs no string built and hashed per request.
 */
function requestKey(connId: number, sequence: number): RequestKey {
  return connId >= 0 && connId < CONN_ID_RANGE && sequence >= 0 && sequence < SEQUENCE_RANGE && Number.isInteger(connId) && Number.isInteger(sequence)
    ? connId * SEQUENCE_RANGE + sequence
    : `${connId}:${sequence}`;
}

/**
 * Where a request sits on its connection, as both ends name it: -peerId
 * (stream ids are >= 1, so never equal to a position >= 0), else the stream
 * position when both ends count from the start; undefined when the ends
 * cannot be matched (no tuple, joined mid-stream, or a peerId that is not
 * >= 1, which could meet a position).
 */
function peerSlot(s: RequestStart): number | undefined {
  if (s.peer === undefined) return undefined;
  if (s.peerId !== undefined) return s.peerId >= 1 ? -s.peerId : undefined;
  return s.peer.sawStart ? s.pos : undefined;
}

/** The identity of a process as the graph hands it on when none is given: one object per process met last, not one per record. */
function lastProcessIdentity(): (tgid: number) => ProcessIdentity {
  let last: ProcessIdentity = Object.freeze({ tgid: -1 });
  return (tgid) => (last.tgid === tgid ? last : (last = Object.freeze({ tgid })));
}

/**
 * The tuple of a connection's client end as a string, from the client end's
 * PeerKey, or from the server end's (`fromServer`: local and remote swap).
 */
function clientTuple(p: PeerKey, fromServer = false): string {
  // The tracker hands out one PeerKey per connection: the string is built
  // (and hashed, as a Map key) once per connection, not once per request.
  const cache = fromServer ? reversedTuples : clientTuples;
  let t = cache.get(p);
  if (t === undefined) {
    t = fromServer
      ? `${p.netns}|${p.remoteAddr}|${p.remotePort}|${p.localAddr}|${p.localPort}`
      : `${p.netns}|${p.localAddr}|${p.localPort}|${p.remoteAddr}|${p.remotePort}`;
    cache.set(p, t);
  }
  return t;
}
const clientTuples = new WeakMap<PeerKey, string>();
const reversedTuples = new WeakMap<PeerKey, string>();

/** A started request, until its record comes; one fixed shape (see newPending). */
interface Pending {
  readonly connId: number;
  readonly ids: Ids;
  readonly tgid: number;
  readonly kind: CallKind;
  readonly startNs: number;
  /** Thread that read (server) or wrote (client) the request head. */
  readonly tid: number;
  /** A CLIENT request registered for its server end to find: the client end's tuple (undefined if not registered) and its peerSlot. */
  readonly peerTuple: string | undefined;
  readonly peerSlot: number;
}

function newPending(connId: number, ids: Ids, tgid: number, kind: CallKind, startNs: number, tid: number, peerTuple: string | undefined, peerSlot: number): Pending {
  return { connId, ids, tgid, kind, startNs, tid, peerTuple, peerSlot };
}

export class TraceGraph {
  readonly stats: TraceGraphStats = {
    started: 0,
    recorded: 0,
    abandoned: 0,
    expired: 0,
    connectionEvicted: 0,
    processExited: 0,
    linked: { traceparent: 0, peer: 0, nginx: 0, go: 0, node: 0, thread: 0, event_loop: 0, root: 0 },
    ambiguous: 0,
    runtime: { nginx: newRuntimeStats(), go: newRuntimeStats(), node: newRuntimeStats() },
    marksEvicted: 0,
    lateStarts: 0,
    evicted: 0,
    sampledOut: 0,
  };
  /** Started requests, by request key, until their record is made. */
  private readonly pending = new Map<RequestKey, Pending>();
  /** CLIENT requests by the client end's tuple, then peerSlot, for the server end to find. */
  private readonly clientsByPeer = new Map<string, Map<number, Ids>>();
  private readonly processes = new Map<number, ProcessState>();
  /** Runtime marks by client connection id (ids are unique per run); insertion order is age. */
  private readonly marks = new Map<number, Mark>();
  private readonly maxPending: number;
  private readonly staleNs: number;
  private readonly onRuleOff: TraceGraphOptions['onRuleOff'];

  constructor(
    private readonly sampling: Sampling,
    private readonly identify: (tgid: number) => ProcessIdentity = lastProcessIdentity(),
    options: TraceGraphOptions = {},
  ) {
    this.maxPending = options.maxPending ?? 100_000;
    this.staleNs = options.staleNs ?? 300e9;
    this.onRuleOff = options.onRuleOff;
  }

  /**
   * A runtime marked a client connection, at this point of the timeline: the
   * request it names is the one SERVER request in flight now on the server
   * connection, or nothing. A process's first marks are its proof: an fd
   * that is no followed socket, or a socket of the wrong role, means the
   * probe reads the wrong places in this build, and its rule is switched off.
   */
  link(l: RuntimeLink): void {
    const st = this.stats.runtime[l.rule];
    const proc = this.process(l.tgid);
    proc.rule ??= l.rule;
    if (l.op === 'clear') st.clears++;
    else st.sets++;
    if (proc.ruleOff) {
      st.rejected.rule_off++;
      return;
    }
    if (l.clientConnId === 0) {
      // A clear of a fd that is no socket says nothing; a set through one fails the proof.
      if (l.op === 'set') this.reject(proc, l, 'not_socket', `client fd ${l.clientFd} is not a followed TCP socket`);
      return;
    }
    if (l.op === 'clear') {
      this.mark(proc, l, undefined, undefined);
      return;
    }
    if (l.serverConnId === 0) {
      this.reject(proc, l, 'not_socket', `server fd ${l.serverFd} is not a followed TCP socket`);
      return;
    }
    if (l.serverRole === 'client' || l.clientRole === 'server') {
      this.reject(proc, l, 'wrong_role', `server fd ${l.serverFd} is a ${l.serverRole} connection, client fd ${l.clientFd} a ${l.clientRole} one`);
      return;
    }
    if (proc.proven < LINK_PROOF_SETS) proc.proven++;
    let found: RequestKey | undefined;
    let n = 0;
    for (const [k, f] of proc.inFlight) {
      if (f.connId !== l.serverConnId) continue;
      if (n++ === 0) found = k;
      else break;
    }
    if (n === 1) {
      this.mark(proc, l, found, proc.inFlight.get(found!)!.ids);
      return;
    }
    st.rejected[n === 0 ? 'no_request' : 'ambiguous']++;
    // The connection works for a request we cannot name: nothing, not the one it worked for before.
    this.mark(proc, l, undefined, undefined);
  }

  /**
   * The process runs `rule`'s runtime (its executable was recognised), or no
   * runtime that marks (undefined: an exec into another program). Known
   * before its first mark, so that its first calls are not guessed by the
   * thread rule, which proves nothing for a runtime that moves requests
   * between threads (goroutines) or serves them all on one (nginx): until the
   * runtime marks a connection, its calls are roots.
   */
  processRuntime(tgid: number, rule: LinkRule | undefined): void {
    const proc = this.processes.get(tgid);
    if (rule === undefined) {
      if (proc === undefined || proc.rule === undefined) return;
      proc.rule = undefined;
      proc.proven = 0;
      proc.ruleOff = false;
      for (const c of proc.marked) this.marks.delete(c);
      proc.marked.clear();
      return;
    }
    const p = proc ?? this.process(tgid);
    if (p.rule !== rule) {
      p.rule = rule;
      p.proven = 0;
      p.ruleOff = false;
    }
  }

  private reject(proc: ProcessState, l: RuntimeLink, why: 'not_socket' | 'wrong_role', detail: string): void {
    this.stats.runtime[l.rule].rejected[why]++;
    // Whatever the connection worked for before, the mark says it moved on.
    if (l.clientConnId !== 0) this.mark(proc, l, undefined, undefined);
    if (proc.proven >= LINK_PROOF_SETS) return;
    proc.ruleOff = true;
    this.stats.runtime[l.rule].checksFailed++;
    this.onRuleOff?.(l.tgid, l.rule, detail);
  }

  private mark(proc: ProcessState, l: RuntimeLink, serverKey: RequestKey | undefined, ids: Ids | undefined): void {
    // Delete first: a connection marked again becomes the youngest.
    this.marks.delete(l.clientConnId);
    while (this.marks.size >= MAX_MARKED_CONNECTIONS) {
      const [oldest, m] = this.marks.entries().next().value!;
      this.marks.delete(oldest);
      this.processes.get(m.tgid)?.marked.delete(oldest);
      this.stats.marksEvicted++;
    }
    this.marks.set(l.clientConnId, { rule: l.rule, tgid: l.tgid, serverKey, ids });
    proc.marked.add(l.clientConnId);
  }

  /** A request head was parsed: decide its ids now. */
  started(s: RequestStart): void {
    const k = requestKey(s.connId, s.sequence);
    if (this.pending.has(k)) return;
    this.stats.started++;
    const ids = s.kind === 'server' ? this.serverIds(s) : this.clientIds(s);
    this.stats.linked[ids.reason]++;
    this.bound();
    if (s.kind === 'server') {
      const p = newPending(s.connId, ids, s.tgid, s.kind, s.startNs, s.tid, undefined, 0);
      this.pending.set(k, p);
      const proc = this.process(s.tgid);
      if (!proc.multiplexing.has(s.tid)) for (const f of proc.inFlight.values()) if (f.tid === s.tid) proc.multiplexing.add(s.tid);
      proc.inFlight.set(k, p);
    } else {
      const slot = peerSlot(s);
      let tuple: string | undefined;
      if (slot !== undefined && s.peer !== undefined) {
        tuple = clientTuple(s.peer);
        let bySlot = this.clientsByPeer.get(tuple);
        if (bySlot === undefined) this.clientsByPeer.set(tuple, (bySlot = new Map()));
        bySlot.set(slot, ids);
      }
      this.pending.set(k, newPending(s.connId, ids, s.tgid, s.kind, s.startNs, s.tid, tuple, slot ?? 0));
    }
  }

  /** A request will never become a record (the protocol dropped it): forget it. */
  abandoned(connId: number, sequence: number): void {
    if (this.end(requestKey(connId, sequence))) this.stats.abandoned++;
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
    const k = requestKey(record.connId, record.sequence);
    const entry = this.pending.get(k);
    let ids: Ids;
    if (entry === undefined) {
      // Started before this graph existed (or evicted): decide from what the record says.
      this.stats.lateStarts++;
      ids = record.traceContext ? this.fromCarried(record.kind, record.traceContext) : this.root();
      this.stats.linked[ids.reason]++;
    } else {
      this.stats.recorded++;
      this.end(k);
      ids = entry.ids;
    }
    if (!ids.sampled) this.stats.sampledOut++;
    // Every field set, absent ones undefined: one shape for every record.
    return {
      record,
      traceId: ids.traceId,
      spanId: ids.spanId,
      parentSpanId: ids.parentSpanId,
      traceState: ids.traceState,
      sampled: ids.sampled,
      process: this.identify(record.tgid),
    };
  }

  /** Forgets everything of a process that exited. */
  processExited(tgid: number): void {
    const proc = this.processes.get(tgid);
    if (proc) {
      for (const k of proc.inFlight.keys()) if (this.pending.delete(k)) this.stats.processExited++;
      for (const c of proc.marked) this.marks.delete(c);
    }
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
      // A process whose runtime marks keeps its state: its rule and proof must outlive idle moments.
      if (proc.inFlight.size === 0 && proc.multiplexing.size === 0 && proc.rule === undefined) this.processes.delete(tgid);
    }
  }

  pendingCount(): number {
    return this.pending.size;
  }

  private serverIds(s: RequestStart): Ids {
    if (s.traceContext) return this.fromCarried('server', s.traceContext);
    const slot = peerSlot(s);
    if (slot !== undefined && s.peer !== undefined) {
      // The client end's tuple is ours reversed.
      const client = this.clientsByPeer.get(clientTuple(s.peer, true))?.get(slot);
      if (client) return this.child(client, 'peer');
    }
    return this.root();
  }

  private clientIds(s: RequestStart): Ids {
    if (s.traceContext) return this.fromCarried('client', s.traceContext);
    const proc = this.processes.get(s.tgid);
    if (proc?.rule !== undefined) {
      const m = this.marks.get(s.connId);
      if (m !== undefined && !proc.ruleOff) {
        if (m.ids === undefined) return this.root();
        // The request it named must still be in flight: a call after its response is no child of it.
        if (this.pending.has(m.serverKey!)) return this.child(m.ids, m.rule);
        this.stats.runtime[m.rule].rejected.ended++;
        return this.root();
      }
      // nginx and Go mark every use of a connection: no mark, no parent (the rules below would guess).
      // The Node.js preload marks HTTP requests only: other clients keep the rules below.
      if (proc.rule !== 'node') {
        if (!proc.ruleOff) this.stats.runtime[proc.rule].rejected.unmarked++;
        return this.root();
      }
    }
    if (!proc || proc.inFlight.size === 0) return this.root();
    if (!proc.multiplexing.has(s.tid)) {
      let only: Pending | undefined;
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
    return kind === 'server'
      ? ids(c.traceId, newSpanId(), c.spanId, c.traceState, sampled, 'traceparent')
      : ids(c.traceId, c.spanId, undefined, c.traceState, sampled, 'traceparent');
  }

  private child(parent: Ids, reason: LinkReason): Ids {
    // Same trace, same sampling decision as the parent.
    return ids(parent.traceId, newSpanId(), parent.spanId, parent.traceState, parent.sampled, reason);
  }

  private root(): Ids {
    const traceId = newTraceId();
    return ids(traceId, newSpanId(), undefined, undefined, this.sampling.decide(traceId, undefined), 'root');
  }

  /** Forgets a pending request; false when it was not pending. */
  private end(k: RequestKey): boolean {
    const entry = this.pending.get(k);
    if (!entry) return false;
    this.pending.delete(k);
    if (entry.kind === 'server') {
      const proc = this.processes.get(entry.tgid);
      proc?.inFlight.delete(k);
    } else if (entry.peerTuple !== undefined) {
      const bySlot = this.clientsByPeer.get(entry.peerTuple);
      // Only this request's entry: a later request in the same slot (a new connection reusing the tuple) keeps its own.
      if (bySlot !== undefined && bySlot.get(entry.peerSlot) === entry.ids) {
        bySlot.delete(entry.peerSlot);
        if (bySlot.size === 0) this.clientsByPeer.delete(entry.peerTuple);
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
    if (!p) this.processes.set(tgid, (p = { inFlight: new Map(), multiplexing: new Set(), rule: undefined, proven: 0, ruleOff: false, marked: new Set() }));
    return p;
  }
}
