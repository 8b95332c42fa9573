// Where the layers of `run`'s configuration meet, and nowhere else:
//
//   built-in defaults < configuration file < environment variables < flags
//
// Each setting takes its value from the highest layer that sets it. A list
// given on the command line (--route, the selector flags) replaces the file's
// list; the selectors are one list: any selector flag replaces all of the
// file's selectors. Maps (OTLP headers) merge by name, the higher layer
// winning a name. A boolean flag can only switch a setting on.
//
// The export settings are resolved by loadOtelConfig (src/otel/config.ts),
// which reads the environment between the file's layer and the flags' layer
// given here.

import { MAX_PAYLOAD } from '../capture/layout';
import { CAPTURE_DEFAULTS, MAX_RING_BUFFER_MIB, type CaptureOptions } from '../capture/capture-engine';
import type { FeatureConfig } from '../agent/feature';
import { FEATURE_CONFIGS } from '../agent/features/configs';
import type { Selector } from '../capture/process-selection';
import { loadOtelConfig, parseHeaders, type EndpointProblem, type Env, type OtelFileOptions, type OtelOptions, type OtlpProtocol } from '../otel/config';
import { PROTOCOLS } from '../protocols/registry';
import { DEFAULT_REDACTED_HEADERS, type ProtocolDefinition } from '../protocols/types';
import { isLogLevel, type LogLevel } from '../util/log';
import { SELECTOR_OPTIONS, UsageError, durationSeconds, hostPort, nonNegativeInt, parse, powerOfTwoInt, selectorsFrom } from './flags';
import { loadConfigFile, type ConfigFile } from './file';
import { CONFIG_SCHEMA, Setting, configSchema, settings, type FileConfig } from './schema';

/** `run --help` for an agent with these protocols and features. */
export function runUsage(protocols: readonly ProtocolDefinition[], features: readonly FeatureConfig<unknown>[] = FEATURE_CONFIGS): string {
  return `usage: ebpf-otel run [--config FILE] [selectors] [options]
configuration: built-in defaults < the file < environment variables (OTEL_*, EBPF_OTEL_*) < flags.
  --config FILE            YAML configuration file (else EBPF_OTEL_CONFIG); see deploy/config/ebpf-otel.yaml
                           A list flag (--route, selectors) replaces the file's list; --otlp-headers merge by name.
selectors (at least one, here or in the file): --pid N, --exe NAME, --port N, --cgroup PATH, --container ID, --all
export:
  --otlp-endpoint URL      OTLP endpoint (else OTEL_EXPORTER_OTLP_ENDPOINT; none: print to the console)
  --otlp-protocol P        grpc or http/protobuf (else OTEL_EXPORTER_OTLP_PROTOCOL)
  --otlp-traces-endpoint URL, --otlp-metrics-endpoint URL, --otlp-logs-endpoint URL   per signal
  --otlp-headers K=V,...   extra request headers (else OTEL_EXPORTER_OTLP_HEADERS)
  --otlp-compression C     gzip or none
  --otlp-timeout 10s       per export request
  --otlp-insecure          plaintext gRPC to a non-loopback endpoint
  --otlp-certificate FILE  PEM certificate(s) to trust for the collector (else OTEL_EXPORTER_OTLP_CERTIFICATE)
  --otlp-client-certificate FILE, --otlp-client-key FILE   mutual TLS
  --console                print spans to the console even when an endpoint is set
  --sampler NAME           OTEL_TRACES_SAMPLER value, e.g. parentbased_traceidratio
  --sampler-arg X          OTEL_TRACES_SAMPLER_ARG, e.g. 0.1
  --metric-interval 10s    metric export interval (else OTEL_METRIC_EXPORT_INTERVAL)
protocols:
  --protocols LIST         comma-separated protocol ids (default: all known)
${protocols.flatMap((p) => p.config?.usage ?? []).map((l) => l + '\n').join('')}  --request-timeout 30s    a request without a response for this long is an error span
${features.flatMap((f) => f.usage).map((l) => l + '\n').join('')}capture:
  --capture-bytes N        payload bytes kept per syscall (0..${MAX_PAYLOAD})
  --ring-buffer-mib N      MiB of the kernel-to-agent ring buffer, a power of two (default ${CAPTURE_DEFAULTS.ringBufferBytes >> 20})
  --duration 60s           stop after this long (default: until SIGINT/SIGTERM)
  --health-listen H:P      serve /healthz (200 once attached) and /metrics (Prometheus) on H:P, e.g. 127.0.0.1:9464
  --log-level L            debug, info, warn or error (else EBPF_OTEL_LOG_LEVEL)`;
}

export const RUN_USAGE = runUsage(PROTOCOLS);

export const RUN_FLAGS = {
  ...SELECTOR_OPTIONS,
  config: { type: 'string' },
  'otlp-endpoint': { type: 'string' },
  'otlp-protocol': { type: 'string' },
  'otlp-traces-endpoint': { type: 'string' },
  'otlp-metrics-endpoint': { type: 'string' },
  'otlp-logs-endpoint': { type: 'string' },
  'otlp-headers': { type: 'string' },
  'otlp-compression': { type: 'string' },
  'otlp-timeout': { type: 'string' },
  'otlp-insecure': { type: 'boolean' },
  'otlp-certificate': { type: 'string' },
  'otlp-client-key': { type: 'string' },
  'otlp-client-certificate': { type: 'string' },
  console: { type: 'boolean' },
  sampler: { type: 'string' },
  'sampler-arg': { type: 'string' },
  'metric-interval': { type: 'string' },
  protocols: { type: 'string' },
  'request-timeout': { type: 'string' },
  'capture-bytes': { type: 'string' },
  'ring-buffer-mib': { type: 'string' },
  duration: { type: 'string' },
  'health-listen': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** The flags of `run` for an agent with these protocols: the core ones, each feature's and each protocol's. */
export function runFlags(protocols: readonly ProtocolDefinition[], features: readonly FeatureConfig<unknown>[] = FEATURE_CONFIGS): typeof RUN_FLAGS {
  const flags: Record<string, unknown> = { ...RUN_FLAGS };
  const add = (owner: string, defs: Readonly<Record<string, unknown>>) => {
    for (const [name, def] of Object.entries(defs)) {
      if (Object.hasOwn(flags, name)) throw new Error(`${owner}: flag --${name} is taken`);
      flags[name] = def;
    }
  };
  for (const f of features) add(`feature ${f.section}`, f.flags);
  for (const p of protocols) add(`protocol ${p.id}`, p.config?.flags ?? {});
  return flags as typeof RUN_FLAGS;
}

/** The core flags' values, and a protocol's flags under their names. */
export type RunFlagValues = ReturnType<typeof parse<typeof RUN_FLAGS>>['values'] & { readonly [flag: string]: unknown };

export interface RunOptions {
  readonly capture: CaptureOptions;
  /** Export settings from the command line: above the environment. */
  readonly otel: OtelOptions;
  /** Export settings from the configuration file: below the environment. */
  readonly otelFile: OtelFileOptions;
  /** Enabled protocol ids; undefined: every protocol of the registry. */
  readonly protocols: readonly string[] | undefined;
  /** Each protocol's session options (its config's resolve()), by protocol id. */
  readonly protocolOptions: Readonly<Record<string, unknown>>;
  /** Header names whose values are never recorded (every protocol gets them). */
  readonly redactHeaders: readonly string[];
  readonly requestTimeoutNs: number;
  readonly duration: number | undefined;
  /** Where /healthz and /metrics are served; none when undefined. */
  readonly health?: { readonly host: string; readonly port: number };
  /** Each feature's options (its config's resolve()), by section: `network`, `syscalls`. */
  readonly features: Readonly<Record<string, unknown>>;
}

export type Layer = 'default' | 'file' | 'env' | 'flag';

export interface RunConfig {
  readonly options: RunOptions;
  readonly logLevel: LogLevel;
  /** The configuration file read, as given; undefined without one. */
  readonly configFile: string | undefined;
  /** The layer each setting's value came from, by the file's dotted key; the selectors count as one setting. */
  readonly sources: Readonly<Record<string, Layer>>;
  /** For the log at start (the file's, then the environment's). */
  readonly warnings: readonly string[];
}

export interface ResolveOptions {
  /** `run` needs a selector; `config print` does not. */
  readonly requireSelector?: boolean;
  /** --log-level, a global flag main.ts takes off the command line. */
  readonly logLevelFlag?: LogLevel;
  /** The protocol registry (default: the agent's own, PROTOCOLS). */
  readonly protocols?: readonly ProtocolDefinition[];
}

export function parseRunFlags(argv: string[], protocols: readonly ProtocolDefinition[] = PROTOCOLS): RunFlagValues {
  return parse(argv, runFlags(protocols)).values as RunFlagValues;
}

export function resolveRunConfig(values: RunFlagValues, env: Env, o: ResolveOptions = {}): RunConfig {
  const registry = o.protocols ?? PROTOCOLS;
  const configPath = values.config ?? nonEmpty(env['EBPF_OTEL_CONFIG']);
  const file: ConfigFile | undefined = configPath !== undefined ? loadConfigFile(configPath, env, registry) : undefined;
  const f: FileConfig = file?.values ?? {};
  const warnings = [...(file?.warnings ?? [])];

  // The flags' layer, validated as it always was.
  const flagSelectors = selectorsFrom(values);
  const selectors = flagSelectors.length > 0 ? flagSelectors : fileSelectors(f);
  if (selectors.length === 0 && o.requireSelector !== false) {
    throw new UsageError('run needs a selector (a flag, or selectors in the configuration file)\n' + runUsage(registry));
  }
  const protocol = values['otlp-protocol'];
  if (protocol !== undefined && protocol !== 'grpc' && protocol !== 'http/protobuf') {
    throw new UsageError(`--otlp-protocol takes grpc or http/protobuf, got ${JSON.stringify(protocol)}`);
  }
  const compression = values['otlp-compression'];
  if (compression !== undefined && compression !== 'gzip' && compression !== 'none') {
    throw new UsageError(`--otlp-compression takes gzip or none, got ${JSON.stringify(compression)}`);
  }
  const flagProtocols = values.protocols?.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const unknownProtocols = (flagProtocols ?? []).filter((id) => !registry.some((p) => p.id === id));
  if (unknownProtocols.length > 0) {
    throw new UsageError(`--protocols: unknown protocol ${unknownProtocols.join(', ')} (known: ${registry.map((p) => p.id).join(', ')})`);
  }
  const redactHeaders = f.redaction?.headers ?? DEFAULT_REDACTED_HEADERS;
  // Every protocol's options, enabled or not: each checks its own flags.
  const protocolOptions: Record<string, unknown> = {};
  for (const p of registry) {
    if (p.config === undefined) continue;
    const flags = Object.fromEntries(Object.keys(p.config.flags ?? {}).map((name) => [name, values[name]]));
    protocolOptions[p.id] = p.config.resolve(f[p.config.section], flags, { redactHeaders }, env);
  }
  const headerProblems: string[] = [];
  const headers = values['otlp-headers'] !== undefined ? parseHeaders(values['otlp-headers'], '--otlp-headers', headerProblems) : undefined;
  if (headerProblems.length > 0) throw new UsageError(headerProblems.join('; '));
  const millis = (flag: string, raw: string | undefined) => (raw === undefined ? undefined : Math.round(durationSeconds(flag, raw) * 1000));
  const otel = compact<OtelOptions>({
    endpoint: values['otlp-endpoint'],
    tracesEndpoint: values['otlp-traces-endpoint'],
    metricsEndpoint: values['otlp-metrics-endpoint'],
    logsEndpoint: values['otlp-logs-endpoint'],
    headers,
    compression,
    timeoutMillis: millis('--otlp-timeout', values['otlp-timeout']),
    insecure: values['otlp-insecure'] ? true : undefined,
    certificate: values['otlp-certificate'],
    clientKey: values['otlp-client-key'],
    clientCertificate: values['otlp-client-certificate'],
    protocol: protocol as OtlpProtocol | undefined,
    console: values.console ? true : undefined,
    sampler: values.sampler,
    samplerArg: values['sampler-arg'],
    metricExportIntervalMillis: millis('--metric-interval', values['metric-interval']),
  });

  // The file's layer of the export settings (the environment goes between).
  const e = f.export;
  const fileMillis = (s: number | undefined) => (s === undefined ? undefined : Math.round(s * 1000));
  const otelFile = compact<OtelFileOptions>({
    endpoint: e?.endpoint,
    tracesEndpoint: e?.traces_endpoint,
    metricsEndpoint: e?.metrics_endpoint,
    logsEndpoint: e?.logs_endpoint,
    protocol: e?.protocol,
    headers: e?.headers,
    compression: e?.compression,
    timeoutMillis: fileMillis(e?.timeout),
    insecure: e?.insecure,
    certificate: e?.tls?.ca_file,
    clientKey: e?.tls?.key_file,
    clientCertificate: e?.tls?.cert_file,
    metricExportIntervalMillis: fileMillis(e?.metric_interval),
    shutdownTimeoutMillis: fileMillis(f.shutdown_timeout),
    maxQueueSize: e?.batch?.max_queue_size,
    maxExportBatchSize: e?.batch?.max_export_batch_size,
    scheduleDelayMillis: fileMillis(e?.batch?.schedule_delay),
    exportTimeoutMillis: fileMillis(e?.batch?.export_timeout),
    sampler: f.sampling?.sampler,
    samplerArg: f.sampling?.arg !== undefined ? String(f.sampling.arg) : undefined,
    resourceAttributes: f.resource?.attributes,
    captureCommandArgs: f.resource?.capture_command_args,
  });

  // Every endpoint of every layer, with the environment's, against the
  // protocol in effect: a bad one stops the start like any bad setting.
  const endpointProblems = loadOtelConfig(env, otel, otelFile).endpointProblems;
  if (endpointProblems.length > 0) throw new UsageError(endpointProblems.map((p) => formatEndpointProblem(p, file)).join('\nebpf-otel: '));

  const captureBytes =
    values['capture-bytes'] !== undefined ? nonNegativeInt('--capture-bytes', values['capture-bytes'], MAX_PAYLOAD) : f.capture?.bytes;
  const ringMiB = values['ring-buffer-mib'] !== undefined ? powerOfTwoInt('--ring-buffer-mib', values['ring-buffer-mib'], MAX_RING_BUFFER_MIB) : f.capture?.ring_buffer_mib;
  const requestTimeoutSeconds =
    values['request-timeout'] !== undefined ? durationSeconds('--request-timeout', values['request-timeout']) : (f.capture?.request_timeout ?? 30);
  const health = values['health-listen'] !== undefined ? hostPort('--health-listen', values['health-listen']) : f.health?.listen;
  const features: Record<string, unknown> = {};
  for (const c of FEATURE_CONFIGS) {
    const flags = Object.fromEntries(Object.keys(c.flags).map((name) => [name, values[name]]));
    features[c.section] = c.resolve(f[c.section], flags);
  }
  const options: RunOptions = {
    capture: {
      selectors,
      ...(captureBytes !== undefined ? { captureBytes } : {}),
      ...(ringMiB !== undefined ? { ringBufferBytes: ringMiB * 1024 * 1024 } : {}),
    },
    features,
    otel,
    otelFile,
    protocols: flagProtocols ?? f.protocols?.enabled,
    protocolOptions,
    redactHeaders,
    requestTimeoutNs: Math.round(requestTimeoutSeconds * 1e9),
    duration: values.duration !== undefined ? durationSeconds('--duration', values.duration) : f.duration,
    ...(health !== undefined ? { health } : {}),
  };

  const envLevelRaw = nonEmpty(env['EBPF_OTEL_LOG_LEVEL']);
  let envLevel: LogLevel | undefined;
  if (envLevelRaw !== undefined) {
    if (isLogLevel(envLevelRaw)) envLevel = envLevelRaw;
    else warnings.push(`EBPF_OTEL_LOG_LEVEL=${envLevelRaw} is not debug, info, warn or error; ignored`);
  }
  const logLevel = o.logLevelFlag ?? envLevel ?? f.log?.level ?? 'info';

  const given = new Set(Object.entries(values).filter(([, v]) => v !== undefined).map(([k]) => `--${k}`));
  if (o.logLevelFlag !== undefined) given.add('--log-level');
  const schema = registry === PROTOCOLS ? CONFIG_SCHEMA : configSchema(registry);
  return { options, logLevel, configFile: configPath, sources: sourcesOf(schema, given, env, f), warnings };
}

/** One line: the setting, where its value came from (flag, variable, FILE:LINE:COL), why it cannot be used, the value. */
function formatEndpointProblem(p: EndpointProblem, file: ConfigFile | undefined): string {
  const key = `export.${p.setting}`;
  let where: string;
  if (p.source.layer === 'env') where = `environment variable ${p.source.variable}`;
  else if (p.source.layer === 'flag') {
    const entry = (CONFIG_SCHEMA['export'] as Record<string, unknown>)[p.setting];
    where = `flag ${entry instanceof Setting ? entry.flags[0] : p.setting}`;
  } else {
    const at = file?.positionOf(key);
    where = at !== undefined ? `${file!.path}:${at.line}:${at.col}` : `configuration file ${file?.path ?? ''}`.trimEnd();
  }
  return `${key} (${where}): ${p.message}`;
}

/** The layer of each setting: the highest that set it. */
function sourcesOf(schema: ReturnType<typeof configSchema>, flagsGiven: ReadonlySet<string>, env: Env, f: FileConfig): Record<string, Layer> {
  const out: Record<string, Layer> = {};
  for (const { key, setting } of settings(schema)) {
    const inFile = getIn(f, key) !== undefined;
    const layer: Layer = setting.flags.some((fl) => flagsGiven.has(fl))
      ? 'flag'
      : setting.env.some((v) => nonEmpty(env[v]) !== undefined)
        ? 'env'
        : inFile
          ? 'file'
          : 'default';
    if (key.startsWith('selectors.')) {
      // One setting: the flags replace the file's selectors as a whole.
      const rank: Layer[] = ['default', 'file', 'env', 'flag'];
      const prev = out['selectors'] ?? 'default';
      out['selectors'] = rank.indexOf(layer) > rank.indexOf(prev) ? layer : prev;
    } else {
      out[key] = layer;
    }
  }
  return out;
}

function fileSelectors(f: FileConfig): Selector[] {
  const s = f.selectors;
  if (s === undefined) return [];
  return [
    ...(s.pid ?? []).map((pid): Selector => ({ kind: 'pid', pid })),
    ...(s.exe ?? []).map((pattern): Selector => ({ kind: 'exe', pattern })),
    ...(s.port ?? []).map((port): Selector => ({ kind: 'port', port })),
    ...(s.cgroup ?? []).map((path): Selector => ({ kind: 'cgroup', path })),
    ...(s.container ?? []).map((id): Selector => ({ kind: 'container', id })),
    ...(s.all ? [{ kind: 'all' } as const] : []),
  ];
}

function getIn(o: unknown, dotted: string): unknown {
  let cur = o;
  for (const k of dotted.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

/** `o` without its undefined fields (exactOptionalPropertyTypes: absent, not undefined). */
function compact<T extends object>(o: { [K in keyof T]?: T[K] | undefined }): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

function nonEmpty(v: string | undefined): string | undefined {
  const t = v?.trim();
  return t === undefined || t === '' ? undefined : t;
}
