// The frame: the unit that cohort's lossy transports (kernel UDP and DPDK) put in a datagram.
// Both transports must put identical bytes on the wire, so this file is the one definition of
// those bytes, and it is versioned. Every field is little-endian.
//
//   offset size field     meaning
//        0    4 magic     0x54524843, the bytes "CHRT"
//        4    1 version   kFrameVersion (1)
//        5    1 type      FrameType
//        6    2 flags     kFlagFragment*; any other bit is rejected
//        8    8 group_id  the group the frame belongs to
//       16    8 view_id   the view the sender was in when it sent the frame
//       24    4 sender    the sender's member id
//       28    4 length    payload bytes after the header
//       32    8 position  DATA: the log position of the first payload byte; per type otherwise
//       40    4 crc32c    CRC32C of the 48 header bytes with this field zero, then the payload
//       44    4 reserved  must be 0, so a later version can give it a meaning
//       48      payload   `length` bytes
//
// A datagram normally holds exactly one frame; bytes after header + length are allowed and
// ignored by decode_frame(), and FrameView::frame_size lets a caller walk several frames.
//
// Decoding checks in this order, and reports the first failure:
//   truncated, magic, version, type, flags, reserved, length past buffer, CRC, group.
// The structural checks come first because they are cheap and say what kind of garbage it
// was; the CRC comes before the group so that kWrongGroup counts only intact frames of another
// group (a configuration problem to report), not corrupted frames of ours.
//
// Everything here is pure and allocation-free: call it from any thread, on the hot path.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace cohort::wire {

inline constexpr uint32_t kFrameMagic = 0x54524843;  // "CHRT" once stored little-endian
inline constexpr uint8_t kFrameVersion = 1;
inline constexpr std::size_t kFrameHeaderSize = 48;

enum class FrameType : uint8_t {
  kData = 1,       // a run of the sender's log
  kNack = 2,       // a receiver asks for a range of a log again
  kStatus = 3,     // a receiver reports how far it has read
  kControl = 4,    // membership traffic for the control core
  kHeartbeat = 5,  // liveness, for failure detection
};

// A record split over several DATA frames: the first has kFlagFragmentBegin, the last
// kFlagFragmentEnd, the ones between neither; an unfragmented record has both. The bits mean
// nothing on other types, which should send 0.
inline constexpr uint16_t kFlagFragmentBegin = 1;
inline constexpr uint16_t kFlagFragmentEnd = 2;
inline constexpr uint16_t kFlagsUnfragmented = kFlagFragmentBegin | kFlagFragmentEnd;
inline constexpr uint16_t kKnownFlags = kFlagFragmentBegin | kFlagFragmentEnd;

// Byte offsets of the fields above. Only these constants, with explicit little-endian loads
// and stores, touch a frame's bytes: never a struct cast onto a buffer.
inline constexpr std::size_t kOffMagic = 0;
inline constexpr std::size_t kOffVersion = 4;
inline constexpr std::size_t kOffType = 5;
inline constexpr std::size_t kOffFlags = 6;
inline constexpr std::size_t kOffGroupId = 8;
inline constexpr std::size_t kOffViewId = 16;
inline constexpr std::size_t kOffSender = 24;
inline constexpr std::size_t kOffLength = 28;
inline constexpr std::size_t kOffPosition = 32;
inline constexpr std::size_t kOffCrc = 40;
inline constexpr std::size_t kOffReserved = 44;

// The header's fields that a sender chooses; the version, length and CRC follow from the rest.
struct FrameFields {
  FrameType type = FrameType::kData;
  uint16_t flags = 0;
  uint64_t group_id = 0;
  uint64_t view_id = 0;
  uint32_t sender = 0;
  uint64_t position = 0;

  friend bool operator==(const FrameFields&, const FrameFields&) = default;
};

// A frame that decoded. Nothing is copied: `payload` points into the buffer that was given to
// decode_frame(), and is valid as long as that buffer is.
struct FrameView {
  FrameFields fields;
  std::span<const std::byte> payload;
  std::size_t frame_size = 0;  // kFrameHeaderSize + payload.size(): where a next frame starts
};

// Total bytes of a frame carrying `payload_bytes`.
constexpr std::size_t frame_size(std::size_t payload_bytes) noexcept {
  return kFrameHeaderSize + payload_bytes;
}

// Writes a header and a copy of `payload` into `out` and returns the frame's size, or 0 when
// `out` is too small (nothing is written then). `payload` may overlap `out`. Fields that no
// decoder accepts (an unknown type or flag) or a payload over 4 GiB are bugs: they assert.
std::size_t encode_frame(const FrameFields& fields, std::span<const std::byte> payload,
                         std::span<std::byte> out) noexcept;

// The zero-copy form: `frame` is a 48-byte gap followed by a payload the caller has already
// written in place (the whole of the rest of `frame`). Writes the header, CRC included.
// `frame` must be at least kFrameHeaderSize bytes (asserted), and the same fields rules hold.
void seal_frame(std::span<std::byte> frame, const FrameFields& fields) noexcept;

// Why decode_frame() accepted or rejected a buffer; each rejection is a counted drop.
enum class DecodeStatus : uint8_t {
  kOk,
  kTruncated,         // shorter than a header
  kBadMagic,          // not a cohort frame at all
  kBadVersion,        // a cohort frame of a version this build does not speak
  kUnknownType,       // type outside FrameType
  kBadFlags,          // a flag bit outside kKnownFlags
  kReservedNotZero,   // the reserved word is not 0
  kLengthPastBuffer,  // the header claims more payload than the buffer holds
  kBadCrc,            // corrupted in flight (or the checksum itself was)
  kWrongGroup,        // an intact frame of another group: a port or config mix-up
};
inline constexpr std::size_t kDecodeStatusCount = 10;

// "ok", "truncated", "bad_magic", ...: stable names for logs and stats.
const char* decode_status_name(DecodeStatus status) noexcept;

// Checks every field of the frame at the start of `buf`, in the order given at the top of this
// file, and on kOk fills *out (which is left alone otherwise). `out` must not be null.
DecodeStatus decode_frame(std::span<const std::byte> buf, uint64_t expected_group_id,
                          FrameView* out) noexcept;

// Decode outcomes by reason. Plain counters: one belongs to the core that decodes, and whoever
// publishes stats puts it inside that core's cache-line-aligned stats block.
struct DecodeCounters {
  std::array<uint64_t, kDecodeStatusCount> by_status{};

  void count(DecodeStatus status) noexcept { ++by_status[static_cast<std::size_t>(status)]; }
  uint64_t of(DecodeStatus status) const noexcept {
    return by_status[static_cast<std::size_t>(status)];
  }
  // Every outcome but kOk.
  uint64_t dropped() const noexcept;
};

}  // namespace cohort::wire
