// SocketTraceSession: the JS object owning one loaded socket_trace program.
//
// It owns, and releases in this order on its one cleanup path, Close():
//   1. the poll thread (RingPoller): stopped and joined, so nothing calls
//      into N-API from another thread afterwards;
//   2. the thread-safe function: aborted; batches still queued are freed
//      without reaching JS;
//   3. the program (TraceProgram): links destroyed (detached), then the skeleton.
// Close() runs from close(), from the env cleanup hook (process exit, worker
// termination) and from the destructor (GC), whichever comes first.
//
// Threads: every method runs on the JS thread. The poll thread only touches
// the RingPoller and calls TypedThreadSafeFunction::NonBlockingCall.
#ifndef EBPF_OTEL_SESSION_H
#define EBPF_OTEL_SESSION_H

#include <napi.h>

#include <atomic>
#include <cstddef>
#include <memory>

#include "js_util.h"
#include "ring_poller.h"
#include "trace_program.h"

namespace ebpf_otel {

// Runs on the JS thread for each batch taken from the queue; with a null env
// (teardown) it only frees the batch.
void DeliverBatch(Napi::Env env, Napi::Function on_batch, std::nullptr_t* context, Batch* batch);

// The constructor's options, converted on the JS thread.
struct SessionOptions {
  agent_config config;
  ProgramGroups groups;
  TcpOptions tcp;  // TCP health map bounds
  SyscallLatencyOptions syscalls;
  uint32_t ring_buffer_bytes;
  PollerOptions poller;
  size_t max_pending_batches;
};

// Each feature's options, read from the constructor's `options` with the
// feature's methods (throw TypeError/RangeError naming ctx.op).
TcpOptions ReadTcpOptions(const ArgContext& ctx, const Napi::Object& options);                         // tcp_health_session.cc
SyscallLatencyOptions ReadSyscallLatencyOptions(const ArgContext& ctx, const Napi::Object& options);  // syscall_latency_session.cc

class SocketTraceSession : public Napi::ObjectWrap<SocketTraceSession> {
 public:
  static Napi::Function Init(Napi::Env env);

  explicit SocketTraceSession(const Napi::CallbackInfo& info);
  ~SocketTraceSession() override;

 private:
  using BatchQueue = Napi::TypedThreadSafeFunction<std::nullptr_t, Batch, &DeliverBatch>;
  enum class CloseFrom { kJs, kEnvCleanup, kDestructor };

  Napi::Value Programs(const Napi::CallbackInfo& info);
  Napi::Value AttachAll(const Napi::CallbackInfo& info);
  Napi::Value AttachTracepoint(const Napi::CallbackInfo& info);
  Napi::Value AttachUprobe(const Napi::CallbackInfo& info);
  Napi::Value Detach(const Napi::CallbackInfo& info);
  Napi::Value Links(const Napi::CallbackInfo& info);
  Napi::Value SelectTgid(const Napi::CallbackInfo& info);
  Napi::Value SelectCgroup(const Napi::CallbackInfo& info);
  Napi::Value UpdateLinkMap(const Napi::CallbackInfo& info);
  Napi::Value SetExecNames(const Napi::CallbackInfo& info);
  Napi::Value SetConnectionModes(const Napi::CallbackInfo& info);
  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value FlushMethod(const Napi::CallbackInfo& info);
  Napi::Value CloseMethod(const Napi::CallbackInfo& info);
  Napi::Value ClosedGetter(const Napi::CallbackInfo& info);
  // TCP health and flows: tcp_health_session.cc.
  Napi::Value ReadTcpPeers(const Napi::CallbackInfo& info);
  Napi::Value ReadConnections(const Napi::CallbackInfo& info);
  Napi::Value DeleteTcpPeers(const Napi::CallbackInfo& info);
  // Syscall latency: syscall_latency_session.cc.
  Napi::Value ReadSyscallHistograms(const Napi::CallbackInfo& info);
  Napi::Value DeleteSyscallHistograms(const Napi::CallbackInfo& info);

  // The program, or a thrown ERR_SESSION_CLOSED naming `op`.
  TraceProgram& Open(Napi::Env env, const char* op);
  bool OfferBatch(std::unique_ptr<Batch>& batch);  // the poller's sink (poll thread)
  void Close(CloseFrom from);
  static void OnEnvCleanup(void* arg);

  napi_env env_;
  SessionOptions options_;
  std::shared_ptr<DeliveryCounters> counters_ = std::make_shared<DeliveryCounters>();
  std::unique_ptr<TraceProgram> program_;
  BatchQueue queue_;
  bool queue_live_ = false;
  std::atomic<bool> queue_closing_{false};  // NonBlockingCall said napi_closing: never call again
  std::unique_ptr<RingPoller> poller_;
  bool cleanup_hook_ = false;
  bool self_ref_ = false;
  bool closed_ = false;
};

}  // namespace ebpf_otel

#endif  // EBPF_OTEL_SESSION_H
