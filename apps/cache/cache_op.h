// The cooperative cache's bytes (apps/cache/NOTES.md, "Wire format"): the ordered ops that
// travel as group messages, and the point-to-point request and reply between two members.
//
// Ordered op (a group message):
//   offset  size  field
//   0       2     magic 0xC0 0x43
//   2       1     version (1)
//   3       1     kind: 1 invalidate (safe order), 2 directory batch (total order)
//   4       2     count, little endian: invalidate 1; batch 1..kMaxBatchEntries
//   6       2     zero
//   8       8     invalidate: the writer's number for the write (never 0); batch: zero
//   16      ...   invalidate: key length n (1 byte, 1..kMaxKeyBytes), the key
//                 batch: `count` entries, each: kind (1 claim, 2 have, 3 drop, 4 unclaim),
//                 key length n, [have: stamp view u64, stamp gseq u64], the key
//
// Request (point to point):
//   0 2 magic 0xC0 0x63 | 2 1 version | 3 1 kind 1 (get) | 4 1 key length n | 5 3 zero | 8 n key
// Reply:
//   0 2 magic 0xC0 0x63 | 2 1 version | 3 1 kind 2 (reply) | 4 1 key length n |
//   5 1 status (1 hit, 2 miss, 3 not found, 4 store error, 5 too large) | 6 2 value length |
//   8 8 stamp view | 16 8 stamp gseq | 24 n key | 24+n value (hit only)
//
// Every decoder checks the magic, the version, each kind and status, the zero bytes, every
// length against its limit and the exact total; bytes that start with a magic and break a rule
// are kMalformed (counted and dropped by the caller), never a crash.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace cohort::cache {

inline constexpr std::byte kOpMagic0{0xC0};
inline constexpr std::byte kOpMagic1{0x43};
inline constexpr std::byte kPeerMagic1{0x63};
inline constexpr uint8_t kWireVersion = 1;
inline constexpr size_t kOpHeaderBytes = 16;
inline constexpr size_t kReplyHeaderBytes = 24;
inline constexpr size_t kRequestHeaderBytes = 8;
inline constexpr size_t kMaxKeyBytes = 250;
// The largest value a peer reply carries (a group message is at most 4 KiB): larger values are
// served to the caller but never cached or shared.
inline constexpr size_t kMaxSharedValueBytes = 3584;
// One ordered op: the group's largest message.
inline constexpr size_t kMaxOpBytes = 4096;
inline constexpr uint16_t kMaxBatchEntries = 128;
static_assert(kReplyHeaderBytes + kMaxKeyBytes + kMaxSharedValueBytes <= kMaxOpBytes);

// The maps a get consults (a member's values, the directory, the write versions) are hashed,
// looked up by string_view without building a string: with ordered maps of 24k-100k keys a
// local hit took 4.1 us at p50 in the cache benchmark's paced phase, nearly all of it cache
// misses down the trees (a miss that asks a peer, 9.7 us). Where order matters (a snapshot's
// bytes, a comparison), the caller sorts.
// (Not noexcept, on purpose: libstdc++ then keeps each key's hash in its node, so a lookup
// compares hashes before strings and an erase never hashes the key again.)
struct KeyHash {
  using is_transparent = void;
  size_t operator()(std::string_view key) const { return std::hash<std::string_view>{}(key); }
};
template <typename V>
using KeyMap = std::unordered_map<std::string, V, KeyHash, std::equal_to<>>;

// A point of the group's total order: (view, gseq), compared as a pair. The stamp of a value is
// the position of the last write (invalidation) its member had delivered when the value's store
// load began: the value is at least as new as every write ordered at or before it.
struct Stamp {
  uint64_t view = 0;
  uint64_t gseq = 0;
  friend auto operator<=>(const Stamp&, const Stamp&) = default;
};

enum class OpKind : uint8_t { kInvalidate = 1, kBatch = 2 };
enum class DirKind : uint8_t { kClaim = 1, kHave = 2, kDrop = 3, kUnclaim = 4 };
const char* dir_kind_name(DirKind kind) noexcept;

struct DirEntry {
  DirKind kind = DirKind::kClaim;
  Stamp stamp;           // kHave: the value's stamp
  std::string_view key;  // points into the decoded bytes (or the caller's string)
};

struct Op {
  OpKind kind = OpKind::kInvalidate;
  uint64_t write = 0;             // kInvalidate
  std::string_view key;           // kInvalidate
  std::vector<DirEntry> entries;  // kBatch
};

enum class DecodeResult : uint8_t {
  kOk,
  kNotOurs,    // does not start with the magic: some other application's bytes
  kMalformed,  // starts like ours but breaks a rule: counted and dropped
};

bool valid_key(std::string_view key) noexcept;

// Bytes of one directory entry on the wire.
size_t dir_entry_bytes(const DirEntry& e) noexcept;
std::vector<std::byte> encode_invalidate(uint64_t write, std::string_view key);
// `entries` must fit one op (dir_entry_bytes summed + the header <= kMaxOpBytes) and be
// 1..kMaxBatchEntries long.
std::vector<std::byte> encode_batch(std::span<const DirEntry> entries);
DecodeResult decode_op(std::span<const std::byte> bytes, Op* op);

enum class ReplyStatus : uint8_t {
  kHit = 1,
  kMiss = 2,
  kNotFound = 3,
  kStoreError = 4,
  kTooLarge = 5,  // the value is over kMaxSharedValueBytes: the asker loads it itself
};
const char* reply_status_name(ReplyStatus s) noexcept;

struct Reply {
  ReplyStatus status = ReplyStatus::kMiss;
  Stamp stamp;
  std::string_view key;
  std::string_view value;  // kHit
};

std::vector<std::byte> encode_request(std::string_view key);
DecodeResult decode_request(std::span<const std::byte> bytes, std::string_view* key);
std::vector<std::byte> encode_reply(const Reply& reply);
DecodeResult decode_reply(std::span<const std::byte> bytes, Reply* reply);

}  // namespace cohort::cache
