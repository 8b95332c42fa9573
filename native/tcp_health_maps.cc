#include "tcp_health_maps.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/types.h>
#include <string.h>

#include <cstddef>
#include <set>
#include <string>

#include "bpf_error.h"
#include "libbpf_log.h"
#include "socket_trace.h"
#include "socket_trace.skel.h"

namespace ebpf_otel {
namespace {

bool StartsWith(const char* s, const char* prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

// The naming contract of bpf/socket_trace.h: the tcp group's maps are named tcp_* and tcph_*.
bool IsTcpMap(const bpf_map* map) {
  const char* name = bpf_map__name(map);
  return StartsWith(name, "tcp_") || StartsWith(name, "tcph_");
}

// Appends every entry of `map` to `out` as records of `record_size` bytes:
// the key, then the value at `value_offset` (the record structs of
// bpf/tcp_health.h; the map's sizes must match them exactly). Batched
// lookups (one syscall per bucket run) where the kernel has them; else key by
// key. Entries inserted or deleted meanwhile may or may not be seen, as with
// any walk of a live hash map.
void AppendMap(bpf_map* map, size_t record_size, size_t value_offset, std::vector<uint8_t>& out) {
  uint64_t mark = LibbpfLogMark();
  const int fd = bpf_map__fd(map);
  const size_t key_size = bpf_map__key_size(map);
  const size_t value_size = bpf_map__value_size(map);
  const std::string name = bpf_map__name(map);
  if (key_size != value_offset || value_offset + value_size != record_size) {
    ThrowBpfError("lookup", EPROTO, "map " + name + " has " + std::to_string(key_size) + "-byte keys and " +
                                        std::to_string(value_size) + "-byte values: not the record layout this addon was built with",
                  mark);
  }
  auto append = [&](const uint8_t* key, const uint8_t* value) {
    size_t at = out.size();
    out.resize(at + record_size);
    memcpy(out.data() + at, key, key_size);
    memcpy(out.data() + at + value_offset, value, value_size);
  };

  uint32_t chunk = 256;
  std::vector<uint8_t> keys, values;
  // The hash-map batch cursor is a bucket index (u32); room for a key in case.
  uint64_t in_batch[8] = {}, out_batch[8] = {};
  bool first = true;
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  for (;;) {
    keys.resize(static_cast<size_t>(chunk) * key_size);
    values.resize(static_cast<size_t>(chunk) * value_size);
    uint32_t count = chunk;
    int err = bpf_map_lookup_batch(fd, first ? nullptr : in_batch, out_batch, keys.data(), values.data(), &count, &opts);
    // Kernels without batch ops for this map type say EINVAL or ENOTSUPP (524, kernel-internal).
    const bool unsupported = err == -EINVAL || err == -EOPNOTSUPP || err == -524;
    if (unsupported && first) break;  // walk key by key below
    if (err == -ENOSPC && count == 0) {
      chunk *= 2;  // one bucket holds more than a chunk: retry it larger
      if (chunk > (1u << 20)) ThrowBpfError("lookup", ENOSPC, "cannot read map " + name + ": a bucket larger than 1M entries", mark);
      continue;
    }
    if (err && err != -ENOENT && err != -ENOSPC) ThrowBpfError("lookup", err, "cannot read map " + name, mark);
    for (uint32_t i = 0; i < count; i++) append(keys.data() + i * key_size, values.data() + i * value_size);
    if (err == -ENOENT) return;  // the end
    memcpy(in_batch, out_batch, sizeof(in_batch));
    first = false;
  }

  std::vector<uint8_t> key(key_size), next(key_size), value(value_size);
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, next.data()) == 0) {
    if (bpf_map_lookup_elem(fd, next.data(), value.data()) == 0) append(next.data(), value.data());
    key.swap(next);
    prev = key.data();
  }
}

}  // namespace

void TcpHealthMaps::BeforeLoad(socket_trace_bpf* skel, bool enabled, const TcpOptions& options, uint64_t mark) {
  skel_ = skel;
  bpf_map* map;
  bpf_object__for_each_map(map, skel_->obj) {
    if (IsTcpMap(map) && !enabled) bpf_map__set_autocreate(map, false);
  }
  if (enabled) {
    int err = bpf_map__set_max_entries(skel_->maps.tcp_peers, options.peer_entries);
    if (err) ThrowBpfError("open", err, "cannot size tcp_peers to " + std::to_string(options.peer_entries) + " entries", mark);
  }
  loaded_ = enabled;
}

std::vector<uint8_t> TcpHealthMaps::ReadTcpPeers() const {
  std::vector<uint8_t> out;
  if (!loaded_) return out;
  AppendMap(skel_->maps.tcp_peers, sizeof(tcp_peer_record), offsetof(tcp_peer_record, stats), out);
  AppendMap(skel_->maps.tcp_peer_overflow, sizeof(tcp_peer_record), offsetof(tcp_peer_record, stats), out);
  return out;
}

std::vector<uint8_t> TcpHealthMaps::ReadConnections() const {
  std::vector<uint8_t> out;
  AppendMap(skel_->maps.conn_info, sizeof(conn_record), offsetof(conn_record, conn), out);
  return out;
}

size_t TcpHealthMaps::DeleteTcpPeers(const std::vector<uint32_t>& tgids) {
  if (!loaded_ || tgids.empty()) return 0;
  uint64_t mark = LibbpfLogMark();
  std::set<uint32_t> wanted(tgids.begin(), tgids.end());
  size_t deleted = 0;
  for (bpf_map* map : {skel_->maps.tcp_peers, skel_->maps.tcp_peer_overflow}) {
    const int fd = bpf_map__fd(map);
    std::vector<tcp_peer_key> doomed;
    tcp_peer_key key{}, next{};
    const void* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
      if (wanted.count(next.tgid)) doomed.push_back(next);
      key = next;
      prev = &key;
    }
    for (const tcp_peer_key& k : doomed) {
      int err = bpf_map_delete_elem(fd, &k);
      if (err == 0) deleted++;
      else if (err != -ENOENT) ThrowBpfError("update", err, std::string("cannot delete from ") + bpf_map__name(map), mark);
    }
  }
  return deleted;
}

}  // namespace ebpf_otel
