// What a runtime's link probes look like to the linking feature (issue 17's
// contract, /tmp/links-interface.md): each runtime says, for an ELF file,
// which uprobes follow its requests, or why it cannot.

import type { ElfFile } from '../elf/elf';

export interface LinkRuntime {
  readonly rule: 'nginx' | 'go';
  /** Probes for this ELF file, or undefined when it is not this runtime. `unprobedReason` when it is but cannot be probed (logged + counted). */
  classify(elf: ElfFile, file: string): LinkProbes | undefined;
}

export interface LinkProbes {
  readonly version?: string;
  readonly probes: ReadonlyArray<{ program: string; at: number | string; retprobe: boolean; required: boolean }>;
  /** Written into the runtime's per-binary offsets map slot before attach; the slot index becomes every probe's cookie. */
  readonly offsets?: { map: string; value: Buffer };
  readonly unprobedReason?: string;
}
