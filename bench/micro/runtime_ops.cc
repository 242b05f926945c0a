// Single-thread costs of the runtime's hot-path operations: clock reads, pool get/put,
// histogram record. Baseline for the clock: clock_gettime(CLOCK_MONOTONIC) through the vDSO.
#include <benchmark/benchmark.h>
#include <time.h>

#include <cstdint>

#include "runtime/buffer_pool.h"
#include "runtime/clock.h"
#include "runtime/histogram.h"

namespace cohort::bench {
namespace {

void ClockTscNow(benchmark::State& state) {
  const TscClock& c = cohort::clock();
  if (!c.uses_tsc()) state.SkipWithError(c.source());
  for (auto _ : state) benchmark::DoNotOptimize(c.now_ns());
}
BENCHMARK(ClockTscNow);

void ClockGettimeMonotonic(benchmark::State& state) {
  timespec ts{};
  for (auto _ : state) {
    clock_gettime(CLOCK_MONOTONIC, &ts);
    benchmark::DoNotOptimize(ts);
  }
}
BENCHMARK(ClockGettimeMonotonic);

void PoolGetPut(benchmark::State& state) {
  auto pool = std::move(BufferPool::create(1024, 2048).value());
  for (auto _ : state) {
    void* b = pool->get();
    benchmark::DoNotOptimize(b);
    pool->put(b);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(PoolGetPut);

void HistogramRecord(benchmark::State& state) {
  auto h = std::move(Histogram::create().value());
  uint64_t x = 88172645463325252ull;  // xorshift: values spread over many buckets
  for (auto _ : state) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    h.record(x & 0xFFFFFF);
  }
  benchmark::DoNotOptimize(h.count());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(HistogramRecord);

}  // namespace
}  // namespace cohort::bench
