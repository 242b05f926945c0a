// One member's cached values, bounded in bytes, evicted least recently used first
// (apps/cache/NOTES.md, "Capacity"). Each value keeps its stamp (cache_op.h). No clock or
// thread; one thread at a time.
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "apps/cache/cache_op.h"

namespace cohort::cache {

class LruStore {
 public:
  // What an entry costs beyond its key and value: the list node, the map node, the strings'
  // headers (about 2 x 32 + 2 x 32 bytes on x86-64, rounded).
  static constexpr uint64_t kEntryOverheadBytes = 128;

  struct Entry {
    std::string key;
    std::string value;
    Stamp stamp;
  };

  explicit LruStore(uint64_t capacity_bytes) : capacity_(capacity_bytes) {}

  static uint64_t cost(std::string_view key, std::string_view value) noexcept {
    return key.size() + value.size() + kEntryOverheadBytes;
  }

  // The entry, made the most recently used; nullptr when absent.
  const Entry* touch(std::string_view key);
  const Entry* peek(std::string_view key) const;
  // Inserts or replaces `key`, evicting the least recently used entries as needed; the keys
  // evicted are appended to `evicted`. False (and nothing changes) when the entry alone is over
  // the capacity.
  bool put(std::string_view key, std::string_view value, Stamp stamp,
           std::vector<std::string>* evicted);
  bool erase(std::string_view key);
  // Removes everything; the keys are appended to `dropped`.
  void clear(std::vector<std::string>* dropped);

  uint64_t bytes() const noexcept { return bytes_; }
  uint64_t capacity() const noexcept { return capacity_; }
  size_t size() const noexcept { return index_.size(); }
  uint64_t evictions() const noexcept { return evictions_; }

 private:
  using List = std::list<Entry>;
  void remove(List::iterator it);

  uint64_t capacity_;
  uint64_t bytes_ = 0;
  uint64_t evictions_ = 0;
  List lru_;  // most recently used first
  std::map<std::string, List::iterator, std::less<>> index_;
};

}  // namespace cohort::cache
