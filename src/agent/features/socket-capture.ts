// Socket capture with its L7 protocols: the connection tracker (streams,
// detection, protocol sessions), the trace graph (ids, parents, sampling)
// and the pipeline that hands linked records to telemetry. Connections no
// protocol will read are muted in the kernel: the one request back down.

import { ConnectionTracker } from '../../correlate/connection-tracker';
import { TraceGraph } from '../../correlate/trace-graph';
import type { AgentHealth, AgentMetric } from '../../otel/metrics';
import { shouldSample } from '../../otel/sampler';
import { LINK_REJECTIONS, LINK_RULES } from '../../correlate/trace-graph';
import type { LinkRule } from '../../capture/events';
import { COMMON_PROTOCOL_COUNTERS, type ProtocolCounter, type ProtocolDefinition } from '../../protocols/types';
import type { AgentContext, AgentFeature } from '../feature';
import { AgentPipeline, type PipelineStats } from '../pipeline';

export interface SocketCaptureOptions {
  /** The enabled protocols, in detection order. */
  readonly protocols: readonly ProtocolDefinition[];
  /** Each protocol's session options, by id. */
  readonly protocolOptions: Readonly<Record<string, unknown>>;
  /** A request without a response for this long becomes an error record. */
  readonly requestTimeoutNs: number;
  /** Ask the kernel to stop shipping connections nobody parses. */
  readonly mute: boolean;
}

/** The protocols' counters: common ones first, then each protocol's own, once per name. */
function protocolCounters(protocols: readonly ProtocolDefinition[]): ProtocolCounter[] {
  const counters: ProtocolCounter[] = [...COMMON_PROTOCOL_COUNTERS];
  for (const p of protocols) for (const c of p.counters ?? []) if (!counters.some((x) => x.name === c.name)) counters.push(c);
  return counters;
}

/** The record counter, then the protocols' counters. */
export function protocolMetrics(protocols: readonly ProtocolDefinition[], counters = protocolCounters(protocols)): AgentMetric[] {
  return [
    { field: 'recordsByProtocol', name: 'ebpf_otel.protocol.records', kind: 'counter', unit: '{record}', description: 'L7 records produced, per protocol.', attribute: 'ebpf_otel.protocol' },
    ...counters.map(
      (c): AgentMetric => ({ field: byProtocolField(c), name: `ebpf_otel.protocol.${c.name}`, kind: 'counter', unit: c.unit, description: c.description, attribute: 'ebpf_otel.protocol' }),
    ),
  ];
}

/** parseErrors -> parseErrorsByProtocol: the health field of a protocol counter. */
const byProtocolField = (c: ProtocolCounter) => `${c.field}ByProtocol`;

export const SOCKET_CAPTURE_METRICS: readonly AgentMetric[] = [
  { field: 'connectionsOpen', name: 'ebpf_otel.connection.count', kind: 'gauge', unit: '{connection}', description: 'Connections followed now.' },
  { field: 'connectionsEvicted', name: 'ebpf_otel.connection.evicted', kind: 'counter', unit: '{connection}', description: 'Connections evicted from the bounded connection table.' },
  { field: 'spanLinksByReason', name: 'ebpf_otel.trace.links', kind: 'counter', unit: '{span}', description: 'Spans placed in a trace, per way their parent was found (root: none).', attribute: 'ebpf_otel.link' },
  {
    field: 'requestsGivenUpByReason',
    name: 'ebpf_otel.request.given_up',
    kind: 'counter',
    unit: '{request}',
    description: 'Request starts that became no record, per reason (the exit summary adds them up against starts and records).',
    attribute: 'ebpf_otel.reason',
  },
  {
    field: 'runtimeLinksRejected',
    name: 'ebpf_otel.trace.link_rejected',
    kind: 'counter',
    unit: '{mark}',
    description: 'Runtime marks (nginx, Go, the Node.js preload) that linked nothing, per runtime and reason (not_socket, wrong_role, no_request, ambiguous, ended, unmarked, rule_off).',
    attribute: 'ebpf_otel.link',
    secondAttribute: 'ebpf_otel.reason',
  },
  {
    field: 'runtimeLinkChecksFailed',
    name: 'ebpf_otel.trace.link_checks_failed',
    kind: 'counter',
    unit: '{process}',
    description: "Processes whose first runtime marks named fds that are no followed sockets or sockets of the wrong role (the probe's offsets do not fit that build): their marks are ignored, their CLIENT spans are roots.",
    attribute: 'ebpf_otel.link',
  },
  { field: 'spanLinksAmbiguous', name: 'ebpf_otel.trace.ambiguous_links', kind: 'counter', unit: '{span}', description: 'CLIENT spans left without a parent because several SERVER requests were in flight on an event loop.' },
  { field: 'connectionsMuted', name: 'ebpf_otel.connection.muted', kind: 'counter', unit: '{connection}', description: 'Connections of unknown protocol muted in the kernel (positions and totals kept, payload not shipped).' },
  { field: 'mutedBytes', name: 'ebpf_otel.capture.muted_bytes', kind: 'counter', unit: 'By', description: 'Bytes moved on muted connections: counted in the kernel, not shipped.' },
  { field: 'mutedSyscalls', name: 'ebpf_otel.capture.muted_syscalls', kind: 'counter', unit: '{syscall}', description: 'Data syscalls on muted connections.' },
  { field: 'lateCiphertextEvents', name: 'ebpf_otel.tls.late_ciphertext_events', kind: 'counter', unit: '{event}', description: 'Socket data events of a connection already read as TLS plaintext (ciphertext the kernel shipped before the connection was found to be TLS): dropped, never parsed.' },
  { field: 'callsWithoutEntry', name: 'ebpf_otel.capture.calls_without_entry', kind: 'counter', unit: '{call}', description: 'Syscall exits and TLS call returns whose entry the kernel side did not see (in flight at attach, or its entry not recorded): not captured.' },
  { field: 'muteFailures', name: 'ebpf_otel.connection.mute_failures', kind: 'counter', unit: '{connection}', description: 'Mute requests the kernel did not take; those connections keep shipping payload.' },
];

/** Why a request start became no record: the metric's reason, the exit summary's words, the trace graph's count. */
const GIVEN_UP: ReadonlyArray<readonly [reason: string, label: string, count: (g: PipelineStats['graph']) => number]> = [
  ['abandoned', 'abandoned by the parser', (g) => g.abandoned],
  ['expired', 'expired without a record', (g) => g.expired],
  ['connection_evicted', 'connection evicted', (g) => g.connectionEvicted],
  ['process_exited', 'process exited', (g) => g.processExited],
  ['graph_full', "over the trace graph's bound", (g) => g.evicted],
];

/**
 * Where every request start went: a record, or given up for a reason; and
 * the records, which also count those whose start was never seen. Both add
 * up exactly (TraceGraphStats).
 */
export function requestLedger(p: PipelineStats): string {
  const g = p.graph;
  const givenUp: Array<[string, number]> = [...GIVEN_UP.map(([, label, count]): [string, number] => [label, count(g)]), ['still pending', p.pendingRequests]];
  const total = givenUp.reduce((n, [, v]) => n + v, 0);
  const records = Object.values(p.recordsByProtocol).reduce((n, v) => n + v, 0);
  return (
    `requests: started ${g.started} = recorded ${g.recorded} + given up ${total} (${givenUp.map(([k, v]) => `${k} ${v}`).join(', ')}); ` +
    `records ${records} = ${g.recorded} started + ${g.lateStarts} whose start was not seen`
  );
}

/** One line per runtime that marked anything: its marks, links, rejections and failed checks. */
export function runtimeLinkLines(g: PipelineStats['graph']): string[] {
  return LINK_RULES.filter((r) => g.runtime[r].sets + g.runtime[r].clears > 0).map((r) => {
    const st = g.runtime[r];
    const rejected = LINK_REJECTIONS.filter((why) => st.rejected[why] > 0).map((why) => `${why} ${st.rejected[why]}`);
    return (
      `links (${r}): marks ${st.sets} set + ${st.clears} clear; linked ${g.linked[r]}; ` +
      `rejected ${rejected.length > 0 ? rejected.join(', ') : 'none'}; processes failing the check ${st.checksFailed}`
    );
  });
}

export interface SocketCapture extends AgentFeature {
  /** A process's runtime, as the linking feature recognised its executable (TraceGraph.processRuntime). */
  processRuntime(tgid: number, rule: LinkRule | undefined): void;
  /** The tracker's settled view of a connection's protocol (flows). */
  protocolOf(connId: number): { readonly decided: boolean; readonly protocol?: string };
  /** Connections followed now (cheap: read every tick). */
  connectionsOpen(): number;
  stats(): PipelineStats;
}

export function socketCapture(o: SocketCaptureOptions, ctx: AgentContext): SocketCapture {
  const { telemetry, logger } = ctx;
  const tracker = new ConnectionTracker({ protocols: o.protocols, protocolOptions: o.protocolOptions, requestTimeoutNs: o.requestTimeoutNs }, logger);
  const sampler = telemetry.config.sampler;
  const graph = new TraceGraph({ decide: (traceId, parent) => shouldSample(sampler, traceId, parent) }, undefined, {
    onRuleOff: (tgid, rule, why) =>
      logger.warn(`links: process ${tgid}: its ${rule} marks fail the check (${why}): this build's layout is not the one the probes read; its calls are left without a parent (counted in ebpf_otel.trace.link_checks_failed)`),
  });
  // Connections the tracker ignores are muted in the kernel: their bytes stop being copied and shipped.
  // A connection muted from its ciphertext is unmuted once its TLS plaintext is parsed.
  const feedback = { muteConnections: (ids: readonly number[]) => ctx.engine().muteConnections(ids), unmuteConnections: (ids: readonly number[]) => ctx.engine().unmuteConnections(ids) };
  const pipeline = new AgentPipeline(tracker, graph, telemetry, o.mute ? feedback : undefined);
  const counters = protocolCounters(o.protocols);
  let countersLookedAt = 0;
  return {
    name: 'socket capture',
    groups: { sockets: true },
    healthMetrics: [...protocolMetrics(o.protocols, counters), ...SOCKET_CAPTURE_METRICS],
    onEvent: (e) => pipeline.onEvent(e),
    afterBatch: () => pipeline.flush(),
    tick: (nowNs) => {
      pipeline.tick(nowNs);
      // Each protocol counter's first count gets one log line (bounds reached, input given up): later ones only count.
      // Looked at every 10 s: summing every session's stats is not free.
      if (nowNs - countersLookedAt < 10e9) return;
      countersLookedAt = nowNs;
      for (const [id, st] of Object.entries(pipeline.stats().tracker.protocol)) {
        for (const c of counters) {
          if ((st[c.field] ?? 0) > 0) logger.warnOnce(`protocol-${id}-${c.name}`, `${id}: ${c.name} ${st[c.field]} so far (${c.description.replace(/,? per protocol\.$/, '.')}); counted in ebpf_otel.protocol.${c.name}`);
        }
      }
    },
    stop: (nowNs) => pipeline.end(nowNs),
    protocolOf: (connId) => tracker.protocolOf(connId),
    processRuntime: (tgid, rule) => graph.processRuntime(tgid, rule),
    connectionsOpen: () => tracker.connectionCount,
    stats: () => pipeline.stats(),
    health(): AgentHealth {
      const p = pipeline.stats();
      const k = ctx.engine().stats();
      const h: Record<string, AgentHealth[string]> = {
        recordsByProtocol: p.recordsByProtocol,
        connectionsOpen: p.tracker.connections,
        connectionsEvicted: p.tracker.evicted,
        spanLinksByReason: p.graph.linked,
        spanLinksAmbiguous: p.graph.ambiguous,
        runtimeLinksRejected: Object.fromEntries(LINK_RULES.flatMap((r) => LINK_REJECTIONS.map((why) => [`${r}|${why}`, p.graph.runtime[r].rejected[why]]))),
        runtimeLinkChecksFailed: Object.fromEntries(LINK_RULES.map((r) => [r, p.graph.runtime[r].checksFailed])),
        requestsGivenUpByReason: Object.fromEntries(GIVEN_UP.map(([reason, , count]) => [reason, count(p.graph)])),
        connectionsMuted: k.kernel.conn_muted,
        mutedBytes: k.kernel.muted_bytes,
        mutedSyscalls: k.kernel.muted_syscalls,
        callsWithoutEntry: k.kernel.args_missing,
        lateCiphertextEvents: p.tracker.ciphertextDropped,
        muteFailures: k.muteRequestsFailed,
      };
      for (const c of counters) {
        h[byProtocolField(c)] = Object.fromEntries(Object.entries(p.tracker.protocol).flatMap(([id, s]) => (s[c.field] !== undefined ? [[id, s[c.field]!]] : [])));
      }
      return h;
    },
    summary() {
      const s = ctx.engine().stats();
      const p = pipeline.stats();
      return [
        `records: ${Object.entries(p.recordsByProtocol).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}; ` +
          `muted ${s.kernel.conn_muted} connections of unknown protocol, ${s.kernel.muted_bytes} bytes not shipped` +
          (s.muteRequestsFailed > 0 ? ` (${s.muteRequestsFailed} mute requests failed)` : ''),
        // What a user (or a failing test) needs to judge the trace graph and the streams afterwards.
        requestLedger(p),
        `parents: ${Object.entries(p.graph.linked).map(([k, v]) => `${k} ${v}`).join(', ')}, ambiguous ${p.graph.ambiguous}, ` +
          `late starts ${p.graph.lateStarts}; streams: reordered ${p.tracker.stream.reordered}, gap bytes ${p.tracker.stream.gapBytes}, ` +
          `overlaps ${p.tracker.stream.overlaps}`,
        ...runtimeLinkLines(p.graph),
      ];
    },
  };
}
