// TCP health and flow metrics: each interval's increments (src/network/)
// recorded as counters and a lifetime histogram under the process's
// resource. Names follow the OpenTelemetry naming rules (a namespace,
// snake_case, units in UCUM, counts of things as {thing}); attributes are
// the semantic-convention network attributes.
//
// Peer attributes: network.transport, network.type, network.peer.address,
// and network.peer.port for the client role (the process connected) or
// server.port for the server role (the local port it was reached on). A
// connection whose role is unknown (it predates the agent) carries the
// address only. Peers past the per-process bound are one series with
// otel.metric.overflow=true (their direction or error type kept).

import type { Attributes } from '../protocols/types';
import { tcpLifetimeBoundsNs } from '../capture/kernel-tables';
import type { ProcessIdentity } from '../correlate/trace-record';
import type { NetworkInterval, Peer } from '../network/types';
import type { Attributes as MetricAttributes, InstrumentSpec } from '../protocols/types';
import type { ProcessAggregates, SumInstrument } from './aggregates';
import { OVERFLOW_ATTRIBUTE, type AggregatedHistogram } from './histograms';

const sum = (name: string, unit: string, description: string): SumInstrument => ({ kind: 'sum', name, unit, description });

export const TCP_METRICS = {
  attempts: sum('ebpf_otel.tcp.connection.attempts', '{connection}', 'TCP handshakes started by connect() (client role).'),
  established: sum(
    'ebpf_otel.tcp.connection.established',
    '{connection}',
    'TCP connections established: handshakes completed (client role) or connections returned by accept() (server role).',
  ),
  failures: sum(
    'ebpf_otel.tcp.connection.failures',
    '{connection}',
    'TCP handshakes that failed (client role), by error.type: the socket error (ECONNREFUSED, ETIMEDOUT, ...), or aborted when the process closed the socket first.',
  ),
  resets: sum(
    'ebpf_otel.tcp.connection.resets',
    '{reset}',
    'TCP resets on connections past the handshake, by network.io.direction: transmit (sent by this end) or receive.',
  ),
  retransmits: sum('ebpf_otel.tcp.connection.retransmits', '{segment}', 'TCP segments retransmitted, SYNs included.'),
  duration: {
    name: 'ebpf_otel.tcp.connection.duration',
    unit: 's',
    description: 'Lifetime of TCP connections that ended: from establishment (client role) or accept() (server role) to CLOSE.',
    // The kernel's log2 buckets (2^14 .. 2^44 ns, upper bounds inclusive), in seconds.
    boundaries: tcpLifetimeBoundsNs().map((ns) => ns / 1e9),
  } satisfies InstrumentSpec,
} as const;

export const FLOW_METRICS = {
  io: sum(
    'ebpf_otel.network.flow.io',
    'By',
    'Bytes moved on connections, by network.io.direction: transmit (sent by the process) or receive; true sizes, also of connections whose payload is not captured.',
  ),
  connections: sum('ebpf_otel.network.flow.connections', '{connection}', 'Connections, each counted once: when its first bytes or its close are accounted.'),
} as const;

/** What the metrics are recorded into (MetricsPipeline). */
export interface AggregatesTarget {
  aggregatesFor(process: ProcessIdentity): ProcessAggregates | undefined;
  /** Kernel bucket counts into the process's histograms (the lifetimes). */
  recordAggregated(process: ProcessIdentity, instrument: InstrumentSpec, attributes: MetricAttributes, agg: AggregatedHistogram): void;
}

export interface NetworkMetricsOptions {
  readonly tcp: boolean;
  readonly flows: boolean;
}

export class NetworkMetrics {
  constructor(
    private readonly target: AggregatesTarget,
    private readonly opts: NetworkMetricsOptions,
    private readonly nowMs: () => number = Date.now,
  ) {}

  record(interval: NetworkInterval): void {
    const now = this.nowMs();
    if (this.opts.tcp) {
      for (const o of interval.tcp) {
        const agg = this.target.aggregatesFor({ tgid: o.tgid });
        if (agg === undefined) return;
        const base = peerAttributes(o.peer, 'tcp');
        const c = o.counts;
        agg.add(TCP_METRICS.attempts, base, c.attempts, now);
        agg.add(TCP_METRICS.established, base, c.established, now);
        for (const [errorType, n] of Object.entries(c.failures)) agg.add(TCP_METRICS.failures, { ...base, 'error.type': errorType }, n, now);
        agg.add(TCP_METRICS.resets, { ...base, 'network.io.direction': 'transmit' }, c.resetsSent, now);
        agg.add(TCP_METRICS.resets, { ...base, 'network.io.direction': 'receive' }, c.resetsRecv, now);
        agg.add(TCP_METRICS.retransmits, base, c.retransmits, now);
        let count = 0;
        for (const n of c.lifetimeBuckets) count += n;
        // The kernel keeps no minimum nor maximum: none is sent.
        this.target.recordAggregated({ tgid: o.tgid }, TCP_METRICS.duration, base, { counts: c.lifetimeBuckets, count, sum: c.lifetimeSumNs / 1e9, max: undefined });
      }
    }
    if (this.opts.flows) {
      for (const o of interval.flows) {
        const agg = this.target.aggregatesFor({ tgid: o.tgid });
        if (agg === undefined) return;
        const base = peerAttributes(o.peer, o.transport);
        const attrs = o.protocol !== undefined && !o.peer.overflow ? { ...base, 'network.protocol.name': o.protocol } : base;
        agg.add(FLOW_METRICS.io, { ...attrs, 'network.io.direction': 'transmit' }, o.bytesSent, now);
        agg.add(FLOW_METRICS.io, { ...attrs, 'network.io.direction': 'receive' }, o.bytesRecv, now);
        agg.add(FLOW_METRICS.connections, attrs, o.connections, now);
      }
    }
  }
}

/** The attributes that name a peer (see the file comment). */
export function peerAttributes(peer: Peer, transport: 'tcp' | 'udp'): Attributes {
  if (peer.overflow) return { [OVERFLOW_ATTRIBUTE]: true };
  const a: Record<string, string | number> = { 'network.transport': transport };
  if (peer.address !== undefined) {
    a['network.type'] = peer.address.includes(':') ? 'ipv6' : 'ipv4';
    a['network.peer.address'] = peer.address;
  }
  if (peer.port !== undefined) {
    if (peer.role === 'client') a['network.peer.port'] = peer.port;
    else if (peer.role === 'server') a['server.port'] = peer.port;
  }
  return a;
}
