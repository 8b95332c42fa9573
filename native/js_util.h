// The JS side of errors and arguments.
//
// Every error the addon throws has `code` and `op`:
//   - argument errors: TypeError/RangeError, code ERR_INVALID_ARG_TYPE or
//     ERR_INVALID_ARG_VALUE, op = the method ('SocketTraceSession', 'selectTgid', ...);
//   - a closed session: Error, code ERR_SESSION_CLOSED, op = the method;
//   - libbpf and kernel failures (BpfError): Error, code = errno name
//     ('EPERM'), errno = the number, op = the step ('open', 'load', 'attach',
//     'detach', 'update', 'lookup', 'start', 'tracefs'), libbpfLog = string[].
#ifndef EBPF_OTEL_JS_UTIL_H
#define EBPF_OTEL_JS_UTIL_H

#include <napi.h>

#include <cstdint>
#include <string>

#include "bpf_error.h"

namespace ebpf_otel {

enum class JsErrorKind { kError, kTypeError, kRangeError };

Napi::Error MakeJsError(Napi::Env env, JsErrorKind kind, const std::string& code, const std::string& op,
                        const std::string& message);
Napi::Error ToJsError(Napi::Env env, const BpfError& error);

// Runs `fn`; a BpfError it throws is rethrown as the JS error above.
template <typename Fn>
auto TranslateErrors(Napi::Env env, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const BpfError& error) {
    throw ToJsError(env, error);
  }
}

// Readers for arguments and option fields; each throws a TypeError or
// RangeError naming `op` and `name` when the value does not fit.
struct ArgContext {
  Napi::Env env;
  const char* op;
};
// Common bounds for ReadInteger.
constexpr double kMaxU32 = 4294967295.0;
constexpr double kMaxSafeInteger = 9007199254740991.0;  // 2^53 - 1: JS numbers are exact up to here
double ReadInteger(const ArgContext& ctx, const Napi::Value& value, const std::string& name, double min, double max);
bool ReadBoolean(const ArgContext& ctx, const Napi::Value& value, const std::string& name);
std::string ReadString(const ArgContext& ctx, const Napi::Value& value, const std::string& name);
uint64_t ReadBigUint64(const ArgContext& ctx, const Napi::Value& value, const std::string& name);
Napi::Object ReadObject(const ArgContext& ctx, const Napi::Value& value, const std::string& name);
Napi::Function ReadFunction(const ArgContext& ctx, const Napi::Value& value, const std::string& name);

}  // namespace ebpf_otel

#endif  // EBPF_OTEL_JS_UTIL_H
