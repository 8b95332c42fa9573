// ebpf-otel: command-line entry point.

import { CaptureSetupError } from '../capture/kernel-session';
import { createLogger, isLogLevel, type LogLevel } from '../util/log';
import { UsageError } from '../config/flags';
import { ConfigFileError } from '../config/file';
// Each command's module is loaded when it runs: `run`, the long-lived one,
// then holds no other command's code (and what it pulls in) in its heap.

const USAGE = `usage: ebpf-otel <command> [options]

commands:
  run       the agent: spans and metrics over OTLP, or on the console (see: ebpf-otel run --help)
  capture   print captured socket events (see: ebpf-otel capture --help)
  syscalls  live syscall latency per process, top-like (see: ebpf-otel syscalls --help)
  demo      run the bundled demo workload and capture it
  top       live TCP health and flows per process and peer (see: ebpf-otel top --help)
  doctor    report what this kernel and these privileges allow; --pid P (repeatable): the process's TLS libraries, probed or why not
  config    config print [--config FILE] [run options]: the configuration run would use, as JSON

global options: --log-level debug|info|warn|error (or EBPF_OTEL_LOG_LEVEL; for run, also log.level in its configuration file)`;

async function main(argv: string[]): Promise<number> {
  let flagLevel: LogLevel | undefined;
  const li = argv.indexOf('--log-level');
  if (li >= 0) {
    const v = argv[li + 1] ?? '';
    if (!isLogLevel(v)) throw new UsageError(`--log-level takes debug, info, warn or error, got ${JSON.stringify(v)}`);
    flagLevel = v;
    argv = [...argv.slice(0, li), ...argv.slice(li + 2)];
  }
  // `run` and `config` resolve the level with their configuration file (src/config/run-config.ts).
  const env = process.env.EBPF_OTEL_LOG_LEVEL;
  const logger = createLogger(flagLevel ?? (env !== undefined && isLogLevel(env) ? env : 'info'));
  const [command, ...rest] = argv;
  switch (command) {
    case 'run':
      return (await import('./run-command')).runCommand(rest, flagLevel);
    case 'capture':
      return (await import('./capture-command')).captureCommand(rest, logger);
    case 'syscalls':
      return (await import('./syscalls-command')).syscallsCommand(rest, logger);
    case 'demo':
      return (await import('./demo')).demoCommand(rest, logger);
    case 'top':
      return (await import('./top-command')).topCommand(rest, logger);
    case 'doctor':
      return (await import('./doctor')).doctorCommand(rest);
    case 'config':
      return (await import('./config-command')).configCommand(rest, undefined, flagLevel);
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
    if (err instanceof ConfigFileError) {
      // One line a problem, FILE:LINE:COL first, as compilers do: editors jump to them.
      process.stderr.write(`${err.message}\nebpf-otel: ${err.problems.length} problem${err.problems.length === 1 ? '' : 's'} in ${err.file}\n`);
      process.exitCode = 2;
    } else if (err instanceof UsageError) {
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

