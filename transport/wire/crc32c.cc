// CRC32C by hand (see crc32c.h for why). Two paths with one contract:
//  - hardware: the SSE4.2 crc32 instruction, three independent streams per block;
//  - software: slicing-by-8 tables, for x86-64 CPUs older than Nehalem (2008) and for tests.
// The tables are computed at compile time, so nothing here runs at start-up or allocates.
#include "transport/wire/crc32c.h"

#include <nmmintrin.h>

#include <array>
#include <bit>
#include <cstring>

namespace cohort::wire {
namespace {

// The Castagnoli polynomial, bit-reflected (bit 0 is the coefficient of x^31).
constexpr uint32_t kPoly = 0x82F63B78;

// Unaligned little-endian load. The frame's bytes are little-endian whatever the host is, and
// memcpy (one mov on x86-64) is how to read them without alignment or aliasing trouble.
inline uint64_t load_le64(const unsigned char* p) noexcept {
  uint64_t v;
  std::memcpy(&v, p, sizeof(v));
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
  return v;
}

// --- Software path: slicing-by-8 -------------------------------------------------------------

// kSlice[0][b] is the register after feeding byte b into a zero register; kSlice[k][b] is the
// same followed by k zero bytes. Eight lookups then consume eight bytes at once: about 1 byte
// per cycle against about 0.25 for the one-table loop. 8 KiB of tables, in .rodata.
using SliceTables = std::array<std::array<uint32_t, 256>, 8>;

constexpr SliceTables make_slice_tables() {
  SliceTables t{};
  for (uint32_t b = 0; b < 256; ++b) {
    uint32_t r = b;
    for (int bit = 0; bit < 8; ++bit) r = (r >> 1) ^ ((0u - (r & 1u)) & kPoly);
    t[0][b] = r;
  }
  for (std::size_t k = 1; k < 8; ++k) {
    for (std::size_t b = 0; b < 256; ++b) {
      t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xffu];
    }
  }
  return t;
}

constexpr SliceTables kSlice = make_slice_tables();
static_assert(kSlice[0][1] == 0xF26B8303, "CRC32C byte table (RFC 3720 B.4 lists 0xF26B8303)");

// --- Hardware path: three streams joined by shifting through zeros ---------------------------

// The crc32 instruction has a latency of 3 cycles and a throughput of one per cycle, so a
// single chain of 8-byte steps runs at a third of the unit's speed. Splitting a block into
// three streams that run side by side fills the pipeline; the three partial CRCs are then
// joined by advancing the first over the length of the second ("shifting through zeros",
// a linear map we apply with four table lookups) and xoring. This is Mark Adler's method.
// Two block sizes: long for big buffers (fewer joins), short so a 1500-byte frame gains too.
constexpr std::size_t kLongBlock = 8192;  // bytes per stream
constexpr std::size_t kShortBlock = 256;  // bytes per stream

// A linear map on the 32-bit CRC register over GF(2): column i is the image of bit i.
using Gf2Matrix = std::array<uint32_t, 32>;

constexpr uint32_t gf2_times(const Gf2Matrix& m, uint32_t v) {
  uint32_t sum = 0;
  for (std::size_t i = 0; v != 0; ++i, v >>= 1) {
    if ((v & 1u) != 0) sum ^= m[i];
  }
  return sum;
}

// a after b.
constexpr Gf2Matrix gf2_compose(const Gf2Matrix& a, const Gf2Matrix& b) {
  Gf2Matrix c{};
  for (std::size_t i = 0; i < 32; ++i) c[i] = gf2_times(a, b[i]);
  return c;
}

// The map that advances a CRC register over `len` zero bytes.
constexpr Gf2Matrix zeros_operator(std::size_t len) {
  Gf2Matrix op{};  // one zero bit: shift right, and fold in the polynomial if bit 0 was set
  op[0] = kPoly;
  for (std::size_t i = 1; i < 32; ++i) op[i] = uint32_t{1} << (i - 1);
  for (int i = 0; i < 3; ++i) op = gf2_compose(op, op);  // one zero byte
  Gf2Matrix result{};                                    // identity
  for (std::size_t i = 0; i < 32; ++i) result[i] = uint32_t{1} << i;
  for (; len != 0; len >>= 1) {  // square and multiply
    if ((len & 1u) != 0) result = gf2_compose(op, result);
    op = gf2_compose(op, op);
  }
  return result;
}

// The zeros operator as four byte-indexed tables, so applying it costs four lookups.
using ShiftTable = std::array<std::array<uint32_t, 256>, 4>;

constexpr ShiftTable make_shift_table(std::size_t len) {
  const Gf2Matrix op = zeros_operator(len);
  ShiftTable t{};
  for (uint32_t b = 0; b < 256; ++b) {
    for (uint32_t k = 0; k < 4; ++k) t[k][b] = gf2_times(op, b << (8 * k));
  }
  return t;
}

constexpr ShiftTable kShiftLong = make_shift_table(kLongBlock);
constexpr ShiftTable kShiftShort = make_shift_table(kShortBlock);

inline uint32_t shift(const ShiftTable& t, uint32_t crc) noexcept {
  return t[0][crc & 0xffu] ^ t[1][(crc >> 8) & 0xffu] ^ t[2][(crc >> 16) & 0xffu] ^ t[3][crc >> 24];
}

// Consumes whole triples of kBlock-byte streams from p; returns the updated register.
// r0 and the result are raw registers (not inverted); the register is kept in 64 bits because
// that is the width _mm_crc32_u64 takes and returns, which saves a move per step.
template <std::size_t kBlock>
__attribute__((target("sse4.2"))) inline uint64_t crc_triples(uint64_t r0, const ShiftTable& t,
                                                              const unsigned char*& p,
                                                              std::size_t& len) noexcept {
  while (len >= 3 * kBlock) {
    uint64_t r1 = 0;
    uint64_t r2 = 0;
    const unsigned char* const end = p + kBlock;
    do {
      r0 = _mm_crc32_u64(r0, load_le64(p));
      r1 = _mm_crc32_u64(r1, load_le64(p + kBlock));
      r2 = _mm_crc32_u64(r2, load_le64(p + 2 * kBlock));
      p += 8;
    } while (p < end);
    // Linearity: crc(s, A||B) = zeros_|B|(crc(s, A)) ^ crc(0, B).
    r0 = shift(t, static_cast<uint32_t>(r0)) ^ r1;
    r0 = shift(t, static_cast<uint32_t>(r0)) ^ r2;
    p += 2 * kBlock;
    len -= 3 * kBlock;
  }
  return r0;
}

}  // namespace

uint32_t crc32c_sw(uint32_t crc, const void* data, std::size_t len) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
  uint32_t r = ~crc;
  for (; len >= 8; len -= 8, p += 8) {
    const uint64_t w = load_le64(p) ^ r;
    r = kSlice[7][w & 0xffu] ^ kSlice[6][(w >> 8) & 0xffu] ^ kSlice[5][(w >> 16) & 0xffu] ^
        kSlice[4][(w >> 24) & 0xffu] ^ kSlice[3][(w >> 32) & 0xffu] ^ kSlice[2][(w >> 40) & 0xffu] ^
        kSlice[1][(w >> 48) & 0xffu] ^ kSlice[0][w >> 56];
  }
  for (; len != 0; --len, ++p) r = (r >> 8) ^ kSlice[0][(r ^ *p) & 0xffu];
  return ~r;
}

__attribute__((target("sse4.2"))) uint32_t crc32c_hw(uint32_t crc, const void* data,
                                                     std::size_t len) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t r = ~crc;
  // Byte steps up to an 8-byte boundary, so no 8-byte load below splits a cache line.
  for (; len != 0 && (reinterpret_cast<uintptr_t>(p) & 7u) != 0; --len, ++p) {
    r = _mm_crc32_u8(static_cast<uint32_t>(r), *p);
  }
  r = crc_triples<kLongBlock>(r, kShiftLong, p, len);
  r = crc_triples<kShortBlock>(r, kShiftShort, p, len);
  for (; len >= 8; len -= 8, p += 8) r = _mm_crc32_u64(r, load_le64(p));
  for (; len != 0; --len, ++p) r = _mm_crc32_u8(static_cast<uint32_t>(r), *p);
  return ~static_cast<uint32_t>(r);
}

bool crc32c_hw_available() noexcept {
  // Decided once: a function-local static is initialized under the guard that C++ makes
  // thread-safe, and later calls read the guard with an acquire load that pairs with the
  // release at the end of the initialization. __builtin_cpu_init() makes the answer valid
  // even when this first runs from another static initializer.
  static const bool available = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") != 0;
  }();
  return available;
}

uint32_t crc32c_extend(uint32_t crc, const void* data, std::size_t len) noexcept {
  return crc32c_hw_available() ? crc32c_hw(crc, data, len) : crc32c_sw(crc, data, len);
}

}  // namespace cohort::wire
