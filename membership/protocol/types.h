// Names of the group protocol (PROTOCOL.md, "Names"): member ids with incarnations, views,
// delivery modes, and the protocol's configuration. Shared by the state machine, the engine
// that runs it and the simulator that tests it.
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "transport/transport.h"

namespace cohort::membership {

// The transport's address of a member process (a slot 0..kMaxMembers-1 of the group on its
// transport). One node hosts one incarnation at a time.
using NodeId = transport::MemberId;
using transport::kMaxMembers;

// Time as the driver gives it: nanoseconds on any monotonic clock. The protocol never reads a
// clock itself (DESIGN.md, principle 1).
using TimeNs = uint64_t;
using ViewId = uint64_t;

// A member's identity: its node and the incarnation of the process there. A member removed
// from a view never comes back with the same Uid; a process that rejoins takes a higher
// incarnation.
struct Uid {
  NodeId node = 0;
  uint32_t incarnation = 0;

  uint64_t key() const noexcept { return (uint64_t{node} << 32) | incarnation; }
  static Uid from_key(uint64_t k) noexcept {
    return Uid{static_cast<NodeId>(k >> 32), static_cast<uint32_t>(k)};
  }
  bool valid() const noexcept { return incarnation != 0; }
  friend bool operator==(Uid, Uid) = default;
};

enum class Mode : uint8_t {
  kFifo = 0,   // per sender, on receipt; not ordered against other senders
  kTotal = 1,  // one order for all, two one-way hops; non-uniform if the deliverer crashes
  kSafe = 2,   // total, and only once every member of the view holds it (uniform)
};
inline constexpr uint8_t kModeCount = 3;
const char* mode_name(Mode mode) noexcept;

// A view: its id and its members, oldest first (the order in which they joined). Rank 0 is
// the sequencer; the leader of a view change is the oldest member a deciding member does not
// suspect.
struct View {
  ViewId id = 0;
  uint32_t count = 0;
  std::array<Uid, kMaxMembers> members{};

  std::span<const Uid> list() const noexcept { return {members.data(), count}; }
  // kNoRank when `uid` is not a member.
  uint32_t rank_of(Uid uid) const noexcept {
    for (uint32_t r = 0; r < count; ++r) {
      if (members[r] == uid) return r;
    }
    return kNoRank;
  }
  bool contains(Uid uid) const noexcept { return rank_of(uid) != kNoRank; }
  static constexpr uint32_t kNoRank = ~0U;
};

bool operator==(const View& a, const View& b) noexcept;

// Planted bugs for the checker's self-test (tests/sim, "mutation"). Each switches one rule of
// PROTOCOL.md off; production code never sets them.
struct PlantedBugs {
  bool skip_flush = false;            // install the next view without a cut: deliver nothing more
  bool minority_view = false;         // install a view without a majority of the previous one
  bool deliver_before_order = false;  // deliver total messages on receipt of their DATA
  bool reorder_cut = false;           // the cut orders by (rank, sseq), ignoring the old ORDER
  bool any() const noexcept {
    return skip_flush || minority_view || deliver_before_order || reorder_cut;
  }
};

struct ProtocolConfig {
  TimeNs heartbeat_interval_ns = 10'000'000;  // 10 ms
  TimeNs suspect_timeout_ns = 100'000'000;    // 100 ms without hearing from a member
  TimeNs retry_interval_ns = 20'000'000;      // resend of unanswered view-change messages
  TimeNs join_retry_ns = 50'000'000;          // a joiner asks again
  uint32_t max_pending_sends = 4096;          // application sends held while wedged
  uint32_t max_payload_bytes = 4096;          // one message; larger is refused by send()
  // The largest record the member's log takes (the engine sets it from the transport): a DATA
  // batch closes before it would grow past it, and a message that cannot fit in a record of its
  // own is refused by send() (kTooLarge) rather than by the log.
  uint32_t max_record_bytes = 64U << 10;
  uint32_t max_outstanding_requests = 4096;  // point-to-point requests not yet answered
  PlantedBugs bugs{};
};

}  // namespace cohort::membership
