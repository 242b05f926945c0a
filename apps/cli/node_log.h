// What `cohort node` sends and what its `--log` file says, shared by the node that writes them
// and by tests/integration's checker driver that reads them (tests/integration/NOTES.md).
//
// A payload of `cohort node` (at least kPayloadHead bytes, the rest zeros):
//   [0, 8)   CLOCK_MONOTONIC time of the send (latency)
//   [8, 12)  the sender's node
//   [12, 16) the sender's send number in this incarnation, from 0, one per send() call
//   [16, 20) the sender's incarnation
// So (node, incarnation, seq) names a message uniquely within a run on one host.
//
// The application state is tests/sim's (sim_app.h): the count of delivered messages and the
// wrapping sum of message_hash(id) over them; the snapshot is those two words. Order does not
// enter it, so members that go from view v to v+1 have equal states exactly when they
// delivered the same set in v, and the checker reads a snapshot without translation.
//
// Log lines: `<t_ns> <kind> key=value ...`, t_ns from CLOCK_MONOTONIC (one clock for every
// process on a host, so the logs of a run merge into one timeline):
//   start    self=nN.I founder=0|1     a Group was created (t taken before create())
//   send     id=N.I.S mode=M size=B hash=H   before send(), flushed before it is called
//   sent     id=N.I.S result=ok|full|too_large|not_member
//   deliver  view=V gseq=G from=nN.I sseq=Q mode=M id=N.I.S hash=H
//   view     id=V members=nN.I,...     oldest first
//   restore  snap=HEX                  the bytes given to restore()
//   leave                              before leave() is called
//   left | removed | cut_off           the GroupEvent
//   peer_failed node=N                 the transport saw a peer's process end
//   stop     self=nN.I                 the Group was stopped (every line of it is above)
// H is FNV-1a over the payload bytes, 16 hex digits; M is fifo, total or safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace cohort::cli {

inline constexpr size_t kPayloadHead = 20;

// FNV-1a, 64 bits.
inline uint64_t fnv1a(std::span<const std::byte> bytes,
                      uint64_t h = 0xcbf29ce484222325ULL) noexcept {
  for (std::byte b : bytes) h = (h ^ static_cast<uint8_t>(b)) * 0x100000001b3ULL;
  return h;
}

// A message's 64-bit id: node (5 bits: slots <= 32), incarnation (32), send number (27 bits,
// 134M sends per incarnation; the checker refuses a log beyond that). Never 0: an incarnation
// is never 0.
inline constexpr uint32_t kSeqBits = 27;
inline constexpr uint64_t message_id(uint32_t node, uint32_t incarnation, uint32_t seq) noexcept {
  return (uint64_t{node} << 59) | (uint64_t{incarnation} << kSeqBits) |
         (seq & ((uint64_t{1} << kSeqBits) - 1));
}

// tests/sim/sim_app.h's message_hash (one splitmix64 step from id ^ a constant); the
// integration test asserts the two agree.
inline constexpr uint64_t message_hash(uint64_t id) noexcept {
  uint64_t x = (id ^ 0x5bd1e9955bd1e995ULL) + 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace cohort::cli
