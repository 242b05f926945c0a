// GapTracker: which bytes of a peer's log a replica holds. Everything below contiguous() has
// arrived; beyond it, up to kMaxRanges out-of-order ranges, and between them the holes that
// NACKs ask for. known_end() is the furthest position the writer is known to have sent (the
// end of any frame that arrived, or a heartbeat's position), so a lost tail is a hole too.
//
// Holes are numbered 0..range_count(): hole k < range_count() ends where range k begins and
// starts where range k-1 (or the contiguous prefix) ends; hole range_count() is the tail,
// from the last range to known_end(), possibly empty. Each hole has its own NACK timer: it is
// NACKed nack_delay after it was first seen (a reordered frame usually fills it sooner), then
// again every nack_timeout while it stays open. A hole that a frame splits gives its timer to
// both parts: the repair that fills them is already on its way.
//
// Fixed size, no allocation, single thread (the data core). Positions are free-running bytes.
#pragma once

#include <cstdint>

#include "runtime/assert.h"

namespace cohort::transport::dgram {

struct ByteRange {
  uint64_t begin = 0;
  uint64_t end = 0;  // exclusive
};

class GapTracker {
 public:
  // 64 ranges: with 1400-byte frames and 5% loss, a 1 MiB window holds ~37 holes on average.
  // A frame that would need a 65th range is dropped (kFull) and comes back through a NACK.
  static constexpr uint32_t kMaxRanges = 64;
  static constexpr uint64_t kNever = ~uint64_t{0};

  enum class AddResult : uint8_t {
    kNew,        // some of the bytes were new: copy them (trimmed to start at the old contiguous)
    kDuplicate,  // every byte was already held
    kFull,       // a new range was needed and all kMaxRanges are in use
  };

  uint64_t contiguous() const noexcept { return contiguous_; }
  const uint64_t* contiguous_word() const noexcept { return &contiguous_; }
  uint64_t known_end() const noexcept { return known_end_; }
  uint32_t range_count() const noexcept { return count_; }
  ByteRange range(uint32_t k) const noexcept {
    COHORT_DASSERT(k < count_);
    return ranges_[k];
  }
  bool complete() const noexcept { return count_ == 0 && known_end_ == contiguous_; }

  // Records that [begin, end) arrived at now_ns. The caller has checked the window, so begin <
  // end and nothing here overflows.
  AddResult add(uint64_t begin, uint64_t end, uint64_t now_ns) noexcept {
    COHORT_DASSERT(begin < end);
    if (end <= contiguous_) return AddResult::kDuplicate;
    if (begin <= contiguous_) {
      extend_contiguous(end);
      return AddResult::kNew;
    }
    // The ranges [i, j) touch or overlap [begin, end); those before i end before it, those from
    // j on begin after it.
    uint32_t i = count_;
    while (i > 0 && ranges_[i - 1].end >= begin) --i;
    uint32_t j = i;
    while (j < count_ && ranges_[j].begin <= end) ++j;
    if (i == j) return insert(i, begin, end, now_ns);
    if (j - i == 1 && ranges_[i].begin <= begin && end <= ranges_[i].end) {
      return AddResult::kDuplicate;
    }
    merge(i, j, begin, end);
    return AddResult::kNew;
  }

  // The writer said (heartbeat) that it has sent everything below `end`.
  void extend_known(uint64_t end, uint64_t now_ns) noexcept {
    if (end <= known_end_) return;
    if (tail_empty()) holes_[count_] = Hole{now_ns, kNever};
    known_end_ = end;
  }

  // Writes up to max holes whose NACK is due at now_ns into out, restarts their timers, and
  // returns how many. Bounded by kMaxRanges + 1 iterations.
  uint32_t due_nacks(uint64_t now_ns, uint64_t delay_ns, uint64_t timeout_ns, ByteRange* out,
                     uint32_t max) noexcept {
    uint32_t n = 0;
    for (uint32_t k = 0; k <= count_ && n < max; ++k) {
      const ByteRange hole = hole_range(k);
      if (hole.end <= hole.begin) continue;  // only the tail can be empty
      Hole& h = holes_[k];
      const bool due = h.nacked_ns == kNever ? now_ns >= h.seen_ns + delay_ns
                                             : now_ns >= h.nacked_ns + timeout_ns;
      if (!due) continue;
      h.nacked_ns = now_ns;
      out[n++] = hole;
    }
    return n;
  }

  // Hole k as a byte range (for tests and NACKs); the tail may be empty.
  ByteRange hole_range(uint32_t k) const noexcept {
    COHORT_DASSERT(k <= count_);
    const uint64_t begin = k == 0 ? contiguous_ : ranges_[k - 1].end;
    const uint64_t end = k < count_ ? ranges_[k].begin : known_end_;
    return ByteRange{begin, end};
  }

 private:
  struct Hole {
    uint64_t seen_ns = kNever;    // when the hole was first seen
    uint64_t nacked_ns = kNever;  // when it was last NACKed, kNever if not yet
  };

  bool tail_empty() const noexcept {
    return known_end_ == (count_ == 0 ? contiguous_ : ranges_[count_ - 1].end);
  }

  // [.., end) arrived right at the contiguous position: advance it over every range it reaches.
  void extend_contiguous(uint64_t end) noexcept {
    contiguous_ = end;
    uint32_t k = 0;
    while (k < count_ && ranges_[k].begin <= contiguous_) {
      if (ranges_[k].end > contiguous_) contiguous_ = ranges_[k].end;
      ++k;
    }
    // Ranges 0..k-1 and the holes before them are gone; hole k becomes hole 0, shrunk, with
    // its timer.
    if (k > 0) {
      for (uint32_t m = k; m < count_; ++m) ranges_[m - k] = ranges_[m];
      for (uint32_t m = k; m <= count_; ++m) holes_[m - k] = holes_[m];
      count_ -= k;
    }
    if (contiguous_ >= known_end_) {
      COHORT_DASSERT(count_ == 0);
      known_end_ = contiguous_;
    }
  }

  // A new range [begin, end) at index k, inside hole k, touching no other range.
  AddResult insert(uint32_t k, uint64_t begin, uint64_t end, uint64_t now_ns) noexcept {
    if (count_ == kMaxRanges) return AddResult::kFull;
    const Hole inherited = k == count_ && tail_empty() ? Hole{now_ns, kNever} : holes_[k];
    for (uint32_t m = count_; m > k; --m) ranges_[m] = ranges_[m - 1];
    for (uint32_t m = count_ + 1; m > k; --m) holes_[m] = holes_[m - 1];
    ranges_[k] = ByteRange{begin, end};
    holes_[k] = inherited;
    ++count_;
    if (k == count_ - 1 && end >= known_end_) {
      known_end_ = end;
      holes_[count_] = Hole{};  // the tail is empty now; extend_known() restarts its timer
    }
    return AddResult::kNew;
  }

  // [begin, end) touches ranges i..j-1: they become one range at i; the holes between them
  // vanish, hole i keeps its timer.
  void merge(uint32_t i, uint32_t j, uint64_t begin, uint64_t end) noexcept {
    ranges_[i].begin = begin < ranges_[i].begin ? begin : ranges_[i].begin;
    ranges_[i].end = end > ranges_[j - 1].end ? end : ranges_[j - 1].end;
    const uint32_t removed = j - i - 1;
    if (removed > 0) {
      for (uint32_t m = j; m < count_; ++m) ranges_[m - removed] = ranges_[m];
      for (uint32_t m = j; m <= count_; ++m) holes_[m - removed] = holes_[m];
      count_ -= removed;
    }
    if (i == count_ - 1 && ranges_[i].end >= known_end_) {
      known_end_ = ranges_[i].end;
      holes_[count_] = Hole{};
    }
  }

  uint64_t contiguous_ = 0;
  uint64_t known_end_ = 0;
  uint32_t count_ = 0;
  ByteRange ranges_[kMaxRanges];
  Hole holes_[kMaxRanges + 1];
};

}  // namespace cohort::transport::dgram
