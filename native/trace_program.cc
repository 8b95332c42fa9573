#include "trace_program.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <string.h>

#include <algorithm>
#include <cstddef>
#include <cinttypes>
#include <set>
#include <system_error>
#include <thread>

#include "bpf_error.h"
#include "libbpf_log.h"
#include "signal_block.h"
#include "socket_trace.skel.h"

namespace ebpf_otel {
namespace {

// Programs AttachAll() attaches: libbpf can attach them from their section
// name alone. A section without a target (SEC("uprobe"), SEC("kprobe"))
// needs AttachUprobe()/AttachTracepoint(); other program types (socket
// filters, tc, xdp) are not ours to attach.
bool IsAutoAttachable(const bpf_program* prog) {
  if (!bpf_program__autoattach(prog)) return false;
  switch (bpf_program__type(prog)) {
    case BPF_PROG_TYPE_TRACEPOINT:
    case BPF_PROG_TYPE_RAW_TRACEPOINT:
    case BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE:
    case BPF_PROG_TYPE_KPROBE:
    case BPF_PROG_TYPE_TRACING:
    case BPF_PROG_TYPE_LSM:
      break;
    default:
      return false;
  }
  const char* slash = strchr(bpf_program__section_name(prog), '/');
  return slash != nullptr && slash[1] != '\0';
}

bool StartsWith(const char* s, const char* prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

// The naming contract of bpf/socket_trace.h.
bool InGroups(const bpf_program* prog, const ProgramGroups& groups) {
  const char* name = bpf_program__name(prog);
  if (StartsWith(name, "syslat_")) return groups.syscalls;
  if (StartsWith(name, "tcph_")) return groups.tcp;
  if (StartsWith(name, "uprobe_ssl_") || StartsWith(name, "uretprobe_ssl_") || StartsWith(name, "uprobe_go_tls_")) return groups.tls;
  if (StartsWith(name, "uprobe_link_") || StartsWith(name, "link_")) return groups.links;
  if (strstr(name, "_sched_") != nullptr) return true;
  return groups.sockets;
}

// Returns whether a deselection removed an entry (false when it was not there).
bool UpdateFlag(bpf_map* map, const void* key, size_t key_size, bool on, const std::string& what) {
  uint64_t mark = LibbpfLogMark();
  int err;
  bool removed = false;
  if (on) {
    const uint8_t one = 1;
    err = bpf_map__update_elem(map, key, key_size, &one, sizeof(one), BPF_ANY);
  } else {
    err = bpf_map__delete_elem(map, key, key_size, 0);
    removed = err == 0;
    if (err == -ENOENT) err = 0;
  }
  if (err) ThrowBpfError("update", err, std::string(on ? "cannot select " : "cannot deselect ") + what, mark);
  return removed;
}

}  // namespace

void TraceProgram::SkeletonDeleter::operator()(socket_trace_bpf* skel) const { socket_trace_bpf__destroy(skel); }
void TraceProgram::LinkDeleter::operator()(bpf_link* link) const { bpf_link__destroy(link); }

TraceProgram::TraceProgram(const agent_config& config, uint32_t ring_buffer_bytes, const ProgramGroups& groups,
                           const TcpOptions& tcp, const SyscallLatencyOptions& syscalls) {
  // Map creation, BTF and program loads, libbpf's feature probes: nothing a
  // pending signal may interrupt (signal_block.h).
  SignalsBlocked signals_blocked;
  uint64_t mark = LibbpfLogMark();
  skel_.reset(socket_trace_bpf__open());
  if (!skel_) ThrowBpfError("open", errno, "cannot open the socket_trace BPF object", mark);
  if (!skel_->rodata) ThrowBpfError("open", ENOENT, "the socket_trace BPF object has no .rodata config", mark);
  skel_->rodata->config = config;
  // The syscall programs' TLS ties are dead code without the TLS probes.
  skel_->rodata->config.tls = groups.tls ? 1 : 0;

  bpf_program* prog;
  bpf_object__for_each_program(prog, skel_->obj) {
    if (!InGroups(prog, groups)) bpf_program__set_autoload(prog, false);
  }

  int err = bpf_map__set_max_entries(skel_->maps.events, ring_buffer_bytes);
  if (err) ThrowBpfError("open", err, "cannot size the events ring buffer to " + std::to_string(ring_buffer_bytes) + " bytes", mark);

  tcp_health_.BeforeLoad(skel_.get(), groups.tcp, tcp, mark);
  syscall_latency_.BeforeLoad(skel_.get(), syscalls, mark);

  err = socket_trace_bpf__load(skel_.get());
  if (err) ThrowBpfError("load", err, "cannot load the socket_trace BPF object", mark);

  syscall_latency_.AfterLoad(syscalls, mark);
}

// Detaching a perf-event tracepoint link waits for RCU grace periods in the
// kernel (~50 ms each here), partly under a kernel-wide mutex. Detaching from
// a few threads overlaps the part that can overlap: 28 tracepoint links take
// ~0.65 s instead of ~1.45 s; more threads gain nothing.
void TraceProgram::DestroyLinks(std::vector<Link>& links) {
  constexpr size_t kMaxThreads = 4;
  size_t count = links.size();
  size_t threads = std::min(kMaxThreads, count);
  if (threads == 0) return;
  std::vector<std::thread> workers;
  try {
    for (size_t t = 1; t < threads; t++) {
      workers.emplace_back([&links, t, threads, count] {
        for (size_t i = t; i < count; i += threads) links[i].link.reset();
      });
    }
  } catch (const std::system_error&) {
    // Out of threads: whatever is left is destroyed below, in this thread.
  }
  for (size_t i = 0; i < count; i += threads) links[i].link.reset();
  for (std::thread& worker : workers) worker.join();
  links.clear();  // the shares of threads that could not be created go here
}

TraceProgram::~TraceProgram() {
  DestroyLinks(links_);  // detach before the programs go
  skel_.reset();
}

std::vector<ProgramInfo> TraceProgram::Programs() const {
  std::vector<ProgramInfo> out;
  bpf_program* prog;
  bpf_object__for_each_program(prog, skel_->obj) {
    if (!bpf_program__autoload(prog)) continue;  // a group not asked for
    const char* type = libbpf_bpf_prog_type_str(bpf_program__type(prog));
    bpf_prog_info info;
    memset(&info, 0, sizeof(info));
    uint32_t info_len = sizeof(info);
    uint32_t id = bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &info_len) == 0 ? info.id : 0;
    out.push_back({bpf_program__name(prog), bpf_program__section_name(prog), type ? type : "unknown",
                   IsAutoAttachable(prog), id});
  }
  return out;
}

bpf_program* TraceProgram::FindProgram(const std::string& name, uint64_t log_mark) const {
  bpf_program* prog = bpf_object__find_program_by_name(skel_->obj, name.c_str());
  if (!prog) ThrowBpfError("attach", ENOENT, "no BPF program named '" + name + "'", log_mark);
  return prog;
}

uint32_t TraceProgram::AddLink(bpf_link* link, const std::string& program, std::string target, bool from_attach_all) {
  uint32_t id = next_link_id_++;
  links_.push_back({id, std::unique_ptr<bpf_link, LinkDeleter>(link), program, std::move(target), from_attach_all});
  return id;
}

std::vector<std::string> TraceProgram::AttachAll() {
  uint64_t mark = LibbpfLogMark();
  for (const Link& link : links_) {
    if (link.from_attach_all) ThrowBpfError("attach", EALREADY, "attachAll() already attached the programs", mark);
  }
  std::vector<Link> attached;  // detached again if one fails
  std::vector<std::string> names;
  bpf_program* prog;
  bpf_object__for_each_program(prog, skel_->obj) {
    if (!bpf_program__autoload(prog) || !IsAutoAttachable(prog)) continue;
    bpf_link* link = bpf_program__attach(prog);
    if (!link) {
      int err = errno;
      DestroyLinks(attached);
      ThrowBpfError("attach", err,
                    std::string("cannot attach program '") + bpf_program__name(prog) + "' (" +
                        bpf_program__section_name(prog) + ")",
                    mark);
    }
    attached.push_back({0, std::unique_ptr<bpf_link, LinkDeleter>(link), bpf_program__name(prog),
                        bpf_program__section_name(prog), true});
    names.push_back(bpf_program__name(prog));
  }
  for (Link& link : attached) {
    link.id = next_link_id_++;
    links_.push_back(std::move(link));
  }
  return names;
}

uint32_t TraceProgram::AttachTracepoint(const std::string& program, const std::string& category,
                                        const std::string& name) {
  uint64_t mark = LibbpfLogMark();
  bpf_program* prog = FindProgram(program, mark);
  bpf_link* link = bpf_program__attach_tracepoint(prog, category.c_str(), name.c_str());
  std::string target = "tracepoint/" + category + "/" + name;
  if (!link) ThrowBpfError("attach", errno, "cannot attach program '" + program + "' to " + target, mark);
  return AddLink(link, program, std::move(target), false);
}

uint32_t TraceProgram::AttachUprobe(const std::string& program, const UprobeTarget& target) {
  uint64_t mark = LibbpfLogMark();
  bpf_program* prog = FindProgram(program, mark);

  bpf_uprobe_opts opts;
  memset(&opts, 0, sizeof(opts));
  opts.sz = sizeof(opts);
  opts.retprobe = target.retprobe;
  opts.bpf_cookie = target.cookie;
  std::string where;
  if (!target.symbol.empty()) {
    opts.func_name = target.symbol.c_str();
    where = target.symbol;
  } else {
    char hex[32];
    snprintf(hex, sizeof(hex), "0x%" PRIx64, target.offset);
    where = hex;
  }
  std::string description = std::string(target.retprobe ? "uretprobe:" : "uprobe:") + target.binary_path + ":" + where;
  if (target.pid >= 0) description += " pid " + std::to_string(target.pid);

  size_t offset = target.symbol.empty() ? static_cast<size_t>(target.offset) : 0;
  bpf_link* link = bpf_program__attach_uprobe_opts(prog, target.pid, target.binary_path.c_str(), offset, &opts);
  if (!link) ThrowBpfError("attach", errno, "cannot attach program '" + program + "' to " + description, mark);
  return AddLink(link, program, std::move(description), false);
}

void TraceProgram::Detach(uint32_t link_id) {
  auto it = std::find_if(links_.begin(), links_.end(), [link_id](const Link& l) { return l.id == link_id; });
  if (it == links_.end()) ThrowBpfError("detach", ENOENT, "no link " + std::to_string(link_id) + " in this session", LibbpfLogMark());
  links_.erase(it);  // bpf_link__destroy detaches
}

std::vector<LinkInfo> TraceProgram::Links() const {
  std::vector<LinkInfo> out;
  for (const Link& link : links_) out.push_back({link.id, link.program, link.target});
  return out;
}

void TraceProgram::SelectTgid(uint32_t tgid, bool on) {
  // An exited process is gone from the map already (the kernel removes it at
  // exit): no thread of it can have a call in flight, nothing to invalidate.
  if (UpdateFlag(skel_->maps.selected_tgids, &tgid, sizeof(tgid), on, "tgid " + std::to_string(tgid))) {
    syscall_latency_.BumpEpoch(LibbpfLogMark());
  }
}

void TraceProgram::UpdateLinkMap(const std::string& name, const std::vector<uint8_t>& key, const std::vector<uint8_t>& value) {
  uint64_t mark = LibbpfLogMark();
  // Only the links group's own tables: user space has no business writing the others this way.
  if (name.rfind("link_", 0) != 0) ThrowBpfError("update", EPERM, "map '" + name + "' is not a runtime-link map (link_*)", mark);
  bpf_map* map = bpf_object__find_map_by_name(skel_->obj, name.c_str());
  if (!map) ThrowBpfError("update", ENOENT, "no BPF map named '" + name + "'", mark);
  if (key.size() != bpf_map__key_size(map) || value.size() != bpf_map__value_size(map)) {
    ThrowBpfError("update", EINVAL, "map '" + name + "' takes " + std::to_string(bpf_map__key_size(map)) + "-byte keys and " +
                                        std::to_string(bpf_map__value_size(map)) + "-byte values", mark);
  }
  int err = bpf_map__update_elem(map, key.data(), key.size(), value.data(), value.size(), BPF_ANY);
  if (err != 0) ThrowBpfError("update", -err, "cannot update map '" + name + "'", mark);
}

void TraceProgram::SelectCgroup(uint64_t cgroup_id, bool on) {
  // Before the map update: the programs skip the cgroup lookup while this
  // is 0 (bpf/selection.bpf.h), so it must never be 0 with a cgroup stored.
  if (on) skel_->bss->cgroups_selected = 1;
  if (UpdateFlag(skel_->maps.selected_cgroups, &cgroup_id, sizeof(cgroup_id), on, "cgroup " + std::to_string(cgroup_id))) {
    syscall_latency_.BumpEpoch(LibbpfLogMark());
  }
}

void TraceProgram::SetExecNames(const std::vector<std::string>& names) {
  using Key = std::array<char, TASK_COMM_LEN>;
  std::set<Key> wanted;
  for (const std::string& name : names) {
    Key key{};  // NUL padded, as the kernel's comm
    memcpy(key.data(), name.data(), std::min(name.size(), key.size() - 1));
    wanted.insert(key);
  }
  bpf_map* map = skel_->maps.exec_names;
  for (const Key& key : wanted) UpdateFlag(map, key.data(), key.size(), true, "exec name '" + std::string(key.data()) + "'");

  std::vector<Key> stale;
  Key key{}, next{};
  const void* prev = nullptr;
  while (bpf_map__get_next_key(map, prev, next.data(), next.size()) == 0) {
    if (!wanted.count(next)) stale.push_back(next);
    key = next;
    prev = key.data();
  }
  for (const Key& k : stale) {
    UpdateFlag(map, k.data(), k.size(), false, "exec name '" + std::string(k.data(), strnlen(k.data(), k.size())) + "'");
  }
}

void TraceProgram::SetConnectionModes(const std::vector<uint64_t>& conn_ids, uint32_t mode, size_t* stored_out) {
  uint64_t mark = LibbpfLogMark();
  size_t& stored = *stored_out;
  int err = 0;
  stored = 0;
  for (uint64_t id : conn_ids) {
    err = bpf_map__update_elem(skel_->maps.mode_requests, &id, sizeof(id), &mode, sizeof(mode), BPF_ANY);
    if (err) break;
    stored++;
  }
  if (stored > 0) {
    // After the requests: a connection that sees the new value finds them.
    const uint32_t zero = 0;
    const uint32_t next = mode_requests_seq_ + 1;
    int seq_err = bpf_map__update_elem(skel_->maps.mode_requests_seq, &zero, sizeof(zero), &next, sizeof(next), BPF_ANY);
    if (seq_err) {
      ThrowBpfError("update", seq_err, "cannot bump mode_requests_seq after storing " + std::to_string(stored) +
                                           " capture-mode requests", mark);
    }
    mode_requests_seq_ = next;
  }
  if (err) {
    ThrowBpfError("update", err, "cannot store the capture-mode request for connection " +
                                     std::to_string(conn_ids[stored]) + " (" + std::to_string(stored) + " of " +
                                     std::to_string(conn_ids.size()) + " stored)", mark);
  }
}

std::array<uint64_t, STAT__COUNT> TraceProgram::KernelStats() const {
  std::array<uint64_t, STAT__COUNT> totals{};
  uint64_t mark = LibbpfLogMark();
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) ThrowBpfError("lookup", cpus < 0 ? cpus : EINVAL, "cannot count the possible CPUs", mark);
  std::vector<uint64_t> values(static_cast<size_t>(cpus));
  bpf_map* map = skel_->maps.stats;
  uint32_t entries = std::min<uint32_t>(bpf_map__max_entries(map), STAT__COUNT);
  for (uint32_t i = 0; i < entries; i++) {
    int err = bpf_map__lookup_elem(map, &i, sizeof(i), values.data(), values.size() * sizeof(uint64_t), 0);
    if (err) ThrowBpfError("lookup", err, "cannot read stats[" + std::to_string(i) + "]", mark);
    for (uint64_t v : values) totals[i] += v;
  }
  return totals;
}

int TraceProgram::EventsMapFd() const { return bpf_map__fd(skel_->maps.events); }

}  // namespace ebpf_otel
