// The lock operations' bytes (lock_op.h).
#include "apps/lock/lock_op.h"

#include <cstring>

namespace cohort {

const char* lock_status_name(LockStatus status) noexcept {
  switch (status) {
    case LockStatus::kGranted: return "granted";
    case LockStatus::kSent: return "sent";
    case LockStatus::kBusy: return "busy";
    case LockStatus::kTimedOut: return "timed_out";
    case LockStatus::kLost: return "lost";
    case LockStatus::kNotHeld: return "not_held";
    case LockStatus::kNotMember: return "not_member";
    case LockStatus::kFull: return "full";
    case LockStatus::kInvalid: return "invalid";
    case LockStatus::kRefused: return "refused";
  }
  return "?";
}

}  // namespace cohort

namespace cohort::lock {

const char* op_kind_name(OpKind kind) noexcept {
  switch (kind) {
    case OpKind::kAcquire: return "acquire";
    case OpKind::kRelease: return "release";
    case OpKind::kWithdraw: return "withdraw";
  }
  return "?";
}

bool valid_name(std::string_view name) noexcept {
  return !name.empty() && name.size() <= kMaxLockNameBytes;
}

bool encode_op(const Op& op, EncodedOp* out) noexcept {
  if (!valid_name(op.name) || op.request == 0) return false;
  if (op.kind != OpKind::kAcquire && op.kind != OpKind::kRelease && op.kind != OpKind::kWithdraw) {
    return false;
  }
  uint8_t flags = 0;
  if (op.kind == OpKind::kAcquire) {
    if (op.mode == LockMode::kShared) flags |= kFlagShared;
    if (op.try_only) flags |= kFlagTry;
  }
  std::byte* b = out->bytes.data();
  b[0] = kOpMagic0;
  b[1] = kOpMagic1;
  b[2] = std::byte{kOpVersion};
  b[3] = static_cast<std::byte>(op.kind);
  b[4] = std::byte{flags};
  b[5] = static_cast<std::byte>(op.name.size());
  b[6] = std::byte{0};
  b[7] = std::byte{0};
  for (int i = 0; i < 8; ++i) b[8 + i] = static_cast<std::byte>(op.request >> (8 * i));
  std::memcpy(b + kOpHeaderBytes, op.name.data(), op.name.size());
  out->size = kOpHeaderBytes + op.name.size();
  return true;
}

DecodeResult decode_op(std::span<const std::byte> bytes, Op* op) noexcept {
  if (bytes.size() < 2 || bytes[0] != kOpMagic0 || bytes[1] != kOpMagic1) {
    return DecodeResult::kNotOp;
  }
  if (bytes.size() < kOpHeaderBytes) return DecodeResult::kMalformed;
  if (static_cast<uint8_t>(bytes[2]) != kOpVersion) return DecodeResult::kMalformed;
  const uint8_t kind = static_cast<uint8_t>(bytes[3]);
  const uint8_t flags = static_cast<uint8_t>(bytes[4]);
  const size_t name_len = static_cast<uint8_t>(bytes[5]);
  if (kind < 1 || kind > 3) return DecodeResult::kMalformed;
  if (bytes[6] != std::byte{0} || bytes[7] != std::byte{0}) return DecodeResult::kMalformed;
  const OpKind k = static_cast<OpKind>(kind);
  if (k == OpKind::kAcquire ? (flags & ~(kFlagShared | kFlagTry)) != 0 : flags != 0) {
    return DecodeResult::kMalformed;
  }
  if (name_len == 0 || name_len > kMaxLockNameBytes) return DecodeResult::kMalformed;
  if (bytes.size() != kOpHeaderBytes + name_len) return DecodeResult::kMalformed;
  uint64_t request = 0;
  for (int i = 0; i < 8; ++i) request |= uint64_t{static_cast<uint8_t>(bytes[8 + i])} << (8 * i);
  if (request == 0) return DecodeResult::kMalformed;
  op->kind = k;
  op->mode = (flags & kFlagShared) != 0 ? LockMode::kShared : LockMode::kExclusive;
  op->try_only = (flags & kFlagTry) != 0;
  op->request = request;
  op->name =
      std::string_view(reinterpret_cast<const char*>(bytes.data() + kOpHeaderBytes), name_len);
  return DecodeResult::kOk;
}

}  // namespace cohort::lock
