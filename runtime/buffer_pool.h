// BufferPool: a fixed set of equal-size message buffers carved from one region at start.
//
// All memory is mapped and touched in create(), so neither get() nor put() allocates or
// faults a page later (DESIGN.md principle 4). Free buffers sit on an index stack: the most
// recently freed buffer is handed out next, while its lines are still warm in cache.
//
// Threading: a pool belongs to one thread (its core). A buffer handed to another core comes
// back through a ring to the owner, who calls put(); the pool itself has no atomics.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "runtime/assert.h"
#include "runtime/result.h"

namespace cohort {

struct BufferPoolStats {
  uint64_t gets = 0;
  uint64_t puts = 0;
  uint64_t empty = 0;  // get() or get_burst() found fewer buffers than asked for
};

class BufferPool {
 public:
  // count buffers of at least buffer_size bytes each; every buffer starts on a cache line.
  static Result<std::unique_ptr<BufferPool>> create(uint32_t count, uint32_t buffer_size);
  ~BufferPool();

  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // A free buffer, or nullptr when the pool is empty (counted; the caller backs off).
  void* get() noexcept {
    if (free_count_ == 0) [[unlikely]] {
      ++stats_.empty;
      return nullptr;
    }
    const uint32_t index = free_stack_[--free_count_];
    mark_taken(index);
    ++stats_.gets;
    return at(index);
  }

  // Up to n buffers into out; returns how many.
  uint32_t get_burst(void** out, uint32_t n) noexcept;

  // Returns a buffer that get() handed out. Putting a foreign pointer or the same buffer
  // twice is a bug and stops the process: it would hand one buffer to two owners.
  void put(void* buffer) noexcept {
    const uint32_t index = index_of(buffer);
    mark_free(index);
    free_stack_[free_count_++] = index;
    ++stats_.puts;
  }

  void put_burst(void* const* buffers, uint32_t n) noexcept {
    for (uint32_t i = 0; i < n; ++i) put(buffers[i]);
  }

  uint32_t capacity() const noexcept { return count_; }
  uint32_t available() const noexcept { return free_count_; }
  uint32_t buffer_size() const noexcept { return buffer_size_; }
  const BufferPoolStats& stats() const noexcept { return stats_; }

  bool owns(const void* p) const noexcept {
    const auto* b = static_cast<const std::byte*>(p);
    return b >= base_ && b < base_ + static_cast<size_t>(count_) * stride_ &&
           static_cast<size_t>(b - base_) % stride_ == 0;
  }

  void* at(uint32_t index) const noexcept {
    COHORT_DASSERT(index < count_);
    return base_ + static_cast<size_t>(index) * stride_;
  }

  uint32_t index_of(const void* p) const noexcept {
    COHORT_ASSERT_MSG(owns(p), "buffer does not belong to this pool");
    return static_cast<uint32_t>(static_cast<size_t>(static_cast<const std::byte*>(p) - base_) /
                                 stride_);
  }

 private:
  BufferPool(std::byte* base, size_t mapped_bytes, uint32_t count, uint32_t buffer_size,
             uint32_t stride);

  void mark_taken(uint32_t index) noexcept {
    COHORT_ASSERT_MSG(taken_[index] == 0, "buffer pool: free stack holds a taken buffer");
    taken_[index] = 1;
  }
  void mark_free(uint32_t index) noexcept {
    COHORT_ASSERT_MSG(taken_[index] == 1, "buffer pool: buffer put twice");
    taken_[index] = 0;
  }

  std::byte* const base_;
  const size_t mapped_bytes_;
  const uint32_t count_;
  const uint32_t buffer_size_;
  const uint32_t stride_;
  uint32_t free_count_;
  std::unique_ptr<uint32_t[]> free_stack_;
  std::unique_ptr<uint8_t[]> taken_;  // one byte a buffer: catches double puts, always on
  BufferPoolStats stats_;
};

}  // namespace cohort
