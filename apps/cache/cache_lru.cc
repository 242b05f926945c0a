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
  bytes_ -= cost(it->key, it->value);
  index_.erase(index_.find(it->key));
  lru_.erase(it);
}

bool LruStore::put(std::string_view key, std::string_view value, Stamp stamp,
                   std::vector<std::string>* evicted) {
  const uint64_t need = cost(key, value);
  if (need > capacity_) return false;
  if (auto it = index_.find(key); it != index_.end()) remove(it->second);
  while (bytes_ + need > capacity_) {
    evicted->push_back(lru_.back().key);
    evictions_++;
    remove(std::prev(lru_.end()));
  }
  lru_.push_front(Entry{std::string(key), std::string(value), stamp});
  index_.emplace(lru_.front().key, lru_.begin());
  bytes_ += need;
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
  lru_.clear();
  index_.clear();
  bytes_ = 0;
}

}  // namespace cohort::cache
