// Runtime links: parents that only the runtime knows. Loads the links group
// (its Node.js preload marker is a tracepoint), finds the selected processes
// whose executable is a runtime the agent probes (src/capture/links/:
// nginx, Go) and keeps that runtime's uprobes attached once per executable
// file (uprobes/attach-manager.ts), with the file's layout in the runtime's
// per-file table. The marks the probes make go through socket capture to the
// trace graph like any event; the graph checks them (a process whose marks
// name fds that are no followed sockets has its rule switched off, logged and
// counted there). This feature only manages attachments and reports on them.

import * as fs from 'node:fs';
import { ElfError, ElfFile } from '../../capture/elf/elf';
import type { LinkRule } from '../../capture/events';
import { LINK_FILE_SLOTS, type LinkProbes, type LinkRuntime } from '../../capture/links/runtime';
import { LINK_RUNTIMES } from '../../capture/links/runtimes';
import { UprobeAttachManager } from '../../capture/uprobes/attach-manager';
import type { AgentHealth, AgentMetric } from '../../otel/metrics';
import type { AgentContext, AgentFeature } from '../feature';
import { attachingScan } from './process-scan';
import { UPROBE_PMU } from './tls';

export interface LinkingFeatureOptions {
  readonly enabled: boolean;
  readonly nginx: boolean;
  readonly go: boolean;
}

export const LINKING_DEFAULT_OPTIONS: LinkingFeatureOptions = { enabled: true, nginx: true, go: true };

/** The cycle over every selected process's executable: a new nginx worker or Go binary is found by its exec first. */
export const LINKING_RESCAN_MS = 5000;
const LINKING_SCANS_PER_TICK = 32;
/** Executables classified and remembered at most. */
const MAX_CLASSIFIED = 4096;

export const LINKING_METRICS: readonly AgentMetric[] = [
  { field: 'linkProcesses', name: 'ebpf_otel.links.processes', kind: 'gauge', unit: '{process}', description: 'Selected processes whose runtime is probed for parents now, per runtime (nginx, go).', attribute: 'ebpf_otel.link' },
  {
    field: 'linkUnprobedProcesses',
    name: 'ebpf_otel.links.unprobed_processes',
    kind: 'gauge',
    unit: '{process}',
    description: 'Selected processes of a runtime the agent recognises but cannot probe (the reason is logged once per executable), per runtime.',
    attribute: 'ebpf_otel.link',
  },
  { field: 'linkAttachFailures', name: 'ebpf_otel.links.attach_failures', kind: 'counter', unit: '{file}', description: 'Executables whose runtime probes failed to attach or whose layout could not be stored (each file once).' },
];

/** An executable as classified: its runtime and probes, or null for none. */
interface Classified {
  readonly rule: LinkRule;
  readonly probes: LinkProbes;
  /** Its layout could not be stored: not probed. */
  failed?: string;
}

export interface LinkingFeatureDeps {
  readonly procRoot: string;
  readonly uprobesAvailable?: () => boolean;
  readonly selectAll: boolean;
  readonly agentPid: number;
  /** The runtimes to look for (default: LINK_RUNTIMES). */
  readonly runtimes?: readonly LinkRuntime[];
  /** Told what runtime a selected process runs (undefined: none that marks), probed or not: the trace graph takes no thread guess for it. */
  readonly onProcessRuntime?: (tgid: number, rule: LinkRule | undefined) => void;
}

export interface LinkingFeature extends AgentFeature {
  readonly manager: UprobeAttachManager;
  rescan(): void;
}

export function linkingFeature(o: LinkingFeatureOptions | undefined, ctx: AgentContext, deps: LinkingFeatureDeps): LinkingFeature | undefined {
  const opts = o ?? LINKING_DEFAULT_OPTIONS;
  const { logger } = ctx;
  if (!opts.enabled) return undefined;
  // The Node.js preload's marks need only a tracepoint: without uprobes the group still loads, nothing is probed.
  const uprobes = (deps.uprobesAvailable ?? (() => fs.existsSync(UPROBE_PMU)))();
  if (!uprobes) logger.info(`linking: the kernel has no uprobes (${UPROBE_PMU}): nginx and Go are not probed (the Node.js preload's marks are read)`);
  // Every runtime is recognised, even one turned off: its process then takes no thread guess either (they prove nothing there).
  const runtimes = deps.runtimes ?? LINK_RUNTIMES;
  const off = (rule: LinkRule): string | undefined =>
    !uprobes ? 'the kernel has no uprobes' : !opts[rule as 'nginx' | 'go'] ? `turned off (linking.${rule}: false, --no-link-${rule})` : undefined;
  const manager = new UprobeAttachManager(() => ctx.engine().uprobeAttacher(), {
    maxFiles: LINK_FILE_SLOTS * runtimes.length,
    logger,
    monotonicNs: ctx.monotonicNs,
    label: 'linking',
    boundSetting: `${LINK_FILE_SLOTS} executables per runtime`,
  });
  /** By executable identity ("dev:ino"). */
  const classified = new Map<string, Classified | null>();
  /** Per process: its executable's identity and runtime (undefined: none). */
  const processes = new Map<number, { key: string; rule: LinkRule | undefined; probed: boolean }>();
  /** Each executable's slot in its runtime's per-file table, by identity: kept apart from the classification cache, which may be cleared, so a file never takes a second slot. */
  const slots = new Map<string, number>();
  const slotsUsed: Record<string, number> = {};
  const reported = new Set<string>();
  let attachFailures = 0;

  const classify = (key: string, path: string): Classified | null => {
    let c = classified.get(key);
    if (c !== undefined) return c;
    c = null;
    if (runtimes.length > 0) {
      let elf: ElfFile | undefined;
      try {
        elf = ElfFile.open(path);
        for (const r of runtimes) {
          const probes = r.classify(elf, path);
          if (probes) {
            c = { rule: r.rule, probes };
            break;
          }
        }
      } catch (err) {
        if (!(err instanceof ElfError)) throw err;
        logger.debug(`linking: cannot read ${path}: ${err.message}`);
      } finally {
        elf?.close();
      }
    }
    if (classified.size >= MAX_CLASSIFIED) classified.clear();
    classified.set(key, c);
    return c;
  };

  /** Stores the file's layout in its runtime's table: its slot, undefined when it has no layout; false (logged, counted) when it cannot. */
  const placeLayout = (key: string, c: Classified, path: string): number | undefined | false => {
    if (c.failed !== undefined) return false;
    if (c.probes.offsets === undefined) return undefined;
    const placed = slots.get(key);
    if (placed !== undefined) return placed;
    const fail = (why: string): false => {
      c.failed = why;
      attachFailures++;
      logger.warn(`linking: ${path} (${c.rule}): not probed: ${why}`);
      return false;
    };
    const used = slotsUsed[c.rule] ?? 0;
    if (used >= LINK_FILE_SLOTS) return fail(`${LINK_FILE_SLOTS} ${c.rule} executables probed already`);
    const attacher = ctx.engine().uprobeAttacher();
    if (!attacher?.updateLinkMap) return fail('this kernel session cannot store a layout');
    const slotKey = Buffer.alloc(4);
    slotKey.writeUInt32LE(used);
    try {
      attacher.updateLinkMap(c.probes.offsets.map, slotKey, c.probes.offsets.value);
    } catch (err) {
      return fail(`cannot store its layout: ${(err as Error).message.split('\n')[0]}`);
    }
    slotsUsed[c.rule] = used + 1;
    slots.set(key, used);
    return used;
  };

  const scan = (tgid: number): void => {
    const path = `${deps.procRoot}/${tgid}/exe`;
    let key: string;
    try {
      const st = fs.statSync(path, { bigint: true });
      key = `${st.dev}:${st.ino}`;
    } catch {
      return; // gone, or a kernel thread
    }
    const before = processes.get(tgid);
    if (before?.key === key) return;
    const c = classify(key, path);
    deps.onProcessRuntime?.(tgid, c?.rule);
    const unprobed = (): void => {
      processes.set(tgid, { key, rule: c?.rule, probed: false });
      manager.setProcessFiles(tgid, []);
    };
    if (c === null) return unprobed();
    const turnedOff = off(c.rule);
    if (turnedOff !== undefined || c.probes.unprobedReason !== undefined) {
      if (turnedOff === undefined && !reported.has(key)) {
        reported.add(key);
        logger.warn(`linking: process ${tgid} runs ${c.rule}${c.probes.version ? ' ' + c.probes.version : ''} that cannot be probed: ${c.probes.unprobedReason}; its calls take no parent from it (counted in ebpf_otel.links.unprobed_processes)`);
      }
      return unprobed();
    }
    const slot = placeLayout(key, c, path);
    if (slot === false) return unprobed();
    const probes = c.probes.probes.map((p) => (slot !== undefined ? { ...p, cookie: slot } : p));
    manager.setProcessFiles(tgid, [{ key, attachPath: path, library: { kind: c.rule, ...(c.probes.version ? { version: c.probes.version } : {}), probes } }]);
    processes.set(tgid, { key, rule: c.rule, probed: true });
  };

  const scanner = attachingScan(
    ctx,
    {
      procRoot: deps.procRoot,
      selectAll: deps.selectAll,
      agentPid: deps.agentPid,
      periodMs: LINKING_RESCAN_MS,
      perTick: LINKING_SCANS_PER_TICK,
      label: 'linking',
      unattachable: 'runtimes are not probed',
      // Without uprobes the scan still tells the trace graph which processes run a runtime.
      scanAnyway: !uprobes,
    },
    manager,
    scan,
    (tgid) => processes.delete(tgid),
  );

  const countBy = (probed: boolean): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const r of runtimes) out[r.rule] = 0;
    for (const p of processes.values()) {
      if (p.rule === undefined) continue;
      const isProbed = p.probed && manager.fileState(p.key)?.state === 'attached';
      if (isProbed === probed) out[p.rule] = (out[p.rule] ?? 0) + 1;
    }
    return out;
  };
  let atStop: { probed: Record<string, number>; unprobed: Record<string, number> } | undefined;

  return {
    name: 'linking',
    groups: { links: true },
    healthMetrics: LINKING_METRICS,
    manager,
    rescan: () => scanner.rescan(),
    started: () => scanner.rescan(),
    onLifecycle: (e) => scanner.onLifecycle(e),
    afterBatch: () => scanner.afterBatch(),
    tick: (nowNs) => scanner.tick(nowNs),
    beforeCaptureStop() {
      atStop = { probed: countBy(true), unprobed: countBy(false) };
      manager.detachAll();
    },
    health(): AgentHealth {
      const s = manager.stats();
      return {
        linkProcesses: atStop?.probed ?? countBy(true),
        linkUnprobedProcesses: atStop?.unprobed ?? countBy(false),
        linkAttachFailures: s.attachFailures + attachFailures,
      };
    },
    summary() {
      const s = manager.stats();
      const probed = atStop?.probed ?? countBy(true);
      return [
        `linking: runtimes probed ${runtimes.filter((r) => off(r.rule) === undefined).map((r) => r.rule).join(', ') || 'none'} (and the Node.js preload's marks); ` +
          `processes probed ${Object.entries(probed).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}; ` +
          `${s.attaches} executables attached, ${s.attachFailures + attachFailures} failed; ${scanner.scans()} process scans`,
      ];
    },
  };
}
