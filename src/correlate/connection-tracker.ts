// Turns capture events into L7 records: per connection it reassembles both
// sides by position, detects the protocol from the first bytes, feeds the
// protocol's session, and gives up requests that wait too long. Connections
// whose protocol is unknown are marked ignored and cost one map lookup per
// event from then on; each is reported once (takeSignals) so the agent can
// ask the kernel to stop shipping its bytes.
//
// Connection states:
//   detecting --match--> tracking --close/exit/evict--> (gone)
//       \--all protocols say no, or detection budget spent--> ignored --close--> (gone)
// Ignored is final: nothing reads an ignored connection's bytes again.

import type { CaptureEvent, CloseEvent, DataEvent } from '../capture/events';
import type { Logger } from '../util/log';
import {
  newProtocolStats,
  type Chunk,
  type ConnectionInfo,
  type L7Record,
  type ProtocolDefinition,
  type ProtocolOptions,
  type ProtocolSession,
  type ProtocolStats,
  type RequestStarted,
  type SessionObserver,
  type Side,
} from '../protocols/types';
import { ConnectionTable, type Connection } from './connection-table';
import { SideStream, type StreamSink, type StreamStats } from './stream';
import type { PeerKey, RequestStart } from './trace-graph';

/** A request the protocol gave up before it became a record. */
export interface RequestAbandon {
  readonly connId: number;
  readonly sequence: number;
  readonly atNs: number;
}

export interface TrackerOptions {
  readonly protocols: readonly ProtocolDefinition[];
  readonly protocolOptions?: ProtocolOptions;
  /** A request without a response for this long becomes an error record. */
  readonly requestTimeoutNs?: number;
  readonly maxConnections?: number;
  /** Syscall-start chunks per side tried for detection on a connection joined mid-stream. */
  readonly maxDetectAttempts?: number;
}

export interface TrackerStats {
  readonly connections: number;
  readonly tracking: number;
  readonly ignored: number;
  readonly detected: Record<string, number>;
  readonly undetected: number;
  readonly stream: StreamStats;
  /** Summed over the sessions that ended, plus the live ones. */
  readonly protocol: Record<string, ProtocolStats>;
  readonly evicted: number;
}

type State = 'detecting' | 'tracking' | 'ignored';

interface Pending {
  readonly chunks: Chunk[];
  attempts: number;
}

// Most connections live long after detection and many sit idle: what each
// holds is kept small (detection state only while detecting, the connection
// itself as the session's observer rather than closures per connection).
class TrackedConnection implements StreamSink, SessionObserver {
  state: State = 'detecting';
  session: ProtocolSession | undefined;
  protocol: ProtocolDefinition | undefined;
  readonly streams: Record<Side, SideStream>;
  /** Detection state, from the first chunk until detection ends. */
  private pending: Record<Side, Pending> | undefined;
  private kind: RequestStart['kind'] = 'server';

  constructor(
    readonly info: ConnectionInfo,
    private readonly tracker: ConnectionTracker,
    streamStats: StreamStats,
  ) {
    this.streams = {
      egress: new SideStream('egress', this, streamStats),
      ingress: new SideStream('ingress', this, streamStats),
    };
  }

  chunk(c: Chunk): void {
    if (this.state === 'tracking') this.session!.onChunk(c, this.tracker.out);
    else if (this.state === 'detecting') this.detect(c);
  }

  gap(side: Side, pos: number, bytes: number, atNs: number): void {
    if (this.state === 'tracking') this.session!.onGap(side, pos, bytes, atNs, this.tracker.out);
    else if (this.state === 'detecting' && this.pending) {
      // What was pending is no longer contiguous with what follows.
      this.pending[side].chunks.length = 0;
    }
  }

  // SessionObserver: the tuple is taken now, since by the time the batch is
  // flushed the connection may be closed.
  requestStarted(r: RequestStarted): void {
    const { connId, tgid } = this.info;
    const peer = this.tracker.peerKey(connId);
    const start: { -readonly [K in keyof RequestStart]: RequestStart[K] } = {
      connId,
      tgid,
      kind: this.kind,
      sequence: r.sequence,
      pos: r.pos,
      startNs: r.startNs,
      tid: r.tid,
    };
    if (r.traceContext !== undefined) start.traceContext = r.traceContext;
    if (peer !== undefined) start.peer = peer;
    this.tracker.starts.push(start);
  }

  requestAbandoned(sequence: number, atNs: number): void {
    this.tracker.abandons.push({ connId: this.info.connId, sequence, atNs });
  }

  private detect(c: Chunk): void {
    const p = (this.pending ??= { egress: { chunks: [], attempts: 0 }, ingress: { chunks: [], attempts: 0 } })[c.side];
    const opts = this.tracker.options;
    if (p.chunks.length === 0) {
      // Detection starts only where a syscall started: a message may begin there.
      if (!c.syscallStart) return;
      if (++p.attempts > opts.maxDetectAttempts) return this.giveUp();
    }
    // Held whole (copied: the batch is reused) for the session to replay on a match;
    // a chunk is at most one syscall's capture, and detection stops after maxDetectBytes.
    p.chunks.push({ ...c, data: Buffer.from(c.data) });
    const head = p.chunks.length === 1 ? p.chunks[0]!.data : Buffer.concat(p.chunks.map((x) => x.data));
    let undecided = false;
    for (const proto of opts.protocols) {
      const d = proto.detect(c.side, head.subarray(0, proto.maxDetectBytes), this.info);
      if (d.result === 'match') return this.start(proto, d.requestSide);
      if (d.result === 'more' && head.length < proto.maxDetectBytes) undecided = true;
    }
    if (undecided && head.length < opts.maxDetectBytes) return;
    // Nobody recognised what starts here.
    p.chunks.length = 0;
    if (this.info.sawStart) {
      // The first bytes of a connection we saw open decide: no second chance.
      this.giveUp();
      return;
    }
    // A side that never starts a recognisable message within its attempts ends detection.
    if (p.attempts >= opts.maxDetectAttempts) this.giveUp();
  }

  private giveUp(): void {
    this.pending = undefined;
    this.tracker.ignore(this);
  }

  private start(proto: ProtocolDefinition, requestSide: Side): void {
    this.protocol = proto;
    this.kind = requestSide === 'ingress' ? 'server' : 'client';
    this.session = proto.createSession(this.info, requestSide, this.tracker.options.protocolOptions, this);
    this.state = 'tracking';
    this.tracker.detected(proto.id);
    // Replay what detection held, both sides, in time order.
    const pending = this.pending!;
    this.pending = undefined;
    const held = [...pending.egress.chunks, ...pending.ingress.chunks].sort((a, b) => a.startNs - b.startNs);
    for (const c of held) this.session.onChunk(c, this.tracker.out);
  }
}

const UNDECIDED = { decided: false } as const;
const IGNORED = { decided: true } as const;

const DEFAULTS = {
  requestTimeoutNs: 30_000_000_000,
  maxConnections: 65536,
  maxDetectAttempts: 4,
} as const;

export class ConnectionTracker {
  /** Records produced since the last take(). */
  out: L7Record[] = [];
  /** Requests started since the last take(), in the order the protocols saw them. */
  starts: RequestStart[] = [];
  /** Requests abandoned since the last take(). */
  abandons: RequestAbandon[] = [];
  /** Connections that became ignored since the last takeSignals(). */
  private newlyIgnored: number[] = [];
  readonly options: Required<Omit<TrackerOptions, 'protocolOptions'>> & {
    readonly protocolOptions: ProtocolOptions;
    readonly maxDetectBytes: number;
  };
  private readonly table: ConnectionTable;
  private readonly tracked = new Map<number, TrackedConnection>();
  private readonly streamStats: StreamStats = { reordered: 0, gapBytes: 0, overlaps: 0 };
  private readonly detectedCount: Record<string, number> = {};
  private undetected = 0;
  private evicted = 0;
  /** Stats of sessions that ended, by protocol. */
  private readonly finished: Record<string, ProtocolStats> = {};

  constructor(options: TrackerOptions, logger: Logger) {
    this.options = {
      ...DEFAULTS,
      ...options,
      protocolOptions: options.protocolOptions ?? {},
      maxDetectBytes: Math.max(0, ...options.protocols.map((p) => p.maxDetectBytes)),
    };
    this.table = new ConnectionTable(logger, this.options.maxConnections, (c) => {
      this.evicted++;
      this.finish(c.connId, undefined);
    });
  }

  onEvent(e: CaptureEvent): void {
    const implied = this.table.apply(e);
    switch (e.type) {
      case 'open':
        this.finish(e.connId, e.tsNs);
        this.tracked.set(e.connId, new TrackedConnection(infoOf(this.table.get(e.connId)!, e.reason !== 'existing'), this, this.streamStats));
        break;
      case 'data':
        this.onData(e);
        break;
      case 'close':
        this.finish(e.connId, e.tsNs);
        break;
      default:
        break;
    }
    if (implied) for (const c of implied) this.onClose(c);
  }

  /** Gives up requests waiting longer than the timeout. Call about once a second. */
  tick(nowNs: number): void {
    for (const t of this.tracked.values()) {
      if (t.session) t.session.expire(nowNs, this.options.requestTimeoutNs, this.out);
    }
  }

  /** Ends every connection (agent shutdown): pending requests become records. */
  closeAll(atNs: number): void {
    for (const id of [...this.tracked.keys()]) this.finish(id, atNs);
  }

  /** Records produced since the last call. */
  take(): L7Record[] {
    const r = this.out;
    this.out = [];
    return r;
  }

  /**
   * Request starts and abandons since the last call, and the connections that
   * became ignored since then and are still open (nobody will read their
   * bytes: the capture may stop sending them).
   */
  takeSignals(): { starts: RequestStart[]; abandons: RequestAbandon[]; ignored: number[] } {
    const s = {
      starts: this.starts,
      abandons: this.abandons,
      // A connection that closed meanwhile needs nothing more.
      ignored: this.newlyIgnored.length === 0 ? this.newlyIgnored : this.newlyIgnored.filter((id) => this.tracked.has(id)),
    };
    this.starts = [];
    this.abandons = [];
    this.newlyIgnored = [];
    return s;
  }

  /** What the trace graph needs to match the two ends of a connection. */
  peerKey(connId: number): PeerKey | undefined {
    const c = this.table.get(connId);
    const t = this.tracked.get(connId);
    if (!c || !t) return undefined;
    return {
      netns: c.netns,
      localAddr: c.tuple.localAddr,
      localPort: c.tuple.localPort,
      remoteAddr: c.tuple.remoteAddr,
      remotePort: c.tuple.remotePort,
      sawStart: t.info.sawStart,
    };
  }

  // ---- flows: a read-only view of a connection's protocol ----

  /**
   * What the tracker settled on for a connection: decided with a protocol
   * (its network.protocol.name) once tracking, decided without one once
   * ignored; undecided while detecting or before its first event arrived.
   */
  protocolOf(connId: number): { readonly decided: boolean; readonly protocol?: string } {
    const t = this.tracked.get(connId);
    if (t === undefined || t.state === 'detecting') return UNDECIDED;
    if (t.state === 'ignored') return IGNORED;
    return { decided: true, protocol: t.protocol!.networkProtocolName };
  }

  // ---- end flows ----

  stats(): TrackerStats {
    const protocol: Record<string, ProtocolStats> = {};
    const add = (id: string, s: ProtocolStats) => addStats((protocol[id] ??= newProtocolStats()), s);
    for (const [id, s] of Object.entries(this.finished)) add(id, s);
    let tracking = 0;
    let ignored = 0;
    for (const t of this.tracked.values()) {
      if (t.state === 'tracking') {
        tracking++;
        add(t.protocol!.id, t.session!.stats);
      } else if (t.state === 'ignored') ignored++;
    }
    return {
      connections: this.tracked.size,
      tracking,
      ignored,
      detected: { ...this.detectedCount },
      undetected: this.undetected,
      stream: { ...this.streamStats },
      protocol,
      evicted: this.evicted,
    };
  }

  /** @internal */
  detected(id: string): void {
    this.detectedCount[id] = (this.detectedCount[id] ?? 0) + 1;
  }

  /** @internal */
  ignore(t: TrackedConnection): void {
    if (t.state !== 'detecting') return;
    t.state = 'ignored';
    this.undetected++;
    this.newlyIgnored.push(t.info.connId);
  }

  private onData(e: DataEvent): void {
    let t = this.tracked.get(e.connId);
    if (!t) {
      // Data without a seen open: the process was selected mid-connection.
      const c = this.table.get(e.connId);
      if (!c) return;
      t = new TrackedConnection(infoOf(c, false), this, this.streamStats);
      this.tracked.set(e.connId, t);
    }
    if (t.state === 'ignored') return;
    t.streams[e.dir].push(e);
  }

  private onClose(c: CloseEvent): void {
    this.finish(c.connId, c.tsNs);
  }

  /** Ends a connection's state. `atNs` undefined: evicted, nothing can be concluded. */
  private finish(connId: number, atNs: number | undefined): void {
    const t = this.tracked.get(connId);
    if (!t) return;
    this.tracked.delete(connId);
    if (!t.session) return;
    if (atNs !== undefined) {
      t.streams.egress.flushHeld();
      t.streams.ingress.flushHeld();
      t.session.close(atNs, this.out);
    } else {
      // Evicted: how it ended is unknown, so nothing is concluded; its
      // pending requests age out of the trace graph.
      t.session.dispose();
    }
    addStats((this.finished[t.protocol!.id] ??= newProtocolStats()), t.session.stats);
  }
}

function addStats(acc: ProtocolStats, s: ProtocolStats): void {
  acc.records += s.records;
  acc.parseErrors += s.parseErrors;
  acc.unpairedResponses += s.unpairedResponses;
  acc.requestsWithoutResponse += s.requestsWithoutResponse;
  acc.bytesSkipped += s.bytesSkipped;
  acc.headerValuesDropped += s.headerValuesDropped;
}

function infoOf(c: Connection, sawStart: boolean): ConnectionInfo {
  return {
    connId: c.connId,
    tgid: c.tgid,
    role: c.role,
    sawStart,
    transport: c.tuple.transport,
    localAddr: c.tuple.localAddr,
    localPort: c.tuple.localPort,
    remoteAddr: c.tuple.remoteAddr,
    remotePort: c.tuple.remotePort,
  };
}
