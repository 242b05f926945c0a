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
  // The rank of the incarnation on `node` (a view holds one at most), or kNoRank.
  uint32_t rank_of_node(NodeId node) const noexcept {
    for (uint32_t r = 0; r < count; ++r) {
      if (members[r].node == node) return r;
    }
    return kNoRank;
  }
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

// One-hop total order (NOTES.md, "Tickets"): a counter every member of a view can reach, kept in
// shared memory by the engine (shm: a word in the doorbell page of the file of the view's
// sequencer, that process's own) or by the simulator. Each sender takes its messages' gseqs from
// it, so a DATA record carries its order inline whoever sends it, and the sequencer orders
// nothing. One word holds a view's tag (its id's low 16 bits) and its next gseq, and moves only
// to a later view (serial-number order of the tags), so a late or removed member can neither
// reset a view that has moved on nor take a gseq of it.
class TicketCounter {
 public:
  virtual ~TicketCounter() = default;
  // Opens `view`'s count at gseq 1 in the counter of `sequencer` (members[0] of `view`), unless
  // it is at `view` or a later view already. Every member that installs `view` calls it before
  // it sends in `view`.
  virtual void open(Uid sequencer, ViewId view) noexcept = 0;
  // Takes `view`'s next gseq, if the counter is at `view` and that gseq is at most `limit`;
  // 0 when it is not (the send waits: for the view to open, for the group to catch up, or for
  // the next view), or when `sequencer`'s counter cannot be reached (another process holds its
  // slot now).
  virtual uint64_t take(Uid sequencer, ViewId view, uint64_t limit) noexcept = 0;
};

// The counter's word (TicketCounter): the view's tag in the high 16 bits, its next gseq in the
// low 48 (2.8e14 messages in one view); 0 is a counter never opened.
struct TicketWord {
  static constexpr uint64_t kGseqMask = (uint64_t{1} << 48) - 1;
  static uint16_t tag(ViewId view) noexcept { return static_cast<uint16_t>(view); }
  static uint64_t opened(ViewId view) noexcept { return (uint64_t{tag(view)} << 48) | 1; }
  // `word` may move to `view`: never opened, or at an earlier view.
  static bool may_open(uint64_t word, ViewId view) noexcept {
    if (word == 0) return true;
    const auto ahead = static_cast<uint16_t>(tag(view) - static_cast<uint16_t>(word >> 48));
    return ahead != 0 && ahead < 0x8000;
  }
  static bool at(uint64_t word, ViewId view) noexcept {
    return word != 0 && static_cast<uint16_t>(word >> 48) == tag(view);
  }
  static uint64_t gseq(uint64_t word) noexcept { return word & kGseqMask; }
  // The gseq a take at `view` within `limit` gets from `word` (the word then becomes word + 1),
  // or 0 when it gets none.
  static uint64_t next(uint64_t word, ViewId view, uint64_t limit) noexcept {
    return at(word, view) && gseq(word) <= limit ? gseq(word) : 0;
  }
};

// How many gseqs past the stable point a sender may take a ticket: a member that took one and
// died before its DATA went out leaves a hole that stops every delivery behind it until the
// view change fills it (NOTES.md), so senders stop this far ahead rather than grow every
// member's windows (the receivers take at most kMaxAhead = 2^20 past their `ordered`).
inline constexpr uint64_t kTicketWindow = 1U << 18;

struct ProtocolConfig {
  TimeNs heartbeat_interval_ns = 10'000'000;  // 10 ms
  TimeNs suspect_timeout_ns = 100'000'000;    // 100 ms without hearing from a member
  TimeNs retry_interval_ns = 20'000'000;      // resend of unanswered view-change messages
  TimeNs join_retry_ns = 50'000'000;          // a joiner asks again
  uint32_t max_pending_sends = 4096;  // application sends held while wedged (or, with tickets,
                                      // waiting for a ticket)
  uint32_t max_payload_bytes = 4096;  // one message; larger is refused by send()
  // The largest record the member's log takes (the engine sets it from the transport): a DATA
  // batch closes before it would grow past it, and a message that cannot fit in a record of its
  // own is refused by send() (kTooLarge) rather than by the log.
  uint32_t max_record_bytes = 64U << 10;
  uint32_t max_outstanding_requests = 4096;  // point-to-point requests not yet answered
  // Tickets (above): every member of the group must use the same counter or none; a DATA
  // message whose inline order does not fit the receiver's mode is counted malformed. nullptr:
  // the sequencer orders (two hops for every sender but the sequencer).
  TicketCounter* tickets = nullptr;
  PlantedBugs bugs{};
};

}  // namespace cohort::membership
