// The kernel's TLS counters (group "tls", bpf/uprobes/) as
// agent health metrics: how SSL objects were tied to their connections, the
// ciphertext muted, and the plaintext lost for want of a tie. The TLS feature
// (features/tls.ts) lists these among its health metrics and fills them from
// the capture engine's kernel stats with tlsKernelHealth().

import type { KernelStatName } from '../../capture/layout';
import type { AgentHealth, AgentMetric } from '../../otel/metrics';

export const TLS_KERNEL_METRICS: readonly AgentMetric[] = [
  { field: 'tlsTiesByKind', name: 'ebpf_otel.tls.ties', kind: 'counter', unit: '{tie}', description: 'TLS sessions tied to their connection, per evidence (nested: a socket syscall inside the OpenSSL call; write: the thread\'s next socket write after it; go_fd: the socket fd read from a Go crypto/tls Conn).', attribute: 'ebpf_otel.tie' },
  { field: 'tlsTiesReplaced', name: 'ebpf_otel.tls.ties_replaced', kind: 'counter', unit: '{tie}', description: 'Tied TLS sessions moved to another connection by a nested socket syscall.' },
  { field: 'tlsTiesStale', name: 'ebpf_otel.tls.stale_ties', kind: 'counter', unit: '{tie}', description: 'Ties found pointing at a connection that had closed: removed.' },
  { field: 'tlsUntiedAtFree', name: 'ebpf_otel.tls.freed_ties', kind: 'counter', unit: '{tie}', description: 'Ties removed when their TLS session was freed.' },
  { field: 'tlsTableFull', name: 'ebpf_otel.tls.tie_table_full', kind: 'counter', unit: '{tie}', description: 'Ties the kernel could not store.' },
  { field: 'tlsTableEvicted', name: 'ebpf_otel.tls.tie_table_evicted', kind: 'counter', unit: '{tie}', description: 'Ties pushed out of the bounded kernel table by newer ones.' },
  { field: 'tlsUntiedCalls', name: 'ebpf_otel.tls.untied_calls', kind: 'counter', unit: '{call}', description: 'TLS reads and writes on a session tied to no connection: their plaintext was not shipped.' },
  { field: 'tlsUntiedBytes', name: 'ebpf_otel.tls.untied_bytes', kind: 'counter', unit: 'By', description: 'Plaintext bytes of those calls.' },
  { field: 'tlsGoLayoutMismatches', name: 'ebpf_otel.tls.go_layout_mismatches', kind: 'counter', unit: '{call}', description: 'Go crypto/tls calls whose Conn did not hold a TCP socket where Go 1.17-1.23 keep it (another layout, or a wrapped net.Conn): not captured.' },
  { field: 'tlsGoReturnsMissed', name: 'ebpf_otel.tls.go_returns_missed', kind: 'counter', unit: '{call}', description: 'Go crypto/tls calls whose return no probe saw (the goroutine\'s next call replaced it): their plaintext was not captured.' },
  { field: 'tlsCiphertextSyscalls', name: 'ebpf_otel.tls.ciphertext_syscalls', kind: 'counter', unit: '{syscall}', description: 'Socket data syscalls on TLS connections: ciphertext, counted, not shipped.' },
  { field: 'tlsCiphertextBytes', name: 'ebpf_otel.tls.ciphertext_bytes', kind: 'counter', unit: 'By', description: 'Ciphertext bytes those syscalls moved.' },
];

/** The fields of TLS_KERNEL_METRICS from the kernel's counters (CaptureStats.kernel). */
export function tlsKernelHealth(k: Readonly<Record<KernelStatName, number>>): AgentHealth {
  return {
    tlsTiesByKind: { nested: k.tls_ties_nested, write: k.tls_ties_write, go_fd: k.tls_go_marked },
    tlsGoLayoutMismatches: k.tls_go_layout,
    tlsGoReturnsMissed: k.tls_go_return_missed,
    tlsTiesReplaced: k.tls_ties_replaced,
    tlsTiesStale: k.tls_ties_stale,
    tlsUntiedAtFree: k.tls_untied_at_free,
    tlsTableFull: k.tls_ssl_conns_full,
    tlsTableEvicted: k.tls_ssl_conns_evicted,
    tlsUntiedCalls: k.tls_untied_calls,
    tlsUntiedBytes: k.tls_untied_bytes,
    tlsCiphertextSyscalls: k.tls_ciphertext_syscalls,
    tlsCiphertextBytes: k.tls_ciphertext_bytes,
  };
}
