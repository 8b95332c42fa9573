// TCP health and flows: the tcp group's maps, and the kernel tables the
// network collector reads each interval (records: bpf/tcp_health.h).
//
// Plain C++ (no N-API): every failure is a BpfError. Part of a TraceProgram,
// which owns the skeleton this borrows.
#ifndef EBPF_OTEL_TCP_HEALTH_MAPS_H
#define EBPF_OTEL_TCP_HEALTH_MAPS_H

#include <cstddef>
#include <cstdint>
#include <vector>

struct socket_trace_bpf;

namespace ebpf_otel {

// Bounds of the tcp group's maps, set before load.
struct TcpOptions {
  uint32_t peer_entries = 8192;  // tcp_peers: (process, role, peer) keys
};

class TcpHealthMaps {
 public:
  // Between open and load. Hash maps are preallocated, so without the tcp
  // group its maps are not created at all; with it, tcp_peers is sized.
  void BeforeLoad(socket_trace_bpf* skel, bool enabled, const TcpOptions& options, uint64_t log_mark);

  // The whole of `tcp_peers` and `tcp_peer_overflow`, as struct
  // tcp_peer_record one after the other. Empty when the tcp group is off.
  std::vector<uint8_t> ReadTcpPeers() const;
  // The whole of `conn_info` (socket capture's table, read for flows), as
  // struct conn_record one after the other.
  std::vector<uint8_t> ReadConnections() const;
  // Deletes the tcp_peers and tcp_peer_overflow keys of these processes;
  // returns how many were deleted.
  size_t DeleteTcpPeers(const std::vector<uint32_t>& tgids);

 private:
  socket_trace_bpf* skel_ = nullptr;
  bool loaded_ = false;  // the tcp group's maps exist
};

}  // namespace ebpf_otel

#endif  // EBPF_OTEL_TCP_HEALTH_MAPS_H
