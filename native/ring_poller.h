// The poll thread: drains the events ring buffer into batches.
//
// One thread waits on the ring buffer (epoll, at most poll_timeout_ms), then
// consumes everything available, whether the wait returned for data or timed
// out: the BPF side may submit without waking us (wakeup_bytes), and that
// data must not wait for the next wakeup. The kernel ring is therefore
// drained as often as before whatever the batching below.
//
// The batch goes to the sink when the next record would not fit in
// batch_bytes, or once batch_delay_ms have passed since its first record was
// consumed (0: at the end of every wait). Each hand-off wakes the JS thread
// and costs it a fixed amount of work, so at low rates fewer, fuller batches
// are cheaper per record; a record waits at most poll_timeout_ms in the ring
// plus batch_delay_ms here. Records of the prompt_types (process events,
// which user-space selection reacts to) are not held. Flush() hands over
// what is held at once (before a stop, so nothing held is lost).
//
// The sink must not block. When it refuses a batch (the JS queue is full)
// the batch is dropped and counted; the thread goes on draining the kernel
// side. No N-API here: the sink is the only way out.
//
// Stop() wakes the thread through an eventfd (and, if it is busy draining a
// ring buffer that never empties, through the record callback) and joins it;
// the batch being filled is dropped (and counted): Flush() first to keep it. Counters are atomics read
// by any thread.
#ifndef EBPF_OTEL_RING_POLLER_H
#define EBPF_OTEL_RING_POLLER_H

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

struct ring_buffer;

namespace ebpf_otel {

struct DeliveryCounters {
  std::atomic<uint64_t> batches_delivered{0};  // handed to the JS callback
  std::atomic<uint64_t> records_delivered{0};
  std::atomic<uint64_t> batches_dropped{0};    // JS queue full, or discarded at close
  std::atomic<uint64_t> records_dropped{0};
  std::atomic<uint64_t> bytes_dropped{0};      // framed bytes, headers included
  std::atomic<uint64_t> polls{0};              // waits on the ring buffer that returned
  std::atomic<uint64_t> batches_full{0};       // of the delivered: handed over because batch_bytes was reached
  std::atomic<uint64_t> batches_reused{0};     // batches written into a kept buffer (BatchPool), not a fresh one
  std::atomic<bool> closed{false};             // set at close: queued batches are discarded

  void CountDropped(uint64_t records, uint64_t bytes) {
    batches_dropped.fetch_add(1, std::memory_order_relaxed);
    records_dropped.fetch_add(records, std::memory_order_relaxed);
    bytes_dropped.fetch_add(bytes, std::memory_order_relaxed);
  }
};

// Batch memory of the usual size (batch_bytes), kept for reuse. A batch
// larger than the mmap threshold (native/addon.cc) is a fresh mapping when
// malloc'ed: every page faults on its first touch on the poll thread and is
// unmapped, with a TLB shootdown, when JavaScript frees it. Measured
// (bench/agent-cost --perf), that was 1.3-1.6 us of agent CPU per request.
// A few free buffers kept here are faulted in already; more than max_free
// go back to the allocator, so RSS stays bounded by max_free buffers plus
// the batches JavaScript still holds. Taken on the poll thread, given back
// by the Buffer finalizer on the main thread: a mutex.
class BatchPool {
 public:
  BatchPool(size_t buffer_bytes, size_t max_free) : buffer_bytes_(buffer_bytes), max_free_(max_free) {}
  ~BatchPool();
  BatchPool(const BatchPool&) = delete;
  BatchPool& operator=(const BatchPool&) = delete;

  // A buffer of `capacity` bytes (from malloc): a kept one, and *reused
  // true, when capacity is the usual size and one is free; nullptr if memory
  // is short.
  uint8_t* Take(size_t capacity, bool* reused);
  // Takes back a buffer from Take() (or frees it).
  void Give(uint8_t* data, size_t capacity);

 private:
  const size_t buffer_bytes_;
  const size_t max_free_;
  std::mutex mutex_;
  std::vector<uint8_t*> free_;
};

// A batch of framed records (batch_format.h). Owns `data` until Release().
class Batch {
 public:
  Batch(uint8_t* data, size_t capacity, std::shared_ptr<DeliveryCounters> counters, std::shared_ptr<BatchPool> pool)
      : data_(data), capacity_(capacity), counters_(std::move(counters)), pool_(std::move(pool)) {}
  ~Batch();
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;

  // Allocates an empty batch; nullptr if memory is short.
  static std::unique_ptr<Batch> Allocate(size_t capacity, std::shared_ptr<DeliveryCounters> counters,
                                         std::shared_ptr<BatchPool> pool);

  bool Fits(size_t record_bytes) const;
  void Append(const void* record, size_t record_bytes);  // caller checked Fits()

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  uint32_t records() const { return records_; }
  DeliveryCounters& counters() const { return *counters_; }
  // Where the memory goes back once the caller is done with it.
  const std::shared_ptr<BatchPool>& pool() const { return pool_; }
  // Hands the memory to the caller, who gives it back with pool()->Give(data, capacity()).
  uint8_t* Release();

 private:
  uint8_t* data_;
  size_t capacity_;
  size_t size_ = 0;
  uint32_t records_ = 0;
  std::shared_ptr<DeliveryCounters> counters_;
  std::shared_ptr<BatchPool> pool_;
};

struct PollerOptions {
  size_t batch_bytes;      // a record larger than this gets a batch of its own
  int poll_timeout_ms;     // > 0
  int batch_delay_ms = 0;  // >= 0: longest a batch waits for more records; 0: handed over after every wait
  // Bit n set: a batch holding a record whose leading u32 type tag is n goes
  // at the end of the wait that read it, whatever batch_delay_ms says.
  uint32_t prompt_types = 0;
};

class RingPoller {
 public:
  // Takes a full batch; returns false to refuse it (it is then dropped and
  // counted). Called on the poll thread only; must not block.
  using Sink = std::function<bool(std::unique_ptr<Batch>& batch)>;

  // Creates the ring buffer reader and starts the thread (BpfError, op 'start').
  RingPoller(int events_map_fd, const PollerOptions& options, std::shared_ptr<DeliveryCounters> counters, Sink sink);
  ~RingPoller();  // Stop()
  RingPoller(const RingPoller&) = delete;
  RingPoller& operator=(const RingPoller&) = delete;

  // Wakes and joins the thread. Idempotent; main thread only.
  void Stop();
  // Asks the thread to consume the ring and hand over the batch it holds now,
  // without waiting for it. Any thread.
  void Flush();

  bool running() const { return running_.load(std::memory_order_acquire); }
  // Why the thread stopped on its own (empty while it runs or was stopped).
  std::string error() const;

 private:
  struct RingBufferDeleter { void operator()(ring_buffer* rb) const; };

  void Run() noexcept;
  static int OnRecord(void* ctx, void* data, size_t size);
  void Append(const void* record, size_t size);
  void Deliver(bool full);
  // ms until the held batch is due (0 if due or none held with a delay); at most poll_timeout_ms.
  int WaitMs() const;
  void Fail(const std::string& what, int err);

  PollerOptions options_;
  std::shared_ptr<DeliveryCounters> counters_;
  std::shared_ptr<BatchPool> pool_;
  Sink sink_;
  std::unique_ptr<ring_buffer, RingBufferDeleter> ring_;
  int epoll_fd_ = -1;
  int stop_fd_ = -1;  // eventfd
  std::unique_ptr<Batch> current_;
  std::atomic<bool> running_{false};
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> flush_requested_{false};
  int64_t batch_due_ms_ = 0;
  bool prompt_ = false;  // the held batch has a record of prompt_types  // CLOCK_MONOTONIC ms at which the held batch goes, whatever its size
  mutable std::mutex error_mutex_;
  std::string error_;
  std::thread thread_;
};

}  // namespace ebpf_otel

#endif  // EBPF_OTEL_RING_POLLER_H
