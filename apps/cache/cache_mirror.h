// A member's cached values published in shared memory, so that a peer on the same host reads a
// value one-sided instead of asking the member's data core for it (apps/cache/NOTES.md, "Peer
// reads"). The idea is RDMA READ's in key-value stores such as Pilaf and FaRM: the reader copies
// the entry and checks it was not torn, the owner's cpu does nothing.
//
// What a read returns is exactly what a point-to-point reply would have carried at that instant:
// the value and its stamp, copied atomically (a per-slot sequence lock). The reader applies the
// same stamp check to it as to a reply, so coherence does not depend on this path; a key the
// mirror does not hold (its set was full, the value too large, the slot being rewritten) is
// asked for over the group as before.
//
// Layout (one file per member, in the group's shm folder, `cache-mirror-m<node>`):
//   header, 64 bytes: magic, layout version, slot bytes, sets, ways, the owner's incarnation
//   slots, `sets * ways` of `slot_bytes` each: a set is chosen by the key's hash, and a key
//   lives in one of its set's ways. Slot: seq (odd while written), referenced (readers set
//   it), key length (0: empty), value length, hash, stamp, key bytes, value bytes.
//
// Threads: one writer (the owner, under its service's lock); any number of readers in other
// processes. Readers map the file read-write only to set `referenced`, which the owner reads to
// give a recently read entry a second chance before evicting it (peer reads keep values warm,
// as peer requests do by touching the LRU).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "apps/cache/cache_op.h"
#include "runtime/result.h"

namespace cohort::cache {

struct MirrorHeader;
struct MirrorSlot;

class MirrorWriter {
 public:
  // Sized for about `capacity_bytes` of cached entries (one slot per 512 bytes of capacity,
  // at least 1,024 and at most 1 Mi slots of `slot_bytes`: a file of at most twice the
  // capacity with 1 KiB slots, all of it reserved at once, so a full shm folder is an error
  // here and never a fault later). Replaces a file left at `path` by renaming over it.
  static Result<std::unique_ptr<MirrorWriter>> create(const std::string& path, uint32_t incarnation,
                                                      uint64_t capacity_bytes,
                                                      uint32_t slot_bytes = 1024);
  ~MirrorWriter();  // unmaps, and removes the file unless another has replaced it
  MirrorWriter(const MirrorWriter&) = delete;
  MirrorWriter& operator=(const MirrorWriter&) = delete;

  // Publishes `key` = `value` at `stamp`, replacing an older entry of the key. False when it
  // does not fit a slot or its set is full: the key is then absent here (readers ask instead).
  bool put(std::string_view key, std::string_view value, Stamp stamp);
  void erase(std::string_view key);
  void clear();
  // Whether a reader read `key` since the last call (and clears the mark).
  bool take_referenced(std::string_view key);

  uint64_t entries() const noexcept { return entries_; }
  uint64_t overflows() const noexcept { return overflows_; }  // puts refused: set full or too big

 private:
  static constexpr uint64_t kNone = ~uint64_t{0};
  MirrorWriter() = default;
  uint64_t slot_count() const noexcept;
  std::atomic<uint64_t>& tag_at(uint64_t index) const noexcept;
  MirrorSlot* slot(uint64_t index) const noexcept;
  // The index (set * ways + way) of `key`'s slot, or kNone.
  uint64_t find(std::string_view key, uint64_t hash) const;
  void erase_at(uint64_t index);

  std::string path_;
  uint64_t inode_ = 0;  // of the file created: the destructor removes only that one
  std::byte* base_ = nullptr;
  size_t bytes_ = 0;
  MirrorHeader* header_ = nullptr;
  uint64_t entries_ = 0;
  uint64_t overflows_ = 0;
};

class MirrorReader {
 public:
  enum class Read : uint8_t {
    kFound,   // `value` and `stamp` are the entry's, copied whole
    kAbsent,  // the mirror does not hold the key
    kBusy,    // the slot was being rewritten on every try
  };
  // Maps a peer's mirror; fails when the file is missing or its header is not one this build
  // reads (the caller then asks over the group).
  static Result<std::unique_ptr<MirrorReader>> open(const std::string& path);
  ~MirrorReader();
  MirrorReader(const MirrorReader&) = delete;
  MirrorReader& operator=(const MirrorReader&) = delete;

  // The incarnation of the member that wrote the mirror: a reader of a member's values checks it
  // is the incarnation the directory names.
  uint32_t incarnation() const noexcept { return incarnation_; }
  // Lengths are checked against the slot and the limits before anything is copied: the bytes
  // come from another process.
  Read read(std::string_view key, std::string* value, Stamp* stamp) const;

 private:
  MirrorReader() = default;

  std::byte* base_ = nullptr;
  size_t bytes_ = 0;
  uint32_t slot_bytes_ = 0;
  uint32_t sets_ = 0;
  uint32_t ways_ = 0;
  uint32_t incarnation_ = 0;
};

}  // namespace cohort::cache
