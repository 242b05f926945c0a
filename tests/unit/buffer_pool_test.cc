#include "runtime/buffer_pool.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <set>
#include <vector>

namespace cohort {
namespace {

TEST(BufferPool, RefusesBadSizes) {
  EXPECT_FALSE(BufferPool::create(0, 64).ok());
  EXPECT_FALSE(BufferPool::create(16, 0).ok());
  auto huge = BufferPool::create(1u << 24, 1u << 30);
  ASSERT_FALSE(huge.ok());
  EXPECT_NE(huge.error().message().find("lower the count"), std::string::npos);
}

TEST(BufferPool, HandsOutDistinctAlignedBuffersUntilEmpty) {
  auto pool = std::move(BufferPool::create(100, 1000).value());
  EXPECT_EQ(pool->capacity(), 100u);
  std::set<void*> seen;
  std::vector<void*> held;
  for (int i = 0; i < 100; ++i) {
    void* b = pool->get();
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(b) % 64, 0u);
    EXPECT_TRUE(seen.insert(b).second);
    std::memset(b, i, 1000);  // the whole advertised size is writable
    held.push_back(b);
  }
  EXPECT_EQ(pool->get(), nullptr);
  EXPECT_EQ(pool->stats().empty, 1u);
  for (void* b : held) pool->put(b);
  EXPECT_EQ(pool->available(), 100u);
}

TEST(BufferPool, BurstsAndReuse) {
  auto pool = std::move(BufferPool::create(8, 64).value());
  void* bufs[16];
  EXPECT_EQ(pool->get_burst(bufs, 5), 5u);
  EXPECT_EQ(pool->get_burst(bufs + 5, 16), 3u);
  EXPECT_EQ(pool->available(), 0u);
  pool->put_burst(bufs, 8);
  EXPECT_EQ(pool->available(), 8u);
  // Most recently freed comes back first (warm in cache).
  void* last = bufs[7];
  EXPECT_EQ(pool->get(), last);
  EXPECT_EQ(pool->index_of(last), pool->index_of(pool->at(pool->index_of(last))));
}

TEST(BufferPoolDeathTest, DoublePutAndForeignPointerAbort) {
  auto pool = std::move(BufferPool::create(4, 64).value());
  void* b = pool->get();
  pool->put(b);
  EXPECT_DEATH(pool->put(b), "buffer put twice");
  int local = 0;
  EXPECT_DEATH(pool->put(&local), "does not belong to this pool");
}

}  // namespace
}  // namespace cohort
