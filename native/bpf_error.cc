#include "bpf_error.h"

#include <string.h>

#include "libbpf_log.h"

namespace ebpf_otel {
namespace {
constexpr size_t kLogLinesKept = 200;     // on the error object
constexpr size_t kLogLinesQuoted = 20;    // in its message
}  // namespace

BpfError::BpfError(std::string op, int err, const std::string& message, std::vector<std::string> log)
    : std::runtime_error(message), op_(std::move(op)), err_(err), log_(std::move(log)) {}

std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name ? std::string(name) : "E" + std::to_string(err);
}

void ThrowBpfError(const char* op, int err, const std::string& what, uint64_t log_mark) {
  if (err < 0) err = -err;
  if (err == 0) err = EINVAL;  // a failure must carry a code
  std::vector<std::string> log = LibbpfLogSince(log_mark, kLogLinesKept);
  char buf[128];
  std::string message = what + ": " + strerror_r(err, buf, sizeof(buf)) + " (" + ErrnoName(err) + ")";
  if (!log.empty()) {
    size_t from = log.size() > kLogLinesQuoted ? log.size() - kLogLinesQuoted : 0;
    message += "\nlibbpf log";
    if (from > 0) message += " (last " + std::to_string(kLogLinesQuoted) + " lines)";
    message += ":";
    for (size_t i = from; i < log.size(); i++) message += "\n  " + log[i];
  }
  throw BpfError(op, err, message, std::move(log));
}

}  // namespace ebpf_otel
