// Giving memory back after a burst of connections (issue 12, item 6).
//
// What a burst leaves behind is not a leak of ours: every table the agent
// keeps per connection is emptied when the connection closes. With 10 000
// idle keep-alive connections opened and closed (bench/capacity.ts, idle
// phase), the JS heap in use falls back from about 60 to 15 MiB, but only at
// the next major GC, and an agent that is idle after the burst allocates too
// little to reach one: V8 keeps its grown old space and its new space at the
// 32 MiB maximum, and glibc keeps what the poll thread's batches and the
// exporters freed in its arenas. RSS stayed at the burst's peak (180 MiB,
// idle 88 MiB).
//
// So the agent watches the one number that says a burst is over, the
// connections it follows, and when they fall far below their peak it asks
// both allocators to give back what is free (the addon's releaseFreeMemory:
// V8's LowMemoryNotification, then malloc_trim(0)); and once more a few
// seconds later, for what the burst's closes still held then (records on
// their way to export, trace-graph entries). Plain full GCs are not enough:
// measured, two back to back left 144 MiB, LowMemoryNotification 104 MiB.
// A release costs a few full GCs of the live heap on the JS thread (60-90 ms
// measured with a 17 MiB heap), so it runs only after a large drop (to a
// quarter of the peak or below, and at least minDrop connections fewer) and
// at most once a minute (with its follow-up); the check, every tick, is a
// few comparisons. minDrop
// is low (100) on purpose: what is given back is mostly the heap that grew
// with any busy period (V8's new space, pooled pages), not the few KiB each
// connection held; after 200 connections it was 23 MiB above idle, 9 after a
// release.

import { loadedNativeBinding } from '../capture/native-binding';

export interface MemoryReleasePolicy {
  /** Release when the count falls to this fraction of its peak or below, */
  readonly fraction: number;
  /** and at least this many below the peak (a small table holds little). */
  readonly minDrop: number;
  /** At most one release (with its follow-up) in this many milliseconds. */
  readonly minIntervalMs: number;
  /** The follow-up release comes this long after the first. */
  readonly followUpMs: number;
}

export const MEMORY_RELEASE_POLICY: MemoryReleasePolicy = { fraction: 0.25, minDrop: 100, minIntervalMs: 60_000, followUpMs: 5000 };

/**
 * Decides when a burst is over: fed the count of what the agent holds (the
 * connections it follows) with a monotonic time, says when to release, and
 * again followUpMs later. The peak is measured since the last release, so a
 * burst that ends slowly (a drop to a quarter, then the rest) releases again
 * a minute later.
 */
export class BurstEnd {
  private peak = 0;
  private lastReleaseMs = -Infinity;
  private followUpAtMs: number | undefined;
  /** Releases asked for, follow-ups included. */
  releases = 0;

  constructor(private readonly policy: MemoryReleasePolicy = MEMORY_RELEASE_POLICY) {}

  /** True when memory should be released now (counted as done). */
  observe(held: number, nowMs: number): boolean {
    if (held > this.peak) this.peak = held;
    if (this.followUpAtMs !== undefined && nowMs >= this.followUpAtMs) {
      this.followUpAtMs = undefined;
      this.releases++;
      return true;
    }
    const p = this.policy;
    if (held > this.peak * p.fraction || this.peak - held < p.minDrop || nowMs - this.lastReleaseMs < p.minIntervalMs) return false;
    this.peak = held;
    this.lastReleaseMs = nowMs;
    this.followUpAtMs = nowMs + p.followUpMs;
    this.releases++;
    return true;
  }
}

/**
 * Decides the one release after start-up (issue 13). Start-up allocates what
 * it never needs again: libbpf's CO-RE load parses the kernel's BTF (several
 * MiB of mallocs, freed), the modules' source and first compilations, the
 * configuration; V8's new space grows to take it. Left alone, V8's memory
 * reducer gives part of it back some 40 s later, glibc keeps its share.
 * Measured with the idle agent of bench/agent-cost.ts (one selected process,
 * a release at 4 s): RSS 70.4 MiB at 7 s against 78.5 without (new space
 * committed 7.0 -> 2.0 MiB, old space 11.0 -> 9.0).
 *
 * Once, at the first tick at least settleMs after the first one whose
 * previous tick delivered at most quietBatches batches: an agent started
 * under load keeps what it uses, and pays no full GCs for nothing (after
 * maxWaitMs it stops asking; a release for a burst before then counts as
 * this one). Fed the batches delivered so far (a counter) and a monotonic
 * time.
 */
export class StartupSettle {
  private startMs: number | undefined;
  private lastBatches = 0;
  private done = false;

  constructor(private readonly policy: StartupSettlePolicy = STARTUP_SETTLE_POLICY) {}

  /** Still waiting to release (the caller can skip reading its counter once this is false). */
  get pending(): boolean {
    return !this.done;
  }

  /** A release happened for another reason: it gave back what start-up left too. */
  released(): void {
    this.done = true;
  }

  /** True once: the start-up has settled and the agent is quiet; release now. */
  observe(batchesDelivered: number, nowMs: number): boolean {
    if (this.done) return false;
    const delivered = batchesDelivered - this.lastBatches;
    this.lastBatches = batchesDelivered;
    if (this.startMs === undefined) {
      this.startMs = nowMs;
      return false;
    }
    const since = nowMs - this.startMs;
    if (since > this.policy.maxWaitMs) this.done = true;
    if (this.done || since < this.policy.settleMs || delivered > this.policy.quietBatches) return false;
    this.done = true;
    return true;
  }
}

export interface StartupSettlePolicy {
  /** Not before this long after the first tick (the programs attached, the first /proc scans done). */
  readonly settleMs: number;
  /** Quiet: at most this many batches delivered over the tick before. */
  readonly quietBatches: number;
  /** Not after this long: a busy agent uses what it holds, and V8's own reducer has run by then. */
  readonly maxWaitMs: number;
}

export const STARTUP_SETTLE_POLICY: StartupSettlePolicy = { settleMs: 3000, quietBatches: 10, maxWaitMs: 60_000 };

/** What a release did: undefined without the addon (a fake kernel session), else whether malloc_trim released memory. */
export type MemoryReleased = { readonly trimmed: boolean } | undefined;

/** Gives free memory back through the addon, if it is loaded (never loads it). */
export function releaseFreeMemory(): MemoryReleased {
  const binding = loadedNativeBinding();
  return binding ? { trimmed: binding.releaseFreeMemory() } : undefined;
}
