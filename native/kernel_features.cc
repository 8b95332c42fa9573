#include "kernel_features.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>

#include "bpf_error.h"
#include "libbpf_log.h"
#include "signal_block.h"

namespace ebpf_otel {
namespace {

constexpr const char* kTracefs = "/sys/kernel/tracing";
constexpr const char* kDebugfs = "/sys/kernel/debug";
constexpr const char* kDebugTracing = "/sys/kernel/debug/tracing";

bool Exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }
bool HasEvents(const char* tracing) { return Exists(std::string(tracing) + "/events"); }

std::string Describe(int err) {
  char buf[128];
  return std::string(strerror_r(err, buf, sizeof(buf))) + " (" + ErrnoName(err) + ")";
}

// Tries mount(2); returns 0 or the errno.
int Mount(const char* source, const char* target, const char* type) {
  return mount(source, target, type, 0, nullptr) == 0 ? 0 : errno;
}

Feature ProbeProgType(bpf_prog_type type) {
  int r = libbpf_probe_bpf_prog_type(type, nullptr);
  if (r == 1) return {true, ""};
  if (r == 0) return {false, std::string("program type ") + libbpf_bpf_prog_type_str(type) + " not supported"};
  return {false, std::string("probing program type ") + libbpf_bpf_prog_type_str(type) + ": " + Describe(-r)};
}

Feature ProbeMapType(bpf_map_type type) {
  int r = libbpf_probe_bpf_map_type(type, nullptr);
  if (r == 1) return {true, ""};
  if (r == 0) return {false, std::string("map type ") + libbpf_bpf_map_type_str(type) + " not supported"};
  return {false, std::string("probing map type ") + libbpf_bpf_map_type_str(type) + ": " + Describe(-r)};
}

// Program type and perf event source must both be there (kprobes and
// uprobes are perf PMUs when the kernel has them).
Feature ProbePerfProbe(const char* pmu) {
  Feature prog = ProbeProgType(BPF_PROG_TYPE_KPROBE);
  if (!prog.supported) return prog;
  std::string path = std::string("/sys/bus/event_source/devices/") + pmu;
  if (!Exists(path)) return {false, path + " is absent: the kernel has no " + pmu + " support"};
  return {true, ""};
}

Feature ProbeTracepoint() {
  Feature prog = ProbeProgType(BPF_PROG_TYPE_TRACEPOINT);
  if (!prog.supported) return prog;
  if (!Exists("/sys/bus/event_source/devices/tracepoint")) {
    return {false, "/sys/bus/event_source/devices/tracepoint is absent"};
  }
  return {true, ""};
}

struct BtfDeleter {
  void operator()(btf* b) const { btf__free(b); }
};

// Loads `r0 = 0; exit` as an fentry program on a function every kernel with
// BTF has, then attaches it.
Feature ProbeFentry(const btf* vmlinux) {
  if (!vmlinux) return {false, "no kernel BTF"};
  int btf_id = -ENOENT;
  for (const char* fn : {"bpf_fentry_test1", "do_unlinkat", "vfs_read"}) {
    btf_id = btf__find_by_name_kind(vmlinux, fn, BTF_KIND_FUNC);
    if (btf_id > 0) break;
  }
  if (btf_id <= 0) return {false, "no known function in kernel BTF to probe fentry with"};

  struct bpf_insn insns[2];
  memset(insns, 0, sizeof(insns));
  insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;  // r0 = 0
  insns[1].code = BPF_JMP | BPF_EXIT;
  bpf_prog_load_opts opts;
  memset(&opts, 0, sizeof(opts));
  opts.sz = sizeof(opts);
  opts.expected_attach_type = BPF_TRACE_FENTRY;
  opts.attach_btf_id = static_cast<__u32>(btf_id);
  int fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, "probe_fentry", "GPL", insns, 2, &opts);
  if (fd < 0) return {false, "loading an fentry program: " + Describe(errno)};
  int link = bpf_raw_tracepoint_open(nullptr, fd);
  int err = errno;
  close(fd);
  if (link < 0) return {false, "attaching an fentry program: " + Describe(err)};
  close(link);
  return {true, ""};
}

}  // namespace

std::string EnsureTracefs() {
  if (HasEvents(kTracefs)) return kTracefs;
  std::string tried;
  int first_err = 0;
  auto note = [&](const std::string& attempt, int err) {
    if (!first_err) first_err = err;
    tried += "\n  " + attempt + ": " + Describe(err);
  };

  if (Exists(kTracefs)) {
    int err = Mount("tracefs", kTracefs, "tracefs");
    if (!err && HasEvents(kTracefs)) return kTracefs;
    note(std::string("mount tracefs on ") + kTracefs, err ? err : ENOENT);
  } else {
    note(std::string("stat ") + kTracefs, ENOENT);
  }

  if (HasEvents(kDebugTracing)) return kDebugTracing;
  if (!Exists(kDebugTracing) && Exists(kDebugfs)) {
    // Mounting debugfs brings tracefs along at debug/tracing.
    int err = Mount("debugfs", kDebugfs, "debugfs");
    if (!err && HasEvents(kDebugTracing)) return kDebugTracing;
    note(std::string("mount debugfs on ") + kDebugfs, err ? err : ENOENT);
  }
  if (Exists(kDebugTracing)) {
    int err = Mount("tracefs", kDebugTracing, "tracefs");
    if (!err && HasEvents(kDebugTracing)) return kDebugTracing;
    note(std::string("mount tracefs on ") + kDebugTracing, err ? err : ENOENT);
  }
  ThrowBpfError("tracefs", first_err,
                "no tracefs: tracepoints cannot be attached (need root or CAP_SYS_ADMIN to mount it)" + tried,
                LibbpfLogMark());
}

std::map<std::string, Feature> ProbeFeatures() {
  SignalsBlocked signals_blocked;  // a probe's load interrupted would read as a missing feature
  std::map<std::string, Feature> out;
  std::unique_ptr<btf, BtfDeleter> vmlinux(btf__load_vmlinux_btf());
  out["btf"] = vmlinux ? Feature{true, ""} : Feature{false, "cannot load kernel BTF: " + Describe(errno)};
  out["ringbuf"] = ProbeMapType(BPF_MAP_TYPE_RINGBUF);
  out["tracepoint"] = ProbeTracepoint();
  out["rawTracepoint"] = ProbeProgType(BPF_PROG_TYPE_RAW_TRACEPOINT);
  out["kprobe"] = ProbePerfProbe("kprobe");
  out["uprobe"] = ProbePerfProbe("uprobe");
  out["fentry"] = ProbeFentry(vmlinux.get());
  return out;
}

}  // namespace ebpf_otel
