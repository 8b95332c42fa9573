// Looks at the selected processes' executable files for the features that
// attach uprobes per file (tls, linking): each process when it execs (after
// the batch that carried the exec, and again at the next tick: the dynamic
// loader maps libraries after exec), and every rescan period in a cycle over
// every selected process (at most `perTick` a tick), which catches libraries
// loaded later with dlopen (Python's `import ssl`) and forked children. The
// feature's hooks say what a look is; this module only says when.

import * as fs from 'node:fs';
import type { ExecEvent, ExitEvent } from '../../capture/events';
import type { UprobeAttachManager } from '../../capture/uprobes/attach-manager';
import type { AgentContext } from '../feature';

export interface ProcessScanHooks {
  /** Looks at one selected process now. */
  scan(tgid: number): void;
  /** The process exec'd, exited, or is no longer selected: what was found of it is stale. */
  forget(tgid: number): void;
  /** A cycle over every selected process ended (files nobody uses may go now). */
  cycleEnd(): void;
  /** Whether a look can do anything now (the session can attach uprobes). */
  usable(): boolean;
}

export interface ProcessScanOptions {
  /** /proc root (the agent's procfs). */
  readonly procRoot: string;
  /** Every process is selected (--all): list /proc, not the selection. */
  readonly selectAll: boolean;
  /** The agent's own pid (never scanned). */
  readonly agentPid: number;
  /** Period of the cycle over every selected process. */
  readonly periodMs: number;
  /** Processes looked at per tick at most: reading one's maps costs ~1 ms, classifying a new large binary tens of ms. */
  readonly perTick: number;
}

export interface ProcessScan {
  /** Scans every selected process now, then ends the cycle (start, tests). */
  rescan(): void;
  onLifecycle(e: ExecEvent | ExitEvent): void;
  afterBatch(): void;
  tick(nowNs: number): void;
  /** Scans done (one process each). */
  scans(): number;
}

export function processScan(ctx: AgentContext, o: ProcessScanOptions, hooks: ProcessScanHooks): ProcessScan {
  /** Exec'd since the last batch end: scanned after it. */
  let pending: number[] = [];
  /** Exec'd during the last tick period: scanned once more at the tick. */
  let fresh = new Set<number>();
  let scans = 0;
  /** Selected processes known to the current cycle, to forget those no longer selected. */
  let known = new Set<number>();
  let cycle: number[] = [];
  let cycleOpen = false;
  let cycleStartNs = -Infinity;

  const scan = (tgid: number): void => {
    if (tgid === o.agentPid) return;
    scans++;
    hooks.scan(tgid);
  };

  const startCycle = (): void => {
    const engine = ctx.engine();
    const selected = o.selectAll ? listPids(o.procRoot).filter((p) => engine.isSelected(p)) : [...engine.selectedProcesses().keys()];
    const alive = new Set(selected);
    // Deselected (or exited without our seeing it): forgotten.
    for (const tgid of known) if (!alive.has(tgid)) hooks.forget(tgid);
    known = alive;
    cycle = selected;
    cycleOpen = true;
  };

  const continueCycle = (n: number): void => {
    if (!cycleOpen) return;
    const engine = ctx.engine();
    for (const tgid of cycle.splice(0, n)) if (engine.isSelected(tgid)) scan(tgid);
    if (cycle.length > 0) return;
    // Even an empty cycle ends so: the last process may have just exited.
    cycleOpen = false;
    hooks.cycleEnd();
  };

  return {
    rescan() {
      if (!hooks.usable()) return;
      startCycle();
      continueCycle(Number.MAX_SAFE_INTEGER);
    },
    onLifecycle(e) {
      hooks.forget(e.tgid);
      if (e.type === 'exec') {
        known.add(e.tgid);
        pending.push(e.tgid);
        fresh.add(e.tgid);
      } else {
        known.delete(e.tgid);
        fresh.delete(e.tgid);
      }
    },
    afterBatch() {
      if (pending.length === 0) return;
      const due = pending;
      pending = [];
      if (!hooks.usable()) return;
      for (const tgid of due) if (ctx.engine().isSelected(tgid)) scan(tgid);
    },
    tick(nowNs) {
      if (!hooks.usable()) return;
      if (fresh.size > 0) {
        const due = fresh;
        fresh = new Set();
        for (const tgid of due) if (ctx.engine().isSelected(tgid)) scan(tgid);
      }
      if (!cycleOpen && nowNs - cycleStartNs >= o.periodMs * 1e6) {
        cycleStartNs = nowNs;
        startCycle();
      }
      continueCycle(o.perTick);
    },
    scans: () => scans,
  };
}

/**
 * The scan of a feature that attaches uprobes per file with `manager`: a
 * process forgotten (exec, exit, deselection) is no longer a user of its
 * files, which go at the cycle's end if nobody else uses them; nothing is
 * scanned while the session cannot attach (one line says so), unless
 * `scanAnyway` (the scan has a use of its own).
 */
export function attachingScan(
  ctx: AgentContext,
  o: ProcessScanOptions & { readonly label: string; readonly unattachable: string; readonly scanAnyway?: boolean },
  manager: UprobeAttachManager,
  scan: (tgid: number) => void,
  forget: (tgid: number) => void,
): ProcessScan {
  let logged = false;
  return processScan(ctx, o, {
    scan,
    // Its files stay attached until the next settle, so a rescan finding them still in use keeps them.
    forget: (tgid) => {
      forget(tgid);
      manager.processExited(tgid);
    },
    cycleEnd: () => manager.settle(),
    usable: () => {
      if (o.scanAnyway || ctx.engine().uprobeAttacher()) return true;
      if (!logged) {
        logged = true;
        ctx.logger.info(`${o.label}: this kernel session cannot attach uprobes: ${o.unattachable}`);
      }
      return false;
    },
  });
}

function listPids(procRoot: string): number[] {
  try {
    return fs.readdirSync(procRoot).filter((n) => /^\d+$/.test(n)).map(Number);
  } catch {
    return [];
  }
}
