// Window: the part of an unbounded sequence that is still kept, for the Member's per-view
// arrays (a sender's messages by sseq, the total order by gseq). Elements first()..end()-1 lie
// in a power-of-two ring with free-running indices; the ring grows by doubling when a record
// points past its end and is trimmed from the front as the release frontier advances
// (NOTES.md, "Releasing what no member needs"), so a view that lasts for days holds only what
// is not yet released, and a steady flow allocates nothing once the ring has its size.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "runtime/assert.h"

namespace cohort::membership {

template <typename T>
class Window {
 public:
  // The index of the oldest element kept: every index below was released.
  uint64_t first() const noexcept { return first_; }
  // One past the newest element.
  uint64_t end() const noexcept { return first_ + count_; }
  size_t size() const noexcept { return count_; }
  size_t capacity() const noexcept { return ring_.size(); }

  // The element at absolute index `i`, or nullptr when it was released or lies past end().
  T* find(uint64_t i) noexcept {
    if (i < first_ || i - first_ >= count_) return nullptr;
    return &ring_[(head_ + (i - first_)) & (ring_.size() - 1)];
  }
  const T* find(uint64_t i) const noexcept { return const_cast<Window*>(this)->find(i); }
  // The element at `i`, which must be kept.
  T& at(uint64_t i) noexcept {
    COHORT_ASSERT(i >= first_ && i - first_ < count_);
    return ring_[(head_ + (i - first_)) & (ring_.size() - 1)];
  }
  T& front() noexcept {
    COHORT_DASSERT(count_ > 0);
    return ring_[head_];
  }

  // Makes end() at least `n`; the new elements are T{}. The caller bounds `n` (kMaxAhead).
  void extend(uint64_t n) {
    if (n <= end()) return;
    const uint64_t want = n - first_;
    if (want > ring_.size()) grow(static_cast<size_t>(want));
    count_ = static_cast<size_t>(want);
  }

  // Releases the oldest element.
  void pop_front() noexcept {
    COHORT_ASSERT(count_ > 0);
    ring_[head_] = T{};
    head_ = (head_ + 1) & (ring_.size() - 1);
    --count_;
    ++first_;
  }

  // After a backlog drains (a long flush, a slow member), gives back most of a big ring that
  // is at most 1/16 used. Only big rings, and to four times what is kept, so a flow whose
  // backlog swings between bursts settles on one size instead of reallocating back and forth.
  void shrink() {
    if (ring_.size() < kShrinkFrom || count_ * 16 > ring_.size()) return;
    relayout(std::max<size_t>(kShrinkFrom / 4, std::bit_ceil(count_ * 4)));
  }

 private:
  static constexpr size_t kMinCapacity = 64;
  static constexpr size_t kShrinkFrom = 1U << 16;

  void grow(size_t want) { relayout(std::max(kMinCapacity, std::bit_ceil(want))); }

  // Moves the kept elements to a ring of `cap` slots, oldest at slot 0.
  void relayout(size_t cap) {
    COHORT_ASSERT(cap >= count_ && std::has_single_bit(cap));
    std::vector<T> next(cap);
    for (size_t k = 0; k < count_; ++k) next[k] = ring_[(head_ + k) & (ring_.size() - 1)];
    ring_ = std::move(next);
    head_ = 0;
  }

  std::vector<T> ring_;  // empty, or a power of two
  uint64_t first_ = 0;
  size_t head_ = 0;  // the slot of first_
  size_t count_ = 0;
};

}  // namespace cohort::membership
