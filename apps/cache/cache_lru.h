// One member's cached values, bounded in bytes, evicted least recently used first
// (apps/cache/NOTES.md, "Capacity"). Each value keeps its stamp (cache_op.h). No clock or
// thread; one thread at a time.
#pragma once

#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <vector>

#include "apps/cache/cache_op.h"

namespace cohort::cache {

// Told of every change to a LruStore, in the order made (the cache service's shared-memory
// mirror, cache_mirror.h).
class LruObserver {
 public:
  virtual ~LruObserver() = default;
  virtual void on_put(std::string_view key, std::string_view value, Stamp stamp) = 0;
  virtual void on_erase(std::string_view key) = 0;
  virtual void on_clear() = 0;
  // True when a peer read `key` since the last call: the entry is kept a while longer.
  virtual bool take_referenced(std::string_view key) = 0;
};

class LruStore {
 public:
  // At most this many entries move to the front (a second chance: peers read them) per put.
  static constexpr int kMaxSecondChances = 64;

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
  void set_observer(LruObserver* observer) noexcept { observer_ = observer; }

 private:
  using List = std::list<Entry>;
  void remove(List::iterator it);

  uint64_t capacity_;
  uint64_t bytes_ = 0;
  uint64_t evictions_ = 0;
  LruObserver* observer_ = nullptr;
  List lru_;  // most recently used first
  KeyMap<List::iterator> index_;
};

}  // namespace cohort::cache
