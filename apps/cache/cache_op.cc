// The cooperative cache's bytes (cache_op.h).
#include "apps/cache/cache_op.h"

namespace cohort::cache {
namespace {

// Appends little-endian fields (push_back: no index into a vector the compiler cannot size).
class Out {
 public:
  explicit Out(size_t n) { b_.reserve(n); }
  void u8(uint8_t v) { b_.push_back(static_cast<std::byte>(v)); }
  void u16(uint16_t v) {
    u8(static_cast<uint8_t>(v));
    u8(static_cast<uint8_t>(v >> 8));
  }
  void u64(uint64_t v) {
    for (int i = 0; i < 8; ++i) u8(static_cast<uint8_t>(v >> (8 * i)));
  }
  void zeros(size_t n) { b_.insert(b_.end(), n, std::byte{0}); }
  void text(std::string_view s) {
    for (char c : s) u8(static_cast<uint8_t>(c));
  }
  void magic(std::byte m1) {
    b_.push_back(kOpMagic0);
    b_.push_back(m1);
    u8(kWireVersion);
  }
  std::vector<std::byte> take() { return std::move(b_); }

 private:
  std::vector<std::byte> b_;
};

uint16_t get_u16(std::span<const std::byte> b, size_t at) {
  return static_cast<uint16_t>(static_cast<uint8_t>(b[at]) |
                               (static_cast<uint16_t>(static_cast<uint8_t>(b[at + 1])) << 8));
}
uint64_t get_u64(std::span<const std::byte> b, size_t at) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) {
    v |= uint64_t{static_cast<uint8_t>(b[at + static_cast<size_t>(i)])} << (8 * i);
  }
  return v;
}
std::string_view view_of(std::span<const std::byte> b, size_t at, size_t n) {
  return {reinterpret_cast<const char*>(b.data() + at), n};
}
bool zero(std::span<const std::byte> b, size_t from, size_t to) {
  for (size_t i = from; i < to; ++i) {
    if (b[i] != std::byte{0}) return false;
  }
  return true;
}
bool is_ours(std::span<const std::byte> b, std::byte magic1) {
  return b.size() >= 2 && b[0] == kOpMagic0 && b[1] == magic1;
}

}  // namespace

const char* dir_kind_name(DirKind kind) noexcept {
  switch (kind) {
    case DirKind::kClaim: return "claim";
    case DirKind::kHave: return "have";
    case DirKind::kDrop: return "drop";
    case DirKind::kUnclaim: return "unclaim";
  }
  return "?";
}

const char* reply_status_name(ReplyStatus s) noexcept {
  switch (s) {
    case ReplyStatus::kHit: return "hit";
    case ReplyStatus::kMiss: return "miss";
    case ReplyStatus::kNotFound: return "not_found";
    case ReplyStatus::kStoreError: return "store_error";
    case ReplyStatus::kTooLarge: return "too_large";
  }
  return "?";
}

bool valid_key(std::string_view key) noexcept {
  return !key.empty() && key.size() <= kMaxKeyBytes;
}

size_t dir_entry_bytes(const DirEntry& e) noexcept {
  return 2 + (e.kind == DirKind::kHave ? 16 : 0) + e.key.size();
}

std::vector<std::byte> encode_invalidate(uint64_t write, std::string_view key) {
  Out o(kOpHeaderBytes + 1 + key.size());
  o.magic(kOpMagic1);
  o.u8(static_cast<uint8_t>(OpKind::kInvalidate));
  o.u16(1);
  o.zeros(2);
  o.u64(write);
  o.u8(static_cast<uint8_t>(key.size()));
  o.text(key);
  return o.take();
}

std::vector<std::byte> encode_batch(std::span<const DirEntry> entries) {
  size_t n = kOpHeaderBytes;
  for (const DirEntry& e : entries) n += dir_entry_bytes(e);
  Out o(n);
  o.magic(kOpMagic1);
  o.u8(static_cast<uint8_t>(OpKind::kBatch));
  o.u16(static_cast<uint16_t>(entries.size()));
  o.zeros(10);
  for (const DirEntry& e : entries) {
    o.u8(static_cast<uint8_t>(e.kind));
    o.u8(static_cast<uint8_t>(e.key.size()));
    if (e.kind == DirKind::kHave) {
      o.u64(e.stamp.view);
      o.u64(e.stamp.gseq);
    }
    o.text(e.key);
  }
  return o.take();
}

DecodeResult decode_op(std::span<const std::byte> b, Op* op) {
  if (!is_ours(b, kOpMagic1)) return DecodeResult::kNotOurs;
  if (b.size() < kOpHeaderBytes || b.size() > kMaxOpBytes) return DecodeResult::kMalformed;
  if (static_cast<uint8_t>(b[2]) != kWireVersion || !zero(b, 6, 8)) return DecodeResult::kMalformed;
  const uint8_t kind = static_cast<uint8_t>(b[3]);
  const uint16_t count = get_u16(b, 4);
  const uint64_t word = get_u64(b, 8);
  op->entries.clear();
  if (kind == static_cast<uint8_t>(OpKind::kInvalidate)) {
    if (count != 1 || word == 0 || b.size() < kOpHeaderBytes + 1) return DecodeResult::kMalformed;
    const size_t n = static_cast<uint8_t>(b[16]);
    if (n == 0 || n > kMaxKeyBytes || b.size() != kOpHeaderBytes + 1 + n) {
      return DecodeResult::kMalformed;
    }
    op->kind = OpKind::kInvalidate;
    op->write = word;
    op->key = view_of(b, 17, n);
    return DecodeResult::kOk;
  }
  if (kind != static_cast<uint8_t>(OpKind::kBatch)) return DecodeResult::kMalformed;
  if (count == 0 || count > kMaxBatchEntries || word != 0) return DecodeResult::kMalformed;
  size_t at = kOpHeaderBytes;
  for (uint16_t i = 0; i < count; ++i) {
    if (b.size() - at < 2) return DecodeResult::kMalformed;
    const uint8_t k = static_cast<uint8_t>(b[at]);
    const size_t n = static_cast<uint8_t>(b[at + 1]);
    if (k < 1 || k > 4 || n == 0 || n > kMaxKeyBytes) return DecodeResult::kMalformed;
    at += 2;
    DirEntry e;
    e.kind = static_cast<DirKind>(k);
    if (e.kind == DirKind::kHave) {
      if (b.size() - at < 16) return DecodeResult::kMalformed;
      e.stamp = Stamp{get_u64(b, at), get_u64(b, at + 8)};
      at += 16;
    }
    if (b.size() - at < n) return DecodeResult::kMalformed;
    e.key = view_of(b, at, n);
    at += n;
    op->entries.push_back(e);
  }
  if (at != b.size()) return DecodeResult::kMalformed;
  op->kind = OpKind::kBatch;
  op->write = 0;
  op->key = {};
  return DecodeResult::kOk;
}

std::vector<std::byte> encode_request(std::string_view key) {
  Out o(kRequestHeaderBytes + key.size());
  o.magic(kPeerMagic1);
  o.u8(1);
  o.u8(static_cast<uint8_t>(key.size()));
  o.zeros(3);
  o.text(key);
  return o.take();
}

DecodeResult decode_request(std::span<const std::byte> b, std::string_view* key) {
  if (!is_ours(b, kPeerMagic1)) return DecodeResult::kNotOurs;
  if (b.size() < kRequestHeaderBytes) return DecodeResult::kMalformed;
  if (static_cast<uint8_t>(b[2]) != kWireVersion || static_cast<uint8_t>(b[3]) != 1 ||
      !zero(b, 5, 8)) {
    return DecodeResult::kMalformed;
  }
  const size_t n = static_cast<uint8_t>(b[4]);
  if (n == 0 || n > kMaxKeyBytes || b.size() != kRequestHeaderBytes + n) {
    return DecodeResult::kMalformed;
  }
  *key = view_of(b, kRequestHeaderBytes, n);
  return DecodeResult::kOk;
}

std::vector<std::byte> encode_reply(const Reply& r) {
  const std::string_view value = r.status == ReplyStatus::kHit ? r.value : std::string_view{};
  Out o(kReplyHeaderBytes + r.key.size() + value.size());
  o.magic(kPeerMagic1);
  o.u8(2);
  o.u8(static_cast<uint8_t>(r.key.size()));
  o.u8(static_cast<uint8_t>(r.status));
  o.u16(static_cast<uint16_t>(value.size()));
  o.u64(r.stamp.view);
  o.u64(r.stamp.gseq);
  o.text(r.key);
  o.text(value);
  return o.take();
}

DecodeResult decode_reply(std::span<const std::byte> b, Reply* r) {
  if (!is_ours(b, kPeerMagic1)) return DecodeResult::kNotOurs;
  if (b.size() < kReplyHeaderBytes) return DecodeResult::kMalformed;
  if (static_cast<uint8_t>(b[2]) != kWireVersion || static_cast<uint8_t>(b[3]) != 2) {
    return DecodeResult::kMalformed;
  }
  const size_t n = static_cast<uint8_t>(b[4]);
  const uint8_t status = static_cast<uint8_t>(b[5]);
  const size_t v = get_u16(b, 6);
  if (n == 0 || n > kMaxKeyBytes || status < 1 || status > 5) return DecodeResult::kMalformed;
  const ReplyStatus s = static_cast<ReplyStatus>(status);
  if (s == ReplyStatus::kHit ? v > kMaxSharedValueBytes : v != 0) return DecodeResult::kMalformed;
  if (b.size() != kReplyHeaderBytes + n + v) return DecodeResult::kMalformed;
  r->status = s;
  r->stamp = Stamp{get_u64(b, 8), get_u64(b, 16)};
  r->key = view_of(b, kReplyHeaderBytes, n);
  r->value = view_of(b, kReplyHeaderBytes + n, v);
  return DecodeResult::kOk;
}

}  // namespace cohort::cache
