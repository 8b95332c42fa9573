// TCP health and flows: the kernel's tcp_peers and conn_info tables read
// whole and diffed every tick, on exits (so a process's last counters are in
// before its meters retire, at most every EXIT_SETTLE_MIN_MS) and at the end,
// then recorded as ebpf_otel.tcp.connection.* and ebpf_otel.network.flow.*.

import type { ExitEvent } from '../../capture/events';
import { NetworkCollector } from '../../network/collector';
import type { ProtocolOf } from '../../network/flows';
import type { AgentHealth, AgentMetric } from '../../otel/metrics';
import { NetworkMetrics } from '../../otel/network-metrics';
import type { AgentContext, AgentFeature, Release } from '../feature';

/** TCP health and flow metrics: which, and their bounds. */
export interface NetworkFeatureOptions {
  readonly tcp: boolean;
  readonly flows: boolean;
  readonly maxPeersPerProcess: number;
  /** (process, peer) keys the kernel counts TCP health for (tcp group). */
  readonly tcpPeerEntries?: number;
}

/**
 * Exits settle at most this often: each settling reads both tables whole,
 * so a burst of exits costs one read, not one each.
 */
export const EXIT_SETTLE_MIN_MS = 100;

export const NETWORK_METRICS: readonly AgentMetric[] = [
  { field: 'tcpEventsUnowned', name: 'ebpf_otel.tcp.unowned_events', kind: 'counter', unit: '{event}', description: 'TCP events on sockets with no known owner (not selected, opened before the agent, or not yet accepted): ignored.' },
  { field: 'tcpEventsFolded', name: 'ebpf_otel.tcp.folded_events', kind: 'counter', unit: '{event}', description: "TCP events counted under a process's overflow key: the kernel's TCP table was full." },
  { field: 'tcpEventsLost', name: 'ebpf_otel.tcp.lost_events', kind: 'counter', unit: '{event}', description: "TCP events not counted: the kernel's overflow table was full, or a socket's owner could not be stored." },
  { field: 'networkPeersFolded', name: 'ebpf_otel.network.peer_overflows', kind: 'counter', unit: '{measurement}', description: 'TCP health and flow increments folded into a process overflow peer (otel.metric.overflow=true).' },
  { field: 'connectionsVanished', name: 'ebpf_otel.network.vanished_connections', kind: 'counter', unit: '{connection}', description: 'Connections gone from the kernel table without a close event: their last bytes are missing from the flow metrics.' },
];

/**
 * The feature, or none when it has nothing to do: neither metric family on,
 * or no metric exporter (nothing would be read, the TCP programs stay out).
 */
export function networkFeature(o: NetworkFeatureOptions, protocolOf: ProtocolOf, ctx: AgentContext): AgentFeature | undefined {
  const { telemetry, logger } = ctx;
  if (!telemetry.metrics.enabled || (!o.tcp && !o.flows)) return undefined;
  const engine = () => ctx.engine();
  const network = new NetworkCollector(
    { readTcpPeers: () => engine().readTcpPeers(), readConnections: () => engine().readConnections(), deleteTcpPeers: (t) => engine().deleteTcpPeers(t) },
    { tcp: o.tcp, flows: o.flows, maxPeersPerProcess: o.maxPeersPerProcess, protocolOf },
  );
  const metrics = new NetworkMetrics(telemetry.metrics, { tcp: o.tcp, flows: o.flows });
  /** Exits whose meters wait for the next read of their process's counters. */
  const held = new Map<number, Release>();
  let lastCollectMs = 0;
  const releaseAll = () => {
    for (const release of held.values()) release();
    held.clear();
  };
  const collect = () => {
    if (!engine().running) return;
    lastCollectMs = ctx.nowMs();
    try {
      const interval = network.collect();
      metrics.record(interval);
      for (const tgid of interval.exited) {
        held.get(tgid)?.();
        held.delete(tgid);
      }
    } catch (err) {
      logger.warnOnce('network-collect', `cannot read the kernel's TCP and connection tables: ${(err as Error).message}`);
      // Their last counters are lost; their meters must not wait for them.
      releaseAll();
    }
  };
  return {
    name: 'TCP health and flows',
    groups: { tcp: o.tcp },
    ...(o.tcpPeerEntries !== undefined ? { capture: { tcpPeerEntries: o.tcpPeerEntries } } : {}),
    healthMetrics: NETWORK_METRICS,
    // Before the socket capture sees the event: a closing connection's protocol is still known to the tracker.
    onEvent: (e) => network.onEvent(e),
    onLifecycle(e, hold) {
      if (e.type !== 'exit') return;
      held.get((e as ExitEvent).tgid)?.();
      held.set(e.tgid, hold());
    },
    afterBatch() {
      if (network.exitsPending > 0 && ctx.nowMs() - lastCollectMs >= EXIT_SETTLE_MIN_MS) collect();
    },
    tick: () => collect(),
    // The last read comes after what the kernel wrote reached us, before the tables go.
    beforeCaptureStop: () => collect(),
    stop: () => releaseAll(),
    health(): AgentHealth {
      const k = engine().stats().kernel;
      const s = network.stats();
      return {
        tcpEventsUnowned: k.tcp_unowned,
        tcpEventsFolded: k.tcp_peer_folded,
        tcpEventsLost: k.tcp_peer_lost + k.tcp_owner_failed,
        networkPeersFolded: s.peersFolded,
        connectionsVanished: s.flows.vanished,
      };
    },
  };
}
