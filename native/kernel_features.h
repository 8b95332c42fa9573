// Host checks that need no loaded program: tracefs, kernel features, libbpf.
#ifndef EBPF_OTEL_KERNEL_FEATURES_H
#define EBPF_OTEL_KERNEL_FEATURES_H

#include <map>
#include <string>

namespace ebpf_otel {

// Makes sure a tracefs with events/ is mounted, mounting one if needed:
// /sys/kernel/tracing first, then /sys/kernel/debug/tracing. Returns the
// path in use; BpfError (op 'tracefs') if neither can be had.
std::string EnsureTracefs();

struct Feature {
  bool supported;
  std::string reason;  // why not, when !supported
};

// Each by a real probe: btf, ringbuf, tracepoint, rawTracepoint, kprobe,
// uprobe, fentry.
std::map<std::string, Feature> ProbeFeatures();

}  // namespace ebpf_otel

#endif  // EBPF_OTEL_KERNEL_FEATURES_H
