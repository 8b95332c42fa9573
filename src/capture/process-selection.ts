// Which processes the kernel captures. Selectors are resolved against /proc
// at start, on every exec/fork/exit event from the kernel, and on a periodic
// rescan (for listeners that appear later and anything an event missed).
// The kernel's selected_tgids / selected_cgroups maps are the filter; this
// class keeps them equal to what the selectors say, with a reason per process.

import * as path from 'node:path';
import type { ExecEvent, ExitEvent, ForkEvent } from './events';
import { globToRegExp, hasGlobMagic } from './glob';
import type { ProcFs } from '../util/procfs';
import type { Logger } from '../util/log';

export type Selector =
  | { readonly kind: 'pid'; readonly pid: number }
  | { readonly kind: 'exe'; readonly pattern: string }
  | { readonly kind: 'port'; readonly port: number }
  | { readonly kind: 'cgroup'; readonly path: string }
  | { readonly kind: 'container'; readonly id: string }
  | { readonly kind: 'all' };

export type SelectionReason = 'pid' | 'exe' | 'port' | 'cgroup' | 'container' | 'fork';

/** The kernel side of selection (the native session, or a fake in tests). */
export interface SelectionTarget {
  selectTgid(tgid: number, on: boolean): void;
  selectCgroup(id: bigint, on: boolean): void;
  setExecNames(names: string[]): void;
}

export interface ResolvedCgroup {
  /** cgroup v2 id (the cgroup directory's inode number). */
  readonly id: bigint;
  /** Path below the cgroup2 mount, starting with '/'. */
  readonly relPath: string;
}

export interface SelectionOptions {
  readonly agentPid: number;
  /** Resolves a --cgroup argument; injectable for tests. */
  readonly resolveCgroup?: (p: string) => ResolvedCgroup | undefined;
  readonly logger: Logger;
}

/** comm is at most 15 bytes: only names that fit can be matched by the kernel at exec. */
const COMM_MAX = 15;

/** An --exe pattern the kernel can match against comm at exec: exact and short enough. */
export function kernelMatchableName(pattern: string): boolean {
  return !hasGlobMagic(pattern) && Buffer.byteLength(pattern) <= COMM_MAX;
}

export class ProcessSelection {
  readonly all: boolean;
  /**
   * Processes kept on the kernel's name match at exec because they were gone
   * from /proc before user space could confirm it (short-lived programs).
   */
  unconfirmedExecs = 0;
  private readonly reasons = new Map<number, Set<SelectionReason>>();
  private readonly pidSelectors: Set<number>;
  private readonly exeMatchers: RegExp[];
  /** Selected processes the last rescan did not find in /proc. */
  private missing = new Set<number>();
  /** The exact names the kernel matches at exec (setExecNames). */
  private readonly kernelNames: ReadonlySet<string>;
  private readonly ports: number[];
  private readonly cgroups: ResolvedCgroup[];
  private readonly containers: string[];
  /**
   * Only pids are selected: no process outside them and their forks can gain
   * a reason, so a rescan reads those alone instead of every process in /proc
   * (3.3 ms per rescan with 95 processes, every second).
   */
  private readonly pidsOnly: boolean;

  constructor(
    selectors: readonly Selector[],
    private readonly target: SelectionTarget,
    private readonly procfs: ProcFs,
    private readonly opts: SelectionOptions,
  ) {
    if (selectors.length === 0) throw new Error('no process selector given: use --pid, --exe, --port, --cgroup, --container or --all');
    this.all = selectors.some((s) => s.kind === 'all');
    this.pidSelectors = new Set(selectors.flatMap((s) => (s.kind === 'pid' ? [s.pid] : [])));
    const patterns = selectors.flatMap((s) => (s.kind === 'exe' ? [s.pattern] : []));
    this.exeMatchers = patterns.map(globToRegExp);
    this.kernelNames = new Set(patterns.filter(kernelMatchableName));
    this.ports = selectors.flatMap((s) => (s.kind === 'port' ? [s.port] : []));
    this.containers = selectors.flatMap((s) => (s.kind === 'container' ? [s.id.toLowerCase()] : []));
    this.pidsOnly = selectors.every((s) => s.kind === 'pid');
    this.cgroups = selectors.flatMap((s) => {
      if (s.kind !== 'cgroup') return [];
      const resolved = (opts.resolveCgroup ?? (() => undefined))(s.path);
      if (!resolved) throw new Error(`cgroup not found: ${s.path} (give a cgroup v2 directory)`);
      return [resolved];
    });
    // Exact names that fit in comm are matched by the kernel at exec, so a
    // process started later is captured from its first syscall; user space
    // then confirms against the real executable (or removes it, e.g. a shim).
    const execNames = patterns.filter(kernelMatchableName);
    if (!this.all && execNames.length > 0) this.target.setExecNames(execNames);
  }

  /** Initial selection; call before attaching so nothing selected is missed. */
  start(): void {
    if (this.all) return;
    for (const c of this.cgroups) this.target.selectCgroup(c.id, true);
    this.rescan();
  }

  /** Re-evaluates every process in /proc (cheap enough at a 1 s period on a node); with only pid selectors, the selected ones. */
  rescan(): void {
    if (this.all) return;
    const pids = this.pidsOnly ? [...new Set([...this.pidSelectors, ...this.reasons.keys()])] : this.procfs.pids();
    const listening = this.ports.length > 0 ? this.listeningSockets(pids) : undefined;
    const alive = new Set<number>();
    for (const pid of pids) {
      if (pid === this.opts.agentPid) continue;
      const status = this.procfs.status(pid);
      // /proc lists thread-group leaders only; skip what has gone or is a thread.
      if (!status || status.tgid !== pid) continue;
      alive.add(pid);
      // Exiting (a zombie): nothing left to judge, and
      // its last events may still be on their way. Its exit event settles it.
      if (this.reasons.has(pid) && this.procfs.exited(pid)) continue;
      const next = this.evaluate(pid, listening);
      const prev = this.reasons.get(pid);
      if (prev?.has('fork')) next.add('fork');
      this.apply(pid, next);
    }
    // Gone without an exit event seen: forgotten at the next rescan, not this
    // one, so the events it sent before it went are not dropped on their way.
    const missing = new Set<number>();
    for (const tgid of this.reasons.keys()) {
      if (alive.has(tgid)) continue;
      if (this.missing.has(tgid)) this.forget(tgid);
      else missing.add(tgid);
    }
    this.missing = missing;
  }

  onExec(e: ExecEvent): void {
    if (this.all || e.tgid === this.opts.agentPid) return;
    const prev = this.reasons.get(e.tgid);
    // /proc shows the process as it is now, which may already be a later exec
    // (a shim script that execs the real program). Judge the executable only
    // when /proc still shows the program this exec started; otherwise keep
    // the reasons that do not depend on the program, and let the later exec
    // event decide for the later program.
    const current = this.execIsCurrent(e);
    const next = this.evaluate(e.tgid, undefined, current);
    // A program that ran and exited before this event reached user space
    // (one curl request) leaves nothing in /proc to judge (gone, or a zombie).
    // Not a process in the middle of an exec (a shim exec'ing the real
    // program): its exe link can be unreadable for a moment, but it lives. The kernel matched
    // the name this exec started against the exact names it was given: its
    // decision stands, counted. Not for globs (the kernel does not match
    // them) nor for a process still alive (judged above).
    if (!current && e.selectedByKernel && this.kernelNames.has(e.comm) && this.procfs.exited(e.tgid)) {
      next.add('exe');
      this.unconfirmedExecs++;
    }
    // The port reason stays until the next rescan sees whether the listener survived.
    if (prev?.has('port')) next.add('port');
    this.apply(e.tgid, next, e.selectedByKernel);
  }

  onFork(e: ForkEvent): void {
    if (this.all || !e.selectedByKernel) return;
    if (!this.reasons.get(e.ppid)) {
      // The kernel followed a fork of a process we deselected a moment ago.
      this.apply(e.tgid, new Set(), true);
      return;
    }
    const next = this.evaluate(e.tgid, undefined);
    next.add('fork');
    this.apply(e.tgid, next, true);
  }

  onExit(e: ExitEvent): void {
    if (this.all) return;
    this.forget(e.tgid);
  }

  /** Whether events of this process are wanted (user-space check behind the kernel filter). */
  isSelected(tgid: number): boolean {
    if (tgid === this.opts.agentPid) return false;
    return this.all || this.reasons.has(tgid);
  }

  /** Why each selected process is selected. */
  snapshot(): Map<number, SelectionReason[]> {
    return new Map([...this.reasons].map(([k, v]) => [k, [...v].sort()]));
  }

  private evaluate(pid: number, listening: Set<number> | undefined, judgeExe = true): Set<SelectionReason> {
    const r = new Set<SelectionReason>();
    if (this.pidSelectors.has(pid)) r.add('pid');
    if (judgeExe && this.exeMatchers.length > 0 && this.matchesExe(pid)) r.add('exe');
    if (listening !== undefined && this.holdsAny(pid, listening)) r.add('port');
    if (this.cgroups.length > 0) {
      const cg = this.procfs.cgroupV2Path(pid);
      if (cg !== undefined && this.cgroups.some((c) => cg === c.relPath || cg.startsWith(c.relPath + '/'))) r.add('cgroup');
    }
    if (this.containers.length > 0) {
      const paths = this.procfs.cgroupPaths(pid);
      if (paths.some((p) => this.containers.some((id) => p.toLowerCase().includes(id)))) r.add('container');
    }
    return r;
  }

  /**
   * A process matches an executable pattern when the pattern matches the
   * basename of its real executable, or the name it was started by (argv[0])
   * provided that name resolves to that same executable file. So `python3`
   * matches /usr/bin/python3 -> python3.11, but not a `python3` shim script
   * run by bash, whose real executable is bash.
   */
  private matchesExe(pid: number): boolean {
    const exe = this.procfs.exePath(pid);
    if (exe === undefined) return false;
    const exeName = path.basename(exe.replace(/ \(deleted\)$/, ''));
    if (this.exeMatchers.some((m) => m.test(exeName))) return true;
    const argv0 = this.procfs.cmdline(pid)?.[0];
    if (argv0 === undefined || argv0 === '') return false;
    const name = path.basename(argv0);
    if (!this.exeMatchers.some((m) => m.test(name))) return false;
    const exeId = this.procfs.exeId(pid);
    if (!exeId) return false;
    for (const candidate of this.resolveArgv0(pid, argv0)) {
      const id = this.procfs.fileIdInRoot(pid, candidate);
      if (id && id.dev === exeId.dev && id.ino === exeId.ino) return true;
    }
    return false;
  }

  /**
   * Whether /proc/pid/exe is the executable this exec event started: the file
   * given to execve, or for a script the interpreter its "#!" line names.
   */
  private execIsCurrent(e: ExecEvent): boolean {
    const exeId = this.procfs.exeId(e.tgid);
    if (!exeId || e.filename === '') return false;
    let file = e.filename;
    if (!file.startsWith('/')) {
      const cwd = this.procfs.cwd(e.tgid);
      if (cwd === undefined) return false;
      file = path.join(cwd, file);
    }
    const head = this.procfs.headInRoot(e.tgid, file, 256);
    if (head === undefined) return false;
    if (head[0] === 0x23 && head[1] === 0x21) {
      // "#!interpreter [arg]": the kernel runs the interpreter on the script.
      const line = head.subarray(2).toString('latin1').split('\n')[0]!.trim();
      const interpreter = line.split(/[ \t]/)[0];
      if (!interpreter) return false;
      file = interpreter;
    }
    const id = this.procfs.fileIdInRoot(e.tgid, file);
    return id !== undefined && id.dev === exeId.dev && id.ino === exeId.ino;
  }

  /** Where argv[0] may point, in the process's own filesystem view. */
  private resolveArgv0(pid: number, argv0: string): string[] {
    if (argv0.startsWith('/')) return [argv0];
    if (argv0.includes('/')) {
      const cwd = this.procfs.cwd(pid);
      return cwd === undefined ? [] : [path.join(cwd, argv0)];
    }
    const searchPath = this.procfs.environ(pid)?.get('PATH') ?? '/usr/local/bin:/usr/bin:/bin';
    return searchPath
      .split(':')
      .filter((d) => d.startsWith('/'))
      .slice(0, 64)
      .map((d) => path.join(d, argv0));
  }

  private listeningSockets(pids: number[]): Set<number> {
    // /proc/<pid>/net/tcp shows the namespace of <pid>: read it once per namespace.
    const seenNs = new Set<number>();
    const inodes = new Set<number>();
    for (const pid of pids) {
      const ns = this.procfs.netnsInode(pid);
      if (ns === undefined || seenNs.has(ns)) continue;
      seenNs.add(ns);
      for (const port of this.ports) for (const ino of this.procfs.listeningInodes(pid, port)) inodes.add(ino);
    }
    return inodes;
  }

  private holdsAny(pid: number, inodes: Set<number>): boolean {
    if (inodes.size === 0) return false;
    for (const ino of this.procfs.socketInodes(pid)) if (inodes.has(ino)) return true;
    return false;
  }

  /** Sets a process's reasons; the kernel map follows. `inKernel` says the kernel already selected it. */
  private apply(tgid: number, next: Set<SelectionReason>, inKernel = false): void {
    const was = this.reasons.has(tgid);
    if (next.size > 0) {
      this.reasons.set(tgid, next);
      if (!was && !inKernel) this.target.selectTgid(tgid, true);
      if (!was) this.opts.logger.debug(`selected pid ${tgid} (${[...next].join(',')})`);
    } else if (was || inKernel) {
      this.reasons.delete(tgid);
      this.target.selectTgid(tgid, false);
      this.opts.logger.debug(`deselected pid ${tgid}`);
    }
  }

  private forget(tgid: number): void {
    if (!this.reasons.delete(tgid)) return;
    this.target.selectTgid(tgid, false);
  }
}
