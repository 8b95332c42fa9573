// `ebpf-otel run`: the main job. Parses the configuration, builds the agent
// (src/agent/agent.ts), runs it until SIGINT/SIGTERM or --duration, stops it
// (everything pending is flushed) and exits 0.

import { createAgent } from '../agent/agent';
import type { Env } from '../otel/config';
import { createLogger, type Logger, type LogLevel } from '../util/log';
import { RUN_USAGE, parseRunFlags, resolveRunConfig, type ResolveOptions, type RunOptions } from '../config/run-config';
import { runUntilSignal } from './lifecycle';

export { RUN_USAGE, type RunOptions } from '../config/run-config';

/**
 * The options `run` would use with these flags, this environment and the
 * configuration file they name (--config, else EBPF_OTEL_CONFIG).
 */
export function parseRunArgs(argv: string[], opts: ResolveOptions & { env?: Env } = {}): RunOptions | 'help' {
  const values = parseRunFlags(argv, opts.protocols);
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

/** Runs the agent until a signal or its duration; `onReady` once it is attached. */
export async function runAgent(opts: RunOptions, logger: Logger, onReady?: () => void | Promise<void>): Promise<number> {
  const agent = createAgent(opts, { logger });
  try {
    await agent.start();
    process.stderr.write('ebpf-otel: ready\n');
    await onReady?.();
    await runUntilSignal(opts.duration);
  } finally {
    await agent.stop();
  }
  for (const line of agent.summary()) logger.info(line);
  logger.debug(`kernel counters: ${agent.kernelCounters()}`);
  return 0;
}
