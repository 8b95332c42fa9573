#include "session.h"

#include <string.h>
#include <unistd.h>

#include <cstdlib>

#include "batch_format.h"
#include "js_util.h"

namespace ebpf_otel {
namespace {

bool IsPowerOfTwo(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

SessionOptions ReadSessionOptions(const ArgContext& ctx, const Napi::Object& options) {
  SessionOptions out{};
  Napi::Object config = ReadObject(ctx, options.Get("config"), "options.config");
  agent_config& c = out.config;
  c.agent_tgid = static_cast<uint32_t>(ReadInteger(ctx, config.Get("agentTgid"), "config.agentTgid", 0, kMaxU32));
  c.capture_bytes =
      static_cast<uint32_t>(ReadInteger(ctx, config.Get("captureBytes"), "config.captureBytes", 0, MAX_PAYLOAD));
  c.wakeup_bytes = static_cast<uint32_t>(ReadInteger(ctx, config.Get("wakeupBytes"), "config.wakeupBytes", 0, kMaxU32));
  c.select_all = ReadBoolean(ctx, config.Get("selectAll"), "config.selectAll");
  c.capture_udp = ReadBoolean(ctx, config.Get("captureUdp"), "config.captureUdp");
  c.follow_forks = ReadBoolean(ctx, config.Get("followForks"), "config.followForks");
  c.report_execs = ReadBoolean(ctx, config.Get("reportExecs"), "config.reportExecs");
  c.pidns_dev = ReadBigUint64(ctx, config.Get("pidnsDev"), "config.pidnsDev");
  c.pidns_ino = ReadBigUint64(ctx, config.Get("pidnsIno"), "config.pidnsIno");
  c.initial_mode = static_cast<uint8_t>(ReadInteger(ctx, config.Get("initialMode"), "config.initialMode", MODE_FULL, MODE_MUTED));

  Napi::Object groups = ReadObject(ctx, options.Get("groups"), "options.groups");
  out.groups.sockets = ReadBoolean(ctx, groups.Get("sockets"), "groups.sockets");
  out.groups.syscalls = ReadBoolean(ctx, groups.Get("syscalls"), "groups.syscalls");
  out.groups.tcp = ReadBoolean(ctx, groups.Get("tcp"), "groups.tcp");
  // Optional: callers written before the group existed leave it out.
  out.groups.tls = groups.Has("tls") && ReadBoolean(ctx, groups.Get("tls"), "groups.tls");
  out.groups.links = groups.Has("links") && ReadBoolean(ctx, groups.Get("links"), "groups.links");
  // The features' options, in this order: the first bad option is the one reported.
  out.tcp = ReadTcpOptions(ctx, options);
  out.syscalls = ReadSyscallLatencyOptions(ctx, options);

  const long page = sysconf(_SC_PAGESIZE);
  double ring = ReadInteger(ctx, options.Get("ringBufferBytes"), "options.ringBufferBytes", 0, 2147483648.0);
  uint64_t ring_bytes = static_cast<uint64_t>(ring);
  if (!IsPowerOfTwo(ring_bytes) || ring_bytes % static_cast<uint64_t>(page) != 0) {
    throw MakeJsError(ctx.env, JsErrorKind::kRangeError, "ERR_INVALID_ARG_VALUE", ctx.op,
                      std::string(ctx.op) + ": options.ringBufferBytes must be a power of two and a multiple of the " +
                          "page size (" + std::to_string(page) + " bytes), at most 2 GiB; got " +
                          std::to_string(ring_bytes));
  }
  out.ring_buffer_bytes = static_cast<uint32_t>(ring_bytes);
  out.poller.batch_bytes = static_cast<size_t>(
      ReadInteger(ctx, options.Get("batchBytes"), "options.batchBytes", 2 * BATCH_FRAME_HEADER_BYTES, 1 << 30));
  out.max_pending_batches = static_cast<size_t>(
      ReadInteger(ctx, options.Get("maxPendingBatches"), "options.maxPendingBatches", 1, 1 << 20));
  out.poller.poll_timeout_ms =
      static_cast<int>(ReadInteger(ctx, options.Get("pollTimeoutMs"), "options.pollTimeoutMs", 1, 3600000));
  out.poller.batch_delay_ms =
      static_cast<int>(ReadInteger(ctx, options.Get("batchDelayMs"), "options.batchDelayMs", 0, 3600000));
  // Selection reacts to these (a glob-selected program is selected by user
  // space at its exec): held, a short-lived one would be over before.
  out.poller.prompt_types = (1u << EV_EXEC) | (1u << EV_FORK) | (1u << EV_EXIT);
  return out;
}

}  // namespace

void DeliverBatch(Napi::Env env, Napi::Function on_batch, std::nullptr_t* /*context*/, Batch* raw) {
  std::unique_ptr<Batch> batch(raw);
  if (!batch) return;
  DeliveryCounters& counters = batch->counters();
  if (env == nullptr || on_batch.IsEmpty() || counters.closed.load(std::memory_order_acquire)) {
    counters.CountDropped(batch->records(), batch->size());
    return;
  }
  const size_t size = batch->size();
  const size_t capacity = batch->capacity();
  const uint32_t records = batch->records();

  std::shared_ptr<BatchPool> pool = batch->pool();
  uint8_t* memory = batch->Release();
  Napi::Buffer<uint8_t> buffer;
  try {
    buffer = Napi::Buffer<uint8_t>::New(env, memory, size, [capacity, pool](Napi::Env finalize_env, uint8_t* data) {
      pool->Give(data, capacity);
      Napi::MemoryManagement::AdjustExternalMemory(finalize_env, -static_cast<int64_t>(capacity));
    });
  } catch (...) {
    pool->Give(memory, capacity);
    throw;
  }
  Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(capacity));
  counters.batches_delivered.fetch_add(1, std::memory_order_relaxed);
  counters.records_delivered.fetch_add(records, std::memory_order_relaxed);
  try {
    on_batch.Call({buffer, Napi::Number::New(env, records)});
  } catch (const Napi::Error& error) {
    // Node 20 would swallow an exception thrown out of a thread-safe function
    // callback (DEP0168); make it an 'uncaughtException' like any callback's.
    napi_fatal_exception(env, error.Value());
  }
}

Napi::Function SocketTraceSession::Init(Napi::Env env) {
  return DefineClass(env, "SocketTraceSession",
                     {
                         InstanceMethod<&SocketTraceSession::Programs>("programs"),
                         InstanceMethod<&SocketTraceSession::AttachAll>("attachAll"),
                         InstanceMethod<&SocketTraceSession::AttachTracepoint>("attachTracepoint"),
                         InstanceMethod<&SocketTraceSession::AttachUprobe>("attachUprobe"),
                         InstanceMethod<&SocketTraceSession::Detach>("detach"),
                         InstanceMethod<&SocketTraceSession::Links>("links"),
                         InstanceMethod<&SocketTraceSession::SelectTgid>("selectTgid"),
                         InstanceMethod<&SocketTraceSession::SelectCgroup>("selectCgroup"),
                         InstanceMethod<&SocketTraceSession::UpdateLinkMap>("updateLinkMap"),
                         InstanceMethod<&SocketTraceSession::SetExecNames>("setExecNames"),
                         InstanceMethod<&SocketTraceSession::SetConnectionModes>("setConnectionModes"),
                         InstanceMethod<&SocketTraceSession::ReadTcpPeers>("readTcpPeers"),
                         InstanceMethod<&SocketTraceSession::ReadConnections>("readConnections"),
                         InstanceMethod<&SocketTraceSession::DeleteTcpPeers>("deleteTcpPeers"),
                         InstanceMethod<&SocketTraceSession::ReadSyscallHistograms>("readSyscallHistograms"),
                         InstanceMethod<&SocketTraceSession::DeleteSyscallHistograms>("deleteSyscallHistograms"),
                         InstanceMethod<&SocketTraceSession::Start>("start"),
                         InstanceMethod<&SocketTraceSession::Stats>("stats"),
                         InstanceMethod<&SocketTraceSession::FlushMethod>("flush"),
                         InstanceMethod<&SocketTraceSession::CloseMethod>("close"),
                         InstanceAccessor<&SocketTraceSession::ClosedGetter>("closed"),
                     });
}

SocketTraceSession::SocketTraceSession(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<SocketTraceSession>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  if (!info.IsConstructCall()) {
    throw MakeJsError(env, JsErrorKind::kTypeError, "ERR_CONSTRUCT_CALL_REQUIRED", "SocketTraceSession",
                      "SocketTraceSession must be called with new");
  }
  const ArgContext ctx{env, "SocketTraceSession"};
  Napi::Object options = ReadObject(ctx, info[0], "options");
  options_ = ReadSessionOptions(ctx, options);
  Napi::Function on_batch = ReadFunction(ctx, options.Get("onBatch"), "options.onBatch");

  program_ = TranslateErrors(env, [&] { return std::make_unique<TraceProgram>(options_.config, options_.ring_buffer_bytes, options_.groups, options_.tcp, options_.syscalls); });

  // One thread (the poller) uses the queue. It does not keep the event loop
  // alive until start().
  queue_ = BatchQueue::New(env, on_batch, "ebpf-otel:batch", options_.max_pending_batches, 1);
  queue_live_ = true;
  queue_.Unref(env);

  // Registered after the thread-safe function: cleanup hooks run in reverse
  // order, so ours joins the thread before Node tears the queue down.
  if (napi_add_env_cleanup_hook(env, &SocketTraceSession::OnEnvCleanup, this) == napi_ok) cleanup_hook_ = true;
}

SocketTraceSession::~SocketTraceSession() { Close(CloseFrom::kDestructor); }

void SocketTraceSession::OnEnvCleanup(void* arg) { static_cast<SocketTraceSession*>(arg)->Close(CloseFrom::kEnvCleanup); }

void SocketTraceSession::Close(CloseFrom from) {
  if (closed_) return;
  closed_ = true;
  counters_->closed.store(true, std::memory_order_release);
  poller_.reset();  // stop and join: no more NonBlockingCall
  if (queue_live_) {
    queue_.Abort();  // releases the poller's thread count; queued batches are freed, not delivered
    queue_live_ = false;
  }
  program_.reset();  // links, then the skeleton
  if (cleanup_hook_ && from != CloseFrom::kEnvCleanup) {
    napi_remove_env_cleanup_hook(env_, &SocketTraceSession::OnEnvCleanup, this);
  }
  cleanup_hook_ = false;
  if (self_ref_ && from == CloseFrom::kJs) Unref();
  self_ref_ = false;
}

TraceProgram& SocketTraceSession::Open(Napi::Env env, const char* op) {
  if (closed_) {
    throw MakeJsError(env, JsErrorKind::kError, "ERR_SESSION_CLOSED", op,
                      std::string("SocketTraceSession.") + op + "(): the session is closed");
  }
  return *program_;
}

bool SocketTraceSession::OfferBatch(std::unique_ptr<Batch>& batch) {
  if (queue_closing_.load(std::memory_order_relaxed)) return false;
  napi_status status = queue_.NonBlockingCall(batch.get());
  if (status == napi_ok) {
    batch.release();  // DeliverBatch owns it now
    return true;
  }
  if (status == napi_closing) queue_closing_.store(true, std::memory_order_relaxed);
  return false;  // napi_queue_full: the poller drops and counts it
}

Napi::Value SocketTraceSession::Programs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<ProgramInfo> programs = Open(env, "programs").Programs();
  Napi::Array out = Napi::Array::New(env, programs.size());
  for (size_t i = 0; i < programs.size(); i++) {
    Napi::Object p = Napi::Object::New(env);
    p.Set("name", programs[i].name);
    p.Set("section", programs[i].section);
    p.Set("type", programs[i].type);
    p.Set("autoAttach", programs[i].auto_attach);
    p.Set("id", programs[i].id);
    out.Set(static_cast<uint32_t>(i), p);
  }
  return out;
}

Napi::Value SocketTraceSession::AttachAll(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TraceProgram& program = Open(env, "attachAll");
  std::vector<std::string> names = TranslateErrors(env, [&] { return program.AttachAll(); });
  Napi::Array out = Napi::Array::New(env, names.size());
  for (size_t i = 0; i < names.size(); i++) out.Set(static_cast<uint32_t>(i), names[i]);
  return out;
}

Napi::Value SocketTraceSession::AttachTracepoint(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TraceProgram& program = Open(env, "attachTracepoint");
  const ArgContext ctx{env, "attachTracepoint"};
  std::string prog = ReadString(ctx, info[0], "program");
  std::string category = ReadString(ctx, info[1], "category");
  std::string name = ReadString(ctx, info[2], "name");
  uint32_t id = TranslateErrors(env, [&] { return program.AttachTracepoint(prog, category, name); });
  return Napi::Number::New(env, id);
}

Napi::Value SocketTraceSession::AttachUprobe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TraceProgram& program = Open(env, "attachUprobe");
  const ArgContext ctx{env, "attachUprobe"};
  std::string prog = ReadString(ctx, info[0], "program");
  UprobeTarget target;
  target.binary_path = ReadString(ctx, info[1], "binaryPath");
  if (target.binary_path.empty()) {
    throw MakeJsError(env, JsErrorKind::kRangeError, "ERR_INVALID_ARG_VALUE", ctx.op,
                      "attachUprobe: binaryPath must not be empty");
  }
  if (info[2].IsString()) {
    target.symbol = info[2].As<Napi::String>().Utf8Value();
    if (target.symbol.empty()) {
      throw MakeJsError(env, JsErrorKind::kRangeError, "ERR_INVALID_ARG_VALUE", ctx.op,
                        "attachUprobe: symbolOrOffset must be a non-empty symbol or a file offset");
    }
  } else {
    target.offset = static_cast<uint64_t>(ReadInteger(ctx, info[2], "symbolOrOffset", 0, kMaxSafeInteger));
  }
  if (!info[3].IsUndefined()) {
    Napi::Object opts = ReadObject(ctx, info[3], "opts");
    Napi::Value pid = opts.Get("pid");
    if (!pid.IsUndefined()) target.pid = static_cast<pid_t>(ReadInteger(ctx, pid, "opts.pid", 0, 4194304));
    Napi::Value retprobe = opts.Get("retprobe");
    if (!retprobe.IsUndefined()) target.retprobe = ReadBoolean(ctx, retprobe, "opts.retprobe");
    Napi::Value cookie = opts.Get("cookie");
    if (!cookie.IsUndefined()) target.cookie = static_cast<uint64_t>(ReadInteger(ctx, cookie, "opts.cookie", 0, kMaxSafeInteger));
  }
  uint32_t id = TranslateErrors(env, [&] { return program.AttachUprobe(prog, target); });
  return Napi::Number::New(env, id);
}

Napi::Value SocketTraceSession::Detach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TraceProgram& program = Open(env, "detach");
  const ArgContext ctx{env, "detach"};
  uint32_t id = static_cast<uint32_t>(ReadInteger(ctx, info[0], "linkId", 1, kMaxU32));
  TranslateErrors(env, [&] { program.Detach(id); });
  return env.Undefined();
}

Napi::Value SocketTraceSession::Links(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<LinkInfo> links = Open(env, "links").Links();
  Napi::Array out = Napi::Array::New(env, links.size());
  for (size_t i = 0; i < links.size(); i++) {
    Napi::Object l = Napi::Object::New(env);
    l.Set("id", links[i].id);
    l.Set("program", links[i].program);
    l.Set("target", links[i].target);
    out.Set(static_cast<uint32_t>(i), l);
  }
  return out;
}

Napi::Value SocketTraceSession::SelectTgid(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TraceProgram& program = Open(env, "selectTgid");
  const ArgContext ctx{env, "selectTgid"};
  uint32_t tgid = static_cast<uint32_t>(ReadInteger(ctx, info[0], "tgid", 1, kMaxU32));
  bool on = ReadBoolean(ctx, info[1], "on");
  TranslateErrors(env, [&] { program.SelectTgid(tgid, on); });
  return env.Undefined();
}

Napi::Value SocketTraceSession::SelectCgroup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TraceProgram& program = Open(env, "selectCgroup");
  const ArgContext ctx{env, "selectCgroup"};
  uint64_t id = ReadBigUint64(ctx, info[0], "cgroupId");
  bool on = ReadBoolean(ctx, info[1], "on");
  TranslateErrors(env, [&] { program.SelectCgroup(id, on); });
  return env.Undefined();
}

Napi::Value SocketTraceSession::UpdateLinkMap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TraceProgram& program = Open(env, "updateLinkMap");
  const ArgContext ctx{env, "updateLinkMap"};
  std::string map = ReadString(ctx, info[0], "map");
  if (!info[1].IsBuffer() || !info[2].IsBuffer()) {
    throw MakeJsError(env, JsErrorKind::kTypeError, "ERR_INVALID_ARG_TYPE", ctx.op, "updateLinkMap: key and value must be Buffers");
  }
  Napi::Buffer<uint8_t> k = info[1].As<Napi::Buffer<uint8_t>>();
  Napi::Buffer<uint8_t> v = info[2].As<Napi::Buffer<uint8_t>>();
  std::vector<uint8_t> key(k.Data(), k.Data() + k.Length());
  std::vector<uint8_t> value(v.Data(), v.Data() + v.Length());
  TranslateErrors(env, [&] { program.UpdateLinkMap(map, key, value); });
  return env.Undefined();
}

Napi::Value SocketTraceSession::SetExecNames(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TraceProgram& program = Open(env, "setExecNames");
  const ArgContext ctx{env, "setExecNames"};
  if (!info[0].IsArray()) {
    throw MakeJsError(env, JsErrorKind::kTypeError, "ERR_INVALID_ARG_TYPE", ctx.op,
                      "setExecNames: names must be an array of strings");
  }
  Napi::Array array = info[0].As<Napi::Array>();
  std::vector<std::string> names;
  for (uint32_t i = 0; i < array.Length(); i++) {
    std::string name = ReadString(ctx, array.Get(i), "names[" + std::to_string(i) + "]");
    if (name.empty() || name.size() > TASK_COMM_LEN - 1 || memchr(name.data(), '\0', name.size())) {
      throw MakeJsError(env, JsErrorKind::kRangeError, "ERR_INVALID_ARG_VALUE", ctx.op,
                        "setExecNames: names[" + std::to_string(i) + "] ('" + name + "') must be 1 to " +
                            std::to_string(TASK_COMM_LEN - 1) + " bytes of UTF-8 without NUL (the kernel's comm " +
                            "is cut at " + std::to_string(TASK_COMM_LEN - 1) + "); it is " +
                            std::to_string(name.size()) + " bytes");
    }
    names.push_back(std::move(name));
  }
  TranslateErrors(env, [&] { program.SetExecNames(names); });
  return env.Undefined();
}

Napi::Value SocketTraceSession::SetConnectionModes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TraceProgram& program = Open(env, "setConnectionModes");
  const ArgContext ctx{env, "setConnectionModes"};
  if (!info[0].IsArray()) {
    throw MakeJsError(env, JsErrorKind::kTypeError, "ERR_INVALID_ARG_TYPE", ctx.op,
                      "setConnectionModes: connIds must be an array of connection ids");
  }
  Napi::Array array = info[0].As<Napi::Array>();
  std::vector<uint64_t> ids;
  ids.reserve(array.Length());
  for (uint32_t i = 0; i < array.Length(); i++) {
    // Ids come from the kernel's u64 counter; as JS numbers they are exact below 2^53.
    ids.push_back(static_cast<uint64_t>(
        ReadInteger(ctx, array.Get(i), "connIds[" + std::to_string(i) + "]", 1, kMaxSafeInteger)));
  }
  uint32_t mode = static_cast<uint32_t>(ReadInteger(ctx, info[1], "mode", MODE_FULL, MODE_MUTED));
  size_t stored = 0;
  try {
    program.SetConnectionModes(ids, mode, &stored);
  } catch (const BpfError& error) {
    Napi::Error js = ToJsError(env, error);
    js.Value().Set("stored", static_cast<double>(stored));  // these took effect
    throw js;
  }
  return Napi::Number::New(env, static_cast<double>(stored));
}

Napi::Value SocketTraceSession::Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TraceProgram& program = Open(env, "start");
  if (poller_) {
    throw MakeJsError(env, JsErrorKind::kError, "ERR_SESSION_STARTED", "start",
                      "SocketTraceSession.start(): already started");
  }
  poller_ = TranslateErrors(env, [&] {
    return std::make_unique<RingPoller>(program.EventsMapFd(), options_.poller, counters_,
                                        [this](std::unique_ptr<Batch>& batch) { return OfferBatch(batch); });
  });
  // Like a listening server: a started session keeps the process alive, and
  // this object, until close().
  queue_.Ref(env);
  Ref();
  self_ref_ = true;
  return env.Undefined();
}

Napi::Value SocketTraceSession::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TraceProgram& program = Open(env, "stats");
  std::array<uint64_t, STAT__COUNT> kernel = TranslateErrors(env, [&] { return program.KernelStats(); });
  Napi::Array kernel_js = Napi::Array::New(env, kernel.size());
  for (size_t i = 0; i < kernel.size(); i++) kernel_js.Set(static_cast<uint32_t>(i), Napi::BigInt::New(env, kernel[i]));

  auto number = [&](const std::atomic<uint64_t>& v) {
    return Napi::Number::New(env, static_cast<double>(v.load(std::memory_order_relaxed)));
  };
  Napi::Object out = Napi::Object::New(env);
  out.Set("kernel", kernel_js);
  out.Set("batchesDelivered", number(counters_->batches_delivered));
  out.Set("recordsDelivered", number(counters_->records_delivered));
  out.Set("batchesDropped", number(counters_->batches_dropped));
  out.Set("recordsDropped", number(counters_->records_dropped));
  out.Set("bytesDropped", number(counters_->bytes_dropped));
  out.Set("polls", number(counters_->polls));
  out.Set("batchesFull", number(counters_->batches_full));
  out.Set("batchesReused", number(counters_->batches_reused));
  out.Set("running", poller_ != nullptr && poller_->running());
  std::string error = poller_ ? poller_->error() : std::string();
  out.Set("pollError", error.empty() ? env.Null() : Napi::String::New(env, error));
  return out;
}

Napi::Value SocketTraceSession::FlushMethod(const Napi::CallbackInfo& info) {
  Open(info.Env(), "flush");
  if (poller_) poller_->Flush();
  return info.Env().Undefined();
}

Napi::Value SocketTraceSession::CloseMethod(const Napi::CallbackInfo& info) {
  Close(CloseFrom::kJs);
  return info.Env().Undefined();
}

Napi::Value SocketTraceSession::ClosedGetter(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), closed_);
}

}  // namespace ebpf_otel
