// The cache workload's checker (cache_checker.h).
#include "tests/sim/cache_checker.h"

#include <algorithm>
#include <sstream>

namespace cohort::sim {
namespace {

// Messages are built with a stream: GCC 12's -Wrestrict misfires on "literal" + std::string.
std::string who(Uid u) {
  std::ostringstream o;
  o << "n" << u.node << "." << u.incarnation;
  return o.str();
}

}  // namespace

void CacheChecker::violation(std::string text) {
  if (violations_.size() < 20) {
    violations_.push_back(std::move(text));
  } else {
    suppressed_++;
  }
}

CacheChecker::Member* CacheChecker::find(Uid u) {
  auto it = members_.find(u.key());
  return it == members_.end() ? nullptr : &it->second;
}

void CacheChecker::on_initial(const std::string& key, const std::string& value) {
  values_[key][value] = 0;
}

void CacheChecker::on_store_write(const std::string& key, const std::string& value, uint64_t pos) {
  auto [it, fresh] = values_[key].emplace(value, pos);
  if (!fresh) violation(std::string("cache workload: value '").append(value).append("' twice"));
}

void CacheChecker::on_start(Uid member) {
  members_[member.key()] = Member{};
}

void CacheChecker::on_end(Uid member) {
  if (Member* m = find(member)) m->ended = true;
  for (auto& [key, loads] : loads_) {
    std::erase_if(loads, [&](const Load& l) { return l.member == member; });
  }
}

void CacheChecker::on_cut_off(Uid member) {
  if (Member* m = find(member)) m->cut_off = true;
}

void CacheChecker::on_install(Uid member, ViewId view, bool from_previous) {
  Member* m = find(member);
  if (m == nullptr) return;
  m->view = view;
  m->cut_off = false;
  if (!from_previous) return;
  // Members entering v from v-1 delivered the same writes in v-1; a joiner of v restores the
  // directory as it stood there. The most any of them had delivered is what a joiner knows.
  std::map<std::string, uint64_t>& b = boundary_[view];
  for (const auto& [key, pos] : m->floor) {
    uint64_t& f = b[key];
    f = std::max(f, floor_of(*m, key));
  }
  if (m->inherit != 0) {
    for (const auto& [key, pos] : boundary_[m->inherit]) {
      uint64_t& f = b[key];
      f = std::max(f, pos);
    }
  }
}

void CacheChecker::on_restore(Uid member) {
  if (Member* m = find(member)) m->inherit = m->view;
}

uint64_t CacheChecker::floor_of(const Member& m, const std::string& key) const {
  uint64_t f = 0;
  if (auto it = m.floor.find(key); it != m.floor.end()) f = it->second;
  if (m.inherit != 0) {
    if (auto b = boundary_.find(m.inherit); b != boundary_.end()) {
      if (auto it = b->second.find(key); it != b->second.end()) f = std::max(f, it->second);
    }
  }
  return f;
}

void CacheChecker::on_invalidate_sent(uint64_t msg_id, const std::string& key, uint64_t pos) {
  invalidations_[msg_id] = {key, pos};
}

void CacheChecker::on_delivery(Uid member, uint64_t msg_id) {
  auto it = invalidations_.find(msg_id);
  if (it == invalidations_.end()) return;
  Member* m = find(member);
  if (m == nullptr) return;
  uint64_t& f = m->floor[it->second.first];
  f = std::max(f, it->second.second);
  invalidations_delivered_++;
}

void CacheChecker::on_load_start(Uid member, const std::string& key, TimeNs now) {
  Member* m = find(member);
  if (m == nullptr) return;
  loads_seen_++;
  Load l{member, !m->cut_off, m->view};
  std::vector<Load>& in_flight = loads_[key];
  if (l.connected) {
    for (const Load& o : in_flight) {
      const Member* om = find(o.member);
      if (o.member == member || !o.connected || om == nullptr || om->ended) continue;
      if (om->view == m->view && !om->cut_off) {
        violation("single-flight: " + who(member) + " began a store load of '" + key +
                  "' at t=" + std::to_string(now / 1000) + "us while " + who(o.member) +
                  "'s load of it runs; both in view " + std::to_string(m->view) + ", connected");
      }
    }
  }
  in_flight.push_back(l);
}

void CacheChecker::on_load_end(Uid member, const std::string& key) {
  std::vector<Load>& in_flight = loads_[key];
  auto it = std::find_if(in_flight.begin(), in_flight.end(),
                         [&](const Load& l) { return l.member == member; });
  if (it != in_flight.end()) in_flight.erase(it);
}

void CacheChecker::on_get(Uid member, const std::string& key, bool found, const std::string& value,
                          TimeNs now) {
  gets_checked_++;
  const Member* m = find(member);
  if (m == nullptr) return;
  std::ostringstream v;
  v << "a get of '" << key << "' at " << who(member) << " t=" << now / 1000 << "us ";
  if (!found) {
    v << "answered not found; every key of this store exists";
    violation("no invention: " + v.str());
    return;
  }
  const auto& written = values_[key];
  auto it = written.find(value);
  if (it == written.end()) {
    v << "returned '" << value << "', never written";
    violation("no invention: " + v.str());
    return;
  }
  const uint64_t floor = floor_of(*m, key);
  if (it->second < floor) {
    v << "returned '" << value << "' (store position " << it->second
      << ") after it delivered the invalidation of the write at position " << floor;
    violation("coherence: " + v.str());
  }
}

void CacheChecker::finish(bool converged, uint64_t gets_unfinished_at_survivors) {
  if (converged && gets_unfinished_at_survivors != 0) {
    std::ostringstream v;
    v << "cache liveness: " << gets_unfinished_at_survivors
      << " gets at surviving members never ended";
    violation(v.str());
  }
  if (suppressed_ != 0) {
    std::ostringstream v;
    v << "(" << suppressed_ << " more cache violations)";
    violations_.push_back(v.str());
  }
}

}  // namespace cohort::sim
