// The agent's own log: one line per message on stderr, levelled, with a
// "first time only" form for bounds that bite (later hits are counted, not logged).

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  /** Logs `msg` at warn the first time `key` is seen, then stays quiet. */
  warnOnce(key: string, msg: string): void;
}

export function createLogger(
  level: LogLevel = 'info',
  write: (line: string) => void = (line) => process.stderr.write(line + '\n'),
): Logger {
  const threshold = ORDER[level];
  const seen = new Set<string>();
  const emit = (l: LogLevel, msg: string) => {
    if (ORDER[l] >= threshold) write(`ebpf-otel ${l}: ${msg}`);
  };
  return {
    debug: (m) => emit('debug', m),
    info: (m) => emit('info', m),
    warn: (m) => emit('warn', m),
    error: (m) => emit('error', m),
    warnOnce: (key, m) => {
      // Bounded by the number of distinct call sites that use it.
      if (seen.has(key)) return;
      seen.add(key);
      emit('warn', m);
    },
  };
}

export const silentLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  warnOnce: () => {},
};

export function isLogLevel(s: string): s is LogLevel {
  return s in ORDER;
}
