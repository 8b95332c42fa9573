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

export function selectorsFrom(values: SelectorValues): Selector[] {
  const out: Selector[] = [];
  for (const p of values.pid ?? []) out.push({ kind: 'pid', pid: positiveInt('--pid', p, 0x7fffffff) });
  for (const e of values.exe ?? []) {
    if (e === '' || e.includes('/')) throw new UsageError(`--exe takes an executable name or glob, not a path: ${JSON.stringify(e)}`);
    out.push({ kind: 'exe', pattern: e });
  }
  for (const p of values.port ?? []) out.push({ kind: 'port', port: positiveInt('--port', p, 65535) });
  for (const c of values.cgroup ?? []) out.push({ kind: 'cgroup', path: c });
  for (const c of values.container ?? []) {
    if (!/^[0-9a-f]{12,64}$/i.test(c)) throw new UsageError(`--container takes a container id (12 to 64 hex digits): ${JSON.stringify(c)}`);
    out.push({ kind: 'container', id: c });
  }
  if (values.all) out.push({ kind: 'all' });
  return out;
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

export function durationSeconds(flag: string, raw: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(raw);
  if (!m) throw new UsageError(`${flag} takes a duration such as 30s, 500ms or 2m, got ${JSON.stringify(raw)}`);
  const n = Number(m[1]);
  return m[2] === 'ms' ? n / 1000 : m[2] === 'm' ? n * 60 : n;
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
