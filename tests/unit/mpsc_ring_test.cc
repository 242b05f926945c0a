#include "runtime/mpsc_ring.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <thread>
#include <vector>

namespace cohort {
namespace {

TEST(MpscRing, RefusesBadCapacity) {
  EXPECT_FALSE(MpscRing<uint64_t>::create(6).ok());
  EXPECT_TRUE(MpscRing<uint64_t>::create(64).ok());
}

TEST(MpscRing, SingleThreadFullEmptyAndWrap) {
  auto ring = std::move(MpscRing<uint64_t>::create(4).value());
  uint64_t v = 0;
  for (int lap = 0; lap < 10; ++lap) {
    uint64_t in[6] = {1, 2, 3, 4, 5, 6};
    EXPECT_EQ(ring->enqueue_burst(in, 6), 4u);  // only what fits
    EXPECT_FALSE(ring->try_enqueue(7));
    for (uint64_t i = 1; i <= 4; ++i) {
      ASSERT_TRUE(ring->try_dequeue(v));
      EXPECT_EQ(v, i);
    }
    EXPECT_FALSE(ring->try_dequeue(v));
  }
}

// Each item encodes (producer, per-producer sequence). With several producer threads, every
// item must arrive exactly once, and each producer's items in the order it sent them.
TEST(MpscRing, ManyProducersEveryItemOncePerProducerInOrder) {
  constexpr int kProducers = 3;
  constexpr uint64_t kPerProducer = 1'000'000;
  auto ring = std::move(MpscRing<uint64_t>::create(256).value());
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&ring, p] {
      uint64_t batch[8];
      uint64_t next = 0;
      uint32_t burst = 1;
      while (next < kPerProducer) {
        const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(burst, kPerProducer - next));
        for (uint32_t i = 0; i < n; ++i) batch[i] = (uint64_t(p) << 56) | (next + i);
        uint32_t done = 0;
        while (done < n) {
          done += ring->enqueue_burst(batch + done, n - done);
          if (done < n) std::this_thread::yield();
        }
        next += n;
        burst = burst % 8 + 1;
      }
    });
  }
  uint64_t next_seq[kProducers] = {};
  uint64_t total = 0;
  uint64_t errors = 0;
  uint64_t out[32];
  while (total < kProducers * kPerProducer) {
    const uint32_t got = ring->dequeue_burst(out, 32);
    for (uint32_t i = 0; i < got; ++i) {
      const auto p = static_cast<int>(out[i] >> 56);
      const uint64_t seq = out[i] & ((uint64_t{1} << 56) - 1);
      if (p >= kProducers || seq != next_seq[p]) {
        ++errors;
      } else {
        ++next_seq[p];
      }
    }
    total += got;
    if (got == 0) std::this_thread::yield();
  }
  for (auto& t : producers) t.join();
  EXPECT_EQ(errors, 0u);
  for (int p = 0; p < kProducers; ++p) EXPECT_EQ(next_seq[p], kPerProducer);
  uint64_t extra;
  EXPECT_FALSE(ring->try_dequeue(extra));
}

}  // namespace
}  // namespace cohort
