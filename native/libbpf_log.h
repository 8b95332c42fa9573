// libbpf's messages, captured instead of printed.
//
// libbpf reports the reason for most failures (verifier log, missing
// tracepoint, relocation errors) only through its print callback. We keep the
// last lines in a bounded buffer so an error can quote them, and print
// nothing. EBPF_OTEL_LIBBPF_DEBUG=1 in the environment also echoes every
// message, debug level included, to stderr.
//
// The print callback is process-wide (libbpf_set_print), so lines from
// sessions in other threads may interleave; a mark taken before an operation
// narrows the quote to what was logged since.
#ifndef EBPF_OTEL_LIBBPF_LOG_H
#define EBPF_OTEL_LIBBPF_LOG_H

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ebpf_otel {

// Installs the print callback. Idempotent; called once at module load.
void InstallLibbpfLog();

// Sequence number of the next line to be logged.
uint64_t LibbpfLogMark();

// The lines logged since `mark` (oldest first), at most the last `max_lines`.
std::vector<std::string> LibbpfLogSince(uint64_t mark, size_t max_lines);

}  // namespace ebpf_otel

#endif  // EBPF_OTEL_LIBBPF_LOG_H
