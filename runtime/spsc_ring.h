// SpscRing<T>: a bounded single-producer, single-consumer ring of trivially copyable items.
//
// Design (see NOTES.md beside this file):
// - Power-of-two capacity, free-running 64-bit indices masked into the slot array (DPDK).
// - Each slot carries the index it was written at (`seq`), stored last with release. The
//   consumer polls the slot itself, never the producer's index: a message costs one cache
//   line to the reader, not two (slot plus index); see shared/notes/measuring.md.
// - The producer caches the consumer's published position and rereads it only when the
//   ring looks full (Aeron), so in steady state the producer never touches the consumer's
//   line and the consumer publishes its position once per burst.
// - Burst calls return how many items moved; none of them blocks, allocates or locks.
//
// Threading: exactly one producer thread calls the enqueue side and exactly one consumer
// thread the dequeue side; they may be different threads. Construction and destruction must
// not race with either side.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <type_traits>

#include "runtime/assert.h"
#include "runtime/cache_line.h"
#include "runtime/result.h"

namespace cohort {

// Largest ring we allow: 2^30 slots. Bigger is a config mistake, not a need.
inline constexpr uint64_t kMaxRingCapacity = uint64_t{1} << 30;

// Shared by both ring kinds: capacity must be a power of two in [2, kMaxRingCapacity].
inline Status check_ring_capacity(const char* kind, uint64_t capacity) {
  if (capacity < 2 || capacity > kMaxRingCapacity || (capacity & (capacity - 1)) != 0) {
    return Error(Errc::kInvalidArgument,
                 std::string(kind) + ": capacity " + std::to_string(capacity) +
                     " is not a power of two between 2 and " + std::to_string(kMaxRingCapacity) +
                     "; round it up to the next power of two");
  }
  return {};
}

template <typename T>
class SpscRing {
  static_assert(std::is_trivially_copyable_v<T>, "ring items are copied with memcpy semantics");

 public:
  static Result<std::unique_ptr<SpscRing>> create(uint64_t capacity) {
    COHORT_TRY(check_ring_capacity("spsc ring", capacity));
    return std::unique_ptr<SpscRing>(new SpscRing(capacity));
  }

  SpscRing(const SpscRing&) = delete;
  SpscRing& operator=(const SpscRing&) = delete;

  uint64_t capacity() const noexcept { return capacity_; }

  // Producer side. Moves up to n items in; returns how many fit (0 when full).
  uint32_t enqueue_burst(const T* items, uint32_t n) noexcept {
    uint64_t tail = prod_.tail;
    uint64_t free_slots = capacity_ - (tail - prod_.cached_head);
    if (free_slots < n) {
      // acquire: pairs with the release store of cons_.head in dequeue_burst(), so the
      // consumer has finished reading every slot below head before we overwrite it.
      prod_.cached_head = cons_.head.load(std::memory_order_acquire);
      free_slots = capacity_ - (tail - prod_.cached_head);
    }
    const uint32_t count = free_slots < n ? static_cast<uint32_t>(free_slots) : n;
    for (uint32_t i = 0; i < count; ++i, ++tail) {
      Slot& slot = slots_[tail & mask_];
      slot.value = items[i];
      // release: pairs with the acquire load of seq in dequeue_burst(); the value above is
      // visible before the consumer sees this slot as written.
      slot.seq.store(tail, std::memory_order_release);
    }
    prod_.tail = tail;
    return count;
  }

  bool try_enqueue(const T& item) noexcept { return enqueue_burst(&item, 1) == 1; }

  // Consumer side. Moves up to n items out; returns how many there were (0 when empty).
  uint32_t dequeue_burst(T* out, uint32_t n) noexcept {
    if (n == 0) return 0;
    const uint64_t head = cons_.local_head;
    uint32_t count = 0;
    // Items are published in index order, so when the last slot of the burst is written all
    // before it are too (each seq store is a release in program order): copy without
    // checking each one. Otherwise walk slot by slot.
    if (ready(head + n - 1)) {
      for (; count < n; ++count) out[count] = slots_[(head + count) & mask_].value;
    } else {
      while (count < n && ready(head + count)) {
        out[count] = slots_[(head + count) & mask_].value;
        ++count;
      }
      if (count == 0) return 0;
    }
    cons_.local_head = head + count;
    // release: pairs with the acquire load of cons_.head in enqueue_burst(); our reads of
    // the slots above happen before the producer may reuse them.
    cons_.head.store(head + count, std::memory_order_release);
    return count;
  }

  bool try_dequeue(T& out) noexcept { return dequeue_burst(&out, 1) == 1; }

  // Consumer side: true when the next item is there.
  bool has_item() const noexcept { return ready(cons_.local_head); }

  // Approximate, for stats from any thread: the consumer's published position lags.
  uint64_t consumed() const noexcept { return cons_.head.load(std::memory_order_relaxed); }

 private:
  struct Slot {
    T value;
    std::atomic<uint64_t> seq;
  };

  explicit SpscRing(uint64_t capacity)
      : capacity_(capacity), mask_(capacity - 1), slots_(make_cache_aligned_array<Slot>(capacity)) {
    // Slot i starts as if written one lap ago, so the consumer (expecting seq == i) waits.
    for (uint64_t i = 0; i < capacity; ++i) {
      slots_[i].seq.store(i - capacity, std::memory_order_relaxed);
    }
  }

  bool ready(uint64_t index) const noexcept {
    // acquire: pairs with the release store of seq in enqueue_burst().
    return slots_[index & mask_].seq.load(std::memory_order_acquire) == index;
  }

  // Read-only after construction; shared freely by both sides.
  alignas(kCacheLine) const uint64_t capacity_;
  const uint64_t mask_;
  const CacheAlignedArray<Slot> slots_;

  // Producer's line: written only by the producer.
  struct alignas(kCacheLine) ProducerSide {
    uint64_t tail = 0;
    uint64_t cached_head = 0;
  } prod_;

  // Consumer's line: local_head is private; head is published to the producer once a burst.
  struct alignas(kCacheLine) ConsumerSide {
    uint64_t local_head = 0;
    std::atomic<uint64_t> head{0};
  } cons_;

  static_assert(sizeof(ProducerSide) == kCacheLine);
  static_assert(sizeof(ConsumerSide) == kCacheLine);
};

}  // namespace cohort
