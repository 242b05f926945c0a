// Member: normal operation in a view (PROTOCOL.md, "Normal operation in view v"): sending,
// the records of the logs, the sequencer's ORDER batches, delivery in the three modes, and
// stability. The view change lives in member_flush.cc.
#include <algorithm>
#include <bit>

#include "membership/protocol/member_impl.h"
#include "runtime/assert.h"

namespace cohort::membership {
namespace {

// How far ahead of what is held contiguously a record may point: a bound on the memory a
// malformed or hostile record can make a member reserve.
constexpr uint64_t kMaxAhead = 1U << 20;
constexpr size_t kMaxFuture = 1U << 22;

}  // namespace

const char* mode_name(Mode mode) noexcept {
  switch (mode) {
    case Mode::kFifo: return "fifo";
    case Mode::kTotal: return "total";
    case Mode::kSafe: return "safe";
  }
  return "?";
}

bool operator==(const View& a, const View& b) noexcept {
  if (a.id != b.id || a.count != b.count) return false;
  for (uint32_t i = 0; i < a.count; ++i) {
    if (a.members[i] != b.members[i]) return false;
  }
  return true;
}

const char* action_kind_name(ActionKind kind) noexcept {
  switch (kind) {
    case ActionKind::kAppend: return "append";
    case ActionKind::kSend: return "send";
    case ActionKind::kDeliver: return "deliver";
    case ActionKind::kInstall: return "install";
    case ActionKind::kTakeSnapshot: return "take_snapshot";
    case ActionKind::kRestore: return "restore";
    case ActionKind::kLeft: return "left";
    case ActionKind::kRemoved: return "removed";
    case ActionKind::kCutOff: return "cut_off";
    case ActionKind::kRequest: return "request";
    case ActionKind::kReply: return "reply";
    case ActionKind::kRequestFailed: return "request_failed";
  }
  return "?";
}

const char* member_state_name(MemberState state) noexcept {
  switch (state) {
    case MemberState::kIdle: return "idle";
    case MemberState::kJoining: return "joining";
    case MemberState::kActive: return "active";
    case MemberState::kWedged: return "wedged";
    case MemberState::kLeft: return "left";
    case MemberState::kRemoved: return "removed";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------------
// Output

void Member::Impl::emit(ActionKind kind) {
  pending.emplace_back().kind = kind;
}

// Application-facing actions of a joiner wait until its snapshot is applied: the application
// must see restore() before anything of its first view.
void Member::Impl::emit_app(const Action& a) {
  if (!restored) {
    buffered_app.push_back(a);
    return;
  }
  pending.push_back(a);
}

Writer Member::Impl::begin_bytes(ActionKind kind, NodeId to, size_t* mark) {
  *mark = arena.size();
  Action& a = pending.emplace_back();
  a.kind = kind;
  a.to = to;
  arena_refs.push_back(
      ArenaRef{static_cast<uint32_t>(pending.size() - 1), static_cast<uint32_t>(arena.size()), 0});
  spans_set = false;
  return Writer(&arena);
}

void Member::Impl::end_bytes(size_t mark) {
  arena_refs.back().length = static_cast<uint32_t>(arena.size() - mark);
}

// Control datagrams addressed to this member itself (the leader's own answers) are handled
// after the handler that sent them returns, so no handler runs inside another.
void Member::Impl::run_loopback() {
  for (size_t guard = 0; !loopback.empty() && guard < 64; ++guard) {
    auto batch = std::move(loopback);
    loopback.clear();
    for (auto& [to, bytes] : batch) handle_control(self.node, bytes);
  }
}

// ---------------------------------------------------------------------------------------------
// Records

void Member::Impl::handle_record(NodeId from, std::span<const std::byte> record) {
  if (!in_view() && state != MemberState::kJoining) return;
  Reader r(record);
  RecordHead h{};
  if (!get_record_head(r, &h) || h.writer.node != from) {
    ++counters.records_malformed;
    return;
  }
  if (h.writer == self) return;
  P2pBody p2p{};
  if (h.kind == RecordKind::kP2p) {
    if (!get_p2p(r, &p2p)) {
      ++counters.records_malformed;
      return;
    }
    if (p2p.target != self) return;  // another member's (or incarnation's): skipped, cheaply
  }
  // Two or more views ahead: never needed. To be in view v+2 a member must answer the flush of
  // v+1, which it does only once it installed v+1; so a member still in v when a v+2 record
  // arrives is in no view that holds it (it learns so by INSTALL or NOT_MEMBER). Dropping it
  // keeps garbage views from pinning memory.
  if (state != MemberState::kJoining && h.view > cur->view.id + 1) {
    ++counters.records_dropped_stale;
    return;
  }
  if (state == MemberState::kJoining || h.view > cur->view.id) {
    // A view this member has not installed yet: keep it for then (the driver keeps the bytes:
    // holds()).
    if (future.size() < kMaxFuture) {
      future.emplace_back(from, record);
    } else {
      ++counters.records_dropped_stale;
    }
    return;
  }
  if (h.kind == RecordKind::kP2p) {
    on_p2p(h, p2p);
    return;
  }
  ViewData& v = *cur;
  const uint32_t rank = v.view.rank_of(h.writer);
  if (h.view < v.view.id || rank == View::kNoRank) {
    ++counters.records_dropped_stale;
    return;
  }
  last_heard[rank] = now;
  switch (h.kind) {
    case RecordKind::kData:
      if (!on_data_batch(v, rank, r)) {
        ++counters.records_malformed;
        return;
      }
      break;
    case RecordKind::kRelayData: {
      DataBody d{};
      if (!get_data(r, &d) || d.rank >= v.view.count || !inline_order_fits(d.rank, d.gseq_inline)) {
        ++counters.records_malformed;
        return;
      }
      on_data(v, d.rank, d);
      break;
    }
    case RecordKind::kOrder:
    case RecordKind::kRelayOrder: {
      OrderBody o;
      if (!get_order(r, &o) || (h.kind == RecordKind::kOrder && rank != 0) || !on_order(v, o)) {
        ++counters.records_malformed;
        return;
      }
      break;
    }
    case RecordKind::kAck: {
      const uint64_t held = r.u64();
      if (!r.at_end()) {
        ++counters.records_malformed;
        return;
      }
      v.acked[rank] = std::max(v.acked[rank], held);
      break;
    }
    case RecordKind::kP2p: return;  // handled above
  }
  update_held(v);
  try_deliver();
  check_cut_progress();
}

// A DATA record's messages (codec.h): the whole record is checked before any of it is taken,
// so a malformed one is dropped whole.
bool Member::Impl::on_data_batch(ViewData& v, uint32_t rank, Reader r) {
  const uint32_t count = r.u16();
  if (count == 0 || count > kMaxDataBatch) return false;
  const Reader body = r;
  DataBody d{};
  uint32_t first = 0;
  for (uint32_t i = 0; i < count; ++i) {
    if (!get_data_entry(r, &d) || d.rank != rank || !inline_order_fits(rank, d.gseq_inline)) {
      return false;
    }
    if (i == 0) first = d.sseq;
    if (d.sseq != first + i) return false;
  }
  if (!r.at_end()) return false;
  r = body;
  for (uint32_t i = 0; i < count; ++i) {
    get_data_entry(r, &d);
    on_data(v, rank, d);
  }
  return true;
}

void Member::Impl::on_data(ViewData& v, uint32_t rank, const DataBody& d) {
  SenderState& s = v.senders[rank];
  if (d.sseq > s.recv + kMaxAhead) {
    ++counters.records_malformed;
    return;
  }
  // Released: held, delivered and acknowledged by all long ago; this is a late relay.
  if (d.sseq <= v.released(rank)) return;
  s.msgs.extend(d.sseq);
  Msg& m = s.msgs.at(d.sseq - 1);
  if (m.held) return;  // a relay of what the sender's own log brought already, or the reverse
  // A message not held yet cannot have a released gseq: the entry there is another message's.
  if (d.gseq_inline != 0 &&
      (d.gseq_inline <= v.order.first() || !add_order(v, d.gseq_inline, rank, d.sseq))) {
    ++counters.records_malformed;
    return;
  }
  m.held = true;
  m.mode = d.mode;
  m.gseq_inline = d.gseq_inline;
  m.payload = d.payload;
  for (const Msg* n = v.msg(rank, s.recv + 1); n != nullptr && n->held;
       n = v.msg(rank, s.recv + 1)) {
    ++s.recv;
  }

  // Planted bug: a total message delivered on receipt, before its ORDER entry is held.
  if (config.bugs.deliver_before_order && active() && d.mode == Mode::kTotal &&
      s.delivered + 1 == d.sseq) {
    deliver(v, rank, d.sseq, ++bug_gseq);
  }
}

bool Member::Impl::add_order(ViewData& v, uint64_t gseq, uint32_t rank, uint32_t sseq) {
  if (gseq == 0 || gseq > v.ordered + kMaxAhead) return false;
  // A released entry: a late relay of it (its content is gone; it was the sequencer's).
  if (gseq <= v.order.first()) return true;
  v.order.extend(gseq);
  OrderSlot& o = v.order.at(gseq - 1);
  if (o.present) return o.rank == rank && o.sseq == sseq;
  o.present = true;
  o.rank = static_cast<uint8_t>(rank);
  o.sseq = sseq;
  for (const OrderSlot* n = v.order.find(v.ordered); n != nullptr && n->present;
       n = v.order.find(v.ordered)) {
    ++v.ordered;
  }
  return true;
}

bool Member::Impl::on_order(ViewData& v, const OrderBody& o) {
  uint64_t g = o.gseq_first;
  for (uint32_t i = 0; i < o.count; ++i) {
    const OrderRange& range = o.ranges[i];
    if (range.rank >= v.view.count || range.sseq_to - range.sseq_from >= kMaxAhead) return false;
    for (uint32_t k = range.sseq_from; k <= range.sseq_to; ++k) {
      if (!add_order(v, g++, range.rank, k)) return false;
    }
  }
  return true;
}

void Member::Impl::update_held(ViewData& v) {
  while (v.held < v.ordered) {
    const OrderSlot& o = v.order.at(v.held);
    const Msg* m = v.msg(o.rank, o.sseq);
    if (m == nullptr || !m->held) break;
    ++v.held;
  }
}

// The stability frontier: every member of the view holds gseqs up to here with their DATA.
uint64_t Member::Impl::stable(const ViewData& v) const {
  uint64_t low = v.held;
  for (uint32_t r = 0; r < v.view.count; ++r) {
    if (r != v.my_rank) low = std::min(low, v.acked[r]);
  }
  return low;
}

// Delivers what may be delivered now: FIFO messages on receipt, then the total order walk.
// Nothing is delivered while wedged: from the wedge on, only the cut decides (PROTOCOL.md).
void Member::Impl::try_deliver() {
  if (!active() || !cur) return;
  ViewData& v = *cur;
  for (uint32_t r = 0; r < v.view.count; ++r) fifo_chain(v, r);
  const uint64_t stable_gseq = stable(v);
  while (v.walk < v.ordered && active()) {
    const OrderSlot o = v.order.at(v.walk);
    Msg* m = v.msg(o.rank, o.sseq);
    if (m == nullptr || !m->held) break;
    if (!m->delivered) {
      const uint64_t g = v.walk + 1;
      if (m->mode == Mode::kSafe && stable_gseq < g) break;
      // A sequencer orders each sender's messages in sseq order; an ORDER record that does not
      // (malformed bytes in a log) is counted once and stops the walk here rather than
      // deliver out of FIFO order (found by member_fuzz). Planted bugs do it on purpose: the
      // checker, not this, must catch them.
      if (!config.bugs.any() && v.senders[o.rank].delivered + 1 != o.sseq) {
        if (v.bad_order_at != g) {
          v.bad_order_at = g;
          ++counters.records_malformed;
        }
        break;
      }
      deliver(v, o.rank, o.sseq, m->mode == Mode::kFifo ? 0 : g);
    }
    ++v.walk;
    fifo_chain(v, o.rank);
  }
  release(v);
}

void Member::Impl::fifo_chain(ViewData& v, uint32_t rank) {
  SenderState& s = v.senders[rank];
  while (s.delivered < s.recv) {
    const Msg& m = s.msgs.at(s.delivered);
    if (m.mode != Mode::kFifo) break;
    deliver(v, rank, s.delivered + 1, 0);
  }
}

// Releases what no member can need again (NOTES.md, "Releasing what no member needs"): the
// gseqs up to min(stable, walk) are delivered here and held, with their DATA, by every member
// of the view, so no flush can ask for them (a fetch asks only past the asker's own recv and
// ordered, which are at least its acknowledged frontier) and no delivery can touch them again.
// Their order entries and messages leave the windows; the records the messages point into are
// then free for the driver (holds()), and own payloads go back to the arena once the actions
// are carried out (clear_actions(): a delivery of this very call may still point there). Not
// while a joiner holds deliveries back for its snapshot: those point anywhere.
void Member::Impl::release(ViewData& v) {
  if (!restored) return;
  const uint64_t upto = std::min(stable(v), v.walk);
  if (v.order.first() >= upto) return;
  uint32_t touched = 0;  // ranks whose messages were marked
  ++release_epoch;
  while (v.order.first() < upto) {
    const OrderSlot& o = v.order.front();
    COHORT_ASSERT(o.present);
    // The walk passed it, so it is held and delivered (or a duplicate entry of a message
    // released already, which only a faulty sequencer writes: nothing to mark).
    if (Msg* m = v.msg(o.rank, o.sseq)) {
      COHORT_ASSERT(m->held && m->delivered);
      m->released = true;
      touched |= 1U << o.rank;
    }
    v.order.pop_front();
  }
  // Per sender, released messages leave from the front. A sequencer orders each sender's sseqs
  // in increasing order, so this is the whole released set; a prefix waits behind a gap only if
  // an ORDER record broke that rule.
  for (uint32_t r = 0; touched != 0; ++r, touched >>= 1) {
    if ((touched & 1U) == 0) continue;
    Window<Msg>& msgs = v.senders[r].msgs;
    while (msgs.size() > 0 && msgs.front().released) msgs.pop_front();
    msgs.shrink();
  }
  v.order.shrink();
}

void Member::Impl::deliver(ViewData& v, uint32_t rank, uint32_t sseq, uint64_t gseq) {
  Msg* m = v.msg(rank, sseq);
  COHORT_ASSERT(m != nullptr && m->held && !m->delivered);
  SenderState& s = v.senders[rank];
  // FIFO per sender: a sender's messages are delivered as a prefix. Planted bugs break this on
  // purpose; the checker, not an assertion, must catch them.
  if (!config.bugs.any()) COHORT_ASSERT_MSG(s.delivered + 1 == sseq, "delivery out of sseq order");
  m->delivered = true;
  s.delivered = std::max(s.delivered, sseq);
  ++counters.delivered;
  Action a{};
  a.kind = ActionKind::kDeliver;
  a.delivery = Delivery{v.view.members[rank], v.view.id, sseq, gseq, m->mode, m->payload};
  emit_app(a);
}

// ---------------------------------------------------------------------------------------------
// Point-to-point (NOTES.md, "Point-to-point")

// A P2P record addressed to this very incarnation, of a view at or below the installed one
// (later ones wait in `future`). Its payload is handed out in the action and nothing of the
// record is kept afterwards, so it never holds a chunk (holds()) past the call.
void Member::Impl::on_p2p(const RecordHead& h, const P2pBody& p) {
  if (p.type == P2pType::kRequest) {
    // The requester must be a member now: one removed since it wrote this has failed the
    // request already (kRemoved), and a reply to it would be dropped anyway.
    if (!cur->view.contains(h.writer)) {
      ++counters.p2p_dropped;
      return;
    }
    ++counters.p2p_requests_received;
    emit_p2p(ActionKind::kRequest, h.writer, p.id, p.payload);
    return;
  }
  // A reply answers the outstanding request with its id only if it comes from the very Uid
  // asked: a late or doubled one, or one from another incarnation, finds nothing.
  if (!requests.take(p.id, h.writer)) {
    ++counters.p2p_dropped;
    return;
  }
  ++counters.p2p_replies_received;
  emit_p2p(ActionKind::kReply, h.writer, p.id, p.payload);
}

void Member::Impl::emit_p2p(ActionKind kind, Uid peer, uint64_t id,
                            std::span<const std::byte> payload) {
  Action a{};
  a.kind = kind;
  a.p2p = P2pMessage{peer, id, payload};
  emit_app(a);
}

// The requests whose target is not in `survivors` (all of them when nullptr: this member left
// or was removed) get their one answer, kRequestFailed. At an install this follows kInstall, so
// the application has seen the view that explains it.
void Member::Impl::fail_requests(const View* survivors) {
  requests.fail_if([&](Uid target) { return survivors == nullptr || !survivors->contains(target); },
                   [&](uint64_t id, Uid target) {
                     ++counters.p2p_failed;
                     Action a{};
                     a.kind = ActionKind::kRequestFailed;
                     a.p2p = P2pMessage{target, id, {}};
                     // A final member's buffered actions never go out: these must.
                     if (survivors == nullptr) {
                       pending.push_back(a);
                     } else {
                       emit_app(a);
                     }
                   });
}

// ---------------------------------------------------------------------------------------------
// Sending and ordering

// Which DATA may carry an inline gseq: with tickets every message does, each its sender's; with
// a sequencer only the sequencer's own messages do.
bool Member::Impl::inline_order_fits(uint32_t rank, uint64_t gseq_inline) const noexcept {
  return config.tickets != nullptr ? gseq_inline != 0 : gseq_inline == 0 || rank == 0;
}

// Sends go out in order: a send waits behind any held one (send_held() drains them).
void Member::Impl::send_or_hold(Mode mode, std::span<const std::byte> payload) {
  if (pending_sends.empty() && try_append(mode, payload)) return;
  pending_sends.emplace_back(mode, std::vector<std::byte>(payload.begin(), payload.end()));
}

// The held sends, in order, as long as each can go out now.
void Member::Impl::send_held() {
  while (active() && !pending_sends.empty()) {
    const auto& [mode, bytes] = pending_sends.front();
    if (!try_append(mode, bytes)) return;
    pending_sends.pop_front();
  }
}

// Appends one message of this member, with its gseq inline when it has one: a ticket's (every
// sender, one hop), or the sequencer's own next. False when no ticket can be taken now.
bool Member::Impl::try_append(Mode mode, std::span<const std::byte> payload) {
  ViewData& v = *cur;
  uint64_t gseq = 0;
  if (config.tickets != nullptr) {
    gseq = log_backlog
               ? 0
               : config.tickets->take(v.view.members[0], v.view.id, stable(v) + kTicketWindow);
    if (gseq == 0) {
      ++counters.ticket_waits;
      return false;
    }
  } else if (v.my_rank == 0) {
    gseq = v.next_gseq++;  // the sequencer's own messages: one hop instead of two
  }
  DataBody d{};
  d.rank = static_cast<uint8_t>(v.my_rank);
  d.mode = mode;
  d.sseq = ++v.my_sseq;
  d.gseq_inline = gseq;
  d.payload = v.own.put(payload, d.sseq);
  put_batched(v.view.id, d);
  on_data(v, v.my_rank, d);
  ++counters.sent;
  update_held(v);
  try_deliver();
  return true;
}

// Own messages go out in batches: a message joins the DATA record appended last when nothing
// was appended (or sent) after it and the driver has not taken the actions yet (so, in the
// engine, the sends of one poll make one record); else it starts a new one.
void Member::Impl::put_batched(ViewId view, const DataBody& d) {
  const size_t limit = std::min<size_t>(kDataBatchBytes, config.max_record_bytes);
  const bool extend =
      open_batch.open && open_batch.view == view && open_batch.ref + 1 == arena_refs.size() &&
      open_batch.count < kMaxDataBatch &&
      arena.size() - arena_refs.back().offset + kDataEntryHeadBytes + d.payload.size() <= limit;
  if (extend) {
    Writer w(&arena);
    put_data(w, d);
    arena_refs.back().length = static_cast<uint32_t>(arena.size() - arena_refs.back().offset);
    spans_set = false;
  } else {
    size_t mark = 0;
    Writer w = begin_bytes(ActionKind::kAppend, 0, &mark);
    put_record_head(w, RecordKind::kData, self, view);
    open_batch =
        OpenBatch{true, view, static_cast<uint32_t>(arena_refs.size() - 1), arena.size(), 0};
    w.u16(0);
    put_data(w, d);
    end_bytes(mark);
  }
  ++open_batch.count;
  const auto count = static_cast<uint16_t>(open_batch.count);
  std::memcpy(arena.data() + open_batch.count_at, &count, sizeof count);  // little endian (codec.h)
}

// The sequencer orders, with one record, every DATA it holds and has not ordered, per sender
// in sseq order (PROTOCOL.md, "Order").
void Member::Impl::order_pending(ViewData& v) {
  // Most calls find nothing to order (every idle poll makes one): look before building the
  // ranges, whose array a declaration would zero each time (perf: seven tenths of the call).
  bool any = false;
  for (uint32_t r = 1; r < v.view.count && !any; ++r) {
    any = v.senders[r].recv > v.senders[r].ordered_upto;
  }
  if (!any) return;
  OrderRange ranges[kMaxMembers];
  uint32_t n = 0;
  const uint64_t first = v.next_gseq;
  for (uint32_t r = 1; r < v.view.count; ++r) {
    SenderState& s = v.senders[r];
    if (s.recv <= s.ordered_upto) continue;
    ranges[n++] = OrderRange{static_cast<uint8_t>(r), s.ordered_upto + 1, s.recv};
    for (uint32_t k = s.ordered_upto + 1; k <= s.recv; ++k) {
      COHORT_ASSERT(add_order(v, v.next_gseq++, r, k));
    }
    s.ordered_upto = s.recv;
  }
  if (n == 0) return;
  append_record(RecordKind::kOrder, v.view.id,
                [&](Writer& w) { put_order(w, first, std::span<const OrderRange>(ranges, n)); });
}

void Member::Impl::become_final(MemberState final_state) {
  fail_requests(nullptr);
  state = final_state;
  ++release_epoch;  // holds() answers false from now on
  emit(final_state == MemberState::kLeft ? ActionKind::kLeft : ActionKind::kRemoved);
  lf = LeaderFlush{};
  future.clear();
  pending_sends.clear();
}

// ---------------------------------------------------------------------------------------------
// Member: the public face

Member::Member(const ProtocolConfig& config, Uid self, uint32_t node_count)
    : impl_(std::make_unique<Impl>(config, self, node_count)) {
  COHORT_ASSERT(self.valid() && self.node < kMaxMembers && node_count <= kMaxMembers);
}

Member::~Member() = default;

void Member::start_group(TimeNs now) {
  Impl& m = *impl_;
  COHORT_ASSERT(m.state == MemberState::kIdle);
  m.now = now;
  View v{};
  v.id = 1;
  v.count = 1;
  v.members[0] = m.self;
  m.enter_view(v, 0, false);
}

void Member::start_join(std::span<const NodeId> seeds, TimeNs now) {
  Impl& m = *impl_;
  COHORT_ASSERT(m.state == MemberState::kIdle);
  m.now = now;
  m.state = MemberState::kJoining;
  m.seeds.assign(seeds.begin(), seeds.end());
  m.join_sent_ns = 0;
  m.tick_view();
}

void Member::leave(TimeNs now) {
  Impl& m = *impl_;
  m.now = now;
  if (!m.in_view() || m.leaving) return;
  if (m.cur->view.count == 1) {
    m.become_final(MemberState::kLeft);
    return;
  }
  m.leaving = true;
  m.leave_sent_ns = 0;
  m.leave_asked_ns = now;
  m.tick_view();
  m.run_loopback();
}

SendResult Member::send(Mode mode, std::span<const std::byte> payload, TimeNs now) {
  Impl& m = *impl_;
  m.now = now;
  if (!m.in_view()) return SendResult::kNotMember;
  if (payload.size() > m.config.max_payload_bytes ||
      kRecordHeadBytes + 2 + kDataEntryHeadBytes + payload.size() > m.config.max_record_bytes) {
    return SendResult::kTooLarge;
  }
  if (!m.pending_sends.empty() && m.pending_sends.size() >= m.config.max_pending_sends) {
    return SendResult::kFull;
  }
  if (!m.active()) {
    m.pending_sends.emplace_back(mode, std::vector<std::byte>(payload.begin(), payload.end()));
    return SendResult::kOk;
  }
  m.send_or_hold(mode, payload);
  return SendResult::kOk;
}

SendResult Member::send_request(Uid to, uint64_t id, std::span<const std::byte> payload,
                                TimeNs now) {
  Impl& m = *impl_;
  m.now = now;
  if (!m.in_view()) return SendResult::kNotMember;
  if (payload.size() > m.config.max_payload_bytes) return SendResult::kTooLarge;
  if (to == m.self || !m.cur->view.contains(to)) return SendResult::kNotMember;
  if (m.requests.full()) return SendResult::kFull;
  m.requests.insert(id, to);
  const P2pBody body{P2pType::kRequest, to, id, payload};
  m.append_record(RecordKind::kP2p, m.cur->view.id, [&](Writer& w) { put_p2p(w, body); });
  ++m.counters.p2p_requests_sent;
  return SendResult::kOk;
}

SendResult Member::send_reply(Uid to, uint64_t id, std::span<const std::byte> payload, TimeNs now) {
  Impl& m = *impl_;
  m.now = now;
  if (!m.in_view()) return SendResult::kNotMember;
  if (payload.size() > m.config.max_payload_bytes) return SendResult::kTooLarge;
  // A requester gone from the view was answered kRequestFailed there (or has left): nobody
  // waits for this reply, and its log space is better kept.
  if (to == m.self || !m.cur->view.contains(to)) {
    ++m.counters.p2p_dropped;
    return SendResult::kOk;
  }
  const P2pBody body{P2pType::kReply, to, id, payload};
  m.append_record(RecordKind::kP2p, m.cur->view.id, [&](Writer& w) { put_p2p(w, body); });
  ++m.counters.p2p_replies_sent;
  return SendResult::kOk;
}

size_t Member::outstanding_requests() const noexcept {
  return impl_->requests.size();
}

void Member::on_record(NodeId from, std::span<const std::byte> record, TimeNs now) {
  impl_->now = now;
  impl_->handle_record(from, record);
  impl_->run_loopback();
}

void Member::on_control(NodeId from, std::span<const std::byte> bytes, TimeNs now) {
  impl_->now = now;
  impl_->handle_control(from, bytes);
  impl_->run_loopback();
}

void Member::tick(TimeNs now) {
  impl_->now = now;
  impl_->tick_view();
  impl_->run_loopback();
}

void Member::peer_failed(NodeId node, TimeNs now) {
  Impl& m = *impl_;
  m.now = now;
  if (!m.in_view()) return;
  const uint32_t r = m.cur->view.rank_of_node(node);
  if (r != View::kNoRank && r != m.cur->my_rank) m.last_heard[r] = 0;
  m.tick_view();
  m.run_loopback();
}

void Member::end_burst(TimeNs now) {
  Impl& m = *impl_;
  m.now = now;
  if (!m.active()) return;
  ViewData& v = *m.cur;
  m.send_held();  // with tickets, sends wait while none can be taken
  if (v.my_rank == 0 && m.config.tickets == nullptr) {
    m.order_pending(v);
    m.update_held(v);
    m.try_deliver();
  }
  if (m.active() && v.held > v.ack_sent) {
    v.ack_sent = v.held;
    m.append_record(RecordKind::kAck, v.view.id, [&](Writer& w) { w.u64(v.held); });
  }
}

void Member::set_log_backlog(bool backlog) noexcept {
  impl_->log_backlog = backlog;
}

void Member::snapshot_taken(ViewId view, std::span<const std::byte> snapshot) {
  Impl& m = *impl_;
  if (snapshot.size() > kMaxSnapshotBytes) {
    // No joiner would take it (a chunk claiming more is malformed): kept, it would have them
    // ask for ever. Not kept, this member answers SNAP_NONE, and the joiners of `view`, finding
    // no snapshot anywhere, give up (removed) rather than wait.
    ++m.counters.snapshots_too_large;
    return;
  }
  m.snapshots.emplace_back(view, std::vector<std::byte>(snapshot.begin(), snapshot.end()));
  while (m.snapshots.size() > 4) m.snapshots.pop_front();
}

void RecordTag::note(std::span<const std::byte> record) noexcept {
  Reader r(record);
  RecordHead h{};
  if (!get_record_head(r, &h)) return;  // dropped by every member at once
  // The highest sseq the record claims: a DATA batch's entries are consecutive, so its first
  // entry and its count say it without reading the rest (every record passes here).
  DataBody d{};
  bool data = false;
  if (h.kind == RecordKind::kRelayData) {
    data = get_data(r, &d);
  } else if (h.kind == RecordKind::kData) {
    const uint32_t count = r.u16();
    data = count != 0 && count <= kMaxDataBatch && get_data_entry(r, &d) &&
           d.sseq <= UINT32_MAX - (count - 1);
    if (data) d.sseq += count - 1;
  }
  if (h.view > view) {
    older = std::max(older, view);  // 0 when nothing was noted yet
    view = h.view;
    sseq.fill(0);
  } else if (h.view < view) {
    older = std::max(older, h.view);
  }
  if (data && h.view == view) sseq[d.rank] = std::max(sseq[d.rank], d.sseq);
}

// Record bytes are pointed at by: the messages of `cur` and `prev` not released yet; `future`
// (every record of the next view, whole); deliveries a joiner holds back until its snapshot.
// Views older than `prev` hold nothing (ViewData gone), records two or more views ahead are
// dropped on arrival (handle_record), and a final member delivers nothing more.
bool Member::holds(const RecordTag& tag) const noexcept {
  const Impl& m = *impl_;
  if (m.state == MemberState::kLeft || m.state == MemberState::kRemoved) return false;
  if (!m.cur || !m.restored) return true;
  const ViewId id = m.cur->view.id;
  if (tag.view == id + 1) return true;  // kept in `future` until installed
  const ViewId oldest = m.prev ? m.prev->view.id : id;
  // Records of older views in the chunk are not tracked per message: kept with their view,
  // the next one included (a chunk of garbage from a far view cannot free it early).
  if (tag.older >= oldest) return true;
  if (tag.view > id) return false;  // two or more ahead: dropped, never pointed at
  const ViewData* v = tag.view == m.cur->view.id              ? m.cur.get()
                      : m.prev && tag.view == m.prev->view.id ? m.prev.get()
                                                              : nullptr;
  if (v == nullptr) return false;
  for (uint32_t r = 0; r < kMaxMembers; ++r) {
    if (tag.sseq[r] > v->released(r)) return true;
  }
  return false;
}

uint64_t Member::release_epoch() const noexcept {
  return impl_->release_epoch;
}

Member::Footprint Member::footprint() const noexcept {
  const Impl& m = *impl_;
  Footprint f{};
  if (!m.cur) return f;
  for (const SenderState& s : m.cur->senders) f.msgs += s.msgs.size();
  f.order = m.cur->order.size();
  f.own_chunks = m.cur->own.chunks();
  f.released_gseq = m.cur->order.first();
  return f;
}

std::span<const Action> Member::actions() const noexcept {
  Impl& m = *impl_;
  m.open_batch.open = false;  // the driver may append it now: nothing joins it from here on
  if (!m.spans_set) {
    for (const ArenaRef& r : m.arena_refs) {
      m.pending[r.index].bytes = std::span<const std::byte>(m.arena.data() + r.offset, r.length);
    }
    m.spans_set = true;
  }
  return m.pending;
}

void Member::clear_actions() noexcept {
  Impl& m = *impl_;
  // A view change delivers its whole cut in one batch: after such a spike the buffers go,
  // rather than stay at their largest for the life of the process.
  constexpr size_t kKeepActions = 4096;
  constexpr size_t kKeepArenaBytes = 1U << 20;
  if (m.pending.capacity() > kKeepActions) std::vector<Action>().swap(m.pending);
  if (m.arena.capacity() > kKeepArenaBytes) std::vector<std::byte>().swap(m.arena);
  m.pending.clear();
  m.arena.clear();
  m.arena_refs.clear();
  m.spans_set = true;
  m.open_batch.open = false;
  if (m.buffered_app.empty()) m.action_views.clear();
  // The driver is done with the actions: own payloads released by now may be reused.
  if (m.cur && m.restored) m.cur->own.release(m.cur->released(m.cur->my_rank));
}

Uid Member::self() const noexcept {
  return impl_->self;
}
MemberState Member::state() const noexcept {
  return impl_->state;
}
const View& Member::view() const noexcept {
  return impl_->cur ? impl_->cur->view : impl_->empty_view;
}
bool Member::restored() const noexcept {
  return impl_->restored;
}
const MemberCounters& Member::counters() const noexcept {
  return impl_->counters;
}
bool Member::leading_change() const noexcept {
  return impl_->in_view() && impl_->lf.active;
}
bool Member::is_sequencer() const noexcept {
  return impl_->in_view() && impl_->cur->my_rank == 0;
}
const Member::Coverage& Member::coverage() const noexcept {
  return impl_->coverage;
}
const View* Member::accepted_next_view() const noexcept {
  const Impl& m = *impl_;
  if (!m.in_view()) return nullptr;
  if (m.pending_install) return &m.pending_install->next;
  return m.accepted ? &m.accepted->next : nullptr;
}

}  // namespace cohort::membership
