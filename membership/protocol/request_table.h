// RequestTable: a member's point-to-point requests not yet answered (NOTES.md,
// "Point-to-point"), by the requester's id, each with the Uid of the member asked. An
// open-addressing table (linear probing, backward-shift deletion) sized once, at the first
// request, to twice the limit: no allocation per request, and a reply finds its entry in one
// or two probes. The answer to a reply that matches no entry (late, doubled, from another
// incarnation) is a counted drop, never a second answer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "membership/protocol/types.h"
#include "runtime/assert.h"

namespace cohort::membership {

class RequestTable {
 public:
  explicit RequestTable(uint32_t limit) : limit_(limit) {}

  size_t size() const noexcept { return size_; }
  bool full() const noexcept { return size_ >= limit_; }
  bool contains(uint64_t id) const noexcept { return find(id) != kNone; }

  // Adds `id` (not in the table; the caller checked full()).
  void insert(uint64_t id, Uid target) {
    COHORT_ASSERT(!full() && target.valid());
    if (slots_.empty()) {
      size_t cap = 16;
      while (cap < 2 * size_t{limit_}) cap <<= 1;
      slots_.resize(cap);
    }
    COHORT_ASSERT_MSG(find(id) == kNone, "a request id that is already outstanding");
    size_t i = home(id);
    while (slots_[i].target != 0) i = (i + 1) & mask();
    slots_[i] = Slot{id, target.key()};
    ++size_;
  }

  // Removes `id` if it is outstanding to exactly `from`: true when a reply from `from` answers
  // it. A reply from any other Uid (another incarnation of the node) leaves it in place.
  bool take(uint64_t id, Uid from) noexcept {
    const size_t i = find(id);
    if (i == kNone || slots_[i].target != from.key()) return false;
    erase_at(i);
    return true;
  }

  // Removes every entry whose target `gone(target)` says is gone, calling `fail(id, target)` for
  // each, in slot order (deterministic for a given history).
  template <typename Gone, typename Fail>
  void fail_if(const Gone& gone, const Fail& fail) {
    for (size_t i = 0; i < slots_.size();) {
      const Slot s = slots_[i];
      if (s.target == 0 || !gone(Uid::from_key(s.target))) {
        ++i;
        continue;
      }
      erase_at(i);  // shifts a later entry into i: look at i again
      fail(s.id, Uid::from_key(s.target));
    }
  }

 private:
  struct Slot {
    uint64_t id = 0;
    uint64_t target = 0;  // Uid::key(); 0 = empty (a valid Uid has an incarnation)
  };
  static constexpr size_t kNone = ~size_t{0};

  size_t mask() const noexcept { return slots_.size() - 1; }
  size_t home(uint64_t id) const noexcept {
    uint64_t x = id * 0x9e3779b97f4a7c15ULL;  // Fibonacci hashing: sequential ids spread
    x ^= x >> 29;
    return static_cast<size_t>(x) & mask();
  }
  size_t find(uint64_t id) const noexcept {
    if (slots_.empty()) return kNone;
    for (size_t i = home(id), n = 0; n < slots_.size(); i = (i + 1) & mask(), ++n) {
      if (slots_[i].target == 0) return kNone;
      if (slots_[i].id == id) return i;
    }
    return kNone;
  }
  // Backward-shift deletion: later entries of the probe run move up, so no tombstones pile up.
  void erase_at(size_t i) noexcept {
    size_t hole = i;
    for (size_t j = (i + 1) & mask(); slots_[j].target != 0; j = (j + 1) & mask()) {
      const size_t h = home(slots_[j].id);
      // j's entry may fill the hole when its home does not lie in (hole, j] (cyclically).
      const bool stays = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j);
      if (stays) continue;
      slots_[hole] = slots_[j];
      hole = j;
    }
    slots_[hole] = Slot{};
    --size_;
  }

  uint32_t limit_;
  size_t size_ = 0;
  std::vector<Slot> slots_;
};

}  // namespace cohort::membership
