// What a feature of the agent is: one module that declares what it needs of
// the kernel and adds its hooks, health metrics and shutdown. The agent
// (agent.ts) is assembled from them in one place; the capture engine, the
// telemetry and the timers are shared. Every hook is optional.
//
// Order: hooks run in the order the agent lists its features, every batch:
//   onEvent (each event) -> onLifecycle (exec/exit) -> afterBatch
// and every tick (AGENT_TICK_MS): tick. A process's meters retire (exec,
// exit) once every feature that holds its lifecycle event released it, at
// the end of the batch or tick that released it: after that step's records.

import type { CaptureEngine, CaptureOptions, ProgramGroups } from '../capture/capture-engine';
import type { CaptureEvent, ExecEvent, ExitEvent, SlowSyscallEvent } from '../capture/events';
import type { AgentHealth, AgentMetric } from '../otel/metrics';
import type { Telemetry } from '../otel/telemetry';
import type { Section } from '../config/setting';
import type { Logger } from '../util/log';

/** What every feature is given: shared by all of them, built once by the agent. */
export interface AgentContext {
  readonly telemetry: Telemetry;
  readonly logger: Logger;
  /** The capture engine; valid from the first hook call on (the engine is built after the features). */
  engine(): CaptureEngine;
  /** CLOCK_MONOTONIC now, in ns. */
  monotonicNs(): number;
  /** Wall-clock ms now (for rate limits between reads). */
  nowMs(): number;
}

/** Ends one feature's hold on a process's exec or exit; calling it again does nothing. */
export type Release = () => void;

export interface AgentFeature {
  /** For log lines. */
  readonly name: string;
  /** Kernel program groups this feature needs loaded (OR-ed over the features). */
  readonly groups?: Partial<ProgramGroups>;
  /** Capture settings this feature owns (its group's bounds and options). */
  readonly capture?: Partial<Omit<CaptureOptions, 'selectors' | 'groups'>>;
  /** Its own metrics (ebpf_otel.*), filled by health(). */
  readonly healthMetrics?: readonly AgentMetric[];

  /** One capture event, in batch order. */
  onEvent?(e: CaptureEvent): void;
  /** A slow syscall the kernel reported (syscalls group). */
  onSlowSyscall?(e: SlowSyscallEvent): void;
  /**
   * An exec or exit of a traced process: call `hold()` to keep the process's
   * meters until this feature's last measurements of it are recorded, and
   * the returned Release once they are.
   */
  onLifecycle?(e: ExecEvent | ExitEvent, hold: () => Release): void;
  /**
   * Once, after the kernel programs are attached and the processes selected,
   * before the agent says it is ready: work the processes already running
   * need before their first request (the TLS probes of their libraries).
   */
  started?(): void;
  /** After each batch's events. */
  afterBatch?(): void;
  /** Periodic (AGENT_TICK_MS). */
  tick?(nowNs: number): void;
  /** At shutdown, after what the kernel wrote reached the features and before the kernel session closes: last reads of kernel tables. */
  beforeCaptureStop?(): void;
  /** At shutdown, after every hold was released: end and flush what it holds, before telemetry flushes. */
  stop?(nowNs: number): void;
  /** Its health fields now. */
  health?(): AgentHealth;
  /** Lines for the log at exit: what it did, what it lost. */
  summary?(): readonly string[];
}

/**
 * A feature's section of the configuration file, the flags above it, its
 * lines of `run --help`, and how both become the options the feature takes.
 * The schema, the loader, the generated settings table, the example file's
 * test and the flags are built from these (FEATURE_CONFIGS), as they are
 * from the protocols' configs.
 */
export interface FeatureConfig<O> {
  /** Key of its section in the file, and of its options in RunOptions.features. */
  readonly section: string;
  readonly settings: Section;
  /** Flags for node:util parseArgs (names without `--`). */
  readonly flags: Readonly<Record<string, { readonly type: 'string' | 'boolean'; readonly multiple?: boolean }>>;
  /** Its block of `run --help`: a heading line, then one line per flag. */
  readonly usage: readonly string[];
  /** Options from the file's section (validated; undefined without one) and the flags' values (flags win). Throws a UsageError for a bad flag. */
  resolve(file: unknown, flags: Readonly<Record<string, unknown>>): O;
}
