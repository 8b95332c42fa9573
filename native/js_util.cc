#include "js_util.h"

#include <cmath>

namespace ebpf_otel {

Napi::Error MakeJsError(Napi::Env env, JsErrorKind kind, const std::string& code, const std::string& op,
                        const std::string& message) {
  Napi::Error error;
  switch (kind) {
    case JsErrorKind::kTypeError:
      error = Napi::TypeError::New(env, message);
      break;
    case JsErrorKind::kRangeError:
      error = Napi::RangeError::New(env, message);
      break;
    default:
      error = Napi::Error::New(env, message);
  }
  error.Value().Set("code", code);
  error.Value().Set("op", op);
  return error;
}

Napi::Error ToJsError(Napi::Env env, const BpfError& bpf_error) {
  Napi::Error error = MakeJsError(env, JsErrorKind::kError, ErrnoName(bpf_error.err()), bpf_error.op(), bpf_error.what());
  error.Value().Set("errno", bpf_error.err());
  Napi::Array log = Napi::Array::New(env, bpf_error.log().size());
  for (size_t i = 0; i < bpf_error.log().size(); i++) log.Set(static_cast<uint32_t>(i), bpf_error.log()[i]);
  error.Value().Set("libbpfLog", log);
  return error;
}

namespace {
[[noreturn]] void ThrowType(const ArgContext& ctx, const std::string& name, const char* expected) {
  throw MakeJsError(ctx.env, JsErrorKind::kTypeError, "ERR_INVALID_ARG_TYPE", ctx.op,
                    std::string(ctx.op) + ": " + name + " must be " + expected);
}
}  // namespace

double ReadInteger(const ArgContext& ctx, const Napi::Value& value, const std::string& name, double min, double max) {
  if (!value.IsNumber()) ThrowType(ctx, name, "a number");
  double v = value.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(v) || std::trunc(v) != v || v < min || v > max) {
    char range[96];
    snprintf(range, sizeof(range), "an integer in [%.0f, %.0f]", min, max);
    throw MakeJsError(ctx.env, JsErrorKind::kRangeError, "ERR_INVALID_ARG_VALUE", ctx.op,
                      std::string(ctx.op) + ": " + name + " must be " + range + ", got " +
                          value.ToString().Utf8Value());
  }
  return v;
}

bool ReadBoolean(const ArgContext& ctx, const Napi::Value& value, const std::string& name) {
  if (!value.IsBoolean()) ThrowType(ctx, name, "a boolean");
  return value.As<Napi::Boolean>().Value();
}

std::string ReadString(const ArgContext& ctx, const Napi::Value& value, const std::string& name) {
  if (!value.IsString()) ThrowType(ctx, name, "a string");
  return value.As<Napi::String>().Utf8Value();
}

uint64_t ReadBigUint64(const ArgContext& ctx, const Napi::Value& value, const std::string& name) {
  if (!value.IsBigInt()) ThrowType(ctx, name, "a bigint");
  bool lossless = false;
  uint64_t v = value.As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless) {
    throw MakeJsError(ctx.env, JsErrorKind::kRangeError, "ERR_INVALID_ARG_VALUE", ctx.op,
                      std::string(ctx.op) + ": " + name + " must fit in 64 unsigned bits");
  }
  return v;
}

Napi::Object ReadObject(const ArgContext& ctx, const Napi::Value& value, const std::string& name) {
  if (!value.IsObject() || value.IsArray() || value.IsFunction()) ThrowType(ctx, name, "an object");
  return value.As<Napi::Object>();
}

Napi::Function ReadFunction(const ArgContext& ctx, const Napi::Value& value, const std::string& name) {
  if (!value.IsFunction()) ThrowType(ctx, name, "a function");
  return value.As<Napi::Function>();
}

}  // namespace ebpf_otel
