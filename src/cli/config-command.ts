// `ebpf-otel config print [--config FILE] [run options]`: the configuration
// `run` would use with these flags, this environment and this configuration
// file, after defaults and validation, with the warnings `run` would log and
// `sources`: which layer (default, file, env, flag) each setting came from.
// Header values are redacted: they usually carry credentials.

import { yaml } from '../config/yaml';
import { CAPTURE_DEFAULTS } from '../capture/capture-engine';
import { loadOtelConfig, type Env, type OtlpSignalConfig } from '../otel/config';
import type { LogLevel } from '../util/log';
import { UsageError, parse } from '../config/flags';
import { PROTOCOLS } from '../protocols/registry';
import { RUN_USAGE, resolveRunConfig, runFlags } from '../config/run-config';

export const CONFIG_USAGE = `usage: ebpf-otel config print [--config FILE] [--format json|yaml] [run options]
Prints the effective configuration of \`ebpf-otel run\` with these options, this
environment and the configuration file (--config, else EBPF_OTEL_CONFIG), as
JSON (or YAML), header values redacted. \`sources\` tells for each setting the
layer its value came from: default, file, env or flag. Selectors are optional here.
${RUN_USAGE.split('\n').slice(1).join('\n')}`;

const CONFIG_FLAGS = { ...runFlags(PROTOCOLS), format: { type: 'string' } } as const;

function redacted(o: OtlpSignalConfig | undefined): unknown {
  if (o === undefined) return undefined;
  return { ...o, headers: Object.fromEntries(Object.keys(o.headers).map((k) => [k, '<redacted>'])) };
}

/** The effective configuration as a plain object (what `config print` prints). */
export function effectiveConfig(argv: string[], env: Env, o: { logLevelFlag?: LogLevel } = {}): Record<string, unknown> {
  const { values } = parse(argv, CONFIG_FLAGS);
  if (values.help) throw new UsageError(CONFIG_USAGE);
  const run = resolveRunConfig(values, env, { requireSelector: false, ...o });
  const opts = run.options;
  const otel = loadOtelConfig(env, opts.otel, opts.otelFile);
  return {
    configFile: run.configFile ?? null,
    logLevel: run.logLevel,
    selectors: opts.capture.selectors,
    // The kernel program groups and their bounds are the features' (below).
    capture: (({ groups: _g, tcpPeerEntries: _t, ...rest }) => ({ ...rest, ...opts.capture, selectors: undefined }))(CAPTURE_DEFAULTS),
    features: opts.features,
    protocols: opts.protocols ?? 'all',
    protocolOptions: opts.protocolOptions,
    redactHeaders: opts.redactHeaders,
    requestTimeoutSeconds: opts.requestTimeoutNs / 1e9,
    ...(opts.health ? { healthListen: `${opts.health.host}:${opts.health.port}` } : {}),
    ...(opts.duration !== undefined ? { durationSeconds: opts.duration } : {}),
    traces: { exporter: otel.traces.exporter, otlp: redacted(otel.traces.otlp) },
    metrics: { ...otel.metrics, otlp: redacted(otel.metrics.otlp) },
    sampler: otel.sampler,
    batch: otel.batch,
    retry: otel.retry,
    shutdownTimeoutMillis: otel.shutdownTimeoutMillis,
    resource: otel.resource,
    sources: run.sources,
    warnings: [...run.warnings, ...otel.warnings],
  };
}

export function configCommand(
  argv: string[],
  write: (s: string) => void = (s) => process.stdout.write(s),
  logLevelFlag?: LogLevel,
  env: Env = process.env,
): number {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === 'help' || sub === '--help' || sub === '-h') {
    write(CONFIG_USAGE + '\n');
    return 0;
  }
  if (sub !== 'print') throw new UsageError(`unknown config subcommand ${JSON.stringify(sub)}\n${CONFIG_USAGE}`);
  const format = parse(rest, CONFIG_FLAGS).values.format ?? 'json';
  if (format !== 'json' && format !== 'yaml') throw new UsageError(`--format takes json or yaml, got ${JSON.stringify(format)}`);
  // Through JSON first: undefined fields vanish the same way in both formats.
  const plain = JSON.parse(JSON.stringify(effectiveConfig(rest, env, logLevelFlag !== undefined ? { logLevelFlag } : {}))) as unknown;
  write(format === 'yaml' ? yaml().stringify(plain) : JSON.stringify(plain, null, 2) + '\n');
  return 0;
}
