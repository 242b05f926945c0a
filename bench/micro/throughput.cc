// SPSC throughput of 8-byte items between the two cpus, in bursts of 1, 8 and 32: cohort's
// SpscRing against DPDK's rte_ring in single-producer/single-consumer mode, same capacity,
// same items, same burst sizes. Both hold the same number of items (rte_ring is given its
// exact-size flag, since by default a ring of 1024 slots holds 1023). One iteration moves kBatch
// items and waits until the consumer has them all, so the time covers delivery, not just enqueue.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>

#include "bench/common/partner.h"
#include "runtime/spsc_ring.h"

#ifdef COHORT_BENCH_RTE_RING
#include <rte_ring.h>
#endif

namespace cohort::bench {
namespace {

constexpr uint32_t kCapacity = 1024;
constexpr uint64_t kBatch = 1 << 16;

struct alignas(kCacheLine) Counter {
  std::atomic<uint64_t> value{0};
};

// Ring adapters: the same driver below moves items through either ring.
struct CohortRing {
  std::unique_ptr<SpscRing<uint64_t>> ring =
      std::move(SpscRing<uint64_t>::create(kCapacity).value());
  uint32_t enqueue(const uint64_t* items, uint32_t n) noexcept {
    return ring->enqueue_burst(items, n);
  }
  uint32_t dequeue(uint64_t* out, uint32_t n) noexcept { return ring->dequeue_burst(out, n); }
};

#ifdef COHORT_BENCH_RTE_RING
// rte_ring_init on our own memory needs no EAL: the ring is a plain struct plus its slots.
struct RteRing {
  rte_ring* ring = nullptr;
  RteRing() {
    const auto items = static_cast<unsigned>(CohortRing().ring->capacity());
    // With RING_F_EXACT_SZ the slot array is the next power of two above the count.
    const ssize_t bytes = rte_ring_get_memsize(rte_align32pow2(items + 1));
    if (bytes < 0) std::abort();
    ring = static_cast<rte_ring*>(std::aligned_alloc(kCacheLine, static_cast<size_t>(bytes)));
    if (rte_ring_init(ring, "bench", items, RING_F_SP_ENQ | RING_F_SC_DEQ | RING_F_EXACT_SZ) != 0 ||
        rte_ring_get_capacity(ring) != items) {
      std::abort();
    }
  }
  ~RteRing() { std::free(ring); }
  uint32_t enqueue(const uint64_t* items, uint32_t n) noexcept {
    return rte_ring_sp_enqueue_burst(ring, reinterpret_cast<void* const*>(items), n, nullptr);
  }
  uint32_t dequeue(uint64_t* out, uint32_t n) noexcept {
    return rte_ring_sc_dequeue_burst(ring, reinterpret_cast<void**>(out), n, nullptr);
  }
};
#endif

template <typename Ring>
void Throughput(benchmark::State& state) {
  if (!need_two_cpus(state)) return;
  const auto burst = static_cast<uint32_t>(state.range(0));
  Ring ring;
  Counter consumed;
  Counter checksum_errors;
  std::optional<Partner> partner;
  partner.emplace([&](const StopFlag& flag) {
    uint64_t out[64];
    uint64_t expect = 0;
    uint64_t errors = 0;
    for (;;) {
      const uint32_t n = ring.dequeue(out, burst);
      if (n == 0) {
        if (flag.requested()) break;
        cpu_relax();
        continue;
      }
      for (uint32_t i = 0; i < n; ++i) errors += out[i] != expect + i;
      expect += n;
      consumed.value.store(expect, std::memory_order_release);
    }
    checksum_errors.value.store(errors, std::memory_order_relaxed);
  });
  uint64_t items[64];
  uint64_t next = 0;
  for (auto _ : state) {
    const uint64_t end = next + kBatch;
    while (next < end) {
      for (uint32_t i = 0; i < burst; ++i) items[i] = next + i;
      uint32_t done = 0;
      while (done < burst) {
        const uint32_t n = ring.enqueue(items + done, burst - done);
        if (n == 0) cpu_relax();
        done += n;
      }
      next += burst;
    }
    while (consumed.value.load(std::memory_order_acquire) < next) cpu_relax();
  }
  state.SetItemsProcessed(static_cast<int64_t>(next));
  state.SetBytesProcessed(static_cast<int64_t>(next * sizeof(uint64_t)));
  partner.reset();  // joins the consumer, which then has written its error count
  if (checksum_errors.value.load() != 0) state.SkipWithError("items arrived out of order");
}

BENCHMARK(Throughput<CohortRing>)->Name("RingThroughput")->Arg(1)->Arg(8)->Arg(32);
#ifdef COHORT_BENCH_RTE_RING
BENCHMARK(Throughput<RteRing>)->Name("RteRingThroughput")->Arg(1)->Arg(8)->Arg(32);
#endif

}  // namespace
}  // namespace cohort::bench
