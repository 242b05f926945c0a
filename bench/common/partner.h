// Two-core benchmark plumbing: the benchmark's own thread runs on one cpu, a partner thread
// pinned to another runs the other side (echo, consume) until told to stop.
#pragma once

#include <benchmark/benchmark.h>
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <thread>
#include <utility>

#include "runtime/cache_line.h"

namespace cohort::bench {

// The two cpus every two-thread benchmark uses: the first two the process may run on.
struct CpuPair {
  int main_cpu = -1;
  int partner_cpu = -1;
};
CpuPair cpu_pair();

bool pin_self(int cpu);

// A stop flag on its own line: the partner reads it while spinning, and since nobody writes
// it during a run it stays shared in both caches and costs no traffic.
struct alignas(kCacheLine) StopFlag {
  std::atomic<bool> stop{false};
  bool requested() const noexcept { return stop.load(std::memory_order_relaxed); }
};

// Runs fn(stop_flag) on a thread pinned to the partner cpu; the destructor stops and joins.
class Partner {
 public:
  template <typename Fn>
  explicit Partner(Fn fn) {
    thread_ = std::thread([this, fn = std::move(fn)]() mutable {
      pin_self(cpu_pair().partner_cpu);
      ready_.store(true, std::memory_order_release);
      fn(flag_);
    });
    while (!ready_.load(std::memory_order_acquire)) cpu_relax();
  }
  ~Partner() {
    flag_.stop.store(true, std::memory_order_relaxed);
    thread_.join();
  }
  Partner(const Partner&) = delete;
  Partner& operator=(const Partner&) = delete;

 private:
  StopFlag flag_;
  std::atomic<bool> ready_{false};
  std::thread thread_;
};

// Skips the benchmark (with the reason) on a machine with a single allowed cpu.
inline bool need_two_cpus(benchmark::State& state) {
  if (cpu_pair().partner_cpu < 0) {
    state.SkipWithError("needs two allowed cpus");
    return false;
  }
  return true;
}

// The raw baseline of every latency figure: one cache line bounced between the two cpus. The
// benchmark thread writes an odd value, the partner answers with the next even one in the
// same line; a round trip is two one-way hops of the line, the fastest two cores can talk.
struct alignas(kCacheLine) BouncedLine {
  std::atomic<uint64_t> value{0};
  uint64_t sent = 0;  // the benchmark thread's last even value

  // The partner's loop, until the stop flag.
  void echo(const StopFlag& flag) noexcept {
    uint64_t expect = 1;
    for (;;) {
      // acquire: pairs with the release store in round_trip().
      while (value.load(std::memory_order_acquire) != expect) {
        if (flag.requested()) return;
        cpu_relax();
      }
      // release: pairs with the acquire load in round_trip().
      value.store(expect + 1, std::memory_order_release);
      expect += 2;
    }
  }

  // The benchmark thread: one round trip.
  void round_trip() noexcept {
    value.store(sent + 1, std::memory_order_release);
    while (value.load(std::memory_order_acquire) != sent + 2) cpu_relax();
    sent += 2;
  }
};

}  // namespace cohort::bench
