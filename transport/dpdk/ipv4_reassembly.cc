// IPv4 fragment reassembly for the dpdk transport's control channel (ipv4_reassembly.h).
#include "transport/dpdk/ipv4_reassembly.h"

#include <cstring>

#include "runtime/assert.h"

namespace cohort::transport::dpdk {

uint32_t Ipv4Reassembly::in_progress() const noexcept {
  uint32_t n = 0;
  for (const Slot& s : slots_) n += s.used ? 1 : 0;
  return n;
}

// The slot of (src, id): the one in progress, else a free one, else an expired one, else the
// oldest. A match that has expired starts over: an IP id recurs after 65536 datagrams.
Ipv4Reassembly::Slot* Ipv4Reassembly::find_or_take(uint32_t src_ip_be, uint16_t id,
                                                   uint64_t now_ns) noexcept {
  Slot* free_slot = nullptr;
  Slot* oldest = nullptr;
  for (Slot& s : slots_) {
    if (!s.used) {
      if (free_slot == nullptr) free_slot = &s;
      continue;
    }
    const bool expired = now_ns - s.started_ns > kTimeoutNs;
    if (s.src_ip_be == src_ip_be && s.id == id && !expired) return &s;
    if (expired) {
      ++stats_.expired;
      drop(&s);
      if (free_slot == nullptr) free_slot = &s;
      continue;
    }
    if (oldest == nullptr || s.started_ns < oldest->started_ns) oldest = &s;
  }
  Slot* s = free_slot;
  if (s == nullptr) {
    COHORT_ASSERT(oldest != nullptr);  // kSlots > 0 and none free: all used
    ++stats_.evicted;
    s = oldest;
  }
  s->used = true;
  s->id = id;
  s->src_ip_be = src_ip_be;
  s->started_ns = now_ns;
  s->total = 0;
  s->max_end = 0;
  s->blocks = 0;
  std::memset(s->have, 0, sizeof s->have);
  return s;
}

Ipv4Reassembly::Outcome Ipv4Reassembly::add(uint32_t src_ip_be, uint16_t id, uint32_t offset,
                                            bool more, std::span<const std::byte> payload,
                                            uint64_t now_ns,
                                            std::span<const std::byte>* out) noexcept {
  ++stats_.fragments;
  const auto len = static_cast<uint32_t>(payload.size());
  // Offsets come in 8-byte units; every fragment but the last carries whole blocks.
  if (offset % 8 != 0 || len == 0 || (more && len % 8 != 0)) {
    ++stats_.malformed;
    return Outcome::kMalformed;
  }
  const uint64_t end = uint64_t{offset} + len;
  if (end > kMaxBytes) {
    // Its datagram can never fit: forget what came of it, so its slot is free again.
    ++stats_.too_large;
    for (Slot& s : slots_) {
      if (s.used && s.src_ip_be == src_ip_be && s.id == id) drop(&s);
    }
    return Outcome::kTooLarge;
  }
  Slot* s = find_or_take(src_ip_be, id, now_ns);
  const auto end32 = static_cast<uint32_t>(end);
  // The last fragment fixes the length; nothing may reach past it, and it comes once.
  if ((!more && s->total != 0 && s->total != end32) || (!more && s->max_end > end32) ||
      (s->total != 0 && end32 > s->total)) {
    ++stats_.malformed;
    drop(s);
    return Outcome::kMalformed;
  }
  if (!more) s->total = end32;
  if (end32 > s->max_end) s->max_end = end32;
  std::memcpy(s->bytes + offset, payload.data(), len);
  const uint32_t first = offset / 8;
  const uint32_t last = (end32 + 7) / 8;  // one past; a short last block counts whole
  for (uint32_t b = first; b < last; ++b) {
    const uint64_t bit = uint64_t{1} << (b % 64);
    if ((s->have[b / 64] & bit) == 0) {
      s->have[b / 64] |= bit;
      ++s->blocks;
    }
  }
  if (s->total == 0 || s->blocks != (s->total + 7) / 8) return Outcome::kPending;
  COHORT_ASSERT(s->max_end == s->total);
  ++stats_.completed;
  drop(s);  // its bytes stay as they are until a later add() takes the slot
  *out = {s->bytes, s->total};
  return Outcome::kComplete;
}

}  // namespace cohort::transport::dpdk
