// What the services that put an application's core on a cohort::Group (apps/lock's LockService,
// apps/cache's CacheService) share: knowing that a thread runs one of the service's group
// callbacks, and the framing of the service's snapshot around the application's own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace cohort::apps {

// Marks, for its lifetime, that this thread runs a group callback of `service`: a blocking call
// of that service from there would wait for a delivery that only this thread can make. One mark
// per service type, restored on exit, so a callback nested in another keeps the outer one.
template <typename Service>
class InCallback {
 public:
  explicit InCallback(const Service* service) : saved_(current_) { current_ = service; }
  ~InCallback() { current_ = saved_; }
  InCallback(const InCallback&) = delete;
  InCallback& operator=(const InCallback&) = delete;

  // This thread is inside a group callback of `service`.
  static bool running(const Service* service) { return current_ == service; }

 private:
  static inline thread_local const Service* current_ = nullptr;
  const Service* saved_;
};

// A service's snapshot: `[u32 little-endian length of own][own][app]`, where `own` is the
// service's replicated state and `app` the snapshot of the application's listener.
inline std::vector<std::byte> frame_snapshot(std::span<const std::byte> own,
                                             std::span<const std::byte> app) {
  std::vector<std::byte> out(4 + own.size() + app.size());
  const auto len = static_cast<uint32_t>(own.size());
  for (size_t i = 0; i < 4; ++i) out[i] = static_cast<std::byte>(len >> (8 * i));
  if (!own.empty()) std::memcpy(out.data() + 4, own.data(), own.size());
  if (!app.empty()) std::memcpy(out.data() + 4 + own.size(), app.data(), app.size());
  return out;
}

struct SnapshotParts {
  std::span<const std::byte> own;
  std::span<const std::byte> app;
};

// The parts of a frame_snapshot(); both empty when `state` is too short for its length field or
// for the length it gives (the service's restore then refuses its part, and counts it).
inline SnapshotParts split_snapshot(std::span<const std::byte> state) {
  if (state.size() < 4) return {};
  uint32_t len = 0;
  for (size_t i = 0; i < 4; ++i) len |= uint32_t{static_cast<uint8_t>(state[i])} << (8 * i);
  if (state.size() - 4 < len) return {};
  return {state.subspan(4, len), state.subspan(4 + len)};
}

}  // namespace cohort::apps
