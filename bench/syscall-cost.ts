// What syscall latency tracing costs a traced process, and an untraced one
// while the programs are attached, measured side by side in one run.
//
//   node dist/bench/syscall-cost.js [--seconds N] [--rounds N] [--rate R] [--json]
//
// Workload: bench/targets/syscall_load.c (compiled here with cc), one-byte
// writes and reads on a pipe in one thread. Two copies run, A and B, one at
// a time. Two paces: `max` (back-to-back syscalls) and `paced` (user-space
// spin between syscalls so that, untraced, the process makes --rate
// syscalls per second, 1M by default). Per round:
//   untraced    no BPF program attached: A and B;
//   selected    the syscalls group attached (this process is the agent: the
//               capture engine reading the histograms every second, as the
//               syscalls command does), A selected;
//   unselected  the same session, B not selected: it pays only the filter
//               (and the kernel's syscall-tracepoint slow path, which any
//               attached syscall tracepoint turns on for every process).
// Reported (median over rounds): syscalls per CPU second of the workload
// (its own user and system time, where the BPF programs run: time the
// machine gave to other processes does not count), the slowdown against
// untraced (untraced rate / traced rate), the added time per syscall, and
// the agent's CPU per million traced syscalls. A's calls counted by the
// kernel are checked against what A says it made.
//
// Needs root and the build (make build), and cc. Workload and agent share
// this machine's CPUs.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { parseArgs } from 'node:util';
import { runMain } from './main';
import { CaptureEngine } from '../src/capture/capture-engine';
import { openKernelSession } from '../src/capture/kernel-session';
import { ProcFs } from '../src/util/procfs';
import { SyscallCollector } from '../src/capture/syscall-collector';
import { silentLogger } from '../src/util/log';

const SOURCE = path.resolve(__dirname, '..', '..', 'bench', 'targets', 'syscall_load.c');

export type Pace = 'max' | 'paced';
export type Arm = 'untraced' | 'selected' | 'unselected';

export interface RunResult {
  readonly round: number;
  readonly pace: Pace;
  readonly arm: Arm;
  readonly syscalls: number;
  /** The workload's CPU time (user + system) over the run. */
  readonly cpuSeconds: number;
  readonly wallSeconds: number;
}

export interface CostOptions {
  readonly seconds: number;
  readonly rounds: number;
  /** Syscalls per second of the paced workload, untraced. */
  readonly rate: number;
}

export interface CostReport {
  readonly runs: RunResult[];
  readonly summary: PaceSummary[];
  /** Spin rounds per iteration of the paced workload (0: this machine cannot reach --rate; paced is then back to back too). */
  readonly spin: number;
  /** Untraced back-to-back rate at calibration, syscalls per second. */
  readonly calibratedRate: number;
  /** The agent's CPU (this process: poll thread, histogram reads) per million syscalls of the selected workload, ms. */
  readonly agentCpuMsPerMillion: number;
  /** Syscalls of A the kernel histograms counted while selected, and what A reported making then (plus its command I/O). */
  readonly kernelCounted: number;
  readonly workloadReported: number;
  /** Histogram entries of B (unselected): must be none. */
  readonly unselectedEntries: number;
}

export interface ArmSummary {
  readonly arm: Arm;
  /** Per CPU second of the workload. */
  readonly syscallsPerSecond: number;
  /** untraced rate / this rate, median of per-round ratios (1 for untraced). */
  readonly slowdown: number;
  /** Time added to each syscall, ns: 1/rate - 1/untraced rate. */
  readonly addedNsPerSyscall: number;
}

export interface PaceSummary {
  readonly pace: Pace;
  readonly arms: ArmSummary[];
}

/** One workload process, driven line by line. */
class Load {
  private readonly lines: AsyncIterator<string>;
  private constructor(
    readonly child: ChildProcess,
    readonly pid: number,
    lines: AsyncIterator<string>,
  ) {
    this.lines = lines;
  }

  static async start(binary: string): Promise<Load> {
    const child = spawn(binary, [], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    const hello = await lines.next();
    if (hello.done) throw new Error('syscall_load exited before saying hello');
    return new Load(child, (JSON.parse(hello.value) as { pid: number }).pid, lines);
  }

  async run(seconds: number, spin: number): Promise<{ syscalls: number; wallSeconds: number; cpuSeconds: number }> {
    this.child.stdin!.write(`run ${seconds} ${Math.round(spin)}\n`);
    const answer = await this.lines.next();
    if (answer.done) throw new Error('syscall_load exited');
    const [syscalls, wallNs, cpuNs] = answer.value.split(' ').map(Number) as [number, number, number];
    return { syscalls, wallSeconds: wallNs / 1e9, cpuSeconds: cpuNs / 1e9 };
  }

  stop(): void {
    this.child.stdin!.end();
    this.child.kill();
  }
}

function compile(): string {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'syscall-load-')), 'syscall_load');
  const r = spawnSync('cc', ['-O2', '-Wall', '-o', out, SOURCE], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cannot compile ${SOURCE}: ${r.error?.message ?? r.stderr}`);
  return out;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

export function summarize(runs: readonly RunResult[]): PaceSummary[] {
  return (['max', 'paced'] as const).map((pace) => {
    const rate = (arm: Arm, round: number) => {
      const r = runs.filter((x) => x.pace === pace && x.arm === arm && x.round === round);
      return r.reduce((a, x) => a + x.syscalls, 0) / r.reduce((a, x) => a + x.cpuSeconds, 0);
    };
    const rounds = [...new Set(runs.map((r) => r.round))];
    const arms = (['untraced', 'selected', 'unselected'] as const).map((arm) => {
      const rates = rounds.map((n) => rate(arm, n));
      const base = rounds.map((n) => rate('untraced', n));
      return {
        arm,
        syscallsPerSecond: median(rates),
        slowdown: median(rates.map((r, i) => base[i]! / r)),
        addedNsPerSyscall: median(rates.map((r, i) => 1e9 / r - 1e9 / base[i]!)),
      };
    });
    return { pace, arms };
  });
}

export async function runSyscallCost(opts: CostOptions): Promise<CostReport> {
  const binary = compile();
  const a = await Load.start(binary);
  const b = await Load.start(binary);
  const runs: RunResult[] = [];
  let agentCpu = 0;
  let selectedSyscalls = 0;
  let kernelCounted = 0;
  let workloadReported = 0;
  let unselectedEntries = 0;
  try {
    // Calibration, untraced: CPU per iteration (two syscalls) without and with spinning.
    const probeSeconds = Math.min(1, opts.seconds);
    const probe = await a.run(probeSeconds, 0);
    const iterationNs = (probe.cpuSeconds * 1e9) / (probe.syscalls / 2);
    const SPIN_PROBE = 1000;
    const spun = await a.run(probeSeconds, SPIN_PROBE);
    const nsPerSpin = Math.max(1e-3, ((spun.cpuSeconds * 1e9) / (spun.syscalls / 2) - iterationNs) / SPIN_PROBE);
    const spin = Math.max(0, Math.round((2e9 / opts.rate - iterationNs) / nsPerSpin));
    const paces: [Pace, number][] = [
      ['max', 0],
      ['paced', spin],
    ];
    const measure = async (round: number, arm: Arm, load: Load, pace: Pace, work: number) => {
      const r = await load.run(opts.seconds, work);
      runs.push({ round, pace, arm, syscalls: r.syscalls, cpuSeconds: r.cpuSeconds, wallSeconds: r.wallSeconds });
      return r;
    };
    for (let round = 0; round < opts.rounds; round++) {
      // Untraced first on even rounds, last on odd ones: drift hits both alike.
      const untraced = async () => {
        for (const [pace, work] of paces) {
          await measure(round, 'untraced', a, pace, work);
          await measure(round, 'untraced', b, pace, work);
        }
      };
      if (round % 2 === 0) await untraced();
      const engine = new CaptureEngine(
        { selectors: [{ kind: 'pid', pid: a.pid }], rescanMs: 0, groups: { sockets: false, syscalls: true, tcp: false, tls: false, links: false } },
        { openSession: openKernelSession, procfs: new ProcFs(), logger: silentLogger },
        () => {},
      );
      const collector = new SyscallCollector(engine);
      let counted = 0;
      const read = () => {
        for (const d of collector.collect()) if (d.tgid === a.pid) counted += d.count;
      };
      try {
        engine.start();
        read();
        counted = 0;
        const timer = setInterval(read, 1000);
        const cpu0 = process.cpuUsage();
        let reported = 0;
        for (const [pace, work] of paces) {
          reported += (await measure(round, 'selected', a, pace, work)).syscalls;
          await measure(round, 'unselected', b, pace, work);
        }
        clearInterval(timer);
        read();
        const cpu = process.cpuUsage(cpu0);
        agentCpu += (cpu.user + cpu.system) / 1e6;
        selectedSyscalls += reported;
        kernelCounted += counted;
        workloadReported += reported;
        unselectedEntries += engine.readSyscallHistograms().filter((h) => h.tgid === b.pid).length;
      } finally {
        engine.stop();
      }
      if (round % 2 === 1) await untraced();
    }
    return {
      runs,
      summary: summarize(runs),
      spin,
      calibratedRate: probe.syscalls / probe.cpuSeconds,
      agentCpuMsPerMillion: (agentCpu * 1e3) / (selectedSyscalls / 1e6),
      kernelCounted,
      workloadReported,
      unselectedEntries,
    };
  } finally {
    a.stop();
    b.stop();
    fs.rmSync(path.dirname(binary), { recursive: true, force: true });
  }
}

export function formatReport(r: CostReport, rate: number): string {
  const lines = ['pace                arm          syscalls/CPU-s   slowdown   added ns/syscall'];
  if (r.spin === 0) {
    lines.unshift(`note: ${(r.calibratedRate / 1e6).toFixed(2)}M syscalls per CPU second back to back untraced, under --rate ${(rate / 1e6).toFixed(2)}M: the paced arm is back to back too`);
  }
  for (const p of r.summary) {
    const label = p.pace === 'max' ? 'max (back to back)' : `paced (${(rate / 1e6).toFixed(2)}M/s)`;
    for (const a of p.arms) {
      lines.push(
        `${label.padEnd(19)} ${a.arm.padEnd(12)} ${(a.syscallsPerSecond / 1e6).toFixed(3).padStart(13)}M   ` +
          `${a.arm === 'untraced' ? '        ' : `${((a.slowdown - 1) * 100).toFixed(1).padStart(6)}% `}   ` +
          `${a.arm === 'untraced' ? '' : a.addedNsPerSyscall.toFixed(0).padStart(8)}`,
      );
    }
  }
  lines.push(`agent CPU: ${r.agentCpuMsPerMillion.toFixed(3)} ms per million selected syscalls (histogram reads every second)`);
  lines.push(`kernel counted ${r.kernelCounted} syscalls of the selected workload, which made ${r.workloadReported} (plus its command I/O); unselected entries: ${r.unselectedEntries}`);
  return lines.join('\n');
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '3' },
      rounds: { type: 'string', default: '3' },
      rate: { type: 'string', default: '1000000' },
      json: { type: 'boolean', default: false },
    },
  });
  const seconds = Number(values.seconds);
  const rounds = Number(values.rounds);
  const rate = Number(values.rate);
  if (!(seconds > 0)) throw new Error(`--seconds takes a positive number, got ${values.seconds}`);
  if (!(Number.isInteger(rounds) && rounds > 0)) throw new Error(`--rounds takes a positive integer, got ${values.rounds}`);
  if (!(rate > 0)) throw new Error(`--rate takes a positive number of syscalls per second, got ${values.rate}`);
  const report = await runSyscallCost({ seconds, rounds, rate });
  process.stdout.write((values.json ? JSON.stringify(report, null, 2) : formatReport(report, rate)) + '\n');
  return 0;
}

if (require.main === module) runMain(main);
