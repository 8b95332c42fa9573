// SocketTraceSession's part of syscall latency: its options and its methods
// (readSyscallHistograms, deleteSyscallHistograms). The maps:
// syscall_latency_maps.h.
#include <string.h>

#include <string>
#include <vector>

#include "js_util.h"
#include "session.h"

namespace ebpf_otel {

SyscallLatencyOptions ReadSyscallLatencyOptions(const ArgContext& ctx, const Napi::Object& options) {
  SyscallLatencyOptions out;
  Napi::Object sys = ReadObject(ctx, options.Get("syscalls"), "options.syscalls");
  syscall_config& sc = out.config;
  sc.slow_ns = static_cast<uint64_t>(ReadInteger(ctx, sys.Get("slowNs"), "syscalls.slowNs", 0, kMaxSafeInteger));
  sc.slow_cost_ns =
      static_cast<uint64_t>(ReadInteger(ctx, sys.Get("slowCostNs"), "syscalls.slowCostNs", 0, 1e9));
  sc.sigreturn_nr = static_cast<uint32_t>(ReadInteger(ctx, sys.Get("sigreturnNr"), "syscalls.sigreturnNr", 0, kMaxU32));
  out.max_histograms =
      static_cast<uint32_t>(ReadInteger(ctx, sys.Get("maxHistograms"), "syscalls.maxHistograms", 1, 1 << 24));
  Napi::Value fd_value = sys.Get("fdSyscalls");
  if (!fd_value.IsArray()) {
    throw MakeJsError(ctx.env, JsErrorKind::kTypeError, "ERR_INVALID_ARG_TYPE", ctx.op,
                      std::string(ctx.op) + ": syscalls.fdSyscalls must be an array of syscall numbers");
  }
  Napi::Array fd_syscalls = fd_value.As<Napi::Array>();
  for (uint32_t i = 0; i < fd_syscalls.Length(); i++) {
    out.fd_syscalls.push_back(static_cast<uint32_t>(
        ReadInteger(ctx, fd_syscalls.Get(i), "syscalls.fdSyscalls[" + std::to_string(i) + "]", 0, SYSLAT_MAX_NR - 1)));
  }
  return out;
}

Napi::Value SocketTraceSession::ReadSyscallHistograms(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TraceProgram& program = Open(env, "readSyscallHistograms");
  std::vector<uint8_t> records = TranslateErrors(env, [&] { return program.syscall_latency().ReadHistograms(); });
  return Napi::Buffer<uint8_t>::Copy(env, records.data(), records.size());
}

Napi::Value SocketTraceSession::DeleteSyscallHistograms(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TraceProgram& program = Open(env, "deleteSyscallHistograms");
  const ArgContext ctx{env, "deleteSyscallHistograms"};
  if (!info[0].IsBuffer() || info[0].As<Napi::Buffer<uint8_t>>().Length() % sizeof(syscall_hist_key) != 0) {
    throw MakeJsError(env, JsErrorKind::kTypeError, "ERR_INVALID_ARG_TYPE", ctx.op,
                      "deleteSyscallHistograms: keys must be a Buffer of struct syscall_hist_key (" +
                          std::to_string(sizeof(syscall_hist_key)) + " bytes each)");
  }
  Napi::Buffer<uint8_t> buffer = info[0].As<Napi::Buffer<uint8_t>>();
  std::vector<syscall_hist_key> keys(buffer.Length() / sizeof(syscall_hist_key));
  memcpy(keys.data(), buffer.Data(), keys.size() * sizeof(syscall_hist_key));
  size_t deleted = TranslateErrors(env, [&] { return program.syscall_latency().DeleteHistograms(keys); });
  return Napi::Number::New(env, static_cast<double>(deleted));
}

}  // namespace ebpf_otel
