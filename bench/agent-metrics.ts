// The agent's own counters (ebpf_otel.*, src/otel/metrics.ts AGENT_METRICS) as
// an OtlpReceiver got them in one metric export. Counters are cumulative since
// the agent started (the benchmarks run it with cumulative temporality), so a
// step's figures are the difference of two readings.

import { AGENT_METRICS } from '../src/agent/agent';
import type { OtlpReceiver, ReceivedPoint } from '../test/helpers/otlp-receiver';

export interface AgentCounters {
  /** Index of the receiver call that carried them. */
  readonly call: number;
  readonly atMs: number;
  readonly eventsCaptured: number;
  /** Kernel ring full, or JavaScript behind the native queue. */
  readonly eventsLost: number;
  readonly batchesDropped: number;
  /** Batches the native reader handed to JavaScript (0 from an agent that does not report them). */
  readonly batches: number;
  /** Deselected process or malformed record (not a loss under load). */
  readonly eventsDropped: number;
  /** L7 records, all protocols. */
  readonly records: number;
  readonly parseErrors: number;
  /** Request starts that became no record (abandoned, expired, evicted...), all reasons. */
  readonly requestsGivenUp: number;
  readonly spansExported: number;
  readonly spansDroppedQueueFull: number;
  readonly spansDroppedShutdown: number;
  readonly spanExportFailures: number;
  /** Gauges: at the time of the export. */
  readonly spanQueueSize: number;
  readonly connections: number;
  readonly connectionsEvicted: number;
}

const SPEC = Object.fromEntries(AGENT_METRICS.map((m) => [m.field, m])) as Record<string, (typeof AGENT_METRICS)[number]>;
const NAME = Object.fromEntries(AGENT_METRICS.map((m) => [m.field, m.name])) as Record<string, string>;
const CARRIER = NAME.eventsCaptured;

/** The agent's counters from the latest metric export that carried them, if any. */
export function latestAgentCounters(receiver: OtlpReceiver): AgentCounters | undefined {
  const pts = receiver.points;
  let i = pts.length - 1;
  while (i >= 0 && pts[i]!.metric.name !== CARRIER) i--;
  if (i < 0) return undefined;
  const call = pts[i]!.call;
  while (i > 0 && pts[i - 1]!.call === call) i--;
  const mine: ReceivedPoint[] = [];
  for (; i < pts.length && pts[i]!.call === call; i++) mine.push(pts[i]!);
  /** Summed over the metric's points; `key`: only the point whose attribute (per AGENT_METRICS) has that value. */
  const sum = (field: string, key?: string) =>
    mine
      .filter((p) => p.metric.name === NAME[field] && (key === undefined || p.attributes[SPEC[field]!.attribute!] === key))
      .reduce((a, p) => a + (p.value ?? 0), 0);
  return {
    call,
    atMs: receiver.calls[call]?.atMs ?? NaN,
    eventsCaptured: sum('eventsCaptured'),
    eventsLost: sum('eventsLost'),
    batchesDropped: sum('batchesDropped'),
    batches: sum('batchesDelivered'),
    eventsDropped: sum('eventsDropped'),
    records: sum('recordsByProtocol'),
    parseErrors: sum('parseErrorsByProtocol'),
    requestsGivenUp: sum('requestsGivenUpByReason'),
    spansExported: sum('spansExported'),
    spansDroppedQueueFull: sum('spansDroppedByReason', 'queue_full'),
    spansDroppedShutdown: sum('spansDroppedByReason', 'shutdown'),
    spanExportFailures: sum('spanExportFailuresByReason'),
    spanQueueSize: sum('spanQueueSize'),
    connections: sum('connectionsOpen'),
    connectionsEvicted: sum('connectionsEvicted'),
  };
}

/** Waits for the agent's next metric export after receiver call `afterCall` (-1: any). */
export async function nextAgentCounters(receiver: OtlpReceiver, afterCall: number, timeoutMs: number): Promise<AgentCounters> {
  let c: AgentCounters | undefined;
  await receiver.waitFor(
    () => {
      c = latestAgentCounters(receiver);
      return c !== undefined && c.call > afterCall;
    },
    timeoutMs,
    'a metric export from the agent',
  );
  return c!;
}

export interface Drained {
  readonly counters: AgentCounters;
  /** False: the agent was still busy when the timeout ran out. */
  readonly drained: boolean;
}

/**
 * Waits until the agent has digested everything it was sent: two metric
 * exports in a row with the same events and records, every record accounted
 * for as a span exported, dropped or failed (the agent must sample every
 * record: an export in flight is in none of these), an empty span queue, and
 * every exported span at the receiver. The counters are read at the time of an
 * export, so "quiet between two exports" is what tells a finished step from
 * one still in the pipeline.
 */
export async function waitForAgentDrained(receiver: OtlpReceiver, timeoutMs: number): Promise<Drained> {
  const deadline = Date.now() + timeoutMs;
  const left = () => Math.max(1, deadline - Date.now());
  let prev = await nextAgentCounters(receiver, latestAgentCounters(receiver)?.call ?? -1, left());
  for (;;) {
    let cur: AgentCounters;
    try {
      cur = await nextAgentCounters(receiver, prev.call, left());
    } catch {
      return { counters: prev, drained: false };
    }
    const quiet =
      cur.eventsCaptured === prev.eventsCaptured &&
      cur.records === prev.records &&
      cur.records === cur.spansExported + cur.spansDroppedQueueFull + cur.spansDroppedShutdown + cur.spanExportFailures &&
      cur.spanQueueSize === 0 &&
      receiver.spansReceived === cur.spansExported;
    if (quiet) return { counters: cur, drained: true };
    if (Date.now() >= deadline) return { counters: cur, drained: false };
    prev = cur;
  }
}
