#include "runtime/spsc_ring.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <thread>
#include <vector>

namespace cohort {
namespace {

TEST(SpscRing, RefusesCapacityThatIsNotAPowerOfTwo) {
  for (uint64_t bad :
       {uint64_t{0}, uint64_t{1}, uint64_t{3}, uint64_t{1000}, kMaxRingCapacity * 2}) {
    auto r = SpscRing<uint64_t>::create(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message().find("power of two"), std::string::npos);
  }
  EXPECT_TRUE(SpscRing<uint64_t>::create(2).ok());
}

TEST(SpscRing, FillsToCapacityThenRefusesThenDrainsInOrder) {
  auto ring = std::move(SpscRing<uint64_t>::create(8).value());
  for (uint64_t i = 0; i < 8; ++i) ASSERT_TRUE(ring->try_enqueue(i));
  EXPECT_FALSE(ring->try_enqueue(99));  // full: backpressure, not overwrite
  uint64_t v = 0;
  for (uint64_t i = 0; i < 8; ++i) {
    ASSERT_TRUE(ring->try_dequeue(v));
    EXPECT_EQ(v, i);
  }
  EXPECT_FALSE(ring->try_dequeue(v));
  EXPECT_FALSE(ring->has_item());
}

TEST(SpscRing, BurstsReturnCountsAcrossTheWrap) {
  auto ring = std::move(SpscRing<uint32_t>::create(16).value());
  uint32_t in[32];
  uint32_t out[32];
  uint32_t next_in = 0;
  uint32_t next_out = 0;
  for (int round = 0; round < 100; ++round) {
    for (auto& x : in) x = next_in++;
    const uint32_t put = ring->enqueue_burst(in, 11);
    EXPECT_EQ(put, 11u);
    next_in -= 32 - put;
    const uint32_t got = ring->dequeue_burst(out, 32);
    EXPECT_EQ(got, 11u);
    for (uint32_t i = 0; i < got; ++i) EXPECT_EQ(out[i], next_out++);
  }
  // A burst larger than the free space moves only what fits.
  for (auto& x : in) x = next_in++;
  EXPECT_EQ(ring->enqueue_burst(in, 32), 16u);
  EXPECT_EQ(ring->dequeue_burst(out, 5), 5u);
  EXPECT_EQ(ring->dequeue_burst(out, 32), 11u);
}

struct Record {
  uint64_t seq;
  uint64_t check;
  char pad[16];
};

// Two real threads, millions of items, bursts of varying size: every item arrives exactly
// once and in order, and no item is torn.
template <typename T, typename Make, typename Check>
void run_two_threads(uint64_t items, uint64_t capacity, Make make, Check check) {
  auto ring = std::move(SpscRing<T>::create(capacity).value());
  std::thread producer([&] {
    T batch[37];
    uint64_t next = 0;
    uint32_t burst = 1;
    while (next < items) {
      const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(burst, items - next));
      for (uint32_t i = 0; i < n; ++i) batch[i] = make(next + i);
      uint32_t done = 0;
      while (done < n) {
        done += ring->enqueue_burst(batch + done, n - done);
        if (done < n) cpu_relax();
      }
      next += n;
      burst = burst % 37 + 1;
    }
  });
  T out[29];
  uint64_t expected = 0;
  uint64_t errors = 0;
  uint32_t burst = 29;
  while (expected < items) {
    const uint32_t got = ring->dequeue_burst(out, burst);
    for (uint32_t i = 0; i < got; ++i) {
      if (!check(out[i], expected)) ++errors;
      ++expected;
    }
    if (got == 0) cpu_relax();
    burst = burst == 1 ? 29 : burst - 1;
  }
  producer.join();
  EXPECT_EQ(errors, 0u);
  EXPECT_EQ(expected, items);
  T extra;
  EXPECT_FALSE(ring->try_dequeue(extra));
}

TEST(SpscRing, TwoThreadsEveryItemOnceInOrder) {
  run_two_threads<uint64_t>(
      4'000'000, 1024, [](uint64_t i) { return i; },
      [](uint64_t v, uint64_t expected) { return v == expected; });
}

TEST(SpscRing, TwoThreadsWideItemsAreNeverTorn) {
  run_two_threads<Record>(
      2'000'000, 64,
      [](uint64_t i) {
        return Record{i, ~i * 0x9E3779B97F4A7C15ull, {}};
      },
      [](const Record& r, uint64_t expected) {
        return r.seq == expected && r.check == ~expected * 0x9E3779B97F4A7C15ull;
      });
}

TEST(SpscRing, TwoThreadsTinyRingStressesTheFullPath) {
  run_two_threads<uint64_t>(
      1'000'000, 2, [](uint64_t i) { return i * 3; },
      [](uint64_t v, uint64_t expected) { return v == expected * 3; });
}

}  // namespace
}  // namespace cohort
