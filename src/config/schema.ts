// The configuration file's schema: one table that the loader validates
// against, the README's table is generated from (test/config/docs.test.ts
// compares them) and the example file deploy/config/ebpf-otel.yaml must cover
// (test/config/example.test.ts). Each setting names the environment
// variables and flags that override it, which is also how `config print`
// tells where a value came from. Each protocol of the registry adds its own
// section (ProtocolDefinition.config) after `capture`, each feature its own
// (src/agent/features/configs.ts) after `resource`: the schema is built for
// a list of protocols, CONFIG_SCHEMA for the agent's own.

import { CAPTURE_DEFAULTS, MAX_RING_BUFFER_MIB } from '../capture/capture-engine';
import { MAX_PAYLOAD } from '../capture/layout';
import { PROTOCOLS } from '../protocols/registry';
import type { ProtocolDefinition } from '../protocols/types';
import type { FeatureConfig } from '../agent/feature';
import { FEATURE_CONFIGS } from '../agent/features/configs';
import { endpointProblem } from '../otel/config';
import { SAMPLER_KINDS } from '../otel/sampler';
import { MAX_PID, MAX_PORT, cgroupProblem, containerProblem, exeProblem, parseHostPort } from './flags';
import { Setting, setting, type FileValues, type Section } from './setting';
import { bool, checked, duration, filePath, headerName, headerNameProblem, int, list, map, attributeValue, oneOf, powerOfTwo, ratio, text } from './shapes';

export { Setting, type FileValues, type Section } from './setting';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;

// Value types particular to this file.

// The file's protocol may be overridden above it: run-config checks each endpoint against the protocol in effect.
const endpoint = () => text('a URL', 'URL', (s) => endpointProblem(s));

const hostPort = () =>
  text(
    'HOST:PORT',
    'HOST:PORT',
    (s) => (parseHostPort(s) ? undefined : `expected HOST:PORT (e.g. 127.0.0.1:9464 or [::1]:9464), got ${JSON.stringify(s)}`),
    (s) => parseHostPort(s)!,
  );

/** The settings every agent has; the protocols' sections go after `capture`. */
function coreSchema(protocolIds: readonly string[]) {
  return {
  selectors: {
    pid: setting(list(int(1, MAX_PID)), 'processes, and the processes they fork', { default: '[]', flags: ['--pid'] }),
    exe: setting(list(checked('an executable name or glob', 'name or glob', exeProblem)), 'processes whose executable has this name (or matches this glob), including ones started later', {
      default: '[]',
      flags: ['--exe'],
    }),
    port: setting(list(int(1, MAX_PORT)), 'processes listening on this TCP port', { default: '[]', flags: ['--port'] }),
    cgroup: setting(list(checked('a cgroup v2 directory', 'path', cgroupProblem)), 'processes in this cgroup v2 directory', { default: '[]', flags: ['--cgroup'] }),
    container: setting(list(checked('a container id', 'container id', containerProblem)), 'processes of this container (12 to 64 hex digits)', {
      default: '[]',
      flags: ['--container'],
    }),
    all: setting(bool(), 'every process except the agent', { default: 'false', flags: ['--all'] }),
  },
  protocols: {
    enabled: setting(list(oneOf(protocolIds, 'protocol id')), 'protocols to detect and parse', { default: 'all known', flags: ['--protocols'] }),
  },
  capture: {
    bytes: setting(int(0, MAX_PAYLOAD), 'payload bytes kept per syscall (the true size is always kept)', {
      default: String(MAX_PAYLOAD),
      flags: ['--capture-bytes'],
    }),
    ring_buffer_mib: setting(powerOfTwo(1, MAX_RING_BUFFER_MIB), 'MiB of the kernel-to-agent ring buffer (RSS shows it twice: it is mapped twice); lost events are counted', {
      default: String(CAPTURE_DEFAULTS.ringBufferBytes >> 20),
      flags: ['--ring-buffer-mib'],
    }),
    request_timeout: setting(duration({ allowZero: false }), 'a request without a response for this long becomes an error span', {
      default: '30s',
      flags: ['--request-timeout'],
    }),
  },
  redaction: {
    headers: setting(list(headerName()), 'header names whose values are never recorded; replaces the default list (removing a default is logged as a warning)', {
      default: 'authorization, proxy-authorization, cookie, set-cookie',
    }),
  },
  sampling: {
    sampler: setting(oneOf(SAMPLER_KINDS), 'head sampler, per trace', { default: 'parentbased_always_on', env: ['OTEL_TRACES_SAMPLER'], flags: ['--sampler'] }),
    arg: setting(ratio(), 'sampling ratio of the traceidratio samplers', { default: '1', env: ['OTEL_TRACES_SAMPLER_ARG'], flags: ['--sampler-arg'] }),
  },
  export: {
    endpoint: setting(endpoint(), 'OTLP endpoint of both signals (none: spans on the console, no metrics)', {
      env: ['OTEL_EXPORTER_OTLP_ENDPOINT'],
      flags: ['--otlp-endpoint'],
    }),
    traces_endpoint: setting(endpoint(), 'full URL for spans; wins over endpoint', { env: ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'], flags: ['--otlp-traces-endpoint'] }),
    metrics_endpoint: setting(endpoint(), 'full URL for metrics; wins over endpoint', {
      env: ['OTEL_EXPORTER_OTLP_METRICS_ENDPOINT'],
      flags: ['--otlp-metrics-endpoint'],
    }),
    logs_endpoint: setting(endpoint(), 'full URL for log records (slow syscalls); wins over endpoint', {
      env: ['OTEL_EXPORTER_OTLP_LOGS_ENDPOINT'],
      flags: ['--otlp-logs-endpoint'],
    }),
    protocol: setting(oneOf(['grpc', 'http/protobuf']), 'OTLP transport', {
      default: 'http/protobuf',
      env: ['OTEL_EXPORTER_OTLP_PROTOCOL', 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_METRICS_PROTOCOL'],
      flags: ['--otlp-protocol'],
    }),
    headers: setting(map(text('a string', 'string'), headerNameProblem), 'request headers (values usually `${VAR}` from a Secret); merged by name with the higher layers', {
      default: '{}',
      env: ['OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_TRACES_HEADERS', 'OTEL_EXPORTER_OTLP_METRICS_HEADERS'],
      flags: ['--otlp-headers'],
    }),
    compression: setting(oneOf(['gzip', 'none']), 'request compression', { default: 'none', env: ['OTEL_EXPORTER_OTLP_COMPRESSION'], flags: ['--otlp-compression'] }),
    timeout: setting(duration({ allowZero: false }), 'one export request', { default: '10s', env: ['OTEL_EXPORTER_OTLP_TIMEOUT'], flags: ['--otlp-timeout'] }),
    insecure: setting(bool(), 'plaintext gRPC to an endpoint without a scheme', { default: 'false', env: ['OTEL_EXPORTER_OTLP_INSECURE'], flags: ['--otlp-insecure'] }),
    tls: {
      ca_file: setting(filePath(), 'PEM certificate(s) to trust for the collector (relative: to this file)', {
        env: ['OTEL_EXPORTER_OTLP_CERTIFICATE'],
        flags: ['--otlp-certificate'],
      }),
      cert_file: setting(filePath(), 'PEM client certificate (mutual TLS; with key_file)', {
        env: ['OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE'],
        flags: ['--otlp-client-certificate'],
      }),
      key_file: setting(filePath(), 'PEM client private key (mutual TLS; with cert_file)', { env: ['OTEL_EXPORTER_OTLP_CLIENT_KEY'], flags: ['--otlp-client-key'] }),
    },
    metric_interval: setting(duration({ allowZero: false }), 'metric export interval', {
      default: '60s',
      env: ['OTEL_METRIC_EXPORT_INTERVAL'],
      flags: ['--metric-interval'],
    }),
    batch: {
      max_queue_size: setting(int(1, 1 << 24), 'spans waiting for export; more are dropped and counted', { default: '16384', env: ['OTEL_BSP_MAX_QUEUE_SIZE'] }),
      max_export_batch_size: setting(int(1, 1 << 24), 'spans in one export request', { default: '1024', env: ['OTEL_BSP_MAX_EXPORT_BATCH_SIZE'] }),
      schedule_delay: setting(duration({ allowZero: true }), 'longest wait before a partial batch is exported', { default: '5s', env: ['OTEL_BSP_SCHEDULE_DELAY'] }),
      export_timeout: setting(duration({ allowZero: false }), 'bound of one batch export, retries included', { default: '30s', env: ['OTEL_BSP_EXPORT_TIMEOUT'] }),
    },
  },
  resource: {
    attributes: setting(
      map(attributeValue(), (k) =>
        k === 'service.instance.id'
          ? 'service.instance.id identifies one process: it cannot be given to all of them (set it in the process own OTEL_RESOURCE_ATTRIBUTES)'
          : k.trim() === ''
            ? 'an attribute name cannot be empty'
            : undefined,
      ),
      "added to every traced process's resource; the process's own OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win",
      { default: '{}' },
    ),
    capture_command_args: setting(bool(), '`process.command_args` on resources (argv may carry secrets)', { default: 'false' }),
  },
  log: {
    level: setting(oneOf(LOG_LEVELS), "the agent's own log", { default: 'info', env: ['EBPF_OTEL_LOG_LEVEL'], flags: ['--log-level'] }),
  },
  health: {
    listen: setting(hostPort(), 'serve `/healthz` and `/metrics` here', { flags: ['--health-listen'] }),
  },
  duration: setting(duration({ allowZero: false }), 'stop after this long (unset: until SIGINT/SIGTERM)', { flags: ['--duration'] }),
  shutdown_timeout: setting(duration({ allowZero: true }), 'bound of the final flush of spans, log records and metrics at exit; what it cuts is cancelled and the exit summary says what each signal lost', {
    default: '5s',
  }),
  } satisfies Section;
}

type CoreSchema = ReturnType<typeof coreSchema>;

/** The schema of an agent with these protocols: the core settings, each protocol's section after `capture`. */
export function configSchema(protocols: readonly ProtocolDefinition[], features: readonly FeatureConfig<unknown>[] = FEATURE_CONFIGS): CoreSchema & Section {
  const { selectors, protocols: enabled, capture, redaction, sampling, export: exportSection, resource, ...rest } = coreSchema(protocols.map((p) => p.id));
  const sections: Record<string, Section> = {};
  for (const p of protocols) {
    const c = p.config;
    if (c === undefined) continue;
    if (Object.hasOwn(rest, c.section) || c.section === 'selectors' || c.section === 'protocols' || c.section === 'capture' || Object.hasOwn(sections, c.section)) {
      throw new Error(`protocol ${p.id}: configuration section ${c.section} is taken`);
    }
    sections[c.section] = c.settings as Section;
  }
  const featureSections: Record<string, Section> = {};
  for (const f of features) {
    if (Object.hasOwn(rest, f.section) || Object.hasOwn(sections, f.section) || Object.hasOwn(featureSections, f.section)) {
      throw new Error(`feature configuration section ${f.section} is taken`);
    }
    featureSections[f.section] = f.settings;
  }
  return { selectors, protocols: enabled, capture, ...sections, redaction, sampling, export: exportSection, resource, ...featureSections, ...rest };
}

export const CONFIG_SCHEMA = configSchema(PROTOCOLS);

/** The typed contents of a file: the core settings typed, the protocols' sections as their config reads them. */
export type FileConfig = FileValues<CoreSchema> & { readonly [section: string]: unknown };

/** Every setting with its dotted key, in schema order. */
export function settings(section: Section = CONFIG_SCHEMA, prefix = ''): Array<{ key: string; setting: Setting<unknown> }> {
  const out: Array<{ key: string; setting: Setting<unknown> }> = [];
  for (const [k, v] of Object.entries(section)) {
    const key = prefix + k;
    if (v instanceof Setting) out.push({ key, setting: v });
    else out.push(...settings(v, key + '.'));
  }
  return out;
}

/** The README's table of settings, generated from the schema. */
export function settingsTable(schema: Section = CONFIG_SCHEMA): string {
  const code = (s: string) => '`' + s + '`';
  const rows = settings(schema).map(({ key, setting: s }) =>
    [
      code(key),
      s.shape.type,
      s.defaultText === 'unset' ? '' : s.defaultText,
      s.env.map(code).join(', '),
      s.flags.map(code).join(', '),
      s.doc,
    ].join(' | '),
  );
  return ['| key | type | default | variable | flag | what |', '| --- | --- | --- | --- | --- | --- |', ...rows.map((r) => `| ${r} |`)].join('\n');
}
