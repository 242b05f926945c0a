// The simulated application of every member, and the messages it sends.
//
// State = (count of delivered messages, wrapping sum of a 64-bit hash of each delivered
// message id). It does not depend on delivery order, so every member that goes from view v to
// v+1 has the same state at the boundary exactly when they delivered the same set in v (and
// started alike): the property virtual synchrony promises and state transfer relies on.
//
// A payload is the message's 8-byte id (little endian) followed by 8..64 bytes of padding; the
// checker verifies the hash of the whole payload, so a delivery that hands over wrong bytes
// is caught.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "transport/sim/rng.h"

namespace cohort::sim {

struct AppState {
  uint64_t count = 0;
  uint64_t sum = 0;
  friend bool operator==(const AppState&, const AppState&) = default;
};

inline constexpr size_t kSnapshotBytes = 16;
inline constexpr size_t kIdBytes = 8;

inline uint64_t message_hash(uint64_t id) noexcept {
  return transport::sim::mix64(id ^ 0x5bd1e9955bd1e995ULL);
}

inline void app_apply(AppState* state, uint64_t id) noexcept {
  state->count++;
  state->sum += message_hash(id);
}

inline std::array<std::byte, kSnapshotBytes> app_snapshot(const AppState& state) noexcept {
  std::array<std::byte, kSnapshotBytes> out{};
  std::memcpy(out.data(), &state.count, 8);
  std::memcpy(out.data() + 8, &state.sum, 8);
  return out;
}

// False when `bytes` is not a snapshot.
inline bool app_decode(std::span<const std::byte> bytes, AppState* state) noexcept {
  if (bytes.size() != kSnapshotBytes) return false;
  std::memcpy(&state->count, bytes.data(), 8);
  std::memcpy(&state->sum, bytes.data() + 8, 8);
  return true;
}

// FNV-1a over the bytes.
inline uint64_t bytes_hash(std::span<const std::byte> bytes, uint64_t h = 0xcbf29ce484222325ULL) {
  for (std::byte b : bytes) {
    h ^= static_cast<uint8_t>(b);
    h *= 0x100000001b3ULL;
  }
  return h;
}

inline std::vector<std::byte> make_payload(uint64_t id, transport::sim::Rng& rng) {
  std::vector<std::byte> p(kIdBytes + rng.between(8, 64));
  std::memcpy(p.data(), &id, kIdBytes);
  for (size_t i = kIdBytes; i < p.size(); ++i) p[i] = static_cast<std::byte>(rng.next());
  return p;
}

// The id of a payload, or 0 (never a valid id) when it is too short to carry one.
inline uint64_t payload_id(std::span<const std::byte> payload) noexcept {
  if (payload.size() < kIdBytes) return 0;
  uint64_t id;
  std::memcpy(&id, payload.data(), kIdBytes);
  return id;
}

}  // namespace cohort::sim
