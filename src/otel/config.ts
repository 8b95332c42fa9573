// Export configuration from three layers, highest first: command-line flags
// (`options`), the standard OpenTelemetry environment variables, the
// configuration file (`file`); then the defaults. Each setting is taken from
// the highest layer that sets it; headers and resource attributes merge by
// name, the higher layer winning a name. A signal's own endpoint wins over the
// shared one whatever layer each comes from (the OTLP specification's rule).
// The environment is read here and nowhere else in src/otel/: exporters get
// every value explicitly.
//
// Protocol default: http/protobuf, the specification's default (and the
// opentelemetry-js default), so OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318
// behaves as it does for any SDK. Set OTEL_EXPORTER_OTLP_PROTOCOL=grpc (or
// --otlp-protocol grpc) for port 4317.
//
// Without any endpoint (and without OTEL_TRACES_EXPORTER, OTEL_LOGS_EXPORTER),
// spans and log records go to the console and metrics are not exported.

import { DEFAULT_RETRY, SHUTDOWN_TIMEOUT_MS } from './export-policy';
import { parseSampler, type Sampler } from './sampler';

export type Env = Readonly<Record<string, string | undefined>>;
export type OtlpProtocol = 'grpc' | 'http/protobuf';
export type Compression = 'none' | 'gzip';
export type TemporalityPreference = 'cumulative' | 'delta' | 'lowmemory';

export interface OtlpSignalConfig {
  readonly protocol: OtlpProtocol;
  /** gRPC: the endpoint as given (scheme decides TLS); HTTP: the full URL of the signal (…/v1/traces). */
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly compression: Compression;
  readonly timeoutMillis: number;
  /** gRPC without a scheme in the URL: plaintext when true (OTEL_EXPORTER_OTLP_INSECURE). */
  readonly insecure: boolean;
  /** Paths of PEM files. */
  readonly certificate?: string;
  readonly clientKey?: string;
  readonly clientCertificate?: string;
}

export interface BatchConfig {
  /** OTEL_BSP_MAX_QUEUE_SIZE: spans waiting for export; more are dropped and counted. */
  readonly maxQueueSize: number;
  /** OTEL_BSP_MAX_EXPORT_BATCH_SIZE */
  readonly maxExportBatchSize: number;
  /** OTEL_BSP_SCHEDULE_DELAY: longest wait before a partial batch is exported. */
  readonly scheduleDelayMillis: number;
  /** OTEL_BSP_EXPORT_TIMEOUT: bound of one batch export, retries included. */
  readonly exportTimeoutMillis: number;
}

/** Retry of every export: spans, log records and metrics, both transports (export-policy.ts). */
export interface RetryConfig {
  readonly maxAttempts: number;
  readonly initialBackoffMillis: number;
  readonly maxBackoffMillis: number;
  readonly backoffMultiplier: number;
  /** Fraction of +/- jitter applied to each backoff. */
  readonly jitter: number;
}

/** The retry policy's defaults live with the rest of the export policy. */
export { DEFAULT_RETRY };

export type SignalExporter = 'otlp' | 'console' | 'none';

export interface OtelConfig {
  readonly traces: { readonly exporter: SignalExporter; readonly otlp?: OtlpSignalConfig };
  readonly metrics: {
    readonly exporter: Exclude<SignalExporter, 'console'>;
    readonly otlp?: OtlpSignalConfig;
    /** OTEL_METRIC_EXPORT_INTERVAL */
    readonly exportIntervalMillis: number;
    /** OTEL_METRIC_EXPORT_TIMEOUT */
    readonly exportTimeoutMillis: number;
    /** OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE */
    readonly temporality: TemporalityPreference;
    /** Distinct attribute sets per instrument and process before folding into otel.metric.overflow. */
    readonly maxSeriesPerInstrument: number;
  };
  /** Log records (events that are not spans, log-record.ts); console prints one line each. */
  readonly logs: {
    readonly exporter: SignalExporter;
    readonly otlp?: OtlpSignalConfig;
    /** OTEL_BLRP_* */
    readonly batch: BatchConfig;
  };
  readonly sampler: Sampler;
  readonly batch: BatchConfig;
  readonly retry: RetryConfig;
  /** Bound of the final flush of all signals at shutdown (export-policy.ts). */
  readonly shutdownTimeoutMillis: number;
  readonly resource: {
    /** Added to every traced process's resource, below what the process declares itself. */
    readonly attributes: Readonly<Record<string, ResourceAttributeValue>>;
    /** process.command_args on resources (opt-in: argv may carry secrets). */
    readonly captureCommandArgs: boolean;
    /** Processes whose resource is cached. */
    readonly maxProcesses: number;
  };
  /** Problems found in the configuration, one sentence each, for the caller to log. */
  readonly warnings: readonly string[];
  /**
   * Endpoints that cannot be used (a signal with one is not exported; each is
   * also a warning): `run` refuses to start with any (src/config/run-config.ts).
   */
  readonly endpointProblems: readonly EndpointProblem[];
}

/** The configuration file's key of an endpoint setting (under `export`). */
export type EndpointSetting = 'endpoint' | 'traces_endpoint' | 'metrics_endpoint' | 'logs_endpoint';

/** Where a value came from: the flags' layer, an environment variable, the file's layer. */
export type OtelSource = { readonly layer: 'flag' } | { readonly layer: 'env'; readonly variable: string } | { readonly layer: 'file' };

export interface EndpointProblem {
  readonly setting: EndpointSetting;
  readonly source: OtelSource;
  readonly value: string;
  /** Why it cannot be used, the value quoted. */
  readonly message: string;
}

const HOST_PORT = /^(?:\[[0-9A-Fa-f:.]+\]|[^:[\]/@?#\s]+):(\d{1,5})$/;

/**
 * Why `value` is not an OTLP endpoint (for `protocol`; for either when
 * undefined), or undefined: an http:// or https:// URL, or for gRPC also
 * HOST:PORT (TLS then follows `insecure`) or unix:///PATH. The one check of
 * every layer's endpoints.
 */
export function endpointProblem(value: string, protocol?: OtlpProtocol): string | undefined {
  const quoted = JSON.stringify(value);
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(value)?.[1];
  if (scheme !== undefined) {
    if (/^unix$/i.test(scheme)) {
      // A Unix socket, for grpc (grpcAddress in otlp-transport.ts).
      if (protocol === 'http/protobuf') return `expected an http:// or https:// URL with http/protobuf (unix:// is for grpc), got ${quoted}`;
      return /^unix:\/\/\/./i.test(value) ? undefined : `expected unix:///PATH, got ${quoted}`;
    }
    if (!/^https?$/i.test(scheme)) return `expected an http:// or https:// URL, got ${quoted}`;
    const port = /^[^:]+:\/\/(?:[^/?#@]*@)?(?:\[[^\]]*\]|[^/?#:]*):(\d+)(?:[/?#]|$)/.exec(value)?.[1];
    if (port !== undefined && Number(port) > 65535) return `port ${port} is out of range (at most 65535) in ${quoted}`;
    try {
      if (new URL(value).hostname !== '') return undefined;
    } catch {
      // below
    }
    return `expected a URL such as http://collector:4318, got ${quoted}`;
  }
  const hostPort = HOST_PORT.exec(value);
  if (hostPort !== null) {
    if (Number(hostPort[1]) > 65535) return `port ${hostPort[1]} is out of range (at most 65535) in ${quoted}`;
    if (protocol === 'http/protobuf') return `expected an http:// or https:// URL with http/protobuf (HOST:PORT is for grpc), got ${quoted}`;
    return undefined;
  }
  return `expected a URL such as http://collector:4318${protocol === 'http/protobuf' ? '' : ' (or HOST:PORT for grpc)'}, got ${quoted}`;
}

/** `value` from `source` as a phrase for a warning: "OTEL_EXPORTER_OTLP_ENDPOINT", "the flags", "the configuration file". */
function describeSource(source: OtelSource): string {
  return source.layer === 'env' ? source.variable : source.layer === 'flag' ? 'the command line' : 'the configuration file';
}

export type ResourceAttributeValue = string | number | boolean;

/** One layer of settings (the flags, or the configuration file); every field is optional. */
export interface OtelOptions {
  readonly endpoint?: string;
  readonly tracesEndpoint?: string;
  readonly metricsEndpoint?: string;
  readonly logsEndpoint?: string;
  readonly protocol?: OtlpProtocol;
  readonly headers?: Readonly<Record<string, string>>;
  readonly insecure?: boolean;
  /** Paths of PEM files: CA certificate(s) to trust, client key and certificate (mutual TLS). */
  readonly certificate?: string;
  readonly clientKey?: string;
  readonly clientCertificate?: string;
  readonly compression?: Compression;
  readonly timeoutMillis?: number;
  /** Print spans and log records instead of exporting them (metrics are then not exported either). */
  readonly console?: boolean;
  readonly sampler?: string;
  readonly samplerArg?: string;
  readonly metricExportIntervalMillis?: number;
  readonly maxQueueSize?: number;
  readonly maxExportBatchSize?: number;
  readonly scheduleDelayMillis?: number;
  readonly exportTimeoutMillis?: number;
  readonly maxSeriesPerInstrument?: number;
  readonly captureCommandArgs?: boolean;
  readonly resourceAttributes?: Readonly<Record<string, ResourceAttributeValue>>;
  readonly maxProcesses?: number;
  readonly retry?: Partial<RetryConfig>;
  readonly shutdownTimeoutMillis?: number;
}

/** The configuration file's layer: `console` is a command-line switch only. */
export type OtelFileOptions = Omit<OtelOptions, 'console'>;

const SIGNAL_PATH = { TRACES: 'v1/traces', METRICS: 'v1/metrics', LOGS: 'v1/logs' } as const;
type Signal = keyof typeof SIGNAL_PATH;

/** The agent's span queue defaults (the variables still override them). */
export const AGENT_BSP_DEFAULTS = { maxQueueSize: 16384, maxExportBatchSize: 1024 } as const;

export function loadOtelConfig(env: Env = process.env, options: OtelOptions = {}, file: OtelFileOptions = {}): OtelConfig {
  const warnings: string[] = [];
  const str = (name: string): string | undefined => {
    const v = env[name]?.trim();
    return v === undefined || v === '' ? undefined : v;
  };
  // `def` is what applies without the variable: the file's value, else the default.
  const num = (name: string, def: number, min: number): number => {
    const raw = str(name);
    if (raw === undefined) return def;
    const n = Number(raw);
    if (Number.isFinite(n) && n >= min) return n;
    warnings.push(`${name}=${raw} is not a number >= ${min}; using ${def}`);
    return def;
  };

  const disabled = str('OTEL_SDK_DISABLED')?.toLowerCase() === 'true';

  // Every endpoint given, in every layer, is checked (whether a higher layer
  // hides it or not, as the file's are); the one each signal uses, also
  // against its protocol.
  // One problem a value: the check against a protocol says more than the
  // check without, and the first protocol's check is kept.
  const endpointChecks = new Map<string, { problem: EndpointProblem; withProtocol: boolean }>();
  const checkEndpoint = (setting: EndpointSetting, source: OtelSource, value: string, protocol?: OtlpProtocol): boolean => {
    const message = endpointProblem(value, protocol);
    if (message === undefined) return true;
    const key = `${setting}\0${describeSource(source)}\0${value}`;
    const known = endpointChecks.get(key);
    if (known === undefined || (protocol !== undefined && !known.withProtocol)) {
      endpointChecks.set(key, { problem: { setting, source, value, message }, withProtocol: protocol !== undefined });
    }
    return false;
  };
  /** The highest layer's value of an endpoint setting, with its source. */
  const endpointOf = (
    setting: EndpointSetting,
    flag: string | undefined,
    variable: string,
    fileValue: string | undefined,
  ): { value: string; source: OtelSource } | undefined => {
    const layers: Array<[string | undefined, OtelSource]> = [
      [flag, { layer: 'flag' }],
      [str(variable), { layer: 'env', variable }],
      [fileValue, { layer: 'file' }],
    ];
    for (const [value, source] of layers) if (value !== undefined) checkEndpoint(setting, source, value);
    const top = layers.find(([value]) => value !== undefined);
    return top === undefined ? undefined : { value: top[0]!, source: top[1] };
  };

  const signal = (sig: Signal, flagEndpoint: string | undefined, fileEndpoint: string | undefined): OtlpSignalConfig | undefined => {
    const protocol =
      options.protocol ??
      parseProtocol(str(`OTEL_EXPORTER_OTLP_${sig}_PROTOCOL`) ?? str('OTEL_EXPORTER_OTLP_PROTOCOL'), file.protocol ?? 'http/protobuf', warnings);
    const setting = `${sig.toLowerCase()}_endpoint` as EndpointSetting;
    const specific = endpointOf(setting, flagEndpoint, `OTEL_EXPORTER_OTLP_${sig}_ENDPOINT`, fileEndpoint);
    const generic = endpointOf('endpoint', options.endpoint, 'OTEL_EXPORTER_OTLP_ENDPOINT', file.endpoint);
    const chosen = specific !== undefined ? { ...specific, setting } : generic !== undefined ? { ...generic, setting: 'endpoint' as const } : undefined;
    if (chosen === undefined) return undefined;
    if (!checkEndpoint(chosen.setting, chosen.source, chosen.value, protocol)) {
      warnings.push(`OTLP ${sig.toLowerCase()} endpoint ${JSON.stringify(chosen.value)} from ${describeSource(chosen.source)} cannot be used; ${sig.toLowerCase()} are not exported`);
      return undefined;
    }
    const url = specific !== undefined || protocol === 'grpc' ? chosen.value : appendPath(chosen.value, SIGNAL_PATH[sig]);
    const headers = {
      ...file.headers,
      ...parseHeaders(str('OTEL_EXPORTER_OTLP_HEADERS'), 'OTEL_EXPORTER_OTLP_HEADERS', warnings),
      ...parseHeaders(str(`OTEL_EXPORTER_OTLP_${sig}_HEADERS`), `OTEL_EXPORTER_OTLP_${sig}_HEADERS`, warnings),
      ...options.headers,
    };
    const compressionRaw = str(`OTEL_EXPORTER_OTLP_${sig}_COMPRESSION`) ?? str('OTEL_EXPORTER_OTLP_COMPRESSION');
    let compression: Compression = options.compression ?? file.compression ?? 'none';
    if (options.compression === undefined && compressionRaw !== undefined) {
      if (compressionRaw === 'gzip' || compressionRaw === 'none') compression = compressionRaw;
      else warnings.push(`OTEL_EXPORTER_OTLP_COMPRESSION=${compressionRaw} is not supported (gzip or none); using ${compression}`);
    }
    const timeoutName = str(`OTEL_EXPORTER_OTLP_${sig}_TIMEOUT`) !== undefined ? `OTEL_EXPORTER_OTLP_${sig}_TIMEOUT` : 'OTEL_EXPORTER_OTLP_TIMEOUT';
    const insecureRaw = str(`OTEL_EXPORTER_OTLP_${sig}_INSECURE`) ?? str('OTEL_EXPORTER_OTLP_INSECURE');
    const cfg: {
      -readonly [K in keyof OtlpSignalConfig]: OtlpSignalConfig[K];
    } = {
      protocol,
      url,
      headers,
      compression,
      timeoutMillis: options.timeoutMillis ?? num(timeoutName, file.timeoutMillis ?? 10_000, 1),
      insecure: options.insecure ?? (insecureRaw !== undefined ? insecureRaw.toLowerCase() === 'true' : undefined) ?? file.insecure ?? false,
    };
    const certificate =
      options.certificate ?? str(`OTEL_EXPORTER_OTLP_${sig}_CERTIFICATE`) ?? str('OTEL_EXPORTER_OTLP_CERTIFICATE') ?? file.certificate;
    const clientKey = options.clientKey ?? str(`OTEL_EXPORTER_OTLP_${sig}_CLIENT_KEY`) ?? str('OTEL_EXPORTER_OTLP_CLIENT_KEY') ?? file.clientKey;
    const clientCertificate =
      options.clientCertificate ??
      str(`OTEL_EXPORTER_OTLP_${sig}_CLIENT_CERTIFICATE`) ??
      str('OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE') ??
      file.clientCertificate;
    if (certificate !== undefined) cfg.certificate = certificate;
    if (clientKey !== undefined) cfg.clientKey = clientKey;
    if (clientCertificate !== undefined) cfg.clientCertificate = clientCertificate;
    if ((clientKey === undefined) !== (clientCertificate === undefined)) {
      warnings.push('OTLP client key and client certificate must be given together; the one given is ignored');
      delete cfg.clientKey;
      delete cfg.clientCertificate;
    }
    return cfg;
  };

  // Traces.
  const tracesOtlp = signal('TRACES', options.tracesEndpoint, file.tracesEndpoint);
  let tracesExporter: SignalExporter;
  const tracesExporterEnv = parseExporterList(str('OTEL_TRACES_EXPORTER'), 'OTEL_TRACES_EXPORTER', warnings);
  if (disabled) tracesExporter = 'none';
  else if (options.console) tracesExporter = 'console';
  else if (tracesExporterEnv !== undefined) tracesExporter = tracesExporterEnv;
  else tracesExporter = tracesOtlp ? 'otlp' : 'console';
  if (tracesExporter === 'otlp' && !tracesOtlp) {
    warnings.push('OTEL_TRACES_EXPORTER=otlp but no endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT); printing spans instead');
    tracesExporter = 'console';
  }

  // Metrics.
  const metricsOtlp = signal('METRICS', options.metricsEndpoint, file.metricsEndpoint);
  let metricsExporter: 'otlp' | 'none';
  const metricsExporterEnv = parseExporterList(str('OTEL_METRICS_EXPORTER'), 'OTEL_METRICS_EXPORTER', warnings);
  if (disabled || options.console) metricsExporter = 'none';
  else if (metricsExporterEnv === 'console') {
    warnings.push('OTEL_METRICS_EXPORTER=console is not supported; metrics are not exported');
    metricsExporter = 'none';
  } else if (metricsExporterEnv !== undefined) metricsExporter = metricsExporterEnv;
  else metricsExporter = metricsOtlp ? 'otlp' : 'none';
  if (metricsExporter === 'otlp' && !metricsOtlp) {
    warnings.push('OTEL_METRICS_EXPORTER=otlp but no endpoint is set; metrics are not exported');
    metricsExporter = 'none';
  }

  // Log records: OTEL_LOGS_EXPORTER as OTEL_TRACES_EXPORTER (otlp when an
  // endpoint is set, else printed), OTEL_EXPORTER_OTLP_LOGS_* as the other
  // signals', OTEL_BLRP_* with the SDK's defaults (2048 queued, 512 a batch,
  // 1 s, 30 s): the agent's log records are rare, rate-limited events.
  const logsOtlp = signal('LOGS', options.logsEndpoint, file.logsEndpoint);
  const logsExporterEnv = parseExporterList(str('OTEL_LOGS_EXPORTER'), 'OTEL_LOGS_EXPORTER', warnings);
  let logsExporter: SignalExporter = disabled ? 'none' : options.console ? 'console' : (logsExporterEnv ?? (logsOtlp ? 'otlp' : 'console'));
  if (logsExporter === 'otlp' && !logsOtlp) {
    warnings.push('OTEL_LOGS_EXPORTER=otlp but no endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT); printing log records instead');
    logsExporter = 'console';
  }
  const logsQueueSize = Math.floor(num('OTEL_BLRP_MAX_QUEUE_SIZE', 2048, 1));
  let logsBatchSize = Math.floor(num('OTEL_BLRP_MAX_EXPORT_BATCH_SIZE', 512, 1));
  if (logsBatchSize > logsQueueSize) {
    warnings.push(`OTEL_BLRP_MAX_EXPORT_BATCH_SIZE (${logsBatchSize}) exceeds OTEL_BLRP_MAX_QUEUE_SIZE (${logsQueueSize}); using ${logsQueueSize}`);
    logsBatchSize = logsQueueSize;
  }
  const logsBatch: BatchConfig = {
    maxQueueSize: logsQueueSize,
    maxExportBatchSize: logsBatchSize,
    scheduleDelayMillis: num('OTEL_BLRP_SCHEDULE_DELAY', 1000, 0),
    exportTimeoutMillis: num('OTEL_BLRP_EXPORT_TIMEOUT', 30_000, 1),
  };
  const logs = logsExporter === 'otlp' && logsOtlp ? { exporter: logsExporter, otlp: logsOtlp, batch: logsBatch } : { exporter: logsExporter, batch: logsBatch };

  const temporalityRaw = str('OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE')?.toLowerCase();
  let temporality: TemporalityPreference = 'cumulative';
  if (temporalityRaw === 'cumulative' || temporalityRaw === 'delta' || temporalityRaw === 'lowmemory') temporality = temporalityRaw;
  else if (temporalityRaw !== undefined) warnings.push(`OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=${temporalityRaw} is not supported; using cumulative`);

  // The SDK defaults (2048 queued, 512 a batch) suit one process's spans; an
  // agent exports every traced process's, thousands a second: at 20k req/s
  // 2048 is a tenth of a second of slack. 16384 queued records are ~30 MiB at
  // most; batches of 1024 are ~0.5 MiB of OTLP.
  let maxQueueSize = options.maxQueueSize ?? num('OTEL_BSP_MAX_QUEUE_SIZE', file.maxQueueSize ?? AGENT_BSP_DEFAULTS.maxQueueSize, 1);
  let maxExportBatchSize =
    options.maxExportBatchSize ?? num('OTEL_BSP_MAX_EXPORT_BATCH_SIZE', file.maxExportBatchSize ?? AGENT_BSP_DEFAULTS.maxExportBatchSize, 1);
  if (maxExportBatchSize > maxQueueSize) {
    // Only a batch size someone chose is worth a warning; the default simply follows a smaller queue.
    const batchChosen = options.maxExportBatchSize !== undefined || str('OTEL_BSP_MAX_EXPORT_BATCH_SIZE') !== undefined || file.maxExportBatchSize !== undefined;
    if (batchChosen) warnings.push(`the span batch size (${maxExportBatchSize}) exceeds the span queue size (${maxQueueSize}); using ${maxQueueSize}`);
    maxExportBatchSize = maxQueueSize;
  }
  maxQueueSize = Math.floor(maxQueueSize);
  maxExportBatchSize = Math.floor(maxExportBatchSize);

  const sampler = parseSampler(
    options.sampler ?? str('OTEL_TRACES_SAMPLER') ?? file.sampler,
    options.samplerArg ?? str('OTEL_TRACES_SAMPLER_ARG') ?? file.samplerArg,
    warnings,
  );

  const metricsConfig = {
    exporter: metricsExporter,
    exportIntervalMillis: options.metricExportIntervalMillis ?? num('OTEL_METRIC_EXPORT_INTERVAL', file.metricExportIntervalMillis ?? 60_000, 1),
    exportTimeoutMillis: num('OTEL_METRIC_EXPORT_TIMEOUT', 30_000, 1),
    temporality,
    maxSeriesPerInstrument: options.maxSeriesPerInstrument ?? file.maxSeriesPerInstrument ?? 2000,
  };
  return {
    traces: tracesExporter === 'otlp' && tracesOtlp ? { exporter: 'otlp', otlp: tracesOtlp } : { exporter: tracesExporter },
    metrics: metricsExporter === 'otlp' && metricsOtlp ? { ...metricsConfig, otlp: metricsOtlp } : metricsConfig,
    logs,
    sampler,
    batch: {
      maxQueueSize,
      maxExportBatchSize,
      scheduleDelayMillis: options.scheduleDelayMillis ?? num('OTEL_BSP_SCHEDULE_DELAY', file.scheduleDelayMillis ?? 5000, 0),
      exportTimeoutMillis: options.exportTimeoutMillis ?? num('OTEL_BSP_EXPORT_TIMEOUT', file.exportTimeoutMillis ?? 30_000, 1),
    },
    retry: { ...DEFAULT_RETRY, ...file.retry, ...options.retry },
    shutdownTimeoutMillis: options.shutdownTimeoutMillis ?? file.shutdownTimeoutMillis ?? SHUTDOWN_TIMEOUT_MS,
    resource: {
      attributes: { ...file.resourceAttributes, ...options.resourceAttributes },
      captureCommandArgs: options.captureCommandArgs ?? file.captureCommandArgs ?? false,
      maxProcesses: options.maxProcesses ?? file.maxProcesses ?? 4096,
    },
    // One bad shared variable is read once per signal: say it once.
    warnings: [...new Set(warnings)],
    endpointProblems: [...endpointChecks.values()].map((c) => c.problem),
  };
}

function parseProtocol(raw: string | undefined, fallback: OtlpProtocol, warnings: string[]): OtlpProtocol {
  if (raw === undefined) return fallback;
  if (raw === 'grpc' || raw === 'http/protobuf') return raw;
  warnings.push(`OTLP protocol ${raw} is not supported (grpc or http/protobuf); using ${fallback}`);
  return fallback;
}

/** OTEL_*_EXPORTER is a list; we take its first entry (otlp, console or none). */
function parseExporterList(raw: string | undefined, name: string, warnings: string[]): SignalExporter | undefined {
  if (raw === undefined) return undefined;
  const entries = raw.split(',').map((s) => s.trim().toLowerCase()).filter((s) => s !== '');
  const first = entries[0];
  if (first === undefined) return undefined;
  if (entries.length > 1) warnings.push(`${name}=${raw}: only one exporter is supported; using ${first}`);
  if (first === 'otlp' || first === 'console' || first === 'none') return first;
  warnings.push(`${name}=${raw} is not supported (otlp, console or none); ignored`);
  return undefined;
}

function appendPath(base: string, path: string): string {
  return base.endsWith('/') ? base + path : `${base}/${path}`;
}

/**
 * W3C-baggage-like list `key1=value1,key2=value2`, values percent-decoded
 * (OTEL_EXPORTER_OTLP_HEADERS). A malformed entry is skipped with a warning.
 */
export function parseHeaders(raw: string | undefined, name: string, warnings: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  if (raw === undefined) return out;
  for (const entry of raw.split(',')) {
    if (entry.trim() === '') continue;
    const eq = entry.indexOf('=');
    const key = eq > 0 ? entry.slice(0, eq).trim() : '';
    if (key === '') {
      warnings.push(`${name}: entry without key=value ignored`);
      continue;
    }
    try {
      out[key] = decodeURIComponent(entry.slice(eq + 1).trim());
    } catch {
      warnings.push(`${name}: value of ${key} is not valid percent-encoding; ignored`);
    }
  }
  return out;
}
