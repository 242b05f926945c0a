// The cooperative cache's replicated directory (cache_directory.h).
#include "apps/cache/cache_directory.h"

#include <algorithm>
#include <cstring>

namespace cohort::cache {
namespace {

constexpr uint32_t kSnapshotMagic = 0x31444343;  // "CCD1"
constexpr size_t kMaxHolders = 32;               // a view's most members

class Writer {
 public:
  void u8(uint8_t v) { out_.push_back(static_cast<std::byte>(v)); }
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) u8(static_cast<uint8_t>(v >> (8 * i)));
  }
  void u64(uint64_t v) {
    for (int i = 0; i < 8; ++i) u8(static_cast<uint8_t>(v >> (8 * i)));
  }
  void stamp(Stamp s) {
    u64(s.view);
    u64(s.gseq);
  }
  void key(std::string_view k) {
    u8(static_cast<uint8_t>(k.size()));
    for (char c : k) u8(static_cast<uint8_t>(c));
  }
  void member(MemberUid m) {
    u32(m.node);
    u32(m.incarnation);
  }
  std::vector<std::byte> take() { return std::move(out_); }

 private:
  std::vector<std::byte> out_;
};

class Reader {
 public:
  explicit Reader(std::span<const std::byte> b) : b_(b) {}
  bool u8(uint8_t* v) {
    if (b_.size() - at_ < 1) return false;
    *v = static_cast<uint8_t>(b_[at_++]);
    return true;
  }
  bool u32(uint32_t* v) {
    if (b_.size() - at_ < 4) return false;
    *v = 0;
    for (int i = 0; i < 4; ++i) *v |= uint32_t{static_cast<uint8_t>(b_[at_++])} << (8 * i);
    return true;
  }
  bool u64(uint64_t* v) {
    if (b_.size() - at_ < 8) return false;
    *v = 0;
    for (int i = 0; i < 8; ++i) *v |= uint64_t{static_cast<uint8_t>(b_[at_++])} << (8 * i);
    return true;
  }
  bool stamp(Stamp* s) { return u64(&s->view) && u64(&s->gseq); }
  bool key(std::string* k) {
    uint8_t n = 0;
    if (!u8(&n) || n == 0 || n > kMaxKeyBytes || b_.size() - at_ < n) return false;
    k->assign(reinterpret_cast<const char*>(b_.data() + at_), n);
    at_ += n;
    return true;
  }
  bool member(MemberUid* m) { return u32(&m->node) && u32(&m->incarnation); }
  bool done() const { return at_ == b_.size(); }

 private:
  std::span<const std::byte> b_;
  size_t at_ = 0;
};

bool contains(const std::vector<MemberUid>& v, MemberUid m) {
  return std::find(v.begin(), v.end(), m) != v.end();
}

// A hashed map's elements in key order: a snapshot's bytes must not depend on insertion history.
template <typename V>
std::vector<const typename KeyMap<V>::value_type*> in_key_order(const KeyMap<V>& m) {
  std::vector<const typename KeyMap<V>::value_type*> out;
  out.reserve(m.size());
  for (const auto& kv : m) out.push_back(&kv);
  std::sort(out.begin(), out.end(),
            [](const auto* a, const auto* b) { return a->first < b->first; });
  return out;
}

}  // namespace

Stamp Directory::version(std::string_view key) const {
  auto it = versions_.find(key);
  return it == versions_.end() ? floor_ : it->second;
}

const Directory::Entry* Directory::find(std::string_view key) const {
  auto it = entries_.find(key);
  return it == entries_.end() ? nullptr : &it->second;
}

Directory::Entry* Directory::entry_for(std::string_view key, bool create) {
  auto it = entries_.find(key);
  if (it != entries_.end()) return &it->second;
  if (!create) return nullptr;
  if (entries_.size() >= limits_.max_keys) {
    counters_.refused++;
    return nullptr;
  }
  return &entries_.emplace(std::string(key), Entry{}).first->second;
}

void Directory::forget_if_idle(KeyMap<Entry>::iterator it) {
  if (it != entries_.end() && it->second.holders.empty() && !it->second.claimed) entries_.erase(it);
}

void Directory::invalidate(std::string_view key, Stamp at) {
  counters_.invalidations++;
  // Positions of the order only grow; an invalidation behind the frontier would be a bug of
  // the caller (it feeds deliveries out of order).
  if (at > frontier_) frontier_ = at;
  auto v = versions_.find(key);
  if (v != versions_.end()) {
    by_version_.erase({v->second, v->first});
    v->second = at;
  } else {
    v = versions_.emplace(std::string(key), at).first;
  }
  by_version_.insert({at, v->first});
  while (versions_.size() > limits_.max_versions) {
    const auto oldest = by_version_.begin();
    floor_ = std::max(floor_, oldest->first);
    versions_.erase(oldest->second);
    by_version_.erase(oldest);
  }
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  it->second.holders.clear();
  forget_if_idle(it);
}

Directory::ClaimResult Directory::claim(std::string_view key, MemberUid who) {
  Entry* e = entry_for(key, true);
  if (e == nullptr) return ClaimResult::kRefused;
  if (e->claimed) {
    counters_.claims_taken++;
    return ClaimResult::kTaken;
  }
  e->claimed = true;
  e->loader = who;
  counters_.claims_won++;
  return ClaimResult::kWon;
}

void Directory::have(std::string_view key, MemberUid who, Stamp stamp) {
  counters_.haves++;
  const bool stale = stamp < version(key);
  if (stale) counters_.haves_stale++;
  Entry* e = entry_for(key, !stale);
  if (e == nullptr) return;
  if (!stale && !contains(e->holders, who)) {
    if (e->holders.size() < kMaxHolders) {
      e->holders.push_back(who);
    } else {
      counters_.refused++;
    }
  }
  forget_if_idle(entries_.find(key));
}

void Directory::drop(std::string_view key, MemberUid who) {
  counters_.drops++;
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  std::erase(it->second.holders, who);
  forget_if_idle(it);
}

void Directory::unclaim(std::string_view key, MemberUid who) {
  counters_.unclaims++;
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  if (it->second.claimed && it->second.loader == who) it->second.claimed = false;
  forget_if_idle(it);
}

std::vector<std::string> Directory::on_view(std::span<const MemberUid> members) {
  const auto in_view = [&](MemberUid m) {
    return std::find(members.begin(), members.end(), m) != members.end();
  };
  std::vector<std::string> changed;
  for (auto it = entries_.begin(); it != entries_.end();) {
    Entry& e = it->second;
    const size_t before = e.holders.size();
    std::erase_if(e.holders, [&](MemberUid m) { return !in_view(m); });
    bool touched = e.holders.size() != before;
    counters_.departed += before - e.holders.size();
    if (e.claimed && !in_view(e.loader)) {
      e.claimed = false;
      counters_.departed++;
      touched = true;
    }
    if (touched) changed.push_back(it->first);
    if (e.holders.empty() && !e.claimed) {
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
  std::sort(changed.begin(), changed.end());  // key order, as the snapshot: the map has none
  return changed;
}

bool Directory::same_entries(const Directory& o) const {
  if (entries_.size() != o.entries_.size()) return false;
  for (const auto& [key, a] : entries_) {
    const auto b = o.entries_.find(key);
    if (b == o.entries_.end() || a.holders != b->second.holders || a.claimed != b->second.claimed ||
        (a.claimed && a.loader != b->second.loader)) {
      return false;
    }
  }
  return true;
}

// magic | frontier | floor | u32 versions, each (key, stamp) in key order | u32 entries, each
// (key, u8 claimed, [loader], u8 holders, holders...) in key order.
std::vector<std::byte> Directory::snapshot() const {
  Writer w;
  w.u32(kSnapshotMagic);
  w.stamp(frontier_);
  w.stamp(floor_);
  w.u32(static_cast<uint32_t>(versions_.size()));
  for (const auto* v : in_key_order(versions_)) {
    w.key(v->first);
    w.stamp(v->second);
  }
  w.u32(static_cast<uint32_t>(entries_.size()));
  for (const auto* entry : in_key_order(entries_)) {
    const Entry& e = entry->second;
    w.key(entry->first);
    w.u8(e.claimed ? 1 : 0);
    if (e.claimed) w.member(e.loader);
    w.u8(static_cast<uint8_t>(e.holders.size()));
    for (MemberUid m : e.holders) w.member(m);
  }
  return w.take();
}

void Directory::clear() {
  entries_.clear();
  versions_.clear();
  by_version_.clear();
  frontier_ = Stamp{};
  floor_ = Stamp{};
}

bool Directory::restore(std::span<const std::byte> bytes) {
  clear();
  Reader r(bytes);
  const auto refuse = [this] {
    clear();
    counters_.snapshots_refused++;
    return false;
  };
  uint32_t magic = 0, nversions = 0, nentries = 0;
  Stamp frontier, floor;
  if (!r.u32(&magic) || magic != kSnapshotMagic || !r.stamp(&frontier) || !r.stamp(&floor) ||
      floor > frontier || !r.u32(&nversions) || nversions > limits_.max_versions) {
    return refuse();
  }
  std::string key, last;
  for (uint32_t i = 0; i < nversions; ++i) {
    Stamp s;
    if (!r.key(&key) || (i > 0 && key <= last) || !r.stamp(&s) || s > frontier) return refuse();
    versions_.emplace(key, s);
    by_version_.insert({s, key});
    last = key;
  }
  if (!r.u32(&nentries) || nentries > limits_.max_keys) return refuse();
  for (uint32_t i = 0; i < nentries; ++i) {
    Entry e;
    uint8_t claimed = 0, nholders = 0;
    if (!r.key(&key) || (i > 0 && key <= last) || !r.u8(&claimed) || claimed > 1) return refuse();
    e.claimed = claimed == 1;
    if (e.claimed && !r.member(&e.loader)) return refuse();
    if (!r.u8(&nholders) || nholders > kMaxHolders || (nholders == 0 && !e.claimed)) {
      return refuse();
    }
    for (uint8_t h = 0; h < nholders; ++h) {
      MemberUid m;
      if (!r.member(&m) || contains(e.holders, m)) return refuse();
      e.holders.push_back(m);
    }
    entries_.emplace(key, std::move(e));
    last = key;
  }
  if (!r.done()) return refuse();
  frontier_ = frontier;
  floor_ = floor;
  return true;
}

}  // namespace cohort::cache
