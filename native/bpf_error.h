// Failures of libbpf and kernel steps, as plain C++ values.
//
// The native core throws BpfError; the JS glue (js_errors.h) turns it into a
// JS Error with `code` (errno name), `errno`, `op` and `libbpfLog`.
#ifndef EBPF_OTEL_BPF_ERROR_H
#define EBPF_OTEL_BPF_ERROR_H

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace ebpf_otel {

class BpfError : public std::runtime_error {
 public:
  // `op`: the step that failed ('open', 'load', 'attach', ...); `err`: a
  // positive errno value; `message`: complete, human-readable.
  BpfError(std::string op, int err, const std::string& message, std::vector<std::string> log);

  const std::string& op() const { return op_; }
  int err() const { return err_; }
  const std::vector<std::string>& log() const { return log_; }

 private:
  std::string op_;
  int err_;
  std::vector<std::string> log_;
};

// Throws a BpfError for `what` failing with errno `err` (sign ignored). The
// message ends with strerror and the errno name, then the libbpf lines logged
// since `log_mark` (see libbpf_log.h), if any.
[[noreturn]] void ThrowBpfError(const char* op, int err, const std::string& what, uint64_t log_mark);

// "EPERM" for EPERM; "E<n>" for a number glibc has no name for.
std::string ErrnoName(int err);

}  // namespace ebpf_otel

#endif  // EBPF_OTEL_BPF_ERROR_H
