// One complete set of native session options for a session that selects no
// process: what `doctor` probes with and what the native eBPF tests start
// from. Both override only what their purpose needs, so a new session option
// gets its default here, once. (`run` builds its options from its resolved
// configuration instead.)

import type { SocketTraceSessionOptions } from './native-binding';

export function defaultSessionOptions(): SocketTraceSessionOptions {
  return {
    config: {
      agentTgid: process.pid,
      captureBytes: 4096,
      wakeupBytes: 0,
      selectAll: false,
      captureUdp: false,
      followForks: false,
      reportExecs: false,
      pidnsDev: 0n,
      pidnsIno: 0n,
      initialMode: 0,
    },
    groups: { sockets: true, syscalls: false, tcp: false, tls: false, links: false },
    tcpPeerEntries: 1024,
    syscalls: { slowNs: 0, slowCostNs: 0, sigreturnNr: 0, maxHistograms: 1024, fdSyscalls: [] },
    ringBufferBytes: 4 << 20,
    batchBytes: 256 << 10,
    maxPendingBatches: 16,
    pollTimeoutMs: 20,
    batchDelayMs: 0,
    onBatch: () => {},
  };
}
