// Asynchronous signals blocked on the calling thread for a scope; the thread's
// previous mask is restored when the scope ends.
//
// Why: the verifier gives up on a program with EAGAIN whenever a signal is
// pending for the loading thread (it checks signal_pending() as it walks the
// program), and libbpf's few retries do not outlast a steady stream of
// signals: under `node --cpu-prof` (SIGPROF every millisecond) the agent
// could not load at all. With the signals blocked, one sent to the process
// goes to another of its threads (Node has several; libuv forwards it to the
// event loop as always, which is busy with this load anyway), and one sent to
// this thread (V8's profiler sampler) waits and is delivered once the scope
// ends. Chosen over retrying on EAGAIN, which no bound makes certain, and
// over a dedicated loading thread, which only moves the same mask elsewhere.
//
// The synchronous signals (a fault in this thread) stay unblocked: blocking
// them would only turn a handled fault into a kill.
#ifndef EBPF_OTEL_SIGNAL_BLOCK_H
#define EBPF_OTEL_SIGNAL_BLOCK_H

#include <pthread.h>
#include <signal.h>

namespace ebpf_otel {

class SignalsBlocked {
 public:
  SignalsBlocked() {
    sigset_t blocked;
    sigfillset(&blocked);
    for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS}) sigdelset(&blocked, sig);
    active_ = pthread_sigmask(SIG_BLOCK, &blocked, &previous_) == 0;
  }
  ~SignalsBlocked() {
    if (active_) pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
  }
  SignalsBlocked(const SignalsBlocked&) = delete;
  SignalsBlocked& operator=(const SignalsBlocked&) = delete;

 private:
  sigset_t previous_;
  bool active_;
};

}  // namespace ebpf_otel

#endif  // EBPF_OTEL_SIGNAL_BLOCK_H
