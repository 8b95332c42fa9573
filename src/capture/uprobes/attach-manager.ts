// Attaches uprobes once per distinct file (device + inode), whatever the
// number of processes using it: the probes check the process selection in
// the kernel, so one attachment serves every selected process and costs
// nothing to the others. Users are counted by tgid; a file whose last user
// is gone is detached at the next settle() (after a rescan, which also finds
// forked children still using it). The number of files is bounded; what the
// bound or a failure keeps out is counted and logged once. Used by the TLS
// feature (its libraries) and the linking feature (nginx, Go binaries), each
// with a manager of its own.

import type { Logger } from '../../util/log';

/** One uprobe to attach to a file. */
export interface FileProbe {
  readonly program: string;
  /** A file offset, or a symbol name libbpf resolves. */
  readonly at: number | string;
  readonly retprobe: boolean;
  /** All required probes attach, or none stays. */
  readonly required: boolean;
  /** bpf_get_attach_cookie() in the program (a per-file slot of the program's own tables). */
  readonly cookie?: number;
}

/** What a file is, as far as attaching goes. */
export interface ProbedFile {
  /** For log lines: 'openssl', 'go', 'nginx'... */
  readonly kind: string;
  readonly version?: string;
  readonly probes: readonly FileProbe[];
}

/** What the manager needs of the kernel session (native-binding.ts SocketTraceSession). */
export interface UprobeAttacher {
  attachUprobe(program: string, binaryPath: string, symbolOrOffset: string | number, opts?: { retprobe?: boolean; cookie?: number }): number;
  detach(linkId: number): void;
}

export const DEFAULT_TLS_MAX_FILES = 64;

export interface AttachManagerOptions {
  readonly maxFiles: number;
  readonly logger: Logger;
  readonly monotonicNs?: () => number;
  /** Prefix of log lines, and the setting named when the bound is reached: 'tls', 'tls.max_files'. */
  readonly label?: string;
  readonly boundSetting?: string;
}

/** A probeable file as a process maps it. */
export interface FileUse {
  /** "dev:ino". */
  readonly key: string;
  /** Where the agent reaches it (/proc/PID/root/...). */
  readonly attachPath: string;
  readonly library: ProbedFile;
}

export type FileState = 'attached' | 'failed' | 'over_bound';

interface FileEntry {
  readonly key: string;
  attachPath: string;
  readonly library: ProbedFile;
  readonly users: Set<number>;
  state: FileState;
  links: number[];
  /** The programs attached (for the log and doctor). */
  programs: string[];
  reason?: string;
}

export interface AttachStats {
  /** Files probed now. */
  readonly files: number;
  /** Files ever attached, and detached. */
  readonly attaches: number;
  readonly detaches: number;
  /** Files whose required probes failed to attach (each once). */
  readonly attachFailures: number;
  /** Optional probes (_ex, handshake, shutdown, free) that failed on a probed file. */
  readonly optionalFailures: number;
  /** Files left unprobed because max_files were probed already (each once while it is in use). */
  readonly filesOverBound: number;
  /** Time spent attaching, all files (ns), and the slowest file. */
  readonly attachNs: number;
  readonly slowestAttachNs: number;
}

export class UprobeAttachManager {
  private readonly files = new Map<string, FileEntry>();
  private readonly byTgid = new Map<number, Set<string>>();
  private attaches = 0;
  private detaches = 0;
  private attachFailures = 0;
  private optionalFailures = 0;
  private filesOverBound = 0;
  private attachNs = 0;
  private slowestAttachNs = 0;
  private boundLogged = false;

  constructor(
    private readonly attacher: () => UprobeAttacher | undefined,
    private readonly opts: AttachManagerOptions,
  ) {
    this.label = opts.label ?? 'tls';
    this.boundSetting = opts.boundSetting ?? 'tls.max_files';
  }

  private readonly label: string;
  private readonly boundSetting: string;

  /** The probeable files process `tgid` maps now (replaces what it mapped before). */
  setProcessFiles(tgid: number, uses: readonly FileUse[]): void {
    const now = new Set(uses.map((u) => u.key));
    const before = this.byTgid.get(tgid);
    if (before) for (const key of before) if (!now.has(key)) this.files.get(key)?.users.delete(tgid);
    if (now.size === 0) this.byTgid.delete(tgid);
    else this.byTgid.set(tgid, now);
    for (const u of uses) {
      let f = this.files.get(u.key);
      if (!f) {
        f = { key: u.key, attachPath: u.attachPath, library: u.library, users: new Set(), state: 'over_bound', links: [], programs: [] };
        this.files.set(u.key, f);
        f.users.add(tgid);
        this.tryAttach(f, true);
      } else {
        if (f.users.size === 0) f.attachPath = u.attachPath;
        f.users.add(tgid);
      }
    }
  }

  processExited(tgid: number): void {
    const keys = this.byTgid.get(tgid);
    if (!keys) return;
    this.byTgid.delete(tgid);
    for (const key of keys) this.files.get(key)?.users.delete(tgid);
  }

  /**
   * Detaches the files nobody uses any more, then gives freed places to
   * files over the bound that are still in use. Call after a rescan of
   * every selected process (a forked child keeps its parent's files).
   */
  settle(): void {
    for (const f of [...this.files.values()]) {
      if (f.users.size > 0) continue;
      this.release(f);
      this.files.delete(f.key);
    }
    for (const f of this.files.values()) if (f.state === 'over_bound') this.tryAttach(f, false);
  }

  /** Detaches everything (shutdown; the session's close would too). */
  detachAll(): void {
    for (const f of this.files.values()) this.release(f);
    this.files.clear();
    this.byTgid.clear();
  }

  /** How this file stands, for a process's report. */
  fileState(key: string): { state: FileState; reason?: string; programs: readonly string[] } | undefined {
    const f = this.files.get(key);
    return f ? { state: f.state, ...(f.reason ? { reason: f.reason } : {}), programs: f.programs } : undefined;
  }

  /** Files and their users now (tests, debug). */
  snapshot(): Array<{ key: string; attachPath: string; state: FileState; users: number[]; links: number }> {
    return [...this.files.values()].map((f) => ({ key: f.key, attachPath: f.attachPath, state: f.state, users: [...f.users].sort((a, b) => a - b), links: f.links.length }));
  }

  stats(): AttachStats {
    let files = 0;
    for (const f of this.files.values()) if (f.state === 'attached') files++;
    return {
      files,
      attaches: this.attaches,
      detaches: this.detaches,
      attachFailures: this.attachFailures,
      optionalFailures: this.optionalFailures,
      filesOverBound: this.filesOverBound,
      attachNs: this.attachNs,
      slowestAttachNs: this.slowestAttachNs,
    };
  }

  private attachedCount(): number {
    let n = 0;
    for (const f of this.files.values()) if (f.state === 'attached') n++;
    return n;
  }

  private tryAttach(f: FileEntry, firstTime: boolean): void {
    const attacher = this.attacher();
    if (!attacher) return;
    const { logger } = this.opts;
    if (this.attachedCount() >= this.opts.maxFiles) {
      if (firstTime) {
        this.filesOverBound++;
        if (!this.boundLogged) {
          this.boundLogged = true;
          logger.warn(`${this.label}: ${this.opts.maxFiles} files probed already (${this.boundSetting}): ${f.attachPath} and later ones are not probed (counted in ebpf_otel.${this.label}.files_over_bound)`);
        }
      }
      f.state = 'over_bound';
      f.reason = `over the bound of ${this.opts.maxFiles} probed files (${this.boundSetting})`;
      return;
    }
    const clock = this.opts.monotonicNs ?? (() => Number(process.hrtime.bigint()));
    const t0 = clock();
    const links: number[] = [];
    const programs: string[] = [];
    const optionalErrors: string[] = [];
    let failure: string | undefined;
    for (const p of f.library.probes) {
      try {
        links.push(attacher.attachUprobe(p.program, f.attachPath, p.at, p.cookie !== undefined ? { retprobe: p.retprobe, cookie: p.cookie } : { retprobe: p.retprobe }));
        programs.push(p.program);
      } catch (err) {
        const msg = (err as Error).message.split('\n')[0]!;
        if (p.required) {
          failure = msg;
          break;
        }
        optionalErrors.push(msg);
      }
    }
    const spent = clock() - t0;
    this.attachNs += spent;
    this.slowestAttachNs = Math.max(this.slowestAttachNs, spent);
    if (failure !== undefined) {
      for (const id of links) this.detachLink(attacher, id);
      f.state = 'failed';
      f.reason = `attach failed: ${failure}`;
      this.attachFailures++;
      logger.warn(`${this.label}: cannot probe ${f.attachPath} (${f.library.kind}): ${failure}`);
      return;
    }
    if (optionalErrors.length > 0) {
      this.optionalFailures += optionalErrors.length;
      logger.warn(`${this.label}: ${f.attachPath}: ${optionalErrors.length} optional probe(s) not attached: ${optionalErrors[0]}`);
    }
    f.state = 'attached';
    delete f.reason;
    f.links = links;
    f.programs = programs;
    this.attaches++;
    logger.debug(`${this.label}: probed ${f.attachPath} (${f.library.kind}${f.library.version ? ' ' + f.library.version : ''}, ${f.key}): ${links.length} probes in ${(spent / 1e6).toFixed(1)} ms`);
  }

  private release(f: FileEntry): void {
    if (f.state !== 'attached') return;
    const attacher = this.attacher();
    if (attacher) for (const id of f.links) this.detachLink(attacher, id);
    f.links = [];
    f.state = 'over_bound';
    this.detaches++;
    this.opts.logger.debug(`${this.label}: detached ${f.attachPath} (${f.key}): no selected process maps it`);
  }

  private detachLink(attacher: UprobeAttacher, id: number): void {
    try {
      attacher.detach(id);
    } catch (err) {
      this.opts.logger.warnOnce(`${this.label}-detach`, `${this.label}: cannot detach link ${id}: ${(err as Error).message}`);
    }
  }
}
