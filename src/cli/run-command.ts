// `ebpf-otel run`: the main job. Captures the selected processes, turns
// their traffic into spans and RED metrics, exports over OTLP (or prints to
// the console when no endpoint is configured), and on SIGINT/SIGTERM flushes
// everything pending before it exits 0.

import { CAPTURE_DEFAULTS, CaptureEngine, type CaptureOptions } from '../capture/capture-engine';
import { WallClock } from '../capture/clock';
import { openKernelSession, resolveCgroupV2 } from '../capture/kernel-session';
import { describePidNamespace, readPidNamespace } from '../capture/pid-namespace';
import { capabilityAdvisories, effectiveCaps } from '../capture/privileges';
import { ProcFs } from '../util/procfs';
import { ConnectionTracker } from '../correlate/connection-tracker';
import { TraceGraph } from '../correlate/trace-graph';
import { AgentPipeline } from '../agent/pipeline';
import { HealthServer } from '../agent/health-server';
import { protocolsById } from '../protocols/registry';
import { loadOtelConfig, type Env } from '../otel/config';
import { shouldSample } from '../otel/sampler';
import { createTelemetry } from '../otel/telemetry';
import { NetworkCollector } from '../network/collector';
import { NetworkMetrics } from '../otel/network-metrics';
import { createLogger, type Logger, type LogLevel } from '../util/log';
import { UsageError } from '../config/flags';
import { RUN_USAGE, parseRunFlags, resolveRunConfig, type NetworkRunOptions, type ResolveOptions, type RunOptions } from '../config/run-config';
import { runUntilSignal } from './lifecycle';
// -- syscall latency --
import type { SlowSyscallEvent } from '../capture/events';
import { SyscallCollector } from '../capture/syscall-collector';
import { HOST_SYSCALL_ARCH } from '../capture/syscall-names';
import { SyscallMetrics } from '../agent/syscall-metrics';
import { SyscallMetricsRecorder } from '../otel/syscall-duration';
import { slowSyscallLog } from '../otel/slow-syscall-log';
import { slowSyscallText } from './syscalls-format';
// -- end syscall latency --

export { RUN_USAGE, type RunOptions } from '../config/run-config';

/**
 * The options `run` would use with these flags, this environment and the
 * configuration file they name (--config, else EBPF_OTEL_CONFIG).
 */
export function parseRunArgs(argv: string[], opts: ResolveOptions & { env?: Env } = {}): RunOptions | 'help' {
  const values = parseRunFlags(argv);
  if (values.help) return 'help';
  return resolveRunConfig(values, opts.env ?? process.env, opts).options;
}

/** HOST:PORT or [IPv6]:PORT. */
export { hostPort } from '../config/flags';

export async function runCommand(argv: string[], logLevelFlag?: LogLevel): Promise<number> {
  const values = parseRunFlags(argv);
  if (values.help) {
    process.stdout.write(RUN_USAGE + '\n');
    return 0;
  }
  const config = resolveRunConfig(values, process.env, logLevelFlag !== undefined ? { logLevelFlag } : {});
  const logger = createLogger(config.logLevel);
  if (config.configFile !== undefined) logger.info(`configuration file ${config.configFile}`);
  for (const w of config.warnings) logger.warn(w);
  return runAgent(config.options, logger);
}

export async function runAgent(opts: RunOptions, logger: Logger, onReady?: () => void | Promise<void>): Promise<number> {
  const config = loadOtelConfig(process.env, opts.otel, opts.otelFile);
  for (const w of config.warnings) logger.warn(w);
  for (const a of capabilityAdvisories(effectiveCaps())) logger.warn(a);
  const protocols = protocolsById(opts.protocols);
  const clock = new WallClock();
  const procfs = new ProcFs();
  const pidNamespace = readPidNamespace();
  logger.info(`pid namespace: ${describePidNamespace(pidNamespace)}`);
  const telemetry = createTelemetry(config, { logger, procfs, clock, pidNamespace });
  const tracker = new ConnectionTracker(
    {
      protocols,
      protocolOptions: {
        routes: opts.routes,
        captureQuery: opts.captureQuery,
        captureHeaders: opts.captureHeaders,
        redactHeaders: opts.redactHeaders,
      },
      requestTimeoutNs: opts.requestTimeoutNs,
    },
    logger,
  );
  const graph = new TraceGraph({ decide: (traceId, parent) => shouldSample(config.sampler, traceId, parent) });
  // Connections the tracker ignores are muted in the kernel: their bytes stop
  // being copied and shipped. `engine` is bound by the time a batch is flushed.
  const pipeline = new AgentPipeline(tracker, graph, telemetry, { muteConnections: (ids) => engine.muteConnections(ids) });
  // ---- TCP health and flows ----
  // Read from the kernel tables every second, on exits (so a process's last
  // counters are reported before its meters retire) and at the end.
  // Without a metric exporter there is nowhere for them to go: nothing is read, the TCP programs stay out.
  const net: NetworkRunOptions = telemetry.metrics.enabled ? opts.network : { ...opts.network, tcp: false, flows: false };
  const network =
    net.tcp || net.flows
      ? new NetworkCollector(
          { readTcpPeers: () => engine.readTcpPeers(), readConnections: () => engine.readConnections(), deleteTcpPeers: (t) => engine.deleteTcpPeers(t) },
          { tcp: net.tcp, flows: net.flows, maxPeersPerProcess: net.maxPeersPerProcess, protocolOf: (id) => tracker.protocolOf(id) },
        )
      : undefined;
  const networkMetrics = new NetworkMetrics(telemetry.metrics, { tcp: net.tcp, flows: net.flows });
  /** Exits waiting for the network's last read of their process. */
  const exits = new Map<number, { comm: string }>();
  let lastNetworkCollect = 0;
  const collectNetwork = () => {
    if (!network || !engine.running) return;
    lastNetworkCollect = Date.now();
    try {
      const interval = network.collect();
      networkMetrics.record(interval);
      for (const tgid of interval.exited) {
        telemetry.processExited(tgid, exits.get(tgid));
        exits.delete(tgid);
      }
    } catch (err) {
      logger.warnOnce('network-collect', `cannot read the kernel's TCP and connection tables: ${(err as Error).message}`);
      // Their last counters are lost; their telemetry must not wait for them.
      for (const [tgid, info] of exits) telemetry.processExited(tgid, info);
      exits.clear();
    }
  };
  // ---- end TCP health and flows ----
  // -- syscall latency: each slow call becomes an OTLP log record (src/otel/slow-syscall-log.ts says why not a span event) --
  let slowSyscalls = 0;
  const onSlowSyscall = (e: SlowSyscallEvent) => {
    slowSyscalls++;
    telemetry.emitLog(slowSyscallLog(e, HOST_SYSCALL_ARCH));
    logger.debug(`slow syscall: ${slowSyscallText(e, clock.toWallNs(e.tsEnterNs), HOST_SYSCALL_ARCH)}`);
  };
  let syscalls: SyscallMetrics | undefined;
  // Without a metric exporter the histograms would go nowhere: the kernel side then only runs for --slow.
  const syscallMetricsOn = opts.syscallMetrics.enabled && telemetry.metrics.enabled;
  const slowOn = (opts.capture.syscalls?.slowNs ?? 0) > 0;
  const capture: CaptureOptions = {
    ...opts.capture,
    groups: { ...(opts.capture.groups ?? CAPTURE_DEFAULTS.groups), tcp: net.tcp, syscalls: syscallMetricsOn || slowOn },
  };
  // -- end syscall latency --
  const engine = new CaptureEngine(
    capture,
    { openSession: openKernelSession, procfs, logger, resolveCgroup: resolveCgroupV2, pidNamespace, onSlowSyscall },
    (e) => {
      network?.onEvent(e); // first: a closing connection's protocol is still known to the tracker
      pipeline.onEvent(e);
      // A process's meters retire once its last measurements are in: syscall
      // histograms read at the end of the batch, then the network tables' next read.
      const retire =
        e.type === 'exec'
          ? () => telemetry.processExec(e.tgid)
          : e.type === 'exit'
            ? () => {
                if (network) exits.set(e.tgid, { comm: e.comm });
                else telemetry.processExited(e.tgid, { comm: e.comm });
              }
            : undefined;
      if (retire && !syscalls?.deferLifecycle(e, retire)) retire();
    },
    () => {
      pipeline.flush();
      syscalls?.afterBatch();
      // Exits settle at most every 100 ms: each settling reads the whole tables.
      if (network && network.exitsPending > 0 && Date.now() - lastNetworkCollect >= 100) collectNetwork();
    },
  );
  // -- syscall latency --
  if (syscallMetricsOn) {
    const metrics = new SyscallMetrics(
      new SyscallCollector(engine),
      new SyscallMetricsRecorder(telemetry, HOST_SYSCALL_ARCH, opts.syscallMetrics.maxSeries),
      logger,
    );
    syscalls = metrics;
    telemetry.beforeMetricCollection(() => metrics.collect());
  }
  // -- end syscall latency --
  telemetry.registerAgentHealth(() => {
    const c = engine.stats();
    const p = pipeline.stats();
    return {
      eventsCaptured: c.kernel.events_sent,
      // Lost because the agent did not keep up: the kernel ring was full, or JS fell behind the native queue.
      eventsLost: c.kernel.events_lost + c.recordsDropped,
      bytesTruncated: c.kernel.bytes_truncated,
      batchesDropped: c.batchesDropped,
      eventsDropped: c.filteredInUserSpace + c.decode.malformed,
      processesTraced: c.selectedProcesses,
      recordsByProtocol: p.recordsByProtocol,
      parseErrorsByProtocol: Object.fromEntries(Object.entries(p.tracker.protocol).map(([k, s]) => [k, s.parseErrors])),
      headerValuesDroppedByProtocol: Object.fromEntries(Object.entries(p.tracker.protocol).map(([k, s]) => [k, s.headerValuesDropped])),
      connectionsOpen: p.tracker.connections,
      connectionsEvicted: p.tracker.evicted,
      spanLinksByReason: p.graph.linked,
      spanLinksAmbiguous: p.graph.ambiguous,
      connectionsMuted: c.kernel.conn_muted,
      mutedBytes: c.kernel.muted_bytes,
      mutedSyscalls: c.kernel.muted_syscalls,
      muteFailures: c.muteRequestsFailed,
      // ---- TCP health and flows ----
      tcpEventsUnowned: c.kernel.tcp_unowned,
      tcpEventsFolded: c.kernel.tcp_peer_folded,
      tcpEventsLost: c.kernel.tcp_peer_lost + c.kernel.tcp_owner_failed,
      ...(network ? { networkPeersFolded: network.stats().peersFolded, connectionsVanished: network.stats().flows.vanished } : {}),
      // ---- end TCP health and flows ----
      // -- syscall latency --
      ...(capture.groups?.syscalls
        ? {
            syscallsUnmeasuredByReason: { table_full: c.kernel.syslat_map_full, no_start: c.kernel.syslat_no_start, compat: c.kernel.syslat_compat },
            slowSyscalls,
            slowSyscallsDropped: c.kernel.slow_dropped,
          }
        : {}),
      // -- end syscall latency --
    };
  });
  let health: HealthServer | undefined;
  if (opts.health) {
    health = new HealthServer(() => telemetry.agentHealth());
    try {
      const a = await health.listen(opts.health.host, opts.health.port);
      logger.info(`health and metrics on http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port} (/healthz, /metrics)`);
    } catch (e) {
      await telemetry.shutdown(0);
      throw new UsageError(`cannot listen on ${opts.health.host}:${opts.health.port} for --health-listen: ${(e as Error).message}`);
    }
  }
  let tick: NodeJS.Timeout | undefined;
  try {
    engine.start();
    tick = setInterval(() => {
      pipeline.tick(Number(process.hrtime.bigint()));
      collectNetwork();
    }, 1000);
    if (health) health.state = 'ready';
    process.stderr.write('ebpf-otel: ready\n');
    await onReady?.();
    await runUntilSignal(opts.duration);
  } finally {
    if (tick) clearInterval(tick);
    if (health) health.state = 'stopping';
    // The exporters' timers are unref'd: without a handle of our own, Node
    // would exit in the middle of the final flush (a retry waiting for a
    // collector that is down) and lose what it holds. The telemetry shutdown
    // bounds itself.
    const keepAlive = setInterval(() => {}, 1000);
    try {
      // The network's last read comes after what the kernel wrote reached us, before the tables go.
      await engine.drainAndStop(collectNetwork);
      for (const [tgid, info] of exits) telemetry.processExited(tgid, info);
      await pipeline.shutdown(Number(process.hrtime.bigint()));
    } finally {
      clearInterval(keepAlive);
      await health?.close();
    }
  }
  const s = engine.stats();
  const p = pipeline.stats();
  logger.info(
    `captured ${s.kernel.events_sent} events (lost ${s.kernel.events_lost} in the kernel, ${s.recordsDropped} behind the native queue); ` +
      `records: ${Object.entries(p.recordsByProtocol).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}; ` +
      `muted ${s.kernel.conn_muted} connections of unknown protocol, ${s.kernel.muted_bytes} bytes not shipped` +
      (s.muteRequestsFailed > 0 ? ` (${s.muteRequestsFailed} mute requests failed)` : ''),
  );
  // -- syscall latency --
  if (capture.groups?.syscalls) {
    logger.info(
      `syscalls: ${s.kernel.syslat_no_start} exits without a recorded entry, ${s.kernel.syslat_map_full} calls not counted (histogram table full), ` +
        `${s.kernel.syslat_compat} compat calls not measured; slow calls: ${slowSyscalls} reported, ${s.kernel.slow_dropped} over the rate limit`,
    );
  }
  // -- end syscall latency --
  // What a user (or a failing test) needs to judge the trace graph and the streams afterwards.
  logger.info(
    `parents: ${Object.entries(p.graph.linked).map(([k, v]) => `${k} ${v}`).join(', ')}, ambiguous ${p.graph.ambiguous}, ` +
      `late starts ${p.graph.lateStarts}; streams: reordered ${p.tracker.stream.reordered}, gap bytes ${p.tracker.stream.gapBytes}, ` +
      `overlaps ${p.tracker.stream.overlaps}`,
  );
  return 0;
}

