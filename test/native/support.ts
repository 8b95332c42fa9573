// Shared by the eBPF tests in test/native/: session options, bpftool views,
// child workloads. Not a test file itself (ava runs *.test.js only).

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as readline from 'node:readline';

import { DataEventLayout, Direction, EventType, KERNEL_STATS } from '../../src/capture/layout';
import type { NativeBinding, SocketTraceSession, SocketTraceSessionOptions } from '../../src/capture/native-binding';
import { defaultSessionOptions } from '../../src/capture/session-defaults';

// Record layout and counters from the one checked mirror of bpf/socket_trace.h.
export const EV_DATA = EventType.Data;
export const DIR_EGRESS = Direction.Egress;
export const DIR_INGRESS = Direction.Ingress;
export const STAT_EVENTS_SENT = KERNEL_STATS.indexOf('events_sent');
export const STAT_EVENTS_LOST = KERNEL_STATS.indexOf('events_lost');
export const DATA_EVENT = DataEventLayout;

export function sessionOptions(overrides: Partial<SocketTraceSessionOptions> = {}): SocketTraceSessionOptions {
  return { ...defaultSessionOptions(), ...overrides };
}

/** A JavaScript expression for `value`, bigints included (JSON has none): for options inlined in a child's script. */
export function jsSource(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `\u0000${v}n` : v)).replace(/"\\u0000(\d+n)"/g, '$1');
}

export function openSession(binding: NativeBinding, overrides: Partial<SocketTraceSessionOptions> = {}): SocketTraceSession {
  return new binding.SocketTraceSession(sessionOptions(overrides));
}

interface BpftoolLink {
  id: number;
  prog_id: number;
}
interface BpftoolProg {
  id: number;
  name?: string;
}

function bpftoolJson<T>(args: string[]): T {
  return JSON.parse(execFileSync('bpftool', [...args, '-j'], { encoding: 'utf8' })) as T;
}

/** Program names of the kernel's links whose program is one of `progIds`, sorted. */
export function linkedProgramNames(progIds: Iterable<number>): string[] {
  const ids = new Set(progIds);
  const names = new Map(bpftoolJson<BpftoolProg[]>(['prog', 'list']).map((p) => [p.id, p.name ?? `#${p.id}`]));
  return bpftoolJson<BpftoolLink[]>(['link', 'list'])
    .filter((l) => ids.has(l.prog_id))
    .map((l) => names.get(l.prog_id) ?? `#${l.prog_id}`)
    .sort();
}

/** Ids of the BPF programs a process holds open (from /proc/pid/fdinfo). */
export function bpfProgramsHeldBy(pid: number): number[] {
  const ids = new Set<number>();
  const dir = `/proc/${pid}/fdinfo`;
  for (const fd of fs.readdirSync(dir)) {
    let info: string;
    try {
      info = fs.readFileSync(`${dir}/${fd}`, 'utf8');
    } catch {
      continue;
    }
    const m = /^prog_id:\s+(\d+)$/m.exec(info);
    if (m) ids.add(Number(m[1]));
  }
  return [...ids];
}

/** Which of `progIds` are still loaded in the kernel. */
export function loadedPrograms(progIds: Iterable<number>): number[] {
  const loaded = new Set(bpftoolJson<BpftoolProg[]>(['prog', 'list']).map((p) => p.id));
  return [...progIds].filter((id) => loaded.has(id));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function waitFor(condition: () => boolean, timeoutMs: number, stepMs = 20): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (condition()) return true;
    await sleep(stepMs);
  }
  return condition();
}

/** A node child that connects to `port` once told "go" on stdin. */
export interface TcpChild {
  child: ChildProcess;
  go(): void;
  exited: Promise<number | null>;
}

/**
 * Spawns a node child that, on "go", connects to 127.0.0.1:`port`, writes
 * `request` `count` times (one write each), waits for the server to end the
 * connection and exits. The child's pid is known before it does any I/O.
 */
export function spawnTcpClient(port: number, request: string, count = 1): TcpChild {
  const script = `
    const net = require('node:net');
    process.stdin.once('data', () => {
      process.stdin.destroy();
      const sock = net.connect(${port}, '127.0.0.1', () => {
        for (let i = 0; i < ${count}; i++) sock.write(${JSON.stringify(request)});
        sock.end();
      });
      sock.on('data', () => {});
      sock.on('close', () => process.exit(0));
    });`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'inherit', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, go: () => child.stdin!.write('go\n'), exited };
}

/** Resolves with the first stdout line of `child`; rejects if its stdout ends first. */
export function firstLine(child: ChildProcess, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const rl = readline.createInterface({ input: child.stdout! });
    let done = false;
    const timer = setTimeout(() => finish(new Error(`no output within ${timeoutMs} ms`)), timeoutMs);
    const finish = (result: string | Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      rl.close();
      if (typeof result === 'string') resolve(result);
      else reject(result);
    };
    rl.once('line', (line) => finish(line));
    // Not the child's 'exit': it can come before its last output is read.
    rl.once('close', () => finish(new Error(`child ended (${child.exitCode ?? child.signalCode}) before printing a line`)));
  });
}
