// Ping-pong latency between the two cpus. One benchmark iteration is one round trip; the
// one-way latency is half of it (scripts/bench divides).
//
// Baselines (the floor the hardware sets, measured in the same run):
//   RawLinePingPong     one cache line bounced: each side waits for the other's value in the
//                       same line and answers in it. The fastest two cores can talk.
//   RawTwoLinePingPong  one line per direction, each written by one side only: the floor
//                       for any pair of one-way channels, since a ring must not be written
//                       by its reader.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>

#include "bench/common/partner.h"
#include "runtime/spsc_ring.h"

namespace cohort::bench {
namespace {

struct alignas(kCacheLine) Line {
  std::atomic<uint64_t> value{0};
};

void RawLinePingPong(benchmark::State& state) {
  if (!need_two_cpus(state)) return;
  BouncedLine line;
  Partner partner([&line](const StopFlag& flag) { line.echo(flag); });
  for (auto _ : state) line.round_trip();
}
BENCHMARK(RawLinePingPong);

void RawTwoLinePingPong(benchmark::State& state) {
  if (!need_two_cpus(state)) return;
  Line ping;
  Line pong;
  Partner partner([&](const StopFlag& flag) {
    uint64_t expect = 1;
    for (;; ++expect) {
      while (ping.value.load(std::memory_order_acquire) != expect) {
        if (flag.requested()) return;
        cpu_relax();
      }
      pong.value.store(expect, std::memory_order_release);
    }
  });
  uint64_t v = 0;
  for (auto _ : state) {
    ++v;
    ping.value.store(v, std::memory_order_release);
    while (pong.value.load(std::memory_order_acquire) != v) cpu_relax();
  }
}
BENCHMARK(RawTwoLinePingPong);

// Two SpscRing<uint64_t>, one per direction: the benchmark thread sends an item, the
// partner dequeues it and sends it back.
void RingPingPong(benchmark::State& state) {
  if (!need_two_cpus(state)) return;
  auto ping = std::move(SpscRing<uint64_t>::create(1024).value());
  auto pong = std::move(SpscRing<uint64_t>::create(1024).value());
  Partner partner([&](const StopFlag& flag) {
    uint64_t item = 0;
    for (;;) {
      while (!ping->try_dequeue(item)) {
        if (flag.requested()) return;
        cpu_relax();
      }
      while (!pong->try_enqueue(item)) cpu_relax();
    }
  });
  uint64_t v = 0;
  uint64_t back = 0;
  for (auto _ : state) {
    while (!ping->try_enqueue(v)) cpu_relax();
    while (!pong->try_dequeue(back)) cpu_relax();
    benchmark::DoNotOptimize(back);
    ++v;
  }
  if (back + 1 != v) state.SkipWithError("ping-pong item mismatch");
}
BENCHMARK(RingPingPong);

}  // namespace
}  // namespace cohort::bench
