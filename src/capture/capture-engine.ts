// The capture engine: owns the kernel session, keeps process selection in
// step with the kernel's exec/fork/exit events, decodes batches and hands
// typed events to one sink. The kernel session is injected (the native
// addon in production, a fake in tests), and so are /proc and the clock.

import { decodeBatch, newDecodeStats, type DecodeStats } from './decode';
import type { CaptureEvent, SlowSyscallEvent } from './events';
import { CaptureMode, KERNEL_STATS, MAX_PAYLOAD, type KernelStatName } from './layout';
import { pidNamespaceConfig, readPidNamespace, type PidNamespace } from './pid-namespace';
import { ProcessSelection, kernelMatchableName, type ResolvedCgroup, type SelectionTarget, type Selector } from './process-selection';
import type { ProcFs } from '../util/procfs';
import { HOST_SYSCALL_ARCH, syscallNumber } from './syscall-names';
import { decodeSyscallHistograms, encodeSyscallHistKeys, type SyscallHistogram } from './syscall-histograms';
import type { Logger } from '../util/log';
import type { SyscallHistogramAccess, TcpTableAccess, UprobeAccess } from './native-binding';

/**
 * Which kernel program groups to load (bpf/socket_trace.h): socket capture,
 * syscall latency, TCP health, TLS plaintext. Process lifecycle programs
 * always load.
 */
export interface ProgramGroups {
  readonly sockets: boolean;
  readonly syscalls: boolean;
  readonly tcp: boolean;
  /** TLS plaintext probes (uprobe_ssl_*): loaded, not attached; needs `sockets`. */
  readonly tls: boolean;
  /** Runtime links (uprobe_link_* attached per file, link_* tracepoints): needs `sockets`. */
  readonly links: boolean;
}

/** Options for the native session, as the addon takes them. */
export interface KernelSessionOptions {
  readonly config: {
    readonly agentTgid: number;
    readonly captureBytes: number;
    readonly wakeupBytes: number;
    readonly selectAll: boolean;
    readonly captureUdp: boolean;
    readonly followForks: boolean;
    readonly reportExecs: boolean;
    /** The agent's pid namespace when not the initial one; 0n, 0n in it (pid-namespace.ts). */
    readonly pidnsDev: bigint;
    readonly pidnsIno: bigint;
    /** enum capture_mode of new connections (CaptureMode). */
    readonly initialMode: number;
  };
  readonly groups: ProgramGroups;
  /** Bound of the kernel's TCP health table (tcp group). */
  readonly tcpPeerEntries: number;
  /** The syscalls group (see the native binding); `fdSyscalls` undefined: the session reads them from tracefs. */
  readonly syscalls: {
    readonly slowNs: number;
    readonly slowCostNs: number;
    readonly sigreturnNr: number;
    readonly maxHistograms: number;
    readonly fdSyscalls?: readonly number[];
  };
  readonly ringBufferBytes: number;
  readonly batchBytes: number;
  readonly maxPendingBatches: number;
  readonly pollTimeoutMs: number;
  readonly batchDelayMs: number;
  readonly onBatch: (batch: Buffer, records: number) => void;
}

export interface KernelSessionStats {
  readonly kernel: readonly bigint[];
  readonly batchesDelivered: number;
  readonly recordsDelivered: number;
  readonly batchesDropped: number;
  readonly recordsDropped: number;
  readonly bytesDropped: number;
}

/** What the engine needs of any loaded BPF session. */
export interface KernelSessionCore extends SelectionTarget {
  attachAll(): string[];
  /** Stores capture-mode requests by connection id (see the native binding); returns how many. */
  setConnectionModes(connIds: readonly number[], mode: number): number;
  start(): void;
  stats(): KernelSessionStats;
  /** Hands over at once what the reader holds back (batchDelayMs); a session that holds nothing leaves it out. */
  flush?(): void;
  close(): void;
}

/**
 * The whole kernel session: the core above, and the tables of the program
 * groups (native-binding.ts), which a fake may leave out when its test does
 * not load that group.
 */
export type KernelSession = KernelSessionCore & Partial<TcpTableAccess> & Partial<SyscallHistogramAccess> & Partial<UprobeAccess>;

export interface CaptureOptions {
  readonly selectors: readonly Selector[];
  /** Payload bytes captured per syscall (default and maximum 16 KiB). */
  readonly captureBytes?: number;
  readonly ringBufferBytes?: number;
  /** Wake the reader once this much data waits in the ring buffer. */
  readonly wakeupBytes?: number;
  readonly batchBytes?: number;
  readonly maxPendingBatches?: number;
  readonly pollTimeoutMs?: number;
  /**
   * Longest a batch waits in the reader for more records before it goes to
   * JS (the ring is still drained every poll). Each batch costs the JS thread
   * a fixed amount of work, so at low rates fewer, fuller batches are cheaper.
   */
  readonly batchDelayMs?: number;
  /** Period of the /proc rescan that catches what exec events cannot (new listeners). */
  readonly rescanMs?: number;
  readonly followForks?: boolean;
  readonly captureUdp?: boolean;
  /** Kernel program groups; socket capture only by default. */
  readonly groups?: ProgramGroups;
  /**
   * Follow connections for their byte counts only: every connection starts
   * muted in the kernel, so no data event (no payload) is ever sent; open and
   * close events, and conn_info byte totals, stay exact.
   */
  readonly byteCountsOnly?: boolean;
  /** Kernel TCP health keys (process, role, peer) before folding into one per process. */
  readonly tcpPeerEntries?: number;
  /** The syscalls group, when loaded. */
  readonly syscalls?: SyscallCaptureOptions;
}

/** The syscalls group's kernel settings (bpf/syscall_latency.bpf.h). */
export interface SyscallCaptureOptions {
  /** Report calls at least this long (ns) as slow-call events; 0 (default): none. */
  readonly slowNs?: number;
  /** Slow-call reports per second, per CPU (token bucket in the kernel; a burst of one second's worth). */
  readonly slowPerSecond?: number;
  /** Kernel histogram entries, one per (process, syscall, errno). */
  readonly maxHistograms?: number;
}

export const SYSCALL_DEFAULTS = { slowNs: 0, slowPerSecond: 100, maxHistograms: 16384 } as const;

export interface CaptureDeps {
  readonly openSession: (opts: KernelSessionOptions) => KernelSession;
  readonly procfs: ProcFs;
  readonly logger: Logger;
  readonly agentPid?: number;
  readonly resolveCgroup?: (p: string) => ResolvedCgroup | undefined;
  /**
   * The agent's pid namespace; read from /proc at start when not given. Every
   * pid the engine sees (events, selection, /proc) is one of this namespace.
   */
  readonly pidNamespace?: PidNamespace;
  /** Slow syscall events (group "syscalls") of selected processes. */
  readonly onSlowSyscall?: (event: SlowSyscallEvent) => void;
}

export interface CaptureStats {
  readonly kernel: Record<KernelStatName, number>;
  readonly batchesDelivered: number;
  readonly batchesDropped: number;
  readonly recordsDropped: number;
  readonly decode: Readonly<DecodeStats>;
  /** Events of processes no longer selected that were still in flight. */
  readonly filteredInUserSpace: number;
  /** Processes kept on the kernel's name match because they left /proc before user space could confirm it. */
  readonly unconfirmedExecs: number;
  readonly selectedProcesses: number;
  /**
   * Mute requests handed to the kernel, and those it could not store (their
   * connections keep shipping data, which is ignored). What the kernel then
   * saved is in `kernel`: conn_muted, muted_syscalls, muted_bytes.
   */
  readonly muteRequests: number;
  readonly muteRequestsFailed: number;
}

/** The largest ring buffer the capture.ring_buffer_mib setting takes. */
export const MAX_RING_BUFFER_MIB = 1024;

export const CAPTURE_DEFAULTS = {
  captureBytes: MAX_PAYLOAD,
  // The poll thread drains the ring on its own, into the native batch queue,
  // so the ring only covers that thread's scheduling delays: 4 MiB is ~300 ms
  // at 20k HTTP requests/s (about 12 MB/s of events). The mapping shows in
  // RSS twice (the data pages are mapped twice for wrap-around).
  ringBufferBytes: 4 * 1024 * 1024,
  wakeupBytes: 64 * 1024,
  batchBytes: 256 * 1024,
  maxPendingBatches: 64,
  pollTimeoutMs: 20,
  batchDelayMs: 50,
  rescanMs: 1000,
  followForks: true,
  captureUdp: false,
  groups: { sockets: true, syscalls: false, tcp: false, tls: false, links: false },
  byteCountsOnly: false,
  tcpPeerEntries: 8192,
} as const;

export class CaptureEngine {
  private session: KernelSession | undefined;
  private selection: ProcessSelection | undefined;
  private rescanTimer: NodeJS.Timeout | undefined;
  private readonly decodeStats = newDecodeStats();
  private filtered = 0;
  private muteRequests = 0;
  private muteRequestsFailed = 0;
  private finalStats: KernelSessionStats | undefined;
  /** The syscall histograms as stop() left them: the final read. */
  private finalSyscalls: Buffer | undefined;
  private readonly opts: Required<Omit<CaptureOptions, 'syscalls'>> & { readonly syscalls: Required<SyscallCaptureOptions> };
  private readonly agentPid: number;

  constructor(
    options: CaptureOptions,
    private readonly deps: CaptureDeps,
    private readonly sink: (event: CaptureEvent) => void,
    /** Called after each batch's events went to the sink (to flush per batch, not per event). */
    private readonly afterBatch: () => void = () => {},
  ) {
    this.opts = { ...CAPTURE_DEFAULTS, ...options, syscalls: { ...SYSCALL_DEFAULTS, ...options.syscalls } };
    this.agentPid = deps.agentPid ?? process.pid;
    const cap = this.opts.captureBytes;
    if (!Number.isInteger(cap) || cap < 0 || cap > MAX_PAYLOAD) {
      throw new RangeError(`capture bytes must be an integer from 0 to ${MAX_PAYLOAD}, got ${cap}`);
    }
    const sys = this.opts.syscalls;
    if (!Number.isSafeInteger(sys.slowNs) || sys.slowNs < 0) throw new RangeError(`slow-call threshold must be a whole number of ns >= 0, got ${sys.slowNs}`);
    if (!Number.isInteger(sys.slowPerSecond) || sys.slowPerSecond < 1 || sys.slowPerSecond > 1e9) {
      throw new RangeError(`slow-call reports per second must be an integer from 1 to 1e9, got ${sys.slowPerSecond}`);
    }
    if (!Number.isInteger(sys.maxHistograms) || sys.maxHistograms < 1 || sys.maxHistograms > 1 << 24) {
      throw new RangeError(`syscall histogram entries must be an integer from 1 to ${1 << 24}, got ${sys.maxHistograms}`);
    }
  }

  /** Loads, selects, attaches and starts polling. Returns the attached programs. */
  start(): string[] {
    if (this.session) throw new Error('capture already started');
    const selectAll = this.opts.selectors.some((s) => s.kind === 'all');
    // Exact names are matched by the kernel at exec; globs need every exec reported.
    const reportExecs = !selectAll && this.opts.selectors.some((s) => s.kind === 'exe' && !kernelMatchableName(s.pattern));
    // Outside the initial pid namespace the kernel translates pids to this
    // one's and traces nothing else: --all then means this namespace only.
    const pidns = pidNamespaceConfig(this.deps.pidNamespace ?? readPidNamespace());
    const session = this.deps.openSession({
      config: {
        agentTgid: this.agentPid,
        captureBytes: this.opts.captureBytes,
        wakeupBytes: this.opts.wakeupBytes,
        selectAll,
        captureUdp: this.opts.captureUdp,
        // With --all every process is traced already: following forks adds nothing.
        followForks: this.opts.followForks && !selectAll,
        reportExecs,
        ...pidns,
        initialMode: this.opts.byteCountsOnly ? CaptureMode.Muted : CaptureMode.Full,
      },
      groups: this.opts.groups,
      tcpPeerEntries: this.opts.tcpPeerEntries,
      syscalls: {
        slowNs: this.opts.syscalls.slowNs,
        slowCostNs: Math.round(1e9 / this.opts.syscalls.slowPerSecond),
        // Its return value is the restored register, not an error; no table: a number no call has.
        sigreturnNr: syscallNumber('rt_sigreturn', HOST_SYSCALL_ARCH) ?? 0xffffffff,
        maxHistograms: this.opts.syscalls.maxHistograms,
      },
      ringBufferBytes: this.opts.ringBufferBytes,
      batchBytes: this.opts.batchBytes,
      maxPendingBatches: this.opts.maxPendingBatches,
      pollTimeoutMs: this.opts.pollTimeoutMs,
      batchDelayMs: this.opts.batchDelayMs,
      onBatch: (batch) => this.onBatch(batch),
    });
    this.session = session;
    try {
      const selectionOpts = {
        agentPid: this.agentPid,
        logger: this.deps.logger,
        ...(this.deps.resolveCgroup ? { resolveCgroup: this.deps.resolveCgroup } : {}),
      };
      this.selection = new ProcessSelection(this.opts.selectors, session, this.deps.procfs, selectionOpts);
      // Fill the kernel filter before attaching: nothing selected is missed
      // and nothing unselected is captured in between.
      this.selection.start();
      for (const s of this.opts.selectors) {
        if (s.kind === 'pid' && !this.selection.isSelected(s.pid)) {
          throw new Error(`no process with pid ${s.pid}`);
        }
      }
      session.start();
      const programs = session.attachAll();
      if (!selectAll && this.opts.rescanMs > 0) {
        this.rescanTimer = setInterval(() => this.rescan(), this.opts.rescanMs);
        this.rescanTimer.unref();
      }
      return programs;
    } catch (err) {
      this.stop();
      throw err;
    }
  }

  /**
   * Waits for what the kernel already wrote to reach the sink (the reader
   * wakes at least every poll interval; then it is asked to hand over the
   * batch it holds back), then stops. `beforeStop` runs between the two,
   * while the kernel tables can still be read. Safe to call when stopped.
   */
  async drainAndStop(beforeStop?: () => void): Promise<void> {
    if (this.session) {
      const poll = this.opts.pollTimeoutMs;
      await new Promise((r) => setTimeout(r, 5 * poll));
      if (this.session.flush) {
        this.session.flush();
        await new Promise((r) => setTimeout(r, 2 * poll));
      }
      beforeStop?.();
    }
    this.stop();
  }

  /** Detaches everything. Safe to call more than once. */
  stop(): void {
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    this.rescanTimer = undefined;
    const session = this.session;
    this.session = undefined;
    if (!session) return;
    // Keep the last counters: the summary printed after stop must still say what was lost.
    this.finalStats = session.stats();
    // And the last syscall histograms: the final interval is read after stop.
    if (this.opts.groups.syscalls && session.readSyscallHistograms) {
      try {
        this.finalSyscalls = session.readSyscallHistograms();
      } catch (err) {
        this.deps.logger.warn(`cannot read the syscall histograms one last time: ${(err as Error).message}`);
      }
    }
    session.close();
  }

  get running(): boolean {
    return this.session !== undefined;
  }

  /** Whether a process is selected now (user-space view of the kernel filter). */
  isSelected(tgid: number): boolean {
    return this.selection?.isSelected(tgid) ?? false;
  }

  selectedProcesses(): Map<number, string[]> {
    return this.selection?.snapshot() ?? new Map();
  }

  stats(): CaptureStats {
    const native = this.session?.stats() ?? this.finalStats;
    const kernel = Object.fromEntries(
      KERNEL_STATS.map((name, i) => [name, Number(native?.kernel[i] ?? 0n)]),
    ) as Record<KernelStatName, number>;
    return {
      kernel,
      batchesDelivered: native?.batchesDelivered ?? 0,
      batchesDropped: native?.batchesDropped ?? 0,
      recordsDropped: native?.recordsDropped ?? 0,
      decode: { ...this.decodeStats },
      filteredInUserSpace: this.filtered,
      unconfirmedExecs: this.selection?.unconfirmedExecs ?? 0,
      selectedProcesses: this.selection?.snapshot().size ?? 0,
      muteRequests: this.muteRequests,
      muteRequestsFailed: this.muteRequestsFailed,
    };
  }

  /**
   * Connections whose bytes nobody will parse: the kernel stops sending their
   * data events from their next syscall on (positions and close totals stay
   * exact). One native call for the whole list. Events already in flight
   * still arrive. After stop(), a no-op.
   */
  muteConnections(connIds: readonly number[]): void {
    const session = this.session;
    if (!session || connIds.length === 0) return;
    try {
      this.muteRequests += session.setConnectionModes(connIds, CaptureMode.Muted);
    } catch (err) {
      const stored = (err as { stored?: unknown }).stored;
      const n = typeof stored === 'number' ? stored : 0;
      this.muteRequests += n;
      this.muteRequestsFailed += connIds.length - n;
      this.deps.logger.warnOnce(
        'mute',
        `cannot mute connections in the kernel, their data keeps coming and is ignored in user space: ${(err as Error).message}`,
      );
    }
  }

  /**
   * Connections whose data is wanted again (muted from their ciphertext, now
   * TLS plaintext): MODE_FULL from their next event. One native call. After
   * stop(), a no-op. A failure is logged once: their plaintext stays muted.
   */
  unmuteConnections(connIds: readonly number[]): void {
    const session = this.session;
    if (!session || connIds.length === 0) return;
    try {
      session.setConnectionModes(connIds, CaptureMode.Full);
    } catch (err) {
      this.deps.logger.warnOnce('unmute', `cannot unmute connections in the kernel, their TLS plaintext stays muted: ${(err as Error).message}`);
    }
  }

  // The program groups' kernel tables, read by their features (src/agent/features/).

  /** The session's uprobe attach and detach (the tls feature's attachments); undefined when stopped or when the session has none (fakes). */
  uprobeAttacher(): UprobeAccess | undefined {
    const s = this.session;
    return s?.attachUprobe && s.detach && s.links ? (s as UprobeAccess) : undefined;
  }

  /** The kernel's TCP health table (struct tcp_peer_record each); undefined when stopped. */
  readTcpPeers(): Buffer | undefined {
    return this.session ? this.requireSession('readTcpPeers').readTcpPeers!() : undefined;
  }

  /** The kernel's connection table (struct conn_record each); undefined when stopped. */
  readConnections(): Buffer | undefined {
    return this.session ? this.requireSession('readConnections').readConnections!() : undefined;
  }

  /** Forgets the TCP health keys of exited processes; 0 when stopped. */
  deleteTcpPeers(tgids: readonly number[]): number {
    if (!this.session || tgids.length === 0) return 0;
    return this.requireSession('deleteTcpPeers').deleteTcpPeers!(tgids);
  }

  private requireSession(method: 'readTcpPeers' | 'readConnections' | 'deleteTcpPeers'): KernelSession {
    const s = this.session!;
    if (typeof s[method] !== 'function') throw new Error(`the kernel session has no ${method}()`);
    return s;
  }

  /**
   * Every kernel syscall histogram now (cumulative since each entry was
   * created; see SyscallHistogramDiffer); after stop(), as stop() found
   * them. Empty when the syscalls group is not loaded.
   */
  readSyscallHistograms(): SyscallHistogram[] {
    if (!this.opts.groups.syscalls) return [];
    const session = this.session;
    if (!session) return this.finalSyscalls ? decodeSyscallHistograms(this.finalSyscalls) : [];
    if (!session.readSyscallHistograms) throw new Error('the kernel session cannot read syscall histograms');
    return decodeSyscallHistograms(session.readSyscallHistograms());
  }

  /** Deletes kernel histogram entries (after their final read); returns how many were there. After stop(), 0. */
  deleteSyscallHistograms(keys: readonly { tgid: number; nr: number; err: number }[]): number {
    const session = this.session;
    if (!session?.deleteSyscallHistograms || keys.length === 0) return 0;
    return session.deleteSyscallHistograms(encodeSyscallHistKeys(keys));
  }

  /** Exposed for replay (benchmarks, tests): the same path live batches take. */
  onBatch(batch: Buffer): void {
    decodeBatch(batch, (e) => this.dispatch(e), this.decodeStats, (e) => this.dispatchSlowSyscall(e));
    this.afterBatch();
  }

  private dispatchSlowSyscall(e: SlowSyscallEvent): void {
    if (this.selection && !this.selection.isSelected(e.tgid)) {
      this.filtered++;
      return;
    }
    this.deps.onSlowSyscall?.(e);
  }

  private dispatch(e: CaptureEvent): void {
    const selection = this.selection;
    const wanted = (tgid: number) => !selection || selection.isSelected(tgid);
    switch (e.type) {
      case 'exec':
        // Selection first: the event goes out only if the new program is wanted.
        selection?.onExec(e);
        if (wanted(e.tgid)) this.sink(e);
        return;
      case 'fork':
        selection?.onFork(e);
        if (wanted(e.tgid)) this.sink(e);
        return;
      case 'exit':
        // Delivered before forgetting, so the sink can close what the process held.
        if (!wanted(e.tgid)) return;
        this.sink(e);
        selection?.onExit(e);
        return;
      default:
        if (!wanted(e.tgid)) {
          this.filtered++;
          return;
        }
        this.sink(e);
    }
  }

  private rescan(): void {
    try {
      this.selection?.rescan();
    } catch (err) {
      this.deps.logger.warnOnce('rescan', `process rescan failed: ${(err as Error).message}`);
    }
  }
}
