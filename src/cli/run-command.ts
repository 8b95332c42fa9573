// `ebpf-otel run`: the main job. Captures the selected processes, turns
// their traffic into spans and RED metrics, exports over OTLP (or prints to
// the console when no endpoint is configured), and on SIGINT/SIGTERM flushes
// everything pending before it exits 0.

import { CaptureEngine, SYSCALL_DEFAULTS, type CaptureOptions } from '../capture/capture-engine';
import { WallClock } from '../capture/clock';
import { openKernelSession, resolveCgroupV2 } from '../capture/kernel-session';
import { MAX_PAYLOAD } from '../capture/layout';
import { capabilityAdvisories, effectiveCaps } from '../capture/privileges';
import { ProcFs } from '../capture/procfs';
import { ConnectionTracker } from '../correlate/connection-tracker';
import { TraceGraph } from '../correlate/trace-graph';
import { AgentPipeline } from '../agent/pipeline';
import { HealthServer } from '../agent/health-server';
import { protocolsById } from '../protocols/registry';
import { loadOtelConfig, parseHeaders, type OtelOptions, type OtlpProtocol } from '../otel/config';
import { shouldSample } from '../otel/sampler';
import { createTelemetry } from '../otel/telemetry';
import type { Logger } from '../util/log';
import { SELECTOR_OPTIONS, UsageError, durationSeconds, nonNegativeInt, parse, positiveInt, selectorsFrom } from './args';
import { runUntilSignal } from './lifecycle';
// -- syscall latency --
import type { SlowSyscallEvent } from '../capture/events';
import { SyscallCollector } from '../capture/syscall-collector';
import { HOST_SYSCALL_ARCH } from '../capture/syscall-names';
import { SyscallMetrics } from '../agent/syscall-metrics';
import { DEFAULT_SYSCALL_MAX_SERIES, SyscallMetricsRecorder } from '../otel/syscall-metrics';
import { slowSyscallText } from './syscalls-format';
// -- end syscall latency --

export const RUN_USAGE = `usage: ebpf-otel run [selectors] [options]
selectors (at least one): --pid N, --exe NAME, --port N, --cgroup PATH, --container ID, --all
export:
  --otlp-endpoint URL      OTLP endpoint (else OTEL_EXPORTER_OTLP_ENDPOINT; none: print to the console)
  --otlp-protocol P        grpc or http/protobuf (else OTEL_EXPORTER_OTLP_PROTOCOL)
  --otlp-traces-endpoint URL, --otlp-metrics-endpoint URL   per signal
  --otlp-headers K=V,...   extra request headers (else OTEL_EXPORTER_OTLP_HEADERS)
  --otlp-compression C     gzip or none
  --otlp-timeout 10s       per export request
  --otlp-insecure          plaintext gRPC to a non-loopback endpoint
  --console                print spans to the console even when an endpoint is set
  --sampler NAME           OTEL_TRACES_SAMPLER value, e.g. parentbased_traceidratio
  --sampler-arg X          OTEL_TRACES_SAMPLER_ARG, e.g. 0.1
  --metric-interval 10s    metric export interval (else OTEL_METRIC_EXPORT_INTERVAL)
protocols:
  --protocols LIST         comma-separated protocol ids (default: all known)
  --route PATTERN          an HTTP route such as /users/:id (repeatable); others are inferred
  --capture-query          record url.query (off: query strings often carry secrets)
  --request-timeout 30s    a request without a response for this long is an error span
capture:
  --capture-bytes N        payload bytes kept per syscall (0..${MAX_PAYLOAD})
  --duration 60s           stop after this long (default: until SIGINT/SIGTERM)
  --health-listen H:P      serve /healthz (200 once attached) and /metrics (Prometheus) on H:P, e.g. 127.0.0.1:9464
syscalls:
  --no-syscall-metrics     no ebpf_otel.syscall.duration histograms (on by default)
  --syscall-max-series N   (syscall, errno) series per process before otel.metric.overflow (default ${DEFAULT_SYSCALL_MAX_SERIES})
  --slow DURATION          report each syscall slower than this (e.g. 100ms): counted, logged at debug
  --slow-rate N            at most N slow-call reports per second per CPU (default ${SYSCALL_DEFAULTS.slowPerSecond}; the rest counted)`;

export interface RunOptions {
  readonly capture: CaptureOptions;
  readonly otel: OtelOptions;
  readonly protocols: readonly string[] | undefined;
  readonly routes: readonly string[];
  readonly captureQuery: boolean;
  readonly requestTimeoutNs: number;
  readonly duration: number | undefined;
  /** Where /healthz and /metrics are served; none when undefined. */
  readonly health?: { readonly host: string; readonly port: number };
  /** ebpf_otel.syscall.duration (the kernel side is in `capture.groups` and `capture.syscalls`). */
  readonly syscallMetrics: { readonly enabled: boolean; readonly maxSeries: number };
}

export function parseRunArgs(argv: string[], opts: { requireSelector?: boolean } = {}): RunOptions | 'help' {
  const { values } = parse(argv, {
    ...SELECTOR_OPTIONS,
    'otlp-endpoint': { type: 'string' },
    'otlp-protocol': { type: 'string' },
    'otlp-traces-endpoint': { type: 'string' },
    'otlp-metrics-endpoint': { type: 'string' },
    'otlp-headers': { type: 'string' },
    'otlp-compression': { type: 'string' },
    'otlp-timeout': { type: 'string' },
    'otlp-insecure': { type: 'boolean' },
    console: { type: 'boolean' },
    sampler: { type: 'string' },
    'sampler-arg': { type: 'string' },
    'metric-interval': { type: 'string' },
    protocols: { type: 'string' },
    route: { type: 'string', multiple: true },
    'capture-query': { type: 'boolean' },
    'request-timeout': { type: 'string' },
    'capture-bytes': { type: 'string' },
    duration: { type: 'string' },
    'health-listen': { type: 'string' },
    'no-syscall-metrics': { type: 'boolean' },
    'syscall-max-series': { type: 'string' },
    slow: { type: 'string' },
    'slow-rate': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) return 'help';
  const selectors = selectorsFrom(values);
  if (selectors.length === 0 && opts.requireSelector !== false) throw new UsageError('run needs a selector\n' + RUN_USAGE);
  const protocol = values['otlp-protocol'];
  if (protocol !== undefined && protocol !== 'grpc' && protocol !== 'http/protobuf') {
    throw new UsageError(`--otlp-protocol takes grpc or http/protobuf, got ${JSON.stringify(protocol)}`);
  }
  for (const r of values.route ?? []) {
    if (!r.startsWith('/')) throw new UsageError(`--route takes a path pattern starting with /, got ${JSON.stringify(r)}`);
  }
  const compression = values['otlp-compression'];
  if (compression !== undefined && compression !== 'gzip' && compression !== 'none') {
    throw new UsageError(`--otlp-compression takes gzip or none, got ${JSON.stringify(compression)}`);
  }
  const headerProblems: string[] = [];
  const headers = values['otlp-headers'] !== undefined ? parseHeaders(values['otlp-headers'], '--otlp-headers', headerProblems) : undefined;
  if (headerProblems.length > 0) throw new UsageError(headerProblems.join('; '));
  const otel: OtelOptions = {
    ...(values['otlp-endpoint'] !== undefined ? { endpoint: values['otlp-endpoint'] } : {}),
    ...(values['otlp-traces-endpoint'] !== undefined ? { tracesEndpoint: values['otlp-traces-endpoint'] } : {}),
    ...(values['otlp-metrics-endpoint'] !== undefined ? { metricsEndpoint: values['otlp-metrics-endpoint'] } : {}),
    ...(headers !== undefined ? { headers } : {}),
    ...(compression !== undefined ? { compression } : {}),
    ...(values['otlp-timeout'] !== undefined
      ? { timeoutMillis: Math.round(durationSeconds('--otlp-timeout', values['otlp-timeout']) * 1000) }
      : {}),
    ...(values['otlp-insecure'] ? { insecure: true } : {}),
    ...(protocol !== undefined ? { protocol: protocol as OtlpProtocol } : {}),
    ...(values.console ? { console: true } : {}),
    ...(values.sampler !== undefined ? { sampler: values.sampler } : {}),
    ...(values['sampler-arg'] !== undefined ? { samplerArg: values['sampler-arg'] } : {}),
    ...(values['metric-interval'] !== undefined
      ? { metricExportIntervalMillis: Math.round(durationSeconds('--metric-interval', values['metric-interval']) * 1000) }
      : {}),
  };
  // -- syscall latency --
  const syscallMetrics = {
    enabled: values['no-syscall-metrics'] !== true,
    maxSeries: values['syscall-max-series'] !== undefined ? positiveInt('--syscall-max-series', values['syscall-max-series'], 1_000_000) : DEFAULT_SYSCALL_MAX_SERIES,
  };
  const slowNs = values.slow !== undefined ? Math.round(durationSeconds('--slow', values.slow) * 1e9) : 0;
  if (values.slow !== undefined && slowNs <= 0) throw new UsageError(`--slow must be longer than 0, got ${values.slow}`);
  const syscallGroup = syscallMetrics.enabled || slowNs > 0;
  // -- end syscall latency --
  return {
    capture: {
      selectors,
      ...(values['capture-bytes'] !== undefined
        ? { captureBytes: nonNegativeInt('--capture-bytes', values['capture-bytes'], MAX_PAYLOAD) }
        : {}),
      groups: { sockets: true, syscalls: syscallGroup, tcp: false },
      ...(syscallGroup
        ? {
            syscalls: {
              slowNs,
              ...(values['slow-rate'] !== undefined ? { slowPerSecond: positiveInt('--slow-rate', values['slow-rate'], 1_000_000) } : {}),
            },
          }
        : {}),
    },
    syscallMetrics,
    otel,
    protocols: values.protocols?.split(',').map((s) => s.trim()).filter((s) => s !== ''),
    routes: values.route ?? [],
    captureQuery: values['capture-query'] ?? false,
    requestTimeoutNs:
      values['request-timeout'] !== undefined
        ? Math.round(durationSeconds('--request-timeout', values['request-timeout']) * 1e9)
        : 30e9,
    duration: values.duration !== undefined ? durationSeconds('--duration', values.duration) : undefined,
    ...(values['health-listen'] !== undefined ? { health: hostPort('--health-listen', values['health-listen']) } : {}),
  };
}

/** HOST:PORT or [IPv6]:PORT. */
export function hostPort(flag: string, text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\[\]]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new UsageError(`${flag} wants HOST:PORT (e.g. 127.0.0.1:9464 or [::1]:9464), not "${text}"`);
  return { host: (m[1] ?? m[2])!, port };
}

export async function runCommand(argv: string[], logger: Logger): Promise<number> {
  const opts = parseRunArgs(argv);
  if (opts === 'help') {
    process.stdout.write(RUN_USAGE + '\n');
    return 0;
  }
  return runAgent(opts, logger);
}

export async function runAgent(opts: RunOptions, logger: Logger, onReady?: () => void | Promise<void>): Promise<number> {
  const config = loadOtelConfig(process.env, opts.otel);
  for (const w of config.warnings) logger.warn(w);
  for (const a of capabilityAdvisories(effectiveCaps())) logger.warn(a);
  const protocols = protocolsById(opts.protocols);
  const clock = new WallClock();
  const procfs = new ProcFs();
  const telemetry = createTelemetry(config, { logger, procfs, clock });
  const tracker = new ConnectionTracker(
    {
      protocols,
      protocolOptions: { routes: opts.routes, captureQuery: opts.captureQuery },
      requestTimeoutNs: opts.requestTimeoutNs,
    },
    logger,
  );
  const graph = new TraceGraph({ decide: (traceId, parent) => shouldSample(config.sampler, traceId, parent) });
  // Connections the tracker ignores are muted in the kernel: their bytes stop
  // being copied and shipped. `engine` is bound by the time a batch is flushed.
  const pipeline = new AgentPipeline(tracker, graph, telemetry, { muteConnections: (ids) => engine.muteConnections(ids) });
  // -- syscall latency: slow calls are counted and logged; exported as logs later --
  let slowSyscalls = 0;
  const onSlowSyscall = (e: SlowSyscallEvent) => {
    slowSyscalls++;
    logger.debug(`slow syscall: ${slowSyscallText(e, clock.toWallNs(e.tsEnterNs), HOST_SYSCALL_ARCH)}`);
  };
  let syscalls: SyscallMetrics | undefined;
  // Without a metric exporter the histograms would go nowhere: the kernel side then only runs for --slow.
  const syscallMetricsOn = opts.syscallMetrics.enabled && telemetry.metrics.enabled;
  const slowOn = (opts.capture.syscalls?.slowNs ?? 0) > 0;
  const capture: CaptureOptions = { ...opts.capture, groups: { sockets: true, tcp: false, ...opts.capture.groups, syscalls: syscallMetricsOn || slowOn } };
  // -- end syscall latency --
  const engine = new CaptureEngine(
    capture,
    { openSession: openKernelSession, procfs, logger, resolveCgroup: resolveCgroupV2, onSlowSyscall },
    (e) => {
      pipeline.onEvent(e);
      const retire =
        e.type === 'exec' ? () => telemetry.processExec(e.tgid) : e.type === 'exit' ? () => telemetry.processExited(e.tgid, { comm: e.comm }) : undefined;
      // With syscall metrics, a meter retires once the calls before the event are in it.
      if (retire && !syscalls?.deferLifecycle(e, retire)) retire();
    },
    () => {
      pipeline.flush();
      syscalls?.afterBatch();
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
      connectionsOpen: p.tracker.connections,
      connectionsEvicted: p.tracker.evicted,
      spanLinksByReason: p.graph.linked,
      spanLinksAmbiguous: p.graph.ambiguous,
      connectionsMuted: c.kernel.conn_muted,
      mutedBytes: c.kernel.muted_bytes,
      mutedSyscalls: c.kernel.muted_syscalls,
      muteFailures: c.muteRequestsFailed,
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
    tick = setInterval(() => pipeline.tick(Number(process.hrtime.bigint())), 1000);
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
      await engine.drainAndStop();
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

