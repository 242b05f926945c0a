// Agent: the per-core poll loop. It runs its registered pollers round after round; each
// poller returns how much work it did, and a round with no work hands control to the idle
// strategy (spin, yield, or park on the agent's Waker). In the manner of Aeron's agents.
// The Waker may be bound to a word in shared memory before start() (Waker::bind_shared), so
// that other processes end a park too (the shm transport's doorbell).
//
// Pollers are plain function pointers with a context: one indirect call per poller per
// round, no std::function, nothing allocated once running. Register them before start().
//
// Threading: add_poller() before the loop runs; run() or start() then owns the agent's
// thread. request_stop(), wake() and stats() may be called from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <thread>

#include "runtime/cache_line.h"
#include "runtime/idle.h"
#include "runtime/result.h"

namespace cohort {

// Returns the amount of work done (items moved, frames handled); 0 means nothing to do.
using PollFn = uint32_t (*)(void* context) noexcept;

struct AgentStats {
  uint64_t rounds = 0;       // iterations of the loop
  uint64_t busy_rounds = 0;  // rounds in which some poller did work
  uint64_t work = 0;         // sum of the pollers' work counts
  uint64_t yields = 0;
  uint64_t parks = 0;
  uint64_t parked_ns = 0;  // time asleep on the futex, as asked (not measured)
};

class Agent {
 public:
  static constexpr int kMaxPollers = 16;

  Agent(const char* name, const IdleOptions& idle) noexcept;
  ~Agent();

  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  const char* name() const noexcept { return name_; }

  Status add_poller(const char* name, PollFn fn, void* context);

  // One round of every poller; returns the total work. For single-threaded drivers.
  uint32_t poll_once() noexcept;

  // Runs rounds on the calling thread until request_stop().
  void run() noexcept;

  // Runs the loop on a new thread, pinned to os_cpu when os_cpu >= 0.
  Status start(int os_cpu);
  // Asks the loop to end after its current round, and wakes it if parked.
  void request_stop() noexcept;
  // Waits for a thread started by start(); a no-op otherwise.
  void join();

  // Any thread, after handing this agent work (a ring item): ends a park early.
  void wake() noexcept { waker_.wake(); }
  Waker& waker() noexcept { return waker_; }

  // A snapshot of the counters, readable from any thread (each counter is relaxed).
  AgentStats stats() const noexcept;

 private:
  struct Poller {
    const char* name;
    PollFn fn;
    void* context;
  };

  // Called after a round with no work.
  void idle() noexcept;
  void publish_stats() noexcept;

  const char* const name_;
  IdleStrategy idle_;
  std::array<Poller, kMaxPollers> pollers_{};
  int poller_count_ = 0;
  AgentStats local_;  // owned by the loop thread; published every so many rounds

  alignas(kCacheLine) std::atomic<bool> stop_{false};
  Waker waker_;
  alignas(kCacheLine) struct {
    std::atomic<uint64_t> rounds{0}, busy_rounds{0}, work{0}, yields{0}, parks{0}, parked_ns{0};
  } shared_;
  std::thread thread_;
};

}  // namespace cohort
