// The network view of the selected processes, one interval at a time: TCP
// health from the kernel's tcp_peers table and flows from its conn_info
// table, both read whole and diffed, peers bounded per process.
//
//   const network = new NetworkCollector(engine, { tcp: true, flows: true, maxPeersPerProcess: 100, protocolOf });
//   sink: network.onEvent(e)            // before the connection tracker sees the event
//   every interval: const interval = network.collect();
//
// A process's exit is settled at the next collect: its last counters are read
// and reported, then its kernel keys are deleted. Keys that still appear for
// it afterwards (a socket it left behind that keeps failing or resetting)
// are deleted unreported and counted as late.

import type { CaptureEvent } from '../capture/events';
import { decodeConnections, decodeTcpPeers } from '../capture/kernel-tables';
import { FlowAccounting, type FlowStats, type ProtocolOf } from './flows';
import { PeerBound } from './peer-bound';
import { TcpHealthDiff } from './tcp-health';
import type { FlowObservation, NetworkInterval, TcpObservation } from './types';

/** What the collector reads from the kernel (the capture engine). */
export interface NetworkSource {
  readTcpPeers(): Buffer | undefined;
  readConnections(): Buffer | undefined;
  deleteTcpPeers(tgids: readonly number[]): number;
}

export interface NetworkOptions {
  /** TCP health (needs the kernel's tcp program group). */
  readonly tcp: boolean;
  /** Flows (needs the socket capture's connection table). */
  readonly flows: boolean;
  /** Peers per process with series of their own; the rest fold into one. */
  readonly maxPeersPerProcess: number;
  /** The connection tracker's view of a connection's protocol; none: flows carry no protocol. */
  readonly protocolOf?: ProtocolOf;
}

export interface NetworkStats {
  readonly collects: number;
  /** Observations folded into a process's overflow peer by the per-process bound. */
  readonly peersFolded: number;
  /** TCP keys of processes already settled, deleted without being reported. */
  readonly lateTcpKeys: number;
  /** TCP keys whose counters went backwards (deleted and recreated between reads). */
  readonly tcpKeysRestarted: number;
  readonly tcpKeys: number;
  readonly flows: Readonly<FlowStats>;
  /** Kernel records that did not decode. */
  readonly malformed: number;
}

/** Collects during which a settled process's keys are taken as late rather than a new process's. */
const DEAD_COLLECTS = 10;

export class NetworkCollector {
  private readonly tcpDiff = new TcpHealthDiff();
  private readonly flowAccounting: FlowAccounting;
  private readonly peers: PeerBound;
  private exited = new Set<number>();
  private readonly dead = new Map<number, number>();
  private readonly decodeStats = { malformed: 0 };
  private collects = 0;
  private lateTcpKeys = 0;

  constructor(
    private readonly source: NetworkSource,
    private readonly opts: NetworkOptions,
  ) {
    this.flowAccounting = new FlowAccounting(opts.protocolOf ? { protocolOf: opts.protocolOf } : {});
    this.peers = new PeerBound(opts.maxPeersPerProcess);
  }

  /** Every capture event, before the connection tracker has acted on it (a closing connection's protocol is still known). */
  onEvent(e: CaptureEvent): void {
    if (this.opts.flows) this.flowAccounting.onEvent(e);
    if (e.type === 'exit') this.exited.add(e.tgid);
    else if (e.type === 'exec' || e.type === 'fork') this.dead.delete(e.tgid);
  }

  /** Processes whose exit the next collect settles. */
  get exitsPending(): number {
    return this.exited.size;
  }

  collect(): NetworkInterval {
    this.collects++;
    const exited = this.exited;
    this.exited = new Set();
    const flows = this.opts.flows ? this.readFlows() : [];
    const tcp = this.opts.tcp ? this.readTcp(exited) : [];
    for (const [tgid, left] of this.dead) {
      if (left <= 1) this.dead.delete(tgid);
      else this.dead.set(tgid, left - 1);
    }
    for (const tgid of exited) {
      this.dead.set(tgid, DEAD_COLLECTS);
      this.peers.forget(tgid);
    }
    return { tcp, flows, exited: [...exited] };
  }

  stats(): NetworkStats {
    return {
      collects: this.collects,
      peersFolded: this.peers.folded,
      lateTcpKeys: this.lateTcpKeys,
      tcpKeysRestarted: this.tcpDiff.restarted,
      tcpKeys: this.tcpDiff.keys,
      flows: { ...this.flowAccounting.stats },
      malformed: this.decodeStats.malformed,
    };
  }

  private readFlows(): FlowObservation[] {
    const buf = this.source.readConnections();
    const entries = buf ? decodeConnections(buf, this.decodeStats) : [];
    return this.flowAccounting.read(entries).map((o) => ({ ...o, peer: this.peers.admit(o.tgid, o.peer) }));
  }

  private readTcp(exited: ReadonlySet<number>): TcpObservation[] {
    const buf = this.source.readTcpPeers();
    const all = buf ? decodeTcpPeers(buf, this.decodeStats) : [];
    const late = new Set<number>();
    const live = all.filter((e) => {
      if (!this.dead.has(e.tgid)) return true;
      late.add(e.tgid);
      this.lateTcpKeys++;
      return false;
    });
    const out = this.tcpDiff.diff(live).map((o) => ({ ...o, peer: this.peers.admit(o.tgid, o.peer) }));
    const doomed = [...exited, ...late];
    if (doomed.length > 0) {
      this.source.deleteTcpPeers(doomed);
      this.tcpDiff.forget(new Set(doomed));
    }
    return out;
  }
}
