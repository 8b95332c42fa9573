// Syscall latency: the `syscalls` section of the configuration file and the
// flags above it. Off by default: while its programs are loaded, every
// syscall of every process on the host pays for them.

import { SYSCALL_DEFAULTS } from '../../capture/capture-engine';
import { UsageError, durationSeconds, flagString, positiveInt } from '../../config/flags';
import { setting } from '../../config/setting';
import { bool, duration, int } from '../../config/shapes';
import { DEFAULT_SYSCALL_MAX_SERIES } from '../../otel/syscall-duration';
import type { FeatureConfig } from '../feature';
import type { SyscallLatencyOptions } from './syscall-latency';

interface SyscallsFile {
  readonly metrics?: boolean;
  readonly max_series?: number;
  readonly slow?: number;
  readonly slow_rate?: number;
}

export const SYSCALL_LATENCY_CONFIG: FeatureConfig<SyscallLatencyOptions> = {
  section: 'syscalls',
  settings: {
    metrics: setting(bool(), '`ebpf_otel.syscall.duration` per process, syscall and errno (while loaded, every syscall on the host pays ~0.2-0.4 µs: off by default)', {
      default: 'false',
      flags: ['--syscall-metrics'],
    }),
    max_series: setting(int(1, 1_000_000), '(syscall, errno) series per process before `otel.metric.overflow`', {
      default: String(DEFAULT_SYSCALL_MAX_SERIES),
      flags: ['--syscall-max-series'],
    }),
    slow: setting(duration({ allowZero: false }), 'report each syscall slower than this as a log record (unset: none)', { flags: ['--slow'] }),
    slow_rate: setting(int(1, 1_000_000), 'slow-call reports per second per CPU at most; the rest counted', {
      default: String(SYSCALL_DEFAULTS.slowPerSecond),
      flags: ['--slow-rate'],
    }),
  },
  flags: {
    'syscall-metrics': { type: 'boolean' },
    'syscall-max-series': { type: 'string' },
    slow: { type: 'string' },
    'slow-rate': { type: 'string' },
  },
  usage: [
    'syscall latency (ebpf_otel.syscall.duration; off by default: while loaded, every syscall of every process on the host pays ~0.2-0.4 us):',
    '  --syscall-metrics        in-kernel latency histograms per process, syscall and errno',
    `  --syscall-max-series N   (syscall, errno) series per process before otel.metric.overflow (default ${DEFAULT_SYSCALL_MAX_SERIES})`,
    '  --slow DURATION          report each syscall slower than this (e.g. 100ms) as an OTLP log record',
    `  --slow-rate N            at most N slow-call reports per second per CPU (default ${SYSCALL_DEFAULTS.slowPerSecond}; the rest counted)`,
  ],
  resolve(file, flags): SyscallLatencyOptions {
    const f = (file ?? {}) as SyscallsFile;
    const str = (name: string) => flagString(flags, name);
    const slowFlag = str('slow');
    const slowSeconds = slowFlag !== undefined ? durationSeconds('--slow', slowFlag) : f.slow;
    const slowNs = slowSeconds !== undefined ? Math.round(slowSeconds * 1e9) : 0;
    if (slowFlag !== undefined && slowNs <= 0) throw new UsageError(`--slow must be longer than 0, got ${slowFlag}`);
    const rate = str('slow-rate');
    const slowPerSecond = rate !== undefined ? positiveInt('--slow-rate', rate, 1_000_000) : (f.slow_rate ?? SYSCALL_DEFAULTS.slowPerSecond);
    const maxSeries = str('syscall-max-series');
    return {
      metrics: flags['syscall-metrics'] === true || (f.metrics ?? false),
      maxSeries: maxSeries !== undefined ? positiveInt('--syscall-max-series', maxSeries, 1_000_000) : (f.max_series ?? DEFAULT_SYSCALL_MAX_SERIES),
      capture: { slowNs, slowPerSecond },
    };
  },
};
