// Directory: the cooperative cache's replicated state as a pure state machine
// (apps/cache/NOTES.md, "The directory"). Every member applies the same ordered ops and the same
// views in the same order, so every directory takes the same steps; a joiner restores it from
// the snapshot taken at the view boundary.
//
// It holds, per key: the members that announced they hold the key (a hint: a holder may have
// evicted it since, until its drop is delivered), and the claim, the one member loading the
// key from the store for the group (single-flight). And the write versions: the stamp (view,
// gseq) of the last invalidation of each key, and the frontier, the stamp of the last
// invalidation of any key. Versions of keys forgotten to bound memory fold into `floor`, which
// then stands for each of them: higher than or equal to their true version, so a check against
// it only errs on the safe side.
//
// Rules:
// - invalidate(k, at): version(k) = at; frontier = at; k's holders are removed (each holder
//   drops its copy at this very point of the order). A claim stays: its loader discards a load
//   begun before `at` and loads again.
// - claim(k, m) wins when k has no claim; otherwise it is taken (another member loads).
// - have(k, m, stamp) lists m as a holder unless stamp < version(k) (m's value predates a write
//   delivered before the announcement: m dropped it at the write).
// - drop(k, m) unlists m; unclaim(k, m) ends m's claim. Only an unclaim ends a claim: m sends
//   it once its claim is delivered and its load is over, so a have m sent before its claim was
//   decided (FIFO puts it anywhere after) cannot end the claim while m still loads.
// - on_view(members) removes every holder and loader not in the view.
// - A key with neither holders nor a claim is forgotten.
//
// Threading: one thread at a time.
#pragma once

#include <cstdint>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "apps/cache/cache_op.h"
#include "cohort/group.h"

namespace cohort::cache {

class Directory {
 public:
  struct Limits {
    uint32_t max_keys = 1u << 20;      // keys with holders or a claim; beyond, new ones refused
    uint32_t max_versions = 1u << 16;  // per-key versions kept; the oldest fold into the floor
  };
  struct Entry {
    std::vector<MemberUid> holders;  // in announcement order
    bool claimed = false;
    MemberUid loader{};
  };
  struct Counters {
    uint64_t claims_won = 0;
    uint64_t claims_taken = 0;
    uint64_t haves = 0;
    uint64_t haves_stale = 0;  // a have older than the key's last write: not listed
    uint64_t drops = 0;
    uint64_t unclaims = 0;
    uint64_t refused = 0;  // over max_keys (or 32 holders): not recorded, at every member alike
    uint64_t invalidations = 0;
    uint64_t departed = 0;  // holders and loaders removed by views
    uint64_t snapshots_refused = 0;
  };
  enum class ClaimResult : uint8_t { kWon, kTaken, kRefused };

  Directory() = default;
  explicit Directory(const Limits& limits) : limits_(limits) {}

  Stamp version(std::string_view key) const;
  Stamp frontier() const noexcept { return frontier_; }
  Stamp floor() const noexcept { return floor_; }
  const Entry* find(std::string_view key) const;
  size_t keys() const noexcept { return entries_.size(); }
  size_t versions() const noexcept { return versions_.size(); }
  const Counters& counters() const noexcept { return counters_; }

  void invalidate(std::string_view key, Stamp at);
  ClaimResult claim(std::string_view key, MemberUid who);
  void have(std::string_view key, MemberUid who, Stamp stamp);
  void drop(std::string_view key, MemberUid who);
  void unclaim(std::string_view key, MemberUid who);
  // Keys whose entry changed (a holder or a loader removed).
  std::vector<std::string> on_view(std::span<const MemberUid> members);

  // Deterministic bytes (magic CCD1; NOTES.md "State transfer").
  std::vector<std::byte> snapshot() const;
  // Checks every length, count, limit, order and stamp; anything else is refused, counted,
  // and leaves the directory empty.
  bool restore(std::span<const std::byte> bytes);
  bool operator==(const Directory& o) const {
    return frontier_ == o.frontier_ && floor_ == o.floor_ && versions_ == o.versions_ &&
           same_entries(o);
  }

 private:
  bool same_entries(const Directory& o) const;
  Entry* entry_for(std::string_view key, bool create);
  void forget_if_idle(KeyMap<Entry>::iterator it);
  void clear();

  Limits limits_{};
  KeyMap<Entry> entries_;
  KeyMap<Stamp> versions_;
  std::set<std::pair<Stamp, std::string>> by_version_;  // the oldest first, to fold
  Stamp frontier_{};
  Stamp floor_{};
  Counters counters_{};
};

}  // namespace cohort::cache
