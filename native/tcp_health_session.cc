// SocketTraceSession's part of TCP health and flows: its option and its
// methods (readTcpPeers, readConnections, deleteTcpPeers). The maps:
// tcp_health_maps.h.
#include <string>
#include <vector>

#include "js_util.h"
#include "session.h"

namespace ebpf_otel {

TcpOptions ReadTcpOptions(const ArgContext& ctx, const Napi::Object& options) {
  TcpOptions out;
  out.peer_entries =
      static_cast<uint32_t>(ReadInteger(ctx, options.Get("tcpPeerEntries"), "options.tcpPeerEntries", 1, 1 << 20));
  return out;
}

Napi::Value SocketTraceSession::ReadTcpPeers(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TraceProgram& program = Open(env, "readTcpPeers");
  std::vector<uint8_t> records = TranslateErrors(env, [&] { return program.tcp_health().ReadTcpPeers(); });
  return Napi::Buffer<uint8_t>::Copy(env, records.data(), records.size());
}

Napi::Value SocketTraceSession::ReadConnections(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TraceProgram& program = Open(env, "readConnections");
  std::vector<uint8_t> records = TranslateErrors(env, [&] { return program.tcp_health().ReadConnections(); });
  return Napi::Buffer<uint8_t>::Copy(env, records.data(), records.size());
}

Napi::Value SocketTraceSession::DeleteTcpPeers(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TraceProgram& program = Open(env, "deleteTcpPeers");
  const ArgContext ctx{env, "deleteTcpPeers"};
  if (!info[0].IsArray()) {
    throw MakeJsError(env, JsErrorKind::kTypeError, "ERR_INVALID_ARG_TYPE", ctx.op,
                      "deleteTcpPeers: tgids must be an array of process ids");
  }
  Napi::Array array = info[0].As<Napi::Array>();
  std::vector<uint32_t> tgids;
  for (uint32_t i = 0; i < array.Length(); i++) {
    tgids.push_back(static_cast<uint32_t>(ReadInteger(ctx, array.Get(i), "tgids[" + std::to_string(i) + "]", 1, kMaxU32)));
  }
  size_t deleted = TranslateErrors(env, [&] { return program.tcp_health().DeleteTcpPeers(tgids); });
  return Napi::Number::New(env, static_cast<double>(deleted));
}

}  // namespace ebpf_otel
