// RecordStore: a driver's copies of the records it hands to a Member, for drivers whose logs
// lend bytes only briefly (the engine releases a log subscription right after each poll, and
// the simulator checks the rule). Records are copied into chunks in arrival order; each chunk
// carries a RecordTag of what it holds, and release() gives back every chunk the Member holds
// nothing of (Member::holds), in any order, so a message held long (a member that died and
// stopped acknowledging, until the view change) pins only its own chunk.
//
// Freed chunks are kept as spares, up to `max_spares`, and reused before anything is
// allocated: a steady flow cycles through the same few chunks. With `poison`, freed bytes are
// overwritten first, so a Member that read them after saying it holds none would deliver or
// relay garbage (the simulator's payload hashes catch it).
//
// Rules (Member::holds): call release() only between calls into the Member, after its actions
// are carried out, and only once every record kept has been handed to on_record().
// Not thread-safe: it belongs to the Member's thread.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "membership/protocol/member.h"
#include "runtime/assert.h"

namespace cohort::membership {

class RecordStore {
 public:
  explicit RecordStore(size_t chunk_bytes = 1U << 20, size_t max_spares = 4,
                       bool poison = false) noexcept
      : chunk_bytes_(chunk_bytes), max_spares_(max_spares), poison_(poison) {}

  // Copies `record` into the chunk being filled (a spare or a new one when it is full) and
  // notes it in that chunk's tag. The copy is 8-byte aligned.
  std::span<const std::byte> keep(std::span<const std::byte> record) {
    if (live_.empty() || live_.back().capacity - live_.back().used < record.size()) {
      live_.push_back(take(record.size()));
      started_ = true;
    }
    Chunk& c = live_.back();
    std::byte* at = c.data.get() + c.used;
    std::memcpy(at, record.data(), record.size());
    c.used = std::min(c.capacity, c.used + ((record.size() + 7) & ~size_t{7}));
    c.tag.note(record);
    ++c.records;
    return {at, record.size()};
  }

  // Gives back every chunk `member` holds nothing of; returns how many. Scans only when the
  // member released something since the last scan (Member::release_epoch) or a chunk was
  // started: a wedged view or a member that stopped acknowledging holds many chunks, and
  // asking about each on every poll would cost for nothing.
  size_t release(const Member& member) {
    const uint64_t epoch = member.release_epoch();
    if (epoch == scanned_epoch_ && !started_) return 0;
    scanned_epoch_ = epoch;
    started_ = false;
    size_t freed = 0;
    size_t kept = 0;
    for (size_t i = 0; i < live_.size(); ++i) {
      Chunk& c = live_[i];
      if (c.records == 0 || member.holds(c.tag)) {
        if (kept != i) live_[kept] = std::move(c);
        ++kept;
        continue;
      }
      ++freed;
      put_back(std::move(c));
    }
    live_.resize(kept);
    return freed;
  }

  size_t live_chunks() const noexcept { return live_.size(); }
  size_t spare_chunks() const noexcept { return spares_.size(); }
  // Bytes allocated now, live and spare.
  size_t bytes() const noexcept {
    size_t n = 0;
    for (const Chunk& c : live_) n += c.capacity;
    for (const Chunk& c : spares_) n += c.capacity;
    return n;
  }

 private:
  struct Chunk {
    std::unique_ptr<std::byte[]> data;
    size_t capacity = 0;
    size_t used = 0;
    uint64_t records = 0;
    RecordTag tag;
  };

  Chunk take(size_t bytes) {
    if (bytes <= chunk_bytes_ && !spares_.empty()) {
      Chunk c = std::move(spares_.back());
      spares_.pop_back();
      return c;
    }
    Chunk c;
    c.capacity = std::max(chunk_bytes_, bytes);
    c.data = std::make_unique_for_overwrite<std::byte[]>(c.capacity);
    return c;
  }

  void put_back(Chunk c) {
    if (poison_) std::memset(c.data.get(), 0xA5, c.used);
    if (c.capacity != chunk_bytes_ || spares_.size() >= max_spares_) return;  // freed
    c.used = 0;
    c.records = 0;
    c.tag = RecordTag{};
    spares_.push_back(std::move(c));
  }

  size_t chunk_bytes_;
  size_t max_spares_;
  bool poison_;
  std::vector<Chunk> live_;  // live_.back() is being filled
  uint64_t scanned_epoch_ = ~uint64_t{0};
  bool started_ = false;  // a chunk was started since the last scan
  std::vector<Chunk> spares_;
};

}  // namespace cohort::membership
