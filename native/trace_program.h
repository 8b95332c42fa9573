// The loaded socket_trace BPF object: skeleton, links, selection and socket
// capture's maps. Each other feature's maps are a part of it with a file of
// its own: tcp_health_maps.h, syscall_latency_maps.h.
//
// Plain C++ (no N-API): every failure is a BpfError. Destroying a
// TraceProgram destroys its links first, then the skeleton (maps, programs).
#ifndef EBPF_OTEL_TRACE_PROGRAM_H
#define EBPF_OTEL_TRACE_PROGRAM_H

#include <linux/types.h>
#include <sys/types.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "socket_trace.h"
#include "syscall_latency_maps.h"
#include "tcp_health_maps.h"

struct socket_trace_bpf;
struct bpf_link;
struct bpf_program;

namespace ebpf_otel {

struct ProgramInfo {
  std::string name;     // C function name, e.g. tp_sys_enter_read
  std::string section;  // ELF section, e.g. tracepoint/syscalls/sys_enter_read
  std::string type;     // libbpf's name of the program type, e.g. tracepoint
  bool auto_attach;     // attached by AttachAll()
  uint32_t id;          // the kernel's program id (as bpftool shows it)
};

struct LinkInfo {
  uint32_t id;          // session-local, from 1; not the kernel's link id
  std::string program;
  std::string target;   // e.g. tracepoint/syscalls/sys_enter_read, uprobe:/usr/lib/libssl.so.3:SSL_write
};

// Which program groups to load (bpf/socket_trace.h says which program is in which).
struct ProgramGroups {
  bool sockets = true;
  bool syscalls = false;
  bool tcp = false;
  bool tls = false;  // uprobe_ssl_*/uretprobe_ssl_*: attached by AttachUprobe, not AttachAll
  bool links = false;  // uprobe_link_* (AttachUprobe) and link_* (AttachAll): runtime links
};

struct UprobeTarget {
  std::string binary_path;
  std::string symbol;   // empty: use offset
  uint64_t offset = 0;  // file offset when symbol is empty
  pid_t pid = -1;       // -1: every process
  bool retprobe = false;
  uint64_t cookie = 0;  // bpf_get_attach_cookie() in the program
};

class TraceProgram {
 public:
  // Opens the embedded object, sets the load-time config and the ring buffer
  // size (a power-of-two multiple of the page size, checked by the caller),
  // and loads it into the kernel.
  // Programs of groups not asked for are not loaded.
  // `tcp` bounds the tcp group's maps; `syscalls` configures the syscalls group (its maps exist either way).
  TraceProgram(const agent_config& config, uint32_t ring_buffer_bytes, const ProgramGroups& groups,
               const TcpOptions& tcp, const SyscallLatencyOptions& syscalls);
  ~TraceProgram();
  TraceProgram(const TraceProgram&) = delete;
  TraceProgram& operator=(const TraceProgram&) = delete;

  // The loaded programs.
  std::vector<ProgramInfo> Programs() const;

  // Attaches every auto-attachable program (see ProgramInfo::auto_attach);
  // all or nothing. Returns the program names in object order.
  std::vector<std::string> AttachAll();
  uint32_t AttachTracepoint(const std::string& program, const std::string& category, const std::string& name);
  uint32_t AttachUprobe(const std::string& program, const UprobeTarget& target);
  void Detach(uint32_t link_id);
  std::vector<LinkInfo> Links() const;

  void SelectTgid(uint32_t tgid, bool on);
  void SelectCgroup(uint64_t cgroup_id, bool on);
  // Writes one element of a runtime-link map (group "links": its maps are named link_*).
  void UpdateLinkMap(const std::string& map, const std::vector<uint8_t>& key, const std::vector<uint8_t>& value);
  // Replaces the set of selected command names; each is 1..TASK_COMM_LEN-1
  // bytes (checked by the caller). New names are added before stale ones are
  // removed, so a name in both sets never stops matching.
  void SetExecNames(const std::vector<std::string>& names);

  // Asks the kernel to capture each connection in `conn_ids` in `mode` (enum
  // capture_mode, checked by the caller): stores one request per id in
  // `mode_requests`, then bumps `mode_requests_seq` once so the connections
  // look at their next I/O. Keyed by connection id, so a request never reaches
  // another connection that took the same fd. Stops at the first failed
  // store and throws, after bumping for the ones stored; `*stored` says how
  // many were, also when it throws.
  void SetConnectionModes(const std::vector<uint64_t>& conn_ids, uint32_t mode, size_t* stored);

  // The `stats` map, each counter summed over the possible CPUs.
  std::array<uint64_t, STAT__COUNT> KernelStats() const;

  int EventsMapFd() const;

  // The features' maps.
  TcpHealthMaps& tcp_health() { return tcp_health_; }
  SyscallLatencyMaps& syscall_latency() { return syscall_latency_; }

 private:
  struct SkeletonDeleter { void operator()(socket_trace_bpf* skel) const; };
  struct LinkDeleter { void operator()(bpf_link* link) const; };
  struct Link {
    uint32_t id;
    std::unique_ptr<bpf_link, LinkDeleter> link;
    std::string program;
    std::string target;
    bool from_attach_all;
  };

  static void DestroyLinks(std::vector<Link>& links);
  bpf_program* FindProgram(const std::string& name, uint64_t log_mark) const;
  uint32_t AddLink(bpf_link* link, const std::string& program, std::string target, bool from_attach_all);

  std::unique_ptr<socket_trace_bpf, SkeletonDeleter> skel_;
  std::vector<Link> links_;  // declared after skel_: destroyed first
  uint32_t next_link_id_ = 1;
  uint32_t mode_requests_seq_ = 0;  // the value last written to mode_requests_seq
  TcpHealthMaps tcp_health_;          // these two borrow skel_
  SyscallLatencyMaps syscall_latency_;
};

}  // namespace ebpf_otel

#endif  // EBPF_OTEL_TRACE_PROGRAM_H
