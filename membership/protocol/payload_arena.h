// PayloadArena: the bytes of this member's own messages in one view (its Msgs point at them:
// deliveries to itself, relays in a flush). Payloads are copied, in send order, into 64 KiB
// chunks, so a send costs a copy and no allocation; a chunk is given back once every message
// in it is released (NOTES.md, "Releasing what no member needs"). One spare chunk is kept, so a
// steady flow reuses the same two chunks.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <span>

#include "runtime/assert.h"

namespace cohort::membership {

class PayloadArena {
 public:
  static constexpr size_t kChunkBytes = 64U << 10;

  // Copies the payload of own message `sseq` (sseqs come in increasing order); the bytes stay
  // put until release() passes `sseq`.
  std::span<const std::byte> put(std::span<const std::byte> payload, uint32_t sseq) {
    COHORT_ASSERT(sseq > last_sseq_);
    last_sseq_ = sseq;
    if (payload.empty()) return {};
    if (chunks_.empty() || chunks_.back().capacity - chunks_.back().used < payload.size()) {
      chunks_.push_back(take(payload.size()));
    }
    Chunk& c = chunks_.back();
    std::byte* at = c.data.get() + c.used;
    std::memcpy(at, payload.data(), payload.size());
    c.used += payload.size();
    c.last_sseq = sseq;
    return {at, payload.size()};
  }

  // Own messages up to `sseq` are released: chunks holding nothing newer go back.
  void release(uint32_t sseq) noexcept {
    while (!chunks_.empty() && chunks_.front().last_sseq <= sseq) {
      Chunk c = std::move(chunks_.front());
      chunks_.pop_front();
      if (c.capacity == kChunkBytes && !spare_.data) {
        c.used = 0;
        c.last_sseq = 0;
        spare_ = std::move(c);
      }
    }
  }

  size_t chunks() const noexcept { return chunks_.size(); }

 private:
  struct Chunk {
    std::unique_ptr<std::byte[]> data;
    size_t capacity = 0;
    size_t used = 0;
    uint32_t last_sseq = 0;  // the newest message with bytes here
  };

  Chunk take(size_t bytes) {
    if (bytes <= kChunkBytes && spare_.data) return std::move(spare_);
    Chunk c;
    c.capacity = std::max(kChunkBytes, bytes);
    c.data = std::make_unique_for_overwrite<std::byte[]>(c.capacity);
    return c;
  }

  std::deque<Chunk> chunks_;
  Chunk spare_;
  uint32_t last_sseq_ = 0;
};

}  // namespace cohort::membership
