// Paired measurements: the figure and its baseline alternate in short blocks inside one
// benchmark, on the same two cpus, and the headline is the median of the per-block ratios.
//
// Why: on these shared VMs the host moves the two vCPUs between sibling hyperthreads and
// separate cores while a run is going, and the round trip of one cache line changes by 2-4x
// when it does (shared/notes/measuring.md). Separate benchmarks a second apart can land in
// different host states; blocks of a millisecond side by side almost always share one.
//
//   PairedPingPong     ring ping-pong vs one bounced cache line vs two lines (one per
//                      direction), one-way latency = round trip / 2
//   PairedThroughput   SpscRing vs rte_ring SP/SC, 8-byte items, bursts of 32
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <vector>

#include "bench/common/partner.h"
#include "runtime/spsc_ring.h"

#ifdef COHORT_BENCH_RTE_RING
#include <rte_ring.h>
#endif

namespace cohort::bench {
namespace {

using SteadyClock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0.0 : (n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2);
}

// Which echo loop the partner runs; the benchmark thread switches it between blocks.
struct alignas(kCacheLine) Mode {
  std::atomic<int> value{0};
  int load() const noexcept { return value.load(std::memory_order_acquire); }
};

struct alignas(kCacheLine) Line {
  std::atomic<uint64_t> value{0};
};

enum PingMode : int { kRawLine = 0, kTwoLine = 1, kRing = 2 };

void PairedPingPong(benchmark::State& state) {
  if (!need_two_cpus(state)) return;
  const auto blocks = static_cast<int>(state.range(0));
  constexpr int kRoundTrips = 4000;  // ~0.2-1 ms a block

  Mode mode;
  Line line;  // RawLine: one line, both directions
  Line ping;  // TwoLine: one line per direction
  Line pong;
  auto to_partner = std::move(SpscRing<uint64_t>::create(1024).value());
  auto to_main = std::move(SpscRing<uint64_t>::create(1024).value());

  // The partner echoes in whichever mode is current; while it waits it also watches the
  // mode and the stop flag, lines nobody writes during a block, so they cost no traffic.
  Partner partner([&](const StopFlag& flag) {
    uint64_t line_expect = 1;
    uint64_t ping_expect = 1;
    uint64_t item = 0;
    for (;;) {
      const int m = mode.load();
      if (flag.requested()) return;
      if (m == kRawLine) {
        // acquire: pairs with the benchmark thread's release store of the odd value.
        while (line.value.load(std::memory_order_acquire) != line_expect) {
          if (mode.load() != m || flag.requested()) goto next;
          cpu_relax();
        }
        line.value.store(line_expect + 1, std::memory_order_release);
        line_expect += 2;
      } else if (m == kTwoLine) {
        while (ping.value.load(std::memory_order_acquire) != ping_expect) {
          if (mode.load() != m || flag.requested()) goto next;
          cpu_relax();
        }
        pong.value.store(ping_expect, std::memory_order_release);
        ++ping_expect;
      } else {
        while (!to_partner->try_dequeue(item)) {
          if (mode.load() != m || flag.requested()) goto next;
          cpu_relax();
        }
        while (!to_main->try_enqueue(item)) cpu_relax();
      }
    next:;
    }
  });

  uint64_t line_v = 0;
  uint64_t ping_v = 0;
  uint64_t ring_v = 0;
  auto run_block = [&](int m) {
    mode.value.store(m, std::memory_order_release);
    const auto t0 = SteadyClock::now();
    for (int i = 0; i < kRoundTrips; ++i) {
      if (m == kRawLine) {
        line.value.store(line_v + 1, std::memory_order_release);
        while (line.value.load(std::memory_order_acquire) != line_v + 2) cpu_relax();
        line_v += 2;
      } else if (m == kTwoLine) {
        ++ping_v;
        ping.value.store(ping_v, std::memory_order_release);
        while (pong.value.load(std::memory_order_acquire) != ping_v) cpu_relax();
      } else {
        uint64_t back = 0;
        while (!to_partner->try_enqueue(ring_v)) cpu_relax();
        while (!to_main->try_dequeue(back)) cpu_relax();
        if (back != ring_v) std::abort();  // the echo must be the item we sent
        ++ring_v;
      }
    }
    const double ns = std::chrono::duration<double, std::nano>(SteadyClock::now() - t0).count();
    return ns / kRoundTrips / 2;  // one way
  };

  std::vector<double> raw;
  std::vector<double> two;
  std::vector<double> ring;
  std::vector<double> ring_vs_raw;
  std::vector<double> ring_vs_two;
  for (auto _ : state) {
    for (int m : {kRawLine, kTwoLine, kRing}) run_block(m);  // warm-up: every path once
    for (int b = 0; b < blocks; ++b) {
      // Rotate the order so that no mode always runs first after a switch.
      double t[3];
      for (int k = 0; k < 3; ++k) {
        const int m = (b + k) % 3;
        t[m] = run_block(m);
      }
      raw.push_back(t[kRawLine]);
      two.push_back(t[kTwoLine]);
      ring.push_back(t[kRing]);
      ring_vs_raw.push_back(t[kRing] / t[kRawLine]);
      ring_vs_two.push_back(t[kRing] / t[kTwoLine]);
    }
  }
  state.counters["raw_line_ns"] = median(raw);
  state.counters["two_line_ns"] = median(two);
  state.counters["ring_ns"] = median(ring);
  state.counters["ring_vs_raw"] = median(ring_vs_raw);
  state.counters["ring_vs_two_line"] = median(ring_vs_two);
}
BENCHMARK(PairedPingPong)->Arg(300)->Iterations(1)->Unit(benchmark::kMillisecond);

#ifdef COHORT_BENCH_RTE_RING
void PairedThroughput(benchmark::State& state) {
  if (!need_two_cpus(state)) return;
  const auto blocks = static_cast<int>(state.range(0));
  constexpr uint32_t kBurst = 32;
  constexpr uint64_t kItemsPerBlock = 1 << 18;

  auto ours = std::move(SpscRing<uint64_t>::create(1024).value());
  const auto capacity = static_cast<unsigned>(ours->capacity());
  // rte_ring's exact-size flag, so it holds as many items as ours (a plain ring of 1024
  // slots holds 1023); its slot array is then the next power of two above the count.
  const ssize_t bytes = rte_ring_get_memsize(rte_align32pow2(capacity + 1));
  std::unique_ptr<void, decltype(&std::free)> rte_mem(
      std::aligned_alloc(kCacheLine, static_cast<size_t>(bytes)), &std::free);
  auto* rte = static_cast<rte_ring*>(rte_mem.get());
  if (rte_ring_init(rte, "paired", capacity, RING_F_SP_ENQ | RING_F_SC_DEQ | RING_F_EXACT_SZ) !=
      0) {
    state.SkipWithError("rte_ring_init failed");
    return;
  }

  Mode mode;  // 0: ours, 1: rte_ring
  Line consumed;
  Line errors;
  std::optional<Partner> partner;
  partner.emplace([&](const StopFlag& flag) {
    uint64_t out[kBurst];
    uint64_t expect[2] = {0, 0};
    uint64_t total = 0;
    uint64_t bad = 0;
    while (!flag.requested()) {
      const int m = mode.load();
      const uint32_t n =
          m == 0 ? ours->dequeue_burst(out, kBurst)
                 : rte_ring_sc_dequeue_burst(rte, reinterpret_cast<void**>(out), kBurst, nullptr);
      if (n == 0) {
        cpu_relax();
        continue;
      }
      for (uint32_t i = 0; i < n; ++i) bad += out[i] != expect[m] + i;
      expect[m] += n;
      total += n;
      consumed.value.store(total, std::memory_order_release);
    }
    errors.value.store(bad, std::memory_order_relaxed);
  });

  uint64_t next[2] = {0, 0};
  uint64_t sent = 0;
  auto run_block = [&](int m) {
    mode.value.store(m, std::memory_order_release);
    uint64_t items[kBurst];
    const auto t0 = SteadyClock::now();
    const uint64_t end = next[m] + kItemsPerBlock;
    while (next[m] < end) {
      for (uint32_t i = 0; i < kBurst; ++i) items[i] = next[m] + i;
      uint32_t done = 0;
      while (done < kBurst) {
        const uint32_t k =
            m == 0 ? ours->enqueue_burst(items + done, kBurst - done)
                   : rte_ring_sp_enqueue_burst(rte, reinterpret_cast<void* const*>(items + done),
                                               kBurst - done, nullptr);
        if (k == 0) cpu_relax();
        done += k;
      }
      next[m] += kBurst;
    }
    sent += kItemsPerBlock;
    while (consumed.value.load(std::memory_order_acquire) < sent) cpu_relax();
    const double s = std::chrono::duration<double>(SteadyClock::now() - t0).count();
    return static_cast<double>(kItemsPerBlock) / s;
  };

  std::vector<double> ours_ips;
  std::vector<double> rte_ips;
  std::vector<double> ratio;
  for (auto _ : state) {
    run_block(0);
    run_block(1);
    for (int b = 0; b < blocks; ++b) {
      double t[2];
      for (int k = 0; k < 2; ++k) {
        const int m = (b + k) % 2;
        t[m] = run_block(m);
      }
      ours_ips.push_back(t[0]);
      rte_ips.push_back(t[1]);
      ratio.push_back(t[0] / t[1]);
    }
  }
  partner.reset();
  if (errors.value.load() != 0) state.SkipWithError("items arrived out of order");
  state.counters["ring_items_per_s"] = median(ours_ips);
  state.counters["rte_ring_items_per_s"] = median(rte_ips);
  state.counters["ring_vs_rte_ring"] = median(ratio);
}
BENCHMARK(PairedThroughput)->Arg(60)->Iterations(1)->Unit(benchmark::kMillisecond);
#endif

}  // namespace
}  // namespace cohort::bench
