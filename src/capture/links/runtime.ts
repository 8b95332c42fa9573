// What a runtime that links requests through uprobes provides (nginx's
// upstream module, Go's net/http): given an executable, whether it is one
// and what to attach. Its probes (bpf/uprobes/) mark client connections with
// the request they work for (struct link_event); the trace graph checks and
// uses the marks (src/correlate/trace-graph.ts, link()).

import type { ElfFile } from '../elf/elf';
import type { FileProbe } from '../uprobes/attach-manager';

export interface LinkProbes {
  /** The runtime's version, when the file says (for logs and the doctor). */
  readonly version?: string;
  /** Without cookies: the linking feature gives every probe of a file the file's slot as its cookie. */
  readonly probes: readonly Omit<FileProbe, 'cookie'>[];
  /**
   * The layout this build's probes read (struct offsets), written into the
   * runtime's per-file table (a BPF array map named link_*, indexed by the
   * slot) before the probes attach.
   */
  readonly offsets?: { readonly map: string; readonly value: Buffer };
  /** It is this runtime, but the agent cannot probe it (why: logged once, counted). */
  readonly unprobedReason?: string;
}

export interface LinkRuntime {
  readonly rule: 'nginx' | 'go';
  /**
   * Probes for the executable `file` (opened as `elf`; `path` is where the
   * agent reads it), or undefined when it is not this runtime. Throws an
   * ElfError when the file cannot be read as it expects.
   */
  classify(elf: ElfFile, path: string): LinkProbes | undefined;
}

/** Files (distinct executables) a runtime's per-file table holds at most: the slots of its link_* map. */
export const LINK_FILE_SLOTS = 64;
