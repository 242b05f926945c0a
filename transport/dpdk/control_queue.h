// ControlQueue: control datagrams handed from one thread to another in fixed slots, without a
// lock and without a copy in between. The dpdk transport has one RX and one TX queue, which
// the data core owns; the control channel belongs to the control core (as the udp transport's
// second socket does). So received control datagrams go data core -> control core through one
// ControlQueue, and control datagrams to send go control core -> data core through another.
//
// Shape: `count` slots of `slot_bytes` bytes, made at create(), and two SpscRings of slot
// indices: `full_` carries filled slots producer -> consumer, `free_` carries them back
// consumer -> producer. Each ring has exactly one producer thread and one consumer thread, so
// both are SPSC. The slot bytes themselves are ordered by the rings: the producer writes a
// slot, then publishes its index (release in SpscRing::enqueue_burst); the consumer sees the
// index (acquire), then reads the slot. The same for the way back.
//
// Threads: the producer thread alone calls claim() and publish(); the consumer thread alone
// calls take(), bytes() and release(). One thread may be both (it is then a plain queue).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>

#include "runtime/assert.h"
#include "runtime/cache_line.h"
#include "runtime/result.h"
#include "runtime/spsc_ring.h"
#include "transport/transport.h"

namespace cohort::transport::dpdk {

class ControlQueue {
 public:
  // A filled slot: `bytes` of it are the datagram; `peer` is whom it is for or from.
  struct Entry {
    uint32_t slot;
    uint32_t bytes;
    MemberId peer;
  };

  // `count` a power of two (the rings' capacity), every slot `slot_bytes` long.
  static Result<std::unique_ptr<ControlQueue>> create(uint32_t count, uint32_t slot_bytes) {
    auto full = SpscRing<Entry>::create(count);
    if (!full.ok()) return std::move(full).error();
    auto free = SpscRing<uint32_t>::create(count);
    if (!free.ok()) return std::move(free).error();
    std::unique_ptr<ControlQueue> q(
        new ControlQueue(count, slot_bytes, std::move(full).value(), std::move(free).value()));
    // Every slot starts free. This runs before either thread uses the queue; starting those
    // threads orders it before their first call.
    for (uint32_t i = 0; i < count; ++i) {
      const bool queued = q->free_->try_enqueue(i);
      COHORT_ASSERT(queued);
    }
    return q;
  }

  ControlQueue(const ControlQueue&) = delete;
  ControlQueue& operator=(const ControlQueue&) = delete;

  uint32_t slot_bytes() const noexcept { return slot_bytes_; }

  // Producer: the slot to fill next (slot_bytes() long), or nullptr when the consumer holds
  // them all. The same slot comes back until publish() sends it, so a producer that fills a
  // slot and then decides to drop the datagram simply does not publish.
  std::byte* claim() noexcept {
    if (claimed_ == kNone) {
      uint32_t slot = 0;
      if (!free_->try_dequeue(slot)) return nullptr;
      claimed_ = slot;
    }
    return at(claimed_);
  }

  // Producer: hands the claimed slot, its first `bytes` filled, to the consumer.
  void publish(uint32_t bytes, MemberId peer) noexcept {
    COHORT_ASSERT(claimed_ != kNone && bytes <= slot_bytes_);
    // Cannot fail: at most `count` slots exist, and this one came out of free_.
    const bool queued = full_->try_enqueue(Entry{claimed_, bytes, peer});
    COHORT_ASSERT(queued);
    claimed_ = kNone;
  }

  // Consumer: up to max filled slots, oldest first. Each stays the consumer's until release().
  uint32_t take(Entry* out, uint32_t max) noexcept { return full_->dequeue_burst(out, max); }

  const std::byte* bytes(const Entry& e) const noexcept {
    COHORT_ASSERT(e.slot < count_ && e.bytes <= slot_bytes_);
    return at(e.slot);
  }

  // Consumer: gives slots back to the producer.
  void release(const Entry* entries, uint32_t n) noexcept {
    for (uint32_t i = 0; i < n; ++i) {
      COHORT_ASSERT(entries[i].slot < count_);
      // Cannot fail: free_ holds every slot at most once.
      const bool queued = free_->try_enqueue(entries[i].slot);
      COHORT_ASSERT(queued);
    }
  }

 private:
  static constexpr uint32_t kNone = ~uint32_t{0};

  ControlQueue(uint32_t count, uint32_t slot_bytes, std::unique_ptr<SpscRing<Entry>> full,
               std::unique_ptr<SpscRing<uint32_t>> free)
      : count_(count),
        slot_bytes_(slot_bytes),
        mem_(new std::byte[static_cast<size_t>(count) * slot_bytes]()),
        full_(std::move(full)),
        free_(std::move(free)) {}

  std::byte* at(uint32_t slot) const noexcept {
    return mem_.get() + static_cast<size_t>(slot) * slot_bytes_;
  }

  const uint32_t count_;
  const uint32_t slot_bytes_;
  const std::unique_ptr<std::byte[]> mem_;
  const std::unique_ptr<SpscRing<Entry>> full_;
  const std::unique_ptr<SpscRing<uint32_t>> free_;
  // The producer's alone, on its own line: a slot out of free_ not yet published.
  alignas(kCacheLine) uint32_t claimed_ = kNone;
};

}  // namespace cohort::transport::dpdk
