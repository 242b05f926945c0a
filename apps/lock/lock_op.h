// The lock service's operations as they travel in group messages (apps/lock/NOTES.md, "Ops").
//
//   offset  size  field
//   0       2     magic 0xC0 0x4C
//   2       1     version (1)
//   3       1     kind: 1 acquire, 2 release, 3 withdraw
//   4       1     flags: acquire: bit 0 shared, bit 1 try; 0 for the others
//   5       1     name length n, 1..kMaxLockNameBytes
//   6       2     zero
//   8       8     request id (the sender's number for the request; never 0), little endian
//   16      n     the lock's name
//
// The sender of an op is the message's sender: a member can only act on its own requests.
// decode_op() checks every field and the exact length; anything else is not an op.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "cohort/lock.h"

namespace cohort::lock {

inline constexpr std::byte kOpMagic0{0xC0};
inline constexpr std::byte kOpMagic1{0x4C};
inline constexpr uint8_t kOpVersion = 1;
inline constexpr size_t kOpHeaderBytes = 16;
inline constexpr size_t kMaxOpBytes = kOpHeaderBytes + kMaxLockNameBytes;

enum class OpKind : uint8_t {
  kAcquire = 1,
  kRelease = 2,   // give up a grant (or, if still waiting, the request)
  kWithdraw = 3,  // a timed-out request: remove it, waiting or granted
};
const char* op_kind_name(OpKind kind) noexcept;

inline constexpr uint8_t kFlagShared = 1;
inline constexpr uint8_t kFlagTry = 2;

struct Op {
  OpKind kind = OpKind::kAcquire;
  LockMode mode = LockMode::kExclusive;  // acquire
  bool try_only = false;                 // acquire
  uint64_t request = 0;
  std::string_view name;  // points into the decoded bytes (or the caller's string)
};

struct EncodedOp {
  std::array<std::byte, kMaxOpBytes> bytes{};
  size_t size = 0;
  std::span<const std::byte> span() const noexcept { return {bytes.data(), size}; }
};

// False when the name is empty or too long, or the request id is 0.
bool valid_name(std::string_view name) noexcept;
bool encode_op(const Op& op, EncodedOp* out) noexcept;

enum class DecodeResult : uint8_t {
  kOk,
  kNotOp,      // does not start with the magic: some other application message
  kMalformed,  // starts like an op but breaks a rule: counted and ignored
};
// On kOk, `op->name` points into `bytes`.
DecodeResult decode_op(std::span<const std::byte> bytes, Op* op) noexcept;

}  // namespace cohort::lock
