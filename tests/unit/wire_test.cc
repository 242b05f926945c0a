// The wire format of the lossy transports: CRC32C against published vectors and against itself
// (hardware vs software, incremental vs one-shot), frames round-tripped by the hundred thousand,
// and every rejection reason produced on purpose and counted.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "runtime/assert.h"
#include "transport/wire/crc32c.h"
#include "transport/wire/frame.h"

namespace cohort::wire {
namespace {

using Bytes = std::vector<std::byte>;

// Fixed seeds (kSeed + k per test): a failure replays exactly.
constexpr uint64_t kSeed = 0x636f686f72740001;

// Eight bytes per draw: the round-trip and garbage tests fill about a gigabyte.
void fill_random(std::mt19937_64& rng, std::byte* p, std::size_t n) {
  for (; n >= 8; n -= 8, p += 8) {
    const uint64_t w = rng();
    std::memcpy(p, &w, 8);
  }
  if (n != 0) {
    const uint64_t w = rng();
    std::memcpy(p, &w, n);
  }
}

Bytes random_bytes(std::mt19937_64& rng, std::size_t n) {
  Bytes b(n);
  fill_random(rng, b.data(), n);
  return b;
}

Bytes ascii(const std::string& s) {
  Bytes b(s.size());
  std::memcpy(b.data(), s.data(), s.size());
  return b;
}

// --- CRC32C --------------------------------------------------------------------------------

TEST(Crc32c, StandardCheckValue) {
  const std::string check = "123456789";
  EXPECT_EQ(crc32c(check.data(), check.size()), kCrc32cCheck);
  EXPECT_EQ(crc32c_sw(0, check.data(), check.size()), 0xE3069283u);
  if (crc32c_hw_available()) {
    EXPECT_EQ(crc32c_hw(0, check.data(), check.size()), 0xE3069283u);
  }
}

// RFC 3720 (iSCSI), appendix B.4: 32-byte vectors.
TEST(Crc32c, Rfc3720Vectors) {
  uint8_t zeros[32] = {};
  uint8_t ones[32];
  uint8_t up[32];
  uint8_t down[32];
  for (int i = 0; i < 32; ++i) {
    ones[i] = 0xff;
    up[i] = static_cast<uint8_t>(i);
    down[i] = static_cast<uint8_t>(31 - i);
  }
  for (auto* fn : {&crc32c_sw, &crc32c_extend}) {
    EXPECT_EQ(fn(0, zeros, 32), 0x8A9136AAu);
    EXPECT_EQ(fn(0, ones, 32), 0x62A8AB43u);
    EXPECT_EQ(fn(0, up, 32), 0x46DD794Eu);
    EXPECT_EQ(fn(0, down, 32), 0x113FDB5Cu);
  }
}

TEST(Crc32c, EmptyInputIsZeroAndExtendsByNothing) {
  EXPECT_EQ(crc32c(nullptr, 0), 0u);
  EXPECT_EQ(crc32c_sw(0, nullptr, 0), 0u);
  EXPECT_EQ(crc32c_extend(0xdeadbeef, nullptr, 0), 0xdeadbeefu);
  EXPECT_EQ(crc32c_sw(0xdeadbeef, nullptr, 0), 0xdeadbeefu);
  if (crc32c_hw_available()) {
    EXPECT_EQ(crc32c_hw(0, nullptr, 0), 0u);
    EXPECT_EQ(crc32c_hw(0xdeadbeef, nullptr, 0), 0xdeadbeefu);
  }
}

TEST(Crc32c, HardwareMatchesSoftwareAtEveryLengthAndAlignment) {
  if (!crc32c_hw_available()) GTEST_SKIP() << "this CPU lacks SSE4.2; only the software path runs";
  SCOPED_TRACE("seed " + std::to_string(kSeed));
  std::mt19937_64 rng(kSeed);
  const Bytes buf = random_bytes(rng, 1024 + 64);
  for (std::size_t len = 0; len <= 1024; ++len) {
    // Every alignment modulo 8 (the hardware path steps bytes up to an 8-byte boundary), and
    // one random offset within a cache line.
    for (std::size_t offset : {0, 1, 2, 3, 4, 5, 6, 7, static_cast<int>(rng() % 64)}) {
      const std::byte* p = buf.data() + offset;
      ASSERT_EQ(crc32c_hw(0, p, len), crc32c_sw(0, p, len)) << "len " << len << " at " << offset;
      const auto seed_crc = static_cast<uint32_t>(rng());
      ASSERT_EQ(crc32c_hw(seed_crc, p, len), crc32c_sw(seed_crc, p, len)) << "len " << len;
    }
  }
}

// The hardware path joins three streams of 256 or 8192 bytes; lengths around 3 x 256 and
// 3 x 8192 cross from one path to the next.
TEST(Crc32c, HardwareMatchesSoftwareOnLongBuffers) {
  if (!crc32c_hw_available()) GTEST_SKIP() << "this CPU lacks SSE4.2; only the software path runs";
  std::mt19937_64 rng(kSeed + 1);
  const Bytes buf = random_bytes(rng, 200'000 + 8);
  for (std::size_t base : {std::size_t{768}, std::size_t{1536}, std::size_t{24576},
                           std::size_t{49152}, std::size_t{49152 + 768}}) {
    for (std::size_t len = base - 9; len <= base + 9; ++len) {
      for (std::size_t offset = 0; offset < 8; ++offset) {
        ASSERT_EQ(crc32c_hw(0, buf.data() + offset, len), crc32c_sw(0, buf.data() + offset, len))
            << "len " << len << " at " << offset;
      }
    }
  }
  EXPECT_EQ(crc32c_hw(0, buf.data(), 200'000), crc32c_sw(0, buf.data(), 200'000));
  EXPECT_EQ(crc32c_hw(0, buf.data() + 3, 200'003), crc32c_sw(0, buf.data() + 3, 200'003));
}

TEST(Crc32c, IncrementalEqualsOneShot) {
  std::mt19937_64 rng(kSeed + 2);
  const Bytes buf = random_bytes(rng, 2000);
  const uint32_t whole = crc32c(buf.data(), buf.size());
  EXPECT_EQ(whole, crc32c_sw(0, buf.data(), buf.size()));
  for (std::size_t cut = 0; cut <= buf.size(); ++cut) {
    const uint32_t head = crc32c(buf.data(), cut);
    ASSERT_EQ(crc32c_extend(head, buf.data() + cut, buf.size() - cut), whole) << "cut " << cut;
    ASSERT_EQ(crc32c_sw(crc32c_sw(0, buf.data(), cut), buf.data() + cut, buf.size() - cut), whole)
        << "cut " << cut;
    if (crc32c_hw_available()) {
      ASSERT_EQ(crc32c_hw(crc32c_hw(0, buf.data(), cut), buf.data() + cut, buf.size() - cut), whole)
          << "cut " << cut;
    }
  }
  // Many pieces of random sizes.
  for (int trial = 0; trial < 100; ++trial) {
    uint32_t crc = 0;
    std::size_t at = 0;
    while (at < buf.size()) {
      const std::size_t n = std::min<std::size_t>(rng() % 300, buf.size() - at);
      crc = crc32c_extend(crc, buf.data() + at, n);
      at += n;
    }
    ASSERT_EQ(crc, whole) << "trial " << trial;
  }
}

// --- Frames: encoding ----------------------------------------------------------------------

FrameFields sample_fields() {
  FrameFields f;
  f.type = FrameType::kData;
  f.flags = kFlagsUnfragmented;
  f.group_id = 0x0123456789abcdef;
  f.view_id = 42;
  f.sender = 7;
  f.position = 0x1000;
  return f;
}

// The bytes pinned: an independent bitwise CRC32C in Python and struct.pack("<IBBHQQIIQII")
// produced them. If this test fails, the wire format changed: bump kFrameVersion.
TEST(Frame, BytesOnTheWireArePinned) {
  const uint8_t golden[] = {0x43, 0x48, 0x52, 0x54, 0x01, 0x01, 0x03, 0x00, 0xef, 0xcd, 0xab,
                            0x89, 0x67, 0x45, 0x23, 0x01, 0x2a, 0x00, 0x00, 0x00, 0x00, 0x00,
                            0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x00, 0x00, 0x00,
                            0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xcf, 0x5a, 0xaa, 0x54,
                            0x00, 0x00, 0x00, 0x00, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x2c, 0x20,
                            0x63, 0x6f, 0x68, 0x6f, 0x72, 0x74};
  const Bytes payload = ascii("hello, cohort");
  Bytes out(sizeof(golden));
  ASSERT_EQ(encode_frame(sample_fields(), payload, out), sizeof(golden));
  EXPECT_EQ(std::memcmp(out.data(), golden, sizeof(golden)), 0);
  // The magic reads "CHRT" in a packet dump.
  EXPECT_EQ(std::memcmp(out.data(), "CHRT", 4), 0);

  FrameView view;
  ASSERT_EQ(decode_frame(std::as_bytes(std::span(golden)), 0x0123456789abcdef, &view),
            DecodeStatus::kOk);
  EXPECT_EQ(view.fields, sample_fields());
  EXPECT_EQ(view.frame_size, sizeof(golden));
  ASSERT_EQ(view.payload.size(), payload.size());
  EXPECT_EQ(std::memcmp(view.payload.data(), payload.data(), payload.size()), 0);
}

TEST(Frame, EncodeRefusesAnOutputTooSmallAndWritesNothing) {
  const Bytes payload = ascii("0123456789");
  const std::size_t need = frame_size(payload.size());
  for (std::size_t size :
       {std::size_t{0}, std::size_t{1}, kFrameHeaderSize - 1, kFrameHeaderSize, need - 1}) {
    Bytes out(size, std::byte{0xee});
    EXPECT_EQ(encode_frame(sample_fields(), payload, out), 0u) << "out of " << size;
    EXPECT_TRUE(
        std::all_of(out.begin(), out.end(), [](std::byte b) { return b == std::byte{0xee}; }))
        << "out of " << size;
  }
  Bytes out(need);
  EXPECT_EQ(encode_frame(sample_fields(), payload, out), need);
  // An empty payload makes a bare header.
  Bytes bare(kFrameHeaderSize);
  EXPECT_EQ(encode_frame(sample_fields(), {}, bare), kFrameHeaderSize);
}

// A payload that already lies where the frame wants it (or overlaps it) encodes correctly.
TEST(Frame, EncodeAcceptsAPayloadInsideTheOutput) {
  std::mt19937_64 rng(kSeed + 3);
  const Bytes payload = random_bytes(rng, 300);
  Bytes expect(frame_size(payload.size()));
  ASSERT_EQ(encode_frame(sample_fields(), payload, expect), expect.size());
  for (std::size_t at : {std::size_t{0}, std::size_t{10}, kFrameHeaderSize, std::size_t{60}}) {
    Bytes buf(at + payload.size() + kFrameHeaderSize);
    std::memcpy(buf.data() + at, payload.data(), payload.size());
    const std::span<const std::byte> in(buf.data() + at, payload.size());
    ASSERT_EQ(encode_frame(sample_fields(), in, buf), expect.size()) << "payload at " << at;
    EXPECT_EQ(std::memcmp(buf.data(), expect.data(), expect.size()), 0) << "payload at " << at;
  }
}

TEST(Frame, SealWritesTheSameBytesAsEncode) {
  const Bytes payload = ascii("in place");
  Bytes encoded(frame_size(payload.size()));
  ASSERT_EQ(encode_frame(sample_fields(), payload, encoded), encoded.size());
  Bytes sealed(frame_size(payload.size()), std::byte{0x5a});  // garbage in the header gap
  std::memcpy(sealed.data() + kFrameHeaderSize, payload.data(), payload.size());
  seal_frame(sealed, sample_fields());
  EXPECT_EQ(sealed, encoded);
}

FrameFields random_fields(std::mt19937_64& rng) {
  FrameFields f;
  f.type = static_cast<FrameType>(1 + rng() % 5);
  f.flags = static_cast<uint16_t>(rng() % 4);
  f.group_id = rng();
  f.view_id = rng();
  f.sender = static_cast<uint32_t>(rng());
  f.position = rng();
  return f;
}

// The property: whatever the sender chooses, the receiver reads back, by either encoder, with
// trailing bytes after the frame ignored.
TEST(Frame, RoundTripsRandomFrames) {
  constexpr int kFrames = 100'000;
  constexpr std::size_t kMaxPayload = 9000;  // a jumbo frame's worth
  SCOPED_TRACE("seed " + std::to_string(kSeed + 4));
  std::mt19937_64 rng(kSeed + 4);
  Bytes payload(kMaxPayload);
  Bytes encoded(frame_size(kMaxPayload) + 16);
  Bytes sealed(frame_size(kMaxPayload));
  for (int i = 0; i < kFrames; ++i) {
    const FrameFields fields = random_fields(rng);
    const std::size_t len = rng() % (kMaxPayload + 1);
    fill_random(rng, payload.data(), len);
    const std::span<const std::byte> in(payload.data(), len);
    const std::size_t trailing = rng() % 17;
    fill_random(rng, encoded.data() + frame_size(len), trailing);

    ASSERT_EQ(encode_frame(fields, in, encoded), frame_size(len)) << "frame " << i;
    std::memcpy(sealed.data() + kFrameHeaderSize, payload.data(), len);
    seal_frame(std::span(sealed).first(frame_size(len)), fields);
    ASSERT_EQ(std::memcmp(sealed.data(), encoded.data(), frame_size(len)), 0) << "frame " << i;

    FrameView view;
    const auto wire = std::span<const std::byte>(encoded).first(frame_size(len) + trailing);
    ASSERT_EQ(decode_frame(wire, fields.group_id, &view), DecodeStatus::kOk) << "frame " << i;
    ASSERT_EQ(view.fields, fields) << "frame " << i;
    ASSERT_EQ(view.frame_size, frame_size(len)) << "frame " << i;
    ASSERT_EQ(view.payload.data(), encoded.data() + kFrameHeaderSize) << "zero copy, frame " << i;
    ASSERT_EQ(view.payload.size(), len) << "frame " << i;
    ASSERT_EQ(std::memcmp(view.payload.data(), payload.data(), len), 0) << "frame " << i;
  }
}

TEST(Frame, WalksSeveralFramesInOneBuffer) {
  std::mt19937_64 rng(kSeed + 5);
  Bytes buf(4096);
  std::vector<FrameFields> sent;
  std::vector<Bytes> payloads;
  std::size_t at = 0;
  for (int i = 0; i < 10; ++i) {
    FrameFields f = random_fields(rng);
    f.group_id = 9;
    payloads.push_back(random_bytes(rng, rng() % 200));
    const std::size_t n = encode_frame(f, payloads.back(), std::span(buf).subspan(at));
    ASSERT_GT(n, 0u);
    sent.push_back(f);
    at += n;
  }
  std::span<const std::byte> rest = std::span<const std::byte>(buf).first(at);
  for (std::size_t i = 0; i < sent.size(); ++i) {
    FrameView view;
    ASSERT_EQ(decode_frame(rest, 9, &view), DecodeStatus::kOk) << "frame " << i;
    EXPECT_EQ(view.fields, sent[i]);
    ASSERT_EQ(view.payload.size(), payloads[i].size());
    EXPECT_TRUE(std::equal(view.payload.begin(), view.payload.end(), payloads[i].begin()));
    rest = rest.subspan(view.frame_size);
  }
  EXPECT_TRUE(rest.empty());
}

// --- Frames: every rejection, on purpose -------------------------------------------------

constexpr uint64_t kGroup = 0x0123456789abcdef;

Bytes valid_frame(std::size_t payload_bytes) {
  std::mt19937_64 rng(kSeed + 6);
  const Bytes payload = random_bytes(rng, payload_bytes);
  Bytes f(frame_size(payload_bytes));
  COHORT_ASSERT(encode_frame(sample_fields(), payload, f) == f.size());
  return f;
}

// Recomputes the CRC of a hand-edited frame, so the edit under test is its only defect.
void reseal_crc(Bytes& f) {
  uint32_t length;
  std::memcpy(&length, f.data() + kOffLength, 4);
  const std::size_t covered = std::min<std::size_t>(f.size(), frame_size(length));
  std::memset(f.data() + kOffCrc, 0, 4);
  const uint32_t crc = crc32c(f.data(), covered);
  std::memcpy(f.data() + kOffCrc, &crc, 4);
}

template <typename T>
void poke(Bytes& f, std::size_t offset, T value) {
  std::memcpy(f.data() + offset, &value, sizeof(value));  // x86-64: little-endian, as the wire
}

DecodeStatus decode(const Bytes& f, uint64_t group = kGroup) {
  FrameView view;
  return decode_frame(f, group, &view);
}

TEST(FrameRejects, TruncatedAtEveryLengthBelowAHeader) {
  const Bytes f = valid_frame(16);
  DecodeCounters counters;
  for (std::size_t n = 0; n < kFrameHeaderSize; ++n) {
    FrameView view;
    const DecodeStatus s = decode_frame(std::span(f).first(n), kGroup, &view);
    EXPECT_EQ(s, DecodeStatus::kTruncated) << n << " bytes";
    counters.count(s);
  }
  EXPECT_EQ(counters.of(DecodeStatus::kTruncated), kFrameHeaderSize);
  EXPECT_EQ(counters.dropped(), kFrameHeaderSize);
  EXPECT_EQ(counters.of(DecodeStatus::kOk), 0u);
}

// Each defect alone, in a frame whose CRC is otherwise right, is rejected for its own reason,
// and the counters add up by reason.
TEST(FrameRejects, EachDefectForItsOwnReasonAndCountsIt) {
  struct Case {
    const char* what;
    void (*edit)(Bytes&);
    DecodeStatus expect;
  };
  const Case cases[] = {
      {"magic CHRU", [](Bytes& f) { f[3] = std::byte{'U'}; }, DecodeStatus::kBadMagic},
      {"magic byte-swapped", [](Bytes& f) { poke<uint32_t>(f, kOffMagic, 0x43485254); },
       DecodeStatus::kBadMagic},
      {"version 2", [](Bytes& f) { poke<uint8_t>(f, kOffVersion, 2); }, DecodeStatus::kBadVersion},
      {"version 0", [](Bytes& f) { poke<uint8_t>(f, kOffVersion, 0); }, DecodeStatus::kBadVersion},
      {"type 0", [](Bytes& f) { poke<uint8_t>(f, kOffType, 0); }, DecodeStatus::kUnknownType},
      {"type 6", [](Bytes& f) { poke<uint8_t>(f, kOffType, 6); }, DecodeStatus::kUnknownType},
      {"type 255", [](Bytes& f) { poke<uint8_t>(f, kOffType, 255); }, DecodeStatus::kUnknownType},
      {"flag bit 2", [](Bytes& f) { poke<uint16_t>(f, kOffFlags, 4); }, DecodeStatus::kBadFlags},
      {"flag bit 15", [](Bytes& f) { poke<uint16_t>(f, kOffFlags, 0x8003); },
       DecodeStatus::kBadFlags},
      {"reserved 1", [](Bytes& f) { poke<uint32_t>(f, kOffReserved, 1); },
       DecodeStatus::kReservedNotZero},
      {"reserved top bit", [](Bytes& f) { poke<uint32_t>(f, kOffReserved, 0x80000000u); },
       DecodeStatus::kReservedNotZero},
      {"length one past the buffer", [](Bytes& f) { f.pop_back(); },
       DecodeStatus::kLengthPastBuffer},
      {"length 4 GiB - 1", [](Bytes& f) { poke<uint32_t>(f, kOffLength, 0xffffffffu); },
       DecodeStatus::kLengthPastBuffer},
      {"payload bit", [](Bytes& f) { f.back() ^= std::byte{0x10}; }, DecodeStatus::kBadCrc},
  };
  DecodeCounters counters;
  std::set<DecodeStatus> seen;
  for (const Case& c : cases) {
    Bytes f = valid_frame(16);
    ASSERT_EQ(decode(f), DecodeStatus::kOk);
    c.edit(f);
    if (c.expect != DecodeStatus::kBadCrc) reseal_crc(f);
    const DecodeStatus s = decode(f);
    EXPECT_EQ(s, c.expect) << c.what << ": got " << decode_status_name(s);
    counters.count(s);
    seen.insert(c.expect);
  }
  // An intact frame of another group.
  const DecodeStatus other = decode(valid_frame(16), kGroup + 1);
  EXPECT_EQ(other, DecodeStatus::kWrongGroup);
  counters.count(other);
  seen.insert(DecodeStatus::kWrongGroup);
  counters.count(decode(valid_frame(16)));
  counters.count(decode(Bytes(3)));
  seen.insert(DecodeStatus::kOk);
  seen.insert(DecodeStatus::kTruncated);
  EXPECT_EQ(seen.size(), kDecodeStatusCount) << "every status is produced by some case";

  EXPECT_EQ(counters.of(DecodeStatus::kOk), 1u);
  EXPECT_EQ(counters.of(DecodeStatus::kTruncated), 1u);
  EXPECT_EQ(counters.of(DecodeStatus::kBadMagic), 2u);
  EXPECT_EQ(counters.of(DecodeStatus::kBadVersion), 2u);
  EXPECT_EQ(counters.of(DecodeStatus::kUnknownType), 3u);
  EXPECT_EQ(counters.of(DecodeStatus::kBadFlags), 2u);
  EXPECT_EQ(counters.of(DecodeStatus::kReservedNotZero), 2u);
  EXPECT_EQ(counters.of(DecodeStatus::kLengthPastBuffer), 2u);
  EXPECT_EQ(counters.of(DecodeStatus::kBadCrc), 1u);
  EXPECT_EQ(counters.of(DecodeStatus::kWrongGroup), 1u);
  EXPECT_EQ(counters.dropped(), std::size(cases) + 2);
}

// The documented order: when several fields are wrong, the first check in the order wins.
TEST(FrameRejects, InTheDocumentedOrder) {
  Bytes f = valid_frame(8);
  const std::size_t full = f.size();
  f.push_back(std::byte{0});
  poke<uint32_t>(f, kOffLength, 1000);  // length past buffer
  poke<uint32_t>(f, kOffReserved, 1);   // reserved
  poke<uint16_t>(f, kOffFlags, 0x10);   // flags
  poke<uint8_t>(f, kOffType, 9);        // type
  poke<uint8_t>(f, kOffVersion, 3);     // version
  poke<uint32_t>(f, kOffMagic, 0);      // magic
  EXPECT_EQ(decode(f, kGroup + 1), DecodeStatus::kBadMagic);
  poke<uint32_t>(f, kOffMagic, kFrameMagic);
  EXPECT_EQ(decode(f, kGroup + 1), DecodeStatus::kBadVersion);
  poke<uint8_t>(f, kOffVersion, kFrameVersion);
  EXPECT_EQ(decode(f, kGroup + 1), DecodeStatus::kUnknownType);
  poke<uint8_t>(f, kOffType, 1);
  EXPECT_EQ(decode(f, kGroup + 1), DecodeStatus::kBadFlags);
  poke<uint16_t>(f, kOffFlags, 0);
  EXPECT_EQ(decode(f, kGroup + 1), DecodeStatus::kReservedNotZero);
  poke<uint32_t>(f, kOffReserved, 0);
  EXPECT_EQ(decode(f, kGroup + 1), DecodeStatus::kLengthPastBuffer);
  poke<uint32_t>(f, kOffLength, static_cast<uint32_t>(full - kFrameHeaderSize));
  EXPECT_EQ(decode(f, kGroup + 1), DecodeStatus::kBadCrc);  // flags changed since encoding
  poke<uint16_t>(f, kOffFlags, kFlagsUnfragmented);
  EXPECT_EQ(decode(f, kGroup + 1), DecodeStatus::kWrongGroup);
  EXPECT_EQ(decode(f, kGroup), DecodeStatus::kOk);
  // Truncation comes before everything.
  EXPECT_EQ(decode(Bytes(kFrameHeaderSize - 1)), DecodeStatus::kTruncated);
}

// Which statuses a flip of bit `bit` may produce: the check of its own field if that check
// comes before the CRC and the new value fails it, otherwise the CRC.
std::set<DecodeStatus> allowed_for_flip(std::size_t bit) {
  const std::size_t byte = bit / 8;
  if (byte < kOffVersion) return {DecodeStatus::kBadMagic};
  if (byte == kOffVersion) return {DecodeStatus::kBadVersion};
  if (byte == kOffType) return {DecodeStatus::kUnknownType, DecodeStatus::kBadCrc};
  if (byte >= kOffFlags && byte < kOffGroupId)
    return {DecodeStatus::kBadFlags, DecodeStatus::kBadCrc};
  if (byte >= kOffLength && byte < kOffPosition) {
    return {DecodeStatus::kLengthPastBuffer, DecodeStatus::kBadCrc};
  }
  if (byte >= kOffReserved && byte < kFrameHeaderSize) return {DecodeStatus::kReservedNotZero};
  return {DecodeStatus::kBadCrc};  // group, view, sender, position, the CRC itself, payload
}

TEST(FrameRejects, EveryFlippedBitOfASmallFrame) {
  const Bytes good = valid_frame(16);
  DecodeCounters counters;
  for (std::size_t bit = 0; bit < good.size() * 8; ++bit) {
    Bytes f = good;
    f[bit / 8] ^= std::byte{static_cast<uint8_t>(1u << (bit % 8))};
    const DecodeStatus s = decode(f);
    counters.count(s);
    EXPECT_TRUE(allowed_for_flip(bit).count(s) == 1)
        << "bit " << bit << ": " << decode_status_name(s);
  }
  EXPECT_EQ(counters.of(DecodeStatus::kOk), 0u);
  EXPECT_EQ(counters.dropped(), good.size() * 8);
  EXPECT_GE(counters.of(DecodeStatus::kBadCrc), (good.size() - 16) * 8);
}

// CRC32C has a Hamming distance of at least 6 at these lengths, so every two-bit error in the
// fields the CRC alone guards must be caught (73k pairs).
TEST(FrameRejects, EveryTwoBitFlipInCrcGuardedBytes) {
  const Bytes good = valid_frame(16);
  std::vector<std::size_t> bits;
  for (std::size_t bit = 0; bit < good.size() * 8; ++bit) {
    if (allowed_for_flip(bit) == std::set<DecodeStatus>{DecodeStatus::kBadCrc}) bits.push_back(bit);
  }
  ASSERT_EQ(bits.size(), (good.size() - 16) * 8);
  Bytes f = good;
  for (std::size_t i = 0; i < bits.size(); ++i) {
    for (std::size_t j = i + 1; j < bits.size(); ++j) {
      f[bits[i] / 8] ^= std::byte{static_cast<uint8_t>(1u << (bits[i] % 8))};
      f[bits[j] / 8] ^= std::byte{static_cast<uint8_t>(1u << (bits[j] % 8))};
      ASSERT_EQ(decode(f), DecodeStatus::kBadCrc) << "bits " << bits[i] << " and " << bits[j];
      f[bits[i] / 8] ^= std::byte{static_cast<uint8_t>(1u << (bits[i] % 8))};
      f[bits[j] / 8] ^= std::byte{static_cast<uint8_t>(1u << (bits[j] % 8))};
    }
  }
  EXPECT_EQ(f, good);
}

// Arbitrary bytes never crash the decoder and essentially never pass it: purely random bytes
// fail early, and random bytes behind a plausible header reach the CRC, which lets a random
// frame through with probability 2^-32 per try.
TEST(FrameRejects, RandomGarbage) {
  constexpr int kTries = 1'000'000;
  SCOPED_TRACE("seed " + std::to_string(kSeed + 7));
  std::mt19937_64 rng(kSeed + 7);
  Bytes buf(512);
  DecodeCounters pure;
  DecodeCounters plausible;
  for (int i = 0; i < kTries; ++i) {
    const std::size_t len = rng() % (buf.size() + 1);
    fill_random(rng, buf.data(), len);
    FrameView view;
    pure.count(decode_frame(std::span(buf).first(len), kGroup, &view));

    // Now make the structural fields pass, so the CRC is what decides.
    const std::size_t flen = kFrameHeaderSize + rng() % (buf.size() - kFrameHeaderSize + 1);
    fill_random(rng, buf.data(), flen);
    poke<uint32_t>(buf, kOffMagic, kFrameMagic);
    poke<uint8_t>(buf, kOffVersion, kFrameVersion);
    poke<uint8_t>(buf, kOffType, static_cast<uint8_t>(1 + rng() % 5));
    poke<uint16_t>(buf, kOffFlags, static_cast<uint16_t>(rng() % 4));
    poke<uint32_t>(buf, kOffReserved, 0);
    poke<uint64_t>(buf, kOffGroupId, kGroup);
    poke<uint32_t>(buf, kOffLength, static_cast<uint32_t>(rng() % (flen - kFrameHeaderSize + 1)));
    plausible.count(decode_frame(std::span(buf).first(flen), kGroup, &view));
  }
  uint64_t total = 0;
  for (uint64_t n : pure.by_status) total += n;
  EXPECT_EQ(total, static_cast<uint64_t>(kTries));
  EXPECT_EQ(pure.of(DecodeStatus::kOk), 0u);
  EXPECT_EQ(plausible.of(DecodeStatus::kBadCrc), plausible.dropped());
  // Expected 1M x 2^-32 = 0.0002 lucky frames; allow one.
  EXPECT_LE(plausible.of(DecodeStatus::kOk), 1u);
}

TEST(DecodeStatus, EveryStatusHasADistinctName) {
  std::set<std::string> names;
  for (std::size_t i = 0; i < kDecodeStatusCount; ++i) {
    const char* name = decode_status_name(static_cast<DecodeStatus>(i));
    ASSERT_NE(name, nullptr);
    EXPECT_STRNE(name, "unknown") << i;
    names.insert(name);
  }
  EXPECT_EQ(names.size(), kDecodeStatusCount);
  EXPECT_STREQ(decode_status_name(DecodeStatus::kBadCrc), "bad_crc");
  EXPECT_STREQ(decode_status_name(static_cast<DecodeStatus>(200)), "unknown");
}

}  // namespace
}  // namespace cohort::wire
