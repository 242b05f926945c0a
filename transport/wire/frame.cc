#include "transport/wire/frame.h"

#include <bit>
#include <cstring>
#include <limits>

#include "runtime/assert.h"
#include "transport/wire/crc32c.h"

namespace cohort::wire {
namespace {

// The layout of frame.h as a struct, only so the compiler proves that the offsets are the
// natural, padding-free ones and that they add up to 48 bytes. Never cast onto a buffer: the
// host's byte order and a buffer's alignment are not the wire's.
struct FrameHeaderLayout {
  uint32_t magic;
  uint8_t version;
  uint8_t type;
  uint16_t flags;
  uint64_t group_id;
  uint64_t view_id;
  uint32_t sender;
  uint32_t length;
  uint64_t position;
  uint32_t crc32c;
  uint32_t reserved;
};
static_assert(sizeof(FrameHeaderLayout) == kFrameHeaderSize);
static_assert(offsetof(FrameHeaderLayout, magic) == kOffMagic);
static_assert(offsetof(FrameHeaderLayout, version) == kOffVersion);
static_assert(offsetof(FrameHeaderLayout, type) == kOffType);
static_assert(offsetof(FrameHeaderLayout, flags) == kOffFlags);
static_assert(offsetof(FrameHeaderLayout, group_id) == kOffGroupId);
static_assert(offsetof(FrameHeaderLayout, view_id) == kOffViewId);
static_assert(offsetof(FrameHeaderLayout, sender) == kOffSender);
static_assert(offsetof(FrameHeaderLayout, length) == kOffLength);
static_assert(offsetof(FrameHeaderLayout, position) == kOffPosition);
static_assert(offsetof(FrameHeaderLayout, crc32c) == kOffCrc);
static_assert(offsetof(FrameHeaderLayout, reserved) == kOffReserved);
static_assert(kOffReserved + sizeof(uint32_t) == kFrameHeaderSize);
// The magic's bytes in memory order spell "CHRT".
static_assert((kFrameMagic & 0xffu) == 'C' && ((kFrameMagic >> 8) & 0xffu) == 'H' &&
              ((kFrameMagic >> 16) & 0xffu) == 'R' && (kFrameMagic >> 24) == 'T');
static_assert(kDecodeStatusCount == static_cast<std::size_t>(DecodeStatus::kWrongGroup) + 1);

// Explicit little-endian stores and loads: memcpy compiles to one unaligned mov on x86-64,
// and the swap vanishes on a little-endian host.
template <typename T>
constexpr T to_le(T v) noexcept {
  if constexpr (std::endian::native == std::endian::little || sizeof(T) == 1) {
    return v;
  } else if constexpr (sizeof(T) == 2) {
    return __builtin_bswap16(v);
  } else if constexpr (sizeof(T) == 4) {
    return __builtin_bswap32(v);
  } else {
    return __builtin_bswap64(v);
  }
}

template <typename T>
inline void store_le(std::byte* p, T v) noexcept {
  v = to_le(v);
  std::memcpy(p, &v, sizeof(v));
}

template <typename T>
inline T load_le(const std::byte* p) noexcept {
  T v;
  std::memcpy(&v, p, sizeof(v));
  return to_le(v);
}

constexpr bool is_known_type(uint8_t type) noexcept {
  return type >= static_cast<uint8_t>(FrameType::kData) &&
         type <= static_cast<uint8_t>(FrameType::kHeartbeat);
}

// A sender that builds a frame no receiver accepts has a bug; it must not reach the wire.
inline void assert_valid_fields(const FrameFields& fields) noexcept {
  COHORT_ASSERT_MSG(is_known_type(static_cast<uint8_t>(fields.type)), "frame: unknown type");
  COHORT_ASSERT_MSG((fields.flags & ~kKnownFlags) == 0, "frame: unknown flag bits");
}

// CRC32C of a header whose crc field is zero, then the payload.
inline uint32_t frame_crc(const std::byte* header, std::span<const std::byte> payload) noexcept {
  const uint32_t crc = crc32c(header, kFrameHeaderSize);
  return crc32c_extend(crc, payload.data(), payload.size());
}

}  // namespace

void seal_frame(std::span<std::byte> frame, const FrameFields& fields) noexcept {
  COHORT_ASSERT_MSG(frame.size() >= kFrameHeaderSize, "frame: no room for the header");
  COHORT_ASSERT_MSG(frame.size() - kFrameHeaderSize <= std::numeric_limits<uint32_t>::max(),
                    "frame: payload over 4 GiB");
  assert_valid_fields(fields);
  std::byte* const h = frame.data();
  store_le<uint32_t>(h + kOffMagic, kFrameMagic);
  store_le<uint8_t>(h + kOffVersion, kFrameVersion);
  store_le<uint8_t>(h + kOffType, static_cast<uint8_t>(fields.type));
  store_le<uint16_t>(h + kOffFlags, fields.flags);
  store_le<uint64_t>(h + kOffGroupId, fields.group_id);
  store_le<uint64_t>(h + kOffViewId, fields.view_id);
  store_le<uint32_t>(h + kOffSender, fields.sender);
  store_le<uint32_t>(h + kOffLength, static_cast<uint32_t>(frame.size() - kFrameHeaderSize));
  store_le<uint64_t>(h + kOffPosition, fields.position);
  store_le<uint32_t>(h + kOffCrc, 0);
  store_le<uint32_t>(h + kOffReserved, 0);
  store_le<uint32_t>(h + kOffCrc, frame_crc(h, frame.subspan(kFrameHeaderSize)));
}

std::size_t encode_frame(const FrameFields& fields, std::span<const std::byte> payload,
                         std::span<std::byte> out) noexcept {
  if (out.size() < kFrameHeaderSize || out.size() - kFrameHeaderSize < payload.size()) return 0;
  const std::size_t size = frame_size(payload.size());
  // memmove: a caller may pass a payload that already lies in `out`, even at its final place.
  // The guard keeps a null data() of an empty span away from memmove.
  if (!payload.empty()) std::memmove(out.data() + kFrameHeaderSize, payload.data(), payload.size());
  seal_frame(out.first(size), fields);
  return size;
}

DecodeStatus decode_frame(std::span<const std::byte> buf, uint64_t expected_group_id,
                          FrameView* out) noexcept {
  COHORT_ASSERT(out != nullptr);
  if (buf.size() < kFrameHeaderSize) return DecodeStatus::kTruncated;
  const std::byte* const h = buf.data();
  if (load_le<uint32_t>(h + kOffMagic) != kFrameMagic) return DecodeStatus::kBadMagic;
  if (load_le<uint8_t>(h + kOffVersion) != kFrameVersion) return DecodeStatus::kBadVersion;
  const auto type = load_le<uint8_t>(h + kOffType);
  if (!is_known_type(type)) return DecodeStatus::kUnknownType;
  const auto flags = load_le<uint16_t>(h + kOffFlags);
  if ((flags & ~kKnownFlags) != 0) return DecodeStatus::kBadFlags;
  if (load_le<uint32_t>(h + kOffReserved) != 0) return DecodeStatus::kReservedNotZero;
  const auto length = load_le<uint32_t>(h + kOffLength);
  if (length > buf.size() - kFrameHeaderSize) return DecodeStatus::kLengthPastBuffer;

  // The CRC covers the header with its own field zero: check a 48-byte copy, so the caller's
  // buffer (perhaps a NIC's receive ring) is never written.
  std::byte header[kFrameHeaderSize];
  std::memcpy(header, h, kFrameHeaderSize);
  store_le<uint32_t>(header + kOffCrc, 0);
  const std::span<const std::byte> payload = buf.subspan(kFrameHeaderSize, length);
  if (frame_crc(header, payload) != load_le<uint32_t>(h + kOffCrc)) return DecodeStatus::kBadCrc;

  const auto group_id = load_le<uint64_t>(h + kOffGroupId);
  if (group_id != expected_group_id) return DecodeStatus::kWrongGroup;

  out->fields.type = static_cast<FrameType>(type);
  out->fields.flags = flags;
  out->fields.group_id = group_id;
  out->fields.view_id = load_le<uint64_t>(h + kOffViewId);
  out->fields.sender = load_le<uint32_t>(h + kOffSender);
  out->fields.position = load_le<uint64_t>(h + kOffPosition);
  out->payload = payload;
  out->frame_size = frame_size(length);
  return DecodeStatus::kOk;
}

const char* decode_status_name(DecodeStatus status) noexcept {
  switch (status) {
    case DecodeStatus::kOk: return "ok";
    case DecodeStatus::kTruncated: return "truncated";
    case DecodeStatus::kBadMagic: return "bad_magic";
    case DecodeStatus::kBadVersion: return "bad_version";
    case DecodeStatus::kUnknownType: return "unknown_type";
    case DecodeStatus::kBadFlags: return "bad_flags";
    case DecodeStatus::kReservedNotZero: return "reserved_not_zero";
    case DecodeStatus::kLengthPastBuffer: return "length_past_buffer";
    case DecodeStatus::kBadCrc: return "bad_crc";
    case DecodeStatus::kWrongGroup: return "wrong_group";
  }
  return "unknown";  // a value outside the enum: only a bug or a corrupted variable
}

uint64_t DecodeCounters::dropped() const noexcept {
  uint64_t sum = 0;
  for (std::size_t i = 0; i < kDecodeStatusCount; ++i) {
    if (i != static_cast<std::size_t>(DecodeStatus::kOk)) sum += by_status[i];
  }
  return sum;
}

}  // namespace cohort::wire
