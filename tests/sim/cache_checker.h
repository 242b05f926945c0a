// The cache workload's independent checker (tests/sim/NOTES.md, "The cache workload"). It
// never reads a CacheCore's insides: it sees the simulated store's writes (each value unique,
// with its position in the key's store history), the invalidations each member sent and
// delivered, the loads each member ran against the store, and each get's result. From that
// alone it checks:
//
// - no invention: every value a get returns was written to the store at some time (or is the
//   key's initial value); a key always exists in this store, so "not found" is invented too;
// - coherence: a value a member returns is not older (in the key's store history) than any
//   write whose invalidation the member delivered before the get returned. A joiner inherits
//   what the members it joined from had delivered (it restores their directory);
// - single-flight: no two members load one key from the store at overlapping times while both
//   are connected (not cut off, at the load's start) and have the same view installed;
// - after a converged run, every get at a surviving member ended.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/sim/checker.h"

namespace cohort::sim {

class CacheChecker {
 public:
  // --- the store ---------------------------------------------------------------------------
  void on_initial(const std::string& key, const std::string& value);
  // A write applied to the store: `value` is at position `pos` of the key's history (from 1).
  void on_store_write(const std::string& key, const std::string& value, uint64_t pos);

  // --- the members -------------------------------------------------------------------------
  void on_start(Uid member);
  void on_end(Uid member);  // crashed, left or removed
  void on_cut_off(Uid member);
  void on_install(Uid member, ViewId view, bool from_previous);
  void on_restore(Uid member);
  // An invalidation a member sent (message `msg_id`) for the write at `pos` of `key`.
  void on_invalidate_sent(uint64_t msg_id, const std::string& key, uint64_t pos);
  void on_delivery(Uid member, uint64_t msg_id);
  void on_load_start(Uid member, const std::string& key, TimeNs now);
  void on_load_end(Uid member, const std::string& key);
  // A get's value (found) at `member`.
  void on_get(Uid member, const std::string& key, bool found, const std::string& value, TimeNs now);

  void finish(bool converged, uint64_t gets_unfinished_at_survivors);
  void fail(std::string what) { violation(std::move(what)); }

  const std::vector<std::string>& violations() const noexcept { return violations_; }
  uint64_t gets_checked() const noexcept { return gets_checked_; }
  uint64_t loads_seen() const noexcept { return loads_seen_; }
  // Gets that returned a value the member would have been wrong to return one write earlier:
  // evidence that the coherence check bites (a value newer than the floor).
  uint64_t invalidations_delivered() const noexcept { return invalidations_delivered_; }

 private:
  struct Member {
    bool ended = false;
    bool cut_off = false;
    ViewId view = 0;
    ViewId inherit = 0;                     // a joiner: the view whose boundary it restored
    std::map<std::string, uint64_t> floor;  // key -> highest store position delivered here
  };
  struct Load {
    Uid member;
    bool connected = false;
    ViewId view = 0;
  };

  Member* find(Uid u);
  uint64_t floor_of(const Member& m, const std::string& key) const;
  void violation(std::string text);

  std::map<std::string, std::map<std::string, uint64_t>> values_;       // key -> value -> position
  std::map<uint64_t, std::pair<std::string, uint64_t>> invalidations_;  // msg id -> (key, pos)
  std::map<uint64_t, Member> members_;
  // The floors of members entering view v from v-1 (what a joiner of v restores from).
  std::map<ViewId, std::map<std::string, uint64_t>> boundary_;
  std::map<std::string, std::vector<Load>> loads_;  // in flight, per key
  std::vector<std::string> violations_;
  uint64_t suppressed_ = 0;
  uint64_t gets_checked_ = 0;
  uint64_t loads_seen_ = 0;
  uint64_t invalidations_delivered_ = 0;
};

}  // namespace cohort::sim
