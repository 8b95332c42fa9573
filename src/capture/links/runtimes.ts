// The runtimes whose probes link requests (one line each). The Node.js
// preload needs no entry: its marks come from a syscall tracepoint of the
// links group (bpf/link_node.bpf.h), whatever the executable.

import type { LinkRuntime } from './runtime';

export const LINK_RUNTIMES: readonly LinkRuntime[] = [];
