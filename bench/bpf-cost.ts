// What the agent's BPF programs cost, per program, from the kernel's own run
// accounting (bench/bpf-stats.ts): time spent inside a traced server's
// syscalls and TLS library calls per HTTP request, and inside an unselected
// process's syscalls.
//
//   node dist/bench/bpf-cost.js [--seconds N] [--rounds N] [--connections N]
//                               [--arms http,https,go-https] [--path /small|/large]
//                               [--baseline-addon PATH[,PATH...]] [--json]
//
// Arms: the traced server (--arms, TARGETS below: `http` is the Node `http`
// target, `https` the same routes over Node's `https`, OpenSSL linked into
// the node binary, certificate made with the openssl CLI; `go-https` the Go
// HTTPS test program, test/e2e/programs/go/https, same routes and bodies over
// crypto/tls, built with `go build` once per run) times the build
// (the current one, then each --baseline-addon). Per round and arm, a fresh
// server (bench/servers.ts) traced by the real agent
// (`ebpf-otel run --pid`, exporting to an in-process OTLP receiver), then
// three windows of --seconds each:
//   idle        nothing runs against the server: what the agent's programs
//               see from the rest of this machine (other processes'
//               syscalls, all unselected) and what one such run costs;
//   load        wrk, keep-alive, --path (default /small; https:// for the
//               TLS targets: wrk's own TLS is the system libssl, not probed
//               unless a selected process maps it). The server's own syscalls are
//               counted exactly by a second session of this process (the
//               syscall latency group, selecting the server only: its
//               programs are not among the agent's): a program's runs
//               beyond those are unselected (wrk's own reads and writes, the
//               rest of the machine) and are subtracted at the unselected
//               cost per run measured in the next window (idle window's for
//               programs the syscall load does not reach). Uprobe programs
//               run in library calls, not syscalls: their runs and time
//               beyond the idle window's rate are the server's (the probes
//               are attached to the file, so every process running it
//               reaches them; only the server calls TLS functions in this
//               window, the background is whatever else does);
//   unselected  bench/targets/syscall_load.c, one-byte pipe writes and reads
//               back to back, not selected: time beyond the background per
//               syscall it made.
// With --baseline-addon, one more build per addon (named by its file) runs
// the same windows with it (EBPF_OTEL_NATIVE_ADDON: its BPF object is in it).
// The arms' order is reversed every other round. Figures are medians over
// rounds. Each arm also reports the agent's uprobe attach time (its summary
// at stop: the files the tls feature probed, here the node or the Go binary).
// The server's syscalls per request, by errno, are printed too: they say
// what each run of a read program was (data, EAGAIN, EOF).
//
// Needs root, wrk (built with OpenSSL for https arms), cc, openssl, go for
// the go-https arm, and the build (make build).

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { parseArgs } from 'node:util';
import { runMain } from './main';
import { OtlpReceiver } from '../test/helpers/otlp-receiver';
import { startAgent } from '../test/helpers/agent';
import { diff, enableBpfStats, snapshot } from './bpf-stats';
import { bpfProgramsHeldBy } from '../test/native/support';
import { parseWrk } from './overhead';
import { cpuSecondsOf, runProcess, sleep } from './processes';
import { startGoHttpsServer, startNodeServer, type Server } from './servers';
import { goHttpsBinary } from '../test/helpers/tls';
import { makeTestPki, type TestPki } from '../test/helpers/tls-certs';
import { CaptureEngine } from '../src/capture/capture-engine';
import { openKernelSession } from '../src/capture/kernel-session';
import { HOST_SYSCALL_ARCH, errnoName, syscallName } from '../src/capture/syscall-names';
import { ProcFs } from '../src/util/procfs';
import { silentLogger } from '../src/util/log';

const LOAD_SOURCE = path.resolve(__dirname, '..', '..', 'bench', 'targets', 'syscall_load.c');

export interface ProgramCost {
  readonly name: string;
  /** Server's runs of this program per request (uprobes: calls of the probed function). */
  readonly runsPerRequest: number;
  /** BPF ns per request in the server's syscalls. */
  readonly nsPerRequest: number;
  /** ns per run in the server's syscalls. */
  readonly nsPerRun: number;
  /** ns per run while the syscall load (unselected) ran. */
  readonly unselectedNsPerRun: number;
}

/** Files the agent's tls feature probed and the time it spent attaching, from its summary at stop. */
export interface AttachTime {
  readonly files: number;
  readonly totalMs: number;
  readonly slowestFileMs: number;
}

export interface ArmRound {
  /** `${target} ${build}`. */
  readonly arm: string;
  readonly target: string;
  readonly build: string;
  readonly round: number;
  readonly requests: number;
  readonly requestsPerSecond: number;
  readonly programs: ProgramCost[];
  readonly nsPerRequest: number;
  readonly unselectedNsPerSyscall: number;
  readonly agentCpuUsPerRequest: number;
  /** The server's syscalls per request during the load, by "name" or "name errno". */
  readonly serverSyscalls: Record<string, number>;
  readonly attach?: AttachTime;
}

interface Window {
  readonly seconds: number;
  readonly progs: Map<string, { runs: number; ns: number }>;
}

async function measure(ids: Set<number>, work: () => Promise<void>): Promise<Window> {
  const before = snapshot(ids);
  const t0 = process.hrtime.bigint();
  await work();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { seconds, progs: diff(before, snapshot(ids)) };
}

/** Runs and ns of `w` beyond what the idle window's rate and cost per run account for. */
function beyondBackground(w: Window, idle: Window, name: string): { runs: number; ns: number } {
  const p = w.progs.get(name) ?? { runs: 0, ns: 0 };
  const b = idle.progs.get(name) ?? { runs: 0, ns: 0 };
  const bgRuns = (b.runs / idle.seconds) * w.seconds;
  const bgNs = b.runs > 0 ? bgRuns * (b.ns / b.runs) : 0;
  return { runs: Math.max(0, p.runs - bgRuns), ns: Math.max(0, p.ns - bgNs) };
}

/** A program run by a library call (uprobe_ssl_read, uretprobe_ssl_read, uprobe_go_tls_*...), not by a syscall. */
export function isUprobe(program: string): boolean {
  return /^u(?:ret)?probe_/.test(program);
}

/**
 * A uprobe program that runs as the probed function returns: a uretprobe
 * (OpenSSL) or a probe at one of its RET instructions (Go: uprobe_go_tls_*_ret,
 * no uretprobe since Go moves goroutine stacks).
 */
export function isReturnProbe(program: string): boolean {
  return /^uretprobe_/.test(program) || /^uprobe_\w+_ret$/.test(program);
}

/** The syscall a tp_sys_{enter,exit}_NAME program hooks. */
function hookedSyscall(program: string): string | undefined {
  return /^tp_sys_(?:enter|exit)_(\w+)$/.exec(program)?.[1];
}

/** Cumulative syscall counts of `tgid` by "name" and "name errno" (errno 0 is not named). */
function syscallCounts(engine: CaptureEngine, tgid: number): Map<string, number> {
  const out = new Map<string, number>();
  const add = (k: string, n: number) => out.set(k, (out.get(k) ?? 0) + n);
  for (const h of engine.readSyscallHistograms()) {
    if (h.tgid !== tgid) continue;
    const name = syscallName(h.nr, HOST_SYSCALL_ARCH);
    add(name, Number(h.count));
    if (h.err) add(`${name} ${errnoName(h.err)}`, Number(h.count));
  }
  return out;
}

class SyscallLoad {
  private constructor(
    private readonly child: ChildProcess,
    private readonly lines: AsyncIterator<string>,
  ) {}

  static async start(binary: string): Promise<SyscallLoad> {
    const child = spawn(binary, [], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    if ((await lines.next()).done) throw new Error('syscall_load exited before saying hello');
    return new SyscallLoad(child, lines);
  }

  /** Syscalls made in `seconds` back to back. */
  async run(seconds: number): Promise<number> {
    this.child.stdin!.write(`run ${seconds} 0\n`);
    const answer = await this.lines.next();
    if (answer.done) throw new Error('syscall_load exited');
    return Number(answer.value.split(' ')[0]);
  }

  stop(): void {
    this.child.stdin!.end();
    this.child.kill();
  }
}

/**
 * The traced servers, by arm name. `go-https` is the Go HTTPS test program
 * (crypto/tls, `go build` default flags): its uprobe_go_tls_* programs are
 * costed as the OpenSSL ones are, the return-instruction probes
 * (uprobe_go_tls_*_ret) apart from the entry ones.
 */
interface Target {
  readonly scheme: 'http' | 'https';
  start(certificate: () => Promise<TestPki>): Promise<Server>;
}

export const TARGETS: Readonly<Record<string, Target>> = {
  http: { scheme: 'http', start: () => startNodeServer() },
  https: {
    scheme: 'https',
    start: async (certificate) => {
      const pki = await certificate();
      return startNodeServer(undefined, { tls: { cert: pki.serverCert, key: pki.serverKey } });
    },
  },
  'go-https': {
    scheme: 'https',
    start: async (certificate) => {
      const [pki, binary] = await Promise.all([certificate(), goHttpsBinary()]);
      return startGoHttpsServer(binary, { cert: pki.serverCert, key: pki.serverKey });
    },
  },
};

interface Options {
  readonly seconds: number;
  readonly rounds: number;
  readonly connections: number;
  /** Names in TARGETS (default: http). */
  readonly targets?: readonly string[];
  /** The route wrk loads (default /small). */
  readonly path?: string;
  readonly baselineAddon?: string;
  readonly log: (line: string) => void;
}

const ATTACH_RE = /tls: (\d+) library files probed .*?attach time ([\d.]+) ms in all, slowest file ([\d.]+) ms/;

export function parseAttachTime(agentStderr: string): AttachTime | undefined {
  const m = ATTACH_RE.exec(agentStderr);
  return m ? { files: Number(m[1]), totalMs: Number(m[2]), slowestFileMs: Number(m[3]) } : undefined;
}

interface Arm {
  readonly target: string;
  readonly build: string;
  readonly addon: string | undefined;
}

async function runArm(arm: Arm, round: number, certificate: () => Promise<TestPki>, load: SyscallLoad, receiver: OtlpReceiver, o: Options): Promise<ArmRound> {
  const { addon } = arm;
  const target = TARGETS[arm.target]!;
  receiver.reset();
  const server = await target.start(certificate);
  const pid = server.pids[0]!;
  const agent = await startAgent(['run', '--pid', String(pid)], {
    env: {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.grpcUrl,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      ...(addon ? { EBPF_OTEL_NATIVE_ADDON: addon } : {}),
    },
  });
  let agentStopped = false;
  const counter = new CaptureEngine(
    { selectors: [{ kind: 'pid', pid }], rescanMs: 0, groups: { sockets: false, syscalls: true, tcp: false, tls: false, links: false } },
    { openSession: openKernelSession, procfs: new ProcFs(), logger: silentLogger },
    () => {},
  );
  try {
    counter.start();
    // Other agents may run the same programs under the same names on this machine: ids tell ours.
    const ids = new Set(bpfProgramsHeldBy(agent.pid));
    if (ids.size === 0) throw new Error(`agent ${agent.pid} holds no BPF program`);
    const url = `${target.scheme}://127.0.0.1:${server.port}${o.path ?? '/small'}`;
    // Warm-up: the server's JIT and the connection table, not measured.
    await runProcess('wrk', ['-t', '1', '-c', String(o.connections), '-d', '1s', url]);
    const secs = Math.max(1, Math.round(o.seconds));
    const idle = await measure(ids, () => sleep(secs * 1000));
    let requests = 0;
    let requestsPerSecond = 0;
    let census0 = new Map<string, number>();
    let census1 = census0;
    let agentCpu = 0;
    const loaded = await measure(ids, async () => {
      census0 = syscallCounts(counter, pid);
      const cpu0 = cpuSecondsOf(agent.pid);
      const wrk = parseWrk(await runProcess('wrk', ['-t', '1', '-c', String(o.connections), '-d', `${secs}s`, '--latency', url]));
      if (wrk.non2xx > 0 || wrk.socketErrors > 0) throw new Error(`${url}: ${wrk.non2xx} non-2xx responses, ${wrk.socketErrors} socket errors`);
      requests = wrk.requests;
      requestsPerSecond = wrk.requestsPerSecond;
      agentCpu = cpuSecondsOf(agent.pid) - cpu0;
      census1 = syscallCounts(counter, pid);
    });
    const serverSyscalls: Record<string, number> = {};
    for (const [k, n] of census1) if (n - (census0.get(k) ?? 0) > 0) serverSyscalls[k] = (n - (census0.get(k) ?? 0)) / requests;
    let syscalls = 0;
    const unselected = await measure(ids, async () => {
      syscalls = await load.run(secs);
    });
    const names = [...loaded.progs.keys()].sort();
    const programs = names.map((name) => {
      const p = loaded.progs.get(name)!;
      const u = unselected.progs.get(name)!;
      const b = idle.progs.get(name)!;
      // Unselected cost per run: the syscall load's (millions of runs) where it reached the program.
      const otherNsPerRun = u.runs > 1000 ? u.ns / u.runs : b.runs > 0 ? b.ns / b.runs : 0;
      if (isUprobe(name)) {
        const r = beyondBackground(loaded, idle, name);
        return {
          name,
          runsPerRequest: r.runs / requests,
          nsPerRequest: r.ns / requests,
          nsPerRun: r.runs > 0 ? r.ns / r.runs : 0,
          unselectedNsPerRun: otherNsPerRun,
        };
      }
      const sys = hookedSyscall(name);
      const serverRuns = sys ? (serverSyscalls[sys] ?? 0) * requests : 0;
      const ns = Math.max(0, p.ns - Math.max(0, p.runs - serverRuns) * otherNsPerRun);
      return {
        name,
        runsPerRequest: serverRuns / requests,
        nsPerRequest: serverRuns > 0 ? ns / requests : 0,
        nsPerRun: serverRuns > 0 ? ns / serverRuns : 0,
        unselectedNsPerRun: otherNsPerRun,
      };
    });
    const unselectedNs = names.reduce((a, n) => a + beyondBackground(unselected, idle, n).ns, 0);
    counter.stop();
    const stopped = await agent.stop();
    agentStopped = true;
    const attach = parseAttachTime(stopped.stderr);
    return {
      arm: `${arm.target} ${arm.build}`,
      target: arm.target,
      build: arm.build,
      round,
      requests,
      requestsPerSecond,
      programs,
      nsPerRequest: programs.reduce((a, p) => a + p.nsPerRequest, 0),
      unselectedNsPerSyscall: unselectedNs / syscalls,
      agentCpuUsPerRequest: (agentCpu * 1e6) / requests,
      serverSyscalls,
      ...(attach ? { attach } : {}),
    };
  } finally {
    counter.stop();
    if (!agentStopped) await agent.stop().catch(() => undefined);
    await server.stop();
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

export interface ArmSummary {
  readonly arm: string;
  readonly target: string;
  readonly build: string;
  readonly rounds: number;
  readonly requestsPerSecond: number;
  readonly nsPerRequest: number;
  /** Of nsPerRequest: the uprobe programs' (TLS library calls). */
  readonly uprobeNsPerRequest: number;
  /** Of uprobeNsPerRequest: the programs run as the function returns (isReturnProbe). */
  readonly returnProbeNsPerRequest: number;
  readonly unselectedNsPerSyscall: number;
  readonly agentCpuUsPerRequest: number;
  readonly serverSyscalls: Record<string, number>;
  readonly programs: ProgramCost[];
  /** Medians over the rounds whose agent reported it. */
  readonly attach?: AttachTime;
}

export function summarize(runs: readonly ArmRound[]): ArmSummary[] {
  return [...new Set(runs.map((r) => r.arm))].map((arm) => {
    const mine = runs.filter((r) => r.arm === arm);
    const names = [...new Set(mine.flatMap((r) => r.programs.map((p) => p.name)))].sort();
    const m = (f: (r: ArmRound) => number) => median(mine.map(f));
    const attached = mine.flatMap((r) => (r.attach ? [r.attach] : []));
    return {
      arm,
      target: mine[0]!.target,
      build: mine[0]!.build,
      rounds: mine.length,
      requestsPerSecond: m((r) => r.requestsPerSecond),
      nsPerRequest: m((r) => r.nsPerRequest),
      uprobeNsPerRequest: m((r) => r.programs.filter((p) => isUprobe(p.name)).reduce((a, p) => a + p.nsPerRequest, 0)),
      returnProbeNsPerRequest: m((r) => r.programs.filter((p) => isReturnProbe(p.name)).reduce((a, p) => a + p.nsPerRequest, 0)),
      unselectedNsPerSyscall: m((r) => r.unselectedNsPerSyscall),
      agentCpuUsPerRequest: m((r) => r.agentCpuUsPerRequest),
      serverSyscalls: Object.fromEntries(
        [...new Set(mine.flatMap((r) => Object.keys(r.serverSyscalls)))].sort().map((k) => [k, m((r) => r.serverSyscalls[k] ?? 0)]),
      ),
      programs: names.map((name) => {
        const p = (f: (x: ProgramCost) => number) => median(mine.map((r) => { const x = r.programs.find((q) => q.name === name); return x ? f(x) : 0; }));
        return {
          name,
          runsPerRequest: p((x) => x.runsPerRequest),
          nsPerRequest: p((x) => x.nsPerRequest),
          nsPerRun: p((x) => x.nsPerRun),
          unselectedNsPerRun: p((x) => x.unselectedNsPerRun),
        };
      }),
      ...(attached.length > 0
        ? {
            attach: {
              files: median(attached.map((a) => a.files)),
              totalMs: median(attached.map((a) => a.totalMs)),
              slowestFileMs: median(attached.map((a) => a.slowestFileMs)),
            },
          }
        : {}),
    };
  });
}

export function formatTable(summary: readonly ArmSummary[]): string {
  const out: string[] = [];
  for (const s of summary) {
    out.push(`arm ${s.arm} (${s.rounds} rounds, medians): ${s.requestsPerSecond.toFixed(0)} requests/s`);
    out.push(`  ${'program'.padEnd(28)} ${'runs/req'.padStart(9)} ${'ns/run'.padStart(8)} ${'ns/req'.padStart(8)} ${'unsel ns/run'.padStart(13)}`);
    for (const p of s.programs) {
      if (p.runsPerRequest < 0.005 && p.unselectedNsPerRun === 0) continue;
      out.push(
        `  ${p.name.padEnd(28)} ${p.runsPerRequest.toFixed(2).padStart(9)} ${p.nsPerRun.toFixed(0).padStart(8)} ` +
          `${p.nsPerRequest.toFixed(0).padStart(8)} ${p.unselectedNsPerRun.toFixed(0).padStart(13)}`,
      );
    }
    out.push(
      `  BPF per request: ${(s.nsPerRequest / 1000).toFixed(2)} us (server's syscalls ${((s.nsPerRequest - s.uprobeNsPerRequest) / 1000).toFixed(2)}, ` +
        `its TLS library calls ${(s.uprobeNsPerRequest / 1000).toFixed(2)}: ` +
        `entry probes ${((s.uprobeNsPerRequest - s.returnProbeNsPerRequest) / 1000).toFixed(2)}, return probes ${(s.returnProbeNsPerRequest / 1000).toFixed(2)})`,
    );
    out.push(`  BPF ns per syscall of an unselected process: ${s.unselectedNsPerSyscall.toFixed(1)}`);
    const sc = Object.entries(s.serverSyscalls).filter(([, n]) => n >= 0.005);
    out.push(`  server syscalls per request: ${sc.map(([k, n]) => `${k} ${n.toFixed(2)}`).join(', ')}`);
    out.push(`  agent CPU per request: ${s.agentCpuUsPerRequest.toFixed(1)} us`);
    if (s.attach) out.push(`  uprobe attach: ${s.attach.files} file(s), ${s.attach.totalMs.toFixed(1)} ms (slowest file ${s.attach.slowestFileMs.toFixed(1)} ms)`);
  }
  return out.join('\n') + '\n';
}

function compileLoad(): string {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bpf-cost-')), 'syscall_load');
  const r = spawnSync('cc', ['-O2', '-Wall', '-o', out, LOAD_SOURCE], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cannot compile ${LOAD_SOURCE}: ${r.error?.message ?? r.stderr}`);
  return out;
}

export async function runBpfCost(o: Options): Promise<{ runs: ArmRound[]; summary: ArmSummary[] }> {
  const binary = compileLoad();
  const stats = enableBpfStats();
  const receiver = await OtlpReceiver.start({ keepSpans: false });
  const load = await SyscallLoad.start(binary);
  const runs: ArmRound[] = [];
  const builds: [string, string | undefined][] = [['current', undefined]];
  for (const addon of o.baselineAddon?.split(',') ?? []) builds.push([path.basename(addon, '.node'), path.resolve(addon)]);
  const arms: Arm[] = (o.targets ?? ['http']).flatMap((target) => builds.map(([build, addon]) => ({ target, build, addon })));
  // One certificate for the run, made when a TLS target first needs it.
  let pki: Promise<TestPki> | undefined;
  const certificate = () => (pki ??= makeTestPki());
  try {
    for (let round = 1; round <= o.rounds; round++) {
      const order = round % 2 ? arms : [...arms].reverse();
      for (const arm of order) {
        o.log(`round ${round}/${o.rounds}: ${arm.target} ${arm.build}`);
        runs.push(await runArm(arm, round, certificate, load, receiver, o));
      }
    }
  } finally {
    if (pki) (await pki.catch(() => undefined))?.cleanup();
    load.stop();
    await receiver.close();
    stats.restore();
    fs.rmSync(path.dirname(binary), { recursive: true, force: true });
  }
  return { runs, summary: summarize(runs) };
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '3' },
      rounds: { type: 'string', default: '3' },
      connections: { type: 'string', default: '8' },
      arms: { type: 'string', default: 'http' },
      path: { type: 'string', default: '/small' },
      'baseline-addon': { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const o: Options = {
    seconds: Number(values.seconds),
    rounds: Number(values.rounds),
    connections: Number(values.connections),
    targets: values.arms.split(','),
    path: values.path,
    ...(values['baseline-addon'] ? { baselineAddon: values['baseline-addon'] } : {}),
    log: (l) => process.stderr.write(`bpf-cost: ${l}\n`),
  };
  for (const k of ['seconds', 'rounds', 'connections'] as const) if (!(o[k] > 0)) throw new Error(`--${k} takes a positive number`);
  for (const t of o.targets ?? []) if (!Object.hasOwn(TARGETS, t)) throw new Error(`--arms: ${t} is not one of ${Object.keys(TARGETS).join(', ')}`);
  const { runs, summary } = await runBpfCost(o);
  process.stdout.write(values.json ? JSON.stringify({ options: { ...o, log: undefined }, runs, summary }, null, 2) + '\n' : formatTable(summary));
  return runs.every((r) => r.requests > 0) ? 0 : 1;
}

if (require.main === module) runMain(main);
