// Flow increments per connection from the kernel's true byte counts: each
// read of conn_info is compared with what was already accounted per
// connection id, and a connection's close event carries its final totals.
// A muted connection keeps counting in the kernel, so its bytes show here.
//
// A connection's protocol is asked of the connection tracker when its bytes
// are first accounted, then frozen, so one connection never splits over two
// protocols. While the tracker is still deciding, the increments wait (up to
// `maxHoldReads` reads); after that, or when nobody recognised the bytes,
// they are accounted without a protocol: missing, never guessed.

import type { CaptureEvent, CloseEvent, ConnRole, OpenEvent, SocketTuple } from '../capture/events';
import type { ConnectionEntry } from '../capture/kernel-tables';
import type { FlowObservation, Peer } from './types';

/** What the connection tracker says of a connection's protocol now. */
export interface ProtocolDecision {
  /** false while detection is still going on. */
  readonly decided: boolean;
  /** network.protocol.name, when decided and recognised. */
  readonly protocol?: string;
}

export type ProtocolOf = (connId: number) => ProtocolDecision;

export interface FlowOptions {
  /** undefined: no protocol is ever known (no payload is captured). */
  readonly protocolOf?: ProtocolOf;
  /** Reads an undecided connection's increments may wait for its protocol (default 3). */
  readonly maxHoldReads?: number;
}

export interface FlowStats {
  /** Connections followed now. */
  connections: number;
  /** Connections gone from the kernel table without a close event (evicted, or the event was lost): their last bytes are unknown. */
  vanished: number;
  /** Connections accounted without a protocol because the tracker had not decided in time. */
  undecided: number;
}

interface FlowState {
  readonly connId: number;
  readonly tgid: number;
  readonly peer: Peer;
  readonly transport: 'tcp' | 'udp';
  /** Bytes already accounted. */
  sent: number;
  recv: number;
  /** The protocol once frozen (accounted at least once); `null`: accounted without one. */
  protocol: string | null | undefined;
  heldReads: number;
  missingReads: number;
}

/** Reads during which a process that exited keeps its connections from being taken for a new process's. */
const DEAD_READS = 10;

/** The peer a connection counts under (see Peer). */
export function peerOfConnection(role: ConnRole, tuple: SocketTuple): Peer {
  if (role === 'client') return { role, address: tuple.remoteAddr, port: tuple.remotePort, overflow: false };
  if (role === 'server') return { role, address: tuple.remoteAddr, port: tuple.localPort, overflow: false };
  return { role: undefined, address: tuple.remoteAddr, port: undefined, overflow: false };
}

export class FlowAccounting {
  private readonly conns = new Map<number, FlowState>();
  /** Connections done with, still in the kernel table (a process that exited keeps its entries): skipped until gone. */
  private readonly finished = new Set<number>();
  /** Increments of connections that closed since the last read. */
  private pending: FlowObservation[] = [];
  /** Processes that exited since the last read: this read is their connections' last. */
  private exiting = new Set<number>();
  /** Processes that exited before, by reads left: entries still in the table are theirs, done with. */
  private readonly dead = new Map<number, number>();
  private readonly maxHoldReads: number;
  readonly stats: FlowStats = { connections: 0, vanished: 0, undecided: 0 };

  constructor(private readonly opts: FlowOptions = {}) {
    this.maxHoldReads = opts.maxHoldReads ?? 3;
  }

  onEvent(e: CaptureEvent): void {
    switch (e.type) {
      case 'open':
        this.stateOf(e);
        return;
      case 'close':
        this.onClose(e);
        return;
      case 'exit':
        this.exiting.add(e.tgid);
        return;
      case 'exec':
      case 'fork':
        // The tgid names a live process again (pid reuse).
        this.dead.delete(e.tgid);
        return;
      default:
        return;
    }
  }

  /** Increments since the last read: closed connections, then the table's live ones. */
  read(entries: readonly ConnectionEntry[]): FlowObservation[] {
    const out = this.pending;
    this.pending = [];
    const present = new Set<number>();
    for (const e of entries) {
      present.add(e.connId);
      if (this.finished.has(e.connId)) continue;
      const s = this.stateOf(e);
      s.missingReads = 0;
      // A process that exited closed nothing: its entries stay in the kernel table with their final totals.
      const last = this.exiting.has(e.tgid) || this.dead.has(e.tgid);
      this.account(s, e.bytesSent, e.bytesRecv, last, out);
      if (last) this.finish(s);
    }
    for (const id of this.finished) if (!present.has(id)) this.finished.delete(id);
    for (const s of this.conns.values()) {
      if (present.has(s.connId)) continue;
      // Gone from the table: its close event may still be on its way; after two reads it is not coming.
      if (this.exiting.has(s.tgid) || ++s.missingReads >= 2) {
        this.stats.vanished++;
        this.conns.delete(s.connId);
      }
    }
    for (const [tgid, left] of this.dead) {
      if (left <= 1) this.dead.delete(tgid);
      else this.dead.set(tgid, left - 1);
    }
    for (const tgid of this.exiting) this.dead.set(tgid, DEAD_READS);
    this.exiting = new Set();
    this.stats.connections = this.conns.size;
    return out;
  }

  private onClose(e: CloseEvent): void {
    if (this.finished.has(e.connId)) return;
    const s = this.stateOf(e);
    this.account(s, e.bytesSent, e.bytesRecv, true, this.pending);
    this.finish(s);
  }

  private finish(s: FlowState): void {
    this.conns.delete(s.connId);
    this.finished.add(s.connId);
  }

  private stateOf(e: OpenEvent | CloseEvent | ConnectionEntry): FlowState {
    let s = this.conns.get(e.connId);
    if (s === undefined) {
      s = {
        connId: e.connId,
        tgid: e.tgid,
        peer: peerOfConnection(e.role, e.tuple),
        transport: e.tuple.transport,
        sent: 0,
        recv: 0,
        protocol: undefined,
        heldReads: 0,
        missingReads: 0,
      };
      this.conns.set(e.connId, s);
    }
    return s;
  }

  /** Accounts the bytes past what was accounted; `final`: the connection ends here, whatever the tracker says. */
  private account(s: FlowState, sentTotal: number, recvTotal: number, final: boolean, out: FlowObservation[]): void {
    const sent = sentTotal - s.sent;
    const recv = recvTotal - s.recv;
    const first = s.protocol === undefined;
    if (!first && sent <= 0 && recv <= 0) return;
    if (first && sent <= 0 && recv <= 0 && !final) return; // counted once it moves bytes, or at its close
    if (first) {
      const decision = this.opts.protocolOf?.(s.connId) ?? { decided: true };
      if (!decision.decided && !final && s.heldReads < this.maxHoldReads) {
        s.heldReads++;
        return;
      }
      if (!decision.decided) this.stats.undecided++;
      s.protocol = decision.decided ? (decision.protocol ?? null) : null;
    }
    s.sent = Math.max(s.sent, sentTotal);
    s.recv = Math.max(s.recv, recvTotal);
    out.push({
      tgid: s.tgid,
      peer: s.peer,
      transport: s.transport,
      protocol: s.protocol ?? undefined,
      bytesSent: Math.max(0, sent),
      bytesRecv: Math.max(0, recv),
      connections: first ? 1 : 0,
    });
  }
}
