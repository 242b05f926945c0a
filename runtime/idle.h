// Idle policies for poll loops, and the Waker that lets another core end a sleep.
//
// A poll loop that finds no work asks its IdleStrategy what to do next:
//   busy     spin with a pause hint, forever (latency benchmarks, one thread per core);
//   spin_yield  spin spin_iterations times, then sched_yield() on every idle iteration;
//   backoff  spin, then yield, then park on a futex for growing periods up to max_park_ns,
//            so a core with nothing to do uses no CPU (tests, demos, shared machines).
// A parked loop wakes when its park period ends (timers keep running) or when another
// thread calls Waker::wake() after handing it work. A Waker bound to a word in shared memory
// (bind_shared) is also woken by other processes: wake_announced() after they published work
// the loop reads (the shm transport's doorbell, transport/NOTES.md).
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>

#include "runtime/cache_line.h"
#include "runtime/result.h"

namespace cohort {

enum class IdleKind : uint8_t { kBusy, kSpinYield, kBackoff };

Result<IdleKind> parse_idle_kind(std::string_view name);
const char* idle_kind_name(IdleKind kind) noexcept;

struct IdleOptions {
  IdleKind kind = IdleKind::kBackoff;
  // Idle polls spinning before the first yield. Each is a whole round of the loop's pollers,
  // not just a pause hint: a group member's round costs 0.5-1 us, so the former 2000 spun for
  // 1-2 ms, as long as the gaps between records at 2000 msgs/s, and 3 backoff members on 2
  // cpus never parked (strace of one: ~18,000 recvmmsg and no futex call in a second) and
  // took turns on the cpus instead (lat3 p50 ~1.3 ms). Now that a peer's append ends a park
  // (shm doorbell, transport/NOTES.md), spinning only saves a wake-up (~30-60 us here): 100
  // rounds, ~50-100 us.
  uint32_t spin_iterations = 100;
  uint32_t yield_iterations = 50;  // backoff only: yields before the first park
  uint64_t min_park_ns = 20'000;   // first park period; doubles on each idle park
  // 10 ms. Each timed wake-up of a parked thread costs ~20 us of CPU on these VMs (measured:
  // 1 ms parks used 2.1% of a core), so 10 ms parks cost ~0.2%. Work never waits for the
  // period to end: whoever hands work over calls Waker::wake().
  uint64_t max_park_ns = 10'000'000;
};

Status validate(const IdleOptions& options);

// The state of an event count: the futex word and the number of announced sleepers. It lies
// in a Waker (one process), or in memory that several processes map (Waker::bind_shared).
struct WakeWord {
  std::atomic<uint32_t> epoch{0};    // the futex word: moves on every wake that found a sleeper
  std::atomic<uint32_t> waiters{0};  // sleepers between prepare_wait() and wait()/cancel_wait()
};
static_assert(sizeof(WakeWord) == 8 && alignof(WakeWord) == 4);
static_assert(std::atomic<uint32_t>::is_always_lock_free);

// The waking half, for a thread or process that has just published work a sleeper on `word`
// looks for: call after a seq_cst fence that follows the publication (so several words can
// share one fence). If a sleeper announced itself, bumps the epoch and makes the futex system
// call (`shared`: the non-private op, for a word in a MAP_SHARED mapping); true then. Nobody
// announced: one load, no system call. A count left by a sleeper that died costs a spurious
// system call per call, never a wait.
bool wake_announced(WakeWord& word, bool shared) noexcept;

// An event count on a futex word. The sleeper announces itself, rechecks for work, then
// sleeps only if the epoch has not moved; a waker bumps the epoch and calls futex_wake only
// when someone announced. A wake() with no sleeper costs a fence and a load.
class alignas(kCacheLine) Waker {
 public:
  // Sleeper: announce, returning the epoch to sleep on. Recheck for work before wait().
  uint32_t prepare_wait() noexcept;
  // Sleeper: found work on the recheck; withdraw the announcement.
  void cancel_wait() noexcept;
  // Sleeper: sleep until woken, the epoch moved, or timeout_ns passed. Withdraws itself.
  void wait(uint32_t epoch, uint64_t timeout_ns) noexcept;
  // Any thread, after publishing work: wake every sleeper.
  void wake() noexcept;

  // Moves the event count to `word`, in a MAP_SHARED mapping that other processes map too, and
  // switches to the futex operations that work across processes: then wake_announced(word,
  // true) in any of them ends a wait here, as wake() does. nullptr goes back to the Waker's own
  // word. Call it before any thread waits or wakes here (set up before the loop starts); the
  // word must stay mapped for as long as it is bound.
  void bind_shared(WakeWord* word) noexcept;
  bool shared() const noexcept { return word_ != &own_; }

  uint64_t wakes_sent() const noexcept { return wakes_sent_.load(std::memory_order_relaxed); }

 private:
  WakeWord own_;
  WakeWord* word_ = &own_;
  std::atomic<uint64_t> wakes_sent_{0};
};

// Per-loop state of an idle policy. Not thread-safe: one poll loop owns it.
class IdleStrategy {
 public:
  enum class Action : uint8_t { kSpin, kYield, kPark };

  explicit IdleStrategy(const IdleOptions& options) noexcept : options_(options) {}

  // Called after an iteration that did work: the next idle starts from spinning again.
  void reset() noexcept {
    idle_iterations_ = 0;
    park_ns_ = options_.min_park_ns;
  }

  // Called after an iteration with no work: what to do now. For kPark, park_ns() says how
  // long; the period doubles on each consecutive park, up to max_park_ns.
  Action next() noexcept;
  uint64_t park_ns() const noexcept { return park_ns_; }
  void parked() noexcept {
    park_ns_ = park_ns_ * 2 > options_.max_park_ns ? options_.max_park_ns : park_ns_ * 2;
  }

  const IdleOptions& options() const noexcept { return options_; }

 private:
  IdleOptions options_;
  uint64_t idle_iterations_ = 0;
  uint64_t park_ns_ = options_.min_park_ns;
};

}  // namespace cohort
