// Ipv4Reassembly: puts IPv4 fragments of a UDP datagram back together, for the dpdk
// transport's control channel. A udp member's control datagram is up to 8 + 48 + 8192 bytes of
// UDP, over a 1500-byte MTU: the kernel sends it as up to six IPv4 fragments, and expects ours
// to come the same way. Data frames never fragment (mtu_payload keeps them in one frame).
//
// Bounded: kSlots datagrams in progress at once, each at most kMaxBytes (the UDP header and the
// largest control frame). A new datagram takes a free slot, else one older than kTimeoutNs,
// else the oldest (which is then lost, counted). Duplicated and overlapping fragments are
// counted once per 8-byte block (later bytes overwrite earlier ones); a datagram is complete
// when its last fragment (MF clear) has come and every block up to it is there.
//
// Pure: no DPDK, no clock, no allocation after construction (the slots are inside the object).
// One thread (the data core) calls everything.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "transport/transport.h"
#include "transport/wire/frame.h"

namespace cohort::transport::dpdk {

class Ipv4Reassembly {
 public:
  static constexpr uint32_t kSlots = 4;
  // UDP header + the largest control frame; a multiple of 8, as fragment offsets are.
  static constexpr uint32_t kMaxBytes =
      8 + static_cast<uint32_t>(wire::kFrameHeaderSize) + kMaxControlBytes;
  static_assert(kMaxBytes % 8 == 0);
  // The kernel waits 30 s (ipfrag_time); control messages are retried far sooner than that.
  static constexpr uint64_t kTimeoutNs = 500'000'000;

  enum class Outcome : uint8_t {
    kPending,    // kept; more fragments are due
    kComplete,   // *out is the whole IP payload (UDP header first), valid until the next add()
    kMalformed,  // a middle fragment not a multiple of 8, or lengths that disagree: dropped
    kTooLarge,   // it would end past kMaxBytes: dropped, and its datagram with it
  };

  struct Stats {
    uint64_t fragments = 0;  // every add()
    uint64_t completed = 0;
    uint64_t malformed = 0;
    uint64_t too_large = 0;
    uint64_t expired = 0;  // incomplete after kTimeoutNs, its slot taken by a new datagram
    uint64_t evicted = 0;  // incomplete, the oldest, when every slot was busy
  };

  // One fragment of the datagram (src_ip_be, id): `payload` (the IP payload of this fragment)
  // belongs at byte `offset` of the datagram; `more` is the MF flag.
  Outcome add(uint32_t src_ip_be, uint16_t id, uint32_t offset, bool more,
              std::span<const std::byte> payload, uint64_t now_ns,
              std::span<const std::byte>* out) noexcept;

  const Stats& stats() const noexcept { return stats_; }
  uint32_t in_progress() const noexcept;

 private:
  static constexpr uint32_t kBlocks = kMaxBytes / 8;
  static constexpr uint32_t kWords = (kBlocks + 63) / 64;

  struct Slot {
    bool used = false;
    uint16_t id = 0;
    uint32_t src_ip_be = 0;
    uint64_t started_ns = 0;
    uint32_t total = 0;    // datagram bytes, known once the last fragment came (0 before)
    uint32_t max_end = 0;  // the furthest byte any fragment reached
    uint32_t blocks = 0;   // 8-byte blocks present
    uint64_t have[kWords] = {};
    std::byte bytes[kMaxBytes];
  };

  Slot* find_or_take(uint32_t src_ip_be, uint16_t id, uint64_t now_ns) noexcept;
  void drop(Slot* s) noexcept { s->used = false; }

  Slot slots_[kSlots];
  Stats stats_;
};

}  // namespace cohort::transport::dpdk
