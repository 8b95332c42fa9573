// Syscall latency: the syscalls group's configuration and maps (records:
// bpf/syscall_latency.h; programs: bpf/syscall_latency.bpf.h).
//
// Plain C++ (no N-API): every failure is a BpfError. Part of a TraceProgram,
// which owns the skeleton this borrows. The group's maps exist whether or not
// its programs are loaded.
#ifndef EBPF_OTEL_SYSCALL_LATENCY_MAPS_H
#define EBPF_OTEL_SYSCALL_LATENCY_MAPS_H

#include <linux/types.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "socket_trace.h"

struct socket_trace_bpf;

namespace ebpf_otel {

struct SyscallLatencyOptions {
  syscall_config config{};
  uint32_t max_histograms = 16384;    // syscall_hists max_entries
  std::vector<uint32_t> fd_syscalls;  // numbers (< SYSLAT_MAX_NR) whose first argument is an fd
};

class SyscallLatencyMaps {
 public:
  // Between open and load: the .rodata config and the size of syscall_hists.
  void BeforeLoad(socket_trace_bpf* skel, const SyscallLatencyOptions& options, uint64_t log_mark);
  // After load, before anything is attached: marks the fd-based syscalls.
  void AfterLoad(const SyscallLatencyOptions& options, uint64_t log_mark);

  // A live process or cgroup was deselected: makes every recorded syscall
  // start stale (see syslat_epoch in bpf/syscall_latency.bpf.h), so the calls
  // in flight in every selected process at that moment go unmeasured
  // (counted as no start).
  void BumpEpoch(uint64_t log_mark);

  // Every entry of `syscall_hists` as struct syscall_hist_record, back to
  // back (batch lookups; the values are cumulative, nothing is reset).
  std::vector<uint8_t> ReadHistograms() const;
  // Deletes the entries with these keys (struct syscall_hist_key each);
  // keys no longer there are skipped. Returns how many were deleted.
  size_t DeleteHistograms(const std::vector<syscall_hist_key>& keys);

 private:
  socket_trace_bpf* skel_ = nullptr;
  uint32_t epoch_ = 0;  // the value last written to syslat_epoch
};

}  // namespace ebpf_otel

#endif  // EBPF_OTEL_SYSCALL_LATENCY_MAPS_H
