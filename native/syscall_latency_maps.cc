#include "syscall_latency_maps.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>

#include <string>

#include "bpf_error.h"
#include "libbpf_log.h"
#include "socket_trace.skel.h"

namespace ebpf_otel {

void SyscallLatencyMaps::BeforeLoad(socket_trace_bpf* skel, const SyscallLatencyOptions& options, uint64_t mark) {
  skel_ = skel;
  skel_->rodata->syslat_config = options.config;
  int err = bpf_map__set_max_entries(skel_->maps.syscall_hists, options.max_histograms);
  if (err) ThrowBpfError("open", err, "cannot size syscall_hists to " + std::to_string(options.max_histograms) + " entries", mark);
}

void SyscallLatencyMaps::AfterLoad(const SyscallLatencyOptions& options, uint64_t mark) {
  const uint8_t one = 1;
  for (uint32_t nr : options.fd_syscalls) {
    int err = bpf_map__update_elem(skel_->maps.fd_syscalls, &nr, sizeof(nr), &one, sizeof(one), BPF_ANY);
    if (err) ThrowBpfError("update", err, "cannot mark syscall " + std::to_string(nr) + " as fd-based", mark);
  }
}

void SyscallLatencyMaps::BumpEpoch(uint64_t mark) {
  const uint32_t zero = 0;
  const uint32_t next = epoch_ + 1;
  int err = bpf_map__update_elem(skel_->maps.syslat_epoch, &zero, sizeof(zero), &next, sizeof(next), BPF_ANY);
  if (err) ThrowBpfError("update", err, "cannot bump syslat_epoch after a deselection", mark);
  epoch_ = next;
}

std::vector<uint8_t> SyscallLatencyMaps::ReadHistograms() const {
  uint64_t mark = LibbpfLogMark();
  const int fd = bpf_map__fd(skel_->maps.syscall_hists);
  std::vector<uint8_t> out;
  // A hash map's batch walks whole buckets: a bucket holding more entries
  // than the batch fails with ENOSPC, and the batch grows.
  uint32_t batch = 256;
  std::vector<syscall_hist_key> keys;
  std::vector<syscall_hist> values;
  syscall_hist_key token{};  // the kernel's position (a bucket index for hash maps)
  bool first = true;
  for (;;) {
    keys.resize(batch);
    values.resize(batch);
    uint32_t count = batch;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    int err = bpf_map_lookup_batch(fd, first ? nullptr : &token, &token, keys.data(), values.data(), &count, &opts);
    err = err < 0 ? -errno : 0;
    if (err == -ENOSPC && count == 0) {
      if (batch >= (1u << 20)) ThrowBpfError("lookup", -err, "syscall_hists: a hash bucket larger than 2^20 entries", mark);
      batch *= 2;
      continue;
    }
    if (err && err != -ENOENT) ThrowBpfError("lookup", -err, "cannot read syscall_hists", mark);
    for (uint32_t i = 0; i < count; i++) {
      syscall_hist_record record{};
      record.key = keys[i];
      record.hist = values[i];
      const uint8_t* bytes = reinterpret_cast<const uint8_t*>(&record);
      out.insert(out.end(), bytes, bytes + sizeof(record));
    }
    if (err == -ENOENT) break;  // the walk is complete
    first = false;
  }
  return out;
}

size_t SyscallLatencyMaps::DeleteHistograms(const std::vector<syscall_hist_key>& keys) {
  uint64_t mark = LibbpfLogMark();
  size_t deleted = 0;
  for (const syscall_hist_key& key : keys) {
    int err = bpf_map__delete_elem(skel_->maps.syscall_hists, &key, sizeof(key), 0);
    if (err == -ENOENT) continue;
    if (err) ThrowBpfError("update", err, "cannot delete a syscall_hists entry of tgid " + std::to_string(key.tgid), mark);
    deleted++;
  }
  return deleted;
}

}  // namespace ebpf_otel
