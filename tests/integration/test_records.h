// The records the member processes of the transport tests write and check: record i of
// writer w is 16 bytes of (w, i) and then a pattern of both, so a reader can tell a lost,
// duplicated, reordered or damaged record from a good one.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "transport/transport.h"

namespace cohort::testing {

struct RecordPattern {
  // When nonzero, one record in big_every is up to big_max bytes (spread over many frames on
  // the datagram transports); the others are 16..255 bytes.
  uint32_t big_every = 0;
  uint32_t big_max = 0;

  uint32_t size(uint64_t i) const {
    if (big_every != 0 && i % big_every == 7) {
      return 16 + static_cast<uint32_t>((i * 104729) % (big_max - 16));
    }
    return 16 + static_cast<uint32_t>((i * 7919) % 240);
  }

  static uint8_t byte_at(transport::MemberId w, uint64_t i, uint32_t k) {
    return static_cast<uint8_t>(i * 31 + k * 7 + w);
  }

  void fill(std::byte* p, transport::MemberId w, uint64_t i) const {
    const uint64_t head[2] = {w, i};
    std::memcpy(p, head, sizeof head);
    const uint32_t n = size(i);
    for (uint32_t k = 16; k < n; ++k) p[k] = std::byte{byte_at(w, i, k)};
  }

  bool check(const transport::RecordView& r, transport::MemberId w, uint64_t i) const {
    if (r.type != transport::kRecordUser || r.payload.size() != size(i)) return false;
    uint64_t head[2];
    std::memcpy(head, r.payload.data(), sizeof head);
    if (head[0] != w || head[1] != i) return false;
    for (uint32_t k = 16; k < r.payload.size(); ++k) {
      if (r.payload[k] != std::byte{byte_at(w, i, k)}) return false;
    }
    return true;
  }
};

// A reader slower than the writer: spin for ns nanoseconds.
inline void busy_ns(uint64_t ns) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::nanoseconds(ns);
  while (std::chrono::steady_clock::now() < end) {
  }
}

}  // namespace cohort::testing
