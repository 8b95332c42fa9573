// Module entry: the SocketTraceSession class and the free functions.
// The TypeScript view of all of it is src/capture/native-binding.ts.
#include <napi.h>
#include <v8.h>
#include <bpf/libbpf.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "batch_format.h"
#include "kernel_features.h"
#include "js_util.h"
#include "libbpf_log.h"
#include "session.h"
#include "socket_trace.h"

namespace ebpf_otel {
namespace {

Napi::Value EnsureTracefsJs(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), TranslateErrors(info.Env(), [] { return EnsureTracefs(); }));
}

Napi::Value ProbeFeaturesJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  Napi::Object reasons = Napi::Object::New(env);
  for (const auto& [name, feature] : ProbeFeatures()) {
    out.Set(name, feature.supported);
    if (!feature.supported) reasons.Set(name, feature.reason);
  }
  out.Set("reasons", reasons);
  return out;
}

Napi::Value LibbpfVersionJs(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), libbpf_version_string());
}

// Gives memory that is free back to the system, on the JS thread:
// - V8: LowMemoryNotification() runs full GCs until nothing more is freed,
//   with the "reduce memory" flag: the new space shrinks to its minimum and
//   the pages V8 pooled are unmapped. Neither happens at an ordinary GC of an
//   agent that is idle after a burst (its allocation rate is low but not
//   measured as such), and JS has no way to ask for it (gc() is an ordinary
//   full GC). The only V8 call in this addon: Isolate::GetCurrent and
//   LowMemoryNotification are plain exported methods, stable across Node
//   versions, and this runs on the thread that owns the isolate.
// - glibc: what a burst freed stays in its arenas (the poll thread's batches
//   come from its own arena) and only the top of each heap goes back on its
//   own; malloc_trim(0) also releases free pages inside them.
// Returns whether malloc_trim released something (false with another C
// library). Costs a few full GCs of the live heap (60-90 ms with a 17 MiB
// heap): the caller decides when (src/agent/memory-release.ts).
Napi::Value ReleaseFreeMemoryJs(const Napi::CallbackInfo& info) {
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  if (isolate != nullptr) isolate->LowMemoryNotification();
#if defined(__GLIBC__)
  return Napi::Boolean::New(info.Env(), malloc_trim(0) != 0);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

// Sizes as this addon was compiled, to check the TypeScript layout against.
Napi::Object Layout(Napi::Env env) {
  Napi::Object layout = Napi::Object::New(env);
  layout.Set("batchFrameHeaderBytes", BATCH_FRAME_HEADER_BYTES);
  layout.Set("batchFrameAlign", BATCH_FRAME_ALIGN);
  layout.Set("statCount", static_cast<uint32_t>(STAT__COUNT));
  layout.Set("maxPayload", MAX_PAYLOAD);
  layout.Set("dataEventBytes", static_cast<uint32_t>(sizeof(struct data_event)));
  layout.Set("connEventBytes", static_cast<uint32_t>(sizeof(struct conn_event)));
  layout.Set("procEventBytes", static_cast<uint32_t>(sizeof(struct proc_event)));
  layout.Set("agentConfigBytes", static_cast<uint32_t>(sizeof(struct agent_config)));
  layout.Set("tcpPeerRecordBytes", static_cast<uint32_t>(sizeof(struct tcp_peer_record)));
  layout.Set("connRecordBytes", static_cast<uint32_t>(sizeof(struct conn_record)));
  layout.Set("syscallHistRecordBytes", static_cast<uint32_t>(sizeof(struct syscall_hist_record)));
  layout.Set("slowSyscallEventBytes", static_cast<uint32_t>(sizeof(struct slow_syscall_event)));
  return layout;
}

}  // namespace
}  // namespace ebpf_otel

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  using namespace ebpf_otel;
#if defined(__GLIBC__)
  // The poll thread's batches (256 KiB) and the OTLP requests (~0.5 MiB) are
  // large and short-lived. glibc raises its mmap threshold the first time
  // such a block is freed and serves the next ones from the heap, where they
  // fragment it and are not given back: under process churn RSS crept 7-15
  // MiB over the first 10 000 processes. A fixed threshold keeps them mapped
  // on their own, so freeing one returns its pages (bench/process-churn.ts
  // --kernel: 1.9 MiB spread from the 1000th to the 6000th process, 7.6 before).
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
  InstallLibbpfLog();
  exports.Set("SocketTraceSession", SocketTraceSession::Init(env));
  exports.Set("ensureTracefs", Napi::Function::New<EnsureTracefsJs>(env, "ensureTracefs"));
  exports.Set("probeFeatures", Napi::Function::New<ProbeFeaturesJs>(env, "probeFeatures"));
  exports.Set("libbpfVersion", Napi::Function::New<LibbpfVersionJs>(env, "libbpfVersion"));
  exports.Set("releaseFreeMemory", Napi::Function::New<ReleaseFreeMemoryJs>(env, "releaseFreeMemory"));
  exports.Set("layout", Layout(env));
  return exports;
}

NODE_API_MODULE(ebpf_otel, InitModule)
