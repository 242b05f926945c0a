// MpscRing<T>: a bounded ring that many producer threads feed into one consumer (a core's
// command inbox, buffers returned to their owning pool).
//
// Design: per-slot sequence numbers in the manner of Vyukov's bounded queue. A producer
// claims a run of free slots with one CAS on the shared tail, writes them, then publishes
// each slot by storing its sequence with release. The consumer owns the head alone and polls
// slots, so it never reads the contended tail. Slot i is free for index p when
// seq == p, and holds an item for index p when seq == p + 1; the consumer frees it for the
// next lap by storing p + capacity.
//
// Threading: any number of producer threads; exactly one consumer thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <type_traits>

#include "runtime/cache_line.h"
#include "runtime/result.h"
#include "runtime/spsc_ring.h"

namespace cohort {

template <typename T>
class MpscRing {
  static_assert(std::is_trivially_copyable_v<T>, "ring items are copied with memcpy semantics");

 public:
  static Result<std::unique_ptr<MpscRing>> create(uint64_t capacity) {
    COHORT_TRY(check_ring_capacity("mpsc ring", capacity));
    return std::unique_ptr<MpscRing>(new MpscRing(capacity));
  }

  MpscRing(const MpscRing&) = delete;
  MpscRing& operator=(const MpscRing&) = delete;

  uint64_t capacity() const noexcept { return capacity_; }

  // Any producer thread. Moves up to n items in, as one contiguous run in ring order;
  // returns how many (0 when full).
  uint32_t enqueue_burst(const T* items, uint32_t n) noexcept {
    if (n == 0) return 0;
    uint64_t pos = tail_.value.load(std::memory_order_relaxed);
    uint32_t count = 0;
    for (;;) {
      // Count the free slots from pos on. Slots are freed in index order by the single
      // consumer, so the first one not free ends the run.
      count = 0;
      while (count < n && slot_free(pos + count)) ++count;
      if (count == 0) {
        // acquire: pairs with the consumer's release in dequeue_burst().
        const uint64_t seq = slots_[pos & mask_].seq.load(std::memory_order_acquire);
        if (static_cast<int64_t>(seq - pos) < 0) return 0;  // a lap behind: the ring is full
        pos = tail_.value.load(std::memory_order_relaxed);  // another producer took pos
        continue;
      }
      // relaxed is enough for the claim: slot_free() already acquired each slot's sequence,
      // and the publication below carries its own release.
      if (tail_.value.compare_exchange_weak(pos, pos + count, std::memory_order_relaxed,
                                            std::memory_order_relaxed)) {
        break;
      }
      // pos now holds the current tail; count again from there.
    }
    for (uint32_t i = 0; i < count; ++i) {
      Slot& slot = slots_[(pos + i) & mask_];
      slot.value = items[i];
      // release: pairs with the consumer's acquire load in dequeue_burst().
      slot.seq.store(pos + i + 1, std::memory_order_release);
    }
    return count;
  }

  bool try_enqueue(const T& item) noexcept { return enqueue_burst(&item, 1) == 1; }

  // The consumer thread. Moves up to n items out in ring order; returns how many.
  uint32_t dequeue_burst(T* out, uint32_t n) noexcept {
    uint64_t head = head_.value;
    uint32_t count = 0;
    while (count < n) {
      Slot& slot = slots_[head & mask_];
      // acquire: pairs with the producer's release store of seq in enqueue_burst().
      if (slot.seq.load(std::memory_order_acquire) != head + 1) break;
      out[count++] = slot.value;
      // release: pairs with the producer's acquire in slot_free(); our read of the value
      // above happens before a producer of the next lap overwrites it.
      slot.seq.store(head + capacity_, std::memory_order_release);
      ++head;
    }
    head_.value = head;
    return count;
  }

  bool try_dequeue(T& out) noexcept { return dequeue_burst(&out, 1) == 1; }

  // The consumer thread: true when the next item is there.
  bool has_item() const noexcept {
    const uint64_t head = head_.value;
    return slots_[head & mask_].seq.load(std::memory_order_acquire) == head + 1;
  }

 private:
  struct Slot {
    T value;
    std::atomic<uint64_t> seq;
  };

  explicit MpscRing(uint64_t capacity)
      : capacity_(capacity), mask_(capacity - 1), slots_(make_cache_aligned_array<Slot>(capacity)) {
    for (uint64_t i = 0; i < capacity; ++i) slots_[i].seq.store(i, std::memory_order_relaxed);
  }

  bool slot_free(uint64_t pos) const noexcept {
    // acquire: pairs with the consumer's release store of pos in dequeue_burst().
    return slots_[pos & mask_].seq.load(std::memory_order_acquire) == pos;
  }

  alignas(kCacheLine) const uint64_t capacity_;
  const uint64_t mask_;
  const CacheAlignedArray<Slot> slots_;

  struct alignas(kCacheLine) Tail {
    std::atomic<uint64_t> value{0};
  } tail_;  // contended by producers only

  struct alignas(kCacheLine) Head {
    uint64_t value = 0;
  } head_;  // private to the consumer

  static_assert(sizeof(Tail) == kCacheLine);
  static_assert(sizeof(Head) == kCacheLine);
};

}  // namespace cohort
