// The agent, assembled in one place from its feature modules: socket capture
// with its protocols, TCP health and flows, syscall latency, TLS uprobes. `run`, the demo,
// the benchmarks and the tests all build it here:
//
//   const agent = createAgent(options, { logger });   // options: src/config/run-config.ts
//   await agent.start();                               // attach, tick, serve /healthz
//   ...
//   await agent.stop();                                // drain, last reads, flush, close
//
// Kernel events reach the features through one capture engine; the features
// reach OpenTelemetry through one Telemetry; the only way back down is a
// request to the kernel (mute a connection).

import { CaptureEngine, type CaptureDeps, type CaptureOptions, type KernelSession, type KernelSessionOptions, type ProgramGroups } from '../capture/capture-engine';
import { WallClock } from '../capture/clock';
import type { CaptureEvent, ExecEvent, ExitEvent } from '../capture/events';
import { openKernelSession, resolveCgroupV2 } from '../capture/kernel-session';
import { describePidNamespace, readPidNamespace, type PidNamespace } from '../capture/pid-namespace';
import { capabilityAdvisories, effectiveCaps } from '../capture/privileges';
import { UsageError } from '../config/flags';
import type { RunOptions } from '../config/run-config';
import { loadOtelConfig, type Env } from '../otel/config';
import { TELEMETRY_METRICS, type AgentHealth, type AgentMetric } from '../otel/metrics';
import { createTelemetry, type Telemetry, type TelemetryDeps } from '../otel/telemetry';
import { PROTOCOLS, protocolsById } from '../protocols/registry';
import type { ProtocolDefinition } from '../protocols/types';
import { ProcFs } from '../util/procfs';
import type { Logger } from '../util/log';
import type { AgentContext, AgentFeature, Release } from './feature';
import { NETWORK_METRICS, networkFeature, type NetworkFeatureOptions } from './features/network';
import { SOCKET_CAPTURE_METRICS, protocolMetrics, socketCapture, type SocketCapture } from './features/socket-capture';
import { SYSCALL_LATENCY_METRICS, syscallLatency, type SyscallLatencyOptions } from './features/syscall-latency';
import { TLS_METRICS, tlsFeature, type TlsFeatureOptions } from './features/tls';
import { LINKING_METRICS, linkingFeature, type LinkingFeatureOptions } from './features/linking';
import type { LinkRuntime } from '../capture/links/runtime';
import { HealthServer } from './health-server';
import { BurstEnd, releaseFreeMemory, StartupSettle, type MemoryReleased } from './memory-release';

/** Period of the features' ticks: request timeouts, trace-graph expiry, kernel table reads. */
export const AGENT_TICK_MS = 1000;

/** The capture engine's own metrics (the kernel's and the native reader's counters). */
export const CAPTURE_METRICS: readonly AgentMetric[] = [
  { field: 'eventsCaptured', name: 'ebpf_otel.capture.events', kind: 'counter', unit: '{event}', description: 'Kernel events received by the agent.' },
  { field: 'eventsLost', name: 'ebpf_otel.capture.lost_events', kind: 'counter', unit: '{event}', description: 'Kernel events lost because the ring buffer was full.' },
  { field: 'bytesTruncated', name: 'ebpf_otel.capture.truncated_payload', kind: 'counter', unit: 'By', description: 'Payload bytes moved by traced syscalls but not captured.' },
  { field: 'batchesDelivered', name: 'ebpf_otel.capture.batches', kind: 'counter', unit: '{batch}', description: 'Event batches handed from the native reader to JavaScript (each wakes the JS thread).' },
  { field: 'batchesDropped', name: 'ebpf_otel.capture.dropped_batches', kind: 'counter', unit: '{batch}', description: 'Event batches dropped between the native reader and JavaScript.' },
  { field: 'eventsDropped', name: 'ebpf_otel.capture.dropped_events', kind: 'counter', unit: '{event}', description: 'Events dropped in user space (deselected process, malformed record).' },
  { field: 'processesTraced', name: 'ebpf_otel.process.count', kind: 'gauge', unit: '{process}', description: 'Processes traced now.' },
  { field: 'processesUnconfirmed', name: 'ebpf_otel.process.unconfirmed', kind: 'counter', unit: '{process}', description: "Processes traced on the kernel's executable-name match alone: they exited before /proc could confirm it." },
];

/** Every metric the agent can report about itself with these protocols (documentation, dashboards, /metrics). */
export function agentMetrics(protocols: readonly ProtocolDefinition[] = PROTOCOLS): AgentMetric[] {
  return [...CAPTURE_METRICS, ...protocolMetrics(protocols), ...SOCKET_CAPTURE_METRICS, ...TELEMETRY_METRICS, ...NETWORK_METRICS, ...SYSCALL_LATENCY_METRICS, ...TLS_METRICS, ...LINKING_METRICS];
}

/** The agent's own metrics with its protocols. */
export const AGENT_METRICS: readonly AgentMetric[] = agentMetrics(PROTOCOLS);

export interface AgentDeps {
  readonly logger: Logger;
  /** The environment the OTEL_* variables are read from (default process.env). */
  readonly env?: Env;
  /** The protocol registry (default PROTOCOLS); `options.protocols` picks from it. */
  readonly protocols?: readonly ProtocolDefinition[];
  /** The kernel side (default: the native addon); a fake or a replay in tests and benchmarks. */
  readonly openSession?: (opts: KernelSessionOptions) => KernelSession;
  readonly resolveCgroup?: CaptureDeps['resolveCgroup'];
  readonly procfs?: ProcFs;
  readonly clock?: WallClock;
  /** Default: read from /proc. */
  readonly pidNamespace?: PidNamespace;
  /** The agent's own pid (never traced); default process.pid. */
  readonly agentPid?: number;
  /** Replacements for telemetry's transports and timers (tests, benchmarks). */
  readonly telemetry?: Partial<Omit<TelemetryDeps, 'clock' | 'logger' | 'procfs' | 'pidNamespace'>>;
  /** CLOCK_MONOTONIC ns now (default process.hrtime). */
  readonly monotonicNs?: () => number;
  /** Wall-clock ms now (default Date.now). */
  readonly nowMs?: () => number;
  /** Period of tick() (default AGENT_TICK_MS); 0: no timer, the caller ticks (replays on recorded time). */
  readonly tickMs?: number;
  /**
   * Ask the kernel to mute connections nobody parses (default true). False
   * only to measure what muting saves (bench/unknown-traffic.ts).
   */
  readonly mute?: boolean;
  /** Whether the kernel has uprobes (the tls and linking features); default: the uprobe PMU in sysfs. */
  readonly uprobesAvailable?: () => boolean;
  /** The runtimes the linking feature looks for (default: LINK_RUNTIMES). */
  readonly linkRuntimes?: readonly LinkRuntime[];
  /** Sees every capture event before the features (benchmarks count what the kernel shipped). */
  readonly tap?: (e: CaptureEvent) => void;
  /**
   * Gives free memory back to the system after a burst of connections ends
   * (default: the addon's LowMemoryNotification and malloc_trim, memory-release.ts).
   */
  readonly releaseMemory?: () => MemoryReleased;
}

export class Agent {
  readonly telemetry: Telemetry;
  readonly engine: CaptureEngine;
  readonly sockets: SocketCapture;
  /** In hook order. */
  readonly features: readonly AgentFeature[];
  /** The metrics /metrics and OTLP report about the agent itself. */
  readonly metrics: readonly AgentMetric[];
  private readonly logger: Logger;
  private readonly monotonicNs: () => number;
  private readonly tickMs: number;
  private health: HealthServer | undefined;
  private tickTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Within a batch or a tick: meters retire at its end, after its records. */
  private inStep = false;
  private readonly retiring: Array<() => void> = [];
  /** Holds not yet released, released at stop whatever they wait for. */
  private readonly openHolds = new Set<Release>();
  /** When a burst of connections is over (memory-release.ts). */
  private readonly burstEnd = new BurstEnd();
  /** When start-up is over (memory-release.ts). */
  private readonly startupSettle = new StartupSettle();
  private readonly releaseMemory: () => MemoryReleased;

  constructor(
    private readonly options: RunOptions,
    deps: AgentDeps,
  ) {
    const logger = (this.logger = deps.logger);
    const config = loadOtelConfig(deps.env ?? process.env, options.otel, options.otelFile);
    for (const w of config.warnings) logger.warn(w);
    if (deps.openSession === undefined) for (const a of capabilityAdvisories(effectiveCaps())) logger.warn(a);
    const registry = deps.protocols ?? PROTOCOLS;
    const clock = deps.clock ?? new WallClock();
    const procfs = deps.procfs ?? new ProcFs();
    const pidNamespace = deps.pidNamespace ?? readPidNamespace();
    logger.info(`pid namespace: ${describePidNamespace(pidNamespace)}`);
    this.monotonicNs = deps.monotonicNs ?? (() => Number(process.hrtime.bigint()));
    this.tickMs = deps.tickMs ?? AGENT_TICK_MS;
    this.releaseMemory = deps.releaseMemory ?? releaseFreeMemory;
    this.telemetry = createTelemetry(config, { ...deps.telemetry, logger, procfs, clock, pidNamespace });

    let engine: CaptureEngine | undefined;
    const ctx: AgentContext = {
      telemetry: this.telemetry,
      logger,
      engine: () => engine!,
      monotonicNs: this.monotonicNs,
      nowMs: deps.nowMs ?? Date.now,
    };
    const protocols = protocolsById(options.protocols, registry);
    this.sockets = socketCapture(
      { protocols, protocolOptions: options.protocolOptions, requestTimeoutNs: options.requestTimeoutNs, mute: deps.mute ?? true },
      ctx,
    );
    const network = networkFeature(options.features['network'] as NetworkFeatureOptions, (id) => this.sockets.protocolOf(id), ctx);
    const syscalls = syscallLatency(options.features['syscalls'] as SyscallLatencyOptions, ctx);
    const scanDeps = {
      procRoot: procfs.root,
      selectAll: options.capture.selectors.some((s) => s.kind === 'all'),
      agentPid: deps.agentPid ?? process.pid,
      ...(deps.uprobesAvailable ? { uprobesAvailable: deps.uprobesAvailable } : {}),
    };
    const tls = tlsFeature(options.features['tls'] as TlsFeatureOptions | undefined, ctx, scanDeps);
    const linking = linkingFeature(options.features['linking'] as LinkingFeatureOptions | undefined, ctx, {
      ...scanDeps,
      ...(deps.linkRuntimes ? { runtimes: deps.linkRuntimes } : {}),
      onProcessRuntime: (tgid, rule) => this.sockets.processRuntime(tgid, rule),
    });
    // Network first: it must see a connection's close while the tracker still knows its protocol.
    this.features = [network, this.sockets, syscalls, tls, linking].filter((f): f is AgentFeature => f !== undefined);
    this.metrics = [...CAPTURE_METRICS, ...this.features.flatMap((f) => f.healthMetrics ?? []), ...TELEMETRY_METRICS];

    const groups: { -readonly [K in keyof ProgramGroups]: boolean } = { sockets: false, syscalls: false, tcp: false, tls: false, links: false };
    for (const f of this.features) for (const [g, on] of Object.entries(f.groups ?? {})) if (on) groups[g as keyof ProgramGroups] = true;
    const capture: CaptureOptions = { ...options.capture, ...Object.assign({}, ...this.features.map((f) => f.capture ?? {})), groups };
    const slow = this.features.filter((f) => f.onSlowSyscall !== undefined);
    const afterBatch = this.features.filter((f) => f.afterBatch !== undefined);
    const eventHooks = [...(deps.tap ? [deps.tap] : []), ...this.features.flatMap((f) => (f.onEvent ? [f.onEvent.bind(f)] : []))];
    // Per event: the hooks called directly, no loop or state write (this runs for every captured syscall).
    const hooks = sinkOf(eventHooks);
    engine = this.engine = new CaptureEngine(
      capture,
      {
        openSession: deps.openSession ?? openKernelSession,
        procfs,
        logger,
        resolveCgroup: deps.resolveCgroup ?? resolveCgroupV2,
        pidNamespace,
        ...(deps.agentPid !== undefined ? { agentPid: deps.agentPid } : {}),
        ...(slow.length > 0 ? { onSlowSyscall: (e) => slow.forEach((f) => f.onSlowSyscall!(e)) } : {}),
      },
      (e) => {
        hooks(e);
        if (e.type === 'exec' || e.type === 'exit') this.lifecycle(e);
      },
      () => {
        this.inStep = true;
        for (const f of afterBatch) f.afterBatch!();
        this.endStep();
      },
    );
    this.telemetry.registerAgentHealth(this.metrics, () => this.featureHealth());
  }

  /**
   * Serves /healthz and /metrics when asked, loads and attaches the kernel
   * programs, selects the processes, starts polling and ticking. Returns the
   * programs attached. After a failure, stop() still cleans up.
   */
  async start(): Promise<string[]> {
    const h = this.options.health;
    if (h) {
      const health = new HealthServer(this.metrics, () => this.telemetry.agentHealth());
      try {
        const a = await health.listen(h.host, h.port);
        this.health = health;
        this.logger.info(`health and metrics on http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port} (/healthz, /metrics)`);
      } catch (e) {
        await this.telemetry.shutdown(0);
        this.stopped = true;
        throw new UsageError(`cannot listen on ${h.host}:${h.port} for --health-listen: ${(e as Error).message}`);
      }
    }
    const programs = this.engine.start();
    for (const f of this.features) f.started?.();
    if (this.tickMs > 0) this.tickTimer = setInterval(() => this.tick(this.monotonicNs()), this.tickMs);
    if (this.health) this.health.state = 'ready';
    return programs;
  }

  /** One tick of every feature (timeouts, expiry, table reads); the timer calls it every tickMs. */
  tick(nowNs: number): void {
    this.inStep = true;
    for (const f of this.features) f.tick?.(nowNs);
    this.endStep();
    // After a burst, what the closed connections used is free but still held
    // by V8 and malloc: give it back (at most once a minute), and once what
    // start-up used, when it is over (memory-release.ts).
    const open = this.sockets.connectionsOpen();
    const nowMs = nowNs / 1e6;
    const burstOver = this.burstEnd.observe(open, nowMs);
    const settled = this.startupSettle.pending && this.startupSettle.observe(this.engine.stats().batchesDelivered, nowMs);
    if (burstOver || settled) {
      this.startupSettle.released();
      const before = process.memoryUsage.rss();
      const r = this.releaseMemory();
      const mib = (n: number) => (n / 2 ** 20).toFixed(1);
      const why = burstOver ? `connections followed fell to ${open}` : 'start-up settled';
      this.logger.debug(
        r === undefined
          ? `memory: ${why}; no native addon to release memory with`
          : `memory: ${why}; released free memory: RSS ${mib(before)} -> ${mib(process.memoryUsage.rss())} MiB` +
              (r.trimmed ? '' : ' (malloc_trim had nothing)'),
      );
    }
  }

  /**
   * Stops ticking, waits for what the kernel already wrote, lets the
   * features read the kernel tables a last time, closes the kernel session,
   * ends every connection, retires every process and flushes telemetry
   * within its bound (shutdown_timeout). Safe to call more than once.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.tickTimer) clearInterval(this.tickTimer);
    if (this.health) this.health.state = 'stopping';
    // The exporters' timers are unref'd: without a handle of our own, Node
    // would exit in the middle of the final flush (a retry waiting for a
    // collector that is down) and lose what it holds.
    const keepAlive = setInterval(() => {}, 1000);
    try {
      await this.engine.drainAndStop(() => {
        for (const f of this.features) f.beforeCaptureStop?.();
      });
      const now = this.monotonicNs();
      for (const f of this.features) f.stop?.(now);
      // What still waits for a read that will not come: retired now.
      for (const release of [...this.openHolds]) release();
      this.endStep();
      await this.telemetry.shutdown();
    } finally {
      clearInterval(keepAlive);
      await this.health?.close();
    }
  }

  /** Replays a recorded native batch through the path live batches take (benchmarks, tests). */
  replay(batch: Buffer): void {
    this.engine.onBatch(batch);
  }

  /** The agent's own metrics now. */
  agentHealth(): AgentHealth {
    return this.telemetry.agentHealth();
  }

  /** Every kernel counter that is not 0, "name=value ...", for the debug log at exit. */
  kernelCounters(): string {
    const k = this.engine.stats().kernel;
    return Object.entries(k).filter(([, v]) => v !== 0).map(([n, v]) => `${n}=${v}`).join(' ') || 'all 0';
  }

  /** What the agent did and lost, for the log at exit. */
  summary(): string[] {
    const s = this.engine.stats();
    return [
      `captured ${s.kernel.events_sent} events (lost ${s.kernel.events_lost} in the kernel, ${s.recordsDropped} behind the native queue)`,
      `selection: dropped ${s.filteredInUserSpace} events of processes not selected in user space, ${s.decode.malformed} malformed; ` +
        `${s.unconfirmedExecs} processes kept on the kernel's name match, gone before /proc could confirm it`,
      ...this.features.flatMap((f) => f.summary?.() ?? []),
      ...this.telemetry.shutdownSummary(),
    ];
  }

  private featureHealth(): AgentHealth {
    const c = this.engine.stats();
    const h: Record<string, AgentHealth[string]> = {
      eventsCaptured: c.kernel.events_sent,
      // Lost because the agent did not keep up: the kernel ring was full, or JS fell behind the native queue.
      eventsLost: c.kernel.events_lost + c.recordsDropped,
      bytesTruncated: c.kernel.bytes_truncated,
      batchesDelivered: c.batchesDelivered,
      batchesDropped: c.batchesDropped,
      eventsDropped: c.filteredInUserSpace + c.decode.malformed,
      processesTraced: c.selectedProcesses,
      processesUnconfirmed: c.unconfirmedExecs,
    };
    for (const f of this.features) Object.assign(h, f.health?.());
    return h;
  }

  /**
   * A process's exec or exit retires its meters once every feature that
   * holds the event released it (each after its last measurements of the
   * process are recorded), at the end of the step that released it.
   */
  private lifecycle(e: ExecEvent | ExitEvent): void {
    // Only ever called from a batch's events: the batch's afterBatch retires.
    this.inStep = true;
    const retire = e.type === 'exec' ? () => this.telemetry.processExec(e.tgid) : () => this.telemetry.processExited(e.tgid, { comm: e.comm });
    let holds = 1;
    const release = () => {
      if (--holds > 0) return;
      if (this.inStep) this.retiring.push(retire);
      else retire();
    };
    const hold = (): Release => {
      holds++;
      const r: Release = () => {
        if (!this.openHolds.delete(r)) return;
        release();
      };
      this.openHolds.add(r);
      return r;
    };
    for (const f of this.features) f.onLifecycle?.(e, hold);
    release();
  }

  private endStep(): void {
    this.inStep = false;
    const due = this.retiring.splice(0);
    for (const retire of due) retire();
  }
}

/** One function calling every hook in order: direct calls for the common counts. */
function sinkOf(hooks: readonly ((e: CaptureEvent) => void)[]): (e: CaptureEvent) => void {
  const [a, b, c] = hooks;
  if (hooks.length === 0) return () => {};
  if (hooks.length === 1) return a!;
  if (hooks.length === 2) return (e) => (a!(e), b!(e));
  if (hooks.length === 3) return (e) => (a!(e), b!(e), c!(e));
  return (e) => {
    for (const h of hooks) h(e);
  };
}

export function createAgent(options: RunOptions, deps: AgentDeps): Agent {
  return new Agent(options, deps);
}

export type { CaptureEvent };
