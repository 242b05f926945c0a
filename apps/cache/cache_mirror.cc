// A member's cached values in shared memory, read one-sided by peers (cache_mirror.h).
#include "apps/cache/cache_mirror.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstring>
#include <functional>

namespace cohort::cache {

namespace {

constexpr uint64_t kMirrorMagic = 0x3130524D43434843ull;  // "CHCCMR01"
constexpr uint32_t kMirrorVersion = 1;
constexpr uint32_t kWays = 8;  // one cache line of tags per set
constexpr size_t kHeaderBytes = 64;
constexpr int kReadTries = 4;
constexpr uint64_t kMaxSlots = uint64_t{1} << 20;
constexpr uint32_t kMaxSlotBytes = 4096;

uint64_t key_hash(std::string_view key) {
  return std::hash<std::string_view>{}(key);
}
// The set of a key: the hash's bits above the lowest (which the tag sets).
uint64_t set_of(uint64_t hash, uint32_t sets) {
  return (hash >> 1) & (sets - 1);
}
// A tag is never 0 (an empty way).
uint64_t tag_of(uint64_t hash) {
  return hash | 1;
}

size_t tags_offset() {
  return kHeaderBytes;
}
size_t slots_offset(uint64_t slots) {
  const size_t end = kHeaderBytes + slots * sizeof(uint64_t);
  return (end + 4095) & ~size_t{4095};
}

}  // namespace

struct MirrorHeader {
  std::atomic<uint64_t> magic;  // written last (release): the rest is set when it is seen
  uint32_t version;
  uint32_t slot_bytes;
  uint32_t sets;
  uint32_t ways;
  uint32_t incarnation;
  uint32_t reserved[9];
};
static_assert(sizeof(MirrorHeader) == kHeaderBytes);

struct MirrorSlot {
  std::atomic<uint64_t> seq;         // odd while the owner writes the slot
  std::atomic<uint32_t> referenced;  // set by readers; taken by the owner at eviction
  uint32_t key_len;                  // 0: empty
  uint32_t value_len;
  uint32_t reserved;
  uint64_t stamp_view;
  uint64_t stamp_gseq;
  uint64_t reserved2;
  // key bytes, then value bytes
};
static_assert(sizeof(MirrorSlot) == 48);

namespace {

std::atomic<uint64_t>* tags(std::byte* base) {
  return reinterpret_cast<std::atomic<uint64_t>*>(base + tags_offset());
}
MirrorSlot* slot_at(std::byte* base, uint64_t slots, uint32_t slot_bytes, uint64_t index) {
  return reinterpret_cast<MirrorSlot*>(base + slots_offset(slots) + index * slot_bytes);
}
std::byte* payload(MirrorSlot* s) {
  return reinterpret_cast<std::byte*>(s) + sizeof(MirrorSlot);
}

// One change of a slot under its sequence lock: odd, the change, even. The release fence keeps
// the change's stores after the odd count; the final release store keeps them before the even.
template <typename Change>
void seq_write(MirrorSlot* s, Change&& change) {
  const uint64_t seq = s->seq.load(std::memory_order_relaxed);
  s->seq.store(seq + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  change();
  s->seq.store(seq + 2, std::memory_order_release);
}

// The slot's plain fields, read and written as relaxed atomics: readers in other processes copy
// them while the owner may be rewriting them (the sequence lock judges the copy afterwards).
template <typename T>
T relaxed_load(T& field) {
  return std::atomic_ref<T>(field).load(std::memory_order_relaxed);
}
template <typename T>
void relaxed_store(T& field, T value) {
  std::atomic_ref<T>(field).store(value, std::memory_order_relaxed);
}

// Frees a way: its tag first (readers stop looking there), then the slot.
void empty_way(std::atomic<uint64_t>* tag, MirrorSlot* s) {
  tag->store(0, std::memory_order_relaxed);
  seq_write(s, [s] {
    relaxed_store(s->key_len, 0u);
    relaxed_store(s->value_len, 0u);
  });
}

}  // namespace

// --- the owner ---------------------------------------------------------------------------------

Result<std::unique_ptr<MirrorWriter>> MirrorWriter::create(const std::string& path,
                                                           uint32_t incarnation,
                                                           uint64_t capacity_bytes,
                                                           uint32_t slot_bytes) {
  if (slot_bytes < 512 || slot_bytes > kMaxSlotBytes || slot_bytes % 64 != 0) {
    return Error(Errc::kInvalidArgument, "cache mirror: slot_bytes " + std::to_string(slot_bytes) +
                                             " is not a multiple of 64 in 512..4096");
  }
  // One slot per 512 bytes of capacity: the file is at most twice the capacity, and entries of
  // the benchmark's size (700 bytes with their overhead) fill about seven tenths of the ways.
  const uint64_t slots = std::clamp<uint64_t>(
      std::bit_ceil(std::max<uint64_t>(capacity_bytes / 512, 1)), 1024, kMaxSlots);
  const size_t bytes = slots_offset(slots) + slots * slot_bytes;
  // A new file renamed over the old one: a reader still mapping an earlier incarnation's file
  // keeps a valid mapping (truncating that file under it would fault the reader).
  const std::string tmp = path + ".new";
  const int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Error(Errc::kUnavailable, "cache mirror: cannot create " + tmp + ": " +
                                         std::strerror(errno) + "; check the shm folder");
  }
  // Every page now: a sparse file whose page cannot be had later (the shm folder full) would
  // fault the owner's write into it with SIGBUS. Without the room, no mirror (peers ask).
  const int fa = ::posix_fallocate(fd, 0, static_cast<off_t>(bytes));
  if (fa != 0) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return Error(Errc::kUnavailable, "cache mirror: cannot reserve " + std::to_string(bytes >> 20) +
                                         " MiB for " + tmp + ": " + std::strerror(fa) +
                                         "; give the shm folder more room or turn peer_reads off");
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return Error(Errc::kUnavailable, "cache mirror: cannot stat " + tmp);
  }
  void* map = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) {
    ::unlink(tmp.c_str());
    return Error(Errc::kUnavailable, "cache mirror: cannot map " + tmp);
  }
  std::unique_ptr<MirrorWriter> w(new MirrorWriter());
  w->path_ = path;
  w->inode_ = st.st_ino;
  w->base_ = static_cast<std::byte*>(map);
  w->bytes_ = bytes;
  w->header_ = reinterpret_cast<MirrorHeader*>(w->base_);
  w->header_->version = kMirrorVersion;
  w->header_->slot_bytes = slot_bytes;
  w->header_->sets = static_cast<uint32_t>(slots / kWays);
  w->header_->ways = kWays;
  w->header_->incarnation = incarnation;
  w->header_->magic.store(kMirrorMagic, std::memory_order_release);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return Error(Errc::kUnavailable, "cache mirror: cannot rename " + tmp + " to " + path);
  }
  return w;
}

// The file goes unless it is no longer ours: a new incarnation of this member may have renamed
// its own over it already.
MirrorWriter::~MirrorWriter() {
  if (base_ != nullptr) ::munmap(base_, bytes_);
  struct stat st {};
  if (::stat(path_.c_str(), &st) == 0 && st.st_ino == inode_) ::unlink(path_.c_str());
}

uint64_t MirrorWriter::slot_count() const noexcept {
  return uint64_t{header_->sets} * kWays;
}
std::atomic<uint64_t>& MirrorWriter::tag_at(uint64_t index) const noexcept {
  return tags(base_)[index];
}
MirrorSlot* MirrorWriter::slot(uint64_t index) const noexcept {
  return slot_at(base_, slot_count(), header_->slot_bytes, index);
}

uint64_t MirrorWriter::find(std::string_view key, uint64_t hash) const {
  const uint64_t first = set_of(hash, header_->sets) * kWays;
  for (uint64_t i = first; i < first + kWays; ++i) {
    if (tag_at(i).load(std::memory_order_relaxed) != tag_of(hash)) continue;
    MirrorSlot* s = slot(i);
    if (relaxed_load(s->key_len) == key.size() &&
        std::memcmp(payload(s), key.data(), key.size()) == 0) {
      return i;
    }
  }
  return kNone;
}

bool MirrorWriter::put(std::string_view key, std::string_view value, Stamp stamp) {
  const uint64_t hash = key_hash(key);
  uint64_t index = find(key, hash);
  if (key.empty() || sizeof(MirrorSlot) + key.size() + value.size() > header_->slot_bytes) {
    if (index != kNone) erase_at(index);  // an older value of the key must not stay readable
    ++overflows_;
    return false;
  }
  const bool fresh = index == kNone;
  if (fresh) {
    const uint64_t first = set_of(hash, header_->sets) * kWays;
    for (uint64_t i = first; i < first + kWays && index == kNone; ++i) {
      if (tag_at(i).load(std::memory_order_relaxed) == 0) index = i;
    }
    if (index == kNone) {
      ++overflows_;
      return false;
    }
    ++entries_;
  }
  MirrorSlot* s = slot(index);
  seq_write(s, [&] {
    relaxed_store(s->key_len, static_cast<uint32_t>(key.size()));
    relaxed_store(s->value_len, static_cast<uint32_t>(value.size()));
    relaxed_store(s->stamp_view, stamp.view);
    relaxed_store(s->stamp_gseq, stamp.gseq);
    std::memcpy(payload(s), key.data(), key.size());
    if (!value.empty()) std::memcpy(payload(s) + key.size(), value.data(), value.size());
  });
  if (fresh) {
    s->referenced.store(0, std::memory_order_relaxed);
    tag_at(index).store(tag_of(hash), std::memory_order_release);
  }
  return true;
}

void MirrorWriter::erase_at(uint64_t index) {
  empty_way(&tag_at(index), slot(index));
  --entries_;
}

void MirrorWriter::erase(std::string_view key) {
  const uint64_t index = find(key, key_hash(key));
  if (index != kNone) erase_at(index);
}

void MirrorWriter::clear() {
  for (uint64_t i = 0; i < slot_count(); ++i) {  // every tag: readers map the file writable
    if (tag_at(i).load(std::memory_order_relaxed) != 0) empty_way(&tag_at(i), slot(i));
  }
  entries_ = 0;
}

bool MirrorWriter::take_referenced(std::string_view key) {
  const uint64_t index = find(key, key_hash(key));
  return index != kNone && slot(index)->referenced.exchange(0, std::memory_order_relaxed) != 0;
}

// --- a peer ------------------------------------------------------------------------------------

Result<std::unique_ptr<MirrorReader>> MirrorReader::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return Error(Errc::kNotFound, "cache mirror: no " + path);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
      static_cast<size_t>(st.st_size) < kHeaderBytes) {
    ::close(fd);
    return Error(Errc::kUnavailable, "cache mirror: " + path + " is too short");
  }
  const size_t bytes = static_cast<size_t>(st.st_size);
  void* map = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) return Error(Errc::kUnavailable, "cache mirror: cannot map " + path);
  std::unique_ptr<MirrorReader> r(new MirrorReader());
  r->base_ = static_cast<std::byte*>(map);
  r->bytes_ = bytes;
  const auto* h = reinterpret_cast<const MirrorHeader*>(r->base_);
  // Every bound before any product: the sizes come from another process.
  const bool ok =
      h->magic.load(std::memory_order_acquire) == kMirrorMagic && h->version == kMirrorVersion &&
      h->ways == kWays && h->sets != 0 && std::has_single_bit(h->sets) &&
      uint64_t{h->sets} * kWays <= kMaxSlots && h->slot_bytes >= 512 &&
      h->slot_bytes <= kMaxSlotBytes && h->slot_bytes % 64 == 0 &&
      slots_offset(uint64_t{h->sets} * kWays) + uint64_t{h->sets} * kWays * h->slot_bytes <= bytes;
  if (!ok) return Error(Errc::kUnavailable, "cache mirror: " + path + " has no layout we read");
  r->slot_bytes_ = h->slot_bytes;
  r->sets_ = h->sets;
  r->ways_ = h->ways;
  r->incarnation_ = h->incarnation;
  return r;
}

MirrorReader::~MirrorReader() {
  if (base_ != nullptr) ::munmap(base_, bytes_);
}

MirrorReader::Read MirrorReader::read(std::string_view key, std::string* value,
                                      Stamp* stamp) const {
  const uint64_t hash = key_hash(key);
  const uint64_t slots = uint64_t{sets_} * ways_;
  const uint64_t set = set_of(hash, sets_);
  std::atomic<uint64_t>* t = tags(base_) + set * ways_;
  const size_t room = slot_bytes_ - sizeof(MirrorSlot);
  bool busy = false;
  for (uint32_t w = 0; w < ways_; ++w) {
    if (t[w].load(std::memory_order_acquire) != tag_of(hash)) continue;
    MirrorSlot* s = slot_at(base_, slots, slot_bytes_, set * ways_ + w);
    for (int attempt = 0; attempt < kReadTries; ++attempt) {
      const uint64_t seq = s->seq.load(std::memory_order_acquire);
      if ((seq & 1) != 0) {
        busy = true;
        continue;
      }
      // Copies first, judged after the count is checked again: until then they may be torn.
      const uint32_t kl = relaxed_load(s->key_len);
      const uint32_t vl = relaxed_load(s->value_len);
      const Stamp st{relaxed_load(s->stamp_view), relaxed_load(s->stamp_gseq)};
      const bool lengths_ok = kl == key.size() && vl <= kMaxSharedValueBytes && kl + vl <= room;
      const bool same_key = lengths_ok && std::memcmp(payload(s), key.data(), kl) == 0;
      if (same_key) {
        value->resize(vl);
        if (vl != 0) std::memcpy(value->data(), payload(s) + kl, vl);
      }
      std::atomic_thread_fence(std::memory_order_acquire);
      if (s->seq.load(std::memory_order_relaxed) != seq) {
        busy = true;
        continue;
      }
      if (!same_key) break;  // another key with the same tag, or emptied: try the next way
      *stamp = st;
      // Written only when not set yet: a hot slot's line is not pulled away from its owner on
      // every read.
      if (s->referenced.load(std::memory_order_relaxed) == 0) {
        s->referenced.store(1, std::memory_order_relaxed);
      }
      return Read::kFound;
    }
  }
  return busy ? Read::kBusy : Read::kAbsent;
}

}  // namespace cohort::cache
