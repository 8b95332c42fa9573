#include "ring_poller.h"

#include <bpf/libbpf.h>
#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <system_error>

#include "batch_format.h"
#include "bpf_error.h"
#include "libbpf_log.h"

namespace ebpf_otel {
namespace {
constexpr uint32_t kRingTag = 1;
constexpr uint32_t kWakeTag = 2;  // the eventfd: a stop or a flush request
// Free batch buffers kept for reuse (BatchPool): 2 MiB at the default 256 KiB.
// JavaScript gives batches back when V8 collects their Buffers, a few at a
// time after each scavenge; 8 covers what arrives between two at 20k req/s.
constexpr size_t kKeptBatches = 8;

int64_t MonotonicMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}
}  // namespace

// ---- BatchPool ----

BatchPool::~BatchPool() {
  for (uint8_t* data : free_) free(data);
}

uint8_t* BatchPool::Take(size_t capacity, bool* reused) {
  *reused = false;
  if (capacity == buffer_bytes_) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!free_.empty()) {
      uint8_t* data = free_.back();
      free_.pop_back();
      *reused = true;
      return data;
    }
  }
  // malloc: 16-aligned on our targets, so frames (8-aligned offsets) are too.
  return static_cast<uint8_t*>(malloc(capacity));
}

void BatchPool::Give(uint8_t* data, size_t capacity) {
  if (!data) return;
  if (capacity == buffer_bytes_) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (free_.size() < max_free_) {
      free_.push_back(data);
      return;
    }
  }
  free(data);
}

// ---- Batch ----

Batch::~Batch() { pool_->Give(data_, capacity_); }

std::unique_ptr<Batch> Batch::Allocate(size_t capacity, std::shared_ptr<DeliveryCounters> counters,
                                       std::shared_ptr<BatchPool> pool) {
  bool reused = false;
  uint8_t* data = pool->Take(capacity, &reused);
  if (!data) return nullptr;
  if (reused) counters->batches_reused.fetch_add(1, std::memory_order_relaxed);
  return std::make_unique<Batch>(data, capacity, std::move(counters), std::move(pool));
}

bool Batch::Fits(size_t record_bytes) const { return capacity_ - size_ >= batch_frame_bytes(record_bytes); }

void Batch::Append(const void* record, size_t record_bytes) {
  uint8_t* frame = data_ + size_;
  const uint32_t header[2] = {htole32(static_cast<uint32_t>(record_bytes)), 0};
  memcpy(frame, header, sizeof(header));
  memcpy(frame + BATCH_FRAME_HEADER_BYTES, record, record_bytes);
  size_t framed = batch_frame_bytes(record_bytes);
  size_t used = BATCH_FRAME_HEADER_BYTES + record_bytes;
  memset(frame + used, 0, framed - used);
  size_ += framed;
  records_++;
}

uint8_t* Batch::Release() {
  uint8_t* data = data_;
  data_ = nullptr;
  return data;
}

// ---- RingPoller ----

void RingPoller::RingBufferDeleter::operator()(ring_buffer* rb) const { ring_buffer__free(rb); }

RingPoller::RingPoller(int events_map_fd, const PollerOptions& options, std::shared_ptr<DeliveryCounters> counters,
                       Sink sink)
    : options_(options),
      counters_(std::move(counters)),
      pool_(std::make_shared<BatchPool>(options.batch_bytes, kKeptBatches)),
      sink_(std::move(sink)) {
  uint64_t mark = LibbpfLogMark();
  // The destructor does not run if we throw: close what we opened here.
  struct Fds {
    int epoll = -1, stop = -1;
    ~Fds() {
      if (epoll >= 0) close(epoll);
      if (stop >= 0) close(stop);
    }
  } fds;

  ring_.reset(ring_buffer__new(events_map_fd, &RingPoller::OnRecord, this, nullptr));
  if (!ring_) ThrowBpfError("start", errno, "cannot create the ring buffer reader", mark);
  fds.epoll = epoll_create1(EPOLL_CLOEXEC);
  if (fds.epoll < 0) ThrowBpfError("start", errno, "epoll_create1", mark);
  fds.stop = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fds.stop < 0) ThrowBpfError("start", errno, "eventfd", mark);

  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u32 = kRingTag;
  // libbpf's own epoll set is readable when a ring has data.
  if (epoll_ctl(fds.epoll, EPOLL_CTL_ADD, ring_buffer__epoll_fd(ring_.get()), &ev) < 0) {
    ThrowBpfError("start", errno, "epoll_ctl (ring buffer)", mark);
  }
  ev.data.u32 = kWakeTag;
  if (epoll_ctl(fds.epoll, EPOLL_CTL_ADD, fds.stop, &ev) < 0) ThrowBpfError("start", errno, "epoll_ctl (eventfd)", mark);

  epoll_fd_ = fds.epoll;
  stop_fd_ = fds.stop;
  fds.epoll = fds.stop = -1;

  // The thread takes no signals: they belong to Node's main thread.
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  running_.store(true, std::memory_order_release);
  try {
    thread_ = std::thread(&RingPoller::Run, this);
  } catch (const std::system_error& e) {
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    running_.store(false, std::memory_order_release);
    close(epoll_fd_);
    close(stop_fd_);
    ThrowBpfError("start", e.code().value(), "cannot start the poll thread", mark);
  }
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  pthread_setname_np(thread_.native_handle(), "ebpf-otel-poll");
}

RingPoller::~RingPoller() {
  Stop();
  if (epoll_fd_ >= 0) close(epoll_fd_);
  if (stop_fd_ >= 0) close(stop_fd_);
}

void RingPoller::Stop() {
  if (!thread_.joinable()) return;
  stop_requested_.store(true, std::memory_order_release);
  const uint64_t one = 1;
  ssize_t written = write(stop_fd_, &one, sizeof(one));
  (void)written;  // EAGAIN only if already signalled
  thread_.join();
}

void RingPoller::Flush() {
  if (!running_.load(std::memory_order_acquire)) return;
  flush_requested_.store(true, std::memory_order_release);
  const uint64_t one = 1;
  ssize_t written = write(stop_fd_, &one, sizeof(one));
  (void)written;  // EAGAIN only if already signalled
}

int RingPoller::WaitMs() const {
  if (!current_ || current_->records() == 0 || options_.batch_delay_ms == 0) return options_.poll_timeout_ms;
  if (prompt_) return 0;
  int64_t left = batch_due_ms_ - MonotonicMs();
  if (left <= 0) return 0;
  return left < options_.poll_timeout_ms ? static_cast<int>(left) : options_.poll_timeout_ms;
}

std::string RingPoller::error() const {
  std::lock_guard<std::mutex> lock(error_mutex_);
  return error_;
}

void RingPoller::Fail(const std::string& what, int err) {
  if (err < 0) err = -err;
  char buf[128];
  std::lock_guard<std::mutex> lock(error_mutex_);
  error_ = what + ": " + strerror_r(err, buf, sizeof(buf)) + " (" + ErrnoName(err) + ")";
}

void RingPoller::Run() noexcept {
  try {
    epoll_event events[2];
    bool stopping = false;
    while (!stopping && !stop_requested_.load(std::memory_order_acquire)) {
      int n = epoll_wait(epoll_fd_, events, 2, WaitMs());
      counters_->polls.fetch_add(1, std::memory_order_relaxed);
      if (n < 0) {
        if (errno == EINTR) continue;
        Fail("epoll_wait", errno);
        break;
      }
      for (int i = 0; i < n; i++) {
        if (events[i].data.u32 != kWakeTag) continue;
        uint64_t count;
        ssize_t got = read(stop_fd_, &count, sizeof(count));  // re-arm it; EAGAIN if already read
        (void)got;
        if (stop_requested_.load(std::memory_order_acquire)) stopping = true;
      }
      if (stopping) break;
      // Whether woken or timed out: records submitted without a wakeup wait too.
      int consumed = ring_buffer__consume(ring_.get());
      if (consumed == -ECANCELED) break;  // OnRecord saw a stop request
      if (consumed < 0) {
        Fail("ring_buffer__consume", consumed);
        break;
      }
      const bool asked = flush_requested_.exchange(false, std::memory_order_acq_rel);
      if (asked || options_.batch_delay_ms == 0 || WaitMs() == 0) Deliver(false);
    }
  } catch (const std::exception& e) {
    std::lock_guard<std::mutex> lock(error_mutex_);
    error_ = std::string("poll thread: ") + e.what();
  } catch (...) {
    std::lock_guard<std::mutex> lock(error_mutex_);
    error_ = "poll thread: unknown exception";
  }
  if (current_) {
    counters_->CountDropped(current_->records(), current_->size());
    current_.reset();
  }
  running_.store(false, std::memory_order_release);
}

int RingPoller::OnRecord(void* ctx, void* data, size_t size) {
  auto* self = static_cast<RingPoller*>(ctx);
  self->Append(data, size);
  // libbpf keeps consuming while the producer keeps producing; a negative
  // return is the only way out of a ring buffer that never empties.
  return self->stop_requested_.load(std::memory_order_relaxed) ? -ECANCELED : 0;
}

void RingPoller::Append(const void* record, size_t size) {
  if (current_ && !current_->Fits(size)) Deliver(true);
  if (!current_) {
    size_t framed = batch_frame_bytes(size);
    current_ = Batch::Allocate(framed > options_.batch_bytes ? framed : options_.batch_bytes, counters_, pool_);
    if (!current_) {
      counters_->CountDropped(1, framed);
      return;
    }
  }
  if (current_->records() == 0 && options_.batch_delay_ms > 0) batch_due_ms_ = MonotonicMs() + options_.batch_delay_ms;
  if (options_.prompt_types != 0 && size >= sizeof(uint32_t)) {
    uint32_t type;
    memcpy(&type, record, sizeof(type));
    type = le32toh(type);
    if (type < 32 && (options_.prompt_types & (1u << type))) prompt_ = true;
  }
  current_->Append(record, size);
}

void RingPoller::Deliver(bool full) {
  prompt_ = false;
  if (!current_ || current_->records() == 0) return;
  uint32_t records = current_->records();
  size_t bytes = current_->size();
  if (!sink_(current_)) counters_->CountDropped(records, bytes);
  else if (full) counters_->batches_full.fetch_add(1, std::memory_order_relaxed);
  current_.reset();  // no-op if the sink took it
}

}  // namespace ebpf_otel
