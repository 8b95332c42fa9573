// Command-line parsing shared by the commands: selectors and common flags.

import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { Selector } from '../capture/process-selection';

export class UsageError extends Error {}

export const SELECTOR_OPTIONS = {
  pid: { type: 'string', multiple: true },
  exe: { type: 'string', multiple: true },
  port: { type: 'string', multiple: true },
  cgroup: { type: 'string', multiple: true },
  container: { type: 'string', multiple: true },
  all: { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

type SelectorValues = {
  pid?: string[] | undefined;
  exe?: string[] | undefined;
  port?: string[] | undefined;
  cgroup?: string[] | undefined;
  container?: string[] | undefined;
  all?: boolean | undefined;
};

// The checks of single values, shared by the flags and the configuration
// file (src/config/schema.ts): each returns why a value is refused, or
// undefined. The caller puts the flag or the file position in front.

export const MAX_PID = 0x7fffffff;
export const MAX_PORT = 65535;

export function exeProblem(e: string): string | undefined {
  return e === '' || e.includes('/') ? `takes an executable name or glob, not a path: ${JSON.stringify(e)}` : undefined;
}

export function containerProblem(c: string): string | undefined {
  return /^[0-9a-f]{12,64}$/i.test(c) ? undefined : `takes a container id (12 to 64 hex digits): ${JSON.stringify(c)}`;
}

export function cgroupProblem(c: string): string | undefined {
  return c === '' ? 'takes a cgroup v2 directory, not an empty string' : undefined;
}

export function routeProblem(r: string): string | undefined {
  return r.startsWith('/') ? undefined : `takes a path pattern starting with /, got ${JSON.stringify(r)}`;
}

export function selectorsFrom(values: SelectorValues): Selector[] {
  const out: Selector[] = [];
  const check = (flag: string, problem: string | undefined) => {
    if (problem !== undefined) throw new UsageError(`${flag} ${problem}`);
  };
  for (const p of values.pid ?? []) out.push({ kind: 'pid', pid: positiveInt('--pid', p, MAX_PID) });
  for (const e of values.exe ?? []) {
    check('--exe', exeProblem(e));
    out.push({ kind: 'exe', pattern: e });
  }
  for (const p of values.port ?? []) out.push({ kind: 'port', port: positiveInt('--port', p, MAX_PORT) });
  for (const c of values.cgroup ?? []) {
    check('--cgroup', cgroupProblem(c));
    out.push({ kind: 'cgroup', path: c });
  }
  for (const c of values.container ?? []) {
    check('--container', containerProblem(c));
    out.push({ kind: 'container', id: c });
  }
  if (values.all) out.push({ kind: 'all' });
  return out;
}

/** A string flag's value from parsed flags (undefined when not given). */
export function flagString(flags: Readonly<Record<string, unknown>>, name: string): string | undefined {
  const v = flags[name];
  if (v !== undefined && typeof v !== 'string') throw new UsageError(`--${name} takes a value`);
  return v;
}

export function positiveInt(flag: string, raw: string, max: number): number {
  if (!/^\d+$/.test(raw)) throw new UsageError(`${flag} takes a whole number, got ${JSON.stringify(raw)}`);
  const n = Number(raw);
  if (n < 1 || n > max) throw new UsageError(`${flag} must be between 1 and ${max}, got ${n}`);
  return n;
}

export function nonNegativeInt(flag: string, raw: string, max: number): number {
  if (!/^\d+$/.test(raw)) throw new UsageError(`${flag} takes a whole number, got ${JSON.stringify(raw)}`);
  const n = Number(raw);
  if (n > max) throw new UsageError(`${flag} must be at most ${max}, got ${n}`);
  return n;
}

/** Whether a positive whole number is a power of two. */
export function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

export function powerOfTwoInt(flag: string, raw: string, max: number): number {
  const n = positiveInt(flag, raw, max);
  if (!isPowerOfTwo(n)) throw new UsageError(`${flag} takes a power of two (1, 2, 4, ...), got ${n}`);
  return n;
}

export function durationSeconds(flag: string, raw: string): number {
  const s = parseDuration(raw, { unitRequired: false });
  if (s === undefined) throw new UsageError(`${flag} takes a duration such as 30s, 500ms or 2m, got ${JSON.stringify(raw)}`);
  return s;
}

/**
 * Seconds of `30s`, `500ms`, `2m`; a bare number is seconds unless a unit is
 * required (the file requires one: OTEL_* variables count milliseconds, and
 * a bare 5000 must not be read as 5000 seconds).
 */
export function parseDuration(raw: string, opts: { unitRequired: boolean }): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(raw);
  if (!m || (opts.unitRequired && m[2] === undefined)) return undefined;
  const n = Number(m[1]);
  return m[2] === 'ms' ? n / 1000 : m[2] === 'm' ? n * 60 : n;
}

/** HOST:PORT or [IPv6]:PORT. */
export function parseHostPort(text: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\[\]]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > MAX_PORT) return undefined;
  return { host: (m[1] ?? m[2])!, port };
}

export function hostPort(flag: string, text: string): { host: string; port: number } {
  const hp = parseHostPort(text);
  if (!hp) throw new UsageError(`${flag} wants HOST:PORT (e.g. 127.0.0.1:9464 or [::1]:9464), not "${text}"`);
  return hp;
}

type Options = NonNullable<ParseArgsConfig['options']>;

export function parse<const T extends Options>(argv: string[], options: T) {
  try {
    return parseArgs<{ args: string[]; options: T; strict: true; allowPositionals: false }>({
      args: argv,
      options,
      strict: true,
      allowPositionals: false,
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
