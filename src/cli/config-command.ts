// `ebpf-otel config print [run options]`: the configuration `run` would use
// with these flags and this environment (OTEL_* variables, then flags), as
// JSON, after defaults and validation, with the warnings `run` would log.
// Header values are redacted: they usually carry credentials.

import { CAPTURE_DEFAULTS, SYSCALL_DEFAULTS } from '../capture/capture-engine';
import { loadOtelConfig, type Env, type OtlpSignalConfig } from '../otel/config';
import { UsageError } from './args';
import { parseRunArgs, RUN_USAGE } from './run-command';

export const CONFIG_USAGE = `usage: ebpf-otel config print [run options]
Prints the effective configuration of \`ebpf-otel run\` with these options and
this environment, as JSON (header values redacted). Selectors are optional here.
${RUN_USAGE.split('\n').slice(1).join('\n')}`;

function redacted(o: OtlpSignalConfig | undefined): unknown {
  if (o === undefined) return undefined;
  return { ...o, headers: Object.fromEntries(Object.keys(o.headers).map((k) => [k, '<redacted>'])) };
}

/** The effective configuration as a plain object (what `config print` prints). */
export function effectiveConfig(argv: string[], env: Env): Record<string, unknown> {
  const opts = parseRunArgs(argv, { requireSelector: false });
  if (opts === 'help') throw new UsageError(CONFIG_USAGE);
  const otel = loadOtelConfig(env, opts.otel);
  return {
    selectors: opts.capture.selectors,
    capture: {
      ...CAPTURE_DEFAULTS,
      ...opts.capture,
      ...(opts.capture.syscalls ? { syscalls: { ...SYSCALL_DEFAULTS, ...opts.capture.syscalls } } : {}),
      selectors: undefined,
    },
    syscallMetrics: opts.syscallMetrics,
    protocols: opts.protocols ?? 'all',
    routes: opts.routes,
    captureQuery: opts.captureQuery,
    requestTimeoutSeconds: opts.requestTimeoutNs / 1e9,
    ...(opts.health ? { healthListen: `${opts.health.host}:${opts.health.port}` } : {}),
    ...(opts.duration !== undefined ? { durationSeconds: opts.duration } : {}),
    traces: { exporter: otel.traces.exporter, otlp: redacted(otel.traces.otlp) },
    metrics: { ...otel.metrics, otlp: redacted(otel.metrics.otlp) },
    sampler: otel.sampler,
    batch: otel.batch,
    retry: otel.retry,
    resource: otel.resource,
    warnings: otel.warnings,
  };
}

export function configCommand(argv: string[], write: (s: string) => void = (s) => process.stdout.write(s)): number {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === 'help' || sub === '--help' || sub === '-h') {
    write(CONFIG_USAGE + '\n');
    return 0;
  }
  if (sub !== 'print') throw new UsageError(`unknown config subcommand ${JSON.stringify(sub)}\n${CONFIG_USAGE}`);
  write(JSON.stringify(effectiveConfig(rest, process.env), null, 2) + '\n');
  return 0;
}
