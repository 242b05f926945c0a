// One member's cached values (cache_lru.h).
#include "apps/cache/cache_lru.h"

namespace cohort::cache {

const LruStore::Entry* LruStore::touch(std::string_view key) {
  auto it = index_.find(key);
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return &*it->second;
}

const LruStore::Entry* LruStore::peek(std::string_view key) const {
  auto it = index_.find(key);
  return it == index_.end() ? nullptr : &*it->second;
}

void LruStore::remove(List::iterator it) {
  if (observer_ != nullptr) observer_->on_erase(it->key);
  bytes_ -= cost(it->key, it->value);
  index_.erase(it->key);
  lru_.erase(it);
}

bool LruStore::put(std::string_view key, std::string_view value, Stamp stamp,
                   std::vector<std::string>* evicted) {
  const uint64_t need = cost(key, value);
  if (need > capacity_) return false;
  if (auto it = index_.find(key); it != index_.end()) remove(it->second);
  int chances = kMaxSecondChances;
  while (bytes_ + need > capacity_) {
    const List::iterator victim = std::prev(lru_.end());
    // Peers that read an entry from the mirror do not touch it here: their mark stands in.
    if (observer_ != nullptr && chances > 0 && observer_->take_referenced(victim->key)) {
      --chances;
      lru_.splice(lru_.begin(), lru_, victim);
      continue;
    }
    evicted->push_back(victim->key);
    evictions_++;
    remove(victim);
  }
  lru_.push_front(Entry{std::string(key), std::string(value), stamp});
  index_.emplace(lru_.front().key, lru_.begin());
  bytes_ += need;
  if (observer_ != nullptr) observer_->on_put(key, value, stamp);
  return true;
}

bool LruStore::erase(std::string_view key) {
  auto it = index_.find(key);
  if (it == index_.end()) return false;
  remove(it->second);
  return true;
}

void LruStore::clear(std::vector<std::string>* dropped) {
  for (const Entry& e : lru_) dropped->push_back(e.key);
  if (observer_ != nullptr) observer_->on_clear();
  lru_.clear();
  index_.clear();
  bytes_ = 0;
}

}  // namespace cohort::cache
