// Process plumbing shared by the benchmarks: CPU and memory of a pid from
// /proc, children of a pid, stopping a child, running a tool to completion,
// and the open-file limit.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';

const CLK_TCK = (() => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return n > 0 ? n : 100;
})();

/** utime + stime of a process, seconds (0 once it is gone). */
export function cpuSecondsOf(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // f[0] is field 3 (state): utime is field 14, stime field 15.
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return 0;
  }
}

function statusKb(pid: number, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** VmRSS (resident set now) of a process, bytes (0 once it is gone). */
export function rssOf(pid: number): number {
  return statusKb(pid, 'VmRSS');
}

/** VmHWM (peak resident set) of a process, bytes (0 once it is gone). */
export function peakRssOf(pid: number): number {
  return statusKb(pid, 'VmHWM');
}

export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function stopChild(child: ChildProcess, signal: NodeJS.Signals, timeoutMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  await exited;
  clearTimeout(timer);
}

/** Runs a command to completion; resolves with its stdout, rejects on a non-zero exit. */
export function runProcess(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err}${out}`))));
  });
}

/** This process's soft RLIMIT_NOFILE (/proc/self/limits). */
export function openFileLimit(): number {
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
  return !m || m[1] === 'unlimited' ? Infinity : Number(m[1]);
}

/**
 * Raises this process's RLIMIT_NOFILE (soft and hard) to at least `n` with
 * prlimit(1), which root may do for any pid: Node has no setrlimit. Children
 * spawned afterwards inherit it.
 */
export function raiseOpenFileLimit(n: number): void {
  if (openFileLimit() >= n) return;
  const r = spawnSync('prlimit', ['--pid', String(process.pid), `--nofile=${n}:${n}`], { encoding: 'utf8' });
  if (r.status !== 0 || openFileLimit() < n) {
    throw new Error(`cannot raise the open-file limit to ${n} (prlimit: ${r.stderr?.trim() || r.error?.message || `exit ${r.status}`})`);
  }
}
