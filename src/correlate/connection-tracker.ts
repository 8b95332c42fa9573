// Turns capture events into L7 records: per connection it reassembles both
// sides by position, detects the protocol from the first bytes, feeds the
// protocol's session, and gives up requests that wait too long. Connections
// whose protocol is unknown are marked ignored and cost one map lookup per
// event from then on; each is reported once (takeSignals) so the agent can
// ask the kernel to stop shipping its bytes.
//
// Connection states:
//   detecting --match--> tracking --close/exit/evict--> (gone)
//       |                   |--protocol switch to an enabled protocol--> tracking (the new one)
//       |                   |--switch the wire does not name (CONNECT)--> detecting (from the switch point)
//       |                   \--switch to a protocol nobody parses--> ignored
//       \--all protocols say no, or detection budget spent--> ignored --close--> (gone)
//   any --restartDetection (its bytes now come from another source)--> detecting
// Ignored is final for the bytes of its source: nothing reads them again.

import type { CaptureEvent, CloseEvent, DataEvent } from '../capture/events';
import type { Logger } from '../util/log';
import {
  addProtocolStats,
  newProtocolStats,
  type Chunk,
  type ConnectionInfo,
  type L7Record,
  type ProtocolDefinition,
  type ProtocolSession,
  type ProtocolStats,
  type ProtocolSwitch,
  type RequestStarted,
  type SessionObserver,
  type Side,
} from '../protocols/types';
import { ConnectionTable, type Connection } from './connection-table';
import { SideStream, type StreamSink, type StreamStats } from './stream';
import type { PeerKey, RequestStart, RuntimeLink } from './trace-graph';

/** A request the protocol gave up before it became a record. */
export interface RequestAbandon {
  readonly connId: number;
  readonly sequence: number;
  readonly atNs: number;
}

/** A connection the table evicted while a protocol session followed it: its pending requests will never end. */
export interface ConnectionEvicted {
  readonly connId: number;
  readonly atNs: number;
}

export interface TrackerOptions {
  readonly protocols: readonly ProtocolDefinition[];
  /** Each protocol's session options, by protocol id (a protocol without an entry gets `{}`). */
  readonly protocolOptions?: Readonly<Record<string, unknown>>;
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
  /** Connections handed from one protocol to another (or back to detection) by a protocol switch, by target protocol id ('detect', 'none'). */
  readonly switched: Record<string, number>;
  /** Connections whose detection restarted because their bytes began to come from another source. */
  readonly redetected: number;
  /** Socket data events of a connection already carrying TLS plaintext (ciphertext shipped before the tie, late): dropped. */
  readonly ciphertextDropped: number;
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
  streams: Record<Side, SideStream>;
  /** Detection state, from the first chunk until detection ends. */
  private pending: Record<Side, Pending> | undefined;
  private kind: RequestStart['kind'] = 'server';
  /**
   * The PeerKey last handed out, and what it was built from: one object per
   * connection rather than one per request (the graph caches its tuple
   * strings by this object).
   */
  peer: PeerKey | undefined;
  peerOf: Connection | undefined;

  constructor(
    public info: ConnectionInfo,
    private readonly tracker: ConnectionTracker,
    streamStats: StreamStats,
  ) {
    // Seen from its connect or accept, both streams start at position 0
    // (the kernel's conn_info starts there): a first event that overtook an
    // earlier one waits for it instead of dropping it as an overlap.
    const start = info.sawStart ? 0 : undefined;
    this.streams = {
      egress: new SideStream('egress', this, streamStats, start),
      ingress: new SideStream('ingress', this, streamStats, start),
    };
  }

  /** A protocol switch the session reported during the current chunk: applied once the session returns. */
  private switching: ProtocolSwitch | undefined;
  /** After a switch: bytes before these positions were the old protocol's. */
  private switchedAt: Record<Side, number> | undefined;

  chunk(c: Chunk): void {
    if (this.switchedAt !== undefined && c.pos < this.switchedAt[c.side]) {
      const skip = this.switchedAt[c.side] - c.pos;
      if (skip >= c.data.length) return;
      c = { ...c, data: c.data.subarray(skip), pos: c.pos + skip, syscallStart: true };
    }
    if (this.state === 'tracking') {
      this.session!.onChunk(c, this.tracker.out);
      if (this.switching !== undefined) this.applySwitch(c.endNs);
    } else if (this.state === 'detecting') this.detect(c);
  }

  gap(side: Side, pos: number, bytes: number, atNs: number): void {
    if (this.state === 'tracking') {
      this.session!.onGap(side, pos, bytes, atNs, this.tracker.out);
      if (this.switching !== undefined) this.applySwitch(atNs);
    } else if (this.state === 'detecting' && this.pending) {
      // What was pending is no longer contiguous with what follows.
      this.pending[side].chunks.length = 0;
    }
  }

  protocolSwitched(s: ProtocolSwitch): void {
    this.switching = s;
  }

  /**
   * Ends the session at a protocol switch and hands the connection on: to
   * the enabled protocol that claims the token, to detection when the wire
   * did not name one, else to nobody (ignored).
   */
  private applySwitch(atNs: number): void {
    const s = this.switching!;
    this.switching = undefined;
    this.tracker.endSession(this, atNs);
    const from = s.from;
    if (from.egress === undefined || from.ingress === undefined) {
      this.tracker.switchedTo('none');
      return this.tracker.ignore(this, true);
    }
    this.switchedAt = { egress: from.egress, ingress: from.ingress };
    if (s.upgrade === undefined) {
      this.tracker.switchedTo('detect');
      this.state = 'detecting';
      this.info = { ...this.info, sawStart: true };
      for (const c of s.held) this.chunk(c);
      return;
    }
    const next = this.tracker.options.protocols.find((p) => p.upgradeTokens?.includes(s.upgrade!));
    if (next === undefined) {
      this.tracker.switchedTo('none');
      return this.tracker.ignore(this, true);
    }
    this.tracker.switchedTo(next.id);
    this.pending = undefined;
    this.start(next, this.kind === 'server' ? 'ingress' : 'egress', s.held);
  }

  /**
   * Its bytes now come from another source (plaintext from a TLS library):
   * detection starts over on them. `start`: where the new streams begin
   * (0 when the new source's first byte is known to be the first).
   */
  restart(streamStats: StreamStats, start?: number): void {
    this.switching = undefined;
    this.switchedAt = undefined;
    this.pending = undefined;
    this.state = 'detecting';
    this.streams = {
      egress: new SideStream('egress', this, streamStats, start),
      ingress: new SideStream('ingress', this, streamStats, start),
    };
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
    if (r.peerId !== undefined) start.peerId = r.peerId;
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
    this.tracker.ignore(this, false);
  }

  private start(proto: ProtocolDefinition, requestSide: Side, replay?: readonly Chunk[]): void {
    this.protocol = proto;
    this.kind = requestSide === 'ingress' ? 'server' : 'client';
    this.session = proto.createSession(this.info, requestSide, this.tracker.optionsOf(proto), this);
    this.state = 'tracking';
    this.tracker.detected(proto.id);
    // Replay what detection (or the protocol before) held, both sides, in time order.
    let held = replay;
    if (held === undefined) {
      const pending = this.pending!;
      this.pending = undefined;
      held = [...pending.egress.chunks, ...pending.ingress.chunks].sort((a, b) => a.startNs - b.startNs);
    }
    for (const c of held) this.chunk(c);
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
  /** Runtime marks since the last takeSignals(), for the trace graph (the tracker only passes them on). */
  private links: RuntimeLink[] = [];
  /** Connections with a session evicted since the last takeSignals(). */
  private evictions: ConnectionEvicted[] = [];
  /** Connections that became ignored since the last takeSignals(). */
  private newlyIgnored: number[] = [];
  /** Ignored connections (maybe muted) whose TLS plaintext began since the last takeSignals(). */
  private newlyUnignored: number[] = [];
  readonly options: Required<TrackerOptions> & { readonly maxDetectBytes: number };
  private readonly table: ConnectionTable;
  private readonly tracked = new Map<number, TrackedConnection>();
  private readonly streamStats: StreamStats = { reordered: 0, gapBytes: 0, overlaps: 0 };
  private readonly detectedCount: Record<string, number> = {};
  private undetected = 0;
  private evicted = 0;
  private readonly switchedCount: Record<string, number> = {};
  private redetected = 0;
  private ciphertextDropped = 0;
  /** Stats of sessions that ended, by protocol. */
  private readonly finished: Record<string, ProtocolStats> = {};
  private readonly noOptions: Record<string, object> = {};

  constructor(options: TrackerOptions, logger: Logger) {
    this.options = {
      ...DEFAULTS,
      ...options,
      protocolOptions: options.protocolOptions ?? {},
      maxDetectBytes: Math.max(0, ...options.protocols.map((p) => p.maxDetectBytes)),
    };
    this.table = new ConnectionTable(logger, this.options.maxConnections, (c, atNs) => {
      this.evicted++;
      if (this.tracked.get(c.connId)?.session !== undefined) this.evictions.push({ connId: c.connId, atNs });
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
      case 'link':
        this.links.push({
          atNs: e.tsNs,
          tgid: e.tgid,
          rule: e.rule,
          op: e.op,
          serverConnId: e.serverConnId,
          clientConnId: e.clientConnId,
          serverRole: e.serverRole,
          clientRole: e.clientRole,
          serverFd: e.serverFd,
          clientFd: e.clientFd,
        });
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
   * Request starts and abandons since the last call, the connections that
   * became ignored since then and are still open (nobody will read their
   * bytes: the capture may stop sending them), and the connections evicted
   * while a session followed them.
   */
  takeSignals(): { starts: RequestStart[]; abandons: RequestAbandon[]; ignored: number[]; evicted: ConnectionEvicted[]; unignored: number[]; links: RuntimeLink[] } {
    const s = {
      starts: this.starts,
      links: this.links,
      abandons: this.abandons,
      evicted: this.evictions,
      // A connection that closed meanwhile, or was restarted, needs nothing more.
      ignored: this.newlyIgnored.length === 0 ? this.newlyIgnored : this.newlyIgnored.filter((id) => this.tracked.get(id)?.state === 'ignored'),
      // Ignored from its ciphertext, now read in plaintext: a mute asked for
      // from the ciphertext may reach the kernel after the TLS tie lifted it.
      unignored: this.newlyUnignored.length === 0 ? this.newlyUnignored : this.newlyUnignored.filter((id) => this.tracked.has(id)),
    };
    this.starts = [];
    this.abandons = [];
    if (this.links.length > 0) this.links = [];
    if (this.evictions.length > 0) this.evictions = [];
    this.newlyIgnored = [];
    if (this.newlyUnignored.length > 0) this.newlyUnignored = [];
    return s;
  }

  /** What the trace graph needs to match the two ends of a connection. */
  peerKey(connId: number): PeerKey | undefined {
    const c = this.table.get(connId);
    const t = this.tracked.get(connId);
    if (!c || !t) return undefined;
    // A Connection's tuple never changes; sawStart may (a protocol switch).
    if (t.peer !== undefined && t.peerOf === c && t.peer.sawStart === t.info.sawStart) return t.peer;
    t.peerOf = c;
    return (t.peer = {
      netns: c.netns,
      localAddr: c.tuple.localAddr,
      localPort: c.tuple.localPort,
      remoteAddr: c.tuple.remoteAddr,
      remotePort: c.tuple.remotePort,
      sawStart: t.info.sawStart,
    });
  }

  /**
   * What the tracker settled on for a connection (for flow metrics, read
   * only): decided with a protocol (its network.protocol.name) once tracking
   * or once a protocol handed it to nobody, decided without one once
   * ignored; undecided while detecting or before its first event arrived.
   */
  protocolOf(connId: number): { readonly decided: boolean; readonly protocol?: string } {
    const t = this.tracked.get(connId);
    if (t === undefined || t.state === 'detecting') return UNDECIDED;
    if (t.protocol === undefined) return IGNORED;
    return { decided: true, protocol: t.protocol.networkProtocolName };
  }

  /**
   * The connection's bytes begin to come from another source (plaintext from
   * a TLS library after the ciphertext was classified): whatever it was, its
   * protocol is detected again on the new bytes, whose positions are the new
   * source's. Returns false for a connection the tracker does not follow.
   */
  restartDetection(connId: number, atNs: number): boolean {
    const t = this.tracked.get(connId);
    if (t === undefined) return false;
    this.restart(t, atNs, undefined);
    return true;
  }

  /**
   * The connection's first TLS plaintext event arrived (DataEvent source
   * 'tls'): from now on its streams are the plaintext ones, which start at
   * position 0 where the kernel tied the connection to its TLS session. The
   * ciphertext seen before is dropped (held bytes, a protocol that claimed
   * it, an ignored state: all restart; an ignored one is reported in
   * takeSignals().unignored), detection starts over, and the
   * connection is `encrypted` for the protocols. Counted in `redetected`.
   */
  private startEncrypted(t: TrackedConnection, atNs: number): void {
    if (t.state === 'ignored') this.newlyUnignored.push(t.info.connId);
    t.info = { ...t.info, encrypted: true };
    t.peer = undefined;
    // Seen from its start, the tie came before the first plaintext byte (the
    // handshake ties it), so the plaintext streams start at 0.
    this.restart(t, atNs, t.info.sawStart ? 0 : undefined);
  }

  private restart(t: TrackedConnection, atNs: number, start: number | undefined): void {
    this.endSession(t, atNs);
    t.protocol = undefined;
    t.restart(this.streamStats, start);
    this.redetected++;
  }

  /** Connections followed now (what stats() reports as `connections`, without building the stats). */
  get connectionCount(): number {
    return this.tracked.size;
  }

  stats(): TrackerStats {
    const protocol: Record<string, ProtocolStats> = {};
    const add = (id: string, s: ProtocolStats) => addProtocolStats((protocol[id] ??= newProtocolStats()), s);
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
      switched: { ...this.switchedCount },
      redetected: this.redetected,
      ciphertextDropped: this.ciphertextDropped,
    };
  }

  /**
   * @internal The options a protocol's sessions take: its own, or none. The
   * same object for every session, so a protocol can share state among the
   * sessions of one tracker by it (http1's parse caches).
   */
  optionsOf(proto: ProtocolDefinition): object {
    return (this.options.protocolOptions[proto.id] as object | undefined) ?? (this.noOptions[proto.id] ??= {});
  }

  /** @internal */
  switchedTo(target: string): void {
    this.switchedCount[target] = (this.switchedCount[target] ?? 0) + 1;
  }

  /**
   * @internal A protocol's session ends while the connection goes on (a
   * protocol switch, a new source): what it still holds is emitted, its
   * stats kept.
   */
  endSession(t: TrackedConnection, atNs: number): void {
    const session = t.session;
    if (session === undefined) return;
    t.session = undefined;
    session.close(atNs, this.out);
    addProtocolStats((this.finished[t.protocol!.id] ??= newProtocolStats()), session.stats);
  }

  /** @internal */
  detected(id: string): void {
    this.detectedCount[id] = (this.detectedCount[id] ?? 0) + 1;
  }

  /** @internal Nobody will read the connection's bytes (`handedOff`: after a protocol switch, not for want of a protocol). */
  ignore(t: TrackedConnection, handedOff: boolean): void {
    if (t.state === 'ignored') return;
    t.state = 'ignored';
    if (!handedOff) this.undetected++;
    this.newlyIgnored.push(t.info.connId);
  }

  private onData(e: DataEvent): void {
    let t = this.tracked.get(e.connId);
    if (!t) {
      // Data without a seen open: the process was selected mid-connection.
      const c = this.table.get(e.connId);
      if (!c) return;
      t = new TrackedConnection(infoOf(c, false, e.source === 'tls'), this, this.streamStats);
      this.tracked.set(e.connId, t);
    }
    // Plaintext after ciphertext: what was made of the ciphertext goes.
    if (e.source === 'tls') {
      if (!t.info.encrypted) this.startEncrypted(t, e.tsEnterNs);
    } else if (t.info.encrypted) {
      // Its positions are the socket's, not the plaintext's: never parsed.
      this.ciphertextDropped++;
      return;
    }
    if (t.state === 'ignored') return;
    // Named loads, not t.streams[e.dir]: a keyed load that sees two property
    // names goes megamorphic (a stub-cache probe per event).
    (e.dir === 'egress' ? t.streams.egress : t.streams.ingress).push(e);
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
      // Flushing may have ended the session (a protocol switch in the held bytes).
      if (!t.session) return;
      t.session.close(atNs, this.out);
    } else {
      // Evicted: how it ended is unknown, so nothing is concluded; its
      // pending requests age out of the trace graph.
      t.session.dispose();
    }
    addProtocolStats((this.finished[t.protocol!.id] ??= newProtocolStats()), t.session.stats);
  }
}

function infoOf(c: Connection, sawStart: boolean, encrypted = false): ConnectionInfo {
  return {
    connId: c.connId,
    tgid: c.tgid,
    role: c.role,
    sawStart,
    encrypted,
    transport: c.tuple.transport,
    localAddr: c.tuple.localAddr,
    localPort: c.tuple.localPort,
    remoteAddr: c.tuple.remoteAddr,
    remotePort: c.tuple.remotePort,
  };
}
