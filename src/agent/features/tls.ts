// TLS plaintext through uprobes: finds the TLS libraries of the selected
// processes (src/capture/tls/discovery.ts) and keeps the tls group's probes
// attached once per library file (uprobes/attach-manager.ts). Processes are scanned
// (process-scan.ts) when they exec (after the batch that carried the exec, and again at the
// next tick: the dynamic loader maps libssl after exec), and every
// rescan period (at most 32 a tick), which catches libraries loaded later
// with dlopen (Python's `import ssl`) and forked children; only processes
// whose executable mappings changed are classified again. A file with no selected user is
// detached after the rescan that confirms it.
//
// The plaintext events themselves go through socket capture like any data
// event: this feature only manages attachments and reports on them.

import * as fs from 'node:fs';
import { DEFAULT_TLS_MAX_FILES, UprobeAttachManager, type FileUse } from '../../capture/uprobes/attach-manager';
import { TlsDiscovery, type MappedTlsLibrary } from '../../capture/tls/discovery';
import type { TlsLibraryKind } from '../../capture/tls/library';
import { mappingSignature } from '../../capture/tls/maps';
import type { AgentHealth, AgentMetric } from '../../otel/metrics';
import type { AgentContext, AgentFeature } from '../feature';
import { attachingScan } from './process-scan';
import { TLS_KERNEL_METRICS, tlsKernelHealth } from './tls-kernel-metrics';

export interface TlsFeatureOptions {
  readonly enabled: boolean;
  /** Library files probed at most. */
  readonly maxFiles: number;
}

export const TLS_DEFAULT_OPTIONS: TlsFeatureOptions = { enabled: true, maxFiles: DEFAULT_TLS_MAX_FILES };

/** Period of the rescan of every selected process's executable mappings. */
export const TLS_RESCAN_MS = 2000;
/**
 * Processes a tick scans at most: reading one's maps costs ~1 ms (node's
 * are long), classifying a new large binary tens of ms, so with --all a
 * rescan is spread over ticks instead of blocking the JS thread at once.
 */
export const TLS_SCANS_PER_TICK = 32;

export const UPROBE_PMU = '/sys/bus/event_source/devices/uprobe';

export const TLS_METRICS: readonly AgentMetric[] = [
  ...TLS_KERNEL_METRICS,
  { field: 'tlsFiles', name: 'ebpf_otel.tls.files', kind: 'gauge', unit: '{file}', description: 'TLS library files (device + inode) with the uprobes attached now.' },
  { field: 'tlsProcessesByLibrary', name: 'ebpf_otel.tls.processes', kind: 'gauge', unit: '{process}', description: 'Selected processes that map a TLS library, per library (openssl, boringssl, gnutls, go, java).', attribute: 'ebpf_otel.tls.library' },
  { field: 'tlsProcessesUnprobedByLibrary', name: 'ebpf_otel.tls.unprobed_processes', kind: 'gauge', unit: '{process}', description: 'Selected processes with a TLS library the agent does not probe, per library: their encrypted connections are not parsed.', attribute: 'ebpf_otel.tls.library' },
  { field: 'tlsAttaches', name: 'ebpf_otel.tls.attaches', kind: 'counter', unit: '{file}', description: 'TLS library files attached (a file detached and attached again counts twice).' },
  { field: 'tlsAttachTime', name: 'ebpf_otel.tls.attach_time', kind: 'counter', unit: 's', description: 'Time spent attaching the TLS uprobes, all files (finding the probe points in the file comes before and is not in it).' },
  { field: 'tlsAttachFailures', name: 'ebpf_otel.tls.attach_failures', kind: 'counter', unit: '{file}', description: 'TLS library files whose uprobes failed to attach (each file once).' },
  { field: 'tlsFilesOverBound', name: 'ebpf_otel.tls.files_over_bound', kind: 'counter', unit: '{file}', description: 'TLS library files not probed because tls.max_files were probed already.' },
];

/** A selected process as the last scan found it. */
interface ProcessTls {
  signature: string;
  libraries: MappedTlsLibrary[];
}

export interface TlsFeatureDeps {
  /** /proc root (the agent's procfs). */
  readonly procRoot: string;
  /** Whether the kernel has uprobes (default: the uprobe PMU in sysfs). */
  readonly uprobesAvailable?: () => boolean;
  /** Every process is selected (--all): scan /proc, not the selection's list. */
  readonly selectAll: boolean;
  /** The agent's own pid (never scanned). */
  readonly agentPid: number;
}

export interface TlsFeature extends AgentFeature {
  readonly manager: UprobeAttachManager;
  /** Scans every selected process now, then detaches what nobody uses (tests; the ticks do it every TLS_RESCAN_MS). */
  rescan(): void;
}

export function tlsFeature(o: TlsFeatureOptions | undefined, ctx: AgentContext, deps: TlsFeatureDeps): TlsFeature | undefined {
  const opts = o ?? TLS_DEFAULT_OPTIONS;
  const { logger } = ctx;
  if (!opts.enabled) return undefined;
  const uprobes = (deps.uprobesAvailable ?? (() => fs.existsSync(UPROBE_PMU)))();
  if (!uprobes) {
    // Not a warning: on by default, it is off where it cannot work.
    logger.info(`tls: the kernel has no uprobes (${UPROBE_PMU}): TLS plaintext is not captured`);
    return undefined;
  }
  const discovery = new TlsDiscovery(deps.procRoot);
  const manager = new UprobeAttachManager(() => ctx.engine().uprobeAttacher(), { maxFiles: opts.maxFiles, logger, monotonicNs: ctx.monotonicNs });
  const processes = new Map<number, ProcessTls>();
  let scans = 0;
  /** Processes found with a library the agent does not probe (unsupported kind), per kind, over the run. */
  const unsupportedSeen = new Map<TlsLibraryKind, number>();

  const scan = (tgid: number): void => {
    const maps = discovery.mappings(tgid);
    if (!maps) return;
    scans++;
    const signature = mappingSignature(maps);
    const known = processes.get(tgid);
    if (known && known.signature === signature) return;
    let libraries: MappedTlsLibrary[];
    try {
      libraries = discovery.libraries(tgid, maps);
    } catch (err) {
      logger.warnOnce('tls-scan', `tls: cannot read the libraries of process ${tgid}: ${(err as Error).message}`);
      return;
    }
    const unsupportedBefore = new Set(known?.libraries.filter((l) => l.library.unprobedReason !== undefined).map((l) => l.library.kind));
    for (const l of libraries) {
      if (l.library.unprobedReason === undefined || unsupportedBefore.has(l.library.kind)) continue;
      unsupportedBefore.add(l.library.kind);
      unsupportedSeen.set(l.library.kind, (unsupportedSeen.get(l.library.kind) ?? 0) + 1);
    }
    processes.set(tgid, { signature, libraries });
    const uses: FileUse[] = libraries
      .filter((l) => l.library.unprobedReason === undefined)
      .map((l) => ({ key: l.key, attachPath: l.attachPath, library: l.library }));
    manager.setProcessFiles(tgid, uses);
  };

  const scanner = attachingScan(
    ctx,
    {
      procRoot: deps.procRoot,
      selectAll: deps.selectAll,
      agentPid: deps.agentPid,
      periodMs: TLS_RESCAN_MS,
      perTick: TLS_SCANS_PER_TICK,
      label: 'tls',
      unattachable: 'TLS libraries are not probed',
    },
    manager,
    scan,
    // Exec, exit or deselection: the old program's mappings are gone.
    (tgid) => processes.delete(tgid),
  );
  const rescan = (): void => scanner.rescan();

  const countBy = (probed: boolean | undefined): Record<string, number> => {
    const out: Partial<Record<TlsLibraryKind, number>> = {};
    for (const p of processes.values()) {
      const kinds = new Set<TlsLibraryKind>();
      for (const l of p.libraries) {
        const isProbed = l.library.unprobedReason === undefined && manager.fileState(l.key)?.state === 'attached';
        if (probed === undefined || isProbed === probed) kinds.add(l.library.kind);
      }
      for (const k of kinds) out[k] = (out[k] ?? 0) + 1;
    }
    return out as Record<string, number>;
  };

  /** The gauges as they stood when the probes were detached at stop. */
  let atStop: { files: number; all: Record<string, number>; unprobed: Record<string, number> } | undefined;

  return {
    name: 'tls',
    groups: { tls: true },
    healthMetrics: TLS_METRICS,
    manager,
    rescan,
    // The processes running at start are scanned before the agent says it
    // is ready: a request right after would otherwise pass unprobed.
    started: rescan,
    onLifecycle: (e) => scanner.onLifecycle(e),
    afterBatch: () => scanner.afterBatch(),
    tick: (nowNs) => scanner.tick(nowNs),
    beforeCaptureStop() {
      const s = manager.stats();
      // The final export comes after the detach: it reports the processes as they were probed, not as unprobed.
      atStop = { files: s.files, all: countBy(undefined), unprobed: countBy(false) };
      if (s.attaches > 0) logger.debug(`tls: ${s.files} files probed at stop; attach time ${(s.attachNs / 1e6).toFixed(1)} ms over ${s.attaches} files (slowest ${(s.slowestAttachNs / 1e6).toFixed(1)} ms)`);
      manager.detachAll();
    },
    health(): AgentHealth {
      const s = manager.stats();
      return {
        ...tlsKernelHealth(ctx.engine().stats().kernel),
        tlsFiles: atStop?.files ?? s.files,
        tlsProcessesByLibrary: atStop?.all ?? countBy(undefined),
        tlsProcessesUnprobedByLibrary: atStop?.unprobed ?? countBy(false),
        tlsAttaches: s.attaches,
        tlsAttachTime: s.attachNs / 1e9,
        tlsAttachFailures: s.attachFailures,
        tlsFilesOverBound: s.filesOverBound,
      };
    },
    summary() {
      const s = manager.stats();
      const unprobed = [...unsupportedSeen].map(([k, n]) => `${k} ${n}`);
      return [
        `tls: ${s.attaches} library files probed (${s.detaches} detached after their last process), ${s.attachFailures} failed to attach, ` +
          `${s.filesOverBound} over the bound of ${opts.maxFiles}; attach time ${(s.attachNs / 1e6).toFixed(1)} ms in all, slowest file ${(s.slowestAttachNs / 1e6).toFixed(1)} ms; ` +
          `${scans} process scans` +
          (unprobed.length > 0 ? `; processes seen with a TLS library not probed: ${unprobed.join(', ')}` : ''),
      ];
    },
  };
}
