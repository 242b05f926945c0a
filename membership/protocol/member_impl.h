// Member's state, shared by member.cc (normal operation: records, ordering, delivery) and
// member_flush.cc (the view change, joins, leaves and state transfer). See NOTES.md beside
// this file for the rules each piece relies on.
#pragma once

#include <array>
#include <deque>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "membership/protocol/codec.h"
#include "membership/protocol/member.h"
#include "membership/protocol/payload_arena.h"
#include "membership/protocol/request_table.h"
#include "membership/protocol/window.h"

namespace cohort::membership {

// One message of one sender in one view, as this member holds it.
struct Msg {
  bool held = false;
  bool delivered = false;
  bool relayed = false;   // this member has copied it into its own log (RELAY_DATA)
  bool released = false;  // its gseq is below the release frontier (release())
  Mode mode = Mode::kTotal;
  uint64_t gseq_inline = 0;
  std::span<const std::byte> payload;
};

// Per sender: the messages not yet released, sseqs msgs.first()+1 .. msgs.end(). Everything at
// or below msgs.first() was held, delivered and released (NOTES.md, "Releasing").
struct SenderState {
  Window<Msg> msgs;           // index sseq - 1
  uint32_t recv = 0;          // highest sseq held contiguously
  uint32_t delivered = 0;     // highest sseq delivered (delivery is a prefix per sender)
  uint32_t ordered_upto = 0;  // the sequencer: highest sseq of this sender it has ordered
};

struct OrderSlot {
  bool present = false;
  bool relayed = false;  // copied into this member's log (RELAY_ORDER)
  uint8_t rank = 0;
  uint32_t sseq = 0;
};

// Everything of one view: the messages, their order, what is delivered and acknowledged.
struct ViewData {
  View view{};
  uint32_t my_rank = View::kNoRank;
  std::array<SenderState, kMaxMembers> senders{};
  Window<OrderSlot> order;    // index gseq - 1; gseqs up to order.first() are released
  uint64_t ordered = 0;       // highest gseq whose ORDER entry is held contiguously
  uint64_t walk = 0;          // gseqs 1..walk are delivered (or were FIFO, delivered early)
  uint64_t bad_order_at = 0;  // the gseq whose ORDER entry broke its sender's sseq order
  uint64_t held = 0;          // highest gseq held contiguously with its DATA
  uint64_t ack_sent = 0;
  std::array<uint64_t, kMaxMembers> acked{};  // per rank: `held` as its ACK records say
  uint64_t next_gseq = 1;                     // the sequencer's next gseq (no tickets)
  uint32_t my_sseq = 0;
  PayloadArena own;  // the bytes of this member's messages in this view

  // The message, or nullptr when it was released or no record has named it yet.
  Msg* msg(uint32_t rank, uint32_t sseq) noexcept {
    return sseq >= 1 ? senders[rank].msgs.find(sseq - 1) : nullptr;
  }
  const Msg* msg(uint32_t rank, uint32_t sseq) const noexcept {
    return sseq >= 1 ? senders[rank].msgs.find(sseq - 1) : nullptr;
  }
  // Sseqs of `rank` up to here are released (held, delivered here, held by every member).
  uint32_t released(uint32_t rank) const noexcept {
    return static_cast<uint32_t>(senders[rank].msgs.first());
  }
};

// The leader's side of a view change.
struct LeaderFlush {
  enum class Phase : uint8_t { kCollect, kCut };
  bool active = false;
  Phase phase = Phase::kCollect;
  uint64_t attempt = 0;
  uint32_t participants = 0;  // ranks of the current view asked, and required, to answer
  uint32_t answered = 0;
  uint32_t have_cut = 0;
  TimeNs started_ns = 0;
  std::array<FlushState, kMaxMembers> states{};
  CutValue value{};
  uint8_t holders[kMaxMembers] = {};
  uint8_t order_holder = 0;
  TimeNs sent_ns = 0;
};

// The bytes of a kAppend or kSend action, in Impl::arena (which may move as it grows): the
// action's span is set from this when the driver asks for the actions.
struct ArenaRef {
  uint32_t index = 0;  // into Impl::pending
  uint32_t offset = 0;
  uint32_t length = 0;
};

struct Member::Impl {
  Impl(const ProtocolConfig& c, Uid s, uint32_t nodes) : config(c), self(s), node_count(nodes) {}

  // --- configuration and identity
  ProtocolConfig config;
  Uid self;
  uint32_t node_count;
  MemberState state = MemberState::kIdle;
  TimeNs now = 0;

  // --- views
  std::unique_ptr<ViewData> cur;                // the installed view
  std::unique_ptr<ViewData> prev;               // the one before, kept to serve late fetches
  std::optional<CutValue> last_install;         // how `cur` was installed, for catch-up INSTALLs
  std::array<uint32_t, kMaxMembers> retired{};  // per node: highest incarnation removed
  View empty_view{};

  // --- failure detection
  TimeNs last_heartbeat_ns = 0;
  std::array<TimeNs, kMaxMembers> last_heard{};  // per rank of cur
  std::array<uint32_t, kMaxMembers> reported{};  // per rank: suspects mask from heartbeats
  uint32_t reported_wedged = 0;                  // ranks whose heartbeat says wedged
  uint32_t unresponsive = 0;  // ranks that did not answer a view change in time (until install)
  bool cut_off = false;

  // --- the view change, member side
  uint64_t promised = 0;  // highest attempt answered in cur's view change
  uint64_t max_round = 0;
  std::optional<CutValue> accepted;
  uint64_t accepted_attempt = 0;
  NodeId cut_leader = 0;
  uint8_t holders[kMaxMembers] = {};
  uint8_t order_holder = 0;
  bool holders_known = false;
  uint64_t have_cut_attempt = 0;            // HAVE_CUT sent for this attempt already
  std::optional<CutValue> pending_install;  // INSTALL received; waiting to hold the cut
  NodeId install_hint = 0;
  TimeNs fetch_ns = 0;
  uint32_t fetch_round = 0;
  std::array<TimeNs, kMaxMembers> reply_ns{};  // per node: last catch-up/NOT_MEMBER reply

  // --- the view change, leader side
  LeaderFlush lf;
  std::vector<Uid> pending_joins;
  std::vector<Uid> pending_leaves;

  // --- joining, leaving, state transfer
  std::vector<NodeId> seeds;
  TimeNs join_sent_ns = 0;
  bool leaving = false;
  TimeNs leave_sent_ns = 0;
  TimeNs leave_asked_ns = 0;  // when leave() was called
  bool log_backlog = false;   // Member::set_log_backlog
  bool restored = true;
  ViewId first_view = 0;
  std::vector<Uid> snap_sources;   // members of the first view: old ones first, then joiners
  uint32_t snap_old_sources = 0;   // the first this many of snap_sources are old members
  uint32_t snap_none_streak = 0;   // SNAP_NONE answers in a row from old members (this view)
  uint32_t snap_none_joiners = 0;  // and from fellow joiners
  uint32_t snap_source = 0;
  std::vector<std::byte> snap_buf;
  uint32_t snap_total = 0;
  bool snap_total_known = false;
  TimeNs snap_req_ns = 0;
  TimeNs snap_progress_ns = 0;
  std::deque<std::pair<ViewId, std::vector<std::byte>>> snapshots;  // served to joiners
  std::vector<Action> buffered_app;  // app-facing actions held until the snapshot is applied
  // Own messages of views gone by, kept while held deliveries of a joiner may point at them.
  std::vector<PayloadArena> retained_own;

  // --- point-to-point: this member's requests not yet answered (NOTES.md, "Point-to-point")
  RequestTable requests{config.max_outstanding_requests};

  // --- held sends and records of views not yet installed
  std::deque<std::pair<Mode, std::vector<std::byte>>> pending_sends;
  std::vector<std::pair<NodeId, std::span<const std::byte>>> future;

  // --- output
  mutable std::vector<Action> pending;  // what actions() answers
  std::vector<std::byte> arena;
  std::vector<ArenaRef> arena_refs;
  mutable bool spans_set = true;  // every ArenaRef's span is set in `pending`
  // The DATA record own messages are joining (put_batched), while `open`.
  struct OpenBatch {
    bool open = false;
    ViewId view = 0;
    uint32_t ref = 0;     // its ArenaRef
    size_t count_at = 0;  // the arena offset of its u16 count
    uint32_t count = 0;
  };
  mutable OpenBatch open_batch;
  // The views kInstall and kTakeSnapshot actions point at (held or buffered): stable addresses,
  // dropped when no action is left.
  std::deque<View> action_views;
  const View* keep_view(const View& view) {
    action_views.push_back(view);
    return &action_views.back();
  }
  std::vector<std::pair<NodeId, std::vector<std::byte>>> loopback;  // control to self

  MemberCounters counters{};
  Coverage coverage{};
  uint64_t release_epoch = 0;  // Member::release_epoch()
  uint64_t bug_gseq = 0;

  // member.cc: output
  void emit(ActionKind kind);
  void emit_app(const Action& a);
  Writer begin_bytes(ActionKind kind, NodeId to, size_t* mark);
  void end_bytes(size_t mark);
  // Encodes a control datagram (head, then body_fn(Writer&)) to `to`; to self it loops back.
  template <typename F>
  void send_control(NodeId to, ControlKind kind, const F& body_fn) {
    const ViewId view = cur ? cur->view.id : 0;
    if (to == self.node) {
      std::vector<std::byte> bytes;
      Writer w(&bytes);
      put_control_head(w, kind, self, view);
      body_fn(w);
      loopback.emplace_back(to, std::move(bytes));
      return;
    }
    size_t mark = 0;
    Writer w = begin_bytes(ActionKind::kSend, to, &mark);
    put_control_head(w, kind, self, view);
    body_fn(w);
    end_bytes(mark);
  }
  // Encodes a record of `view` (head, then body_fn(Writer&)) for this member's log.
  template <typename F>
  void append_record(RecordKind kind, ViewId view, const F& body_fn) {
    size_t mark = 0;
    Writer w = begin_bytes(ActionKind::kAppend, 0, &mark);
    put_record_head(w, kind, self, view);
    body_fn(w);
    end_bytes(mark);
  }
  void run_loopback();

  // member.cc: normal operation
  bool active() const noexcept { return state == MemberState::kActive; }
  bool in_view() const noexcept {
    return state == MemberState::kActive || state == MemberState::kWedged;
  }
  void handle_record(NodeId from, std::span<const std::byte> record);
  bool on_data_batch(ViewData& v, uint32_t rank, Reader r);
  void on_data(ViewData& v, uint32_t rank, const DataBody& d);
  void put_batched(ViewId view, const DataBody& d);
  bool add_order(ViewData& v, uint64_t gseq, uint32_t rank, uint32_t sseq);
  bool on_order(ViewData& v, const OrderBody& o);
  void update_held(ViewData& v);
  uint64_t stable(const ViewData& v) const;
  void try_deliver();
  void fifo_chain(ViewData& v, uint32_t rank);
  void deliver(ViewData& v, uint32_t rank, uint32_t sseq, uint64_t gseq);
  void release(ViewData& v);
  bool inline_order_fits(uint32_t rank, uint64_t gseq_inline) const noexcept;
  void send_or_hold(Mode mode, std::span<const std::byte> payload);
  void send_held();
  bool try_append(Mode mode, std::span<const std::byte> payload);
  void order_pending(ViewData& v);
  void become_final(MemberState final_state);
  void on_p2p(const RecordHead& h, const P2pBody& p);
  void emit_p2p(ActionKind kind, Uid peer, uint64_t id, std::span<const std::byte> payload);
  void fail_requests(const View* survivors);  // nullptr: every one (left, removed)

  // member_flush.cc
  void handle_control(NodeId from, std::span<const std::byte> bytes);
  void tick_view();
  uint32_t local_suspects() const;
  uint32_t exclusion() const;
  uint32_t leader_rank() const;
  bool majority(uint32_t mask) const;
  void wedge();
  void begin_attempt();
  void leader_tick();
  void decide();
  bool fulfillable(const CutValue& c) const;
  void send_cut(NodeId to);
  void send_install(NodeId to, const CutValue& c, uint64_t attempt);
  void on_propose(const ControlHead& h, NodeId from, Reader& r);
  void send_promise(NodeId to);  // FLUSH_STATE for the promised attempt
  void on_flush_state(const ControlHead& h, Reader& r);
  void on_cut(const ControlHead& h, NodeId from, Reader& r);
  void on_have_cut(const ControlHead& h, Reader& r);
  void on_install(const ControlHead& h, NodeId from, Reader& r);
  void on_fetch(const ControlHead& h, NodeId from, Reader& r);
  bool passed_on_by_a_member(NodeId from) const;
  void on_join(const ControlHead& h, NodeId via);
  void on_leave(const ControlHead& h);
  void on_snap_request(const ControlHead& h, NodeId from, Reader& r);
  void on_snap_chunk(const ControlHead& h, Reader& r);
  void reply_stale(const ControlHead& h, NodeId from);
  bool not_member_is_mine(Reader& r);
  bool holds_cut(const CutValue& c) const;
  void check_cut_progress();
  void fetch_missing(const CutValue& c);
  void do_install(const CutValue& c);
  void deliver_cut(const CutValue& c);
  void enter_view(const View& v, uint32_t joiners_mask, bool joiner);
  void snapshot_tick();
  void finish_restore();
};

}  // namespace cohort::membership
