// Zero heap allocations on the hot paths of the rings and the pool: the global operator new
// is replaced with one that counts (alloc_counter.cc), and a million operations run between
// two readings.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "runtime/buffer_pool.h"
#include "runtime/mpsc_ring.h"
#include "runtime/spsc_ring.h"
#include "tests/unit/alloc_counter.h"

namespace cohort {
namespace {

constexpr int kOps = 1'000'000;

TEST(NoAlloc, TheCounterSeesAnAllocation) {
  const uint64_t before = testing::heap_allocations();
  auto* p = new int(5);
  EXPECT_EQ(testing::heap_allocations(), before + 1);
  delete p;
}

TEST(NoAlloc, SpscRingEnqueueDequeue) {
  auto ring = std::move(SpscRing<uint64_t>::create(1024).value());
  uint64_t burst[32] = {};
  uint64_t sink = 0;
  const uint64_t before = testing::heap_allocations();
  for (int i = 0; i < kOps; ++i) {
    ASSERT_TRUE(ring->try_enqueue(static_cast<uint64_t>(i)));
    ASSERT_TRUE(ring->try_dequeue(sink));
    ASSERT_EQ(ring->enqueue_burst(burst, 32), 32u);
    ASSERT_EQ(ring->dequeue_burst(burst, 32), 32u);
  }
  EXPECT_EQ(testing::heap_allocations(), before);
}

TEST(NoAlloc, MpscRingEnqueueDequeue) {
  auto ring = std::move(MpscRing<uint64_t>::create(1024).value());
  uint64_t burst[32] = {};
  const uint64_t before = testing::heap_allocations();
  for (int i = 0; i < kOps; ++i) {
    ASSERT_EQ(ring->enqueue_burst(burst, 32), 32u);
    ASSERT_EQ(ring->dequeue_burst(burst, 32), 32u);
  }
  EXPECT_EQ(testing::heap_allocations(), before);
}

TEST(NoAlloc, BufferPoolGetPut) {
  auto pool = std::move(BufferPool::create(256, 2048).value());
  void* bufs[16];
  const uint64_t before = testing::heap_allocations();
  for (int i = 0; i < kOps; ++i) {
    void* b = pool->get();
    ASSERT_NE(b, nullptr);
    pool->put(b);
    ASSERT_EQ(pool->get_burst(bufs, 16), 16u);
    pool->put_burst(bufs, 16);
  }
  EXPECT_EQ(testing::heap_allocations(), before);
}

}  // namespace
}  // namespace cohort
