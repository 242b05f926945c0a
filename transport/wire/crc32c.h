// CRC32C (Castagnoli): the checksum of every frame that cohort's lossy transports (kernel UDP
// and DPDK) put on the wire. Reflected polynomial 0x82F63B78, initial value ~0, final xor ~0,
// as in iSCSI (RFC 3720), ext4 and SCTP; the check value of "123456789" is 0xE3069283.
//
// Written by hand: no Debian package offers CRC32C to C++ (only a Python module), and the
// SSE4.2 instruction makes the fast path a few lines.
//
// Every function here is pure, thread-safe and allocation-free; call it from any thread.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cohort::wire {

// CRC32C("123456789"), the standard check value.
inline constexpr uint32_t kCrc32cCheck = 0xE3069283;

// True when this CPU has SSE4.2, so crc32c_hw() may be called. Decided once per process.
bool crc32c_hw_available() noexcept;

// The incremental form: `crc` is a finished CRC32C of the bytes before `data` (0 for none),
// and the result is the finished CRC32C of those bytes followed by these `len` bytes. So
// crc32c_extend(crc32c(a), b) == crc32c(a || b). Chooses the hardware path when the CPU has it.
uint32_t crc32c_extend(uint32_t crc, const void* data, std::size_t len) noexcept;

// One-shot CRC32C of `len` bytes; `data` may be null when `len` is 0.
inline uint32_t crc32c(const void* data, std::size_t len) noexcept {
  return crc32c_extend(0, data, len);
}

// The two implementations behind crc32c_extend(), with its contract, exposed so tests can
// check one against the other. crc32c_hw() executes SSE4.2 instructions: call it only when
// crc32c_hw_available() (otherwise the CPU raises SIGILL).
uint32_t crc32c_hw(uint32_t crc, const void* data, std::size_t len) noexcept;
uint32_t crc32c_sw(uint32_t crc, const void* data, std::size_t len) noexcept;

}  // namespace cohort::wire
