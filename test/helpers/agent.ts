// Runs the real CLI (bin/ebpf-otel) as a child process for end-to-end tests:
// waits for "ebpf-otel: ready", collects stdout lines, stops it with SIGINT.

import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';

export const ROOT = path.resolve(__dirname, '../../..');
export const BIN = path.join(ROOT, 'bin', 'ebpf-otel');

export interface RunningAgent {
  /** The process spawned: the agent, or the prefix that forked it (prefixForks). */
  readonly pid: number;
  readonly lines: string[];
  stderr(): string;
  /** SIGINT, then the exit code and every stdout line. */
  stop(): Promise<{ code: number | null; lines: string[]; stderr: string }>;
}

export async function startAgent(
  args: string[],
  opts: {
    readyTimeoutMs?: number;
    env?: Record<string, string>;
    /** A command that execs the agent (setpriv ...): same pid. */
    prefix?: string[];
    /**
     * The prefix forks the agent and waits for it, exiting with its status
     * (nsenter --pid): stop() signals that child, which the prefix would not
     * pass on.
     */
    prefixForks?: boolean;
  } = {},
): Promise<RunningAgent> {
  const [cmd, ...cmdArgs] = [...(opts.prefix ?? []), BIN, ...args] as [string, ...string[]];
  const child = spawn(cmd, cmdArgs, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
  const lines: string[] = [];
  let stderr = '';
  readline.createInterface({ input: child.stdout! }).on('line', (l) => lines.push(l));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`agent not ready within ${opts.readyTimeoutMs ?? 20000} ms; stderr:\n${stderr}`));
    }, opts.readyTimeoutMs ?? 20000);
    const check = () => {
      if (stderr.includes('ebpf-otel: ready')) {
        clearTimeout(timer);
        child.stderr!.off('data', check);
        resolve();
      }
    };
    child.stderr!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`agent exited with ${code} before ready; stderr:\n${stderr}`));
    });
  });
  return {
    pid: child.pid!,
    lines,
    stderr: () => stderr,
    async stop() {
      if (opts.prefixForks) {
        const agent = childrenOf(child.pid!);
        if (agent.length !== 1) throw new Error(`expected the prefix to have forked one agent, found ${JSON.stringify(agent)}`);
        process.kill(agent[0]!, 'SIGINT');
      } else {
        child.kill('SIGINT');
      }
      const code = await withTimeout(exited, 15000, () => child.kill('SIGKILL'));
      return { code, lines, stderr };
    },
  };
}

/** Host pids of the processes whose parent is `pid` (from /proc/<pid>/stat). */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === pid) out.push(Number(name));
  }
  return out;
}

async function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(new Error(`timed out after ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

/** A workload program that prints a JSON line when ready and waits for "go" on stdin. */
export interface Workload {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly hello: Record<string, unknown>;
  /** Every line it printed, as they come (the first is `hello`). */
  readonly lines: readonly string[];
  go(): void;
  /** The last JSON line it printed, once it exits 0. */
  result(): Promise<Record<string, unknown>>;
}

export async function startWorkload(cmd: string, args: string[], env: Record<string, string> = {}): Promise<Workload> {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const out: string[] = [];
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const rl = readline.createInterface({ input: child.stdout! });
  const first = new Promise<string>((resolve, reject) => {
    rl.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`${cmd} exited ${code} before ready: ${err}`)));
  });
  rl.on('line', (l) => out.push(l));
  // 'close', not 'exit': a process's last lines can still be in the pipe when
  // 'exit' fires, and result() reads the last line.
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
  const hello = JSON.parse(await first) as Record<string, unknown>;
  return {
    child,
    pid: child.pid!,
    hello,
    lines: out,
    go: () => child.stdin!.write('go\n'),
    async result() {
      const code = await withTimeout(exited, 30000, () => child.kill('SIGKILL'));
      if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err}`);
      return JSON.parse(out[out.length - 1]!) as Record<string, unknown>;
    },
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
