// ebpf-otel: command-line entry point.

import { CaptureSetupError } from '../capture/kernel-session';
import { createLogger, isLogLevel, type LogLevel } from '../util/log';
import { UsageError } from './args';
import { captureCommand } from './capture-command';
import { configCommand } from './config-command';
import { demoCommand } from './demo';
import { doctorCommand } from './doctor';
import { runCommand } from './run-command';
import { syscallsCommand } from './syscalls-command';

const USAGE = `usage: ebpf-otel <command> [options]

commands:
  run       the agent: spans and metrics over OTLP, or on the console (see: ebpf-otel run --help)
  capture   print captured socket events (see: ebpf-otel capture --help)
  syscalls  live syscall latency per process, top-like (see: ebpf-otel syscalls --help)
  demo      run the bundled demo workload and capture it
  doctor    report what this kernel and these privileges allow
  config    config print [run options]: the configuration run would use, as JSON

global options: --log-level debug|info|warn|error (or EBPF_OTEL_LOG_LEVEL)`;

async function main(argv: string[]): Promise<number> {
  let level: LogLevel = 'info';
  const env = process.env.EBPF_OTEL_LOG_LEVEL;
  if (env !== undefined && isLogLevel(env)) level = env;
  const li = argv.indexOf('--log-level');
  if (li >= 0) {
    const v = argv[li + 1] ?? '';
    if (!isLogLevel(v)) throw new UsageError(`--log-level takes debug, info, warn or error, got ${JSON.stringify(v)}`);
    level = v;
    argv = [...argv.slice(0, li), ...argv.slice(li + 2)];
  }
  const logger = createLogger(level);
  const [command, ...rest] = argv;
  switch (command) {
    case 'run':
      return runCommand(rest, logger);
    case 'capture':
      return captureCommand(rest, logger);
    case 'syscalls':
      return syscallsCommand(rest, logger);
    case 'demo':
      return demoCommand(rest, logger);
    case 'doctor':
      return doctorCommand(rest);
    case 'config':
      return configCommand(rest);
    case '--version':
    case 'version':
      process.stdout.write(`${require('../../../package.json').version}\n`);
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE + '\n');
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}\n${USAGE}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`ebpf-otel: ${err.message}\n`);
      process.exitCode = 2;
    } else if (err instanceof CaptureSetupError) {
      process.stderr.write(`ebpf-otel: ${err.message}\n`);
      process.exitCode = 1;
    } else {
      const e = err as Error;
      process.stderr.write(`ebpf-otel: ${e.message}\n`);
      if (process.env.EBPF_OTEL_DEBUG) process.stderr.write(`${e.stack}\n`);
      process.exitCode = 1;
    }
  },
);

